//! The preflight against OpenStack's own services (emulators/openstack/): each wrong
//! reference is reported with its key, the seed's emulator example passes (its keypair
//! file included), and a demand beyond a lowered quota says which quota is short.
//!
//! They find the cloud through `PLINTH_OS_TEST_CLOUD` (a clouds.yaml entry of the file
//! named by `OS_CLIENT_CONFIG_FILE`). Unset, each test prints why it is skipped and
//! passes, except under `CI`, where it fails.

mod common;

use common::{builder, cloud_name, plinth_bin};

use std::process::Command;

use provider_core::{Demand, Problem, Provider, Reference, References};
use provider_openstack::OpenStackProvider;
use secrecy::ExposeSecret;

/// The references of examples/openstack-emulator.properties, keyed as the spec keys them.
fn seed_refs() -> References {
    References::new()
        .with_zone(Reference::new("OpenStack.AvailabilityZones", "az1"))
        .with_zone(Reference::new("OpenStack.AvailabilityZones", "az2"))
        .with_zone(Reference::new("OpenStack.AvailabilityZones", "az3"))
        .with_image(Reference::new("OpenStack.LinuxImageID", "fake-image"))
        .with_flavor(Reference::new("OpenStack.MasterFlavorID", "3"))
        .with_flavor(Reference::new("OpenStack.NodeFlavorID", "5"))
        .with_network(Reference::new("OpenStack.NetworkID", "private"))
        .with_subnet(Reference::new("OpenStack.SubnetID", "private-subnet"))
        .with_floating_ip_pool(Reference::new("OpenStack.FloatingIPPoolName", "public"))
        .with_floating_ip_pool_alias(Reference::new("OpenStack.FloatingIPPoolID", "public"))
        .with_keypair(Reference::new("OpenStack.Keypair", "stackato-key"))
}

fn keys(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

#[tokio::test]
async fn every_wrong_reference_is_reported_with_its_key() {
    let Some(cloud) = cloud_name() else { return };
    let p = builder(&cloud).build().await.expect("connect");

    // The seed's emulator example passes, its keypair file included when present.
    let mut good = seed_refs();
    let key_file = "/opt/peers/openstack-state/stackato-key";
    if std::path::Path::new(key_file).exists() {
        good = good.with_keypair_file(Reference::new("OpenStack.KeypairFile", key_file));
    }
    let (calls, started) = (p.api_calls(), std::time::Instant::now());
    let problems = p.preflight(&good).await.expect("preflight");
    println!(
        "preflight of the seed's references: {} HTTP requests, {:?}",
        p.api_calls() - calls,
        started.elapsed()
    );
    assert!(problems.is_empty(), "{problems:#?}");

    let dir = tempfile::tempdir().unwrap();
    let other_key = dir.path().join("other.pub");
    // Another ed25519 public key than the keypair's (32 bytes of 7s).
    std::fs::write(
        &other_key,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH test\n",
    )
    .unwrap();
    let bad = References::new()
        .with_zone(Reference::new("OpenStack.AvailabilityZones", "az1"))
        .with_zone(Reference::new("OpenStack.AvailabilityZones", "nowhere"))
        .with_image(Reference::new("OpenStack.LinuxImageID", "no-such-image"))
        .with_flavor(Reference::new("OpenStack.MasterFlavorID", "3"))
        .with_flavor(Reference::new("OpenStack.NodeFlavorID", "m1.nosuch"))
        .with_network(Reference::new("OpenStack.NetworkID", "no-such-net"))
        .with_subnet(Reference::new("OpenStack.SubnetID", "no-such-subnet"))
        .with_floating_ip_pool(Reference::new(
            "OpenStack.FloatingIPPoolName",
            "no-such-pool",
        ))
        .with_floating_ip_pool_alias(Reference::new("OpenStack.FloatingIPPoolID", "private"))
        .with_keypair(Reference::new("OpenStack.Keypair", "no-such-key"));
    let problems = p.preflight(&bad).await.expect("preflight");
    assert_eq!(
        keys(&problems),
        [
            "OpenStack.AvailabilityZones",
            "OpenStack.LinuxImageID",
            "OpenStack.NodeFlavorID",
            "OpenStack.NetworkID",
            "OpenStack.SubnetID",
            "OpenStack.FloatingIPPoolName",
            "OpenStack.FloatingIPPoolID",
            "OpenStack.Keypair",
        ],
        "{problems:#?}"
    );
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    for (i, want) in [
        "no availability zone with id or name `nowhere`; availability zones: az1, az2, az3",
        "no image with id or name `no-such-image`; images: ",
        "no flavor with id or name `m1.nosuch`; flavors: ",
        "no network with id or name `no-such-net`; networks: ",
        "no subnet with id or name `no-such-subnet`; subnets: ",
        "no external network with id or name `no-such-pool`; external networks: public",
        "no external network with id or name `private`; external networks: public",
        "no keypair with id or name `no-such-key`; keypairs: ",
    ]
    .into_iter()
    .enumerate()
    {
        assert!(text[i].contains(want), "{i}: {} lacks {want}", text[i]);
    }
    assert!(text[2].contains("m1.tiny"), "{}", text[2]);
    assert!(text[7].contains("stackato-key"), "{}", text[7]);

    // A keypair file whose key is another's, and a subnet of another network.
    let mismatched = seed_refs()
        .with_keypair_file(Reference::new(
            "OpenStack.KeypairFile",
            other_key.to_string_lossy(),
        ))
        .with_subnet(Reference::new("OpenStack.SubnetID", "public-subnet"));
    let problems = p.preflight(&mismatched).await.expect("preflight");
    let subnet_elsewhere = problems
        .iter()
        .any(|p| p.key == "OpenStack.SubnetID" && p.message.contains("is on network `public`"));
    let wrong_key = problems.iter().any(|p| {
        p.key == "OpenStack.KeypairFile" && p.message.contains("is not keypair `stackato-key`'s")
    });
    assert!(wrong_key, "{problems:#?}");
    assert!(subnet_elsewhere, "{problems:#?}");
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

#[tokio::test]
async fn volume_types_are_resolved_against_cinder() {
    let Some(cloud) = cloud_name() else { return };
    let p = builder(&cloud).build().await.expect("connect");
    let refs = References::new()
        .with_volume_type(Reference::new("GlusterVolumeType", "__DEFAULT__"))
        .with_volume_type(Reference::new("NodeVolumeType", "no-such-type"));
    let problems = p.preflight(&refs).await.expect("preflight");
    assert_eq!(keys(&problems), ["NodeVolumeType"], "{problems:#?}");
    let text = problems[0].to_string();
    assert!(
        text.contains("no volume type with id or name `no-such-type`; volume types: __DEFAULT__"),
        "{text}"
    );
}

/// Runs `curl` with the admin token against `url`; answers the body.
fn curl(token: &str, method: &str, url: &str, body: Option<&str>) -> String {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-f",
        "-X",
        method,
        "-H",
        "Content-Type: application/json",
    ])
    .arg("-H")
    .arg(format!("X-Auth-Token: {token}"));
    if let Some(b) = body {
        c.args(["-d", b]);
    }
    let out = c.arg(url).output().expect("run curl");
    assert!(out.status.success(), "{method} {url}: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn first_id(json: &str, list: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    v[list][0]["id"].as_str().expect("an id").to_string()
}

/// A project made for one test, with the admin user as its admin; deleted (with its
/// Nova, Neutron and Octavia quotas) on drop, also when the test fails.
struct Project {
    token: String,
    keystone: String,
    compute: String,
    network: String,
    octavia: String,
    id: String,
}

impl Drop for Project {
    fn drop(&mut self) {
        for quota in [
            format!("{}/os-quota-sets/{}", self.compute, self.id),
            format!("{}/quotas/{}", self.network, self.id),
            format!("{}/lbaas/quotas/{}", self.octavia, self.id),
        ] {
            let _ = Command::new("curl")
                .args(["-s", "-X", "DELETE", "-H"])
                .arg(format!("X-Auth-Token: {}", self.token))
                .arg(quota)
                .status();
        }
        let _ = Command::new("curl")
            .args(["-s", "-X", "DELETE", "-H"])
            .arg(format!("X-Auth-Token: {}", self.token))
            .arg(format!("{}/projects/{}", self.keystone, self.id))
            .status();
    }
}

#[tokio::test]
async fn a_demand_beyond_a_lowered_quota_says_which_and_by_how_much() {
    let Some(cloud) = cloud_name() else { return };
    let admin = builder(&cloud).build().await.expect("connect");
    let token = admin.token().expect("a token").expose_secret().to_string();
    let keystone = std::env::var("PLINTH_OS_TEST_AUTH_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:5000/v3".into());
    let compute = std::env::var("PLINTH_OS_TEST_COMPUTE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8774/v2.1".into());
    let network = std::env::var("PLINTH_OS_TEST_NETWORK_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:9696/v2.0".into());
    let octavia = std::env::var("PLINTH_OS_TEST_LOAD_BALANCER_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:9876/v2".into());
    let name = format!(
        "plinth-quota-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffff_ffff
    );
    // A fresh project, so that lowering its quota cannot fail another test.
    let created = curl(
        &token,
        "POST",
        &format!("{keystone}/projects"),
        Some(&format!(
            r#"{{"project":{{"name":"{name}","domain_id":"default"}}}}"#
        )),
    );
    let v: serde_json::Value = serde_json::from_str(&created).expect("json");
    let project = Project {
        token: token.clone(),
        keystone: keystone.clone(),
        compute: compute.clone(),
        network: network.clone(),
        octavia: octavia.clone(),
        id: v["project"]["id"].as_str().expect("project id").to_string(),
    };
    let user = first_id(
        &curl(&token, "GET", &format!("{keystone}/users?name=admin"), None),
        "users",
    );
    let role = first_id(
        &curl(&token, "GET", &format!("{keystone}/roles?name=admin"), None),
        "roles",
    );
    curl(
        &token,
        "PUT",
        &format!(
            "{keystone}/projects/{}/users/{user}/roles/{role}",
            project.id
        ),
        None,
    );
    curl(
        &token,
        "PUT",
        &format!("{compute}/os-quota-sets/{}", project.id),
        Some(r#"{"quota_set":{"instances":2}}"#),
    );
    curl(
        &token,
        "PUT",
        &format!("{network}/quotas/{}", project.id),
        Some(r#"{"quota":{"security_group_rule":5}}"#),
    );
    curl(
        &token,
        "PUT",
        &format!("{octavia}/lbaas/quotas/{}", project.id),
        Some(r#"{"quota":{"load_balancer":1,"listener":1}}"#),
    );

    let p: OpenStackProvider = builder(&cloud)
        .with_property("OpenStack.ProjectName", &name)
        .expect("project name")
        .build()
        .await
        .expect("connect to the fresh project");
    assert_eq!(p.project_id().as_deref(), Some(project.id.as_str()));
    let refs = References::new()
        .with_flavor(Reference::new("OpenStack.NodeFlavorID", "1"))
        .with_demand(
            Demand::new()
                .with_instances(Reference::new("OpenStack.NodeFlavorID", "1"), 3)
                .with_floating_ips(1),
        );
    let problems = p.preflight(&refs).await.expect("preflight");
    assert_eq!(keys(&problems), ["quota"], "{problems:#?}");
    assert!(
        problems[0]
            .message
            .starts_with("instances: the plan needs 3 more, the project has 2 left of 2 (1 short)"),
        "{}",
        problems[0]
    );
    // One group with 4 rules is 6 rules to Neutron (its 2 egress rules), over 5; two
    // load balancers with a listener each are over Octavia's 1 (with their pools and
    // health monitors, whose quota stays unlimited).
    let groups = References::new().with_demand(
        Demand::new()
            .with_security_groups(1)
            .with_security_group_rules(4)
            .with_load_balancers(2)
            .with_listeners(2),
    );
    let problems = p.preflight(&groups).await.expect("preflight");
    let texts: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
    assert_eq!(keys(&problems), ["quota"; 3], "{problems:#?}");
    for want in [
        "security group rules: the plan needs 6 more, the project has ",
        "load balancers: the plan needs 2 more, the project has 1 left of 1 (1 short)",
        "listeners: the plan needs 2 more, the project has 1 left of 1 (1 short)",
    ] {
        assert!(
            texts.iter().any(|t| t.starts_with(want)),
            "{want}\n{texts:#?}"
        );
    }
    // Within the quota: no problem.
    let fits = References::new().with_demand(
        Demand::new()
            .with_instances(Reference::new("OpenStack.NodeFlavorID", "1"), 2)
            .with_load_balancers(1)
            .with_listeners(1),
    );
    assert!(p.preflight(&fits).await.expect("preflight").is_empty());
    drop(project);
}

/// The kit's preflight check, alone (the whole kit runs in emulator.rs).
#[tokio::test]
async fn the_kits_preflight_check_passes() {
    let Some(cloud) = cloud_name() else { return };
    let p = builder(&cloud).build().await.expect("connect");
    let config = provider_core::conformance::ConformanceConfig::new("fake-image", "m1.tiny")
        .with_network("private")
        .with_subnet("private-subnet")
        .with_floating_ip_pool("public")
        .with_zones(["az1", "az2", "az3"]);
    let checks: Vec<_> = provider_core::conformance::checks()
        .into_iter()
        .filter(|c| c.name == "preflight_reports_unknown_zone")
        .collect();
    let report = provider_core::conformance::run_checks(&p, &config, &checks).await;
    assert!(report.is_success() && report.passed() == 1, "{report}");
}

/// The seed's emulator spec with every reference wrong: `plan` and `apply` exit 2 naming
/// each key, and nothing exists afterwards, by the cluster's tag or by its name.
#[tokio::test]
async fn plinth_refuses_a_spec_naming_what_the_cloud_lacks() {
    let Some(cloud) = cloud_name() else { return };
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffffff
    );
    let cluster = format!("os-pf-{run}");
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(workspace.join("examples/openstack-emulator.properties"))
        .expect("the example spec");
    let wrong = [
        ("ClusterName", cluster.as_str()),
        ("OpenStack.LinuxImageID", "no-such-image"),
        ("OpenStack.NodeFlavorID", "m1.nosuch"),
        ("OpenStack.Keypair", "no-such-key"),
        ("OpenStack.NetworkID", "no-such-net"),
        ("OpenStack.SubnetID", "no-such-subnet"),
        ("OpenStack.FloatingIPPoolName", "no-such-pool"),
        ("OpenStack.AvailabilityZones", "az1,az2,nowhere"),
    ];
    let mut text: String = text
        .lines()
        .map(|l| {
            let key = l.split('=').next().unwrap_or_default().trim();
            match wrong.iter().find(|(k, _)| *k == key) {
                Some((k, v)) => format!("{k} = {v}\n"),
                None => format!("{l}\n"),
            }
        })
        .collect();
    if let Ok(url) = std::env::var("PLINTH_OS_TEST_AUTH_URL") {
        text = text.replace("http://127.0.0.1:5000/v3", &url);
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bootstrap.properties");
    std::fs::write(&spec, text).expect("write spec");
    let spec = spec.to_string_lossy().to_string();
    let bin = plinth_bin();
    for verb in ["plan", "apply"] {
        let out = Command::new(&bin)
            .args([verb, "-i", &spec])
            .output()
            .expect("run plinth");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb}: {err}");
        assert!(
            err.contains(
                "error: 7 problems with what the spec names on the cloud (nothing was created):"
            ),
            "{verb}: {err}"
        );
        for want in [
            "  OpenStack.AvailabilityZones: no availability zone with id or name `nowhere`",
            "  OpenStack.LinuxImageID: no image with id or name `no-such-image`",
            "  OpenStack.NodeFlavorID: no flavor with id or name `m1.nosuch`",
            "  OpenStack.NetworkID: no network with id or name `no-such-net`",
            "  OpenStack.SubnetID: no subnet with id or name `no-such-subnet`",
            "  OpenStack.FloatingIPPoolName: no external network with id or name `no-such-pool`",
            "  OpenStack.Keypair: no keypair with id or name `no-such-key`",
        ] {
            assert!(err.contains(want), "{verb}: {want}\n{err}");
        }
    }
    // Nothing was created: by the cluster's tag, and by its name on anything untagged.
    let p = builder(&cloud).build().await.expect("connect");
    let tagged = provider_core::TagFilter::new("plinth.cluster", &cluster);
    let all = provider_core::TagFilter::all();
    use provider_core::ProviderExt;
    let mut names: Vec<String> = Vec::new();
    for filter in [&tagged, &all] {
        names.extend(
            p.list_security_groups(filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.name),
        );
        names.extend(
            p.list_instances(filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.name),
        );
        names.extend(
            p.list_volumes(filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.name),
        );
        names.extend(
            p.list_floating_ips(filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.name),
        );
        names.extend(
            p.list_load_balancers(filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.name),
        );
    }
    let ours: Vec<&String> = names.iter().filter(|n| n.starts_with(&cluster)).collect();
    assert!(ours.is_empty(), "created: {ours:?}");
}
