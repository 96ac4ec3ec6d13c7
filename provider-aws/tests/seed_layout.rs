//! The seed's layout on moto through the cluster library: Elastic IPs on the master and
//! every worker node, a volume on the master and on each storage node (gp3), three
//! ELBv2 load balancers on 443 in front of the nodes, each with its own security group;
//! read back with EC2's and ELBv2's own Describe calls; then destroy, and nothing
//! tagged with the cluster left.
//!
//! Needs moto (`AWS_ENDPOINT_URL`); unset, the test prints why it is skipped and passes,
//! except under `CI`, where it fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_sdk_ec2::types::{Filter, Tag};
use cluster::{Cluster, ClusterSpec};

fn name_of(tags: &[Tag]) -> String {
    tags.iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_layout_comes_up_on_moto_and_goes() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let f = common::fixture(&endpoint, 107).await;
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffff_ffff
    );
    let c = format!("aws-seed-{run}");
    let text = common::seed_spec(&f, &c)
        + "NodeFloatingIP = true\nMasterVolumeSize = 10\nGlusterVolumeType = gp3\n\
           LoadBalancers.hcp.Port = 443\nLoadBalancers.hcp.TargetPort = 30443\n\
           LoadBalancers.hsm.Port = 443\nLoadBalancers.hsm.TargetPort = 30444\n\
           LoadBalancers.uaa.Port = 443\nLoadBalancers.uaa.TargetPort = 30445\n\
           LoadBalancers.uaa.SourceCIDRs = 10.1.2.0/24\n";
    let spec = ClusterSpec::parse("aws-seed.properties", &text).expect("spec");
    let p = Arc::new(common::provider(&endpoint, &f).await);
    let cluster = Cluster::new(spec, p.clone());
    let applied = cluster.apply().await;

    let ec2 = p.ec2_client();
    let tag = Filter::builder()
        .name("tag:plinth.cluster")
        .values(&c)
        .build();
    let live = Filter::builder()
        .name("instance-state-name")
        .values("pending")
        .values("running")
        .build();
    let instances: BTreeMap<String, String> = ec2
        .describe_instances()
        .filters(tag.clone())
        .filters(live.clone())
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                name_of(i.tags()),
            )
        })
        .collect();
    let addresses: BTreeSet<String> = ec2
        .describe_addresses()
        .filters(tag.clone())
        .send()
        .await
        .unwrap()
        .addresses()
        .iter()
        .map(|a| {
            let on = a.instance_id().unwrap_or_default();
            instances.get(on).cloned().unwrap_or_default()
        })
        .collect();
    let volumes: BTreeMap<String, (String, String)> = ec2
        .describe_volumes()
        .filters(tag.clone())
        .send()
        .await
        .unwrap()
        .volumes()
        .iter()
        .filter(|v| name_of(v.tags()).ends_with("-data"))
        .map(|v| {
            let on = v
                .attachments()
                .first()
                .and_then(|a| a.instance_id())
                .and_then(|i| instances.get(i))
                .cloned()
                .unwrap_or_default();
            let kind = v.volume_type().map(|t| t.as_str().to_string());
            (name_of(v.tags()), (on, kind.unwrap_or_default()))
        })
        .collect();
    let elb = p.elb_client();
    let mut lbs = BTreeMap::new();
    let all_lbs = elb.describe_load_balancers().send().await.unwrap();
    for lb in all_lbs.load_balancers() {
        let arn = lb.load_balancer_arn().unwrap_or_default();
        let tags = elb.describe_tags().resource_arns(arn).send().await.unwrap();
        let ours = tags.tag_descriptions().iter().any(|d| {
            d.tags()
                .iter()
                .any(|t| t.key() == Some("plinth.cluster") && t.value() == Some(c.as_str()))
        });
        if !ours {
            continue;
        }
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await
            .unwrap();
        let ports: Vec<i32> = listeners
            .listeners()
            .iter()
            .filter_map(|l| l.port())
            .collect();
        let groups = elb
            .describe_target_groups()
            .load_balancer_arn(arn)
            .send()
            .await
            .unwrap();
        let mut targets = Vec::new();
        for g in groups.target_groups() {
            let health = elb
                .describe_target_health()
                .target_group_arn(g.target_group_arn().unwrap_or_default())
                .send()
                .await
                .unwrap();
            targets.extend(
                health
                    .target_health_descriptions()
                    .iter()
                    .filter_map(|t| t.target().and_then(|t| t.port())),
            );
        }
        lbs.insert(
            lb.load_balancer_name().unwrap_or_default().to_string(),
            (ports, targets, lb.security_groups().len()),
        );
    }

    let destroyed = cluster.destroy().await;
    applied.expect("apply");
    destroyed.expect("destroy");

    let name = |n: &str| format!("{c}-{n}");
    assert_eq!(instances.len(), 6, "{instances:?}");
    let want: BTreeSet<String> = ["master-0", "node-0", "node-1", "node-2"]
        .iter()
        .map(|n| name(n))
        .collect();
    assert_eq!(addresses, want, "Elastic IPs on the master and the nodes");
    // The master's volume has the provider's default type, gp3; the storage nodes'
    // ask for gp3.
    let want: BTreeMap<String, (String, String)> = ["master-0", "storage-0", "storage-1"]
        .iter()
        .map(|n| (format!("{}-data", name(n)), (name(n), "gp3".to_string())))
        .collect();
    assert_eq!(volumes, want, "data volumes");
    assert_eq!(lbs.len(), 3, "{lbs:?}");
    let mut target_ports = BTreeSet::new();
    for (lb, (listeners, targets, groups)) in &lbs {
        assert_eq!(listeners, &[443], "{lb}");
        assert_eq!(targets.len(), 3, "{lb}: the three nodes, {targets:?}");
        assert!(
            targets.windows(2).all(|w| w[0] == w[1]),
            "{lb}: {targets:?}"
        );
        target_ports.extend(targets.first().copied());
        assert!(*groups <= 1, "{lb}: at most its own group");
    }
    assert_eq!(target_ports, [30443, 30444, 30445].into());

    // Nothing tagged with the cluster is left.
    let left = ec2
        .describe_instances()
        .filters(tag.clone())
        .filters(live)
        .send()
        .await
        .unwrap();
    assert!(left.reservations().iter().all(|r| r.instances().is_empty()));
    let left = ec2
        .describe_volumes()
        .filters(tag.clone())
        .send()
        .await
        .unwrap();
    assert!(left.volumes().is_empty(), "{:?}", left.volumes());
    let left = ec2
        .describe_addresses()
        .filters(tag.clone())
        .send()
        .await
        .unwrap();
    assert!(left.addresses().is_empty());
    let left = ec2
        .describe_security_groups()
        .filters(tag)
        .send()
        .await
        .unwrap();
    assert!(left.security_groups().is_empty());
}
