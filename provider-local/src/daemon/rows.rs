//! What the daemon stores per resource: the record the trait returns, the spec it was
//! created from (for idempotent re-creates) and the local details.

use std::net::IpAddr;
use std::path::PathBuf;

use provider_core::{
    FloatingIp, FloatingIpSpec, Instance, InstanceSpec, LoadBalancer, LoadBalancerSpec,
    SecurityGroup, SecurityGroupSpec, Tags, Volume, VolumeSpec,
};
use serde::{Deserialize, Serialize};

use crate::supervisor::ProcessId;

/// A stored security group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRow {
    /// As created.
    pub spec: SecurityGroupSpec,
    /// As it is now.
    pub record: SecurityGroup,
}

/// A stored floating IP.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FipRow {
    /// As created.
    pub spec: FloatingIpSpec,
    /// As it is now.
    pub record: FloatingIp,
}

/// A stored volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeRow {
    /// As created.
    pub spec: VolumeSpec,
    /// As it is now.
    pub record: Volume,
    /// The sparse file.
    pub path: PathBuf,
}

/// A stored instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRow {
    /// As created.
    pub spec: InstanceSpec,
    /// As it is now (the state is refined by the process's liveness on read).
    pub record: Instance,
    /// Its process, once started.
    pub process: Option<ProcessId>,
    /// Its directory.
    pub dir: PathBuf,
}

/// A stored load balancer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LbRow {
    /// As created.
    pub spec: LoadBalancerSpec,
    /// As it is now (member health comes from the running proxy on read).
    pub record: LoadBalancer,
    /// Its address.
    pub address: IpAddr,
}

/// Access to the tags and name of any row.
pub trait Row: Serialize + serde::de::DeserializeOwned + Clone {
    /// The record's id.
    fn id(&self) -> &str;
    /// The record's name.
    fn name(&self) -> &str;
    /// The record's tags.
    fn tags(&self) -> &Tags;
    /// The record's tags, to change.
    fn tags_mut(&mut self) -> &mut Tags;
}

macro_rules! row {
    ($t:ty) => {
        impl Row for $t {
            fn id(&self) -> &str {
                &self.record.id
            }
            fn name(&self) -> &str {
                &self.record.name
            }
            fn tags(&self) -> &Tags {
                &self.record.tags
            }
            fn tags_mut(&mut self) -> &mut Tags {
                &mut self.record.tags
            }
        }
    };
}
row!(GroupRow);
row!(FipRow);
row!(VolumeRow);
row!(InstanceRow);
row!(LbRow);
