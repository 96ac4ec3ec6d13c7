//! Instances: checked against the catalog, launched in batches that wait with one poll for all.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

use async_trait::async_trait;

use super::state::*;
use super::MemoryProvider;
use crate::model::*;
use crate::wait::Poll;
use crate::{Error, Instances, Operation, Result};

impl MemoryProvider {
    pub(super) fn instance_record(&self, st: &State, r: &InstanceRec) -> Instance {
        let mut i = r.instance.clone();
        i.state = instance_state(r);
        i.public_ip = st
            .fips
            .values()
            .find(|f| f.fip.instance_id.as_deref() == Some(i.id.as_str()))
            .map(|f| f.fip.address);
        i
    }

    pub(super) async fn wait_instances(
        &self,
        op: Operation,
        ids: &[String],
    ) -> Result<Vec<Instance>> {
        self.config
            .poller
            .until_all(
                op,
                "running",
                self.config.timeouts.instance,
                ids,
                |pending| async move {
                    let st = self.lock();
                    let mut out = Vec::new();
                    for id in pending {
                        let Some(r) = st.instances.get(&id) else {
                            return Err(Error::not_found(op, format!("instance {id}")));
                        };
                        let i = self.instance_record(&st, r);
                        let p = match i.state {
                            InstanceState::Running => Poll::Ready(i),
                            InstanceState::Failed => {
                                return Err(Error::api(
                                    op,
                                    None,
                                    "FAILED",
                                    format!("instance {id} failed to start: delete it and retry"),
                                ))
                            }
                            s => Poll::Pending(format!("{s:?}")),
                        };
                        out.push((id, p));
                    }
                    Ok(out)
                },
            )
            .await
    }

    /// Validates an instance spec against the catalog and the current state; answers the
    /// id of an existing instance of the same name and spec, or `None` to create.
    pub(super) fn check_instance(
        &self,
        st: &State,
        op: Operation,
        field: &str,
        spec: &InstanceSpec,
    ) -> Result<Option<String>> {
        spec.validate_for(op, field)?;
        self.check_zone(
            op,
            &format!("{field}.availability_zone"),
            &spec.availability_zone,
        )?;
        if !self.config.images.contains(&spec.image) {
            return Err(Error::invalid(
                op,
                format!("{field}.image"),
                format!(
                    "unknown image {:?}: use one of {}",
                    spec.image,
                    self.config.images.join(", ")
                ),
            ));
        }
        if !self.config.flavors.contains(&spec.flavor) {
            return Err(Error::invalid(
                op,
                format!("{field}.flavor"),
                format!(
                    "unknown flavor {:?}: use one of {}",
                    spec.flavor,
                    self.config.flavors.join(", ")
                ),
            ));
        }
        for (i, g) in spec.security_groups.iter().enumerate() {
            if st.groups.get(g).is_none_or(|r| r.deleting.is_some()) {
                return Err(Error::invalid(
                    op,
                    format!("{field}.security_groups[{i}]"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        match st
            .instances
            .values()
            .find(|r| r.spec.name == spec.name && r.deleting.is_none())
        {
            Some(r) if r.spec == *spec => Ok(Some(r.instance.id.clone())),
            Some(r) => Err(Error::conflict(
                op,
                format!("instance {} ({})", spec.name, r.instance.id),
                "an instance of this name exists with a different spec: delete it or choose another name",
            )),
            None => Ok(None),
        }
    }

    pub(super) fn insert_instance(&self, st: &mut State, spec: &InstanceSpec) -> String {
        let id = self.new_id("i");
        let n = self.next_id.load(Ordering::Relaxed);
        let ip = Ipv4Addr::new(
            10,
            ((n >> 16) & 0xff) as u8,
            ((n >> 8) & 0xff) as u8,
            (n & 0xff) as u8,
        );
        st.instances.insert(
            id.clone(),
            InstanceRec {
                spec: spec.clone(),
                instance: Instance {
                    id: id.clone(),
                    name: spec.name.clone(),
                    availability_zone: spec.availability_zone.clone(),
                    flavor: spec.flavor.clone(),
                    image: spec.image.clone(),
                    state: InstanceState::Pending,
                    private_ip: Some(IpAddr::V4(ip)),
                    public_ip: None,
                    security_groups: spec.security_groups.clone(),
                    tags: spec.tags.clone(),
                },
                ready: self.until(),
                deleting: None,
                failed: false,
            },
        );
        id
    }
}

#[async_trait]
impl Instances for MemoryProvider {
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        let mut v = self.create_instances(std::slice::from_ref(spec)).await?;
        v.pop()
            .ok_or_else(|| Error::transient(Operation::CreateInstance, "launch returned nothing"))
    }

    /// Launches every instance in one call, as a batch API does, then waits for all with
    /// one probe per interval.
    async fn create_instances(&self, specs: &[InstanceSpec]) -> Result<Vec<Instance>> {
        let op = if specs.len() == 1 {
            Operation::CreateInstance
        } else {
            Operation::CreateInstances
        };
        let ids = {
            let mut st = self.lock();
            let mut names = BTreeSet::new();
            let mut existing = Vec::with_capacity(specs.len());
            for (i, spec) in specs.iter().enumerate() {
                let field = if specs.len() == 1 {
                    "spec".to_string()
                } else {
                    format!("specs[{i}]")
                };
                if !names.insert(&spec.name) {
                    return Err(Error::invalid(
                        op,
                        format!("{field}.name"),
                        format!(
                            "{:?} appears twice in the batch: give each instance its own name",
                            spec.name
                        ),
                    ));
                }
                existing.push(self.check_instance(&st, op, &field, spec)?);
            }
            if let Some(max) = self.config.max_instances {
                let used = st
                    .instances
                    .values()
                    .filter(|r| r.deleting.is_none())
                    .count();
                let new = existing.iter().filter(|e| e.is_none()).count();
                if used + new > max {
                    return Err(Error::QuotaExceeded {
                        operation: op,
                        message: format!(
                            "{new} new instances do not fit: the project has {used} of at most {max}"
                        ),
                    });
                }
            }
            specs
                .iter()
                .zip(existing)
                .map(|(spec, found)| found.unwrap_or_else(|| self.insert_instance(&mut st, spec)))
                .collect::<Vec<_>>()
        };
        self.wait_instances(op, &ids).await
    }

    async fn get_instance(&self, id: &str) -> Result<Instance> {
        let st = self.lock();
        st.instances
            .get(id)
            .map(|r| self.instance_record(&st, r))
            .ok_or_else(|| Error::not_found(Operation::GetInstance, format!("instance {id}")))
    }

    async fn get_instances(&self, ids: &[String]) -> Result<Vec<Instance>> {
        let st = self.lock();
        ids.iter()
            .map(|id| {
                st.instances
                    .get(id)
                    .map(|r| self.instance_record(&st, r))
                    .ok_or_else(|| {
                        Error::not_found(Operation::GetInstances, format!("instance {id}"))
                    })
            })
            .collect()
    }

    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>> {
        let st = self.lock();
        Ok(self
            .paginate(&st.instances, |r| filter.matches(&r.instance.tags))
            .iter()
            .map(|r| self.instance_record(&st, r))
            .collect())
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteInstance;
        {
            let mut st = self.lock();
            if !st.instances.contains_key(id) {
                return Ok(());
            }
            if let Some(v) = st.volumes.values().find(|v| match &v.phase {
                VolumePhase::Attaching(_, a) | VolumePhase::InUse(a) => a.instance_id == id,
                _ => false,
            }) {
                return Err(Error::conflict(
                    op,
                    format!("instance {id}"),
                    format!(
                        "volume {} is attached: detach it first so it is not lost",
                        v.id
                    ),
                ));
            }
            for f in st.fips.values_mut() {
                if f.fip.instance_id.as_deref() == Some(id) {
                    f.fip.instance_id = None;
                }
            }
            // The contract's uniform answer for a member that goes: out of every pool
            // (Octavia would keep it in ERROR, ELB drains it).
            for lb in st.lbs.values_mut() {
                for pool in lb.members.values_mut() {
                    pool.retain(|m| m.instance_id != id);
                }
            }
            let until = self.until();
            if let Some(r) = st.instances.get_mut(id) {
                r.deleting.get_or_insert(until);
            }
        }
        self.wait_gone(op, format!("instance {id}"), |st| {
            !st.instances.contains_key(id)
        })
        .await
    }
}
