//! Volumes: created in a volume zone (mapped from the compute zone), attached to instances of that zone.

use async_trait::async_trait;

use super::state::*;
use super::MemoryProvider;
use crate::model::*;
use crate::wait::Poll;
use crate::{Error, Operation, Result, Volumes};

impl MemoryProvider {
    pub(super) fn volume_record(&self, r: &VolumeRec) -> Volume {
        let (state, attachment) = match &r.phase {
            VolumePhase::Creating(_) => (VolumeState::Creating, None),
            VolumePhase::Available => (VolumeState::Available, None),
            VolumePhase::Attaching(_, a) => (VolumeState::Attaching, Some(a.clone())),
            VolumePhase::InUse(a) => (VolumeState::InUse, Some(a.clone())),
            VolumePhase::Detaching(_) => (VolumeState::Detaching, None),
            VolumePhase::Deleting(_) => (VolumeState::Deleting, None),
        };
        Volume {
            id: r.id.clone(),
            name: r.spec.name.clone(),
            availability_zone: self.compute_zone(&r.volume_zone),
            size_gib: r.spec.size_gib,
            volume_type: r.spec.volume_type.clone(),
            state,
            attachment,
            tags: r.tags.clone(),
        }
    }

    pub(super) async fn wait_volume(
        &self,
        op: Operation,
        id: &str,
        wanted: VolumeState,
    ) -> Result<Volume> {
        self.config
            .poller
            .until(
                op,
                &format!("volume {id}"),
                &format!("{wanted:?}"),
                self.config.timeouts.volume,
                || async {
                    let st = self.lock();
                    let r = st
                        .volumes
                        .get(id)
                        .ok_or_else(|| Error::not_found(op, format!("volume {id}")))?;
                    let v = self.volume_record(r);
                    Ok(if v.state == wanted {
                        Poll::Ready(v)
                    } else {
                        Poll::Pending(format!("{:?}", v.state))
                    })
                },
            )
            .await
    }
}

#[async_trait]
impl Volumes for MemoryProvider {
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        let op = Operation::CreateVolume;
        spec.validate()?;
        self.check_zone(op, "spec.availability_zone", &spec.availability_zone)?;
        let id = {
            let mut st = self.lock();
            match st
                .volumes
                .values()
                .find(|r| r.spec.name == spec.name && !matches!(r.phase, VolumePhase::Deleting(_)))
            {
                Some(r) if r.spec == *spec => r.id.clone(),
                Some(r) => {
                    return Err(Error::conflict(
                        op,
                        format!("volume {} ({})", spec.name, r.id),
                        "a volume of this name exists with a different spec: delete it or choose another name",
                    ))
                }
                None => {
                    let id = self.new_id("vol");
                    st.volumes.insert(
                        id.clone(),
                        VolumeRec {
                            spec: spec.clone(),
                            id: id.clone(),
                            volume_zone: self.volume_zone(&spec.availability_zone),
                            phase: VolumePhase::Creating(self.until()),
                            tags: spec.tags.clone(),
                        },
                    );
                    id
                }
            }
        };
        // An existing volume may be attached: return it in whatever settled state it has.
        self.config
            .poller
            .until(
                op,
                &format!("volume {id}"),
                "available",
                self.config.timeouts.volume,
                || async {
                    let st = self.lock();
                    let r = st
                        .volumes
                        .get(&id)
                        .ok_or_else(|| Error::not_found(op, format!("volume {id}")))?;
                    let v = self.volume_record(r);
                    Ok(match v.state {
                        VolumeState::Available | VolumeState::InUse => Poll::Ready(v),
                        s => Poll::Pending(format!("{s:?}")),
                    })
                },
            )
            .await
    }

    async fn get_volume(&self, id: &str) -> Result<Volume> {
        let st = self.lock();
        st.volumes
            .get(id)
            .map(|r| self.volume_record(r))
            .ok_or_else(|| Error::not_found(Operation::GetVolume, format!("volume {id}")))
    }

    async fn list_volumes(&self, filter: &TagFilter) -> Result<Vec<Volume>> {
        let st = self.lock();
        Ok(self
            .paginate(&st.volumes, |r| filter.matches(&r.tags))
            .iter()
            .map(|r| self.volume_record(r))
            .collect())
    }

    async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume> {
        let op = Operation::AttachVolume;
        {
            let mut st = self.lock();
            let inst_zone = match st.instances.get(instance_id) {
                Some(i) if i.deleting.is_none() => i.instance.availability_zone.clone(),
                _ => return Err(Error::not_found(op, format!("instance {instance_id}"))),
            };
            let device_index = st
                .volumes
                .values()
                .filter(|v| match &v.phase {
                    VolumePhase::Attaching(_, a) | VolumePhase::InUse(a) => {
                        a.instance_id == instance_id
                    }
                    _ => false,
                })
                .count();
            let until = self.until();
            let want_zone = self.volume_zone(&inst_zone);
            let v = st
                .volumes
                .get_mut(volume_id)
                .ok_or_else(|| Error::not_found(op, format!("volume {volume_id}")))?;
            if v.volume_zone != want_zone {
                return Err(Error::invalid(
                    op,
                    "instance_id",
                    format!(
                        "volume {volume_id} is in {} and instance {instance_id} in {inst_zone}: attach within one availability zone",
                        self.compute_zone(&v.volume_zone)
                    ),
                ));
            }
            match &v.phase {
                VolumePhase::Available => {
                    let device = format!("/dev/vd{}", (b'b' + device_index as u8) as char);
                    v.phase = VolumePhase::Attaching(
                        until,
                        VolumeAttachment {
                            instance_id: instance_id.to_string(),
                            device,
                        },
                    );
                }
                VolumePhase::Attaching(_, a) | VolumePhase::InUse(a)
                    if a.instance_id == instance_id => {}
                VolumePhase::Attaching(_, a) | VolumePhase::InUse(a) => {
                    return Err(Error::conflict(
                        op,
                        format!("volume {volume_id}"),
                        format!("attached to instance {}: detach it first", a.instance_id),
                    ))
                }
                VolumePhase::Creating(_) | VolumePhase::Detaching(_) => {
                    return Err(Error::transient(op, format!("volume {volume_id} is busy")))
                }
                VolumePhase::Deleting(_) => {
                    return Err(Error::not_found(op, format!("volume {volume_id}")))
                }
            }
        }
        self.wait_volume(op, volume_id, VolumeState::InUse).await
    }

    async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        let op = Operation::DetachVolume;
        {
            let mut st = self.lock();
            let until = self.until();
            let v = st
                .volumes
                .get_mut(volume_id)
                .ok_or_else(|| Error::not_found(op, format!("volume {volume_id}")))?;
            match &v.phase {
                VolumePhase::Attaching(..) | VolumePhase::InUse(_) => {
                    v.phase = VolumePhase::Detaching(until)
                }
                VolumePhase::Creating(_) => {
                    return Err(Error::transient(
                        op,
                        format!("volume {volume_id} is being created"),
                    ))
                }
                VolumePhase::Deleting(_) => {
                    return Err(Error::not_found(op, format!("volume {volume_id}")))
                }
                VolumePhase::Available | VolumePhase::Detaching(_) => {}
            }
        }
        self.wait_volume(op, volume_id, VolumeState::Available)
            .await
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteVolume;
        {
            let mut st = self.lock();
            let until = self.until();
            let Some(v) = st.volumes.get_mut(id) else {
                return Ok(());
            };
            match &v.phase {
                VolumePhase::Attaching(_, a) | VolumePhase::InUse(a) => {
                    return Err(Error::conflict(
                        op,
                        format!("volume {id}"),
                        format!("attached to instance {}: detach it first", a.instance_id),
                    ))
                }
                VolumePhase::Creating(_) | VolumePhase::Detaching(_) => {
                    return Err(Error::transient(op, format!("volume {id} is busy")))
                }
                VolumePhase::Available => v.phase = VolumePhase::Deleting(until),
                VolumePhase::Deleting(_) => {}
            }
        }
        self.wait_gone(op, format!("volume {id}"), |st| {
            !st.volumes.contains_key(id)
        })
        .await
    }
}
