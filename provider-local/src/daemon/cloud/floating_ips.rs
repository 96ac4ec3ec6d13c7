//! Floating IPs: loopback addresses whose forwarders carry the ports the instance's groups open.

use std::collections::HashSet;
use std::net::IpAddr;

use provider_core::{Error, FloatingIp, FloatingIpSpec, Operation, Result, TagFilter};

use super::{db, new_id, Cloud};
use crate::daemon::rows::{FipRow, InstanceRow};
use crate::protocol::Page;
use crate::store::Table;

impl Cloud {
    /// Allocates a floating IP from the pool.
    pub async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp> {
        let op = Operation::AllocateFloatingIp;
        spec.validate()?;
        if spec.pool != self.cfg.floating_ip_pool {
            return Err(Error::invalid(
                op,
                "spec.pool",
                format!(
                    "unknown floating IP pool {:?}: use {:?}",
                    spec.pool, self.cfg.floating_ip_pool
                ),
            ));
        }
        let _g = self.changes.lock().await;
        if let Some(r) = self.find_by_name::<FipRow>(op, Table::FloatingIps, &spec.name)? {
            return if r.spec == *spec {
                Ok(r.record)
            } else {
                Err(Error::conflict(op, format!("floating IP {} ({})", spec.name, r.record.id), "a floating IP of this name exists with a different spec: release it or choose another name"))
            };
        }
        let used: HashSet<IpAddr> = self
            .store
            .all::<FipRow>(Table::FloatingIps)
            .map_err(db(op))?
            .into_iter()
            .map(|f| f.record.address)
            .collect();
        let address = self
            .pick_address(&self.cfg.floating_ip_network, &used, None)
            .ok_or_else(|| Error::QuotaExceeded {
                operation: op,
                message: format!(
                    "pool {} ({}) has no free address",
                    spec.pool, self.cfg.floating_ip_network
                ),
            })?;
        let record = FloatingIp {
            id: new_id("fip"),
            name: spec.name.clone(),
            address,
            pool: spec.pool.clone(),
            instance_id: None,
            tags: spec.tags.clone(),
        };
        self.store
            .put(
                Table::FloatingIps,
                &record.id,
                &FipRow {
                    spec: spec.clone(),
                    record: record.clone(),
                },
            )
            .map_err(db(op))?;
        Ok(record)
    }

    /// Gets a floating IP.
    pub async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        Ok(self
            .get_row::<FipRow>(
                Operation::GetFloatingIp,
                Table::FloatingIps,
                "floating IP",
                id,
            )?
            .record)
    }

    /// One page of floating IPs.
    pub async fn list_floating_ips(
        &self,
        filter: &TagFilter,
        after: Option<&str>,
    ) -> Result<Page<FloatingIp>> {
        self.page(
            Operation::ListFloatingIps,
            Table::FloatingIps,
            filter,
            after,
            |_, r: FipRow| r.record,
        )
    }

    /// Associates a floating IP with an instance (moving it from another).
    pub async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp> {
        self.set_floating_ip_target(id, Some(instance_id)).await
    }

    /// Disassociates a floating IP; succeeds when it is not associated.
    pub async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        self.set_floating_ip_target(id, None).await
    }

    /// Associates (or moves, or with `None` disassociates) a floating IP.
    pub(super) async fn set_floating_ip_target(
        &self,
        id: &str,
        instance_id: Option<&str>,
    ) -> Result<FloatingIp> {
        let op = if instance_id.is_some() {
            Operation::AssociateFloatingIp
        } else {
            Operation::DisassociateFloatingIp
        };
        let _g = self.changes.lock().await;
        if let Some(iid) = instance_id {
            let _: InstanceRow = self.get_row(op, Table::Instances, "instance", iid)?;
        }
        let mut row: FipRow = self.get_row(op, Table::FloatingIps, "floating IP", id)?;
        if row.record.instance_id.as_deref() == instance_id {
            return Ok(row.record);
        }
        // One floating IP per instance, as on the clouds: a previous one is released from it.
        if let Some(iid) = instance_id {
            for mut other in self
                .store
                .all::<FipRow>(Table::FloatingIps)
                .map_err(db(op))?
            {
                if other.record.id != id && other.record.instance_id.as_deref() == Some(iid) {
                    other.record.instance_id = None;
                    self.store
                        .put(Table::FloatingIps, &other.record.id.clone(), &other)
                        .map_err(db(op))?;
                }
            }
        }
        row.record.instance_id = instance_id.map(str::to_string);
        self.store
            .put(Table::FloatingIps, id, &row)
            .map_err(db(op))?;
        self.refresh_view(op)?;
        Ok(row.record)
    }

    /// Releases a floating IP; an associated one is `Conflict`.
    pub async fn release_floating_ip(&self, id: &str) -> Result<()> {
        let op = Operation::ReleaseFloatingIp;
        let _g = self.changes.lock().await;
        let row = match self.get_row::<FipRow>(op, Table::FloatingIps, "floating IP", id) {
            Err(Error::NotFound { .. }) => return Ok(()),
            r => r?,
        };
        if let Some(i) = row.record.instance_id {
            let why = format!("associated with instance {i}: disassociate it first");
            return Err(Error::conflict(op, format!("floating IP {id}"), why));
        }
        self.store.delete(Table::FloatingIps, id).map_err(db(op))?;
        self.refresh_view(op)
    }
}
