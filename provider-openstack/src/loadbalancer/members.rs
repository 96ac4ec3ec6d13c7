//! Member changes: one at a time per load balancer, between two ACTIVE states, and
//! taking a deleted instance out of every pool.

use provider_core::model::*;
use provider_core::{Error, Operation, Result};
use serde_json::json;

use super::{is_duplicate, is_immutable, OctaviaLb};
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
        // One list for the deletes started together.
        let lbs: Vec<OctaviaLb> = self
            .watches
            .lbs_listed
            .get(id, |_| {
                self.api.list(
                    op,
                    self.scoped(Call::get(Service::LoadBalancer, "lbaas/loadbalancers")),
                    "loadbalancers",
                )
            })
            .await?;
        for lb in lbs
            .iter()
            .filter(|lb| lb.provisioning_status != "PENDING_DELETE")
        {
            for l in self.listeners(op, &lb.id).await? {
                let Some(pool) = &l.default_pool_id else {
                    continue;
                };
                for m in self
                    .members(op, pool)
                    .await?
                    .iter()
                    .filter(|m| m.name == id)
                {
                    let member = MemberSpec::new(id, m.protocol_port);
                    self.change_member(&lb.id, l.protocol_port, &member, false)
                        .await?;
                }
            }
        }
        Ok(())
    }
}
