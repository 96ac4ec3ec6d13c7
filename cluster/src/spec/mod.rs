//! The cluster spec: what the operator asks for, read from the seed's Java-properties
//! format ([`properties`]) or an equivalent TOML format ([`toml`]), checked by
//! [`validate`] into one [`ClusterSpec`].
//!
//! Both formats produce the same flat `key = value` entries (TOML tables become key
//! prefixes: `[OpenStack] Password` is `OpenStack.Password`), so one key table and one
//! validator serve both, and errors name the same keys whichever format was used.

pub mod keys;
pub mod limits;
pub mod properties;
pub mod resources;
pub mod toml;
pub mod validate;

use std::fmt;
use std::path::Path;

use ipnet::IpNet;
use provider_core::config::ProviderBuilder;
use provider_core::{HealthCheck, LbProtocol};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub use validate::{SpecError, SpecErrors};

/// Where an entry came from, so errors can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A line of the file (1-based).
    Line(usize),
    /// A key whose line is not known (errors name the key only).
    Key,
}

/// One `key = value` entry of a spec file, before validation.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key as written, e.g. `OpenStack.Password`.
    pub key: String,
    /// The value, trimmed; lists are comma-separated.
    pub value: String,
    /// Where it was written.
    pub location: Location,
}

// Hand-written so a password never reaches Debug output.
impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if keys::is_secret_key(&self.key) {
            "[REDACTED]"
        } else {
            self.value.as_str()
        };
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("value", &value)
            .field("location", &self.location)
            .finish()
    }
}

/// The IaaS a spec targets (`Provider = OpenStack|AWS|VSphere|local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderKind {
    /// provider-local: a real cloud on this machine.
    Local,
    /// OpenStack (Keystone v3, Nova, Neutron, Cinder, Octavia).
    OpenStack,
    /// Amazon Web Services (EC2, ELBv2).
    Aws,
    /// VMware vSphere.
    VSphere,
}

impl ProviderKind {
    /// The spelling used in spec files and key prefixes.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::OpenStack => "OpenStack",
            ProviderKind::Aws => "AWS",
            ProviderKind::VSphere => "VSphere",
        }
    }

    /// The key prefix of this provider's settings, e.g. `OpenStack.`.
    pub fn key_prefix(self) -> &'static str {
        match self {
            ProviderKind::Local => "Local",
            other => other.as_str(),
        }
    }

    /// Every provider, in the order the docs list them.
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::OpenStack,
        ProviderKind::Aws,
        ProviderKind::VSphere,
        ProviderKind::Local,
    ];
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role of a node in the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Control plane (API endpoints); an odd count keeps quorum.
    Master,
    /// Worker node (application ingress).
    Node,
    /// Storage node (the seed's Gluster nodes), each with a data volume.
    Storage,
}

impl Role {
    /// Every role, in bring-up order.
    pub const ALL: [Role; 3] = [Role::Master, Role::Node, Role::Storage];

    /// The name used in resource names and tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Node => "node",
            Role::Storage => "storage",
        }
    }

    /// Parses [`Role::as_str`].
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What defines the nodes of one role. `Debug` shows user data only as its digest.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSpec {
    /// How many.
    pub count: usize,
    /// Flavor / instance type (id or name).
    pub flavor: String,
    /// Image / AMI / template (id or name).
    pub image: String,
    /// User data passed to each node.
    pub user_data: Option<String>,
    /// The data volumes of each node (`<Role>VolumeCount`, `...Size`, `...Type`); by
    /// default one on each storage node and none on the others.
    pub volumes: Option<VolumeDef>,
    /// Whether each node gets a floating IP from the pool (`<Role>FloatingIP`); by
    /// default the masters do and the others do not.
    pub floating_ip: bool,
}

/// The data volumes each node of a role gets: `count` of `size_gib` GiB, of
/// `volume_type`. They follow their node's slot: replacement hands them over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeDef {
    /// Volumes per node (at least 1).
    pub count: usize,
    /// Size of each in GiB.
    pub size_gib: u64,
    /// The cloud's volume type (e.g. a Cinder type, `gp3`); `None` for its default.
    pub volume_type: Option<String>,
}

impl fmt::Debug for RoleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleSpec")
            .field("count", &self.count)
            .field("flavor", &self.flavor)
            .field("image", &self.image)
            .field(
                "user_data",
                &self
                    .user_data
                    .as_deref()
                    .map(provider_core::user_data_digest),
            )
            .field("volumes", &self.volumes)
            .field("floating_ip", &self.floating_ip)
            .finish()
    }
}

/// Networking shared by every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Network (id or name), where the provider needs one.
    pub network: Option<String>,
    /// Subnets: one for every AZ, or one per AZ in AZ order (AWS).
    pub subnets: Vec<String>,
    /// Pool the floating IPs come from (to the roles that ask for them, by default the
    /// masters); `None` for no floating IPs.
    pub floating_ip_pool: Option<String>,
    /// The pool's id as written (`OpenStack.FloatingIPPoolID`): the pool when no name
    /// is given, else a second spelling the preflight checks names the same pool.
    pub floating_ip_pool_id: Option<String>,
    /// Name of an existing keypair to install on every node.
    pub keypair: Option<String>,
    /// The file holding the keypair's key (`OpenStack.KeypairFile`): the preflight
    /// checks that its public key is the keypair's.
    pub keypair_file: Option<String>,
    /// The only source allowed to SSH in.
    pub jumpbox_cidr: IpNet,
    /// Sources allowed to reach the load balancers' listeners.
    pub load_balancer_cidr: IpNet,
}

impl NetworkSpec {
    /// The subnet for nodes in the AZ at `az_index`.
    pub fn subnet_for(&self, az_index: usize) -> Option<String> {
        match self.subnets.len() {
            0 => None,
            1 => self.subnets.first().cloned(),
            _ => self.subnets.get(az_index).cloned(),
        }
    }
}

/// Who provides the load balancers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancerMode {
    /// The provider creates them (the default).
    Provider,
    /// The installer brings its own (vSphere has none); Plinth creates no LB.
    External,
}

/// Who secures the network between the nodes (`SecurityGroups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityGroupsMode {
    /// The provider's security groups (the default); refused on a provider whose groups
    /// are only records (vSphere).
    Provider,
    /// The installer secures the network elsewhere (NSX, a firewall); Plinth still
    /// creates its least-privilege groups, enforced where the provider enforces them.
    External,
}

/// One load balancer of the topology: a listener in front of the nodes of a role.
/// By default `api` (in front of the masters) and `ingress` (in front of the nodes);
/// `LoadBalancers.<name>.*` keys list others instead ([`resources`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerDef {
    /// Short name, part of the LB's resource name `<cluster>-<name>`.
    pub name: String,
    /// The role whose nodes are the members.
    pub role: Role,
    /// Listener protocol.
    pub protocol: LbProtocol,
    /// Port the LB listens on.
    pub port: u16,
    /// Port on the members.
    pub target_port: u16,
    /// How the pool checks its members.
    pub health_check: HealthCheck,
    /// Sources allowed to reach the listener (by default the provider's
    /// `LoadBalancerCIDR`).
    pub sources: Vec<IpNet>,
    /// Purpose of the security group on the listener, `<cluster>-<group>`: `lb`, shared
    /// by the default pair; `lb-<name>` for each listed LB, so each opens exactly its
    /// port to its sources.
    pub group: String,
}

/// The whole validated spec.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The file it was read from (for messages).
    pub source: String,
    /// Owner tag of everything created (`ClusterName`, default `plinth`).
    pub name: String,
    /// Whether the spec has no `ClusterName` and the default named it (the plan and
    /// status say so: two such specs on one project share a cluster).
    pub name_is_default: bool,
    /// Which provider.
    pub provider: ProviderKind,
    /// AZ names in order; nodes are spread over them round robin.
    pub availability_zones: Vec<String>,
    /// Masters (`MasterCount`).
    pub masters: RoleSpec,
    /// Worker nodes (`NodeCount`).
    pub nodes: RoleSpec,
    /// Storage nodes (`GlusterNodeCount`).
    pub storage: RoleSpec,
    /// Networking.
    pub network: NetworkSpec,
    /// Who provides the LBs.
    pub load_balancer_mode: LoadBalancerMode,
    /// Who secures the network.
    pub security_groups_mode: SecurityGroupsMode,
    /// The LBs (API, and ingress when there are worker nodes).
    pub load_balancers: Vec<LoadBalancerDef>,
    /// The provider's own settings (endpoints, credentials, ...).
    pub provider_config: ProviderConfig,
    /// Keys the spec sets that have no effect, each with why (the plan, apply and status
    /// say so).
    pub ignored_keys: Vec<String>,
}

impl ClusterSpec {
    /// The spec of one role.
    pub fn role(&self, role: Role) -> &RoleSpec {
        match role {
            Role::Master => &self.masters,
            Role::Node => &self.nodes,
            Role::Storage => &self.storage,
        }
    }

    /// Mutable spec of one role (e.g. to scale it in tests or benchmarks).
    pub fn role_mut(&mut self, role: Role) -> &mut RoleSpec {
        match role {
            Role::Master => &mut self.masters,
            Role::Node => &mut self.nodes,
            Role::Storage => &mut self.storage,
        }
    }

    /// Parses and validates spec text; `format` is picked from `source`'s extension
    /// (`.toml` for TOML, anything else for properties).
    /// Errors never hold a value written to a secret key (see [`limits`]).
    pub fn parse(source: &str, text: &str) -> Result<ClusterSpec> {
        let parsed = if text.len() > limits::MAX_FILE_BYTES {
            Err(too_large(source, text.len()))
        } else if source.ends_with(".toml") {
            toml::parse(source, text)
        } else {
            properties::parse(source, text)
        };
        parsed
            .and_then(|entries| validate::build(source, &entries))
            .map_err(|errors| Error::Spec(limits::scrub(errors, &limits::secrets_in(text))))
    }

    /// Reads, parses and validates a spec file (at most [`limits::MAX_FILE_BYTES`]; a
    /// larger one is refused before it is read).
    pub fn load(path: &Path) -> Result<ClusterSpec> {
        use std::io::Read;
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let source = path.display().to_string();
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        let cap = limits::MAX_FILE_BYTES as u64 + 1;
        file.take(cap).read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() > limits::MAX_FILE_BYTES {
            let size = std::fs::metadata(path).map_or(bytes.len(), |m| m.len() as usize);
            return Err(Error::Spec(too_large(&source, size)));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            Error::Spec(SpecErrors(vec![SpecError::at_line(
                &source,
                line,
                "",
                "not UTF-8 text: save the file as UTF-8",
            )]))
        })?;
        ClusterSpec::parse(&source, &text)
    }
}

fn too_large(source: &str, size: usize) -> SpecErrors {
    SpecErrors(vec![SpecError::at_key(
        source,
        "",
        format!(
            "{size} bytes is too large for a spec: keep it under {} bytes",
            limits::MAX_FILE_BYTES
        ),
    )])
}

/// The provider's own settings from the spec: the `<Prefix>.*` entries its key table
/// declares ([`provider_core::config::ConfigKey`]), handed to its builder when the
/// cluster opens it ([`crate::cloud::open`]). The planner never reads them. Values of
/// secret keys never reach `Debug`.
#[derive(Clone, Default)]
pub struct ProviderConfig {
    entries: Vec<(String, SecretString, bool)>,
}

impl ProviderConfig {
    /// Adds `key = value`; `secret` hides the value from `Debug`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>, secret: bool) {
        let key = key.into();
        self.entries.retain(|(k, _, _)| *k != key);
        self.entries
            .push((key, SecretString::from(value.into()), secret));
    }

    /// The keys set, e.g. `OpenStack.AuthURL`.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _, _)| k.as_str())
    }

    /// Sets every entry on a provider's builder (`with_property`), secrets included,
    /// as [`crate::cloud::open`] does; for callers that need the concrete provider.
    pub fn configure<B: ProviderBuilder>(&self, builder: B) -> provider_core::Result<B> {
        self.entries.iter().try_fold(builder, |b, (k, v, _)| {
            b.with_property(k, v.expose_secret())
        })
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v, secret)| {
                (
                    k,
                    if *secret {
                        "[REDACTED]"
                    } else {
                        v.expose_secret()
                    },
                )
            }))
            .finish()
    }
}
