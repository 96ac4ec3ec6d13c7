//! Volumes: virtual disks at `[datastore] plinth-volumes/<name>.vmdk`, each with its
//! record `plinth-volumes/<name>.json` (spec as created, zone, tags).
//!
//! A detached disk is a file, not an inventory object, so it cannot carry custom
//! attributes: its path is the owner marker (the `plinth-volumes/` prefix; the id is
//! the name) and its tags and zone live in the record next to it. Attach and detach
//! are `ReconfigVM_Task` adding the existing file to the VM's disk controller (or
//! removing the device, keeping the file); a volume's attachment is read from the VMs'
//! devices, never stored, so it cannot go stale. Zones are recorded, not physical: the
//! datastore is shared by the clusters, and attaching across zones is refused here.

use async_trait::async_trait;
use provider_core::*;
use serde::{Deserialize, Serialize};

use crate::provider::{VSphereProvider, Vm};
use crate::records::{self, VOLUME_DIR};
use crate::soap::esc;

/// The disk provisioning types a volume's type may name (`thin` when unset).
pub(crate) const DISK_TYPES: [&str; 3] = ["thin", "thick", "eagerZeroedThick"];

/// The record kept next to a volume's disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VolumeRecord {
    pub spec: VolumeSpec,
    pub tags: Tags,
}

fn disk_path(id: &str) -> String {
    format!("{VOLUME_DIR}/{id}.vmdk")
}

/// Volume `id` of record `rec`, attached as (instance id, controller key, unit).
fn volume_of(id: &str, rec: VolumeRecord, att: Option<(String, i32, i32)>) -> Volume {
    Volume {
        id: id.to_string(),
        name: rec.spec.name.clone(),
        availability_zone: rec.spec.availability_zone.clone(),
        size_gib: rec.spec.size_gib,
        volume_type: rec.spec.volume_type.clone(),
        state: if att.is_some() {
            VolumeState::InUse
        } else {
            VolumeState::Available
        },
        attachment: att.map(|(instance_id, ckey, unit)| VolumeAttachment {
            instance_id,
            device: format!("scsi{}:{unit}", (ckey - 1000).max(0)),
        }),
        tags: rec.tags,
    }
}

impl VSphereProvider {
    /// Where volume `id` is attached: (VM, device key, controller key, unit).
    fn attachment_of(&self, ds_path: &str, vms: &[Vm]) -> Option<(Vm, i32, i32, i32)> {
        vms.iter().find_map(|vm| {
            vm.disks
                .iter()
                .find(|d| d.file == ds_path)
                .map(|d| (vm.clone(), d.key, d.controller_key, d.unit))
        })
    }

    async fn volume_record(&self, id: &str, rec: VolumeRecord, vms: &[Vm]) -> Result<Volume> {
        let inv = self.inv().await?;
        let att = self
            .attachment_of(&inv.ds_path(&disk_path(id)), vms)
            .map(|(vm, _, ckey, unit)| (vm.moref.value, ckey, unit));
        Ok(volume_of(id, rec, att))
    }

    /// Reads the record of volume `id` (and remembers what it read).
    async fn disk_rec(&self, op: Operation, id: &str) -> Result<Option<VolumeRecord>> {
        let inv = self.inv().await?;
        let rec: Option<VolumeRecord> = records::get(&self.client, inv, op, VOLUME_DIR, id).await?;
        self.seen_disk(id, rec.clone());
        Ok(rec)
    }

    /// Remembers the record of volume `id` as read or written (`None`: gone).
    fn seen_disk(&self, id: &str, rec: Option<VolumeRecord>) {
        let mut seen = self.volumes_seen.lock().unwrap_or_else(|p| p.into_inner());
        match rec {
            Some(r) => seen.insert(id.to_string(), r),
            None => seen.remove(id),
        };
    }

    /// The record attach, detach and tag updates start from: this process's last read
    /// or write of it (a volume's spec never changes), else a read.
    async fn known_disk(&self, op: Operation, id: &str) -> Result<Option<VolumeRecord>> {
        let known = self
            .volumes_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        match known {
            Some(r) => Ok(Some(r)),
            None => self.disk_rec(op, id).await,
        }
    }

    pub(crate) async fn get_disk(&self, op: Operation, id: &str) -> Result<Volume> {
        let rec = self
            .disk_rec(op, id)
            .await?
            .ok_or_else(|| Error::not_found(op, format!("volume {id}")))?;
        let vms = self.list_vms(op).await?;
        self.volume_record(id, rec, &vms).await
    }

    pub(crate) async fn update_volume_tags(
        &self,
        op: Operation,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        let inv = self.inv().await?;
        let lock = self.record_lock(&format!("volume/{id}")).await;
        let _guard = lock.lock().await;
        let mut rec = self
            .known_disk(op, id)
            .await?
            .ok_or_else(|| Error::not_found(op, format!("volume {id}")))?;
        for k in remove {
            rec.tags.remove(k);
        }
        rec.tags
            .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        records::put(&self.client, inv, op, VOLUME_DIR, id, &rec).await?;
        self.seen_disk(id, Some(rec));
        Ok(())
    }
}

#[async_trait]
impl Volumes for VSphereProvider {
    async fn get_volume(&self, id: &str) -> Result<Volume> {
        self.get_disk(Operation::GetVolume, id).await
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        let op = Operation::CreateVolume;
        spec.validate()?;
        crate::tags::check_keys(op, "spec.tags", &spec.tags)?;
        let inv = self.inv().await?;
        if inv.zone(&spec.availability_zone).is_none() {
            return Err(Error::invalid(
                op,
                "spec.availability_zone",
                format!(
                    "unknown availability zone {:?}: use one of {}",
                    spec.availability_zone,
                    inv.zone_names()
                ),
            ));
        }
        if let Some(t) = &spec.volume_type {
            if !DISK_TYPES.contains(&t.as_str()) {
                return Err(Error::invalid(
                    op,
                    "spec.volume_type",
                    format!(
                        "{t:?} is not a vSphere disk type: use thin, thick or eagerZeroedThick"
                    ),
                ));
            }
        }
        let id = spec.name.clone();
        let lock = self.record_lock(&format!("volume/{id}")).await;
        let _guard = lock.lock().await;
        // An id absent from this process's last listing needs no read first.
        let existing = if self.known_absent(VOLUME_DIR, &id) {
            None
        } else {
            self.disk_rec(op, &id).await?
        };
        if let Some(rec) = existing {
            if rec.spec != *spec {
                return Err(Error::conflict(
                    op,
                    format!("volume {id}"),
                    "a volume of this name exists with a different spec: delete it or choose another name",
                ));
            }
            let vms = self.list_vms(op).await?;
            return self.volume_record(&id, rec, &vms).await;
        }
        self.volume_dir_made
            .get_or_try_init(|| records::make_dir(&self.client, inv, op, VOLUME_DIR))
            .await?;
        let vdm = self.client.content().await?.virtual_disk_manager.clone();
        let body = format!(
            "<CreateVirtualDisk_Task>{}<name>{}</name>{}<spec xsi:type=\"FileBackedVirtualDiskSpec\"><diskType>{}</diskType><adapterType>lsiLogic</adapterType><capacityKb>{}</capacityKb></spec></CreateVirtualDisk_Task>",
            vdm.xml("_this"),
            esc(&inv.ds_path(&disk_path(&id))),
            inv.datacenter.xml("datacenter"),
            esc(spec.volume_type.as_deref().unwrap_or("thin")),
            spec.size_gib * 1024 * 1024
        );
        match self
            .client
            .run_task(op, &format!("volume {id}"), &body, self.cfg.timeouts.volume)
            .await
        {
            // A disk without a record: a create that stopped half-way; adopt it.
            Ok(_) | Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let rec = VolumeRecord {
            spec: spec.clone(),
            tags: spec.tags.clone(),
        };
        records::put(&self.client, inv, op, VOLUME_DIR, &id, &rec).await?;
        self.note_record(VOLUME_DIR, &id, true);
        self.seen_disk(&id, Some(rec.clone()));
        self.volume_record(&id, rec, &[]).await
    }

    async fn list_volumes(&self, filter: &TagFilter) -> Result<Vec<Volume>> {
        let op = Operation::ListVolumes;
        // The VMs (for attachments) read at once with the listing, so that a listing
        // of the instances running alongside shares the read.
        let (ids, vms) = futures::try_join!(self.record_ids(op, VOLUME_DIR), self.list_vms(op))?;
        let recs =
            futures::future::try_join_all(ids.iter().map(|id| self.disk_rec(op, id))).await?;
        let mut out = Vec::new();
        for (id, rec) in ids.iter().zip(recs) {
            let Some(rec) = rec else {
                continue;
            };
            if filter.matches(&rec.tags) {
                out.push(self.volume_record(id, rec, &vms).await?);
            }
        }
        Ok(out)
    }

    async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume> {
        let op = Operation::AttachVolume;
        let inv = self.inv().await?;
        let rec = self
            .known_disk(op, volume_id)
            .await?
            .ok_or_else(|| Error::not_found(op, format!("volume {volume_id}")))?;
        // One read of the VMs: the instance, and where the volume is attached now.
        let vms = self.list_vms(op).await?;
        let vm = match vms.iter().find(|v| v.moref.value == instance_id) {
            Some(vm) if !vm.template => vm.clone(),
            _ => return Err(Error::not_found(op, format!("instance {instance_id}"))),
        };
        let inst = self.instance_record(&vm).await?;
        if inst.availability_zone != rec.spec.availability_zone {
            return Err(Error::invalid(
                op,
                "instance_id",
                format!(
                    "volume {volume_id} is in {} and instance {instance_id} in {}: attach within one availability zone",
                    rec.spec.availability_zone, inst.availability_zone
                ),
            ));
        }
        let path = inv.ds_path(&disk_path(volume_id));
        match self.attachment_of(&path, &vms) {
            Some((other, ..)) if other.moref.value == instance_id => {
                return self.volume_record(volume_id, rec, &vms).await
            }
            Some((other, ..)) => {
                return Err(Error::conflict(
                    op,
                    format!("volume {volume_id}"),
                    format!(
                        "attached to instance {}: detach it first",
                        other.moref.value
                    ),
                ))
            }
            None => {}
        }
        // The controller of the VM's first disk (else its first SCSI controller), and a
        // free unit on it (7 is the controller's own).
        let controller = vm
            .disks
            .first()
            .map(|d| d.controller_key)
            .or_else(|| {
                vm.devices
                    .iter()
                    .find(|(_, ty, _)| {
                        ty.contains("SCSI") || ty.contains("LsiLogic") || ty.contains("BusLogic")
                    })
                    .map(|(k, _, _)| *k)
            })
            .ok_or_else(|| {
                Error::conflict(
                    op,
                    format!("instance {instance_id}"),
                    "the VM has no disk controller",
                )
            })?;
        let used: Vec<i32> = vm
            .disks
            .iter()
            .filter(|d| d.controller_key == controller)
            .map(|d| d.unit)
            .collect();
        let unit = (0..16)
            .find(|u| *u != 7 && !used.contains(u))
            .ok_or_else(|| Error::QuotaExceeded {
                operation: op,
                message: format!(
                    "instance {instance_id} has no free unit on controller {controller}"
                ),
            })?;
        let body = format!(
            "<ReconfigVM_Task>{}<spec><deviceChange><operation>add</operation><device xsi:type=\"VirtualDisk\"><key>-1</key><backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\"><fileName>{}</fileName><diskMode>persistent</diskMode></backing><controllerKey>{controller}</controllerKey><unitNumber>{unit}</unitNumber><capacityInKB>{}</capacityInKB></device></deviceChange></spec></ReconfigVM_Task>",
            vm.moref.xml("_this"),
            esc(&path),
            rec.spec.size_gib * 1024 * 1024
        );
        self.client
            .run_task(
                op,
                &format!("volume {volume_id}"),
                &body,
                self.cfg.timeouts.volume,
            )
            .await?;
        // The task ends with the disk attached: nothing left to wait for.
        Ok(volume_of(
            volume_id,
            rec,
            Some((vm.moref.value, controller, unit)),
        ))
    }

    async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        let op = Operation::DetachVolume;
        let inv = self.inv().await?;
        let rec = self
            .known_disk(op, volume_id)
            .await?
            .ok_or_else(|| Error::not_found(op, format!("volume {volume_id}")))?;
        let vms = self.list_vms(op).await?;
        let Some((vm, key, ..)) = self.attachment_of(&inv.ds_path(&disk_path(volume_id)), &vms)
        else {
            return self.volume_record(volume_id, rec, &vms).await;
        };
        let body = format!(
            "<ReconfigVM_Task>{}<spec><deviceChange><operation>remove</operation><device xsi:type=\"VirtualDisk\"><key>{key}</key><capacityInKB>0</capacityInKB></device></deviceChange></spec></ReconfigVM_Task>",
            vm.moref.xml("_this"),
        );
        self.client
            .run_task(
                op,
                &format!("volume {volume_id}"),
                &body,
                self.cfg.timeouts.volume,
            )
            .await?;
        // The task ends with the disk detached: nothing left to wait for.
        Ok(volume_of(volume_id, rec, None))
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteVolume;
        let inv = self.inv().await?;
        if !records::valid_id(id) {
            return Ok(());
        }
        let lock = self.record_lock(&format!("volume/{id}")).await;
        let _guard = lock.lock().await;
        // No read of the record first: deleting a disk or record already gone succeeds.
        let vms = self.list_vms(op).await?;
        if let Some((vm, ..)) = self.attachment_of(&inv.ds_path(&disk_path(id)), &vms) {
            return Err(Error::conflict(
                op,
                format!("volume {id}"),
                format!("attached to instance {}: detach it first", vm.moref.value),
            ));
        }
        let vdm = self.client.content().await?.virtual_disk_manager.clone();
        let body = format!(
            "<DeleteVirtualDisk_Task>{}<name>{}</name>{}</DeleteVirtualDisk_Task>",
            vdm.xml("_this"),
            esc(&inv.ds_path(&disk_path(id))),
            inv.datacenter.xml("datacenter")
        );
        match self
            .client
            .run_task(op, &format!("volume {id}"), &body, self.cfg.timeouts.delete)
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        records::delete(
            &self.client,
            inv,
            op,
            VOLUME_DIR,
            id,
            self.cfg.timeouts.delete,
        )
        .await?;
        self.note_record(VOLUME_DIR, id, false);
        self.seen_disk(id, None);
        Ok(())
    }
}
