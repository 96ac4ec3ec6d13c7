//! Floating IPs: Neutron floating IPs on the pool's external network, named by their
//! `description`, associated to an instance's port.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::net::IpAddr;

use provider_core::model::*;
use provider_core::wait::Poll;
use provider_core::FloatingIps;
use provider_core::{Error, Operation, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use super::HasTags;
use crate::client::{Call, Service};
use crate::compute::spec_hash;
use crate::tags::{self, MAX_STRING_TAG_LEN};
use crate::OpenStackProvider;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NeutronFip {
    pub(crate) id: String,
    pub(crate) floating_ip_address: IpAddr,
    pub(crate) floating_network_id: String,
    #[serde(default)]
    pub(crate) port_id: Option<String>,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    #[serde(default)]
    pub(crate) port_details: Option<Value>,
}

impl HasTags for NeutronFip {
    fn id(&self) -> &str {
        &self.id
    }
    fn set_tags(&mut self, tags: Vec<String>) {
        self.tags = tags;
    }
}

impl OpenStackProvider {
    /// The floating IPs on these ports, in one call per 50 ids.
    pub(crate) async fn fips_on_ports(
        &self,
        op: Operation,
        port_ids: &[String],
    ) -> Result<Vec<NeutronFip>> {
        let mut out = Vec::new();
        for chunk in port_ids.chunks(50) {
            let mut call = Call::get(Service::Network, "floatingips");
            for id in chunk {
                call = call.query("port_id", id.clone());
            }
            out.extend(self.api.list::<NeutronFip>(op, call, "floatingips").await?);
        }
        Ok(out)
    }

    async fn fip_record(
        &self,
        op: Operation,
        f: &NeutronFip,
        names: &BTreeMap<String, String>,
    ) -> Result<FloatingIp> {
        let instance_id = match &f.port_id {
            None => None,
            Some(port) => {
                let from_details = f
                    .port_details
                    .as_ref()
                    .and_then(|d| d.get("device_id"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match from_details {
                    Some(d) => Some(d),
                    None => match self.get_port(op, port).await {
                        Ok(p) => Some(p.device_id),
                        Err(Error::NotFound { .. }) => None,
                        Err(e) => return Err(e),
                    },
                }
                .filter(|d| !d.is_empty())
            }
        };
        Ok(FloatingIp {
            id: f.id.clone(),
            name: f.description.clone(),
            address: f.floating_ip_address,
            pool: names
                .get(&f.floating_network_id)
                .cloned()
                .unwrap_or_else(|| f.floating_network_id.clone()),
            instance_id,
            tags: tags::user_tags(&f.tags),
        })
    }

    async fn network_names(&self, op: Operation) -> Result<BTreeMap<String, String>> {
        Ok(self
            .networks(op)
            .await?
            .into_iter()
            .map(|n| {
                let name = if n.name.is_empty() {
                    n.id.clone()
                } else {
                    n.name
                };
                (n.id, name)
            })
            .collect())
    }

    pub(crate) async fn neutron_fip(&self, op: Operation, id: &str) -> Result<NeutronFip> {
        self.api
            .send_as(
                op,
                Call::get(Service::Network, format!("floatingips/{id}")),
                "floatingip",
            )
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found(op, format!("floating IP {id}")),
                e => e,
            })
    }

    pub(crate) async fn get_floating_ip_impl(&self, op: Operation, id: &str) -> Result<FloatingIp> {
        let f = self.neutron_fip(op, id).await?;
        let names = self.network_names(op).await?;
        self.fip_record(op, &f, &names).await
    }
}

#[async_trait]
impl FloatingIps for OpenStackProvider {
    async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        self.get_floating_ip_impl(provider_core::Operation::GetFloatingIp, id)
            .await
    }

    async fn list_floating_ips(&self, filter: &TagFilter) -> Result<Vec<FloatingIp>> {
        let op = Operation::ListFloatingIps;
        let mut call = self.scoped(Call::get(Service::Network, "floatingips"));
        if let Some(t) = tags::filter_query(filter, MAX_STRING_TAG_LEN) {
            call = call.query("tags", t);
        }
        let fips: Vec<NeutronFip> = self.api.list(op, call, "floatingips").await?;
        let names = self.network_names(op).await?;
        let mut out = Vec::new();
        for f in fips
            .iter()
            .filter(|f| filter.matches(&tags::from_strings(&f.tags)))
        {
            out.push(self.fip_record(op, f, &names).await?);
        }
        Ok(out)
    }

    async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp> {
        let op = Operation::AllocateFloatingIp;
        spec.validate()?;
        tags::to_strings(op, "spec.tags", &spec.tags, MAX_STRING_TAG_LEN)?;
        let hash = spec_hash(spec);
        let created_tags = tags::with_spec(&spec.tags, &hash);
        let tag_strings = tags::to_strings(op, "spec.tags", &created_tags, MAX_STRING_TAG_LEN)?;
        let pool = self
            .resolve_network(op, "spec.pool", &spec.pool, true)
            .await?;
        let existing: Vec<NeutronFip> = self
            .api
            .list(
                op,
                self.scoped(Call::get(Service::Network, "floatingips"))
                    .query("description", spec.name.clone()),
                "floatingips",
            )
            .await?;
        let names = self.network_names(op).await?;
        if let Some(f) = existing.iter().find(|f| f.description == spec.name) {
            // The spec it was allocated with, not its tags now (update_tags changes them).
            let same = match tags::spec_of(&f.tags) {
                Some(h) => h == hash,
                // Allocated before the spec tag: its tags as asked.
                None => tags::user_tags(&f.tags) == spec.tags,
            };
            if f.floating_network_id == pool.id && same {
                return self.fip_record(op, f, &names).await;
            }
            // Untagged: an allocation that stopped between the POST and the tags.
            if f.floating_network_id == pool.id && f.tags.is_empty() {
                self.put_neutron_tags(op, "floatingips", &f.id, &created_tags)
                    .await?;
                return self.get_floating_ip_impl(op, &f.id).await;
            }
            return Err(Error::conflict(
                op,
                format!("floating IP {} ({})", spec.name, f.id),
                "a floating IP of this name exists with a different spec: release it or choose another name",
            ));
        }
        let body = json!({
            "floating_network_id": pool.id,
            "description": spec.name,
        });
        let mut f: NeutronFip = self
            .post_tagged(op, "floatingips", "floatingip", body, tag_strings.clone())
            .await?;
        f.tags = tag_strings;
        self.fip_record(op, &f, &names).await
    }

    async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp> {
        let op = Operation::AssociateFloatingIp;
        // Not read first: the association answers 404 for a floating IP that is gone.
        let server = self.server_read(op, instance_id).await?;
        if server.is_deleting() {
            return Err(Error::conflict(
                op,
                format!("instance {instance_id}"),
                "the instance is being deleted",
            ));
        }
        // The instance's port appears some time after the server does.
        let instance = instance_id.to_string();
        let port = self
            .settings
            .poller
            .until(
                op,
                &format!("port of instance {instance_id}"),
                "created",
                self.settings.timeouts.floating_ip,
                || async {
                    let ports = self.ports_on(op, std::slice::from_ref(&instance)).await?;
                    Ok(match ports.into_iter().find(|p| !p.fixed_ips.is_empty()) {
                        Some(p) => Poll::Ready(p),
                        None => Poll::Pending("no port yet".into()),
                    })
                },
            )
            .await?;
        let body = json!({ "floatingip": { "port_id": port.id } });
        let f: NeutronFip = match self
            .api
            .send_as(op, Call::put(Service::Network, format!("floatingips/{id}"), &body), "floatingip")
            .await
        {
            Ok(f) => f,
            Err(Error::NotFound { resource, .. }) if resource.to_lowercase().contains("external") => {
                return Err(Error::invalid(
                    op,
                    "instance_id",
                    format!("the instance's network cannot reach the pool's network (no router): {resource}"),
                ))
            }
            Err(Error::NotFound { .. }) => return Err(Error::not_found(op, format!("floating IP {id}"))),
            Err(e) => return Err(e),
        };
        let names = self.network_names(op).await?;
        let mut rec = self.fip_record(op, &f, &names).await?;
        rec.instance_id = Some(instance_id.to_string());
        Ok(rec)
    }

    async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        let op = Operation::DisassociateFloatingIp;
        // Not read first: clearing the port of an unassociated address changes nothing.
        let body = json!({ "floatingip": { "port_id": Value::Null } });
        let f: NeutronFip = self
            .api
            .send_as(
                op,
                Call::put(Service::Network, format!("floatingips/{id}"), &body),
                "floatingip",
            )
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found(op, format!("floating IP {id}")),
                e => e,
            })?;
        let names = self.network_names(op).await?;
        self.fip_record(op, &f, &names).await
    }

    async fn release_floating_ip(&self, id: &str) -> Result<()> {
        let op = Operation::ReleaseFloatingIp;
        // Neutron releases an associated address itself; the contract refuses, so look
        // first. (An association made between this read and the delete is still
        // released: Neutron has no conditional delete.)
        let f = match self.neutron_fip(op, id).await {
            Err(Error::NotFound { .. }) => return Ok(()),
            r => r?,
        };
        if let Some(port) = &f.port_id {
            let why = format!("associated with port {port}: disassociate it first");
            return Err(Error::conflict(op, format!("floating IP {id}"), why));
        }
        match self
            .api
            .send(
                op,
                Call::delete(Service::Network, format!("floatingips/{id}")),
            )
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
