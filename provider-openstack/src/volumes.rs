//! Cinder volumes, attached and detached through Nova's volume attachments.
//!
//! A volume is created in the Cinder AZ of the requested compute AZ (same name, or the
//! configured map; a compute AZ whose Cinder AZ does not exist is `InvalidInput`, never a
//! silent placement elsewhere) and reported with its compute AZ. Tags are its metadata.
//! Attach is `POST /servers/{id}/os-volume_attachments`, then wait for `in-use`; detach
//! is the matching `DELETE`, then wait for `available`.

use async_trait::async_trait;
use provider_core::model::*;
use provider_core::wait::Poll;
use provider_core::{Error, Operation, Result, Volumes};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{Call, Service};
use crate::compute::{spec_hash, SPEC_PREFIX};
use crate::tags;
use crate::OpenStackProvider;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CinderVolume {
    pub(crate) id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    volume_type: Option<String>,
    #[serde(default)]
    metadata: Tags,
    /// The hash of the spec it was created with (see `create_volume`).
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    attachments: Vec<Value>,
}

fn state_of(status: &str) -> VolumeState {
    match status {
        "available" => VolumeState::Available,
        "in-use" => VolumeState::InUse,
        "attaching" | "reserved" => VolumeState::Attaching,
        "detaching" => VolumeState::Detaching,
        "deleting" => VolumeState::Deleting,
        s if s.starts_with("error") => VolumeState::Error,
        _ => VolumeState::Creating,
    }
}

impl CinderVolume {
    fn attached_to(&self) -> Option<(String, String)> {
        self.attachments.first().map(|a| {
            let s = |k: &str| {
                a.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (s("server_id"), s("device"))
        })
    }
}

impl OpenStackProvider {
    fn volume_record(&self, v: &CinderVolume) -> Volume {
        let state = state_of(&v.status);
        let attachment = v
            .attached_to()
            .map(|(instance_id, device)| VolumeAttachment {
                instance_id,
                device,
            });
        Volume {
            id: v.id.clone(),
            name: v.name.clone().unwrap_or_default(),
            availability_zone: self
                .compute_zone(v.availability_zone.as_deref().unwrap_or_default()),
            size_gib: v.size,
            volume_type: v.volume_type.clone(),
            state,
            attachment,
            tags: v.metadata.clone(),
        }
    }

    pub(crate) async fn cinder_volume(&self, op: Operation, id: &str) -> Result<CinderVolume> {
        self.api
            .send_as(
                op,
                Call::get(Service::Volume, format!("volumes/{id}")),
                "volume",
            )
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found(op, format!("volume {id}")),
                e => e,
            })
    }

    pub(crate) async fn get_volume_impl(&self, op: Operation, id: &str) -> Result<Volume> {
        Ok(self.volume_record(&self.cinder_volume(op, id).await?))
    }

    /// Waits until the volume is in one of `wanted` (and, when given, attached to that
    /// instance); a volume in error is reported at once.
    async fn wait_volume(
        &self,
        op: Operation,
        id: &str,
        wanted: &[VolumeState],
        attached_to: Option<&str>,
    ) -> Result<Volume> {
        self.watches
            .volumes
            .until(
                op,
                &format!("volume {id}"),
                &format!("{wanted:?}"),
                self.settings.timeouts.volume,
                id,
                |ids| self.volumes_by_id(op, ids),
                |v| {
                    let v = v
                        .map(|v| self.volume_record(v))
                        .ok_or_else(|| Error::not_found(op, format!("volume {id}")))?;
                    if v.state == VolumeState::Error {
                        return Err(Error::api(
                            op,
                            None,
                            "error",
                            format!("volume {id} is in error: delete it and retry"),
                        ));
                    }
                    let attached_ok = match attached_to {
                        Some(i) => v.attachment.as_ref().is_some_and(|a| a.instance_id == i),
                        None => true,
                    };
                    Ok(if wanted.contains(&v.state) && attached_ok {
                        Poll::Ready(v)
                    } else {
                        Poll::Pending(format!("{:?}", v.state))
                    })
                },
            )
            .await
    }

    /// Sets and removes volume tags (Cinder metadata).
    pub(crate) async fn update_volume_tags(
        &self,
        op: Operation,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        tags::check_metadata(op, "set", set)?;
        let v = self.cinder_volume(op, id).await?;
        if !set.is_empty() {
            self.api
                .send(
                    op,
                    Call::post(
                        Service::Volume,
                        format!("volumes/{id}/metadata"),
                        &json!({ "metadata": set }),
                    ),
                )
                .await?;
        }
        for k in remove {
            if v.metadata.contains_key(k) && !set.contains_key(k) {
                match self
                    .api
                    .send(
                        op,
                        Call::delete(Service::Volume, format!("volumes/{id}/metadata/{k}")),
                    )
                    .await
                {
                    Ok(_) | Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Volumes for OpenStackProvider {
    async fn get_volume(&self, id: &str) -> Result<Volume> {
        self.get_volume_impl(provider_core::Operation::GetVolume, id)
            .await
    }

    async fn list_volumes(&self, filter: &TagFilter) -> Result<Vec<Volume>> {
        let op = Operation::ListVolumes;
        let mut call = Call::get(Service::Volume, "volumes/detail");
        if !filter.tags.is_empty() {
            call = call.query(
                "metadata",
                serde_json::to_string(&filter.tags).unwrap_or_default(),
            );
        }
        let vols: Vec<CinderVolume> = self.api.list(op, call, "volumes").await?;
        Ok(vols
            .iter()
            .filter(|v| v.status != "deleted")
            .map(|v| self.volume_record(v))
            .filter(|v| filter.matches(&v.tags))
            .collect())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        let op = Operation::CreateVolume;
        spec.validate()?;
        tags::check_metadata(op, "spec.tags", &spec.tags)?;
        self.check_compute_zone(op, "spec.availability_zone", &spec.availability_zone)
            .await?;
        let vz = self.volume_zone(&spec.availability_zone);
        let cinder_zones = self
            .memos
            .volume_zones
            .get_or_try("", || self.volume_zones(op))
            .await?;
        if !cinder_zones.contains(&vz) {
            return Err(Error::invalid(
                op,
                "spec.availability_zone",
                format!(
                    "compute AZ {:?} maps to volume AZ {vz:?}, which Cinder does not have ({}): set OpenStack.VolumeAvailabilityZones = {}:<cinder AZ>",
                    spec.availability_zone,
                    cinder_zones.iter().cloned().collect::<Vec<_>>().join(", "),
                    spec.availability_zone
                ),
            ));
        }
        let hash = spec_hash(spec);
        // By its exact name (Cinder filters on one name).
        let existing: Vec<CinderVolume> = self
            .api
            .list(
                op,
                Call::get(Service::Volume, "volumes/detail").query("name", spec.name.clone()),
                "volumes",
            )
            .await?;
        let id = match existing.iter().find(|v| {
            v.name.as_deref() == Some(spec.name.as_str())
                && !matches!(v.status.as_str(), "deleting" | "deleted" | "error_deleting")
        }) {
            Some(v) => {
                // The spec it was created with (its description), not its metadata now:
                // update_tags changes that.
                let same = match v.description.as_deref() {
                    Some(d) if d.starts_with(SPEC_PREFIX) => d == hash,
                    // Created before the spec hash: its settings and tags as asked.
                    _ => {
                        v.availability_zone.as_deref() == Some(vz.as_str())
                            && v.size == spec.size_gib
                            && (spec.volume_type.is_none() || v.volume_type == spec.volume_type)
                            && v.metadata == spec.tags
                    }
                };
                if !same {
                    return Err(Error::conflict(
                        op,
                        format!("volume {} ({})", spec.name, v.id),
                        "a volume of this name exists with a different spec: delete it or choose another name",
                    ));
                }
                v.id.clone()
            }
            None => {
                let mut body = json!({
                    "name": spec.name,
                    "size": spec.size_gib,
                    "availability_zone": vz,
                    "metadata": spec.tags,
                    "description": hash,
                });
                if let Some(t) = &spec.volume_type {
                    body["volume_type"] = json!(t);
                }
                let v: CinderVolume = self
                    .api
                    .send_as(
                        op,
                        Call::post(Service::Volume, "volumes", &json!({ "volume": body })),
                        "volume",
                    )
                    .await
                    .map_err(|e| match e {
                        Error::NotFound { resource, .. } => Error::invalid(
                            op,
                            "spec.volume_type",
                            format!("unknown volume type: {resource}"),
                        ),
                        e => e,
                    })?;
                v.id
            }
        };
        // An existing volume may be attached: return it in whatever settled state it has.
        self.wait_volume(op, &id, &[VolumeState::Available, VolumeState::InUse], None)
            .await
    }

    async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume> {
        let op = Operation::AttachVolume;
        // Read with the other attaches started together.
        let (v, server) = tokio::try_join!(
            self.volume_read(op, volume_id),
            self.server_read(op, instance_id)
        )?;
        if server.is_deleting() {
            return Err(Error::not_found(op, format!("instance {instance_id}")));
        }
        let server_zone = server.availability_zone.clone().unwrap_or_default();
        let vol = self.volume_record(&v);
        if vol.availability_zone != server_zone {
            return Err(Error::invalid(
                op,
                "instance_id",
                format!(
                    "volume {volume_id} is in {} and instance {instance_id} in {server_zone}: attach within one availability zone",
                    vol.availability_zone
                ),
            ));
        }
        match (&vol.attachment, vol.state) {
            (Some(a), _) if a.instance_id == instance_id => {
                return self
                    .wait_volume(op, volume_id, &[VolumeState::InUse], Some(instance_id))
                    .await
            }
            (Some(a), _) => {
                return Err(Error::conflict(
                    op,
                    format!("volume {volume_id}"),
                    format!("attached to instance {}: detach it first", a.instance_id),
                ))
            }
            (None, VolumeState::Available) => {}
            (None, s) => return Err(Error::transient(op, format!("volume {volume_id} is {s:?}"))),
        }
        let body = json!({ "volumeAttachment": { "volumeId": volume_id } });
        match self
            .api
            .send(
                op,
                Call::post(
                    Service::Compute,
                    format!("servers/{instance_id}/os-volume_attachments"),
                    &body,
                ),
            )
            .await
        {
            Ok(_) => {}
            Err(Error::NotFound { .. }) => {
                return Err(Error::not_found(op, format!("instance {instance_id}")))
            }
            // The instance or volume is busy (task state, a concurrent attach): retry.
            Err(Error::Conflict { message, .. }) => {
                return Err(Error::transient(
                    op,
                    format!("attach is refused for now: {message}"),
                ))
            }
            Err(e) => return Err(e),
        }
        self.wait_volume(op, volume_id, &[VolumeState::InUse], Some(instance_id))
            .await
    }

    async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        let op = Operation::DetachVolume;
        let v = self.volume_read(op, volume_id).await?;
        if let Some((server, _)) = v.attached_to() {
            match self
                .api
                .send(
                    op,
                    Call::delete(
                        Service::Compute,
                        format!("servers/{server}/os-volume_attachments/{volume_id}"),
                    ),
                )
                .await
            {
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(Error::Conflict { message, .. }) => {
                    return Err(Error::transient(
                        op,
                        format!("detach is refused for now: {message}"),
                    ))
                }
                Err(e) => return Err(e),
            }
        } else if state_of(&v.status) == VolumeState::Available {
            return Ok(self.volume_record(&v));
        }
        self.wait_volume(op, volume_id, &[VolumeState::Available], None)
            .await
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteVolume;
        let v = match self.volume_read(op, id).await {
            Ok(v) => v,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Some((server, _)) = v.attached_to() {
            return Err(Error::conflict(
                op,
                format!("volume {id}"),
                format!("attached to instance {server}: detach it first"),
            ));
        }
        match state_of(&v.status) {
            VolumeState::Attaching | VolumeState::InUse => {
                return Err(Error::conflict(
                    op,
                    format!("volume {id}"),
                    "being attached: detach it first",
                ))
            }
            VolumeState::Creating | VolumeState::Detaching => {
                return Err(Error::transient(
                    op,
                    format!("volume {id} is busy ({})", v.status),
                ))
            }
            VolumeState::Deleting => {}
            VolumeState::Available | VolumeState::Error => {
                match self
                    .api
                    .send(op, Call::delete(Service::Volume, format!("volumes/{id}")))
                    .await
                {
                    Ok(_) | Err(Error::NotFound { .. }) => {}
                    Err(Error::InvalidInput { message, .. })
                    | Err(Error::Conflict { message, .. }) => {
                        return Err(Error::transient(
                            op,
                            format!("volume {id} cannot be deleted yet: {message}"),
                        ))
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.watches
            .volumes
            .until(
                op,
                &format!("volume {id}"),
                "deleted",
                self.settings.timeouts.delete,
                id,
                |ids| self.volumes_by_id(op, ids),
                |v| match v {
                    None => Ok(Poll::Ready(())),
                    Some(v) if v.status == "deleted" => Ok(Poll::Ready(())),
                    Some(v) if v.status == "error_deleting" => Err(Error::api(
                        op,
                        None,
                        "error_deleting",
                        format!("Cinder failed to delete volume {id}"),
                    )),
                    Some(v) => Ok(Poll::Pending(v.status.clone())),
                },
            )
            .await
    }
}
