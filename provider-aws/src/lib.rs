//! # provider-aws: Plinth on AWS (EC2 + ELBv2)
//!
//! [`AwsProvider`] implements [`provider_core::Provider`] with `aws-sdk-ec2` and
//! `aws-sdk-elasticloadbalancingv2`. Build it with [`AwsBuilder`]: credentials and
//! region come from aws-config's default chain (environment, profiles, web identity,
//! IMDS), `AWS_ENDPOINT_URL` points it at an emulator, and the `AWS.*` keys of the
//! cluster spec map to the builder's setters ([`AwsBuilder::with_property`]).
//!
//! | module | what |
//! |---|---|
//! | [`config`] | [`AwsBuilder`], [`AwsConfig`]: environment, spec keys, setters |
//! | `request_counts` | the SDK interceptor that counts AWS requests per operation ([`AwsProvider::request_counts`]) |
//! | [`client`] | [`AwsProvider`]: SDK clients, AZ -> subnet mapping (one subnet per AZ, in AZ order), name resolution, eventual consistency |
//! | [`error`] | AWS error codes -> [`provider_core::Error`] kinds |
//! | [`tags`] | the tag mapping below |
//! | `zones` | availability zones (`DescribeAvailabilityZones`, state available) |
//! | `security_groups` | VPC security groups, rules by CIDR and by source group |
//! | `floating_ips` | Elastic IPs |
//! | `volumes` | EBS volumes (gp3 by default), attach with a free device name |
//! | `instances` | `RunInstances` in batches, tags at launch, one poll for many |
//! | `load_balancers` | ELBv2: NLB for TCP, ALB for HTTP, target groups, drain period |
//! | `preflight` | zones, AMIs, instance types, VPC and subnets, key pair, Elastic IP quota |
//! | `provider` | the `Provider` trait implementation |
//!
//! ## Spec keys
//!
//! [`AwsBuilder`] is a [`provider_core::config::ProviderBuilder`]: `from_env()` reads
//! `AWS_ENDPOINT_URL` and `AWS_REGION` (aws-config reads the rest of the chain), and
//! `with_property` sets the `AWS.*` keys of a cluster spec ([`KEYS`]):
//!
//! | key | what | environment |
//! |---|---|---|
//! | `AWS.Region` | the AWS region, e.g. eu-west-1 (required, from the spec or the chain) | `AWS_REGION`, profile |
//! | `AWS.VpcID` | VPC of security groups and target groups (id or `Name` tag) | `PLINTH_AWS_VPC_ID` |
//! | `AWS.SubnetIDs` | one subnet per AZ, comma-separated, in AZ order (ids or `Name` tags) | `PLINTH_AWS_SUBNET_IDS` |
//! | `AWS.AvailabilityZones` | the AZs resources are placed in; default every available AZ | `PLINTH_AWS_AVAILABILITY_ZONES` |
//!
//! Credentials are never spec keys. A missing or wrong setting is
//! [`provider_core::Error::Config`] naming its key.
//!
//! ## Tag mapping and its limits
//!
//! EC2 resources and ELBv2 load balancers carry key/value tags, so Plinth tags map one
//! to one, and every resource Plinth creates is tagged at creation
//! (`TagSpecifications` on EC2, `Tags` on `CreateLoadBalancer`).
//! - The Plinth name lives in the `Name` tag (Elastic IPs and volumes have no name of
//!   their own; security groups and load balancers also keep it as their AWS name).
//! - Keys starting with `plinth-aws:` are the provider's own (spec hash for idempotent
//!   create, batch id, listener ports, pool); they and `Name` never appear in records,
//!   and a spec or `update_tags` that sets them is `InvalidInput`, as is a key starting
//!   with `aws:` (AWS's own).
//! - AWS allows 50 tags per resource, keys up to 128 and values up to 256 characters;
//!   Plinth uses 4, so a spec may set 46.
//! - Lists of security groups, Elastic IPs, volumes and instances filter on the server
//!   (`tag:KEY` filters). ELBv2 has no tag filter: load balancers are listed and their
//!   tags read 20 per `DescribeTags` call, then filtered here.
//!
//! ## Idempotency and eventual consistency
//!
//! Creates look their name up first (the `Name` tag; the group name per VPC; the LB
//! name) and compare the spec hash stored at creation: the same spec returns the
//! existing resource, another spec is `Conflict`. `RunInstances` and `CreateVolume` also
//! carry a `ClientToken` derived from the spec (moto ignores it; the look-up carries
//! the guarantee there). A `NotFound` right after a create is retried for
//! [`AwsConfig::consistency_window`].
//!
//! ## What the provider checks itself
//!
//! Where AWS refuses but moto accepts, the provider refuses the same way: a subnet in
//! another AZ than the instance's (`InvalidInput`), a volume in an unknown AZ, an
//! attach across AZs (`InvalidInput`), a second load balancer of a name
//! (`Conflict` unless the spec is the same), a security group still used by an
//! instance, a rule or a load balancer (`Conflict`), members and rule sources that do
//! not exist (`InvalidInput`).
//!
//! Retry and rate limiting are not done here: wrap the provider in
//! `provider_core::layer::Retry` and `RateLimit`. The SDK's own retry is off by default
//! ([`AwsBuilder::with_sdk_max_attempts`]).

pub mod client;
pub mod config;
pub mod error;
mod floating_ips;
mod gather;
mod instances;
mod load_balancers;
mod preflight;
mod provider;
mod request_counts;
mod security_groups;
pub mod tags;
mod volumes;
mod watch;
mod zones;

pub use client::AwsProvider;
pub use config::{AwsBuilder, AwsConfig, KEYS};
pub use error::AwsError;
pub use floating_ips::AMAZON_POOL;
pub use load_balancers::aws_lb_name;
pub use volumes::VOLUME_TYPES;
