//! The preflight ([`provider_core::Provider::preflight`]): the spec's references resolved
//! against Nova (zones, flavors, keypairs), Glance (images), Cinder (volume zones, volume
//! types) and
//! Neutron (networks, subnets, external networks as floating IP pools), each list fetched
//! once; the keypair file's public key compared with the keypair's; and the demand
//! against the quotas Nova (`/limits`), Cinder (`/limits`), Neutron
//! (`/quotas/{project}/details`) and Octavia (`lbaas/quotas/{project}`) report. Reads
//! only.

use std::path::Path;

use provider_core::{Operation, Problem, Reference, References, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::client::{Call, Service};
use crate::provider::OpenStackProvider;

const OP: Operation = Operation::Preflight;

/// The egress rules Neutron adds to every new security group (IPv4 and IPv6).
const NEUTRON_EGRESS_RULES: usize = 2;

#[derive(Debug, Clone, Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct FlavorDetail {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    vcpus: u64,
    #[serde(default)]
    ram: u64,
}

/// `r` resolved among `(id, name)` pairs: its id, or the problem (none, or several of
/// that name).
fn resolve<'a>(
    r: &Reference,
    what: &str,
    items: &'a [(String, String)],
) -> Result<&'a str, Problem> {
    if let Some((id, _)) = items.iter().find(|(id, _)| *id == r.value) {
        return Ok(id);
    }
    let named: Vec<&str> = items
        .iter()
        .filter(|(_, n)| *n == r.value)
        .map(|(id, _)| id.as_str())
        .collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => {
            let candidates: Vec<&str> = items
                .iter()
                .map(|(id, n)| {
                    if n.is_empty() {
                        id.as_str()
                    } else {
                        n.as_str()
                    }
                })
                .collect();
            Err(Problem::not_found(r, what, &candidates))
        }
        many => Err(Problem::ambiguous(r, what, many)),
    }
}

impl OpenStackProvider {
    pub(crate) async fn preflight_checks(&self, refs: &References) -> Result<Vec<Problem>> {
        let mut problems = refs.check_zones(&self.zones().await?);

        if !refs.images.is_empty() {
            let images: Vec<Named> = self
                .api
                .list(OP, Call::get(Service::Image, "images"), "images")
                .await?;
            let items: Vec<(String, String)> = images
                .into_iter()
                .map(|i| (i.id, i.name.unwrap_or_default()))
                .collect();
            for r in &refs.images {
                problems.extend(resolve(r, "image", &items).err());
            }
        }

        let mut flavors = Vec::new();
        if !refs.flavors.is_empty() || !refs.demand.instances.is_empty() {
            flavors = self
                .api
                .list::<FlavorDetail>(OP, Call::get(Service::Compute, "flavors/detail"), "flavors")
                .await?;
        }
        let flavor_items: Vec<(String, String)> = flavors
            .iter()
            .map(|f| (f.id.clone(), f.name.clone()))
            .collect();
        for r in &refs.flavors {
            problems.extend(resolve(r, "flavor", &flavor_items).err());
        }

        if !refs.volume_types.is_empty() {
            let types: Vec<Named> = self
                .api
                .list(OP, Call::get(Service::Volume, "types"), "volume_types")
                .await?;
            let items: Vec<(String, String)> = types
                .into_iter()
                .map(|t| (t.id, t.name.unwrap_or_default()))
                .collect();
            for r in &refs.volume_types {
                problems.extend(resolve(r, "volume type", &items).err());
            }
        }

        let pools = refs
            .floating_ip_pool
            .iter()
            .chain(&refs.floating_ip_pool_aliases);
        if refs.network.is_some() || !refs.subnets.is_empty() || pools.clone().next().is_some() {
            problems.extend(self.check_networks(refs).await?);
        }

        if let Some(keypair) = &refs.keypair {
            problems.extend(
                self.check_keypair_ref(keypair, refs.keypair_file.as_ref())
                    .await?,
            );
        }

        problems.extend(self.check_quotas(refs, &flavors).await);
        Ok(problems)
    }

    async fn check_networks(&self, refs: &References) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        let nets = self.networks(OP).await?;
        let all: Vec<(String, String)> = nets
            .iter()
            .map(|n| (n.id.clone(), n.name.clone()))
            .collect();
        let external: Vec<(String, String)> = nets
            .iter()
            .filter(|n| n.external)
            .map(|n| (n.id.clone(), n.name.clone()))
            .collect();
        let network_id = match &refs.network {
            Some(r) => match resolve(r, "network", &all) {
                Ok(id) => Some(id.to_string()),
                Err(p) => {
                    problems.push(p);
                    None
                }
            },
            None => None,
        };
        if !refs.subnets.is_empty() {
            let subnets: Vec<crate::network::NeutronSubnet> = self
                .api
                .list(OP, Call::get(Service::Network, "subnets"), "subnets")
                .await?;
            let items: Vec<(String, String)> = subnets
                .iter()
                .map(|s| (s.id.clone(), s.name.clone()))
                .collect();
            for r in &refs.subnets {
                match resolve(r, "subnet", &items) {
                    Err(p) => problems.push(p),
                    Ok(id) => {
                        let on = subnets
                            .iter()
                            .find(|s| s.id == id)
                            .map(|s| s.network_id.as_str());
                        if let (Some(net), Some(on)) = (&network_id, on) {
                            if net != on {
                                let on_name = all
                                    .iter()
                                    .find(|(i, _)| i == on)
                                    .map_or(on, |(_, n)| n.as_str());
                                problems.push(Problem::new(
                                    &r.key,
                                    format!(
                                        "subnet `{}` is on network `{on_name}`, not on the nodes' network: use a subnet of that network",
                                        r.value
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
        }
        let mut pool_id = None;
        if let Some(r) = &refs.floating_ip_pool {
            match resolve(r, "external network", &external) {
                Ok(id) => pool_id = Some(id.to_string()),
                Err(p) => problems.push(p),
            }
        }
        for r in &refs.floating_ip_pool_aliases {
            match resolve(r, "external network", &external) {
                Err(p) => problems.push(p),
                Ok(id) => {
                    if let (Some(pool), Some(first)) = (&pool_id, &refs.floating_ip_pool) {
                        if pool != id {
                            problems.push(Problem::new(
                                &r.key,
                                format!(
                                    "`{}` is another external network than {} `{}`: remove one, or make both name the same pool",
                                    r.value, first.key, first.value
                                ),
                            ));
                        }
                    }
                }
            }
        }
        Ok(problems)
    }

    async fn check_keypair_ref(
        &self,
        r: &Reference,
        file: Option<&Reference>,
    ) -> Result<Vec<Problem>> {
        let v = self
            .api
            .send(OP, Call::get(Service::Compute, "os-keypairs"))
            .await?;
        let keypairs: Vec<(String, String, String)> = v["keypairs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| {
                let k = &k["keypair"];
                Some((
                    k["name"].as_str()?.to_string(),
                    k["public_key"].as_str().unwrap_or_default().to_string(),
                    k["fingerprint"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect();
        let Some((name, public_key, fingerprint)) = keypairs.iter().find(|(n, _, _)| *n == r.value)
        else {
            let names: Vec<&str> = keypairs.iter().map(|(n, _, _)| n.as_str()).collect();
            return Ok(vec![Problem::not_found(r, "keypair", &names)]);
        };
        let Some(file) = file else {
            return Ok(Vec::new());
        };
        let theirs = key_blob(public_key);
        Ok(match file_public_key(Path::new(&file.value)) {
            Err(why) => vec![Problem::new(&file.key, why)],
            Ok(ours) if Some(&ours) == theirs.as_ref() => Vec::new(),
            Ok(_) => vec![Problem::new(
                &file.key,
                format!(
                    "the key in {} is not keypair `{name}`'s (fingerprint {fingerprint}): use that keypair's key file, or import this key's public key as a keypair and name it in {}",
                    file.value, r.key
                ),
            )],
        })
    }

    /// Quota problems; a quota the cloud does not report (or refuses to show) is not
    /// checked.
    async fn check_quotas(&self, refs: &References, flavors: &[FlavorDetail]) -> Vec<Problem> {
        let d = &refs.demand;
        let mut problems = Vec::new();
        let instances = d.instance_count() as u64;
        if instances > 0 {
            let (mut cores, mut ram) = (0, 0);
            for (r, n) in &d.instances {
                if let Some(f) = flavors
                    .iter()
                    .find(|f| f.id == r.value || f.name == r.value)
                {
                    cores += f.vcpus * *n as u64;
                    ram += f.ram * *n as u64;
                }
            }
            if let Some(limits) = self.absolute_limits(Service::Compute).await {
                for (what, needed, max, used) in [
                    (
                        "instances",
                        instances,
                        "maxTotalInstances",
                        "totalInstancesUsed",
                    ),
                    ("cores", cores, "maxTotalCores", "totalCoresUsed"),
                    ("RAM (MiB)", ram, "maxTotalRAMSize", "totalRAMUsed"),
                ] {
                    problems.extend(short(what, needed, limits.get(max), limits.get(used)));
                }
            }
        }
        if d.volumes > 0 {
            if let Some(limits) = self.absolute_limits(Service::Volume).await {
                for (what, needed, max, used) in [
                    (
                        "volumes",
                        d.volumes as u64,
                        "maxTotalVolumes",
                        "totalVolumesUsed",
                    ),
                    (
                        "volume GiB",
                        d.volume_gib,
                        "maxTotalVolumeGigabytes",
                        "totalGigabytesUsed",
                    ),
                ] {
                    problems.extend(short(what, needed, limits.get(max), limits.get(used)));
                }
            }
        }
        if d.floating_ips > 0 || d.security_groups > 0 || d.security_group_rules > 0 {
            if let Some(project) = self.project_id() {
                let call = Call::get(Service::Network, format!("quotas/{project}/details"));
                match self.api.send(OP, call).await {
                    Ok(v) => {
                        let q = &v["quota"];
                        for (what, needed, key) in [
                            ("floating IPs", d.floating_ips as u64, "floatingip"),
                            (
                                "security groups",
                                d.security_groups as u64,
                                "security_group",
                            ),
                            // Neutron gives each new group two egress rules (IPv4, IPv6).
                            (
                                "security group rules",
                                (d.security_group_rules + NEUTRON_EGRESS_RULES * d.security_groups)
                                    as u64,
                                "security_group_rule",
                            ),
                        ] {
                            let used = q[key]["used"].as_i64().unwrap_or(0)
                                + q[key]["reserved"].as_i64().unwrap_or(0);
                            problems.extend(short(
                                what,
                                needed,
                                Some(&q[key]["limit"]),
                                Some(&Value::from(used)),
                            ));
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "Neutron quotas not checked"),
                }
            }
        }
        if d.load_balancers > 0 {
            problems.extend(self.check_octavia_quota(d).await);
        }
        problems
    }

    /// Octavia's quota (`GET lbaas/quotas/{project}`) against the new load balancers
    /// and listeners (each listener brings a pool and a health monitor). Octavia reports
    /// no usage, so a limited kind is counted by listing it; an unlimited one (-1, the
    /// default) costs no listing.
    async fn check_octavia_quota(&self, d: &provider_core::Demand) -> Vec<Problem> {
        let Some(project) = self.project_id() else {
            return Vec::new();
        };
        let call = Call::get(Service::LoadBalancer, format!("lbaas/quotas/{project}"));
        let quota = match self.api.send(OP, call).await {
            Ok(mut v) => v["quota"].take(),
            Err(e) => {
                tracing::debug!(error = %e, "Octavia quotas not checked");
                return Vec::new();
            }
        };
        let (lbs, listeners) = (d.load_balancers as u64, d.listeners as u64);
        let mut problems = Vec::new();
        for (what, needed, key, list) in [
            ("load balancers", lbs, "load_balancer", "loadbalancers"),
            ("listeners", listeners, "listener", "listeners"),
            ("pools", listeners, "pool", "pools"),
            (
                "health monitors",
                listeners,
                "health_monitor",
                "healthmonitors",
            ),
        ] {
            let limit = &quota[key];
            if needed == 0 || limit.as_i64().is_none_or(|l| l < 0) {
                continue;
            }
            let call = Call::get(Service::LoadBalancer, format!("lbaas/{list}"))
                .query("project_id", project.clone())
                .query("fields", "id");
            match self.api.list::<Named>(OP, call, list).await {
                Ok(used) => problems.extend(short(
                    what,
                    needed,
                    Some(limit),
                    Some(&Value::from(used.len() as u64)),
                )),
                Err(e) => tracing::debug!(error = %e, what, "Octavia usage not counted"),
            }
        }
        problems
    }

    /// The `absolute` limits of Nova or Cinder (`GET /limits`), or `None` when the
    /// cloud does not answer them.
    async fn absolute_limits(&self, service: Service) -> Option<Value> {
        match self.api.send(OP, Call::get(service, "limits")).await {
            Ok(mut v) => Some(v["limits"]["absolute"].take()),
            Err(e) => {
                tracing::debug!(error = %e, "limits not checked");
                None
            }
        }
    }
}

/// A quota problem when `needed` more do not fit `limit` (negative: unlimited).
fn short(what: &str, needed: u64, limit: Option<&Value>, used: Option<&Value>) -> Option<Problem> {
    let limit = limit?.as_i64()?;
    let used = used.and_then(Value::as_i64).unwrap_or(0).max(0) as u64;
    if needed == 0 || limit < 0 {
        return None;
    }
    let limit = limit as u64;
    (used + needed > limit).then(|| Problem::quota(what, needed, used, limit))
}

/// The key blob of an OpenSSH public key line (`ssh-ed25519 AAAA... comment`).
fn key_blob(line: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let b64 = line.split_whitespace().nth(1)?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// The public key blob of a key file: a public key line, an OpenSSH private key (whose
/// public key is stored in clear), or a `.pub` file next to it. The message of an error
/// says why and never quotes the file.
fn file_public_key(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e}: name the keypair's key file",
            path.display()
        )
    })?;
    if let Some(blob) = key_blob(text.trim()).filter(|_| !text.contains("PRIVATE KEY")) {
        return Ok(blob);
    }
    if let Some(blob) = openssh_private_public_key(&text) {
        return Ok(blob);
    }
    let pub_path = format!("{}.pub", path.display());
    if let Ok(line) = std::fs::read_to_string(&pub_path) {
        if let Some(blob) = key_blob(line.trim()) {
            return Ok(blob);
        }
    }
    Err(format!(
        "cannot read a public key from {}: use an OpenSSH key file (ssh-keygen -p -f FILE converts one), or put its public key next to it as {pub_path}",
        path.display()
    ))
}

/// The public key stored in clear in an OpenSSH private key (`openssh-key-v1`).
fn openssh_private_public_key(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const END: &str = "-----END OPENSSH PRIVATE KEY-----";
    let start = text.find(BEGIN)? + BEGIN.len();
    let end = text[start..].find(END)? + start;
    let b64: String = text[start..end].split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let rest = bytes.strip_prefix(b"openssh-key-v1\0")?;
    let mut r = rest;
    for _ in 0..3 {
        // cipher name, kdf name, kdf options
        (_, r) = ssh_string(r)?;
    }
    let (count, tail) = r.split_first_chunk::<4>()?;
    if u32::from_be_bytes(*count) < 1 {
        return None;
    }
    let (public, _) = ssh_string(tail)?;
    Some(public.to_vec())
}

/// An SSH wire-format string (u32 length, bytes) and what follows it.
fn ssh_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = b.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(b: &[u8]) -> Vec<u8> {
        let mut out = (b.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(b);
        out
    }

    /// An unencrypted OpenSSH private key file around `public` (the private part is
    /// filler: only the public part is read).
    fn private_key_file(public: &[u8]) -> String {
        use base64::Engine;
        let mut bytes = b"openssh-key-v1\0".to_vec();
        bytes.extend(string(b"none"));
        bytes.extend(string(b"none"));
        bytes.extend(string(b""));
        bytes.extend(1u32.to_be_bytes());
        bytes.extend(string(public));
        bytes.extend(string(&[0u8; 64]));
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{b64}\n-----END OPENSSH PRIVATE KEY-----\n")
    }

    #[test]
    fn the_public_key_of_an_openssh_private_key_is_read_in_clear() {
        let mut public = string(b"ssh-ed25519");
        public.extend(string(&[7u8; 32]));
        let blob = openssh_private_public_key(&private_key_file(&public)).expect("public key");
        assert_eq!(blob, public);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, private_key_file(&public)).unwrap();
        assert_eq!(file_public_key(&path), Ok(public.clone()));
        std::fs::write(&path, "-----BEGIN RSA PRIVATE KEY-----\nxx\n").unwrap();
        let why = file_public_key(&path).unwrap_err();
        assert!(why.contains("put its public key next to it"), "{why}");
        assert!(!why.contains("xx"), "{why}");
        use base64::Engine;
        let line = format!(
            "ssh-ed25519 {} me@host",
            base64::engine::general_purpose::STANDARD.encode(&public)
        );
        std::fs::write(dir.path().join("key.pub"), line).unwrap();
        assert_eq!(file_public_key(&path), Ok(public));
    }

    #[test]
    fn resolve_names_ids_and_ambiguity() {
        let items = vec![
            ("1".to_string(), "a".to_string()),
            ("2".to_string(), "b".to_string()),
            ("3".to_string(), "b".to_string()),
        ];
        let r = |v: &str| Reference::new("K", v);
        assert_eq!(resolve(&r("1"), "image", &items), Ok("1"));
        assert_eq!(resolve(&r("a"), "image", &items), Ok("1"));
        let amb = resolve(&r("b"), "image", &items).unwrap_err();
        assert_eq!(amb.message, "`b` names 2 images (2, 3): use one's id");
        let none = resolve(&r("z"), "image", &items).unwrap_err();
        assert_eq!(none.message, "no image with id or name `z`; images: a, b");
    }

    #[test]
    fn quotas_count_what_is_left() {
        let p = short(
            "instances",
            6,
            Some(&Value::from(10)),
            Some(&Value::from(8)),
        )
        .unwrap();
        assert!(p
            .message
            .starts_with("instances: the plan needs 6 more, the project has 2 left of 10"));
        assert!(short(
            "instances",
            6,
            Some(&Value::from(-1)),
            Some(&Value::from(8))
        )
        .is_none());
        assert!(short(
            "instances",
            2,
            Some(&Value::from(10)),
            Some(&Value::from(8))
        )
        .is_none());
    }
}
