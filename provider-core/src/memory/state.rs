//! The memory provider's records: what it holds of each resource, and the transitions
//! every record goes through.

use std::collections::BTreeMap;

use tokio::time::Instant;

use crate::model::*;

/// When a resource leaves its transitional state.
#[derive(Debug, Clone, Copy)]
pub(super) struct Until(pub(super) Instant);

impl Until {
    pub(super) fn passed(self) -> bool {
        Instant::now() >= self.0
    }
}

#[derive(Debug, Clone)]
pub(super) struct GroupRec {
    pub(super) spec: SecurityGroupSpec,
    pub(super) group: SecurityGroup,
    pub(super) deleting: Option<Until>,
}

#[derive(Debug, Clone)]
pub(super) struct FipRec {
    pub(super) spec: FloatingIpSpec,
    pub(super) fip: FloatingIp,
    pub(super) deleting: Option<Until>,
}

#[derive(Debug, Clone)]
pub(super) enum VolumePhase {
    Creating(Until),
    Available,
    Attaching(Until, VolumeAttachment),
    InUse(VolumeAttachment),
    Detaching(Until),
    Deleting(Until),
}

#[derive(Debug, Clone)]
pub(super) struct VolumeRec {
    pub(super) spec: VolumeSpec,
    pub(super) id: String,
    /// The volume AZ name (may differ from the compute AZ in the spec).
    pub(super) volume_zone: String,
    pub(super) phase: VolumePhase,
    pub(super) tags: Tags,
}

#[derive(Debug, Clone)]
pub(super) struct InstanceRec {
    pub(super) spec: InstanceSpec,
    pub(super) instance: Instance,
    pub(super) ready: Until,
    pub(super) deleting: Option<Until>,
    pub(super) failed: bool,
}

#[derive(Debug, Clone)]
pub(super) struct LbRec {
    pub(super) spec: LoadBalancerSpec,
    pub(super) id: String,
    pub(super) address: String,
    /// Members per listener port.
    pub(super) members: BTreeMap<u16, Vec<MemberSpec>>,
    pub(super) busy: Until,
    pub(super) deleting: Option<Until>,
    pub(super) failed: bool,
    pub(super) tags: Tags,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) groups: BTreeMap<String, GroupRec>,
    pub(super) fips: BTreeMap<String, FipRec>,
    pub(super) volumes: BTreeMap<String, VolumeRec>,
    pub(super) instances: BTreeMap<String, InstanceRec>,
    pub(super) lbs: BTreeMap<String, LbRec>,
}

impl State {
    /// Drops resources whose deletion has finished and settles finished transitions.
    pub(super) fn settle(&mut self) {
        self.groups
            .retain(|_, g| !g.deleting.is_some_and(Until::passed));
        self.fips
            .retain(|_, f| !f.deleting.is_some_and(Until::passed));
        self.instances
            .retain(|_, i| !i.deleting.is_some_and(Until::passed));
        self.lbs
            .retain(|_, l| !l.deleting.is_some_and(Until::passed));
        self.volumes
            .retain(|_, v| !matches!(v.phase, VolumePhase::Deleting(u) if u.passed()));
        for v in self.volumes.values_mut() {
            v.phase = match std::mem::replace(&mut v.phase, VolumePhase::Available) {
                VolumePhase::Creating(u) | VolumePhase::Detaching(u) if u.passed() => {
                    VolumePhase::Available
                }
                VolumePhase::Attaching(u, a) if u.passed() => VolumePhase::InUse(a),
                other => other,
            };
        }
    }
}

pub(super) fn instance_state(r: &InstanceRec) -> InstanceState {
    if r.deleting.is_some() {
        InstanceState::Deleting
    } else if r.failed {
        InstanceState::Failed
    } else if r.ready.passed() {
        InstanceState::Running
    } else {
        InstanceState::Pending
    }
}
