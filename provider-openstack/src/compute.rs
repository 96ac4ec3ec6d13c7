//! Nova: availability zones and servers, with flavors (Nova) and images (Glance) by id
//! or name.
//!
//! - AZs are Nova's (`os-availability-zone`, without `internal`); each must have its
//!   Cinder AZ (same name, or the configured map): a compute AZ whose volume AZ Cinder
//!   does not have is listed as unavailable, with a warning, never silently mismatched.
//! - An instance is a Nova server (microversion 2.52) in the AZ, with the flavor and
//!   image resolved to ids, its network (or the subnet's network), security groups by
//!   id, keypair, user data (base64) and the tags as metadata plus server tags.
//! - Idempotency: the server's `description` holds a hash of the spec it was created
//!   from, so re-creating the same name and spec returns it and a different spec is a
//!   `Conflict`.

use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use provider_core::model::*;
use provider_core::wait::Poll;
use provider_core::{Error, Instances, Operation, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{Call, Service};
use crate::network::{looks_like_id, pick};
use crate::tags;
use crate::OpenStackProvider;

mod zones;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Server {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default, rename = "OS-EXT-AZ:availability_zone")]
    pub(crate) availability_zone: Option<String>,
    #[serde(default, rename = "OS-EXT-STS:task_state")]
    pub(crate) task_state: Option<String>,
    #[serde(default)]
    pub(crate) flavor: Value,
    #[serde(default)]
    pub(crate) image: Value,
    #[serde(default)]
    pub(crate) metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) addresses: BTreeMap<String, Vec<Value>>,
    #[serde(default, rename = "os-extended-volumes:volumes_attached")]
    pub(crate) volumes_attached: Vec<Value>,
    #[serde(default)]
    pub(crate) fault: Option<Value>,
}

impl Server {
    pub(crate) fn is_deleting(&self) -> bool {
        matches!(self.status.as_str(), "DELETED" | "SOFT_DELETED")
            || self.task_state.as_deref() == Some("deleting")
    }

    fn state(&self) -> InstanceState {
        if self.is_deleting() {
            return InstanceState::Deleting;
        }
        match self.status.as_str() {
            "ACTIVE" => InstanceState::Running,
            "ERROR" => InstanceState::Failed,
            "SHUTOFF" | "STOPPED" | "SUSPENDED" | "PAUSED" | "SHELVED" | "SHELVED_OFFLOADED" => {
                InstanceState::Stopped
            }
            _ => InstanceState::Pending,
        }
    }

    fn addresses_of(&self, kind: &str) -> Option<IpAddr> {
        self.addresses
            .values()
            .flatten()
            .filter(|a| a.get("OS-EXT-IPS:type").and_then(Value::as_str) == Some(kind))
            .find_map(|a| a.get("addr").and_then(Value::as_str)?.parse().ok())
    }

    fn fault_message(&self) -> String {
        self.fault
            .as_ref()
            .and_then(|f| f.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("no fault recorded")
            .to_string()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Flavor {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Image {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

/// FNV-1a over the spec's JSON: stable across builds and Rust versions.
/// How a spec hash starts, to tell it from a description someone else wrote.
pub(crate) const SPEC_PREFIX: &str = "plinth-spec:";

pub(crate) fn spec_hash<T: serde::Serialize>(spec: &T) -> String {
    let text = serde_json::to_string(spec).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{SPEC_PREFIX}{h:016x}")
}

/// Standard base64 (user data).
pub(crate) fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        let idx = |shift: u32| char::from(A[((n >> shift) & 63) as usize]);
        out.push(idx(18));
        out.push(idx(12));
        out.push(if c.len() > 1 { idx(6) } else { '=' });
        out.push(if c.len() > 2 { idx(0) } else { '=' });
    }
    out
}

/// Nova's `name` filter (a regular expression, without alternation here) for `names`:
/// the one name exactly, or the names' common prefix (the caller picks its own name).
fn names_regex(names: &[String]) -> String {
    match names {
        [one] => format!("^{}$", regex_escape(one)),
        _ => {
            let first = names.first().map(String::as_str).unwrap_or_default();
            let common = names.iter().skip(1).fold(first.len(), |n, other| {
                first
                    .char_indices()
                    .zip(other.chars())
                    .take_while(|((i, a), b)| *i < n && a == b)
                    .count()
            });
            let prefix: String = first.chars().take(common).collect();
            format!("^{}", regex_escape(&prefix))
        }
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

/// The record of a server as Nova has it: no addresses or groups (Neutron has those).
fn record(s: &Server) -> Instance {
    Instance {
        id: s.id.clone(),
        name: s.name.clone(),
        availability_zone: s.availability_zone.clone().unwrap_or_default(),
        flavor: s
            .flavor
            .get("original_name")
            .or_else(|| s.flavor.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        image: s
            .image
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        state: s.state(),
        private_ip: None,
        public_ip: None,
        security_groups: Vec::new(),
        tags: s.metadata.clone(),
    }
}

/// Nova's refusal of a group or keypair that does not exist ("Unable to find
/// security_group with name or id '<id>'", "Invalid key_name provided."), as the
/// `InvalidInput` on the spec's field.
fn missing_group(op: Operation, spec: &InstanceSpec, e: Error) -> Error {
    match &e {
        Error::InvalidInput { message, .. } if message.contains("key_name") => {
            match &spec.keypair {
                Some(k) => Error::invalid(
                    op,
                    "spec.keypair",
                    format!("no keypair named {k:?}: import the public key first"),
                ),
                None => e,
            }
        }
        Error::InvalidInput { message, .. } => unknown_group(op, &spec.security_groups, |g| {
            message.contains(&format!("'{g}'"))
        })
        .unwrap_or(e),
        _ => e,
    }
}

/// The spec's security group an API refusal names (`names(g)`), as `InvalidInput` on
/// `spec.security_groups[i]`; `None` when it names none of them.
pub(crate) fn unknown_group(
    op: Operation,
    groups: &[String],
    names: impl Fn(&str) -> bool,
) -> Option<Error> {
    let i = groups.iter().position(|g| names(g))?;
    Some(Error::invalid(
        op,
        format!("spec.security_groups[{i}]"),
        format!("no security group with id {:?}: create it first", groups[i]),
    ))
}

impl OpenStackProvider {
    // --- flavors, images, keypairs

    async fn resolve_flavor(&self, op: Operation, field: &str, name_or_id: &str) -> Result<Flavor> {
        self.memos
            .flavors
            .get_or_try(name_or_id, || self.look_up_flavor(op, field, name_or_id))
            .await
    }

    async fn look_up_flavor(&self, op: Operation, field: &str, name_or_id: &str) -> Result<Flavor> {
        // One list for every flavor named; one the list lacks (a private flavor of
        // another project shared by id) is read by id.
        let listed = self
            .memos
            .flavor_list
            .get_or_try("", || {
                self.api
                    .list(op, Call::get(Service::Compute, "flavors"), "flavors")
            })
            .await?;
        let items: Vec<(String, String, Flavor)> = listed
            .into_iter()
            .map(|f| (f.id.clone(), f.name.clone(), f))
            .collect();
        if let Ok(f) = pick(op, field, "flavor", name_or_id, &items) {
            return Ok(f);
        }
        match self
            .api
            .send_as::<Flavor>(
                op,
                Call::get(Service::Compute, format!("flavors/{name_or_id}")),
                "flavor",
            )
            .await
        {
            Ok(f) => return Ok(f),
            Err(Error::NotFound { .. }) | Err(Error::InvalidInput { .. }) => {}
            Err(e) => return Err(e),
        }
        let flavors: Vec<Flavor> = self
            .api
            .list(op, Call::get(Service::Compute, "flavors"), "flavors")
            .await?;
        let items: Vec<(String, String, Flavor)> = flavors
            .into_iter()
            .map(|f| (f.id.clone(), f.name.clone(), f))
            .collect();
        pick(op, field, "flavor", name_or_id, &items)
    }

    async fn resolve_image(&self, op: Operation, field: &str, name_or_id: &str) -> Result<Image> {
        self.memos
            .images
            .get_or_try(name_or_id, || self.look_up_image(op, field, name_or_id))
            .await
    }

    async fn look_up_image(&self, op: Operation, field: &str, name_or_id: &str) -> Result<Image> {
        if looks_like_id(name_or_id) {
            match self
                .api
                .send(
                    op,
                    Call::get(Service::Image, format!("images/{name_or_id}")),
                )
                .await
            {
                Ok(v) => {
                    return serde_json::from_value(v)
                        .map_err(|e| crate::error::unexpected(op, format!("image: {e}")))
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let images: Vec<Image> = self
            .api
            .list(
                op,
                Call::get(Service::Image, "images").query("name", name_or_id.to_string()),
                "images",
            )
            .await?;
        let items: Vec<(String, String, Image)> = images
            .into_iter()
            .map(|i| (i.id.clone(), i.name.clone().unwrap_or_default(), i))
            .collect();
        if items.is_empty() {
            return Err(Error::invalid(
                op,
                field,
                format!(
                    "no image with id or name {name_or_id:?}: upload it or use an existing one"
                ),
            ));
        }
        pick(op, field, "image", name_or_id, &items)
    }

    // --- servers

    pub(crate) async fn server(&self, op: Operation, id: &str) -> Result<Server> {
        let s: Server = self
            .api
            .send_as(
                op,
                Call::get(Service::Compute, format!("servers/{id}")),
                "server",
            )
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found(op, format!("instance {id}")),
                e => e,
            })?;
        if s.status == "DELETED" {
            return Err(Error::not_found(op, format!("instance {id}")));
        }
        Ok(s)
    }

    /// Instance records of `servers`, with security groups, private and floating
    /// addresses from their ports (two Neutron calls for the whole set).
    async fn instance_records(&self, op: Operation, servers: &[Server]) -> Result<Vec<Instance>> {
        let ids: Vec<String> = servers.iter().map(|s| s.id.clone()).collect();
        let ports = if ids.is_empty() {
            Vec::new()
        } else {
            self.ports_of(op, &ids).await?
        };
        let port_ids: Vec<String> = ports.iter().map(|p| p.id.clone()).collect();
        let fips = if port_ids.is_empty() {
            Vec::new()
        } else {
            self.fips_on_ports(op, &port_ids).await?
        };
        Ok(servers
            .iter()
            .map(|s| {
                let mine: Vec<_> = ports.iter().filter(|p| p.device_id == s.id).collect();
                let mut groups: Vec<String> = mine
                    .iter()
                    .flat_map(|p| p.security_groups.iter().cloned())
                    .collect();
                groups.sort();
                groups.dedup();
                let private_ip = mine
                    .iter()
                    .flat_map(|p| p.fixed_ips.iter())
                    .map(|f| f.ip_address)
                    .next()
                    .or_else(|| s.addresses_of("fixed"));
                let public_ip = fips
                    .iter()
                    .find(|f| {
                        f.port_id
                            .as_ref()
                            .is_some_and(|p| mine.iter().any(|m| &m.id == p))
                    })
                    // Neutron is the truth: Nova's cached addresses lag behind.
                    .map(|f| f.floating_ip_address);
                Instance {
                    private_ip,
                    public_ip,
                    security_groups: groups,
                    ..record(s)
                }
            })
            .collect())
    }

    pub(crate) async fn get_instance_impl(&self, op: Operation, id: &str) -> Result<Instance> {
        let s = self.server(op, id).await?;
        let mut v = self.instance_records(op, std::slice::from_ref(&s)).await?;
        v.pop()
            .ok_or_else(|| Error::not_found(op, format!("instance {id}")))
    }

    async fn list_servers(&self, op: Operation, call: Call) -> Result<Vec<Server>> {
        let servers: Vec<Server> = self.api.list(op, call, "servers").await?;
        Ok(servers
            .into_iter()
            .filter(|s| s.status != "DELETED")
            .collect())
    }

    /// Resolves and checks a spec; answers the server body to post, or the id of a
    /// server of the same name and spec.
    async fn prepare_server(
        &self,
        op: Operation,
        spec: &InstanceSpec,
    ) -> Result<std::result::Result<Value, String>> {
        spec.validate()?;
        tags::check_metadata(op, "spec.tags", &spec.tags)?;
        let hash = spec_hash(spec);
        // By its exact name: Nova filters on one name (a regular expression without
        // alternation here), and a list of the project could miss one.
        let existing = self
            .list_servers(
                op,
                Call::get(Service::Compute, "servers/detail")
                    .query("name", names_regex(std::slice::from_ref(&spec.name))),
            )
            .await?;
        if let Some(s) = existing
            .iter()
            .find(|s| s.name == spec.name && !s.is_deleting())
        {
            return if s.description.as_deref() == Some(hash.as_str()) {
                Ok(Err(s.id.clone()))
            } else {
                Err(Error::conflict(
                    op,
                    format!("instance {} ({})", spec.name, s.id),
                    "an instance of this name exists with a different spec: delete it or choose another name",
                ))
            };
        }
        self.check_compute_zone(op, "spec.availability_zone", &spec.availability_zone)
            .await?;
        let flavor = self.resolve_flavor(op, "spec.flavor", &spec.flavor).await?;
        let image = self.resolve_image(op, "spec.image", &spec.image).await?;
        let network = match (&spec.network, &spec.subnet) {
            (Some(n), _) => Some(self.resolve_network(op, "spec.network", n, false).await?.id),
            (None, Some(s)) => Some(self.resolve_subnet(op, "spec.subnet", s).await?.network_id),
            (None, None) => None,
        };
        // The groups are not read first: Nova refuses a group that does not exist,
        // naming it (see `create_instance`).
        // Nor the keypair: Nova refuses a key name it does not have.
        let mut server = json!({
            "name": spec.name,
            "description": hash,
            "imageRef": image.id,
            "flavorRef": flavor.id,
            "availability_zone": spec.availability_zone,
            "metadata": spec.tags,
            "tags": tags::nova_server_tags(&spec.tags),
            "networks": match &network {
                Some(n) => json!([{ "uuid": n }]),
                None => json!("auto"),
            },
        });
        if !spec.security_groups.is_empty() {
            server["security_groups"] = spec
                .security_groups
                .iter()
                .map(|g| json!({ "name": g }))
                .collect();
        }
        if let Some(k) = &spec.keypair {
            server["key_name"] = json!(k);
        }
        if let Some(u) = &spec.user_data {
            server["user_data"] = json!(base64(u.as_bytes()));
        }
        Ok(Ok(json!({ "server": server })))
    }

    /// Waits until the server runs; answers its record. `created` is the spec of a
    /// server this call created: its one port has the spec's groups and no floating IP
    /// can be on it yet, so the record comes from the server (its fixed address) and the
    /// spec, without reading Neutron.
    async fn wait_running(
        &self,
        op: Operation,
        id: &str,
        created: Option<&InstanceSpec>,
    ) -> Result<Instance> {
        let s = self
            .watches
            .servers
            .until(
                op,
                &format!("instance {id}"),
                "running",
                self.settings.timeouts.instance,
                id,
                |ids| self.servers_by_id(op, ids),
                |s| {
                    let s = s.ok_or_else(|| Error::not_found(op, format!("instance {id}")))?;
                    match s.state() {
                        InstanceState::Running => Ok(Poll::Ready(s.clone())),
                        InstanceState::Failed => Err(Error::api(
                            op,
                            None,
                            "ERROR",
                            format!(
                                "instance {id} failed to build: {}: delete it and retry",
                                s.fault_message()
                            ),
                        )),
                        st => Ok(Poll::Pending(format!("{st:?} ({})", s.status))),
                    }
                },
            )
            .await?;
        if let Some(spec) = created {
            if let Some(private_ip) = s.addresses_of("fixed") {
                let mut groups = spec.security_groups.clone();
                groups.sort();
                groups.dedup();
                return Ok(Instance {
                    private_ip: Some(private_ip),
                    public_ip: None,
                    security_groups: groups,
                    ..record(&s)
                });
            }
        }
        let mut v = self.instance_records(op, std::slice::from_ref(&s)).await?;
        v.pop()
            .ok_or_else(|| Error::not_found(op, format!("instance {id}")))
    }

    /// Sets and removes instance tags: metadata, and server tags where they fit.
    pub(crate) async fn update_server_tags(
        &self,
        op: Operation,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        tags::check_metadata(op, "set", set)?;
        let s = self.server(op, id).await?;
        if !set.is_empty() {
            self.api
                .send(
                    op,
                    Call::post(
                        Service::Compute,
                        format!("servers/{id}/metadata"),
                        &json!({ "metadata": set }),
                    ),
                )
                .await?;
        }
        for k in remove {
            if s.metadata.contains_key(k) && !set.contains_key(k) {
                match self
                    .api
                    .send(
                        op,
                        Call::delete(Service::Compute, format!("servers/{id}/metadata/{k}")),
                    )
                    .await
                {
                    Ok(_) | Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut all = s.metadata.clone();
        for k in remove {
            all.remove(k);
        }
        all.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.api
            .send(
                op,
                Call::put(
                    Service::Compute,
                    format!("servers/{id}/tags"),
                    &json!({ "tags": tags::nova_server_tags(&all) }),
                ),
            )
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Instances for OpenStackProvider {
    async fn get_instance(&self, id: &str) -> Result<Instance> {
        self.get_instance_impl(provider_core::Operation::GetInstance, id)
            .await
    }

    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>> {
        let op = Operation::ListInstances;
        let mut call = Call::get(Service::Compute, "servers/detail");
        let server_tags = tags::nova_server_tags(&filter.tags);
        if !server_tags.is_empty() {
            call = call.query("tags", server_tags.join(","));
        }
        let servers: Vec<Server> = self
            .list_servers(op, call)
            .await?
            .into_iter()
            .filter(|s| filter.matches(&s.metadata))
            .collect();
        self.instance_records(op, &servers).await
    }

    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        let op = Operation::CreateInstance;
        let (id, fresh) = match self.prepare_server(op, spec).await? {
            Err(id) => (id, false),
            Ok(body) => {
                let v = self
                    .api
                    .send(op, Call::post(Service::Compute, "servers", &body))
                    .await
                    .map_err(|e| missing_group(op, spec, e))?;
                let id = v
                    .pointer("/server/id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        crate::error::unexpected(op, format!("server create answered {v}"))
                    })?;
                (id, true)
            }
        };
        self.wait_running(op, &id, fresh.then_some(spec)).await
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteInstance;
        // Read with the other deletes started together.
        let s = match self.server_read(op, id).await {
            Ok(s) => s,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Some(v) = s.volumes_attached.first() {
            return Err(Error::conflict(
                op,
                format!("instance {id}"),
                format!(
                    "volume {} is attached: detach it first so it is not lost",
                    v.get("id").and_then(Value::as_str).unwrap_or("?")
                ),
            ));
        }
        if !s.is_deleting() {
            self.leave_pools(op, id).await?;
            match self
                .api
                .send(op, Call::delete(Service::Compute, format!("servers/{id}")))
                .await
            {
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(Error::Conflict { message, .. }) => {
                    return Err(Error::transient(
                        op,
                        format!("instance {id} is busy: {message}"),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        self.watches
            .servers
            .until(
                op,
                &format!("instance {id}"),
                "deleted",
                self.settings.timeouts.delete,
                id,
                |ids| self.servers_by_id(op, ids),
                |s| {
                    Ok(match s {
                        None => Poll::Ready(()),
                        Some(s) => Poll::Pending(s.status.clone()),
                    })
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn names_are_looked_up_by_their_common_prefix() {
        let n = |v: &[&str]| names_regex(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(n(&["c1-node-0"]), "^c1-node-0$");
        assert_eq!(n(&["c1-node-0", "c1-node-1", "c1-node-12"]), "^c1-node-");
        assert_eq!(n(&["c1-master-0", "c1-node-1"]), "^c1-");
        assert_eq!(n(&["a.b", "x"]), "^");
        assert_eq!(n(&["a.b1", "a.b2"]), "^a\\.b");
    }

    #[test]
    fn spec_hash_is_stable_and_sensitive() {
        let a = json!({"a": 1});
        assert_eq!(spec_hash(&a), spec_hash(&json!({"a": 1})));
        assert_ne!(spec_hash(&a), spec_hash(&json!({"a": 2})));
        assert!(spec_hash(&a).len() <= 60);
    }
}
