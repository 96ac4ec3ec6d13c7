//! Member changes: one at a time per load balancer, between two ACTIVE states, and
//! taking a deleted instance out of every pool.

use provider_core::model::*;
use provider_core::{Error, Operation, Result};
use serde_json::json;

use super::{is_duplicate, is_immutable, OctaviaLb, OctaviaListener};
use crate::client::{Call, Service};
use crate::OpenStackProvider;

impl OpenStackProvider {
    /// Adds or removes one member, serialised per LB and between two ACTIVE states.
    pub(crate) async fn change_member(
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
        let lock = self.lb_lock(lb_id);
        let _guard = lock.lock().await;
        self.wait_lb_active(op, lb_id).await?;
        let listener = self
            .listeners(op, lb_id)
            .await?
            .into_iter()
            .find(|l| l.protocol_port == port)
            .ok_or_else(|| {
                Error::invalid(
                    op,
                    "listener_port",
                    format!("load balancer {lb_id} has no listener on port {port}"),
                )
            })?;
        let pool_id = listener.default_pool_id.ok_or_else(|| {
            Error::invalid(
                op,
                "listener_port",
                format!("the listener on port {port} has no pool"),
            )
        })?;
        let present = self
            .members(op, &pool_id)
            .await?
            .into_iter()
            .find(|m| m.name == member.instance_id && m.protocol_port == member.port);
        let changed = match (add, present) {
            (true, Some(_)) | (false, None) => false,
            (true, None) => {
                let hc = self
                    .get_load_balancer_impl(op, lb_id)
                    .await?
                    .listener(port)
                    .map(|l| l.pool.health_check.clone())
                    .unwrap_or_default();
                let addr = self
                    .member_address(op, "member.instance_id", &member.instance_id)
                    .await?;
                let body = json!({ "member": Self::member_body(member, addr, &hc) });
                match self
                    .api
                    .send(
                        op,
                        Call::post(
                            Service::LoadBalancer,
                            format!("lbaas/pools/{pool_id}/members"),
                            &body,
                        ),
                    )
                    .await
                {
                    Ok(_) => true,
                    // Retried after a lost answer: the member is there.
                    Err(Error::Conflict { message, .. }) if is_duplicate(&message) => true,
                    Err(Error::Conflict { message, .. }) if is_immutable(&message) => {
                        return Err(Error::transient(
                            op,
                            format!("load balancer {lb_id} is busy: {message}"),
                        ))
                    }
                    Err(e) => return Err(e),
                }
            }
            (false, Some(m)) => {
                match self
                    .api
                    .send(
                        op,
                        Call::delete(
                            Service::LoadBalancer,
                            format!("lbaas/pools/{pool_id}/members/{}", m.id),
                        ),
                    )
                    .await
                {
                    Ok(_) | Err(Error::NotFound { .. }) => true,
                    Err(Error::Conflict { message, .. }) if is_immutable(&message) => {
                        return Err(Error::transient(
                            op,
                            format!("load balancer {lb_id} is busy: {message}"),
                        ))
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let lb = if changed {
            self.wait_lb_active(op, lb_id).await?
        } else {
            self.octavia_lb(op, lb_id).await?
        };
        self.lb_record(op, &lb).await
    }

    /// Takes instance `id` out of every pool it is a member of (members are named after
    /// their instance): Octavia keeps a member whose server is gone, in ERROR, and the
    /// contract's answer for a deleted member is that it leaves its pools.
    pub(crate) async fn leave_pools(&self, op: Operation, id: &str) -> Result<()> {
        // One scan of the pools for the deletes started together.
        let pools = self
            .watches
            .pools_scanned
            .get(id, |_| self.scan_pools(op))
            .await?;
        for pool in &pools {
            for (name, port) in &pool.members {
                if name == id {
                    let member = MemberSpec::new(id, *port);
                    self.change_member(&pool.lb_id, pool.listener_port, &member, false)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Every pool of the project's load balancers (not being deleted) with its members:
    /// the load balancers and their listeners one list each, the members one per pool.
    async fn scan_pools(&self, op: Operation) -> Result<Vec<PoolMembers>> {
        let lbs: Vec<OctaviaLb> = self
            .api
            .list(
                op,
                self.scoped(Call::get(Service::LoadBalancer, "lbaas/loadbalancers")),
                "loadbalancers",
            )
            .await?;
        let live: Vec<&str> = lbs
            .iter()
            .filter(|lb| {
                !matches!(
                    lb.provisioning_status.as_str(),
                    "PENDING_DELETE" | "DELETED"
                )
            })
            .map(|lb| lb.id.as_str())
            .collect();
        let listeners: Vec<OctaviaListener> = match live.as_slice() {
            [] => return Ok(Vec::new()),
            [one] => self.listeners(op, one).await?,
            _ => {
                let call = self.scoped(Call::get(Service::LoadBalancer, "lbaas/listeners"));
                self.api.list(op, call, "listeners").await?
            }
        };
        let mut out = Vec::new();
        for l in &listeners {
            let lb_id = match live.as_slice() {
                [one] => Some(*one),
                _ => l
                    .loadbalancers
                    .iter()
                    .map(|r| r.id.as_str())
                    .find(|i| live.contains(i)),
            };
            let (Some(lb_id), Some(pool)) = (lb_id, &l.default_pool_id) else {
                continue;
            };
            let members = match self.members(op, pool).await {
                // Deleted since the listeners were read.
                Err(Error::NotFound { .. }) => Vec::new(),
                r => r?,
            };
            out.push(PoolMembers {
                lb_id: lb_id.to_string(),
                listener_port: l.protocol_port,
                members: members
                    .into_iter()
                    .map(|m| (m.name, m.protocol_port))
                    .collect(),
            });
        }
        Ok(out)
    }
}

/// A listener's pool and its members (name = instance id, port).
#[derive(Debug, Clone)]
pub(crate) struct PoolMembers {
    lb_id: String,
    listener_port: u16,
    members: Vec<(String, u16)>,
}
