//! Instance tags on the simulated vCenter: a clone carries its tags in `extraConfig`
//! (no call per tag), and a tag kept as a custom attribute, as older versions of the
//! provider (or a user) set them, is still read and is cleared when removed. The
//! attribute is set with a client of its own. Skipped without `VSPHERE_URL` (fails
//! under `CI`).

mod common;

use provider_core::model::*;
use provider_core::{Operation, Provider, ProviderExt};
use provider_vsphere::client::Client;
use provider_vsphere::soap::MoRef;
use provider_vsphere::VSphereBuilder;

/// Sets custom attribute `name` (defined when missing) of VM `id` to `value`.
async fn set_attribute(client: &Client, id: &str, name: &str, value: &str) {
    let op = Operation::UpdateTags;
    let cfm = client
        .content()
        .await
        .unwrap()
        .custom_fields_manager
        .clone();
    let add = format!(
        "<AddCustomFieldDef>{}<name>{name}</name></AddCustomFieldDef>",
        cfm.xml("_this")
    );
    // Defined already by an earlier run: found below.
    let _ = client.call_raw(op, name, &add).await.unwrap();
    let fields = client
        .retrieve(
            op,
            "CustomFieldsManager",
            None,
            std::slice::from_ref(&cfm),
            &["field"],
        )
        .await
        .unwrap();
    let key = fields[0].props["field"]
        .children
        .iter()
        .find(|d| d.child_text("name") == Some(name))
        .and_then(|d| d.child_text("key"))
        .unwrap()
        .trim()
        .to_string();
    let set = format!(
        "<SetField>{}{}<key>{key}</key><value>{value}</value></SetField>",
        cfm.xml("_this"),
        MoRef::new("VirtualMachine", id).xml("entity")
    );
    client.call(op, id, &set).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_ride_in_the_clone_and_custom_attributes_are_still_read() {
    if !common::simulator() {
        return;
    }
    let template = std::env::var("VSPHERE_TEMPLATE").unwrap_or_else(|_| "tmpl-base".into());
    let tag = format!("vs-tags-{}", std::process::id());
    let b = VSphereBuilder::from_env();
    let p = b.clone().build().await.expect("provider");
    let counts = p.request_counts().clone();
    let zone = p.list_availability_zones().await.unwrap()[0].name.clone();
    let tags: Tags = [
        ("plinth.cluster".to_string(), tag.clone()),
        ("plinth.role".to_string(), "node".to_string()),
        ("empty".to_string(), String::new()),
    ]
    .into();
    counts.reset();
    let vm = p
        .create_instance(
            &InstanceSpec::new(format!("{tag}-0"), zone, "1:1024", template)
                .with_tags(tags.clone()),
        )
        .await
        .expect("create");
    let sent = counts.snapshot();
    assert_eq!(sent.get("vim25.SetField"), None, "{sent:?}");
    assert_eq!(sent.get("vim25.CloneVM_Task"), Some(&1), "{sent:?}");
    assert_eq!(vm.tags, tags);

    let client = Client::new(&b.config().unwrap()).unwrap();
    set_attribute(&client, &vm.id, "plinth-test-owner", "ops").await;
    let read = p.get_instance(&vm.id).await.unwrap();
    assert_eq!(
        read.tags.get("plinth-test-owner").map(String::as_str),
        Some("ops")
    );
    assert_eq!(
        read.tags.get("plinth.role").map(String::as_str),
        Some("node")
    );

    let set: Tags = [("plinth.role".to_string(), "master".to_string())].into();
    p.update_tags(
        ResourceKind::Instance,
        &vm.id,
        &set,
        &["plinth-test-owner".to_string(), "empty".to_string()],
    )
    .await
    .unwrap();
    let read = p.get_instance(&vm.id).await.unwrap();
    p.delete_instance(&vm.id).await.expect("delete");
    let want: Tags = [
        ("plinth.cluster".to_string(), tag.clone()),
        ("plinth.role".to_string(), "master".to_string()),
    ]
    .into();
    assert_eq!(read.tags, want);
}
