//! Tests against OpenStack's own services (emulators/openstack/: Keystone, Nova with the
//! fake driver, Neutron, Cinder with the fake driver, Octavia with noop drivers).
//!
//! They find the cloud through `PLINTH_OS_TEST_CLOUD` (a clouds.yaml entry, the file
//! named by `OS_CLIENT_CONFIG_FILE`); `PLINTH_OS_TEST_MYSQL_SOCKET` (MariaDB of the
//! services) lets the LB-in-ERROR test put an LB in ERROR as a failed amphora would.
//! Unset, each test prints why it is skipped and passes, except under `CI`, where it
//! fails.

mod common;

use common::{builder, cloud_name};

use std::process::Command;
use std::time::Duration;

use provider_core::conformance::{self, ConformanceConfig};
use std::sync::Arc;

use provider_core::layer::{Instrumented, Layered};
use provider_core::model::*;
use provider_core::wait::Timeouts;
use provider_core::{Error, ErrorKind, Provider, ProviderExt};
use provider_openstack::{OpenStackBuilder, OpenStackProvider};
use secrecy::{ExposeSecret, SecretString};

const MYSQL_VAR: &str = "PLINTH_OS_TEST_MYSQL_SOCKET";

async fn provider(cloud: &str, page_size: usize) -> OpenStackProvider {
    builder(cloud)
        .with_page_size(page_size)
        .build()
        .await
        .expect("connect to the OpenStack services")
}

fn tags(run: &str) -> Tags {
    [("plinth-os-test".to_string(), run.to_string())].into()
}

fn run_id() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffff_ffff
    )
}

fn instance_spec(name: &str, run: &str) -> InstanceSpec {
    InstanceSpec::new(name, "az1", "m1.tiny", "fake-image")
        .with_network("private")
        .with_user_data("#!/bin/sh\necho hello\n")
        .with_tags(tags(run))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_kit_passes() {
    let Some(cloud) = cloud_name() else { return };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    // A small page, so the kit's pagination checks cross pages (it creates page + 1).
    let os = Arc::new(provider(&cloud, 5).await);
    let metrics = Instrumented::new();
    let p = Layered::new(os.clone(), metrics.clone());
    let config = ConformanceConfig::new("fake-image", "m1.tiny")
        .with_network("private")
        .with_subnet("private-subnet")
        .with_floating_ip_pool("public")
        .with_zones(["az1", "az2", "az3"])
        .with_concurrency(4)
        .with_check_timeout(Duration::from_secs(900));
    let report = conformance::run_all(&p, &config).await;
    println!("{report}");
    let snap = metrics.snapshot();
    println!(
        "{} trait calls, {} HTTP requests to the services",
        snap.total_calls(),
        os.api_calls()
    );
    for (op, st) in &snap.operations {
        println!(
            "{op:<28} {:>5} calls {:>4} errors  mean {:?}",
            st.calls,
            st.error_count(),
            st.mean_latency()
        );
    }
    assert!(report.is_success(), "{report}");
    // OpenStack has every family, and the config selects three zones with small pages:
    // nothing is skipped.
    let skipped: Vec<(&str, &str)> = report
        .skips()
        .map(|c| (c.name, c.outcome.reason().unwrap_or_default()))
        .collect();
    assert!(skipped.is_empty(), "skipped: {skipped:?}\n{report}");
    assert_eq!(report.passed(), conformance::checks().len(), "{report}");
}

#[tokio::test]
async fn wrong_password_is_unauthorized() {
    let Some(cloud) = cloud_name() else { return };
    let err = builder(&cloud)
        .with_password(SecretString::from("not-the-password".to_string()))
        .build()
        .await
        .expect_err("a wrong password must not connect");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(!err.to_string().contains("not-the-password"));
}

#[tokio::test]
async fn revoked_token_is_renewed() {
    let Some(cloud) = cloud_name() else { return };
    let p = provider(&cloud, 100).await;
    let before = p.token().expect("a token").expose_secret().to_string();
    let zones = p.list_availability_zones().await.expect("zones");
    assert!(!zones.is_empty());
    // Revoke the provider's token with Keystone (DELETE /v3/auth/tokens).
    let auth_url = std::env::var("PLINTH_OS_TEST_AUTH_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:5000/v3".into());
    let status = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
        ])
        .arg("-H")
        .arg(format!("X-Auth-Token: {before}"))
        .arg("-H")
        .arg(format!("X-Subject-Token: {before}"))
        .arg(format!("{auth_url}/auth/tokens"))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "204",
        "revoking the token"
    );
    // The next call to a service that has not cached this token's validation (Neutron:
    // only Nova and Cinder saw it; keystonemiddleware caches validations for minutes) is
    // answered 401, re-authenticates and is repeated.
    p.list_security_groups(&TagFilter::all())
        .await
        .expect("security groups after revocation");
    let after = p.token().expect("a token").expose_secret().to_string();
    // Compare without printing tokens.
    assert!(before != after, "the token was not renewed after a 401");
}

#[tokio::test]
async fn token_is_renewed_before_expiry() {
    let Some(cloud) = cloud_name() else { return };
    // Keystone's tokens live an hour here: a margin of an hour minus a few seconds makes
    // the background renewal fire a few seconds after connecting.
    let p = builder(&cloud)
        .with_token_renew_margin(Duration::from_secs(3600 - 3))
        .build()
        .await
        .expect("connect");
    let first = p.token().expect("token").expose_secret().to_string();
    let mut renewed = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if p.token().expect("token").expose_secret() != first.as_str() {
            // renewed (never print tokens)
            renewed = true;
            break;
        }
    }
    assert!(renewed, "the token was not renewed before expiry");
    // With this margin it renews every few seconds: calls keep working across renewals.
    for _ in 0..8 {
        p.list_availability_zones()
            .await
            .expect("calls work across token renewals");
        p.list_security_groups(&TagFilter::new("plinth-os-test", "none"))
            .await
            .expect("calls work across token renewals");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

#[tokio::test]
async fn unknown_flavor_or_image_is_invalid_input() {
    let Some(cloud) = cloud_name() else { return };
    let p = provider(&cloud, 100).await;
    let run = run_id();
    let mut spec = instance_spec(&format!("os-bad-flavor-{run}"), &run);
    spec.flavor = "m1.no-such-flavor".into();
    let err = p.create_instance(&spec).await.expect_err("unknown flavor");
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "spec.flavor"),
        "{err}"
    );
    let mut spec = instance_spec(&format!("os-bad-image-{run}"), &run);
    spec.image = "no-such-image".into();
    let err = p.create_instance(&spec).await.expect_err("unknown image");
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "spec.image"),
        "{err}"
    );
    let mut spec = instance_spec(&format!("os-bad-az-{run}"), &run);
    spec.availability_zone = "az9".into();
    let err = p.create_instance(&spec).await.expect_err("unknown AZ");
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "spec.availability_zone"),
        "{err}"
    );
    assert!(p
        .list_instances(&TagFilter::from(tags(&run)))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn missing_floating_ip_pool_is_invalid_input() {
    let Some(cloud) = cloud_name() else { return };
    let p = provider(&cloud, 100).await;
    let run = run_id();
    for pool in ["no-such-pool", "private"] {
        let err = p
            .allocate_floating_ip(
                &FloatingIpSpec::new(format!("os-fip-{run}"), pool).with_tags(tags(&run)),
            )
            .await
            .expect_err("a pool that is not an external network");
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "spec.pool"),
            "{pool}: {err}"
        );
    }
}

#[tokio::test]
async fn volume_zone_without_cinder_zone_is_refused() {
    let Some(cloud) = cloud_name() else { return };
    let p = builder(&cloud)
        .with_volume_zone("az2", "cinder-nowhere")
        .build()
        .await
        .expect("connect");
    let zones = p.list_availability_zones().await.unwrap();
    let az2 = zones.iter().find(|z| z.name == "az2").expect("az2");
    assert!(
        !az2.available,
        "a compute AZ without its volume AZ must not look available"
    );
    let run = run_id();
    let err = p
        .create_volume(&VolumeSpec::new(format!("os-vol-{run}"), "az2", 1).with_tags(tags(&run)))
        .await
        .expect_err("no silent mismatch");
    assert!(err.to_string().contains("cinder-nowhere"), "{err}");
}

fn mysql(socket: &str, sql: &str) {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "--protocol=socket", "-uroot"])
        .arg(format!("--socket={socket}"))
        .args(["octavia", "-e", sql])
        .output()
        .expect("mariadb client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Octavia's noop drivers never fail, so the LB is put in ERROR the way a failed amphora
/// leaves it: its provisioning_status in Octavia's database. Everything else is the real
/// API: the provider must report ERROR at once, not wait for ACTIVE until the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_in_error_is_reported_not_waited_on() {
    let Some(cloud) = cloud_name() else { return };
    let Some(socket) = std::env::var(MYSQL_VAR).ok().filter(|s| !s.is_empty()) else {
        if std::env::var_os("CI").is_some() {
            panic!("set {MYSQL_VAR} to the services' MariaDB socket");
        }
        eprintln!("skipped: set {MYSQL_VAR} to the services' MariaDB socket");
        return;
    };
    let p = builder(&cloud)
        // A long timeout: the test shows the error comes long before it.
        .with_timeouts(Timeouts::all(Duration::from_secs(600)))
        .build()
        .await
        .expect("connect");
    let run = run_id();
    let inst = p
        .create_instance(&instance_spec(&format!("os-lb-err-{run}"), &run))
        .await
        .expect("instance");
    let spec = LoadBalancerSpec::new(
        format!("os-lb-err-{run}"),
        [ListenerSpec::new(LbProtocol::Tcp, 6443)],
    )
    .with_subnet("private-subnet")
    .with_tags(tags(&run));
    let lb = p.create_load_balancer(&spec).await.expect("lb");
    mysql(
        &socket,
        &format!(
            "UPDATE load_balancer SET provisioning_status='ERROR' WHERE id='{}'",
            lb.id
        ),
    );
    let got = p.get_load_balancer(&lb.id).await.expect("get");
    assert_eq!(got.state, LoadBalancerState::Error);
    let started = std::time::Instant::now();
    let err = p
        .add_load_balancer_member(&lb.id, 6443, &MemberSpec::new(inst.id.clone(), 6443))
        .await
        .expect_err("a member change on an LB in ERROR");
    assert_eq!(err.kind(), ErrorKind::Api, "{err}");
    assert!(err.to_string().contains("ERROR"), "{err}");
    let waited = started.elapsed();
    // Re-creating the same spec reports the ERROR too.
    let err = p
        .create_load_balancer(&spec)
        .await
        .expect_err("same spec, LB in ERROR");
    assert_eq!(err.kind(), ErrorKind::Api, "{err}");
    eprintln!("ERROR reported after {waited:?} (timeout 600 s)");
    p.delete_load_balancer(&lb.id)
        .await
        .expect("an LB in ERROR can be deleted");
    p.delete_instance(&inst.id).await.expect("delete instance");
    assert!(p
        .list_load_balancers(&TagFilter::from(tags(&run)))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn env_and_properties_configure_the_same_cloud() {
    let Some(cloud) = cloud_name() else { return };
    // The clouds.yaml entry's values, given as the seed's OpenStack.* keys.
    let p = provider(&cloud, 100).await;
    let project = p.project_id().expect("project scope");
    let b = OpenStackBuilder::new()
        .with_property(
            "OpenStack.AuthURL",
            &std::env::var("PLINTH_OS_TEST_AUTH_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:5000/v3".into()),
        )
        .unwrap()
        .with_property("OpenStack.Username", "admin")
        .unwrap()
        .with_property(
            "OpenStack.Password",
            &std::env::var("PLINTH_OS_TEST_PASSWORD").unwrap_or_else(|_| "admin".into()),
        )
        .unwrap()
        .with_property("OpenStack.DomainName", "Default")
        .unwrap()
        .with_property("OpenStack.ProjectID", &project)
        .unwrap()
        .with_property("OpenStack.RegionName", "RegionOne")
        .unwrap();
    let q = b.build().await.expect("connect with OpenStack.* keys");
    assert_eq!(q.project_id().as_deref(), Some(project.as_str()));
    assert_eq!(q.list_availability_zones().await.unwrap().len(), 3);
}

/// Measures the HTTP requests one node of the seed topology costs (instance, data
/// volume attached, floating IP associated), and tears it down.
#[tokio::test]
async fn api_calls_per_node() {
    let Some(cloud) = cloud_name() else { return };
    let p = provider(&cloud, 100).await;
    let run = run_id();
    let mut step = p.api_calls();
    let mut count = |what: &str, p: &OpenStackProvider| {
        let now = p.api_calls();
        println!("{what:<24} {:>3} HTTP requests", now - step);
        step = now;
    };
    let inst = p
        .create_instance(&instance_spec(&format!("os-calls-{run}"), &run))
        .await
        .unwrap();
    count("create_instance", &p);
    let vol = p
        .create_volume(&VolumeSpec::new(format!("os-calls-{run}"), "az1", 1).with_tags(tags(&run)))
        .await
        .unwrap();
    count("create_volume", &p);
    p.attach_volume(&vol.id, &inst.id).await.unwrap();
    count("attach_volume", &p);
    let fip = p
        .allocate_floating_ip(
            &FloatingIpSpec::new(format!("os-calls-{run}"), "public").with_tags(tags(&run)),
        )
        .await
        .unwrap();
    count("allocate_floating_ip", &p);
    let fip = p.associate_floating_ip(&fip.id, &inst.id).await.unwrap();
    count("associate_floating_ip", &p);
    assert_eq!(fip.instance_id.as_deref(), Some(inst.id.as_str()));
    let got = p.get_instance(&inst.id).await.unwrap();
    count("get_instance", &p);
    assert_eq!(got.public_ip, Some(fip.address));
    p.list_instances(&TagFilter::from(tags(&run)))
        .await
        .unwrap();
    count("list_instances", &p);
    p.disassociate_floating_ip(&fip.id).await.unwrap();
    count("disassociate_floating_ip", &p);
    p.release_floating_ip(&fip.id).await.unwrap();
    count("release_floating_ip", &p);
    p.detach_volume(&vol.id).await.unwrap();
    count("detach_volume", &p);
    p.delete_volume(&vol.id).await.unwrap();
    count("delete_volume", &p);
    p.delete_instance(&inst.id).await.unwrap();
    count("delete_instance", &p);
}

fn curl_json(args: &[&str]) -> (String, serde_json::Value) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-H", "Content-Type: application/json"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.to_string(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn application_credential_authenticates() {
    let Some(cloud) = cloud_name() else { return };
    let auth_url = std::env::var("PLINTH_OS_TEST_AUTH_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:5000/v3".into());
    let password = std::env::var("PLINTH_OS_TEST_PASSWORD").unwrap_or_else(|_| "admin".into());
    // A project-scoped token of the test user, to create the credential with.
    let auth = serde_json::json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}
    }});
    let (head, body) = curl_json(&[
        "-X",
        "POST",
        "-d",
        &auth.to_string(),
        &format!("{auth_url}/auth/tokens"),
    ]);
    let token = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("X-Subject-Token: ")
                .or_else(|| l.strip_prefix("x-subject-token: "))
        })
        .expect("a token")
        .trim()
        .to_string();
    let user = body["token"]["user"]["id"]
        .as_str()
        .expect("user id")
        .to_string();
    let name = format!("plinth-test-{}", run_id());
    let req = serde_json::json!({"application_credential": {"name": name}});
    // Keystone (one uWSGI process here) may answer 5xx while the conformance kit loads
    // it: try a few times, then report what it said.
    let mut attempt = 0;
    let (head, cred) = loop {
        attempt += 1;
        let (head, cred) = curl_json(&[
            "-X",
            "POST",
            "-H",
            &format!("X-Auth-Token: {token}"),
            "-d",
            &req.to_string(),
            &format!("{auth_url}/users/{user}/application_credentials"),
        ]);
        if cred["application_credential"]["id"].is_string() || attempt >= 3 {
            break (head, cred);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let status = head.lines().next().unwrap_or_default().to_string();
    let id = cred["application_credential"]["id"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "no credential id: {status}: {}",
                cred.to_string().chars().take(300).collect::<String>()
            )
        })
        .to_string();
    let secret = cred["application_credential"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let region = builder(&cloud)
        .build()
        .await
        .unwrap()
        .list_availability_zones()
        .await
        .unwrap();
    let p = OpenStackBuilder::new()
        .with_auth_url(auth_url.clone())
        .with_application_credential(id.clone(), SecretString::from(secret))
        .with_region_name("RegionOne")
        .build()
        .await
        .expect("application credential auth");
    assert_eq!(p.list_availability_zones().await.unwrap(), region);
    let wrong = OpenStackBuilder::new()
        .with_auth_url(auth_url.clone())
        .with_application_credential(id.clone(), SecretString::from("wrong".to_string()))
        .build()
        .await
        .expect_err("a wrong secret");
    assert_eq!(wrong.kind(), ErrorKind::Unauthorized, "{wrong}");
    let _ = Command::new("curl")
        .args([
            "-s",
            "-X",
            "DELETE",
            "-H",
            &format!("X-Auth-Token: {token}"),
        ])
        .arg(format!(
            "{auth_url}/users/{user}/application_credentials/{id}"
        ))
        .output();
}
