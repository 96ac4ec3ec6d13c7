//! The preflight against the simulated vCenter: a wrong template, a wrong cluster (AZ)
//! and a volume type that is no disk type are reported with their keys; the simulator's
//! own pass.
//!
//! Needs the variables of tests/conformance.rs; without `VSPHERE_URL` the test says it
//! is skipped, except under `CI`, where it fails.

mod common;

use provider_core::{Provider, Reference, References};
use provider_vsphere::VSphereBuilder;

fn builder() -> Option<VSphereBuilder> {
    common::simulator().then(VSphereBuilder::from_env)
}

#[tokio::test]
async fn a_wrong_template_cluster_and_disk_type_are_reported_with_their_keys() {
    let Some(b) = builder() else { return };
    let p = b.build().await.expect("provider");
    let template = std::env::var("VSPHERE_TEMPLATE").unwrap_or_else(|_| "tmpl-base".into());
    let zones = p.list_availability_zones().await.expect("zones");
    let mut good = References::new()
        .with_image(Reference::new("VSphere.Template", &template))
        .with_volume_type(Reference::new("NodeVolumeType", "thick"));
    for z in &zones {
        good = good.with_zone(Reference::new("VSphere.Clusters", &z.name));
    }
    let problems = p.preflight(&good).await.expect("preflight");
    assert!(problems.is_empty(), "{problems:#?}");

    let bad = good
        .with_image(Reference::new("VSphere.Template", "no-such-template"))
        .with_zone(Reference::new("VSphere.Clusters", "no-such-cluster"))
        .with_volume_type(Reference::new("GlusterVolumeType", "ssd"));
    let problems = p.preflight(&bad).await.expect("preflight");
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].starts_with(
            "VSphere.Clusters: no availability zone with id or name `no-such-cluster`"
        ),
        "{shown:#?}"
    );
    assert!(
        shown[1].starts_with(
            "VSphere.Template: no template with id or name `no-such-template`; templates: "
        ),
        "{shown:#?}"
    );
    assert!(shown[1].contains(&template), "{shown:#?}");
    assert_eq!(
        shown[2],
        "GlusterVolumeType: no vSphere disk type with id or name `ssd`; vSphere disk types: eagerZeroedThick, thick, thin",
    );
}
