//! `VSphere.Network` on the simulated vCenter: a clone's adapter is moved from the
//! template's network onto the configured one, a distributed port group (`DC0_DVPG0`)
//! as well as a standard port group (`VM Network`); the VM's `network` property is read
//! back with a client of its own. Skipped without `VSPHERE_URL` (fails under `CI`).

mod common;

use provider_core::model::*;
use provider_core::{Operation, Provider, ProviderExt};
use provider_vsphere::client::Client;
use provider_vsphere::soap::MoRef;
use provider_vsphere::VSphereBuilder;

/// Names of the networks VM `id` is attached to.
async fn networks_of(b: &VSphereBuilder, id: &str) -> Vec<String> {
    let client = Client::new(&b.config().unwrap()).unwrap();
    let op = Operation::GetInstance;
    let vm = client
        .retrieve(
            op,
            "VirtualMachine",
            None,
            &[MoRef::new("VirtualMachine", id)],
            &["network"],
        )
        .await
        .unwrap();
    let nets: Vec<MoRef> = vm[0].props["network"]
        .children
        .iter()
        .filter_map(|e| e.moref())
        .collect();
    let mut names = Vec::new();
    for n in nets {
        let o = client
            .retrieve(op, &n.kind, None, std::slice::from_ref(&n), &["name"])
            .await
            .unwrap();
        names.push(o[0].text("name").unwrap().to_string());
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_move_onto_the_configured_network() {
    if !common::simulator() {
        return;
    }
    let template = std::env::var("VSPHERE_TEMPLATE").unwrap_or_else(|_| "tmpl-base".into());
    let tag = format!("vs-net-{}", std::process::id());
    for (i, network) in ["DC0_DVPG0", "VM Network"].into_iter().enumerate() {
        let b = VSphereBuilder::from_env().with_network(network);
        let p = b.clone().build().await.expect("provider");
        let zone = p.list_availability_zones().await.unwrap()[0].name.clone();
        let vm = p
            .create_instance(
                &InstanceSpec::new(format!("{tag}-{i}"), zone, "1:1024", template.clone())
                    .with_tags([("plinth.cluster".to_string(), tag.clone())].into()),
            )
            .await
            .expect("create on the configured network");
        let nets = networks_of(&b, &vm.id).await;
        p.delete_instance(&vm.id).await.expect("delete");
        assert_eq!(nets, [network], "VM {} networks", vm.id);
    }
}
