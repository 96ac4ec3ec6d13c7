//! Volumes: sparse files, attached as links in the instance's volumes directory.

use std::path::PathBuf;

use provider_core::{
    Error, Operation, Result, TagFilter, Volume, VolumeAttachment, VolumeSpec, VolumeState,
};

use super::{db, io_err, new_id, Cloud, GIB};
use crate::daemon::rows::{InstanceRow, VolumeRow};
use crate::protocol::Page;
use crate::store::Table;
use crate::supervisor::files;

impl Cloud {
    pub(super) fn volume_path(&self, id: &str) -> PathBuf {
        self.cfg.state_dir.join("volumes").join(format!("{id}.img"))
    }

    /// Creates a sparse file of the size asked.
    pub async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        let op = Operation::CreateVolume;
        spec.validate()?;
        self.check_zone(op, "spec.availability_zone", &spec.availability_zone)?;
        let _g = self.changes.lock().await;
        if let Some(r) = self.find_by_name::<VolumeRow>(op, Table::Volumes, &spec.name)? {
            return if r.spec == *spec {
                Ok(r.record)
            } else {
                Err(Error::conflict(op, format!("volume {} ({})", spec.name, r.record.id), "a volume of this name exists with a different spec: delete it or choose another name"))
            };
        }
        let id = new_id("vol");
        let path = self.volume_path(&id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(op, "creating the volumes directory"))?;
        }
        let f = std::fs::File::create(&path).map_err(io_err(op, "creating the volume file"))?;
        // set_len makes a sparse file: the size is there, the blocks are not.
        f.set_len(spec.size_gib * GIB)
            .map_err(io_err(op, "sizing the volume file"))?;
        let record = Volume {
            id: id.clone(),
            name: spec.name.clone(),
            availability_zone: spec.availability_zone.clone(),
            size_gib: spec.size_gib,
            volume_type: spec.volume_type.clone(),
            state: VolumeState::Available,
            attachment: None,
            tags: spec.tags.clone(),
        };
        self.store
            .put(
                Table::Volumes,
                &id,
                &VolumeRow {
                    spec: spec.clone(),
                    record: record.clone(),
                    path,
                },
            )
            .map_err(db(op))?;
        Ok(record)
    }

    /// Gets a volume.
    pub async fn get_volume(&self, id: &str) -> Result<Volume> {
        Ok(self
            .get_row::<VolumeRow>(Operation::GetVolume, Table::Volumes, "volume", id)?
            .record)
    }

    /// One page of volumes, with the next token.
    pub async fn list_volumes(
        &self,
        filter: &TagFilter,
        after: Option<&str>,
    ) -> Result<Page<Volume>> {
        self.page(
            Operation::ListVolumes,
            Table::Volumes,
            filter,
            after,
            |_, r: VolumeRow| r.record,
        )
    }

    /// Attaches: a link to the file appears in the instance's volumes directory.
    pub async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume> {
        let op = Operation::AttachVolume;
        let _g = self.changes.lock().await;
        let inst: InstanceRow = self.get_row(op, Table::Instances, "instance", instance_id)?;
        let mut row: VolumeRow = self.get_row(op, Table::Volumes, "volume", volume_id)?;
        if row.record.availability_zone != inst.record.availability_zone {
            return Err(Error::invalid(op, "instance_id", format!(
                "volume {volume_id} is in {} and instance {instance_id} in {}: attach within one availability zone",
                row.record.availability_zone, inst.record.availability_zone
            )));
        }
        match &row.record.attachment {
            Some(a) if a.instance_id == instance_id => return Ok(row.record),
            Some(a) => {
                return Err(Error::conflict(
                    op,
                    format!("volume {volume_id}"),
                    format!("attached to instance {}: detach it first", a.instance_id),
                ))
            }
            None => {}
        }
        let link = inst.dir.join(files::VOLUMES).join(volume_id);
        std::fs::create_dir_all(inst.dir.join(files::VOLUMES))
            .map_err(io_err(op, "creating the volumes directory"))?;
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&row.path, &link).map_err(io_err(op, "linking the volume"))?;
        row.record.state = VolumeState::InUse;
        row.record.attachment = Some(VolumeAttachment {
            instance_id: instance_id.to_string(),
            device: link.to_string_lossy().into_owned(),
        });
        self.store
            .put(Table::Volumes, volume_id, &row)
            .map_err(db(op))?;
        Ok(row.record)
    }

    /// Detaches: the link goes.
    pub async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        let op = Operation::DetachVolume;
        let _g = self.changes.lock().await;
        let mut row: VolumeRow = self.get_row(op, Table::Volumes, "volume", volume_id)?;
        if let Some(a) = row.record.attachment.take() {
            if let Err(e) = std::fs::remove_file(&a.device) {
                tracing::debug!("removing volume link {}: {e}", a.device);
            }
            row.record.state = VolumeState::Available;
            self.store
                .put(Table::Volumes, volume_id, &row)
                .map_err(db(op))?;
        }
        Ok(row.record)
    }

    /// Deletes the volume and its file; `Conflict` while attached.
    pub async fn delete_volume(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteVolume;
        let _g = self.changes.lock().await;
        let Some(row) = self
            .store
            .get::<VolumeRow>(Table::Volumes, id)
            .map_err(db(op))?
        else {
            return Ok(());
        };
        if let Some(a) = &row.record.attachment {
            return Err(Error::conflict(
                op,
                format!("volume {id}"),
                format!("attached to instance {}: detach it first", a.instance_id),
            ));
        }
        match std::fs::remove_file(&row.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(op, "removing the volume file")(e)),
        }
        self.store.delete(Table::Volumes, id).map_err(db(op))
    }
}
