//! Load balancers: members changed the Octavia way (one change at a time, waiting for ACTIVE between them).

use std::sync::atomic::Ordering;

use async_trait::async_trait;

use super::state::*;
use super::MemoryProvider;
use crate::model::*;
use crate::wait::Poll;
use crate::{Error, LoadBalancers, Operation, Result};

impl MemoryProvider {
    pub(super) fn lb_record(&self, st: &State, r: &LbRec) -> LoadBalancer {
        let state = if r.deleting.is_some() {
            LoadBalancerState::Deleting
        } else if r.failed {
            LoadBalancerState::Error
        } else if r.busy.passed() {
            LoadBalancerState::Active
        } else {
            LoadBalancerState::Pending
        };
        let listeners = r
            .spec
            .listeners
            .iter()
            .map(|l| Listener {
                protocol: l.protocol,
                port: l.port,
                pool: Pool {
                    health_check: l.health_check.clone(),
                    members: r
                        .members
                        .get(&l.port)
                        .into_iter()
                        .flatten()
                        .map(|m| Member {
                            instance_id: m.instance_id.clone(),
                            port: m.port,
                            health: match st.instances.get(&m.instance_id).map(instance_state) {
                                Some(InstanceState::Running) => MemberHealth::Healthy,
                                _ => MemberHealth::Unhealthy,
                            },
                        })
                        .collect(),
                },
            })
            .collect();
        LoadBalancer {
            id: r.id.clone(),
            name: r.spec.name.clone(),
            state,
            address: Some(r.address.clone()),
            security_groups: r.spec.security_groups.clone(),
            listeners,
            tags: r.tags.clone(),
        }
    }

    pub(super) fn get_lb_now(&self, op: Operation, id: &str) -> Result<LoadBalancer> {
        let st = self.lock();
        let r = st
            .lbs
            .get(id)
            .ok_or_else(|| Error::not_found(op, format!("load balancer {id}")))?;
        Ok(self.lb_record(&st, r))
    }

    /// Waits until the LB accepts changes (Octavia: immutable while PENDING_*).
    pub(super) async fn wait_lb_active(&self, op: Operation, id: &str) -> Result<LoadBalancer> {
        self.config
            .poller
            .until(
                op,
                &format!("load balancer {id}"),
                "active",
                self.config.timeouts.load_balancer,
                || async {
                    let lb = self.get_lb_now(op, id)?;
                    match lb.state {
                        LoadBalancerState::Active => Ok(Poll::Ready(lb)),
                        LoadBalancerState::Error => Err(Error::api(
                            op,
                            None,
                            "ERROR",
                            format!("load balancer {id} is in ERROR: delete and recreate it"),
                        )),
                        s => Ok(Poll::Pending(format!("{s:?}"))),
                    }
                },
            )
            .await
    }

    /// Adds or removes one member, serialised the Octavia way: wait for ACTIVE, change,
    /// wait for ACTIVE again.
    async fn change_members(
        &self,
        op: Operation,
        lb_id: &str,
        port: u16,
        member: &MemberSpec,
        add: bool,
    ) -> Result<LoadBalancer> {
        member.validate(op)?;
        loop {
            self.wait_lb_active(op, lb_id).await?;
            match self.apply_member_change(op, lb_id, port, member, add)? {
                // Another change slipped in between the wait and the lock: wait again.
                MemberChange::Busy => continue,
                MemberChange::Unchanged => return self.get_lb_now(op, lb_id),
                MemberChange::Changed => return self.wait_lb_active(op, lb_id).await,
            }
        }
    }

    fn apply_member_change(
        &self,
        op: Operation,
        lb_id: &str,
        port: u16,
        member: &MemberSpec,
        add: bool,
    ) -> Result<MemberChange> {
        let mut st = self.lock();
        if add && !st.instances.contains_key(&member.instance_id) {
            return Err(Error::invalid(
                op,
                "member.instance_id",
                format!("no instance with id {:?}", member.instance_id),
            ));
        }
        let until = self.until();
        let r = st
            .lbs
            .get_mut(lb_id)
            .ok_or_else(|| Error::not_found(op, format!("load balancer {lb_id}")))?;
        if !r.busy.passed() {
            return Ok(MemberChange::Busy);
        }
        let members = r.members.get_mut(&port).ok_or_else(|| {
            Error::invalid(
                op,
                "listener_port",
                format!("load balancer {lb_id} has no listener on port {port}"),
            )
        })?;
        let present = members.contains(member);
        if add && !present {
            members.push(member.clone());
        } else if !add && present {
            members.retain(|m| m != member);
        } else {
            return Ok(MemberChange::Unchanged);
        }
        r.busy = until;
        Ok(MemberChange::Changed)
    }
}

#[async_trait]
impl LoadBalancers for MemoryProvider {
    async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        let op = Operation::CreateLoadBalancer;
        spec.validate()?;
        let id = {
            let mut st = self.lock();
            for (i, g) in spec.security_groups.iter().enumerate() {
                if !st.groups.contains_key(g) {
                    return Err(Error::invalid(
                        op,
                        format!("spec.security_groups[{i}]"),
                        format!("no security group with id {g:?}: create it first"),
                    ));
                }
            }
            for (i, l) in spec.listeners.iter().enumerate() {
                for (j, m) in l.members.iter().enumerate() {
                    if !st.instances.contains_key(&m.instance_id) {
                        return Err(Error::invalid(
                            op,
                            format!("spec.listeners[{i}].members[{j}].instance_id"),
                            format!("no instance with id {:?}", m.instance_id),
                        ));
                    }
                }
            }
            match st
                .lbs
                .values()
                .find(|r| r.spec.name == spec.name && r.deleting.is_none())
            {
                Some(r) if r.spec == *spec => r.id.clone(),
                Some(r) => {
                    return Err(Error::conflict(
                        op,
                        format!("load balancer {} ({})", spec.name, r.id),
                        "a load balancer of this name exists with a different spec: delete it or choose another name",
                    ))
                }
                None => {
                    let id = self.new_id("lb");
                    let n = self.next_id.load(Ordering::Relaxed);
                    st.lbs.insert(
                        id.clone(),
                        LbRec {
                            spec: spec.clone(),
                            id: id.clone(),
                            address: format!("198.51.{}.{}", (n >> 8) & 0xff, n & 0xff),
                            members: spec
                                .listeners
                                .iter()
                                .map(|l| (l.port, l.members.clone()))
                                .collect(),
                            busy: self.until(),
                            deleting: None,
                            failed: false,
                            tags: spec.tags.clone(),
                        },
                    );
                    id
                }
            }
        };
        self.wait_lb_active(op, &id).await
    }

    async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer> {
        self.get_lb_now(Operation::GetLoadBalancer, id)
    }

    async fn list_load_balancers(&self, filter: &TagFilter) -> Result<Vec<LoadBalancer>> {
        let st = self.lock();
        Ok(self
            .paginate(&st.lbs, |r| filter.matches(&r.tags))
            .iter()
            .map(|r| self.lb_record(&st, r))
            .collect())
    }

    async fn add_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.change_members(
            Operation::AddLoadBalancerMember,
            lb_id,
            listener_port,
            member,
            true,
        )
        .await
    }

    async fn remove_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.change_members(
            Operation::RemoveLoadBalancerMember,
            lb_id,
            listener_port,
            member,
            false,
        )
        .await
    }

    async fn delete_load_balancer(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteLoadBalancer;
        {
            let mut st = self.lock();
            let until = self.until();
            match st.lbs.get_mut(id) {
                None => return Ok(()),
                Some(r) => {
                    r.deleting.get_or_insert(until);
                }
            }
        }
        self.wait_gone(op, format!("load balancer {id}"), |st| {
            !st.lbs.contains_key(id)
        })
        .await
    }
}

enum MemberChange {
    Busy,
    Unchanged,
    Changed,
}
