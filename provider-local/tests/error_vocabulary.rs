//! The error vocabulary table (provider_core::error::vocabulary) for the local
//! provider: every situation its daemon produces, through the real client and daemon,
//! and the ones it cannot produce with the reason.

mod common;

use common::*;
use provider_core::error::vocabulary::{check_table, Row, Situation, TableMismatch};
use provider_core::{FloatingIpSpec, IngressRule, ProviderExt, SecurityGroupSpec, VolumeSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_situation_local_produces_is_classified_as_the_vocabulary_says(
) -> Result<(), TableMismatch> {
    // A floating IP pool of four addresses, to reach its limit quickly.
    let f = Fixture::with(|c| c.floating_ip_network = "127.200.9.0/30".parse().expect("net")).await;
    let p = f.p();
    let mut rows = Vec::new();

    let e = p.get_volume("vol-never").await.expect_err("no such volume");
    rows.push(Row::new(
        "get_volume of an id that never existed",
        Situation::NotFound,
        e,
    ));

    let a = p
        .create_security_group(&SecurityGroupSpec::new("a"))
        .await
        .expect("group a");
    p.create_security_group(
        &SecurityGroupSpec::new("b").with_rules([IngressRule::tcp_from_group(22, &a.id)]),
    )
    .await
    .expect("group b");
    let e = p
        .delete_security_group(&a.id)
        .await
        .expect_err("a is referenced");
    rows.push(Row::new(
        "delete_security_group referenced by a rule",
        Situation::InUse,
        e,
    ));

    let mut quota = None;
    for n in 0..8 {
        let spec = FloatingIpSpec::new(format!("fip-{n}"), provider_local::config::DEFAULT_POOL);
        if let Err(e) = p.allocate_floating_ip(&spec).await {
            quota = Some(e);
            break;
        }
    }
    let e = quota.expect("a pool of 4 addresses runs out within 8 allocations");
    rows.push(Row::new(
        "allocate_floating_ip from an exhausted pool",
        Situation::QuotaExceeded,
        e,
    ));

    let e = p
        .create_volume(&VolumeSpec::new("zero", "local-a", 0))
        .await
        .expect_err("0 GiB is refused");
    rows.push(Row::new(
        "create_volume of 0 GiB",
        Situation::invalid("spec.size_gib"),
        e,
    ));

    check_table(
        &rows,
        &[
            ("busy", "the daemon completes every state change within the call"),
            ("already exists", "a name taken with another spec is Conflict by the contract; no duplicate is refused"),
            ("rate limited (Retry-After)", "the daemon does not rate-limit"),
            ("rate limited (no Retry-After)", "the daemon does not rate-limit"),
            ("unauthenticated", "no credentials: the unix socket's permissions guard it"),
            ("permission denied", "no credentials: the unix socket's permissions guard it"),
            ("invalid (no field named)", "its validation always names the field"),
            ("server error", "a failure of the daemon's state store is Api state_store: a local database fault, not retried"),
            ("timeout", "the client waits for the daemon it starts; no call-level timeout"),
            ("unreachable", "a client starts its daemon when none answers; one that cannot start is a setup error"),
        ],
    )
}
