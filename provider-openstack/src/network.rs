//! Neutron: security groups and their rules, floating IPs, and the networks, subnets and
//! ports the other families resolve through.
//!
//! - A security group is a Neutron security group; its ingress rules are Neutron rules
//!   (CIDR sources as `remote_ip_prefix`, group sources as `remote_group_id`); Neutron's
//!   default egress rules are left alone and not reported.
//! - A floating IP is a Neutron floating IP on the external network named (or id'd) by the
//!   pool; its name is kept in its `description`. It is associated to the instance's
//!   port, waiting for the port to exist. Its `status` is not waited on: a cloud without
//!   an L3 agent (the test services) never sets it ACTIVE.

use async_trait::async_trait;
use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use provider_core::model::*;
use provider_core::{Error, Operation, Result, SecurityGroups};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{Call, Service};
use crate::compute::spec_hash;
use crate::tags::{self, MAX_STRING_TAG_LEN};
use crate::OpenStackProvider;

mod floating_ips;
mod security_groups;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NeutronRule {
    pub(crate) id: String,
    pub(crate) security_group_id: String,
    pub(crate) direction: String,
    #[serde(default)]
    pub(crate) ethertype: Option<String>,
    #[serde(default)]
    pub(crate) protocol: Option<String>,
    #[serde(default)]
    pub(crate) port_range_min: Option<u16>,
    #[serde(default)]
    pub(crate) port_range_max: Option<u16>,
    #[serde(default)]
    pub(crate) remote_ip_prefix: Option<String>,
    #[serde(default)]
    pub(crate) remote_group_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NeutronGroup {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) security_group_rules: Vec<NeutronRule>,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FixedIp {
    pub(crate) subnet_id: String,
    pub(crate) ip_address: IpAddr,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NeutronPort {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) device_id: String,
    #[serde(default)]
    pub(crate) device_owner: String,
    #[serde(default)]
    pub(crate) fixed_ips: Vec<FixedIp>,
    #[serde(default)]
    pub(crate) security_groups: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NeutronNetwork {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default, rename = "router:external")]
    pub(crate) external: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NeutronSubnet {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) network_id: String,
}

/// A Neutron resource with string tags.
pub(crate) trait HasTags {
    fn id(&self) -> &str;
    fn set_tags(&mut self, tags: Vec<String>);
}

impl HasTags for NeutronGroup {
    fn id(&self) -> &str {
        &self.id
    }
    fn set_tags(&mut self, tags: Vec<String>) {
        self.tags = tags;
    }
}

/// Whether `s` looks like an OpenStack UUID.
pub(crate) fn looks_like_id(s: &str) -> bool {
    let hex = s.chars().filter(|c| c.is_ascii_hexdigit()).count();
    (s.len() == 36 && hex == 32 && s.chars().filter(|c| *c == '-').count() == 4)
        || (s.len() == 32 && hex == 32)
}

/// Picks the one match of `name_or_id` among `(id, name)` pairs.
pub(crate) fn pick<T: Clone>(
    op: Operation,
    field: &str,
    what: &str,
    name_or_id: &str,
    items: &[(String, String, T)],
) -> Result<T> {
    if let Some((_, _, t)) = items.iter().find(|(id, _, _)| id == name_or_id) {
        return Ok(t.clone());
    }
    let named: Vec<&(String, String, T)> =
        items.iter().filter(|(_, n, _)| n == name_or_id).collect();
    match named.as_slice() {
        [one] => Ok(one.2.clone()),
        [] => Err(Error::invalid(
            op,
            field,
            format!(
                "no {what} with id or name {name_or_id:?}: use one of {}",
                items
                    .iter()
                    .map(|(id, n, _)| if n.is_empty() { id.clone() } else { n.clone() })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        many => Err(Error::invalid(
            op,
            field,
            format!(
                "{name_or_id:?} names {} {what}s: use an id, one of {}",
                many.len(),
                many.iter()
                    .map(|(id, _, _)| id.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

impl OpenStackProvider {
    /// Adds `project_id=<scope>` so admin tokens do not list other projects' resources.
    pub(crate) fn scoped(&self, call: Call) -> Call {
        match self.project_id() {
            Some(p) => call.query("project_id", p),
            None => call,
        }
    }

    // --- networks, subnets, ports

    /// The networks, listed once per provider ([`crate::watch::Memos`]): their ids,
    /// names and whether they are external are what creates and records refer to.
    pub(crate) async fn networks(&self, op: Operation) -> Result<Vec<NeutronNetwork>> {
        self.memos
            .networks
            .get_or_try("", || {
                self.api
                    .list(op, Call::get(Service::Network, "networks"), "networks")
            })
            .await
    }

    /// The network named or id'd `name_or_id`; `InvalidInput` on `field` when there is
    /// none or several.
    pub(crate) async fn resolve_network(
        &self,
        op: Operation,
        field: &str,
        name_or_id: &str,
        external: bool,
    ) -> Result<NeutronNetwork> {
        let nets = self.networks(op).await?;
        let items: Vec<(String, String, NeutronNetwork)> = nets
            .into_iter()
            .filter(|n| !external || n.external)
            .map(|n| (n.id.clone(), n.name.clone(), n))
            .collect();
        let what = if external {
            "external network"
        } else {
            "network"
        };
        pick(op, field, what, name_or_id, &items)
    }

    pub(crate) async fn resolve_subnet(
        &self,
        op: Operation,
        field: &str,
        name_or_id: &str,
    ) -> Result<NeutronSubnet> {
        let subnets: Vec<NeutronSubnet> = self
            .memos
            .subnets
            .get_or_try("", || {
                self.api
                    .list(op, Call::get(Service::Network, "subnets"), "subnets")
            })
            .await?;
        let items: Vec<(String, String, NeutronSubnet)> = subnets
            .into_iter()
            .map(|s| (s.id.clone(), s.name.clone(), s))
            .collect();
        pick(op, field, "subnet", name_or_id, &items)
    }

    /// The ports of these devices (servers), in one call per 50 ids.
    pub(crate) async fn ports_of(
        &self,
        op: Operation,
        device_ids: &[String],
    ) -> Result<Vec<NeutronPort>> {
        self.ports_where(op, "device_id", device_ids).await
    }

    /// The ports whose `field` is one of `values`, in one call per 50 values.
    async fn ports_where(
        &self,
        op: Operation,
        field: &str,
        values: &[String],
    ) -> Result<Vec<NeutronPort>> {
        let mut out = Vec::new();
        for chunk in values.chunks(50) {
            let mut call = Call::get(Service::Network, "ports");
            for v in chunk {
                call = call.query(field, v.clone());
            }
            out.extend(self.api.list::<NeutronPort>(op, call, "ports").await?);
        }
        Ok(out)
    }

    /// The ports of these devices, read with the reads started together.
    pub(crate) async fn ports_on(
        &self,
        op: Operation,
        device_ids: &[String],
    ) -> Result<Vec<NeutronPort>> {
        let each = device_ids.iter().map(|d| {
            self.watches
                .ports_on
                .get(d, |ds| async move { self.ports_of(op, &ds).await })
        });
        let mut out: Vec<NeutronPort> = Vec::new();
        for ports in futures::future::try_join_all(each).await? {
            for p in ports {
                if device_ids.contains(&p.device_id) && !out.iter().any(|o| o.id == p.id) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    /// Port `id` (`NotFound` when gone), read with the reads started together.
    pub(crate) async fn port_read(&self, op: Operation, id: &str) -> Result<NeutronPort> {
        self.watches
            .ports_read
            .get(
                id,
                |ids| async move { self.ports_where(op, "id", &ids).await },
            )
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| Error::not_found(op, format!("port {id}")))
    }

    pub(crate) async fn create_port(&self, op: Operation, body: &Value) -> Result<NeutronPort> {
        self.api
            .send_as(op, Call::post(Service::Network, "ports", body), "port")
            .await
    }

    pub(crate) async fn get_port(&self, op: Operation, id: &str) -> Result<NeutronPort> {
        self.api
            .send_as(
                op,
                Call::get(Service::Network, format!("ports/{id}")),
                "port",
            )
            .await
    }

    /// The ports named `name`, looked up with the look-ups started together.
    pub(crate) async fn ports_named(&self, op: Operation, name: &str) -> Result<Vec<NeutronPort>> {
        let ports: Vec<NeutronPort> = self
            .watches
            .ports_named
            .get(name, |names| {
                let mut call = self.scoped(Call::get(Service::Network, "ports"));
                for n in names {
                    call = call.query("name", n);
                }
                self.api.list(op, call, "ports")
            })
            .await?;
        Ok(ports.into_iter().filter(|p| p.name == name).collect())
    }

    pub(crate) async fn delete_port(&self, op: Operation, id: &str) -> Result<()> {
        match self
            .api
            .send(op, Call::delete(Service::Network, format!("ports/{id}")))
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates a Neutron resource with its tags: in the POST where Neutron takes them
    /// (the `tag-creation` extension), else by a PUT of the tags right after (a crash in
    /// between leaves it untagged; a rerun of the create finds it by name and tags it).
    pub(crate) async fn post_tagged<T: serde::de::DeserializeOwned + HasTags>(
        &self,
        op: Operation,
        collection: &str,
        key: &str,
        mut body: Value,
        tag_strings: Vec<String>,
    ) -> Result<T> {
        use std::sync::atomic::Ordering;
        let path = collection.to_string();
        if !self.no_tags_on_create.load(Ordering::Relaxed) {
            let mut with_tags = body.clone();
            with_tags["tags"] = json!(tag_strings);
            match self
                .api
                .send_as(
                    op,
                    Call::post(Service::Network, path.clone(), &json!({ key: with_tags })),
                    key,
                )
                .await
            {
                Ok(t) => return Ok(t),
                Err(Error::InvalidInput { message, .. }) if message.contains("'tags'") => {
                    self.no_tags_on_create.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        body = json!({ key: body });
        let mut t: T = self
            .api
            .send_as(op, Call::post(Service::Network, path, &body), key)
            .await?;
        if !tag_strings.is_empty() {
            self.api
                .send(
                    op,
                    Call::put(
                        Service::Network,
                        format!("{collection}/{}/tags", t.id()),
                        &json!({ "tags": tag_strings }),
                    ),
                )
                .await?;
            t.set_tags(tag_strings);
        }
        Ok(t)
    }

    /// Replaces the string tags of a Neutron resource (`security-groups`, `floatingips`).
    pub(crate) async fn put_neutron_tags(
        &self,
        op: Operation,
        collection: &str,
        id: &str,
        tags: &Tags,
    ) -> Result<()> {
        let strings = tags::to_strings(op, "set", tags, MAX_STRING_TAG_LEN)?;
        self.api
            .send(
                op,
                Call::put(
                    Service::Network,
                    format!("{collection}/{id}/tags"),
                    &json!({ "tags": strings }),
                ),
            )
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_by_id_name_and_ambiguity() {
        let items = vec![
            ("1".to_string(), "a".to_string(), 1),
            ("2".to_string(), "b".to_string(), 2),
            ("3".to_string(), "b".to_string(), 3),
        ];
        let op = Operation::CreateInstance;
        assert_eq!(pick(op, "f", "x", "1", &items).unwrap(), 1);
        assert_eq!(pick(op, "f", "x", "a", &items).unwrap(), 1);
        let e = pick(op, "f", "x", "b", &items).unwrap_err();
        assert!(e.to_string().contains("2, 3"), "{e}");
        assert_eq!(
            pick(op, "f", "x", "zz", &items).unwrap_err().kind(),
            provider_core::ErrorKind::InvalidInput
        );
        assert!(looks_like_id("a94493c3-2b5d-47a8-9f1c-1ba51b702ee9"));
        assert!(!looks_like_id("m1.small"));
    }
}
