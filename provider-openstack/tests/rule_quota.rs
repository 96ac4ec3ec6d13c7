//! A rule Neutron refuses for quota is an error, not a rule "that exists": against
//! OpenStack's own services (emulators/openstack/), in a project of its own whose
//! security-group-rule quota the test lowers, so no other test's project is touched.
//!
//! Needs `PLINTH_OS_TEST_CLOUD` (skipped with the reason when unset, failed under `CI`)
//! and the admin credentials `PLINTH_OS_TEST_AUTH_URL` / `PLINTH_OS_TEST_PASSWORD`
//! (emulators/openstack/test-env.sh prints them) to make the project.

mod common;

use common::curl;
use provider_core::model::*;
use provider_core::{ErrorKind, ProviderExt};
use provider_openstack::OpenStackBuilder;
use secrecy::SecretString;
use serde_json::json;

#[tokio::test]
async fn a_rule_over_quota_is_quota_exceeded_and_not_added() {
    if common::cloud_name().is_none() {
        return;
    }
    let auth_url = std::env::var("PLINTH_OS_TEST_AUTH_URL").expect("PLINTH_OS_TEST_AUTH_URL");
    let password = std::env::var("PLINTH_OS_TEST_PASSWORD").expect("PLINTH_OS_TEST_PASSWORD");
    let (token, endpoints) = common::admin(&auth_url, &password);
    let neutron = format!("{}/v2.0", endpoints["network"]);
    let t = Some(token.as_str());
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffff_ffff
    );

    // A project and a member user of its own.
    let name = format!("plinth-rule-quota-{run}");
    let (_, p) = curl(
        "POST",
        &format!("{auth_url}/projects"),
        t,
        Some(&json!({"project": {"name": name, "domain_id": "default"}})),
    );
    let project = p["project"]["id"].as_str().expect("project id").to_string();
    let user_password = format!("pw-{run}-not-a-secret");
    let (_, u) = curl(
        "POST",
        &format!("{auth_url}/users"),
        t,
        Some(&json!({"user": {"name": name, "domain_id": "default", "password": user_password}})),
    );
    let user = u["user"]["id"].as_str().expect("user id").to_string();
    let (_, roles) = curl("GET", &format!("{auth_url}/roles?name=member"), t, None);
    let member = roles["roles"][0]["id"]
        .as_str()
        .expect("member role")
        .to_string();
    curl(
        "PUT",
        &format!("{auth_url}/projects/{project}/users/{user}/roles/{member}"),
        t,
        None,
    );

    let outcome = async {
        let os = OpenStackBuilder::new()
            .with_auth_url(auth_url.clone())
            .with_user_id(user.clone())
            .with_password(SecretString::from(user_password.clone()))
            .with_project_id(project.clone())
            .with_region_name("RegionOne")
            .build()
            .await
            .expect("the project's user authenticates");
        let ssh = IngressRule::tcp(22, "10.1.1.4/32".parse().expect("cidr"));
        let https = IngressRule::tcp(443, "10.1.1.0/24".parse().expect("cidr"));
        let g = os
            .create_security_group(&SecurityGroupSpec::new("quota").with_rules([ssh.clone()]))
            .await
            .expect("a group with one rule");

        // No room for one more rule in the project.
        let (_, rules) = curl(
            "GET",
            &format!("{neutron}/security-group-rules?project_id={project}"),
            t,
            None,
        );
        let used = rules["security_group_rules"].as_array().map_or(0, Vec::len);
        let (head, _) = curl(
            "PUT",
            &format!("{neutron}/quotas/{project}"),
            t,
            Some(&json!({"quota": {"security_group_rule": used}})),
        );
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "setting the quota: {head}"
        );

        let added = os.add_security_group_rule(&g.id, &https).await;
        let after = os.get_security_group(&g.id).await.expect("the group");
        let created = os
            .create_security_group(&SecurityGroupSpec::new("quota-2").with_rules([https.clone()]))
            .await;
        (added, after, created)
    }
    .await;

    // Clean up whatever happened: the project's groups (its default one included), the
    // user, the project.
    let (_, groups) = curl(
        "GET",
        &format!("{neutron}/security-groups?project_id={project}"),
        t,
        None,
    );
    for g in groups["security_groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if let Some(id) = g["id"].as_str() {
            curl(
                "DELETE",
                &format!("{neutron}/security-groups/{id}"),
                t,
                None,
            );
        }
    }
    curl("DELETE", &format!("{neutron}/quotas/{project}"), t, None);
    curl("DELETE", &format!("{auth_url}/users/{user}"), t, None);
    curl("DELETE", &format!("{auth_url}/projects/{project}"), t, None);

    let (added, after, created) = outcome;
    let https = IngressRule::tcp(443, "10.1.1.0/24".parse().expect("cidr"));
    let e = added.expect_err("Neutron refused the rule: OverQuota");
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e:?}");
    assert!(
        !after.rules.contains(&https),
        "the refused rule is not there: {after:?}"
    );
    let e = created.expect_err("the second group's rule is over quota too");
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e:?}");
}
