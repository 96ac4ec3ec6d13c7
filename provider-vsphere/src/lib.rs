//! # provider-vsphere: Plinth's provider for VMware vSphere (vCenter, vim25 SOAP)
//!
//! A small typed SOAP layer of our own ([`soap`], [`client`]) over the vim25 calls the
//! provider needs, with quick-xml and reqwest (rustls; `VSphere.CACertFile` trusted,
//! verification always on). Retry and rate limiting are provider-core layers, not
//! repeated here; every wait goes through the shared `Poller`.
//!
//! ## Mapping
//!
//! | Plinth | vSphere |
//! |---|---|
//! | availability zone | a compute cluster of the datacenter (`VSphere.Clusters`, default all) |
//! | instance | a VM cloned from the template (`image` = template name or moref) into the cluster's root resource pool, on `VSphere.Datastore`; id = the VM's moref (`vm-42`) |
//! | network | `VSphere.Network`, a standard or distributed port group: the clone's first adapter is moved onto it by the clone spec (a device edit that keeps its MAC and slot; a VMXNET3 adapter is added when the template has none); unset keeps the template's |
//! | flavor | `cpus:memoryMiB`, in the clone spec |
//! | user data | `guestinfo.userdata` (base64) + `guestinfo.userdata.encoding` in `extraConfig` (cloud-init's VMware datasource) |
//! | instance tags | `extraConfig` entry `plinth.tags` (JSON), set by the clone spec; vCenter custom attributes are read too (older versions' tags) |
//! | volume | a virtual disk `[datastore] plinth-volumes/<name>.vmdk` + its record `<name>.json`; id = name |
//! | security group | a record `[datastore] plinth-security-groups/<name>.json`; **not enforced** |
//! | floating IP, load balancer | none: `floating_ips()` and `load_balancers()` are `None`, so every call is `Unsupported` |
//!
//! ## Tags and their limits
//!
//! - VMs: tags are the `extraConfig` entry `plinth.tags` (a JSON object), written by the
//!   clone itself (one `CloneVM_Task` makes, tags and powers on a VM; no call per tag)
//!   and rewritten whole by `update_tags` (one `ReconfigVM_Task`, serialised within one
//!   process). List-by-tag reads every VM's `extraConfig` and `customValue` in one paged
//!   property retrieval and filters client-side (vCenter has no server-side filter). The
//!   spec as created is the entry `plinth.instance-spec` (create is idempotent by name +
//!   spec). VMs of older versions keep tags and spec in custom attributes (an empty tag
//!   value stored as `∅`, the spec in `plinth-internal:instance-spec`): those are still
//!   read, `plinth.tags` winning, and a removed tag is cleared there too. Tag keys
//!   starting with `plinth-internal:` are reserved. Other custom attributes a VM carries
//!   show up as its tags.
//! - Volumes: a detached disk is a file, not an inventory object, and cannot carry
//!   custom attributes. Its path carries the owner (`plinth-volumes/` prefix, file name =
//!   volume name) and its tags, zone and spec live in a JSON record next to it, written
//!   over the datastore's `/folder` HTTP interface. Listing = one `SearchDatastore_Task`
//!   plus one read per record.
//! - Security groups: records only (see [`security_groups`]); tags live in the record.
//! - Records are updated read-modify-write, serialised within one process only; the
//!   write starts from this process's last read or write of the record when it has one
//!   (a change another process made since is lost, as with two writers at once: the
//!   datastore has no compare-and-swap; the cluster's lease keeps writers to one).
//! - Requests: a VM listing or record listing asked for by several callers at once is
//!   sent once for all of them (the read starts after all of them asked); a create of a record absent from this
//!   process's last listing, or known from its own reads, sends no read first; the
//!   observed state (`list_*`) and `get_*` always read vCenter.
//!
//! ## Configuration
//!
//! [`VSphereBuilder`] is a [`provider_core::config::ProviderBuilder`]: from code, from
//! the environment ([`VSphereBuilder::from_env`]) or from a cluster spec's `VSphere.*`
//! keys ([`VSphereBuilder::with_property`], [`KEYS`]):
//!
//! | key | what | environment |
//! |---|---|---|
//! | `VSphere.URL` | the vCenter SDK endpoint (required) | `VSPHERE_URL`, `GOVC_URL` |
//! | `VSphere.Username` | the vCenter user (required) | `VSPHERE_USERNAME`, `GOVC_USERNAME` |
//! | `VSphere.Password` | the user's password (required, secret) | `VSPHERE_PASSWORD`, `GOVC_PASSWORD` |
//! | `VSphere.Datacenter` | the datacenter (required) | `VSPHERE_DATACENTER`, `GOVC_DATACENTER` |
//! | `VSphere.Clusters` | compute clusters used as AZs; default all of the datacenter | `VSPHERE_CLUSTERS` |
//! | `VSphere.Datastore` | datastore of VMs and volumes; default the first | `VSPHERE_DATASTORE`, `GOVC_DATASTORE` |
//! | `VSphere.Network` | port group of the instances' first adapter; default the template's | `VSPHERE_NETWORK`, `GOVC_NETWORK` |
//! | `VSphere.CACertFile` | PEM file of CAs to trust | `VSPHERE_CA_CERT_FILE`, `GOVC_TLS_CA_CERTS` |
//!
//! The template and flavors are not provider settings: they come in each instance
//! spec (`image`, `flavor`). A missing or wrong setting is
//! [`provider_core::Error::Config`] naming its key.
//!
//! ```no_run
//! # async fn demo() -> provider_core::Result<()> {
//! use provider_core::Provider;
//! let cloud = provider_vsphere::VSphereBuilder::from_env()
//!     .with_clusters(["DC0_C0", "DC0_C1", "DC0_C2"])
//!     .build()
//!     .await?;
//! for az in cloud.list_availability_zones().await? {
//!     println!("{}", az.name);
//! }
//! # Ok(()) }
//! ```

pub mod client;
mod config;
mod error;
mod instances;
mod inventory;
mod provider;
mod records;
pub mod security_groups;
mod shared;
pub mod soap;
mod tags;
mod volumes;

pub use config::{Flavor, VSphereBuilder, VSphereConfig, KEYS};
pub use provider::VSphereProvider;
pub use tags::{EMPTY_VALUE, RESERVED_PREFIX, SPEC_FIELD};
