//! [`VSphereProvider`]: the `Provider` implementation and the VM listing every family
//! reads from.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use provider_core::*;
use tokio::sync::{Mutex, OnceCell};

use crate::client::{Client, ObjectContent};
use crate::config::VSphereConfig;
use crate::inventory::{self, Inventory};
use crate::records;
use crate::shared::SharedReads;
use crate::soap::{Element, MoRef};
use crate::tags::{self, Fields};

/// The vSphere provider. Build it with [`crate::VSphereBuilder`].
pub struct VSphereProvider {
    pub(crate) cfg: VSphereConfig,
    pub(crate) client: Client,
    inv: OnceCell<Inventory>,
    vm_view: Mutex<Option<MoRef>>,
    pub(crate) fields: Fields,
    record_locks: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
    pub(crate) volume_dir_made: OnceCell<()>,
    /// The group records this process last read or wrote, by id: existence checks and
    /// the rule-reference check of a delete read them here (see [`crate::security_groups`]).
    /// The volume records this process last read or wrote, by id (see
    /// [`crate::volumes`]).
    pub(crate) volumes_seen: std::sync::Mutex<BTreeMap<String, crate::volumes::VolumeRecord>>,
    vm_reads: SharedReads<Vec<Vm>>,
    /// Record ids per directory as this process last listed them, kept up to date with
    /// its own writes and deletes: a create of an id absent there needs no read first.
    listed: std::sync::Mutex<BTreeMap<String, std::collections::BTreeSet<String>>>,
    id_reads: SharedReads<Vec<String>>,
    pub(crate) groups_seen: std::sync::Mutex<BTreeMap<String, crate::security_groups::GroupRecord>>,
}

impl std::fmt::Debug for VSphereProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VSphereProvider")
            .field("url", &self.cfg.url)
            .field("datacenter", &self.cfg.datacenter)
            .finish_non_exhaustive()
    }
}

/// A disk device of a VM.
#[derive(Debug, Clone)]
pub(crate) struct Disk {
    pub key: i32,
    pub controller_key: i32,
    pub unit: i32,
    pub file: String,
}

/// What the provider reads of one VM.
#[derive(Debug, Clone)]
pub(crate) struct Vm {
    pub moref: MoRef,
    pub name: String,
    pub template: bool,
    pub power: String,
    pub pool: Option<String>,
    pub ip: Option<String>,
    pub cpus: u32,
    pub memory_mib: u64,
    /// Custom attribute values by name (tags and the spec of VMs made before
    /// `plinth.*` extraConfig; other attributes a user set).
    pub attrs: BTreeMap<String, String>,
    /// The `plinth.*` entries of `config.extraConfig` (tags and spec as created).
    pub extra: BTreeMap<String, String>,
    pub disks: Vec<Disk>,
    /// (key, xsi type) of every device, to pick a disk controller.
    pub devices: Vec<(i32, String, i32)>,
    /// The networks it is on (moref values).
    pub networks: Vec<String>,
    /// The network adapters as read (backing `VirtualEthernetCard*`), in device order.
    pub nics: Vec<Element>,
}

pub(crate) const VM_PROPS: &[&str] = &[
    "name",
    "config.template",
    "runtime.powerState",
    "resourcePool",
    "guest.ipAddress",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "customValue",
    "config.hardware.device",
    "config.extraConfig",
    "network",
];

/// Whether a retrieval failed because an object it names does not exist (or is not a VM).
fn gone(e: &Error) -> bool {
    match e {
        Error::NotFound { .. } | Error::InvalidInput { .. } => true,
        Error::Api { code, .. } => code.contains("NotFound") || code == "InvalidType",
        _ => false,
    }
}

fn int(e: &Element, name: &str) -> Option<i64> {
    e.child_text(name).and_then(|t| t.trim().parse().ok())
}

impl VSphereProvider {
    /// A provider for `cfg`; nothing is contacted until the first call.
    pub fn new(cfg: VSphereConfig) -> Result<Self> {
        let client = Client::new(&cfg)?;
        Ok(Self {
            cfg,
            client,
            inv: OnceCell::new(),
            vm_view: Mutex::new(None),
            fields: Fields::default(),
            record_locks: Mutex::new(BTreeMap::new()),
            volume_dir_made: OnceCell::new(),
            groups_seen: std::sync::Mutex::new(BTreeMap::new()),
            vm_reads: SharedReads::default(),
            volumes_seen: std::sync::Mutex::new(BTreeMap::new()),
            listed: std::sync::Mutex::new(BTreeMap::new()),
            id_reads: SharedReads::default(),
        })
    }

    /// HTTP requests sent to vCenter so far (SOAP calls and datastore file transfers),
    /// for measuring what an operation costs.
    pub fn api_requests(&self) -> u64 {
        self.client.requests()
    }

    /// HTTP requests sent to vCenter so far per operation, retries and re-logins
    /// included: `vim25.<SOAP method>` (`vim25.CloneVM_Task`, `vim25.RetrievePropertiesEx`)
    /// and `file.GET` / `file.PUT` for datastore files. The counter is shared: clone it
    /// before handing the provider away, and
    /// [`reset`](provider_core::requests::RequestCounts::reset) it between phases.
    pub fn request_counts(&self) -> &provider_core::requests::RequestCounts {
        self.client.counts()
    }

    /// Its configuration.
    pub fn config(&self) -> &VSphereConfig {
        &self.cfg
    }

    /// The resolved inventory (resolved on first use).
    pub(crate) async fn inv(&self) -> Result<&Inventory> {
        self.inv
            .get_or_try_init(|| inventory::resolve(&self.client, &self.cfg))
            .await
    }

    /// A lock serialising read-modify-write of one record.
    pub(crate) async fn record_lock(&self, key: &str) -> Arc<Mutex<()>> {
        self.record_locks
            .lock()
            .await
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    async fn parse_vm(&self, op: Operation, o: ObjectContent) -> Result<Vm> {
        let attrs = self
            .fields
            .values(&self.client, op, o.props.get("customValue"))
            .await?;
        // Only the provider's own entries: the rest (user data among them) is not kept.
        let mut extra = BTreeMap::new();
        if let Some(ec) = o.props.get("config.extraConfig") {
            for v in &ec.children {
                if let Some(k) = v
                    .child_text("key")
                    .filter(|k| k.starts_with(tags::EXTRA_PREFIX))
                {
                    extra.insert(
                        k.to_string(),
                        v.child_text("value").unwrap_or_default().to_string(),
                    );
                }
            }
        }
        let mut disks = Vec::new();
        let mut devices = Vec::new();
        let mut nics = Vec::new();
        if let Some(devs) = o.props.get("config.hardware.device") {
            for d in &devs.children {
                if d.child("backing")
                    .and_then(Element::xsi_type)
                    .is_some_and(|t| t.starts_with("VirtualEthernetCard"))
                {
                    nics.push(d.clone());
                }
                let ty = d.xsi_type().unwrap_or("").to_string();
                let key = int(d, "key").unwrap_or(0) as i32;
                let ckey = int(d, "controllerKey").unwrap_or(-1) as i32;
                devices.push((key, ty.clone(), ckey));
                if ty == "VirtualDisk" {
                    disks.push(Disk {
                        key,
                        controller_key: ckey,
                        unit: int(d, "unitNumber").unwrap_or(-1) as i32,
                        file: d
                            .child("backing")
                            .and_then(|b| b.child_text("fileName"))
                            .unwrap_or_default()
                            .to_string(),
                    });
                }
            }
        }
        Ok(Vm {
            name: o.text("name").unwrap_or_default().to_string(),
            template: o.text("config.template") == Some("true"),
            power: o.text("runtime.powerState").unwrap_or_default().to_string(),
            pool: o
                .props
                .get("resourcePool")
                .map(|p| p.text.trim().to_string()),
            ip: o
                .text("guest.ipAddress")
                .map(str::to_string)
                .filter(|s| !s.is_empty()),
            cpus: o
                .text("config.hardware.numCPU")
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0),
            memory_mib: o
                .text("config.hardware.memoryMB")
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0),
            attrs,
            extra,
            networks: o
                .props
                .get("network")
                .map(|n| {
                    n.children
                        .iter()
                        .map(|c| c.text.trim().to_string())
                        .collect()
                })
                .unwrap_or_default(),
            disks,
            devices,
            nics,
            moref: o.obj,
        })
    }

    /// Every VM and template of the datacenter (one property retrieval, paged), shared
    /// with the callers asking at the same moment ([`SharedReads`]).
    pub(crate) async fn list_vms(&self, op: Operation) -> Result<Vec<Vm>> {
        self.vm_reads.read("vms", self.read_vms(op)).await
    }

    /// The ids of the records in `dir` (one datastore search), shared with the callers
    /// asking at the same moment.
    pub(crate) async fn record_ids(&self, op: Operation, dir: &str) -> Result<Vec<String>> {
        let inv = self.inv().await?;
        let timeout = self.cfg.timeouts.delete;
        let ids = self
            .id_reads
            .read(dir, records::list_ids(&self.client, inv, op, dir, timeout))
            .await?;
        self.listed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dir.to_string(), ids.iter().cloned().collect());
        Ok(ids)
    }

    /// Whether record `dir/id` was absent from this process's last listing of `dir`
    /// (and not written by it since): `false` when unknown.
    pub(crate) fn known_absent(&self, dir: &str, id: &str) -> bool {
        self.listed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(dir)
            .is_some_and(|ids| !ids.contains(id))
    }

    /// Notes that this process wrote (`present`) or deleted record `dir/id`.
    pub(crate) fn note_record(&self, dir: &str, id: &str, present: bool) {
        if let Some(ids) = self
            .listed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(dir)
        {
            if present {
                ids.insert(id.to_string());
            } else {
                ids.remove(id);
            }
        }
    }

    async fn read_vms(&self, op: Operation) -> Result<Vec<Vm>> {
        let inv = self.inv().await?;
        let mut view = self.vm_view.lock().await;
        let v = view.get_or_insert_with(|| inv.vm_view.clone()).clone();
        let objs = match self
            .client
            .retrieve(op, "VirtualMachine", Some(&v), &[], VM_PROPS)
            .await
        {
            Ok(o) => o,
            // The view belongs to a session that expired: make a new one.
            Err(Error::NotFound { .. }) => {
                let nv = self
                    .client
                    .create_container_view(op, &inv.datacenter, &["VirtualMachine"])
                    .await?;
                *view = Some(nv.clone());
                self.client
                    .retrieve(op, "VirtualMachine", Some(&nv), &[], VM_PROPS)
                    .await?
            }
            Err(e) => return Err(e),
        };
        drop(view);
        let mut out = Vec::with_capacity(objs.len());
        for o in objs {
            out.push(self.parse_vm(op, o).await?);
        }
        Ok(out)
    }

    /// One VM by moref value; `None` when it does not exist (or is not a VM).
    pub(crate) async fn get_vm(&self, op: Operation, id: &str) -> Result<Option<Vm>> {
        if id.is_empty() || id.contains(['<', '>', '&']) {
            return Ok(None);
        }
        let r = MoRef::new("VirtualMachine", id);
        match self
            .client
            .retrieve(
                op,
                "VirtualMachine",
                None,
                std::slice::from_ref(&r),
                VM_PROPS,
            )
            .await
        {
            Ok(mut objs) => match objs.pop() {
                Some(o) => Ok(Some(self.parse_vm(op, o).await?)),
                None => Ok(None),
            },
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The VMs of `ids` that exist, in one property retrieval (one per id when one of
    /// them is gone: vCenter fails the whole retrieval then).
    pub(crate) async fn get_vms(&self, op: Operation, ids: &[String]) -> Result<Vec<Vm>> {
        let refs: Vec<MoRef> = ids
            .iter()
            .filter(|id| !id.is_empty() && !id.contains(['<', '>', '&']))
            .map(|id| MoRef::new("VirtualMachine", id.as_str()))
            .collect();
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        match self
            .client
            .retrieve(op, "VirtualMachine", None, &refs, VM_PROPS)
            .await
        {
            Ok(objs) => {
                let mut out = Vec::with_capacity(objs.len());
                for o in objs {
                    out.push(self.parse_vm(op, o).await?);
                }
                Ok(out)
            }
            Err(e) if gone(&e) && refs.len() > 1 => {
                let mut out = Vec::new();
                for id in ids {
                    if let Some(vm) = self.get_vm(op, id).await? {
                        out.push(vm);
                    }
                }
                Ok(out)
            }
            Err(e) if gone(&e) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn unsupported(op: Operation, what: &str) -> Error {
        Error::unsupported(
            op,
            format!(
                "vSphere has no {what} (no NSX): the provider has no such family; bring your own"
            ),
        )
    }
}

#[async_trait]
impl Provider for VSphereProvider {
    fn name(&self) -> &str {
        "vsphere"
    }

    fn capabilities(&self) -> Capabilities {
        // Groups are records on the VMs (vSphere has no security groups; NSX or a
        // distributed firewall would enforce them): kept exactly, enforced nowhere.
        Capabilities::new(self.cfg.page_size)
            .with_group_sources(true)
            .with_security_groups_enforced(false)
            // Tags live in one database: a write is seen by every later read.
            .with_tags_read_after_write(true)
    }

    /// The inventory's own keys (`VSphere.Datacenter`, `VSphere.Datastore`,
    /// `VSphere.Clusters`, `VSphere.Network`: a name that resolves to nothing is a
    /// problem of that key, all of them at once), the zones and the templates (`image`
    /// references, by name or managed object id; looked up once the inventory
    /// resolves), and the disk types. Flavors are `cpus:memoryMiB` sizes, not catalog
    /// entries.
    async fn preflight(&self, refs: &References) -> Result<Vec<Problem>> {
        let disk_types = refs
            .volume_types
            .iter()
            .filter(|r| !crate::volumes::DISK_TYPES.contains(&r.value.as_str()))
            .map(|r| Problem::not_found(r, "vSphere disk type", &crate::volumes::DISK_TYPES));
        let inv = match self.inv().await {
            Ok(inv) => inv,
            // Every unknown name of the inventory at once; the zones and templates are
            // looked up once it resolves.
            Err(Error::InvalidInput { .. }) => {
                let mut problems = inventory::check(&self.client, &self.cfg).await?;
                problems.extend(disk_types);
                return Ok(problems);
            }
            Err(e) => return Err(e),
        };
        let offered: Vec<AvailabilityZone> = inv
            .zones
            .iter()
            .map(|z| AvailabilityZone {
                name: z.name.clone(),
                available: true,
            })
            .collect();
        let mut problems = refs.check_zones(&offered);
        if !refs.images.is_empty() {
            let vms = self.list_vms(Operation::Preflight).await?;
            let templates: Vec<&str> = vms
                .iter()
                .filter(|v| v.template)
                .map(|v| v.name.as_str())
                .collect();
            for r in &refs.images {
                let found = vms
                    .iter()
                    .any(|v| v.template && (v.name == r.value || v.moref.value == r.value));
                if !found {
                    problems.push(Problem::not_found(r, "template", &templates));
                }
            }
        }
        problems.extend(disk_types);
        Ok(problems)
    }

    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        Ok(self
            .inv()
            .await?
            .zones
            .iter()
            .map(|z| AvailabilityZone {
                name: z.name.clone(),
                available: true,
            })
            .collect())
    }

    async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        let op = Operation::UpdateTags;
        tags::validate(op, "set", set)?;
        tags::check_keys(op, "set", set)?;
        match kind {
            ResourceKind::Instance => self.update_instance_tags(op, id, set, remove).await,
            ResourceKind::Volume => self.update_volume_tags(op, id, set, remove).await,
            ResourceKind::SecurityGroup => self.update_group_tags(op, id, set, remove).await,
            ResourceKind::FloatingIp => Err(Self::unsupported(op, "floating IPs")),
            ResourceKind::LoadBalancer => Err(Self::unsupported(op, "load balancers")),
        }
    }

    fn security_groups(&self) -> Option<&dyn SecurityGroups> {
        Some(self)
    }

    fn instances(&self) -> Option<&dyn Instances> {
        Some(self)
    }

    fn volumes(&self) -> Option<&dyn Volumes> {
        Some(self)
    }
}
