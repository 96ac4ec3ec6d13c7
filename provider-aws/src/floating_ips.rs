//! Floating IPs = Elastic IPs (VPC domain): allocate, associate with an instance,
//! disassociate, release.
//!
//! The pool is `amazon` (Amazon's own addresses) or the id of a BYOIP pool
//! (`ipv4pool-...`). Elastic IPs have no name: the `Name` tag carries it, and
//! allocation is idempotent by a look-up of that tag.

use async_trait::async_trait;
use provider_core::FloatingIps;
use std::net::IpAddr;

use aws_sdk_ec2::types::{Address, DomainType, ResourceType};
use provider_core::wait::Poll;
use provider_core::{Error, FloatingIp, FloatingIpSpec, Operation, Result, TagFilter};

use crate::error::{sdk, AwsError};
use crate::tags::{self, filter, NAME_TAG, POOL_TAG, SPEC_HASH_TAG};
use crate::AwsProvider;

/// The pool name of Amazon's own addresses.
pub const AMAZON_POOL: &str = "amazon";

fn record(a: &Address) -> Option<FloatingIp> {
    let pairs = || tags::ec2_pairs(a.tags());
    Some(FloatingIp {
        id: a.allocation_id()?.to_string(),
        name: tags::tag_value(pairs(), NAME_TAG).unwrap_or_default(),
        address: a.public_ip()?.parse::<IpAddr>().ok()?,
        pool: tags::tag_value(pairs(), POOL_TAG)
            .or_else(|| a.public_ipv4_pool().map(str::to_string))
            .unwrap_or_else(|| AMAZON_POOL.to_string()),
        instance_id: a
            .instance_id()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        tags: tags::user_tags(pairs()),
    })
}

impl AwsProvider {
    async fn address(&self, op: Operation, id: &str) -> Result<Address> {
        let resource = format!("floating IP {id}");
        let out = self
            .ec2
            .describe_addresses()
            .allocation_ids(id)
            .send()
            .await
            .map_err(sdk(op, &resource))?;
        out.addresses()
            .first()
            .cloned()
            .ok_or_else(|| Error::not_found(op, resource))
    }

    async fn address_record(&self, op: Operation, id: &str) -> Result<FloatingIp> {
        let a = self.address(op, id).await?;
        record(&a)
            .ok_or_else(|| Error::transient(op, format!("floating IP {id} has no address yet")))
    }
}

#[async_trait]
impl FloatingIps for AwsProvider {
    async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp> {
        let op = Operation::AllocateFloatingIp;
        spec.validate()?;
        tags::check_user_tags(op, "spec.tags", &spec.tags)?;
        let pool = spec.pool.trim();
        if pool != AMAZON_POOL && !pool.starts_with("ipv4pool-") {
            return Err(Error::invalid(
                op,
                "spec.pool",
                format!(
                    "unknown floating IP pool {pool:?}: use {AMAZON_POOL:?} or the id of a BYOIP pool (ipv4pool-...)"
                ),
            ));
        }
        let hash = tags::spec_hash(spec);
        let resource = format!("floating IP {}", spec.name);
        let existing = self
            .ec2
            .describe_addresses()
            .filters(filter(&format!("tag:{NAME_TAG}"), [spec.name.clone()]))
            .send()
            .await
            .map_err(sdk(op, &resource))?;
        if let Some(a) = existing.addresses().first() {
            let theirs = tags::tag_value(tags::ec2_pairs(a.tags()), SPEC_HASH_TAG);
            let id = a.allocation_id().unwrap_or_default();
            if theirs.as_deref() != Some(hash.as_str()) {
                return Err(Error::conflict(
                    op,
                    format!("floating IP {} ({id})", spec.name),
                    "a floating IP of this name exists with a different spec: release it or choose another name",
                ));
            }
            return record(a).ok_or_else(|| {
                Error::transient(op, format!("floating IP {id} has no address yet"))
            });
        }
        let mut all = tags::create_tags(&spec.name, &spec.tags, &hash);
        all.insert(POOL_TAG.into(), pool.to_string());
        let mut req = self
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tags::tag_spec(ResourceType::ElasticIp, &all));
        if pool != AMAZON_POOL {
            req = req.public_ipv4_pool(pool);
        }
        let out = req.send().await.map_err(sdk(op, &resource))?;
        let id = out
            .allocation_id()
            .ok_or_else(|| Error::transient(op, "AllocateAddress answered no allocation id"))?;
        let address = out
            .public_ip()
            .and_then(|a| a.parse::<IpAddr>().ok())
            .ok_or_else(|| Error::transient(op, "AllocateAddress answered no address"))?;
        Ok(FloatingIp {
            id: id.to_string(),
            name: spec.name.clone(),
            address,
            pool: pool.to_string(),
            instance_id: None,
            tags: spec.tags.clone(),
        })
    }

    async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        self.address_record(Operation::GetFloatingIp, id).await
    }

    async fn list_floating_ips(&self, tf: &TagFilter) -> Result<Vec<FloatingIp>> {
        let op = Operation::ListFloatingIps;
        // DescribeAddresses has no pagination: one call answers every address.
        let out = self
            .ec2
            .describe_addresses()
            .set_filters(Some(tags::ec2_filters(tf)))
            .filters(filter("domain", ["vpc"]))
            .send()
            .await
            .map_err(sdk(op, "floating IPs"))?;
        Ok(out
            .addresses()
            .iter()
            .filter_map(record)
            .filter(|f| tf.matches(&f.tags))
            .collect())
    }

    async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp> {
        let op = Operation::AssociateFloatingIp;
        let resource = format!("floating IP {id}");
        let a = self.address(op, id).await?;
        let mut f = record(&a)
            .ok_or_else(|| Error::transient(op, format!("floating IP {id} has no address yet")))?;
        if f.instance_id.as_deref() == Some(instance_id) {
            return Ok(f);
        }
        // moto associates with terminated instances; AWS refuses. Check it is live.
        let inst = self.ec2_instance(op, instance_id).await?;
        if crate::instances::record(&inst)
            .is_some_and(|i| i.state == provider_core::InstanceState::Pending)
        {
            return Err(Error::transient(
                op,
                format!(
                    "instance {instance_id} is still starting: its network interface is not ready"
                ),
            ));
        }
        // Moving: disassociate from the old instance first, so its record drops the
        // address (moto keeps it on the old instance after a reassociation).
        if let Some(assoc) = a.association_id().filter(|s| !s.is_empty()) {
            if let Err(e) = self
                .ec2
                .disassociate_address()
                .association_id(assoc)
                .send()
                .await
            {
                let e = AwsError::from_sdk(e);
                if !e.is_not_found() {
                    return Err(e.classify(op, &resource));
                }
            }
        }
        // The error code tells a missing instance from a missing address.
        let res = self
            .ec2
            .associate_address()
            .allocation_id(id)
            .instance_id(instance_id)
            .allow_reassociation(true)
            .send()
            .await;
        if let Err(e) = res {
            let e = AwsError::from_sdk(e);
            return Err(if e.code.starts_with("InvalidInstanceID") {
                Error::not_found(op, format!("instance {instance_id}"))
            } else {
                e.classify(op, &resource)
            });
        }
        f.instance_id = Some(instance_id.to_string());
        Ok(f)
    }

    async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        let op = Operation::DisassociateFloatingIp;
        let a = self.address(op, id).await?;
        let mut f = record(&a)
            .ok_or_else(|| Error::transient(op, format!("floating IP {id} has no address yet")))?;
        if let Some(assoc) = a.association_id().filter(|s| !s.is_empty()) {
            if let Err(e) = self
                .ec2
                .disassociate_address()
                .association_id(assoc)
                .send()
                .await
            {
                let e = AwsError::from_sdk(e);
                if !e.is_not_found() {
                    return Err(e.classify(op, &format!("floating IP {id}")));
                }
            }
        }
        f.instance_id = None;
        Ok(f)
    }

    async fn release_floating_ip(&self, id: &str) -> Result<()> {
        let op = Operation::ReleaseFloatingIp;
        let resource = format!("floating IP {id}");
        let a = match self.address(op, id).await {
            Err(Error::NotFound { .. }) => return Ok(()),
            r => r?,
        };
        // EC2 refuses too (InvalidIPAddress.InUse); checked here so the answer does not
        // depend on the endpoint's version of that rule.
        if a.association_id().is_some_and(|s| !s.is_empty()) {
            let to = a.instance_id().or(a.network_interface_id()).unwrap_or("?");
            let why = format!("associated with {to}: disassociate it first");
            return Err(Error::conflict(op, resource, why));
        }
        if let Err(e) = self.ec2.release_address().allocation_id(id).send().await {
            let e = AwsError::from_sdk(e);
            if e.is_not_found() {
                return Ok(());
            }
            return Err(e.classify(op, &resource));
        }
        self.config
            .poller
            .until(
                op,
                &resource,
                "released",
                self.config.timeouts.delete,
                || async {
                    match self.address(op, id).await {
                        Err(Error::NotFound { .. }) => Ok(Poll::Ready(())),
                        Err(e) => Err(e),
                        Ok(_) => Ok(Poll::Pending("allocated".into())),
                    }
                },
            )
            .await
    }
}
