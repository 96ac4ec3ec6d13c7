//! The seed's spec on moto, through the `plinth` CLI: `apply` (1 master, 3 nodes,
//! 2 storage nodes with EBS volumes over 3 AZs, an Elastic IP on the master when the
//! spec has a pool, an NLB in front of the API port), `status`, `destroy`, then a
//! `DescribeInstances`/`DescribeVolumes`/`DescribeAddresses`/`DescribeSecurityGroups`
//! check that nothing tagged with the cluster is left. Before the destroy, raw API calls
//! check that root volumes and target groups carry the cluster's tag, and that only
//! nodes given an Elastic IP have a public address.
//!
//! Needs moto (`AWS_ENDPOINT_URL`) and the `plinth` binary: `PLINTH_BIN`, else
//! `<target>/debug/plinth` (built by `cargo test --workspace`), else it is built here
//! (also when the one there was built without AWS).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_ec2::types::Filter;
use provider_core::{ProviderExt, TagFilter};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn plinth_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PLINTH_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let bin = target.join("debug").join("plinth");
    // Rebuilt also when built without AWS (as the README's local-only command builds it).
    let includes_aws = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("AWS"));
    if !includes_aws {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "cluster", "--bin", "plinth"])
            .current_dir(workspace())
            .status()
            .expect("run cargo to build plinth");
        assert!(status.success(), "building plinth failed: {status}");
    }
    bin
}

fn plinth(bin: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin).args(args).output().expect("run plinth");
    eprintln!(
        "$ plinth {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_spec_applies_reports_and_destroys_on_moto() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let f = common::fixture(&endpoint, 104).await;
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            & 0xffffff
    );
    let cluster = format!("aws-e2e-{run}");
    let dir = std::env::temp_dir().join(format!("plinth-aws-e2e-{run}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let spec = dir.join("bootstrap.properties");
    std::fs::write(&spec, common::seed_spec(&f, &cluster)).expect("write spec");
    let spec = spec.to_string_lossy().to_string();
    let bin = plinth_bin();

    let apply = plinth(&bin, &["apply", "-i", &spec]);
    let status = plinth(&bin, &["status", "-i", &spec, "--output", "json"]);
    let p = common::provider(&endpoint, &f).await;
    let problems = what_apply_made(&p, &cluster).await;
    let destroy = plinth(&bin, &["destroy", "-i", &spec, "--yes"]);
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(apply.status.success(), "apply failed");
    assert!(status.status.success(), "status failed");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let nodes = status["nodes"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(nodes, 6, "1 master + 3 nodes + 2 storage nodes: {status}");
    assert!(destroy.status.success(), "destroy failed");

    // Nothing tagged with the cluster is left: through the provider's lists...
    let tf = TagFilter::new("plinth.cluster", cluster.clone());
    assert!(
        p.list_instances(&tf).await.unwrap().is_empty(),
        "instances left"
    );
    assert!(
        p.list_volumes(&tf).await.unwrap().is_empty(),
        "volumes left"
    );
    assert!(
        p.list_floating_ips(&tf).await.unwrap().is_empty(),
        "EIPs left"
    );
    assert!(
        p.list_load_balancers(&tf).await.unwrap().is_empty(),
        "LBs left"
    );
    assert!(
        p.list_security_groups(&tf).await.unwrap().is_empty(),
        "groups left"
    );
    // ...and by raw Describe calls with the tag filter.
    let ec2 = p.ec2_client();
    let tag = Filter::builder()
        .name("tag:plinth.cluster")
        .values(&cluster)
        .build();
    let live = Filter::builder()
        .name("instance-state-name")
        .set_values(Some(
            ["pending", "running", "stopping", "stopped"]
                .map(String::from)
                .to_vec(),
        ))
        .build();
    let left = ec2
        .describe_instances()
        .filters(tag.clone())
        .filters(live)
        .send()
        .await
        .unwrap();
    assert!(
        left.reservations().iter().all(|r| r.instances().is_empty()),
        "instances left: {left:?}"
    );
    let vols = ec2
        .describe_volumes()
        .filters(tag.clone())
        .send()
        .await
        .unwrap();
    assert!(vols.volumes().is_empty(), "volumes left: {vols:?}");
    let addrs = ec2
        .describe_addresses()
        .filters(tag.clone())
        .send()
        .await
        .unwrap();
    assert!(addrs.addresses().is_empty(), "addresses left: {addrs:?}");
    let groups = ec2
        .describe_security_groups()
        .filters(tag)
        .send()
        .await
        .unwrap();
    assert!(
        groups.security_groups().is_empty(),
        "groups left: {groups:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What is wrong with the cluster apply made, read with raw EC2 and ELBv2 calls: a volume
/// of a node (root included) or a target group without the cluster's tag.
async fn what_apply_made(p: &provider_aws::AwsProvider, cluster: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let ec2 = p.ec2_client();
    let tag = Filter::builder()
        .name("tag:plinth.cluster")
        .values(cluster)
        .build();
    let reservations = ec2
        .describe_instances()
        .filters(tag.clone())
        .send()
        .await
        .unwrap();
    // A node is public only through an Elastic IP of the cluster, never through the
    // subnet's MapPublicIpOnLaunch (moto's default subnets set it, as AWS's do).
    let eips: Vec<String> = ec2
        .describe_addresses()
        .filters(tag.clone())
        .send()
        .await
        .unwrap()
        .addresses()
        .iter()
        .filter_map(|a| a.public_ip().map(str::to_string))
        .collect();
    let mut ids = Vec::new();
    for i in reservations
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
    {
        ids.push(i.instance_id().unwrap_or_default().to_string());
        if let Some(ip) = i.public_ip_address() {
            if !eips.iter().any(|e| e == ip) {
                problems.push(format!(
                    "instance {:?} has public address {ip}, not an Elastic IP of the cluster",
                    i.instance_id()
                ));
            }
        }
    }
    let public = reservations
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.public_ip_address().is_some())
        .count();
    if public != eips.len() {
        problems.push(format!(
            "{public} instances have a public address, {} Elastic IPs are associated",
            eips.len()
        ));
    }
    let volumes = ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .set_values(Some(ids.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tagged = |tags: &[aws_sdk_ec2::types::Tag]| {
        tags.iter()
            .any(|t| t.key() == Some("plinth.cluster") && t.value() == Some(cluster))
    };
    let volumes = volumes.volumes();
    if volumes.len() < ids.len() {
        problems.push(format!(
            "{} volumes for {} instances",
            volumes.len(),
            ids.len()
        ));
    }
    for v in volumes {
        if !tagged(v.tags()) {
            problems.push(format!("volume {:?} has no cluster tag", v.volume_id()));
        }
    }
    let elb = p.elb_client();
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    let arns: Vec<String> = lbs
        .load_balancers()
        .iter()
        .filter_map(|l| l.load_balancer_arn().map(str::to_string))
        .collect();
    let mut ours = Vec::new();
    if !arns.is_empty() {
        let tags = elb
            .describe_tags()
            .set_resource_arns(Some(arns))
            .send()
            .await
            .unwrap();
        for d in tags.tag_descriptions() {
            if d.tags()
                .iter()
                .any(|t| t.key() == Some("plinth.cluster") && t.value() == Some(cluster))
            {
                ours.extend(d.resource_arn().map(str::to_string));
            }
        }
    }
    if ours.is_empty() {
        problems.push("no load balancer of the cluster".into());
    }
    for lb in ours {
        let groups = elb
            .describe_target_groups()
            .load_balancer_arn(&lb)
            .send()
            .await
            .unwrap();
        let arns: Vec<String> = groups
            .target_groups()
            .iter()
            .filter_map(|g| g.target_group_arn().map(str::to_string))
            .collect();
        if arns.is_empty() {
            problems.push(format!("load balancer {lb} has no target group"));
            continue;
        }
        let tags = elb
            .describe_tags()
            .set_resource_arns(Some(arns))
            .send()
            .await
            .unwrap();
        for d in tags.tag_descriptions() {
            if !d
                .tags()
                .iter()
                .any(|t| t.key() == Some("plinth.cluster") && t.value() == Some(cluster))
            {
                problems.push(format!(
                    "target group {:?} has no cluster tag",
                    d.resource_arn()
                ));
            }
        }
    }
    problems
}

/// The seed's spec with every reference wrong: `plan` and `apply` exit 2 naming each
/// key, and nothing of the cluster exists afterwards, by its tag or by its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plinth_refuses_a_spec_naming_what_moto_lacks() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let f = common::fixture(&endpoint, 106).await;
    let cluster = format!(
        "aws-pf-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffffff
    );
    let wrong = [
        ("AWS.AvailabilityZones", "us-east-1a,us-east-1b,us-east-1x"),
        ("AWS.VpcID", "vpc-00000000deadbeef0"),
        (
            "AWS.SubnetIDs",
            "subnet-00000000deadbeef0,subnet-00000000deadbeef1,subnet-00000000deadbeef2",
        ),
        ("AWS.AMI", "ami-00000000deadbeef0"),
        ("AWS.NodeInstanceType", "t9.nosuch"),
        ("AWS.KeyName", "no-such-key"),
    ];
    let text: String = common::seed_spec(&f, &cluster)
        .lines()
        .map(|l| {
            let key = l.split('=').next().unwrap_or_default().trim();
            match wrong.iter().find(|(k, _)| *k == key) {
                Some((k, v)) => format!("{k} = {v}\n"),
                None => format!("{l}\n"),
            }
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("plinth-{cluster}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let spec = dir.join("bootstrap.properties");
    std::fs::write(&spec, text).expect("write spec");
    let spec = spec.to_string_lossy().to_string();
    let bin = plinth_bin();
    for verb in ["plan", "apply"] {
        let out = plinth(&bin, &[verb, "-i", &spec]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb}: {err}");
        for want in [
            "problems with what the spec names on the cloud (nothing was created):",
            "  AWS.AvailabilityZones: no availability zone with id or name `us-east-1x`",
            "  AWS.AMI: no AMI with id or name `ami-00000000deadbeef0`",
            "  AWS.NodeInstanceType: no instance type `t9.nosuch`",
            "  AWS.VpcID: no VPC with id or name `vpc-00000000deadbeef0`",
            "  AWS.SubnetIDs: no subnet with id or name `subnet-00000000deadbeef0`",
            "  AWS.KeyName: no key pair with id or name `no-such-key`",
        ] {
            assert!(err.contains(want), "{verb}: {want}\n{err}");
        }
    }
    // Nothing was made: by the cluster's tag, and by its name on anything untagged.
    let p = common::provider(&endpoint, &f).await;
    let mut names: Vec<String> = Vec::new();
    for filter in [
        &TagFilter::new("plinth.cluster", cluster.clone()),
        &TagFilter::all(),
    ] {
        let groups = p.list_security_groups(filter).await.expect("groups");
        let instances = p.list_instances(filter).await.expect("instances");
        let volumes = p.list_volumes(filter).await.expect("volumes");
        let addresses = p.list_floating_ips(filter).await.expect("addresses");
        let lbs = p.list_load_balancers(filter).await.expect("LBs");
        names.extend(groups.into_iter().map(|r| r.name));
        names.extend(instances.into_iter().map(|r| r.name));
        names.extend(volumes.into_iter().map(|r| r.name));
        names.extend(addresses.into_iter().map(|r| r.name));
        names.extend(lbs.into_iter().map(|r| r.name));
    }
    let made: Vec<&String> = names.iter().filter(|n| n.contains(&cluster)).collect();
    assert!(made.is_empty(), "the refused spec made {made:?}");
}
