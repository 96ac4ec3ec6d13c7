//! The shared waits ([`provider_core::wait::Watch`]): servers, volumes and load
//! balancers waited for by concurrent calls cost one request per poll interval per
//! kind, not one per resource. A probe for one id reads it (`GET .../{id}`); for
//! several it lists the kind once (Nova, Cinder and Octavia take no list of ids), so
//! its pages grow with the project, never with the number of waits.
//!
//! Also the [`Memos`]: what creates resolve (flavors, images, networks, zones), looked
//! up once per provider instead of once per resource.

use std::collections::{BTreeMap, BTreeSet};

use provider_core::memo::Memo;
use provider_core::wait::{Poller, Watch};
use provider_core::{Error, Operation, Result};

use crate::client::{Call, Service};
use crate::coalesce::Coalesce;
use crate::compute::{Flavor, Image, Server};
use crate::loadbalancer::{OctaviaLb, PoolMembers};
use crate::network::{NeutronGroup, NeutronNetwork, NeutronPort, NeutronRule, NeutronSubnet};
use crate::volumes::CinderVolume;
use crate::OpenStackProvider;

/// Look-ups made once per provider (see [`Memo`]): catalog entries, networks and zone
/// names that every create refers to.
#[derive(Debug, Default)]
pub(crate) struct Memos {
    pub(crate) flavors: Memo<Flavor>,
    /// The flavors the project sees, listed once for every flavor a create names.
    pub(crate) flavor_list: Memo<Vec<Flavor>>,
    pub(crate) images: Memo<Image>,
    pub(crate) networks: Memo<Vec<NeutronNetwork>>,
    pub(crate) subnets: Memo<Vec<NeutronSubnet>>,
    pub(crate) compute_zones: Memo<Vec<(String, bool)>>,
    pub(crate) volume_zones: Memo<BTreeSet<String>>,
}

/// One watch per kind waited on, and the creates' look-ups by name that share a list
/// ([`Coalesce`]).
#[derive(Debug)]
pub(crate) struct Watches {
    pub(crate) servers: Watch<Server>,
    pub(crate) volumes: Watch<CinderVolume>,
    pub(crate) lbs: Watch<OctaviaLb>,
    pub(crate) groups_named: Coalesce<Vec<NeutronGroup>>,
    /// Reads by id that start together (the checks before a delete, an attach).
    pub(crate) servers_read: Coalesce<BTreeMap<String, Server>>,
    pub(crate) volumes_read: Coalesce<BTreeMap<String, CinderVolume>>,
    pub(crate) groups_read: Coalesce<Vec<NeutronGroup>>,
    /// The rules naming groups about to be deleted, by `remote_group_id`.
    pub(crate) rules_naming: Coalesce<Vec<NeutronRule>>,
    /// The pools an instance about to be deleted may be a member of.
    pub(crate) pools_scanned: Coalesce<Vec<PoolMembers>>,
    pub(crate) ports_named: Coalesce<Vec<NeutronPort>>,
    /// Ports by the device (server) they are on, and by id.
    pub(crate) ports_on: Coalesce<Vec<NeutronPort>>,
    pub(crate) ports_read: Coalesce<Vec<NeutronPort>>,
}

impl Watches {
    pub(crate) fn new(poller: &Poller) -> Self {
        Self {
            servers: Watch::new(poller.clone()),
            volumes: Watch::new(poller.clone()),
            lbs: Watch::new(poller.clone()),
            groups_named: Coalesce::default(),
            servers_read: Coalesce::default(),
            volumes_read: Coalesce::default(),
            groups_read: Coalesce::default(),
            rules_naming: Coalesce::default(),
            pools_scanned: Coalesce::default(),
            ports_named: Coalesce::default(),
            ports_on: Coalesce::default(),
            ports_read: Coalesce::default(),
        }
    }
}

/// The found one as a map; absent when missing.
fn one<T>(id: &str, found: Result<T>) -> Result<BTreeMap<String, T>> {
    match found {
        Ok(t) => Ok(BTreeMap::from([(id.to_string(), t)])),
        Err(Error::NotFound { .. }) => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

impl OpenStackProvider {
    /// Server `id` (`NotFound` when gone), read with the reads started together.
    pub(crate) async fn server_read(&self, op: Operation, id: &str) -> Result<Server> {
        let found = self
            .watches
            .servers_read
            .get(id, |ids| self.servers_by_id(op, ids))
            .await?
            .remove(id);
        match found {
            Some(s) => Ok(s),
            // Gone is what makes a delete skip its work: read by id to be sure (a list
            // of the project is not).
            None => self.server(op, id).await,
        }
    }

    /// Volume `id` (`NotFound` when gone), read with the reads started together.
    pub(crate) async fn volume_read(&self, op: Operation, id: &str) -> Result<CinderVolume> {
        let found = self
            .watches
            .volumes_read
            .get(id, |ids| self.volumes_by_id(op, ids))
            .await?
            .remove(id);
        match found {
            Some(v) => Ok(v),
            // As for servers: gone is confirmed by id.
            None => self.cinder_volume(op, id).await,
        }
    }

    /// Security group `id` with its rules (`NotFound` when gone), read with the reads
    /// started together (one list by ids).
    pub(crate) async fn group_read(&self, op: Operation, id: &str) -> Result<NeutronGroup> {
        self.watches
            .groups_read
            .get(id, |ids| {
                let mut call = Call::get(Service::Network, "security-groups");
                for i in ids {
                    call = call.query("id", i);
                }
                self.api.list(op, call, "security_groups")
            })
            .await?
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| Error::not_found(op, format!("security group {id}")))
    }

    /// The servers of `ids` that exist (not deleted).
    pub(crate) async fn servers_by_id(
        &self,
        op: Operation,
        ids: Vec<String>,
    ) -> Result<BTreeMap<String, Server>> {
        if let [id] = ids.as_slice() {
            return one(id, self.server(op, id).await);
        }
        let wanted: BTreeSet<String> = ids.into_iter().collect();
        let servers: Vec<Server> = self
            .api
            .list(op, Call::get(Service::Compute, "servers/detail"), "servers")
            .await?;
        Ok(servers
            .into_iter()
            .filter(|s| s.status != "DELETED" && wanted.contains(&s.id))
            .map(|s| (s.id.clone(), s))
            .collect())
    }

    /// The volumes of `ids` that exist.
    pub(crate) async fn volumes_by_id(
        &self,
        op: Operation,
        ids: Vec<String>,
    ) -> Result<BTreeMap<String, CinderVolume>> {
        if let [id] = ids.as_slice() {
            return one(id, self.cinder_volume(op, id).await);
        }
        let wanted: BTreeSet<String> = ids.into_iter().collect();
        let vols: Vec<CinderVolume> = self
            .api
            .list(op, Call::get(Service::Volume, "volumes/detail"), "volumes")
            .await?;
        Ok(vols
            .into_iter()
            .filter(|v| v.status != "deleted" && wanted.contains(&v.id))
            .map(|v| (v.id.clone(), v))
            .collect())
    }

    /// The load balancers of `ids` that exist (not deleted).
    pub(crate) async fn lbs_by_id(
        &self,
        op: Operation,
        ids: Vec<String>,
    ) -> Result<BTreeMap<String, OctaviaLb>> {
        if let [id] = ids.as_slice() {
            return one(id, self.octavia_lb(op, id).await);
        }
        let wanted: BTreeSet<String> = ids.into_iter().collect();
        let call = self.scoped(Call::get(Service::LoadBalancer, "lbaas/loadbalancers"));
        let lbs: Vec<OctaviaLb> = self.api.list(op, call, "loadbalancers").await?;
        Ok(lbs
            .into_iter()
            .filter(|lb| lb.provisioning_status != "DELETED" && wanted.contains(&lb.id))
            .map(|lb| (lb.id.clone(), lb))
            .collect())
    }
}
