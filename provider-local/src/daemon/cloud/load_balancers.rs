//! Load balancers: TCP proxies on their own loopback address, with health checks and round robin.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use provider_core::{
    Error, Listener, LoadBalancer, LoadBalancerSpec, LoadBalancerState, Member, MemberHealth,
    MemberSpec, Operation, Pool, Result, TagFilter,
};

use super::{db, lock, new_id, Cloud};
use crate::daemon::rows::{GroupRow, InstanceRow, LbRow};
use crate::lb::{LbRuntime, ListenerPlan};
use crate::protocol::Page;
use crate::store::Table;

impl Cloud {
    /// Starts a load balancer's listeners on a fresh address.
    pub async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        let op = Operation::CreateLoadBalancer;
        spec.validate()?;
        let _g = self.changes.lock().await;
        for (i, g) in spec.security_groups.iter().enumerate() {
            if self
                .store
                .get::<GroupRow>(Table::SecurityGroups, g)
                .map_err(db(op))?
                .is_none()
            {
                return Err(Error::invalid(
                    op,
                    format!("spec.security_groups[{i}]"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        for (i, l) in spec.listeners.iter().enumerate() {
            for (j, m) in l.members.iter().enumerate() {
                if self
                    .store
                    .get::<InstanceRow>(Table::Instances, &m.instance_id)
                    .map_err(db(op))?
                    .is_none()
                {
                    return Err(Error::invalid(
                        op,
                        format!("spec.listeners[{i}].members[{j}].instance_id"),
                        format!("no instance with id {:?}", m.instance_id),
                    ));
                }
            }
        }
        if let Some(r) = self.find_by_name::<LbRow>(op, Table::LoadBalancers, &spec.name)? {
            return if r.spec == *spec {
                Ok(self.lb_view(r))
            } else {
                Err(Error::conflict(op, format!("load balancer {} ({})", spec.name, r.record.id), "a load balancer of this name exists with a different spec: delete it or choose another name"))
            };
        }
        let id = new_id("lb");
        let record = LoadBalancer {
            id: id.clone(),
            name: spec.name.clone(),
            state: LoadBalancerState::Active,
            address: None,
            security_groups: spec.security_groups.clone(),
            listeners: spec
                .listeners
                .iter()
                .map(|l| Listener {
                    protocol: l.protocol,
                    port: l.port,
                    pool: Pool {
                        health_check: l.health_check.clone(),
                        members: dedup_members(&l.members)
                            .into_iter()
                            .map(|m| Member {
                                instance_id: m.instance_id,
                                port: m.port,
                                health: MemberHealth::Unknown,
                            })
                            .collect(),
                    },
                })
                .collect(),
            tags: spec.tags.clone(),
        };
        let plans = plans_of(&record);
        let mut used: HashSet<IpAddr> = self
            .store
            .all::<LbRow>(Table::LoadBalancers)
            .map_err(db(op))?
            .into_iter()
            .map(|l| l.address)
            .collect();
        let mut started = None;
        for _ in 0..20 {
            let Some(addr) = self.pick_address(&self.cfg.load_balancer_network, &used, None) else {
                break;
            };
            used.insert(addr);
            match LbRuntime::start(&id, addr, &plans, &self.view) {
                Ok(rt) => {
                    started = Some((addr, rt));
                    break;
                }
                Err(e) => tracing::info!(%addr, "load balancer address busy, trying another: {e}"),
            }
        }
        let Some((address, rt)) = started else {
            return Err(Error::QuotaExceeded {
                operation: op,
                message: format!("no free address in {}", self.cfg.load_balancer_network),
            });
        };
        let mut record = record;
        record.address = Some(address.to_string());
        let row = LbRow {
            spec: spec.clone(),
            record,
            address,
        };
        self.store
            .put(Table::LoadBalancers, &id, &row)
            .map_err(db(op))?;
        lock(&self.lbs).insert(id.clone(), rt);
        self.refresh_view(op)?;
        tracing::info!(lb = %id, %address, "load balancer started");
        Ok(self.lb_view(row))
    }

    /// Gets a load balancer with its members' health.
    pub async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer> {
        let op = Operation::GetLoadBalancer;
        Ok(self.lb_view(self.get_row(op, Table::LoadBalancers, "load balancer", id)?))
    }

    /// One page of load balancers.
    pub async fn list_load_balancers(
        &self,
        filter: &TagFilter,
        after: Option<&str>,
    ) -> Result<Page<LoadBalancer>> {
        self.page(
            Operation::ListLoadBalancers,
            Table::LoadBalancers,
            filter,
            after,
            |c, r: LbRow| c.lb_view(r),
        )
    }

    /// Adds a member to the pool of the listener on `port`.
    pub async fn add_load_balancer_member(
        &self,
        lb_id: &str,
        port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.change_member(lb_id, port, member, true).await
    }

    /// Removes a member after draining its open connections.
    pub async fn remove_load_balancer_member(
        &self,
        lb_id: &str,
        port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.change_member(lb_id, port, member, false).await
    }

    /// Adds a member, or removes one after draining it.
    pub(super) async fn change_member(
        &self,
        lb_id: &str,
        port: u16,
        member: &MemberSpec,
        add: bool,
    ) -> Result<LoadBalancer> {
        let op = if add {
            Operation::AddLoadBalancerMember
        } else {
            Operation::RemoveLoadBalancerMember
        };
        member.validate(op)?;
        let drained = {
            let _g = self.changes.lock().await;
            let mut row: LbRow = self.get_row(op, Table::LoadBalancers, "load balancer", lb_id)?;
            if add
                && self
                    .store
                    .get::<InstanceRow>(Table::Instances, &member.instance_id)
                    .map_err(db(op))?
                    .is_none()
            {
                return Err(Error::invalid(
                    op,
                    "member.instance_id",
                    format!("no instance with id {:?}", member.instance_id),
                ));
            }
            let listener = row
                .record
                .listeners
                .iter_mut()
                .find(|l| l.port == port)
                .ok_or_else(|| {
                    Error::invalid(
                        op,
                        "listener_port",
                        format!("load balancer {lb_id} has no listener on port {port}"),
                    )
                })?;
            let present = listener
                .pool
                .members
                .iter()
                .any(|m| m.instance_id == member.instance_id && m.port == member.port);
            if add && !present {
                listener.pool.members.push(Member {
                    instance_id: member.instance_id.clone(),
                    port: member.port,
                    health: MemberHealth::Unknown,
                });
            } else if !add && present {
                listener
                    .pool
                    .members
                    .retain(|m| !(m.instance_id == member.instance_id && m.port == member.port));
            }
            if add != present {
                self.store
                    .put(Table::LoadBalancers, lb_id, &row)
                    .map_err(db(op))?;
            }
            let lbs = lock(&self.lbs);
            match lbs.get(lb_id) {
                Some(rt) if add => {
                    rt.add_member(port, member);
                    None
                }
                Some(rt) => Some(rt.remove_member(port, member, self.cfg.drain_timeout)),
                None => None,
            }
        };
        // Drain outside the lock: other calls go on while connections finish.
        if let Some(d) = drained {
            d.await;
        }
        self.get_load_balancer(lb_id).await
    }

    /// Takes instance `id` out of every pool it is a member of (the contract's answer
    /// for a member whose instance goes) and returns the drains of its open
    /// connections, to await once `changes` is released. Called with `changes` held.
    pub(super) fn leave_pools(
        &self,
        op: Operation,
        id: &str,
    ) -> Result<Vec<impl std::future::Future<Output = ()> + Send + 'static>> {
        let mut drains = Vec::new();
        for mut row in self
            .store
            .all::<LbRow>(Table::LoadBalancers)
            .map_err(db(op))?
        {
            let mut gone = Vec::new();
            for l in &mut row.record.listeners {
                for m in l.pool.members.iter().filter(|m| m.instance_id == id) {
                    gone.push((l.port, MemberSpec::new(id, m.port)));
                }
                l.pool.members.retain(|m| m.instance_id != id);
            }
            if gone.is_empty() {
                continue;
            }
            let lb_id = row.record.id.clone();
            self.store
                .put(Table::LoadBalancers, &lb_id, &row)
                .map_err(db(op))?;
            if let Some(rt) = lock(&self.lbs).get(&lb_id) {
                for (port, member) in &gone {
                    drains.push(rt.remove_member(*port, member, self.cfg.drain_timeout));
                }
            }
        }
        Ok(drains)
    }

    /// Stops the proxies and removes the load balancer.
    pub async fn delete_load_balancer(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteLoadBalancer;
        let _g = self.changes.lock().await;
        lock(&self.lbs).remove(id);
        self.store
            .delete(Table::LoadBalancers, id)
            .map_err(db(op))?;
        self.refresh_view(op)
    }
}

fn dedup_members(ms: &[MemberSpec]) -> Vec<MemberSpec> {
    let mut seen = BTreeSet::new();
    ms.iter()
        .filter(|m| seen.insert((m.instance_id.clone(), m.port)))
        .cloned()
        .collect()
}

pub(super) fn plans_of(lb: &LoadBalancer) -> Vec<ListenerPlan> {
    lb.listeners
        .iter()
        .map(|l| ListenerPlan {
            port: l.port,
            health_check: l.pool.health_check.clone(),
            members: l
                .pool
                .members
                .iter()
                .map(|m| MemberSpec::new(m.instance_id.clone(), m.port))
                .collect(),
        })
        .collect()
}
