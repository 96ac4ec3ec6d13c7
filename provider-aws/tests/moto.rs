//! AWS-specific behaviour against moto's server: the validations moto skips, batching
//! and idempotency without ClientToken, and the AWS requests they cost.

mod common;

use std::collections::BTreeMap;

use provider_aws::AwsBuilder;
use provider_core::{Error, InstanceSpec, ProviderExt, TagFilter, Tags, VolumeSpec};

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run_id() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

fn instance(name: &str, zone: &str, ami: &str, t: &Tags) -> InstanceSpec {
    InstanceSpec::new(name, zone, "t3.micro", ami)
        .with_user_data("#!/bin/sh\necho hello\n")
        .with_tags(t.clone())
}

fn invalid_field(e: &Error) -> Option<&str> {
    match e {
        Error::InvalidInput { field, .. } => Some(field),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_refuses_what_aws_refuses_and_moto_accepts() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let f = common::fixture(&endpoint, 102).await;

    // Subnets listed in the wrong AZ order: refused when the provider is built.
    let mut swapped = f.subnets.clone();
    swapped.swap(0, 1);
    let err = common::builder(&endpoint, &f)
        .with_subnet_ids(swapped)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config { key, .. } if key == "AWS.SubnetIDs"),
        "{err}"
    );

    let p = common::provider(&endpoint, &f).await;
    let run = run_id();
    let t = tags(&[("test-run", &run)]);

    // An instance whose subnet is in another AZ (moto would let the subnet win).
    let mut spec = instance(&format!("x-{run}"), common::ZONES[0], &f.ami, &t);
    spec.subnet = Some(f.subnets[1].clone());
    let err = p.create_instance(&spec).await.unwrap_err();
    assert_eq!(invalid_field(&err), Some("spec.subnet"), "{err}");

    // A volume in an AZ that does not exist (moto would create it).
    let err = p
        .create_volume(&VolumeSpec::new(format!("v-{run}"), "us-east-1z", 1).with_tags(t.clone()))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&err), Some("spec.availability_zone"), "{err}");

    // Reserved tag keys.
    let mut bad = instance(&format!("y-{run}"), common::ZONES[0], &f.ami, &t);
    bad.tags.insert("Name".into(), "other".into());
    assert!(matches!(
        p.create_instance(&bad).await,
        Err(Error::InvalidInput { .. })
    ));

    // An unknown spec key names the known ones.
    let err = AwsBuilder::new()
        .with_property("AWS.SubnetID", "x")
        .unwrap_err();
    assert!(err.to_string().contains("AWS.SubnetIDs"), "{err}");

    assert!(p
        .list_instances(&TagFilter::from(t))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_launch_is_one_run_instances_per_group_and_idempotent() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let f = common::fixture(&endpoint, 103).await;
    let p = common::provider(&endpoint, &f).await;
    let run = run_id();
    let base = tags(&[("test-run", &run), ("role", "node")]);
    let specs: Vec<InstanceSpec> = (0..4)
        .map(|i| {
            let mut t = base.clone();
            t.insert("ordinal".into(), i.to_string());
            instance(&format!("node-{i}-{run}"), common::ZONES[i % 2], &f.ami, &t)
        })
        .collect();

    p.request_counts().reset();
    let made = p.create_instances(&specs).await.unwrap();
    let calls = p.request_counts().snapshot();
    println!("AWS requests for a batch of 4 in 2 AZs: {calls:?}");
    // Two launch groups (one per AZ): two RunInstances, then one CreateTags each.
    assert_eq!(calls.get("ec2.RunInstances"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("ec2.CreateTags"), Some(&4), "{calls:?}");
    for (s, i) in specs.iter().zip(&made) {
        assert_eq!(i.name, s.name);
        assert_eq!(i.availability_zone, s.availability_zone);
        assert_eq!(
            i.tags, s.tags,
            "instance {} carries exactly its spec's tags",
            i.id
        );
    }

    // moto ignores ClientToken: the name look-up keeps a second create from launching.
    p.request_counts().reset();
    let again = p.create_instances(&specs).await.unwrap();
    let calls = p.request_counts().snapshot();
    assert_eq!(
        made.iter().map(|i| &i.id).collect::<Vec<_>>(),
        again.iter().map(|i| &i.id).collect::<Vec<_>>()
    );
    assert_eq!(calls.get("ec2.RunInstances"), None, "{calls:?}");

    // Same name, another spec: Conflict.
    let mut other = specs[0].clone();
    other.flavor = "t3.small".into();
    assert!(matches!(
        p.create_instance(&other).await,
        Err(Error::Conflict { .. })
    ));

    // Many ids, one DescribeInstances.
    let ids: Vec<String> = made.iter().map(|i| i.id.clone()).collect();
    p.request_counts().reset();
    let got = p.get_instances(&ids).await.unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(
        p.request_counts().snapshot(),
        BTreeMap::from([("ec2.DescribeInstances".to_string(), 1)])
    );

    let listed = p
        .list_instances(&TagFilter::new("test-run", &run))
        .await
        .unwrap();
    assert_eq!(listed.len(), 4);
    for id in &ids {
        p.delete_instance(id).await.unwrap();
    }
    assert!(p
        .list_instances(&TagFilter::new("test-run", &run))
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        p.get_instance(&ids[0]).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_of_an_interrupted_batch_are_adopted() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let f = common::fixture(&endpoint, 106).await;
    let p = common::provider(&endpoint, &f).await;
    let run = run_id();
    let spec = instance(
        &format!("adopt-{run}"),
        common::ZONES[2],
        &f.ami,
        &tags(&[("test-run", &run)]),
    );
    // A launch that crashed after RunInstances, before the per-instance tags: the
    // instance carries the batch id and the shared tags, but no name.
    let batch =
        provider_aws::tags::client_token(&[&spec.name, &provider_aws::tags::spec_hash(&spec)]);
    let mut launch_tags = spec.tags.clone();
    launch_tags.insert(provider_aws::tags::BATCH_TAG.into(), batch);
    let out = p
        .ec2_client()
        .run_instances()
        .image_id(&f.ami)
        .instance_type(aws_sdk_ec2::types::InstanceType::from("t3.micro"))
        .min_count(1)
        .max_count(1)
        .subnet_id(&f.subnets[2])
        .tag_specifications(provider_aws::tags::tag_spec(
            aws_sdk_ec2::types::ResourceType::Instance,
            &launch_tags,
        ))
        .send()
        .await
        .unwrap();
    let orphan = out.instances()[0].instance_id().unwrap().to_string();

    p.request_counts().reset();
    let made = p.create_instance(&spec).await.unwrap();
    assert_eq!(made.id, orphan, "the orphan is adopted, not launched again");
    assert_eq!(made.name, spec.name);
    assert_eq!(p.request_counts().snapshot().get("ec2.RunInstances"), None);
    p.delete_instance(&made.id).await.unwrap();
}
