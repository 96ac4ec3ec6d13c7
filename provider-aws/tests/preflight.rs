//! The preflight against moto: each wrong reference (AMI, instance type, VPC, subnet,
//! key pair, AZ) is reported with its key; the fixture's references pass; a demand
//! beyond the Elastic IP quota says by how much.

mod common;

use provider_core::{Demand, Problem, Provider, Reference, References};

fn keys(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

#[tokio::test]
async fn every_wrong_reference_is_reported_with_its_key() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let f = common::fixture(&endpoint, 211).await;
    let p = common::provider(&endpoint, &f).await;

    let mut good = References::new()
        .with_image(Reference::new("AWS.AMI", &f.ami))
        .with_flavor(Reference::new("AWS.MasterInstanceType", "t3.micro"))
        .with_network(Reference::new("AWS.VpcID", &f.vpc))
        .with_keypair(Reference::new("AWS.KeyName", "stackato-key"));
    for (z, s) in common::ZONES.iter().zip(&f.subnets) {
        good = good
            .with_zone(Reference::new("AWS.AvailabilityZones", *z))
            .with_subnet(Reference::new("AWS.SubnetIDs", s));
    }
    let problems = p.preflight(&good).await.expect("preflight");
    assert!(problems.is_empty(), "{problems:#?}");

    // Subnets out of AZ order, and wrong everything else.
    let bad = References::new()
        .with_zone(Reference::new("AWS.AvailabilityZones", "us-east-1a"))
        .with_zone(Reference::new("AWS.AvailabilityZones", "us-east-1x"))
        .with_image(Reference::new("AWS.AMI", "ami-00000000deadbeef0"))
        .with_image(Reference::new("AWS.AMI", "no-such-image-name"))
        .with_flavor(Reference::new("AWS.NodeInstanceType", "t9.nosuch"))
        .with_network(Reference::new("AWS.VpcID", "vpc-00000000deadbeef0"))
        .with_subnet(Reference::new("AWS.SubnetIDs", &f.subnets[1]))
        .with_subnet(Reference::new("AWS.SubnetIDs", "subnet-00000000deadbeef0"))
        .with_keypair(Reference::new("AWS.KeyName", "no-such-key"));
    let problems = p.preflight(&bad).await.expect("preflight");
    assert_eq!(
        keys(&problems),
        [
            "AWS.AvailabilityZones",
            "AWS.AMI",
            "AWS.AMI",
            "AWS.NodeInstanceType",
            "AWS.VpcID",
            "AWS.SubnetIDs",
            "AWS.SubnetIDs",
            "AWS.KeyName",
        ],
        "{problems:#?}"
    );
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    for (i, want) in [
        "no availability zone with id or name `us-east-1x`",
        "no AMI with id or name `ami-00000000deadbeef0`",
        "no AMI with id or name `no-such-image-name`",
        "no instance type `t9.nosuch`",
        "no VPC with id or name `vpc-00000000deadbeef0`",
        "is in us-east-1b, but AWS.AvailabilityZones lists us-east-1a at its place",
        "no subnet with id or name `subnet-00000000deadbeef0`",
        "no key pair with id or name `no-such-key`; ",
    ]
    .into_iter()
    .enumerate()
    {
        assert!(text[i].contains(want), "{i}: {} lacks {want}", text[i]);
    }
}

#[tokio::test]
async fn a_demand_beyond_the_elastic_ip_quota_says_by_how_much() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let f = common::fixture(&endpoint, 212).await;
    let p = common::provider(&endpoint, &f).await;
    // moto reports vpc-max-elastic-ips = 5 whatever is allocated: ask for more than that.
    let refs = References::new().with_demand(Demand::new().with_floating_ips(50));
    let problems = p.preflight(&refs).await.expect("preflight");
    assert_eq!(keys(&problems), ["quota"], "{problems:#?}");
    assert!(
        problems[0]
            .message
            .starts_with("Elastic IPs: the plan needs 50 more, the project has "),
        "{}",
        problems[0]
    );
}
