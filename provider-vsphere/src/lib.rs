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
//! | network | `VSphere.Network`, a standard or distributed port group: the clone's first adapter is moved onto it in the same `ReconfigVM_Task` as the flavor (a device edit that keeps its MAC and slot; a VMXNET3 adapter is added when the template has none); unset keeps the template's |
//! | flavor | `cpus:memoryMiB`, applied by `ReconfigVM_Task` |
//! | user data | `guestinfo.userdata` (base64) + `guestinfo.userdata.encoding` in `extraConfig` (cloud-init's VMware datasource) |
//! | instance tags | vCenter custom attributes (one global definition per tag key, `SetField` per value) |
//! | volume | a virtual disk `[datastore] plinth-volumes/<name>.vmdk` + its record `<name>.json`; id = name |
//! | security group | a record `[datastore] plinth-security-groups/<name>.json`; **not enforced** |
//! | floating IP, load balancer | none: `floating_ips()` and `load_balancers()` are `None`, so every call is `Unsupported` |
//!
//! ## Tags and their limits
//!
//! - VMs: tags are custom attributes, so list-by-tag reads every VM's `customValue` in
//!   one paged property retrieval and filters client-side (vCenter has no server-side
//!   filter on attribute values). vCenter clears an attribute set to `""`, so an empty
//!   tag value is stored as `∅` (read back as empty). Tag keys starting with
//!   `plinth-internal:` are reserved (the provider records an instance's spec as created
//!   in `plinth-internal:instance-spec`, which makes create idempotent by name + spec).
//!   Other custom attributes a VM carries show up as its tags.
//! - Volumes: a detached disk is a file, not an inventory object, and cannot carry
//!   custom attributes. Its path carries the owner (`plinth-volumes/` prefix, file name =
//!   volume name) and its tags, zone and spec live in a JSON record next to it, written
//!   over the datastore's `/folder` HTTP interface. Listing = one `SearchDatastore_Task`
//!   plus one read per record.
//! - Security groups: records only (see [`security_groups`]); tags live in the record.
//! - Records are updated read-modify-write, serialised within one process only.
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
pub mod soap;
mod tags;
mod volumes;

pub use config::{Flavor, VSphereBuilder, VSphereConfig, KEYS};
pub use provider::VSphereProvider;
pub use tags::{EMPTY_VALUE, RESERVED_PREFIX, SPEC_FIELD};
