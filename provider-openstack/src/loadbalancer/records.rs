//! Load balancer records: listeners, pools, members and health checks read for many
//! load balancers at once (one list per kind, one member list per pool), and the record
//! of a load balancer just created, from its spec and one status read.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use provider_core::model::*;
use provider_core::{Error, Operation, Result};
use serde::Deserialize;
use serde_json::Value;

use super::{lb_state, monitor_body, OctaviaLb, OctaviaListener, OctaviaMember, OctaviaMonitor};
use crate::client::{Call, Service};
use crate::network::NeutronPort;
use crate::tags;
use crate::OpenStackProvider;

/// `{"id": ...}` in Octavia's answers.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct IdRef {
    pub(super) id: String,
}

/// The health check Octavia keeps for a monitor (whole seconds, thresholds clamped),
/// with the members' `monitor_port`.
fn health_check(m: &OctaviaMonitor, monitor_port: Option<u16>) -> HealthCheck {
    let http = m.kind.starts_with("HTTP");
    let mut check = HealthCheck::new(if http {
        HealthCheckProtocol::Http
    } else {
        HealthCheckProtocol::Tcp
    })
    .with_interval(Duration::from_secs(m.delay))
    .with_timeout(Duration::from_secs(m.timeout))
    .with_healthy_threshold(m.max_retries)
    .with_unhealthy_threshold(m.max_retries_down);
    // Octavia's answer holds options: copy them as they are.
    check.port = monitor_port;
    check.path = m.url_path.clone().filter(|_| http);
    check
}

fn member_health(operating_status: &str) -> MemberHealth {
    match operating_status {
        "ONLINE" => MemberHealth::Healthy,
        "ERROR" | "OFFLINE" => MemberHealth::Unhealthy,
        "DRAINING" => MemberHealth::Draining,
        _ => MemberHealth::Unknown,
    }
}

fn protocol_of(name: &str) -> LbProtocol {
    if name == "HTTP" {
        LbProtocol::Http
    } else {
        LbProtocol::Tcp
    }
}

impl OpenStackProvider {
    /// The record of one load balancer.
    pub(super) async fn lb_record(&self, op: Operation, lb: &OctaviaLb) -> Result<LoadBalancer> {
        self.lb_records(op, std::slice::from_ref(lb))
            .await?
            .pop()
            .ok_or_else(|| Error::not_found(op, format!("load balancer {}", lb.id)))
    }

    /// The records of `lbs`: their listeners and the health monitors in one list each,
    /// the members one list per pool, the VIP ports' groups in one list.
    pub(super) async fn lb_records(
        &self,
        op: Operation,
        lbs: &[OctaviaLb],
    ) -> Result<Vec<LoadBalancer>> {
        if lbs.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: BTreeSet<&str> = lbs.iter().map(|lb| lb.id.as_str()).collect();
        // Each listener with the load balancer it is of (Octavia's are of exactly one).
        let listeners: Vec<(&str, OctaviaListener)> = match lbs {
            [one] => self
                .listeners(op, &one.id)
                .await?
                .into_iter()
                .map(|l| (one.id.as_str(), l))
                .collect(),
            _ => {
                let call = self.scoped(Call::get(Service::LoadBalancer, "lbaas/listeners"));
                let all: Vec<OctaviaListener> = self.api.list(op, call, "listeners").await?;
                all.into_iter()
                    .filter_map(|l| {
                        let lb = l
                            .loadbalancers
                            .iter()
                            .map(|r| r.id.as_str())
                            .find(|id| wanted.contains(id))?;
                        let lb = *wanted.get(lb)?;
                        Some((lb, l))
                    })
                    .collect()
            }
        };
        let monitors: Vec<OctaviaMonitor> =
            if listeners.iter().any(|(_, l)| l.default_pool_id.is_some()) {
                let call = self.scoped(Call::get(Service::LoadBalancer, "lbaas/healthmonitors"));
                self.api.list(op, call, "healthmonitors").await?
            } else {
                Vec::new()
            };
        let mut members: BTreeMap<String, Vec<OctaviaMember>> = BTreeMap::new();
        for pool in listeners
            .iter()
            .filter_map(|(_, l)| l.default_pool_id.as_ref())
        {
            // A pool deleted since the listeners were read has no members.
            let found = match self.members(op, pool).await {
                Err(Error::NotFound { .. }) => Vec::new(),
                r => r?,
            };
            members.insert(pool.clone(), found);
        }
        let groups = self.vip_groups(op, lbs).await?;
        let mut per_lb: BTreeMap<&str, Vec<Listener>> = BTreeMap::new();
        for (lb_id, l) in &listeners {
            let mut pool = Pool {
                health_check: HealthCheck::default(),
                members: Vec::new(),
            };
            if let Some(pid) = &l.default_pool_id {
                let found = members.get(pid).map(Vec::as_slice).unwrap_or_default();
                if let Some(m) = monitors
                    .iter()
                    .find(|m| m.pools.iter().any(|p| &p.id == pid))
                {
                    pool.health_check = health_check(m, found.first().and_then(|x| x.monitor_port));
                }
                pool.members = found
                    .iter()
                    .filter(|m| m.provisioning_status != "PENDING_DELETE")
                    .map(|m| Member {
                        instance_id: m.name.clone(),
                        port: m.protocol_port,
                        health: member_health(&m.operating_status),
                    })
                    .collect();
            }
            per_lb.entry(*lb_id).or_default().push(Listener {
                protocol: protocol_of(&l.protocol),
                port: l.protocol_port,
                pool,
            });
        }
        Ok(lbs
            .iter()
            .map(|lb| {
                let mut listeners = per_lb.remove(lb.id.as_str()).unwrap_or_default();
                listeners.sort_by_key(|l| l.port);
                LoadBalancer {
                    id: lb.id.clone(),
                    name: lb.name.clone(),
                    state: lb_state(&lb.provisioning_status),
                    address: lb.vip_address.clone(),
                    security_groups: lb
                        .vip_port_id
                        .as_ref()
                        .and_then(|p| groups.get(p).cloned())
                        .unwrap_or_default(),
                    listeners,
                    tags: tags::from_strings(&lb.tags),
                }
            })
            .collect())
    }

    /// The security groups of the VIP ports of `lbs`, by port id (one read).
    async fn vip_groups(
        &self,
        op: Operation,
        lbs: &[OctaviaLb],
    ) -> Result<BTreeMap<String, Vec<String>>> {
        let ids: Vec<&String> = lbs
            .iter()
            .filter_map(|lb| lb.vip_port_id.as_ref())
            .collect();
        let ports: Vec<NeutronPort> = match ids.as_slice() {
            [] => Vec::new(),
            [one] => match self.get_port(op, one).await {
                Ok(p) => vec![p],
                Err(Error::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e),
            },
            many => {
                let mut out = Vec::new();
                for chunk in many.chunks(50) {
                    let mut call = Call::get(Service::Network, "ports");
                    for id in chunk {
                        call = call.query("id", (*id).clone());
                    }
                    out.extend(self.api.list::<NeutronPort>(op, call, "ports").await?);
                }
                out
            }
        };
        Ok(ports
            .into_iter()
            .map(|p| (p.id, p.security_groups))
            .collect())
    }

    /// The record of a load balancer this call created from `spec` (fully populated, so
    /// its listeners, pools, members and monitors are the spec's, as Octavia keeps
    /// them), with `groups` on its VIP port: only the members' health is read, from the
    /// load balancer's status tree (one read).
    pub(super) async fn created_record(
        &self,
        op: Operation,
        lb: &OctaviaLb,
        spec: &LoadBalancerSpec,
        groups: Vec<String>,
    ) -> Result<LoadBalancer> {
        let status = self
            .api
            .send(
                op,
                Call::get(
                    Service::LoadBalancer,
                    format!("lbaas/loadbalancers/{}/status", lb.id),
                ),
            )
            .await?;
        let health = member_statuses(&status);
        let mut listeners: Vec<Listener> = spec
            .listeners
            .iter()
            .map(|l| {
                let kept: Option<OctaviaMonitor> =
                    serde_json::from_value(monitor_body(&l.health_check)).ok();
                let monitor_port = l
                    .members
                    .first()
                    .and_then(|m| l.health_check.port.filter(|p| *p != m.port));
                Listener {
                    protocol: l.protocol,
                    port: l.port,
                    pool: Pool {
                        health_check: kept
                            .map(|m| health_check(&m, monitor_port))
                            .unwrap_or_default(),
                        members: l
                            .members
                            .iter()
                            .map(|m| Member {
                                instance_id: m.instance_id.clone(),
                                port: m.port,
                                health: health
                                    .get(&(l.port, m.instance_id.clone(), m.port))
                                    .or_else(|| health.get(&(l.port, m.instance_id.clone(), 0)))
                                    .map_or(MemberHealth::Unknown, |s| member_health(s)),
                            })
                            .collect(),
                    },
                }
            })
            .collect();
        listeners.sort_by_key(|l| l.port);
        let mut groups = groups;
        groups.sort();
        Ok(LoadBalancer {
            id: lb.id.clone(),
            name: lb.name.clone(),
            state: lb_state(&lb.provisioning_status),
            address: lb.vip_address.clone(),
            security_groups: groups,
            listeners,
            tags: tags::from_strings(&lb.tags),
        })
    }
}

/// Members' operating status in a status tree, by (listener port, member name, member
/// port, 0 when the tree leaves it out). Listeners are named `<lb>-<port>` (see
/// `create_load_balancer`).
fn member_statuses(v: &Value) -> BTreeMap<(u16, String, u16), String> {
    let mut out = BTreeMap::new();
    let listeners = v
        .pointer("/statuses/loadbalancer/listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for l in listeners {
        let Some(port) = l
            .get("name")
            .and_then(Value::as_str)
            .and_then(|n| n.rsplit_once('-'))
            .and_then(|(_, p)| p.parse::<u16>().ok())
        else {
            continue;
        };
        let members = l
            .get("pools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("members").and_then(Value::as_array))
            .flatten();
        for m in members {
            let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
            let mport = m
                .get("protocol_port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_default();
            let status = m
                .get("operating_status")
                .and_then(Value::as_str)
                .unwrap_or_default();
            out.insert((port, name.to_string(), mport), status.to_string());
        }
    }
    out
}
