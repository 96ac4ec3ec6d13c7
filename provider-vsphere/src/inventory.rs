//! The inventory the provider places things in, resolved once by name: datacenter,
//! VM folder, the clusters that are the availability zones (and their root resource
//! pools), the datastore (and its browser), the network.

use provider_core::{Error, Operation, Problem, Result};

use crate::client::Client;
use crate::config::VSphereConfig;
use crate::soap::{esc, Element, MoRef};

/// One availability zone: a compute cluster and its root resource pool.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Cluster name (the AZ name).
    pub name: String,
    /// Its root resource pool, where instances are placed.
    pub pool: MoRef,
}

/// What [`resolve`] found.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Datacenter name.
    pub datacenter_name: String,
    /// The datacenter.
    pub datacenter: MoRef,
    /// Its VM folder (clones go there).
    pub vm_folder: MoRef,
    /// The zones, in the configured (or name) order.
    pub zones: Vec<Zone>,
    /// Datastore name.
    pub datastore_name: String,
    /// The datastore.
    pub datastore: MoRef,
    /// Its browser, for `SearchDatastore_Task`.
    pub datastore_browser: MoRef,
    /// A container view of the datacenter's VMs (and its clusters, datastores and
    /// networks: VM listings ask for VMs only).
    pub vm_view: MoRef,
    /// The `<backing>` of a network adapter on `VSphere.Network` (a standard port group
    /// or a distributed port group), ready for a `ReconfigVM_Task` device edit; `None`
    /// when no network is configured (clones keep the template's).
    pub network_backing: Option<String>,
    /// `VSphere.Network` itself, to tell whether a VM is on it.
    pub network: Option<MoRef>,
}

impl Inventory {
    /// The zone named `name`.
    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }

    /// The zone whose root pool is `pool` (a VM's `resourcePool`).
    pub fn zone_of_pool(&self, pool: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.pool.value == pool)
    }

    /// The names of the zones, for messages.
    pub fn zone_names(&self) -> String {
        self.zones
            .iter()
            .map(|z| z.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `[datastore] path`.
    pub fn ds_path(&self, path: &str) -> String {
        format!("[{}] {path}", self.datastore_name)
    }
}

fn moref_of(e: Option<&Element>) -> Option<MoRef> {
    e.and_then(Element::moref)
}

/// Resolves the configured names; an unknown name is `InvalidInput` naming its key
/// (the first of them: [`check`] answers them all).
pub async fn resolve(client: &Client, cfg: &VSphereConfig) -> Result<Inventory> {
    match resolve_all(client, cfg).await? {
        Ok(inv) => Ok(inv),
        Err(problems) => {
            let first = problems.into_iter().next().unwrap_or_else(|| {
                Problem::new("VSphere.Datacenter", "the inventory did not resolve")
            });
            Err(Error::invalid(
                Operation::ListAvailabilityZones,
                first.key,
                first.message,
            ))
        }
    }
}

/// Every configured name the vCenter lacks (datacenter, clusters, datastore, network),
/// each naming its key; none when the inventory resolves.
pub async fn check(client: &Client, cfg: &VSphereConfig) -> Result<Vec<Problem>> {
    Ok(resolve_all(client, cfg).await?.err().unwrap_or_default())
}

/// The inventory, or every unknown name at once (an unknown datacenter alone: nothing
/// else can be looked up without it).
async fn resolve_all(
    client: &Client,
    cfg: &VSphereConfig,
) -> Result<std::result::Result<Inventory, Vec<Problem>>> {
    let op = Operation::ListAvailabilityZones;
    let mut problems = Vec::new();
    let root = client.content().await?.root_folder.clone();
    let dc_view = client
        .create_container_view(op, &root, &["Datacenter"])
        .await?;
    let dcs = client
        .retrieve(op, "Datacenter", Some(&dc_view), &[], &["name", "vmFolder"])
        .await?;
    let Some(dc) = dcs
        .iter()
        .find(|o| o.text("name") == Some(cfg.datacenter.as_str()))
    else {
        let names: Vec<_> = dcs.iter().filter_map(|o| o.text("name")).collect();
        return Ok(Err(vec![Problem::new(
            "VSphere.Datacenter",
            format!(
                "no datacenter {:?}: use one of {}",
                cfg.datacenter,
                names.join(", ")
            ),
        )]));
    };
    let datacenter = dc.obj.clone();
    let vm_folder = moref_of(dc.props.get("vmFolder"))
        .ok_or_else(|| Error::transient(op, "the datacenter has no VM folder"))?;

    // One view of the datacenter serves the VM listings too, and one retrieval reads
    // its clusters, datastores and networks.
    let view = client
        .create_container_view(
            op,
            &datacenter,
            &[
                "ClusterComputeResource",
                "Datastore",
                "Network",
                "VirtualMachine",
            ],
        )
        .await?;
    let mut kinds: Vec<(&str, &[&str])> = vec![
        ("ClusterComputeResource", &["name", "resourcePool"]),
        ("Datastore", &["name", "browser"]),
    ];
    if cfg.network.is_some() {
        kinds.push(("Network", &["name"]));
    }
    let objects = client.retrieve_view(op, &view, &kinds).await?;
    let of_kind = |kind: &str| -> Vec<crate::client::ObjectContent> {
        objects
            .iter()
            .filter(|o| {
                if kind == "Network" {
                    // Its subtypes too (distributed port groups, opaque networks).
                    !matches!(
                        o.obj.kind.as_str(),
                        "ClusterComputeResource" | "Datastore" | "VirtualMachine"
                    )
                } else {
                    o.obj.kind == kind
                }
            })
            .cloned()
            .collect()
    };
    let mut clusters = of_kind("ClusterComputeResource");
    clusters.sort_by(|a, b| a.text("name").cmp(&b.text("name")));
    let mut zones = Vec::new();
    let all_names: Vec<String> = clusters
        .iter()
        .filter_map(|c| c.text("name").map(str::to_string))
        .collect();
    let wanted: Vec<String> = if cfg.clusters.is_empty() {
        all_names.clone()
    } else {
        cfg.clusters.clone()
    };
    for name in &wanted {
        let Some(c) = clusters
            .iter()
            .find(|c| c.text("name") == Some(name.as_str()))
        else {
            problems.push(Problem::new(
                "VSphere.Clusters",
                format!(
                    "no cluster {name:?} in datacenter {}: use some of {}",
                    cfg.datacenter,
                    all_names.join(", ")
                ),
            ));
            continue;
        };
        let pool = moref_of(c.props.get("resourcePool"))
            .ok_or_else(|| Error::transient(op, format!("cluster {name} has no resource pool")))?;
        zones.push(Zone {
            name: name.clone(),
            pool,
        });
    }
    if wanted.is_empty() {
        problems.push(Problem::new(
            "VSphere.Clusters",
            format!("datacenter {} has no compute cluster", cfg.datacenter),
        ));
    }

    let mut stores = of_kind("Datastore");
    stores.sort_by(|a, b| a.text("name").cmp(&b.text("name")));
    let ds = match &cfg.datastore {
        Some(n) => stores.iter().find(|s| s.text("name") == Some(n.as_str())),
        None => stores.first(),
    };
    if ds.is_none() {
        let names: Vec<_> = stores.iter().filter_map(|o| o.text("name")).collect();
        problems.push(Problem::new(
            "VSphere.Datastore",
            format!(
                "no datastore {:?}: use one of {}",
                cfg.datastore.as_deref().unwrap_or(""),
                names.join(", ")
            ),
        ));
    }

    let mut network_backing = None;
    let mut network = None;
    if let Some(n) = &cfg.network {
        let nets = of_kind("Network");
        match nets.iter().find(|o| o.text("name") == Some(n.as_str())) {
            Some(net) => {
                network_backing = Some(backing_of(client, op, n, &net.obj).await?);
                network = Some(net.obj.clone());
            }
            None => {
                let names: Vec<_> = nets.iter().filter_map(|o| o.text("name")).collect();
                problems.push(Problem::new(
                    "VSphere.Network",
                    format!("no network {n:?}: use one of {}", names.join(", ")),
                ));
            }
        }
    }
    let (Some(ds), true) = (ds, problems.is_empty()) else {
        return Ok(Err(problems));
    };
    let datastore_name = ds.text("name").unwrap_or_default().to_string();
    let datastore_browser = moref_of(ds.props.get("browser"))
        .ok_or_else(|| Error::transient(op, "the datastore has no browser"))?;
    let vm_view = view;
    Ok(Ok(Inventory {
        datacenter_name: cfg.datacenter.clone(),
        datacenter,
        vm_folder,
        zones,
        datastore_name,
        datastore: ds.obj.clone(),
        datastore_browser,
        vm_view,
        network_backing,
        network,
    }))
}

/// The adapter backing for network `net` named `name`: a standard port group is
/// named, a distributed port group is found by its switch's UUID and its key.
async fn backing_of(client: &Client, op: Operation, name: &str, net: &MoRef) -> Result<String> {
    if net.kind != "DistributedVirtualPortgroup" {
        return Ok(format!(
            "<backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\"><deviceName>{}</deviceName>{}</backing>",
            esc(name),
            net.xml("network")
        ));
    }
    let pg = client
        .retrieve(
            op,
            "DistributedVirtualPortgroup",
            None,
            std::slice::from_ref(net),
            &["key", "config.distributedVirtualSwitch"],
        )
        .await?;
    let pg = pg
        .first()
        .ok_or_else(|| Error::transient(op, format!("port group {name:?} not readable")))?;
    let key = pg.text("key").unwrap_or_default().to_string();
    let switch = moref_of(pg.props.get("config.distributedVirtualSwitch")).ok_or_else(|| {
        Error::transient(
            op,
            format!("port group {name:?} names no distributed switch"),
        )
    })?;
    let sw = client
        .retrieve(
            op,
            &switch.kind,
            None,
            std::slice::from_ref(&switch),
            &["uuid"],
        )
        .await?;
    let uuid = sw
        .first()
        .and_then(|o| o.text("uuid"))
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Error::transient(op, format!("the switch of port group {name:?} has no uuid"))
        })?;
    Ok(format!(
        "<backing xsi:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\"><port><switchUuid>{}</switchUuid><portgroupKey>{}</portgroupKey></port></backing>",
        esc(uuid),
        esc(&key)
    ))
}
