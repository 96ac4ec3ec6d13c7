//! Octavia load balancers: one LB per spec with, per listener, a round-robin pool, its
//! members and a health monitor, created in one fully-populated call.
//!
//! - The VIP is a Neutron port made on the spec's subnet (named `<lb name>-vip`, carrying
//!   the spec's security groups and tags), so the address is a real Neutron address a
//!   floating IP can reach, and the groups are those of the port. It is deleted after
//!   the LB.
//! - A member is named after its instance id and addressed at the instance's fixed IP
//!   (no `subnet_id`: Octavia uses the VIP subnet).
//! - Octavia refuses changes while the LB is `PENDING_*`: changes to one LB are
//!   serialised by a lock, each waits for `ACTIVE` before and after; a 409 "immutable"
//!   answer is `Transient`. A member create retried after a 500 may answer that the
//!   member exists already: that is success. An LB in `ERROR` is reported at once,
//!   never waited on until the timeout.
//! - Health checks: `delay`/`timeout` in whole seconds (rounded up), `max_retries` is
//!   the healthy threshold and `max_retries_down` the unhealthy one (Octavia: 1 to 10);
//!   a check port other than the member's is the members' `monitor_port`.
//! - The LB's `description` holds a hash of its spec (idempotent create by name).

use async_trait::async_trait;
use std::time::Duration;

use provider_core::model::*;
use provider_core::wait::Poll;
use provider_core::{Error, LoadBalancers, Operation, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{Call, Service};
use crate::compute::spec_hash;
use crate::tags::{self, MAX_STRING_TAG_LEN};

mod members;
mod records;
use crate::OpenStackProvider;
pub(crate) use members::PoolMembers;
use records::IdRef;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OctaviaLb {
    pub(crate) id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    pub(crate) provisioning_status: String,
    #[serde(default)]
    vip_address: Option<String>,
    #[serde(default)]
    vip_port_id: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct OctaviaListener {
    #[serde(default)]
    loadbalancers: Vec<IdRef>,
    #[serde(default)]
    protocol: String,
    protocol_port: u16,
    #[serde(default)]
    default_pool_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct OctaviaMember {
    id: String,
    #[serde(default)]
    name: String,
    protocol_port: u16,
    #[serde(default)]
    monitor_port: Option<u16>,
    #[serde(default)]
    operating_status: String,
    #[serde(default)]
    provisioning_status: String,
}

#[derive(Debug, Clone, Deserialize)]
struct OctaviaMonitor {
    #[serde(default)]
    pools: Vec<IdRef>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    delay: u64,
    #[serde(default)]
    timeout: u64,
    #[serde(default)]
    max_retries: u32,
    #[serde(default)]
    max_retries_down: u32,
    #[serde(default)]
    url_path: Option<String>,
}

fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn monitor_body(h: &HealthCheck) -> Value {
    let mut m = json!({
        "type": match h.protocol { HealthCheckProtocol::Tcp => "TCP", HealthCheckProtocol::Http => "HTTP" },
        "delay": secs(h.interval).max(1),
        "timeout": secs(h.timeout).max(1),
        "max_retries": h.healthy_threshold.clamp(1, 10),
        "max_retries_down": h.unhealthy_threshold.clamp(1, 10),
    });
    if h.protocol == HealthCheckProtocol::Http {
        m["url_path"] = json!(h.path.clone().unwrap_or_else(|| "/".into()));
        m["http_method"] = json!("GET");
        m["expected_codes"] = json!("200-399");
    }
    m
}

fn protocol_name(p: LbProtocol) -> &'static str {
    match p {
        LbProtocol::Tcp => "TCP",
        LbProtocol::Http => "HTTP",
    }
}

fn lb_state(status: &str) -> LoadBalancerState {
    match status {
        "ACTIVE" => LoadBalancerState::Active,
        "ERROR" => LoadBalancerState::Error,
        "PENDING_DELETE" | "DELETED" => LoadBalancerState::Deleting,
        _ => LoadBalancerState::Pending,
    }
}

fn is_immutable(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("immutable") || m.contains("pending")
}

fn is_duplicate(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("already") || m.contains("duplicate")
}

impl OpenStackProvider {
    pub(crate) async fn octavia_lb(&self, op: Operation, id: &str) -> Result<OctaviaLb> {
        self.api
            .send_as(
                op,
                Call::get(Service::LoadBalancer, format!("lbaas/loadbalancers/{id}")),
                "loadbalancer",
            )
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found(op, format!("load balancer {id}")),
                e => e,
            })
            .and_then(|lb: OctaviaLb| {
                if lb.provisioning_status == "DELETED" {
                    Err(Error::not_found(op, format!("load balancer {id}")))
                } else {
                    Ok(lb)
                }
            })
    }

    async fn members(&self, op: Operation, pool_id: &str) -> Result<Vec<OctaviaMember>> {
        self.api
            .list(
                op,
                Call::get(
                    Service::LoadBalancer,
                    format!("lbaas/pools/{pool_id}/members"),
                ),
                "members",
            )
            .await
    }

    /// The listeners with their pool ids.
    async fn listeners(&self, op: Operation, lb_id: &str) -> Result<Vec<OctaviaListener>> {
        self.api
            .list(
                op,
                Call::get(Service::LoadBalancer, "lbaas/listeners")
                    .query("loadbalancer_id", lb_id.to_string()),
                "listeners",
            )
            .await
    }

    pub(crate) async fn get_load_balancer_impl(
        &self,
        op: Operation,
        id: &str,
    ) -> Result<LoadBalancer> {
        let lb = self.octavia_lb(op, id).await?;
        self.lb_record(op, &lb).await
    }

    /// Waits for ACTIVE; ERROR is reported at once.
    async fn wait_lb_active(&self, op: Operation, id: &str) -> Result<OctaviaLb> {
        self.watches
            .lbs
            .until(
                op,
                &format!("load balancer {id}"),
                "active",
                self.settings.timeouts.load_balancer,
                id,
                |ids| self.lbs_by_id(op, ids),
                |lb| {
                    let lb = lb
                        .cloned()
                        .ok_or_else(|| Error::not_found(op, format!("load balancer {id}")))?;
                    match lb.provisioning_status.as_str() {
                        "ACTIVE" => Ok(Poll::Ready(lb)),
                        "ERROR" => Err(Error::api(
                            op,
                            None,
                            "ERROR",
                            format!("load balancer {id} is in ERROR: delete and recreate it"),
                        )),
                        s => Ok(Poll::Pending(s.to_string())),
                    }
                },
            )
            .await
    }

    /// The fixed address of an instance, for a member; `InvalidInput` on `field` when the
    /// instance does not exist.
    async fn member_address(
        &self,
        op: Operation,
        field: &str,
        instance_id: &str,
    ) -> Result<String> {
        let inst = match self.get_instance_impl(op, instance_id).await {
            Ok(i) => i,
            Err(Error::NotFound { .. }) => {
                return Err(Error::invalid(
                    op,
                    field,
                    format!("no instance with id {instance_id:?}"),
                ))
            }
            Err(e) => return Err(e),
        };
        inst.private_ip.map(|ip| ip.to_string()).ok_or_else(|| {
            Error::transient(op, format!("instance {instance_id} has no address yet"))
        })
    }

    /// The fixed addresses of the spec's member instances, from one read of their
    /// ports; an instance without a port here is left out (`member_address` says why).
    async fn member_addresses(
        &self,
        op: Operation,
        spec: &LoadBalancerSpec,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let mut ids: Vec<String> = spec
            .listeners
            .iter()
            .flat_map(|l| l.members.iter().map(|m| m.instance_id.clone()))
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let mut out = std::collections::BTreeMap::new();
        for p in self.ports_on(op, &ids).await? {
            if let Some(ip) = p.fixed_ips.first() {
                out.entry(p.device_id.clone())
                    .or_insert_with(|| ip.ip_address.to_string());
            }
        }
        Ok(out)
    }

    fn member_body(m: &MemberSpec, address: String, hc: &HealthCheck) -> Value {
        let mut b = json!({
            "name": m.instance_id,
            "address": address,
            "protocol_port": m.port,
        });
        if let Some(p) = hc.port.filter(|p| *p != m.port) {
            b["monitor_port"] = json!(p);
        }
        b
    }

    /// The VIP port of an LB, made (or found, after a crash) on `subnet`.
    async fn vip_port(
        &self,
        op: Operation,
        spec: &LoadBalancerSpec,
        subnet: &str,
    ) -> Result<crate::network::NeutronPort> {
        let name = format!("{}-vip", spec.name);
        if let Some(p) = self.ports_named(op, &name).await?.into_iter().next() {
            return Ok(p);
        }
        let s = self.resolve_subnet(op, "spec.subnet", subnet).await?;
        let mut port = json!({
            "name": name,
            "network_id": s.network_id,
            "fixed_ips": [{ "subnet_id": s.id }],
            "tags": tags::to_strings(op, "spec.tags", &spec.tags, MAX_STRING_TAG_LEN)?,
            "device_owner": "plinth:lb-vip",
        });
        if !spec.security_groups.is_empty() {
            port["security_groups"] = json!(spec.security_groups);
        }
        self.create_port(op, &json!({ "port": port }))
            .await
            .map_err(|e| match &e {
                // "Security group <id> does not exist": the spec's, not the port's.
                Error::NotFound { resource, .. } => {
                    crate::compute::unknown_group(op, &spec.security_groups, |g| {
                        resource.contains(g)
                    })
                    .unwrap_or(e)
                }
                _ => e,
            })
    }

    /// Replaces an LB's tags (and its VIP port's).
    pub(crate) async fn put_lb_tags(&self, op: Operation, id: &str, tags: &Tags) -> Result<()> {
        let strings = tags::to_strings(op, "set", tags, MAX_STRING_TAG_LEN)?;
        self.api
            .send(
                op,
                Call::put(
                    Service::LoadBalancer,
                    format!("lbaas/loadbalancers/{id}"),
                    &json!({ "loadbalancer": { "tags": strings } }),
                ),
            )
            .await
            .map(|_| ())
            .map_err(|e| match e {
                Error::Conflict { message, .. } if is_immutable(&message) => {
                    Error::transient(op, format!("load balancer {id} is busy: {message}"))
                }
                e => e,
            })
    }

    pub(crate) async fn lb_tags(&self, op: Operation, id: &str) -> Result<Tags> {
        Ok(tags::from_strings(&self.octavia_lb(op, id).await?.tags))
    }
}

#[async_trait]
impl LoadBalancers for OpenStackProvider {
    async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer> {
        self.get_load_balancer_impl(provider_core::Operation::GetLoadBalancer, id)
            .await
    }

    async fn add_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.change_member(lb_id, listener_port, member, true).await
    }

    async fn remove_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.change_member(lb_id, listener_port, member, false)
            .await
    }

    async fn list_load_balancers(&self, filter: &TagFilter) -> Result<Vec<LoadBalancer>> {
        let op = Operation::ListLoadBalancers;
        let mut call = self.scoped(Call::get(Service::LoadBalancer, "lbaas/loadbalancers"));
        if let Some(t) = tags::filter_query(filter, MAX_STRING_TAG_LEN) {
            call = call.query("tags", t);
        }
        let lbs: Vec<OctaviaLb> = self.api.list(op, call, "loadbalancers").await?;
        let lbs: Vec<OctaviaLb> = lbs
            .into_iter()
            .filter(|lb| {
                lb.provisioning_status != "DELETED" && filter.matches(&tags::from_strings(&lb.tags))
            })
            .collect();
        self.lb_records(op, &lbs).await
    }

    async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        let op = Operation::CreateLoadBalancer;
        spec.validate()?;
        let tag_strings = tags::to_strings(op, "spec.tags", &spec.tags, MAX_STRING_TAG_LEN)?;
        let hash = spec_hash(spec);
        // By its exact name (Octavia filters on one name).
        let existing: Vec<OctaviaLb> = self
            .api
            .list(
                op,
                self.scoped(Call::get(Service::LoadBalancer, "lbaas/loadbalancers"))
                    .query("name", spec.name.clone()),
                "loadbalancers",
            )
            .await?;
        if let Some(lb) = existing.iter().find(|lb| {
            lb.name == spec.name
                && !matches!(
                    lb.provisioning_status.as_str(),
                    "DELETED" | "PENDING_DELETE"
                )
        }) {
            if lb.description.as_deref() != Some(hash.as_str()) {
                return Err(Error::conflict(
                    op,
                    format!("load balancer {} ({})", spec.name, lb.id),
                    "a load balancer of this name exists with a different spec: delete it or choose another name",
                ));
            }
            let lb = self.wait_lb_active(op, &lb.id).await?;
            return self.lb_record(op, &lb).await;
        }
        let subnet = spec.subnet.clone().ok_or_else(|| {
            Error::invalid(
                op,
                "spec.subnet",
                "OpenStack load balancers need the subnet of their VIP",
            )
        })?;
        // The groups are not read first: Neutron refuses a VIP port with a group that
        // does not exist, naming it (see `vip_port`).
        let addresses = self.member_addresses(op, spec).await?;
        let mut listeners = Vec::new();
        for (i, l) in spec.listeners.iter().enumerate() {
            let mut members = Vec::new();
            for (j, m) in l.members.iter().enumerate() {
                let addr = match addresses.get(&m.instance_id) {
                    Some(a) => a.clone(),
                    None => {
                        let field = format!("spec.listeners[{i}].members[{j}].instance_id");
                        self.member_address(op, &field, &m.instance_id).await?
                    }
                };
                members.push(Self::member_body(m, addr, &l.health_check));
            }
            listeners.push(json!({
                "name": format!("{}-{}", spec.name, l.port),
                "protocol": protocol_name(l.protocol),
                "protocol_port": l.port,
                "default_pool": {
                    "name": format!("{}-{}", spec.name, l.port),
                    "protocol": protocol_name(l.protocol),
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": members,
                    "healthmonitor": monitor_body(&l.health_check),
                },
            }));
        }
        let port = self.vip_port(op, spec, &subnet).await?;
        let vip_subnet = port
            .fixed_ips
            .first()
            .map(|f| f.subnet_id.clone())
            .ok_or_else(|| crate::error::unexpected(op, "the VIP port has no address"))?;
        let mut body = json!({
            "name": spec.name,
            "description": hash,
            "vip_port_id": port.id,
            "vip_subnet_id": vip_subnet,
            "listeners": listeners,
            "tags": tag_strings,
        });
        if let Some(ip) = port.fixed_ips.first() {
            body["vip_address"] = json!(ip.ip_address.to_string());
        }
        let lb: OctaviaLb = self
            .api
            .send_as(
                op,
                Call::post(
                    Service::LoadBalancer,
                    "lbaas/loadbalancers",
                    &json!({ "loadbalancer": body }),
                ),
                "loadbalancer",
            )
            .await?;
        let lb = self.wait_lb_active(op, &lb.id).await?;
        self.created_record(op, &lb, spec, port.security_groups.clone())
            .await
    }

    async fn delete_load_balancer(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteLoadBalancer;
        let lock = self.lb_lock(id);
        let _guard = lock.lock().await;
        // Octavia refuses a delete while PENDING_*: wait for a settled state first (its
        // first read is the only one: what is gone answers at once).
        let settled = self
            .watches
            .lbs
            .until(
                op,
                &format!("load balancer {id}"),
                "settled",
                self.settings.timeouts.load_balancer,
                id,
                |ids| self.lbs_by_id(op, ids),
                |lb| match lb {
                    Some(lb)
                        if lb.provisioning_status.starts_with("PENDING_")
                            && lb.provisioning_status != "PENDING_DELETE" =>
                    {
                        Ok(Poll::Pending(lb.provisioning_status.clone()))
                    }
                    Some(lb) => Ok(Poll::Ready(Some(lb.clone()))),
                    None => Ok(Poll::Ready(None)),
                },
            )
            .await?;
        let Some(lb) = settled else {
            return Ok(());
        };
        if lb.provisioning_status != "PENDING_DELETE" {
            match self
                .api
                .send(
                    op,
                    Call::delete(Service::LoadBalancer, format!("lbaas/loadbalancers/{id}"))
                        .query("cascade", "true"),
                )
                .await
            {
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(Error::Conflict { message, .. }) => {
                    return Err(Error::transient(
                        op,
                        format!("load balancer {id} is busy: {message}"),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        self.watches
            .lbs
            .until(
                op,
                &format!("load balancer {id}"),
                "deleted",
                self.settings.timeouts.delete,
                id,
                |ids| self.lbs_by_id(op, ids),
                |lb| match lb {
                    None => Ok(Poll::Ready(())),
                    Some(lb) if lb.provisioning_status == "ERROR" => Err(Error::api(
                        op,
                        None,
                        "ERROR",
                        format!("Octavia failed to delete load balancer {id}"),
                    )),
                    Some(lb) => Ok(Poll::Pending(lb.provisioning_status.clone())),
                },
            )
            .await?;
        // The VIP port is ours (Octavia does not delete a port it was given).
        if let Some(p) = &lb.vip_port_id {
            match self.port_read(op, p).await {
                Ok(port) if port.name == format!("{}-vip", lb.name) => {
                    self.delete_port(op, p).await?
                }
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl OpenStackProvider {
    /// Waits for ACTIVE (for tag changes, which Octavia also serialises).
    pub(crate) async fn wait_lb_settled(&self, op: Operation, id: &str) -> Result<()> {
        self.wait_lb_active(op, id).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octavia_answers_are_classified() {
        // 409 while PENDING_*: busy, retried by the generic policy.
        assert!(is_immutable(
            "Load Balancer 8d2f is immutable and cannot be updated."
        ));
        // A member create retried after a lost 500: it is there.
        assert!(is_duplicate(
            "Another member on this address and port is already present."
        ));
        assert!(is_duplicate("Duplicate member: address 10.0.0.5 port 80"));
        assert!(!is_duplicate(
            "Load Balancer 8d2f is immutable and cannot be updated."
        ));
        assert_eq!(lb_state("PENDING_UPDATE"), LoadBalancerState::Pending);
        assert_eq!(lb_state("ERROR"), LoadBalancerState::Error);
    }

    #[test]
    fn health_checks_map_to_octavia_monitors() {
        let m = monitor_body(
            &HealthCheck::http("/healthz")
                .with_interval(Duration::from_millis(2500))
                .with_timeout(Duration::from_secs(2))
                .with_healthy_threshold(3)
                .with_unhealthy_threshold(20),
        );
        assert_eq!(m["type"], "HTTP");
        assert_eq!(m["delay"], 3);
        assert_eq!(m["timeout"], 2);
        assert_eq!(m["max_retries"], 3);
        assert_eq!(m["max_retries_down"], 10);
        assert_eq!(m["url_path"], "/healthz");
    }
}
