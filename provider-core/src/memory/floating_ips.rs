//! Floating IPs: addresses from the configured pools, associated with one instance at a time.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use async_trait::async_trait;

use super::state::*;
use super::MemoryProvider;
use crate::model::*;
use crate::{Error, FloatingIps, Operation, Result};

#[async_trait]
impl FloatingIps for MemoryProvider {
    async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp> {
        let op = Operation::AllocateFloatingIp;
        spec.validate()?;
        if !self.config.floating_ip_pools.contains(&spec.pool) {
            return Err(Error::invalid(
                op,
                "spec.pool",
                format!(
                    "unknown floating IP pool {:?}: use one of {}",
                    spec.pool,
                    self.config.floating_ip_pools.join(", ")
                ),
            ));
        }
        let mut st = self.lock();
        if let Some(r) = st
            .fips
            .values()
            .find(|r| r.spec.name == spec.name && r.deleting.is_none())
        {
            return if r.spec == *spec {
                Ok(r.fip.clone())
            } else {
                Err(Error::conflict(
                    op,
                    format!("floating IP {} ({})", spec.name, r.fip.id),
                    "a floating IP of this name exists with a different spec: release it or choose another name",
                ))
            };
        }
        let used: BTreeSet<IpAddr> = st.fips.values().map(|f| f.fip.address).collect();
        let address = (1..=u16::MAX)
            .map(|n| IpAddr::V4(Ipv4Addr::new(203, 0, (n >> 8) as u8, (n & 0xff) as u8)))
            .find(|a| !used.contains(a))
            .ok_or_else(|| Error::QuotaExceeded {
                operation: op,
                message: format!("pool {} has no free address", spec.pool),
            })?;
        let id = self.new_id("fip");
        let fip = FloatingIp {
            id: id.clone(),
            name: spec.name.clone(),
            address,
            pool: spec.pool.clone(),
            instance_id: None,
            tags: spec.tags.clone(),
        };
        st.fips.insert(
            id,
            FipRec {
                spec: spec.clone(),
                fip: fip.clone(),
                deleting: None,
            },
        );
        Ok(fip)
    }

    async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        let st = self.lock();
        st.fips
            .get(id)
            .map(|r| r.fip.clone())
            .ok_or_else(|| Error::not_found(Operation::GetFloatingIp, format!("floating IP {id}")))
    }

    async fn list_floating_ips(&self, filter: &TagFilter) -> Result<Vec<FloatingIp>> {
        let st = self.lock();
        Ok(self
            .paginate(&st.fips, |r| filter.matches(&r.fip.tags))
            .into_iter()
            .map(|r| r.fip)
            .collect())
    }

    async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp> {
        let op = Operation::AssociateFloatingIp;
        let mut st = self.lock();
        match st.instances.get(instance_id).map(instance_state) {
            None => return Err(Error::not_found(op, format!("instance {instance_id}"))),
            // The instance's port does not exist yet: a cloud answers "retry".
            Some(InstanceState::Pending) => {
                return Err(Error::transient(
                    op,
                    format!("instance {instance_id} has no port yet"),
                ))
            }
            Some(InstanceState::Deleting) => {
                return Err(Error::conflict(
                    op,
                    format!("instance {instance_id}"),
                    "the instance is being deleted",
                ))
            }
            Some(_) => {}
        }
        let r = st
            .fips
            .get_mut(id)
            .ok_or_else(|| Error::not_found(op, format!("floating IP {id}")))?;
        r.fip.instance_id = Some(instance_id.to_string());
        Ok(r.fip.clone())
    }

    async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        let op = Operation::DisassociateFloatingIp;
        let mut st = self.lock();
        let r = st
            .fips
            .get_mut(id)
            .ok_or_else(|| Error::not_found(op, format!("floating IP {id}")))?;
        r.fip.instance_id = None;
        Ok(r.fip.clone())
    }

    async fn release_floating_ip(&self, id: &str) -> Result<()> {
        let op = Operation::ReleaseFloatingIp;
        {
            let mut st = self.lock();
            let until = self.until();
            match st.fips.get_mut(id) {
                None => return Ok(()),
                Some(r) => {
                    if let Some(i) = &r.fip.instance_id {
                        let why = format!("associated with instance {i}: disassociate it first");
                        return Err(Error::conflict(op, format!("floating IP {id}"), why));
                    }
                    r.deleting.get_or_insert(until);
                }
            }
        }
        self.wait_gone(op, format!("floating IP {id}"), |st| {
            !st.fips.contains_key(id)
        })
        .await
    }
}
