//! Instances: supervised processes, each bound to its own loopback address.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use futures::future::try_join_all;
use provider_core::{Error, Instance, InstanceSpec, InstanceState, Operation, Result, TagFilter};
use tokio::time::Instant;

use super::{db, io_err, new_id, Cloud, STOP_GRACE};
use crate::catalog::{self, Image, HTTP_IMAGE_PORT};
use crate::daemon::rows::{FipRow, GroupRow, InstanceRow, VolumeRow};
use crate::protocol::Page;
use crate::store::Table;
use crate::supervisor::{self, files, InstanceBoot};

impl Cloud {
    /// Starts an instance process and waits until it serves.
    pub async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        let op = Operation::CreateInstance;
        spec.validate()?;
        self.check_zone(op, "spec.availability_zone", &spec.availability_zone)?;
        let Some(image) = Image::by_name(&spec.image) else {
            return Err(Error::invalid(
                op,
                "spec.image",
                format!(
                    "unknown image {:?}: use one of {}",
                    spec.image,
                    catalog::image_names()
                ),
            ));
        };
        if catalog::flavor(&spec.flavor).is_none() {
            return Err(Error::invalid(
                op,
                "spec.flavor",
                format!(
                    "unknown flavor {:?}: use one of {}",
                    spec.flavor,
                    catalog::flavor_names()
                ),
            ));
        }
        let id = {
            let _g = self.changes.lock().await;
            for (i, g) in spec.security_groups.iter().enumerate() {
                if self
                    .store
                    .get::<GroupRow>(Table::SecurityGroups, g)
                    .map_err(db(op))?
                    .is_none()
                {
                    return Err(Error::invalid(
                        op,
                        format!("spec.security_groups[{i}]"),
                        format!("no security group with id {g:?}: create it first"),
                    ));
                }
            }
            match self.find_by_name::<InstanceRow>(op, Table::Instances, &spec.name)? {
                Some(r) if r.spec == *spec => r.record.id,
                Some(r) => {
                    return Err(Error::conflict(op, format!("instance {} ({})", spec.name, r.record.id), "an instance of this name exists with a different spec: delete it or choose another name"));
                }
                None => self.launch(op, spec, image)?,
            }
        };
        self.wait_running(op, &id).await
    }

    pub(super) fn launch(
        &self,
        op: Operation,
        spec: &InstanceSpec,
        image: Image,
    ) -> Result<String> {
        let used: HashSet<IpAddr> = self
            .store
            .all::<InstanceRow>(Table::Instances)
            .map_err(db(op))?
            .into_iter()
            .filter_map(|i| i.record.private_ip)
            .collect();
        let address = self
            .pick_address(&self.cfg.instance_network, &used, Some(HTTP_IMAGE_PORT))
            .ok_or_else(|| Error::QuotaExceeded {
                operation: op,
                message: format!("no free address in {}", self.cfg.instance_network),
            })?;
        let id = new_id("i");
        let dir = self.cfg.state_dir.join("instances").join(&id);
        std::fs::create_dir_all(dir.join(files::VOLUMES))
            .map_err(io_err(op, "creating the instance directory"))?;
        let boot = InstanceBoot {
            id: id.clone(),
            name: spec.name.clone(),
            availability_zone: spec.availability_zone.clone(),
            address,
            image,
            volumes: Vec::new(),
        };
        let boot_json = serde_json::to_vec_pretty(&boot)
            .map_err(|e| io_err(op, "writing boot.json")(std::io::Error::other(e)))?;
        std::fs::write(dir.join(files::BOOT), boot_json)
            .map_err(io_err(op, "writing boot.json"))?;
        if let Some(u) = &spec.user_data {
            std::fs::write(dir.join(files::USER_DATA), u)
                .map_err(io_err(op, "writing the user data"))?;
        }
        let mut row = InstanceRow {
            spec: spec.clone(),
            record: Instance {
                id: id.clone(),
                name: spec.name.clone(),
                availability_zone: spec.availability_zone.clone(),
                flavor: spec.flavor.clone(),
                image: spec.image.clone(),
                state: InstanceState::Pending,
                private_ip: Some(address),
                public_ip: None,
                security_groups: spec.security_groups.clone(),
                tags: spec.tags.clone(),
            },
            process: None,
            dir: dir.clone(),
        };
        // Record first, so a crash right after the spawn still finds the instance.
        self.store
            .put(Table::Instances, &id, &row)
            .map_err(db(op))?;
        let (pid, mut child) = supervisor::spawn_instance(&self.helper, &dir, &boot)
            .map_err(io_err(op, "starting the instance process"))?;
        // Reap it when it exits, so it never lingers as a zombie of the daemon.
        tokio::spawn(async move {
            let status = child.wait().await;
            tracing::info!(pid = pid.pid, ?status, "instance process exited");
        });
        row.process = Some(pid);
        self.store
            .put(Table::Instances, &id, &row)
            .map_err(db(op))?;
        self.refresh_view(op)?;
        tracing::info!(instance = %id, %address, pid = pid.pid, "instance started");
        Ok(id)
    }

    pub(super) async fn wait_running(&self, op: Operation, id: &str) -> Result<Instance> {
        let deadline = Instant::now() + self.cfg.timeouts.instance;
        loop {
            let row: InstanceRow = self.get_row(op, Table::Instances, "instance", id)?;
            match row.record.state {
                InstanceState::Pending => {}
                _ => return self.get_instance_op(op, id),
            }
            let alive = row.process.is_some_and(|p| p.alive());
            if row.dir.join(files::READY).exists() && alive {
                let _g = self.changes.lock().await;
                if let Some(mut r) = self
                    .store
                    .get::<InstanceRow>(Table::Instances, id)
                    .map_err(db(op))?
                {
                    if r.record.state == InstanceState::Pending {
                        r.record.state = InstanceState::Running;
                        self.store.put(Table::Instances, id, &r).map_err(db(op))?;
                    }
                }
                drop(_g);
                return self.get_instance_op(op, id);
            }
            if row.process.is_some() && !alive {
                let console =
                    std::fs::read_to_string(row.dir.join(files::CONSOLE)).unwrap_or_default();
                let tail: String = console
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(" | ");
                let _g = self.changes.lock().await;
                if let Some(mut r) = self
                    .store
                    .get::<InstanceRow>(Table::Instances, id)
                    .map_err(db(op))?
                {
                    r.record.state = InstanceState::Failed;
                    self.store.put(Table::Instances, id, &r).map_err(db(op))?;
                }
                return Err(Error::api(
                    op,
                    None,
                    "instance_failed",
                    format!("instance {id} exited while booting: {tail}"),
                ));
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    operation: op,
                    resource: format!("instance {id}"),
                    wanted: "running".into(),
                    last_state: "pending".into(),
                    waited: self.cfg.timeouts.instance,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(super) fn get_instance_op(&self, op: Operation, id: &str) -> Result<Instance> {
        let row: InstanceRow = self.get_row(op, Table::Instances, "instance", id)?;
        let fips = self
            .store
            .all::<FipRow>(Table::FloatingIps)
            .map_err(db(op))?;
        Ok(self.instance_view(row, &fips))
    }

    /// Gets an instance (a dead process shows as `Failed`).
    pub async fn get_instance(&self, id: &str) -> Result<Instance> {
        self.get_instance_op(Operation::GetInstance, id)
    }

    /// Creates several instances, validating the whole batch before creating any.
    pub async fn create_instances(&self, specs: &[InstanceSpec]) -> Result<Vec<Instance>> {
        for (i, spec) in specs.iter().enumerate() {
            spec.validate_for(Operation::CreateInstances, &format!("specs[{i}]"))?;
        }
        try_join_all(specs.iter().map(|s| self.create_instance(s))).await
    }

    /// Gets several instances, in the order asked; `NotFound` if any is missing.
    pub async fn get_instances(&self, ids: &[String]) -> Result<Vec<Instance>> {
        ids.iter()
            .map(|id| self.get_instance_op(Operation::GetInstances, id))
            .collect()
    }

    /// Deletes several instances, concurrently.
    pub async fn delete_instances(&self, ids: &[String]) -> Result<()> {
        try_join_all(ids.iter().map(|id| self.delete_instance(id)))
            .await
            .map(|_| ())
    }

    /// One page of instances.
    pub async fn list_instances(
        &self,
        filter: &TagFilter,
        after: Option<&str>,
    ) -> Result<Page<Instance>> {
        let op = Operation::ListInstances;
        let fips = self
            .store
            .all::<FipRow>(Table::FloatingIps)
            .map_err(db(op))?;
        self.page(op, Table::Instances, filter, after, |c, r: InstanceRow| {
            c.instance_view(r, &fips)
        })
    }

    /// Stops the process group and removes the instance; `Conflict` while a volume is
    /// attached. Its floating IP is disassociated.
    pub async fn delete_instance(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteInstance;
        let row = {
            let _g = self.changes.lock().await;
            let Some(mut row) = self
                .store
                .get::<InstanceRow>(Table::Instances, id)
                .map_err(db(op))?
            else {
                return Ok(());
            };
            if let Some(v) = self
                .store
                .all::<VolumeRow>(Table::Volumes)
                .map_err(db(op))?
                .into_iter()
                .find(|v| {
                    v.record
                        .attachment
                        .as_ref()
                        .is_some_and(|a| a.instance_id == id)
                })
            {
                return Err(Error::conflict(
                    op,
                    format!("instance {id}"),
                    format!(
                        "volume {} is attached: detach it first so it is not lost",
                        v.record.id
                    ),
                ));
            }
            for mut f in self
                .store
                .all::<FipRow>(Table::FloatingIps)
                .map_err(db(op))?
            {
                if f.record.instance_id.as_deref() == Some(id) {
                    f.record.instance_id = None;
                    self.store
                        .put(Table::FloatingIps, &f.record.id.clone(), &f)
                        .map_err(db(op))?;
                }
            }
            let drains = self.leave_pools(op, id)?;
            row.record.state = InstanceState::Deleting;
            self.store.put(Table::Instances, id, &row).map_err(db(op))?;
            self.refresh_view(op)?;
            (row, drains)
        };
        // Connections through the load balancers finish before the process stops.
        let (row, drains) = row;
        futures::future::join_all(drains).await;
        if let Some(p) = row.process {
            p.stop_group(STOP_GRACE).await;
        }
        let _g = self.changes.lock().await;
        if let Err(e) = std::fs::remove_dir_all(&row.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %row.dir.display(), "removing instance directory: {e}");
            }
        }
        self.store.delete(Table::Instances, id).map_err(db(op))?;
        self.refresh_view(op)
    }
}
