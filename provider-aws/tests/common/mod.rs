//! Shared fixtures of the moto tests: the emulator check, a VPC with one subnet per AZ,
//! an AMI, and a provider configured for them.

#![allow(dead_code)]

use std::time::Duration;

use provider_aws::{AwsBuilder, AwsProvider};
use provider_core::wait::{Poller, Timeouts};

/// The AZs the tests use.
pub const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// moto's endpoint, or `None` after printing why the test is skipped. Under `CI` a
/// missing emulator fails the test instead.
pub fn moto() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.trim().is_empty() => {
            // Fake credentials moto accepts, unless the caller set some.
            for (k, v) in [
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ] {
                if std::env::var_os(k).is_none() {
                    std::env::set_var(k, v);
                }
            }
            Some(url)
        }
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("moto not running: set AWS_ENDPOINT_URL (emulators/aws/start.sh prints it)");
            }
            println!("skipped: moto not running (set AWS_ENDPOINT_URL)");
            None
        }
    }
}

/// A VPC with one subnet per AZ of [`ZONES`], made in moto for one test.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub vpc: String,
    pub subnets: Vec<String>,
    pub ami: String,
}

/// Creates the fixture with the SDK directly (not through the provider).
pub async fn fixture(endpoint: &str, octet: u8) -> Fixture {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let vpc = ec2
        .create_vpc()
        .cidr_block(format!("10.{octet}.0.0/16"))
        .send()
        .await
        .expect("create VPC in moto")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("VPC id")
        .to_string();
    let mut subnets = Vec::new();
    for (i, z) in ZONES.iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.{octet}.{i}.0/24"))
            .availability_zone(*z)
            .send()
            .await
            .expect("create subnet in moto")
            .subnet()
            .and_then(|s| s.subnet_id())
            .expect("subnet id")
            .to_string();
        subnets.push(s);
    }
    let ami = ec2
        .describe_images()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("name")
                .values("amzn2-ami-hvm-*")
                .build(),
        )
        .send()
        .await
        .expect("describe images in moto")
        .images()
        .iter()
        .filter_map(|i| i.image_id())
        .next()
        .expect("an amzn2 AMI in moto")
        .to_string();
    // The example spec names this key pair; moto checks that it exists.
    let _ = ec2.create_key_pair().key_name("stackato-key").send().await;
    Fixture { vpc, subnets, ami }
}

/// A builder for the fixture: one SDK attempt per call (moto's HTTP 500s fail fast),
/// quick polling (moto's states change at once), small pages.
pub fn builder(endpoint: &str, f: &Fixture) -> AwsBuilder {
    AwsBuilder::from_env()
        .with_endpoint_url(endpoint)
        .with_region("us-east-1")
        .with_vpc_id(&f.vpc)
        .with_subnet_ids(f.subnets.clone())
        .with_availability_zones(ZONES)
        .with_sdk_max_attempts(1)
        .with_page_size(5)
        .with_drain_period(Duration::from_secs(0))
        .with_consistency_window(Duration::from_secs(5))
        .with_poller(Poller::new(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ))
        .with_timeouts(Timeouts::all(Duration::from_secs(60)))
}

/// The provider for the fixture.
pub async fn provider(endpoint: &str, f: &Fixture) -> AwsProvider {
    builder(endpoint, f)
        .build()
        .await
        .expect("build the AWS provider against moto")
}

/// The example spec, pointed at the fixture's VPC, subnets and AMI in us-east-1.
pub fn seed_spec(f: &Fixture, cluster: &str) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws.properties"),
    )
    .expect("the example spec");
    let mut out = Vec::new();
    for line in text.lines() {
        let key = line.split('=').next().unwrap_or_default().trim();
        let value = match key {
            "ClusterName" => Some(cluster.to_string()),
            "AWS.Region" => Some("us-east-1".to_string()),
            "AWS.AvailabilityZones" => Some(ZONES.join(",")),
            "AWS.VpcID" => Some(f.vpc.clone()),
            "AWS.SubnetIDs" => Some(f.subnets.join(",")),
            "AWS.AMI" => Some(f.ami.clone()),
            _ => None,
        };
        match value {
            Some(v) => out.push(format!("{key} = {v}")),
            None => out.push(line.to_string()),
        }
    }
    out.join("\n") + "\n"
}
