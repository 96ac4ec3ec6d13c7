//! Volumes = EBS volumes (`gp3` unless the spec names a type) in the requested AZ;
//! attach with a free device name, detach, delete.
//!
//! Device names are picked from `/dev/sdf` to `/dev/sdp` (AWS's recommendation for
//! data volumes), skipping those the instance's block device mappings use and those
//! being attached by this process. Nitro instances show them as NVMe devices
//! (`/dev/nvme1n1`, ...): the record carries the name given to `AttachVolume`.

use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, Volume as Ec2Volume, VolumeType};
use provider_core::wait::Poll;
use provider_core::Volumes;
use provider_core::{
    Error, Operation, Result, TagFilter, Volume, VolumeAttachment, VolumeSpec, VolumeState,
};

use crate::error::{sdk, AwsError};
use crate::tags::{self, filter, NAME_TAG, SPEC_HASH_TAG};
use crate::AwsProvider;

/// EBS volume types.
pub const VOLUME_TYPES: &[&str] = &["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"];

/// Device names for data volumes, in the order they are handed out.
const DEVICES: &[&str] = &[
    "/dev/sdf", "/dev/sdg", "/dev/sdh", "/dev/sdi", "/dev/sdj", "/dev/sdk", "/dev/sdl", "/dev/sdm",
    "/dev/sdn", "/dev/sdo", "/dev/sdp",
];

/// The record of a volume; `None` once it is deleted.
pub(crate) fn record(v: &Ec2Volume) -> Option<Volume> {
    let state = v.state().map(|s| s.as_str()).unwrap_or("creating");
    let att = v
        .attachments()
        .iter()
        .find(|a| a.state().is_none_or(|s| s.as_str() != "detached"));
    let att_state = att.and_then(|a| a.state()).map(|s| s.as_str());
    let state = match (state, att_state) {
        ("deleted", _) => return None,
        ("creating", _) => VolumeState::Creating,
        ("deleting", _) => VolumeState::Deleting,
        ("error", _) => VolumeState::Error,
        (_, Some("attaching")) => VolumeState::Attaching,
        (_, Some("detaching")) => VolumeState::Detaching,
        ("in-use", _) => VolumeState::InUse,
        _ => VolumeState::Available,
    };
    let pairs = || tags::ec2_pairs(v.tags());
    // A root volume goes with its instance.
    if tags::tag_value(pairs(), tags::ROOT_TAG).is_some() {
        return None;
    }
    Some(Volume {
        id: v.volume_id()?.to_string(),
        name: tags::tag_value(pairs(), NAME_TAG).unwrap_or_default(),
        availability_zone: v.availability_zone().unwrap_or_default().to_string(),
        size_gib: v.size().unwrap_or(0).max(0) as u64,
        volume_type: v.volume_type().map(|t| t.as_str().to_string()),
        state,
        attachment: match state {
            VolumeState::Attaching | VolumeState::InUse => att.map(|a| VolumeAttachment {
                instance_id: a.instance_id().unwrap_or_default().to_string(),
                device: a.device().unwrap_or_default().to_string(),
            }),
            _ => None,
        },
        tags: tags::user_tags(pairs()),
    })
}

impl AwsProvider {
    /// Describes one volume; `NotFound` when it is missing or deleted.
    async fn volume(&self, op: Operation, id: &str) -> Result<(Ec2Volume, Volume)> {
        let resource = format!("volume {id}");
        let out = self
            .ec2
            .describe_volumes()
            .volume_ids(id)
            .send()
            .await
            .map_err(sdk(op, &resource))?;
        let v = out
            .volumes()
            .first()
            .cloned()
            .ok_or_else(|| Error::not_found(op, &resource))?;
        let r = record(&v).ok_or_else(|| Error::not_found(op, &resource))?;
        Ok((v, r))
    }

    /// Polls a volume until `ready` says so.
    async fn wait_volume(
        &self,
        op: Operation,
        id: &str,
        wanted: &str,
        ready: impl Fn(&Volume) -> bool,
    ) -> Result<Volume> {
        let resource = format!("volume {id}");
        self.watches
            .volumes
            .until(
                op,
                &resource,
                wanted,
                self.config.timeouts.volume,
                id,
                |ids| self.volumes_by_id(op, ids),
                |v| {
                    let v = v
                        .and_then(record)
                        .ok_or_else(|| Error::not_found(op, &resource))?;
                    if v.state == VolumeState::Error {
                        return Err(Error::api(
                            op,
                            None,
                            "error",
                            format!("volume {id} is in state error: delete it and retry"),
                        ));
                    }
                    Ok(if ready(&v) {
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
impl Volumes for AwsProvider {
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        let op = Operation::CreateVolume;
        spec.validate()?;
        tags::check_user_tags(op, "spec.tags", &spec.tags)?;
        // moto creates volumes in AZs that do not exist; AWS refuses. So do we.
        self.check_zone(op, "spec.availability_zone", &spec.availability_zone)
            .await?;
        let vtype = spec
            .volume_type
            .clone()
            .unwrap_or_else(|| self.config.default_volume_type.clone());
        if !VOLUME_TYPES.contains(&vtype.as_str()) {
            return Err(Error::invalid(
                op,
                "spec.volume_type",
                format!(
                    "unknown EBS volume type {vtype:?}: use one of {}",
                    VOLUME_TYPES.join(", ")
                ),
            ));
        }
        let hash = tags::spec_hash(spec);
        let resource = format!("volume {}", spec.name);
        // Creates started together look their names up with one request.
        let existing = self
            .watches
            .volumes_named
            .read(op, &spec.name, |names| async move {
                let out = self
                    .ec2
                    .describe_volumes()
                    .filters(filter(&format!("tag:{NAME_TAG}"), names))
                    .filters(filter("status", ["creating", "available", "in-use"]))
                    .send()
                    .await
                    .map_err(sdk(op, "volumes"))?;
                Ok(std::sync::Arc::new(out.volumes().to_vec()))
            })
            .await?;
        let named = existing.iter().find(|v| {
            tags::tag_value(tags::ec2_pairs(v.tags()), NAME_TAG).as_deref()
                == Some(spec.name.as_str())
        });
        let id = if let Some(v) = named {
            let id = v.volume_id().unwrap_or_default().to_string();
            if tags::tag_value(tags::ec2_pairs(v.tags()), SPEC_HASH_TAG).as_deref()
                != Some(hash.as_str())
            {
                return Err(Error::conflict(
                    op,
                    format!("volume {} ({id})", spec.name),
                    "a volume of this name exists with a different spec: delete it or choose another name",
                ));
            }
            id
        } else {
            let size = i32::try_from(spec.size_gib).map_err(|_| {
                Error::invalid(op, "spec.size_gib", "too large for EBS: use at most 16384")
            })?;
            let out = self
                .ec2
                .create_volume()
                .availability_zone(&spec.availability_zone)
                .size(size)
                .volume_type(VolumeType::from(vtype.as_str()))
                .client_token(tags::client_token(&[&spec.name, &hash]))
                .tag_specifications(tags::tag_spec(
                    ResourceType::Volume,
                    &tags::create_tags(&spec.name, &spec.tags, &hash),
                ))
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk(e).with_input(
                        op,
                        &resource,
                        &[
                            ("InvalidParameterValue", "spec"),
                            ("InvalidZone", "spec.availability_zone"),
                        ],
                    )
                })?;
            out.volume_id()
                .ok_or_else(|| Error::transient(op, "CreateVolume answered no volume id"))?
                .to_string()
        };
        // Right after CreateVolume, DescribeVolumes may not know the id yet.
        let resource = format!("volume {id}");
        self.eventually(op, &resource, || {
            self.wait_volume(op, &id, "available", |v| {
                matches!(v.state, VolumeState::Available | VolumeState::InUse)
            })
        })
        .await
    }

    async fn get_volume(&self, id: &str) -> Result<Volume> {
        Ok(self.volume(Operation::GetVolume, id).await?.1)
    }

    async fn list_volumes(&self, tf: &TagFilter) -> Result<Vec<Volume>> {
        let op = Operation::ListVolumes;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .ec2
                .describe_volumes()
                .set_filters(Some(tags::ec2_filters(tf)))
                .max_results(self.config.page_size.min(500) as i32)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(sdk(op, "volumes"))?;
            out.extend(
                page.volumes()
                    .iter()
                    .filter_map(record)
                    .filter(|v| tf.matches(&v.tags)),
            );
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume> {
        let op = Operation::AttachVolume;
        // Attaches started together read their volumes and instances with one request
        // each (a filter by ids: unknown ones are left out).
        let (volumes, instances) = futures::try_join!(
            self.watches
                .volumes_read
                .read(op, volume_id, |ids| async move {
                    Ok(std::sync::Arc::new(self.volumes_by_id(op, ids).await?))
                }),
            self.watches
                .instances_read
                .read(op, instance_id, |ids| async move {
                    Ok(std::sync::Arc::new(self.instances_by_id(op, &ids).await?))
                })
        )?;
        let v = volumes
            .get(volume_id)
            .and_then(record)
            .ok_or_else(|| Error::not_found(op, format!("volume {volume_id}")))?;
        let inst = instances
            .get(instance_id)
            .filter(|i| crate::instances::record(i).is_some())
            .cloned()
            .ok_or_else(|| Error::not_found(op, format!("instance {instance_id}")))?;
        let inst_zone = inst
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_string();
        if v.availability_zone != inst_zone {
            // moto attaches across AZs; AWS refuses. So do we.
            return Err(Error::invalid(
                op,
                "instance_id",
                format!(
                    "volume {volume_id} is in {} and instance {instance_id} in {inst_zone}: attach within one availability zone",
                    v.availability_zone
                ),
            ));
        }
        match (&v.state, &v.attachment) {
            (_, Some(a)) if a.instance_id == instance_id => {
                return self
                    .wait_volume(op, volume_id, "in-use", |v| v.state == VolumeState::InUse)
                    .await
            }
            (_, Some(a)) => {
                return Err(Error::conflict(
                    op,
                    format!("volume {volume_id}"),
                    format!("attached to instance {}: detach it first", a.instance_id),
                ))
            }
            (VolumeState::Available, None) => {}
            (VolumeState::Deleting, _) => {
                return Err(Error::not_found(op, format!("volume {volume_id}")))
            }
            (s, _) => return Err(Error::transient(op, format!("volume {volume_id} is {s:?}"))),
        }
        let used: Vec<String> = inst
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.device_name().map(str::to_string))
            .collect();
        let mut last_err = None;
        for _ in 0..3 {
            let device = {
                let mut busy = self.devices.lock().unwrap_or_else(|p| p.into_inner());
                let reserved = busy.entry(instance_id.to_string()).or_default();
                let free = DEVICES
                    .iter()
                    .find(|d| !used.iter().any(|u| u == *d) && !reserved.contains(**d))
                    .map(|d| d.to_string());
                match free {
                    Some(d) => {
                        reserved.insert(d.clone());
                        d
                    }
                    None => {
                        return Err(Error::QuotaExceeded {
                            operation: op,
                            message: format!(
                                "instance {instance_id} has no free device name from /dev/sdf to /dev/sdp"
                            ),
                        })
                    }
                }
            };
            let res = self
                .ec2
                .attach_volume()
                .volume_id(volume_id)
                .instance_id(instance_id)
                .device(&device)
                .send()
                .await;
            let out = match res {
                Ok(_) => Ok(self
                    .wait_volume(op, volume_id, "in-use", |v| v.state == VolumeState::InUse)
                    .await),
                Err(e) => Err(AwsError::from_sdk(e)),
            };
            {
                let mut busy = self.devices.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(set) = busy.get_mut(instance_id) {
                    set.remove(&device);
                    if set.is_empty() {
                        busy.remove(instance_id);
                    }
                }
            }
            match out {
                Ok(r) => return r,
                // Another attach took this device name meanwhile: take the next.
                Err(e) if e.message.contains("already in use") => last_err = Some(e),
                Err(e) if e.code.starts_with("InvalidInstanceID") => {
                    return Err(Error::not_found(op, format!("instance {instance_id}")))
                }
                Err(e) => return Err(e.classify(op, &format!("volume {volume_id}"))),
            }
        }
        Err(last_err
            .map(|e| e.classify(op, &format!("volume {volume_id}")))
            .unwrap_or_else(|| Error::transient(op, "no device name could be attached")))
    }

    async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        let op = Operation::DetachVolume;
        let (_, v) = self.volume(op, volume_id).await?;
        match (&v.state, &v.attachment) {
            (VolumeState::Available, _) => return Ok(v),
            (VolumeState::Detaching, _) => {}
            (_, Some(a)) => {
                // moto needs the instance id (without it: HTTP 500).
                let res = self
                    .ec2
                    .detach_volume()
                    .volume_id(volume_id)
                    .instance_id(&a.instance_id)
                    .send()
                    .await;
                if let Err(e) = res {
                    let e = AwsError::from_sdk(e);
                    if e.code != "IncorrectState" || e.message.contains("attaching") {
                        return Err(e.classify(op, &format!("volume {volume_id}")));
                    }
                }
            }
            (VolumeState::Creating, None) => {
                return Err(Error::transient(
                    op,
                    format!("volume {volume_id} is being created"),
                ))
            }
            (VolumeState::Deleting, None) => {
                return Err(Error::not_found(op, format!("volume {volume_id}")))
            }
            (_, None) => return Ok(v),
        }
        self.wait_volume(op, volume_id, "available", |v| {
            v.state == VolumeState::Available
        })
        .await
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteVolume;
        let resource = format!("volume {id}");
        // Delete first; only a refusal reads the volume, to say why (one request when
        // it can go, as DeleteVolume refuses an attached volume on moto and AWS alike).
        if let Err(e) = self.ec2.delete_volume().volume_id(id).send().await {
            let e = AwsError::from_sdk(e);
            if e.is_not_found() {
                return Ok(());
            }
            if e.code != "VolumeInUse" && e.code != "IncorrectState" {
                return Err(e.classify(op, &resource));
            }
            let v = match self.volume(op, id).await {
                Err(Error::NotFound { .. }) => return Ok(()),
                r => r?.1,
            };
            match (&v.state, &v.attachment) {
                (_, Some(a)) => {
                    return Err(Error::conflict(
                        op,
                        &resource,
                        format!("attached to instance {}: detach it first", a.instance_id),
                    ))
                }
                (VolumeState::Deleting, _) => {}
                _ => return Err(Error::transient(op, format!("{resource} is busy"))),
            }
        }
        self.watches
            .volumes
            .until(
                op,
                &resource,
                "deleted",
                self.config.timeouts.delete,
                id,
                |ids| self.volumes_by_id(op, ids),
                |v| {
                    Ok(match v.and_then(record) {
                        None => Poll::Ready(()),
                        Some(v) => Poll::Pending(format!("{:?}", v.state)),
                    })
                },
            )
            .await
    }
}
