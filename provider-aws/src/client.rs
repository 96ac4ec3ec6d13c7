//! The provider: SDK clients, the AZ -> subnet mapping, caches of resolved names, and
//! the helpers every resource family shares (eventual consistency, waiting).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use aws_sdk_ec2::types::Subnet;
use provider_core::wait::Poll;
use provider_core::{Error, Operation, Result};

use crate::config::AwsConfig;
use crate::error::sdk;
use crate::request_counts::CountRequests;
use crate::tags::filter;
use provider_core::requests::RequestCounts;

/// Plinth's provider for AWS: EC2 and ELBv2 behind [`provider_core::Provider`].
/// Build it with [`AwsBuilder`](crate::AwsBuilder).
#[derive(Debug)]
pub struct AwsProvider {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) config: AwsConfig,
    cache: Mutex<Cache>,
    pub(crate) requests: RequestCounts,
    /// Device names being attached per instance (so concurrent attaches pick apart).
    pub(crate) devices: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// The shared waits: one describe per poll interval per kind.
    pub(crate) watches: crate::watch::Watches,
}

#[derive(Debug, Default)]
struct Cache {
    /// Subnet id -> (AZ, VPC).
    subnets: BTreeMap<String, (String, String)>,
    /// Subnet name -> id.
    subnet_names: BTreeMap<String, String>,
    /// AZ -> default subnet (when no subnets are configured).
    default_subnets: BTreeMap<String, String>,
    /// AMI name -> id.
    images: BTreeMap<String, String>,
    /// The VPC, once known.
    vpc: Option<String>,
    /// The region's available AZs, once listed.
    zones: Option<Vec<String>>,
}

impl AwsProvider {
    /// Connects with an aws-config [`SdkConfig`](aws_config::SdkConfig) and checks the
    /// configured subnets (one `DescribeSubnets` call when there are any): subnets out
    /// of AZ order or in several VPCs are a `Config` error; a subnet or VPC that does
    /// not exist is left to the preflight, which reports it with every other problem.
    pub async fn connect(sdk: &aws_config::SdkConfig, mut config: AwsConfig) -> Result<Self> {
        let op = Operation::ListAvailabilityZones;
        let requests = RequestCounts::new();
        let ec2_conf = aws_sdk_ec2::config::Builder::from(sdk)
            .interceptor(CountRequests(requests.clone()))
            .build();
        let elb_conf = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
            .interceptor(CountRequests(requests.clone()))
            .build();
        let provider = Self {
            ec2: aws_sdk_ec2::Client::from_conf(ec2_conf),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb_conf),
            config: config.clone(),
            cache: Mutex::new(Cache::default()),
            requests,
            devices: Mutex::new(BTreeMap::new()),
            watches: crate::watch::Watches::new(&config.poller),
        };
        match provider.settle_network(op, &mut config).await {
            Ok(()) => {}
            // A subnet or VPC that does not exist: the preflight reports it with every
            // other problem at once, and a call that needs it names it too.
            Err(Error::InvalidInput { field, message, .. }) => {
                tracing::debug!(%field, %message, "the network is checked by the preflight");
            }
            Err(e) => return Err(as_config(e)),
        }
        let mut provider = provider;
        provider.lock().vpc = config.vpc_id.clone();
        provider.config = config;
        Ok(provider)
    }

    /// The configuration in force (subnet names resolved to ids, AZs filled in from
    /// the subnets).
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// Counts of the AWS requests this provider has sent, per `service.Operation`
    /// (`ec2.RunInstances`, `elbv2.CreateListener`; retries included).
    pub fn request_counts(&self) -> &RequestCounts {
        &self.requests
    }

    /// The EC2 client, for callers that need a call the trait does not have.
    pub fn ec2_client(&self) -> &aws_sdk_ec2::Client {
        &self.ec2
    }

    /// The ELBv2 client.
    pub fn elb_client(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        &self.elb
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The region's available AZs (listed once, then cached).
    pub(crate) async fn region_zones(&self) -> Result<Vec<String>> {
        if let Some(z) = self.lock().zones.clone() {
            return Ok(z);
        }
        let op = Operation::ListAvailabilityZones;
        let out = self
            .ec2
            .describe_availability_zones()
            .filters(filter("state", ["available"]))
            .send()
            .await
            .map_err(sdk(op, "availability zones"))?;
        let zones: Vec<String> = out
            .availability_zones()
            .iter()
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        self.lock().zones = Some(zones.clone());
        Ok(zones)
    }

    /// Checks that `az` is one Plinth may place resources in.
    pub(crate) async fn check_zone(&self, op: Operation, field: &str, az: &str) -> Result<()> {
        let allowed = if self.config.availability_zones.is_empty() {
            self.region_zones().await?
        } else {
            self.config.availability_zones.clone()
        };
        if allowed.iter().any(|z| z == az) {
            Ok(())
        } else {
            Err(Error::invalid(
                op,
                field,
                format!(
                    "unknown availability zone {az:?}: use one of {}",
                    allowed.join(", ")
                ),
            ))
        }
    }

    /// The VPC of security groups and target groups: configured, else the default VPC.
    pub(crate) async fn vpc(&self, op: Operation) -> Result<String> {
        if let Some(v) = self.lock().vpc.clone() {
            return Ok(v);
        }
        let out = self
            .ec2
            .describe_vpcs()
            .filters(filter("is-default", ["true"]))
            .send()
            .await
            .map_err(sdk(op, "default VPC"))?;
        let v = out
            .vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::invalid(
                    op,
                    "AWS.VpcID",
                    "the region has no default VPC: set AWS.VpcID and AWS.SubnetIDs",
                )
            })?;
        self.lock().vpc = Some(v.clone());
        Ok(v)
    }

    async fn resolve_vpc(&self, op: Operation, vpc: &str) -> Result<String> {
        if vpc.starts_with("vpc-") {
            return Ok(vpc.to_string());
        }
        let out = self
            .ec2
            .describe_vpcs()
            .filters(filter("tag:Name", [vpc]))
            .send()
            .await
            .map_err(sdk(op, "VPC"))?;
        let ids: Vec<String> = out
            .vpcs()
            .iter()
            .filter_map(|v| v.vpc_id().map(str::to_string))
            .collect();
        one_of(op, "AWS.VpcID", "VPC", vpc, ids)
    }

    /// Resolves a subnet id or `Name` tag to its id.
    pub(crate) async fn resolve_subnet(
        &self,
        op: Operation,
        field: &str,
        subnet: &str,
    ) -> Result<String> {
        if subnet.starts_with("subnet-") {
            return Ok(subnet.to_string());
        }
        if let Some(id) = self.lock().subnet_names.get(subnet).cloned() {
            return Ok(id);
        }
        let out = self
            .ec2
            .describe_subnets()
            .filters(filter("tag:Name", [subnet]))
            .send()
            .await
            .map_err(sdk(op, "subnet"))?;
        self.remember_subnets(out.subnets());
        let ids: Vec<String> = out
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_id().map(str::to_string))
            .collect();
        let id = one_of(op, field, "subnet", subnet, ids)?;
        self.lock()
            .subnet_names
            .insert(subnet.to_string(), id.clone());
        Ok(id)
    }

    /// Resolves the configured subnets and VPC to ids and checks that the subnets are
    /// one per AZ in the AZs' order, in one VPC (the AZs default to the subnets').
    async fn settle_network(&self, op: Operation, config: &mut AwsConfig) -> Result<()> {
        if !config.subnet_ids.is_empty() {
            let mut ids = Vec::new();
            for s in &config.subnet_ids {
                ids.push(self.resolve_subnet(op, "AWS.SubnetIDs", s).await?);
            }
            let mut zones = Vec::new();
            let mut vpcs = BTreeSet::new();
            for id in &ids {
                let (az, vpc) = self.subnet_info(op, "AWS.SubnetIDs", id).await?;
                zones.push(az);
                vpcs.insert(vpc);
            }
            if config.availability_zones.is_empty() {
                config.availability_zones = zones.clone();
            }
            for (i, (want, got)) in config.availability_zones.iter().zip(&zones).enumerate() {
                if want != got {
                    return Err(Error::config(
                        "AWS.SubnetIDs",
                        format!(
                            "subnet {} is in {got}, but it is listed for {want} (AZ #{}): list one subnet per AZ, in the order of AWS.AvailabilityZones",
                            ids[i],
                            i + 1
                        ),
                    ));
                }
            }
            if vpcs.len() > 1 {
                return Err(Error::config(
                    "AWS.SubnetIDs",
                    format!(
                        "the subnets are in several VPCs ({}): use subnets of one VPC",
                        vpcs.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            let subnet_vpc = vpcs.into_iter().next();
            match (&config.vpc_id, &subnet_vpc) {
                (Some(v), Some(sv)) => {
                    let v = self.resolve_vpc(op, v).await?;
                    if &v != sv {
                        return Err(Error::config(
                            "AWS.VpcID",
                            format!("the subnets are in {sv}, not in {v}: name their VPC"),
                        ));
                    }
                    config.vpc_id = Some(v);
                }
                (None, Some(sv)) => config.vpc_id = Some(sv.clone()),
                _ => {}
            }
            config.subnet_ids = ids;
        } else if let Some(v) = &config.vpc_id {
            config.vpc_id = Some(self.resolve_vpc(op, v).await?);
        }
        Ok(())
    }

    fn remember_subnets(&self, subnets: &[Subnet]) {
        let mut c = self.lock();
        for s in subnets {
            if let (Some(id), Some(az), Some(vpc)) =
                (s.subnet_id(), s.availability_zone(), s.vpc_id())
            {
                c.subnets
                    .insert(id.to_string(), (az.to_string(), vpc.to_string()));
            }
        }
    }

    /// The AZ and VPC of a subnet id (cached).
    pub(crate) async fn subnet_info(
        &self,
        op: Operation,
        field: &str,
        id: &str,
    ) -> Result<(String, String)> {
        if let Some(i) = self.lock().subnets.get(id).cloned() {
            return Ok(i);
        }
        let out = self
            .ec2
            .describe_subnets()
            .subnet_ids(id)
            .send()
            .await
            .map_err(|e| {
                let e = crate::error::AwsError::from_sdk(e);
                if e.is_not_found() {
                    Error::invalid(
                        op,
                        field,
                        format!("no subnet {id:?}: name an existing subnet"),
                    )
                } else {
                    e.classify(op, &format!("subnet {id}"))
                }
            })?;
        self.remember_subnets(out.subnets());
        self.lock().subnets.get(id).cloned().ok_or_else(|| {
            Error::invalid(
                op,
                field,
                format!("no subnet {id:?}: name an existing subnet"),
            )
        })
    }

    /// The subnet for an instance in `az`: the spec's (checked to be in `az`), else the
    /// configured one for `az`, else the AZ's default subnet.
    pub(crate) async fn subnet_for(
        &self,
        op: Operation,
        field: &str,
        az: &str,
        requested: Option<&str>,
    ) -> Result<String> {
        if let Some(s) = requested {
            let id = self.resolve_subnet(op, field, s).await?;
            let (subnet_az, _) = self.subnet_info(op, field, &id).await?;
            if subnet_az != az {
                // moto lets the subnet win silently; AWS refuses. Say so ourselves.
                return Err(Error::invalid(
                    op,
                    field,
                    format!(
                        "subnet {id} is in {subnet_az}, not in the requested {az}: use a subnet of {az}"
                    ),
                ));
            }
            return Ok(id);
        }
        if let Some(i) = self.config.availability_zones.iter().position(|z| z == az) {
            if let Some(s) = self.config.subnet_ids.get(i) {
                return Ok(s.clone());
            }
        }
        if let Some(s) = self.lock().default_subnets.get(az).cloned() {
            return Ok(s);
        }
        let out = self
            .ec2
            .describe_subnets()
            .filters(filter("availability-zone", [az]))
            .filters(filter("default-for-az", ["true"]))
            .send()
            .await
            .map_err(sdk(op, "default subnet"))?;
        self.remember_subnets(out.subnets());
        let id = out
            .subnets()
            .first()
            .and_then(|s| s.subnet_id())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::invalid(
                    op,
                    field,
                    format!(
                        "no subnet for {az}: set AWS.SubnetIDs (one per AZ) or the spec's subnet"
                    ),
                )
            })?;
        self.lock()
            .default_subnets
            .insert(az.to_string(), id.clone());
        Ok(id)
    }

    /// The subnets of a load balancer: every configured subnet (one per AZ), else the
    /// spec's.
    pub(crate) async fn lb_subnets(
        &self,
        op: Operation,
        requested: Option<&str>,
    ) -> Result<Vec<String>> {
        if let Some(s) = requested {
            let id = self.resolve_subnet(op, "spec.subnet", s).await?;
            // A configured subnet stands for all of them: the LB spans every AZ.
            if !self.config.subnet_ids.contains(&id) {
                return Ok(vec![id]);
            }
        }
        if !self.config.subnet_ids.is_empty() {
            return Ok(self.config.subnet_ids.clone());
        }
        let zones = self.region_zones().await?;
        let mut out = Vec::new();
        for z in zones.iter().take(3) {
            out.push(self.subnet_for(op, "spec.subnet", z, None).await?);
        }
        Ok(out)
    }

    /// Resolves an AMI id or name to its id (cached).
    pub(crate) async fn resolve_image(
        &self,
        op: Operation,
        field: &str,
        image: &str,
    ) -> Result<String> {
        if image.starts_with("ami-") {
            return Ok(image.to_string());
        }
        if let Some(id) = self.lock().images.get(image).cloned() {
            return Ok(id);
        }
        let out = self
            .ec2
            .describe_images()
            .filters(filter("name", [image]))
            .send()
            .await
            .map_err(sdk(op, "image"))?;
        let ids: Vec<String> = out
            .images()
            .iter()
            .filter_map(|i| i.image_id().map(str::to_string))
            .collect();
        let id = one_of(op, field, "AMI", image, ids)?;
        self.lock().images.insert(image.to_string(), id.clone());
        Ok(id)
    }

    /// Runs `f` until it answers something other than `NotFound`, for at most the
    /// consistency window: EC2 may not know a resource yet right after creating it.
    pub(crate) async fn eventually<T, F, Fut>(
        &self,
        op: Operation,
        resource: &str,
        mut f: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let r = self
            .config
            .poller
            .until(
                op,
                resource,
                "visible",
                self.config.consistency_window,
                || {
                    let fut = f();
                    async move {
                        match fut.await {
                            Ok(t) => Ok(Poll::Ready(t)),
                            Err(Error::NotFound { .. }) => {
                                Ok(Poll::Pending("not visible yet".into()))
                            }
                            Err(e) => Err(e),
                        }
                    }
                },
            )
            .await;
        match r {
            Err(Error::Timeout { .. }) => Err(Error::not_found(op, resource)),
            r => r,
        }
    }
}

/// Exactly one match of a name lookup, or `InvalidInput` listing what was found.
fn one_of(
    op: Operation,
    field: &str,
    what: &str,
    name: &str,
    mut ids: Vec<String>,
) -> Result<String> {
    ids.sort();
    ids.dedup();
    match ids.len() {
        1 => Ok(ids.remove(0)),
        0 => Err(Error::invalid(
            op,
            field,
            format!("no {what} is named {name:?}: use an existing id or name"),
        )),
        _ => Err(Error::invalid(
            op,
            field,
            format!(
                "{} {what}s are named {name:?} ({}): use one of these ids",
                ids.len(),
                ids.join(", ")
            ),
        )),
    }
}

/// A spec key that names nothing usable is a configuration problem of that key.
fn as_config(e: Error) -> Error {
    match e {
        Error::InvalidInput { field, message, .. } => Error::config(field, message),
        other => other,
    }
}
