//! Creating instances: one `CloneVM_Task` per VM that carries everything (flavor, the
//! adapter moved onto `VSphere.Network`, user data, tags and the spec as created in
//! `extraConfig`, `powerOn`), then one read of all the clones, fix-ups only for what the
//! clone did not apply, one `PowerOnMultiVM_Task` for those still off, and one read per
//! poll interval for the whole batch.
//!
//! A VM of the same name with the same recorded spec is returned as is; a different
//! spec is `Conflict`; a powered-off VM of that name without a recorded spec (a create
//! of an older version that crashed half-way) is adopted and finished.

use std::collections::BTreeMap;

use futures::future::try_join_all;
use provider_core::wait::Poll;
use provider_core::*;

use super::{base64, network_change, recorded};
use crate::config::Flavor;
use crate::provider::{VSphereProvider, Vm};
use crate::soap::{esc, MoRef};
use crate::tags::{self, SPEC_KEY, TAGS_KEY};

/// One spec checked against the inventory.
struct Planned<'a> {
    spec: &'a InstanceSpec,
    flavor: Flavor,
    template: Vm,
}

impl VSphereProvider {
    /// Checks a spec against the inventory; returns the flavor and template.
    async fn check_vm_spec(
        &self,
        op: Operation,
        field: &str,
        spec: &InstanceSpec,
        vms: &[Vm],
    ) -> Result<(Flavor, Vm)> {
        spec.validate_for(op, field)?;
        tags::check_keys(op, &format!("{field}.tags"), &spec.tags)?;
        let inv = self.inv().await?;
        if inv.zone(&spec.availability_zone).is_none() {
            return Err(Error::invalid(
                op,
                format!("{field}.availability_zone"),
                format!(
                    "unknown availability zone {:?}: use one of {}",
                    spec.availability_zone,
                    inv.zone_names()
                ),
            ));
        }
        let flavor = Flavor::parse(op, &format!("{field}.flavor"), &spec.flavor)?;
        let template = vms
            .iter()
            .find(|v| v.template && (v.name == spec.image || v.moref.value == spec.image))
            .cloned()
            .ok_or_else(|| {
                let names: Vec<_> = vms
                    .iter()
                    .filter(|v| v.template)
                    .map(|v| v.name.as_str())
                    .collect();
                Error::invalid(
                    op,
                    format!("{field}.image"),
                    format!(
                        "no template {:?}: use one of {}",
                        spec.image,
                        names.join(", ")
                    ),
                )
            })?;
        for (i, g) in spec.security_groups.iter().enumerate() {
            if !self.group_exists(op, g).await? {
                return Err(Error::invalid(
                    op,
                    format!("{field}.security_groups[{i}]"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        Ok((flavor, template))
    }

    /// Creates the VMs of `specs` (validated as a whole first) and waits until they run.
    pub(crate) async fn create_vms(
        &self,
        op: Operation,
        field: &str,
        specs: &[InstanceSpec],
    ) -> Result<Vec<Instance>> {
        let vms = self.list_vms(op).await?;
        let mut planned = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let f = if specs.len() == 1 && field == "spec" {
                field.to_string()
            } else {
                format!("{field}[{i}]")
            };
            let (flavor, template) = self.check_vm_spec(op, &f, spec, &vms).await?;
            planned.push(Planned {
                spec,
                flavor,
                template,
            });
        }
        let ids: Vec<String> =
            try_join_all(planned.iter().map(|p| self.place(op, p, &vms))).await?;
        let read = self.get_vms(op, &ids).await?;
        let mut off = Vec::new();
        for (p, id) in planned.iter().zip(&ids) {
            let vm = read.iter().find(|v| &v.moref.value == id).ok_or_else(|| {
                Error::transient(
                    op,
                    format!(
                        "instance {} ({id}) not readable after its clone",
                        p.spec.name
                    ),
                )
            })?;
            self.settle(op, p, vm).await?;
            if vm.power != "poweredOn" {
                off.push(vm.moref.clone());
            }
        }
        if off.is_empty() {
            // All running already (a clone powered on by its spec; settle changes only
            // VMs that are off): the read after the clones is the answer.
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(vm) = read.iter().find(|v| &v.moref.value == id) {
                    out.push(self.instance_record(vm).await?);
                }
            }
            return Ok(out);
        }
        self.power_on(op, &off).await?;
        self.wait_running(op, &ids).await
    }

    /// The id of the VM standing for `p`: the existing one of its name, or a new clone.
    async fn place(&self, op: Operation, p: &Planned<'_>, vms: &[Vm]) -> Result<String> {
        let name = &p.spec.name;
        if let Some(vm) = vms.iter().find(|v| !v.template && &v.name == name) {
            return Ok(vm.moref.value.clone());
        }
        let inv = self.inv().await?;
        let zone = inv
            .zone(&p.spec.availability_zone)
            .ok_or_else(|| Error::invalid(op, "spec.availability_zone", "unknown zone"))?;
        let devices = match &inv.network_backing {
            Some(backing) => network_change(&p.template, backing),
            None => String::new(),
        };
        let body = format!(
            "<CloneVM_Task>{}{}<name>{}</name><spec><location>{}{}{devices}</location><template>false</template><config><numCPUs>{}</numCPUs><memoryMB>{}</memoryMB>{}</config><powerOn>true</powerOn></spec></CloneVM_Task>",
            p.template.moref.xml("_this"),
            inv.vm_folder.xml("folder"),
            esc(name),
            inv.datastore.xml("datastore"),
            zone.pool.xml("pool"),
            p.flavor.cpus,
            p.flavor.memory_mib,
            extra_config(op, p.spec)?,
        );
        let resource = format!("instance {name}");
        match self
            .client
            .run_task(op, &resource, &body, self.cfg.timeouts.instance)
            .await
        {
            Ok(Some(r)) => {
                if let Some(m) = r.moref() {
                    return Ok(m.value);
                }
            }
            Ok(None) => {}
            // Another create of the same name won the race: find it below.
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        self.list_vms(op)
            .await?
            .into_iter()
            .find(|v| !v.template && &v.name == name)
            .map(|v| v.moref.value)
            .ok_or_else(|| Error::transient(op, format!("{resource} not listed after its clone")))
    }

    /// Checks a VM read after its clone against `p`, and applies what the clone did not
    /// (a simulator that ignores the clone's flavor or adapter change; an older
    /// version's half-made VM without a recorded spec). Only a powered-off VM is changed.
    async fn settle(&self, op: Operation, p: &Planned<'_>, vm: &Vm) -> Result<()> {
        let resource = || format!("instance {} ({})", p.spec.name, vm.moref.value);
        let off = vm.power == "poweredOff";
        match Self::spec_of(vm) {
            Some(s) if s == p.spec.redacted() => {
                let inv = self.inv().await?;
                let hardware = vm.cpus != p.flavor.cpus || vm.memory_mib != p.flavor.memory_mib;
                let network = inv
                    .network
                    .as_ref()
                    .is_some_and(|n| !vm.networks.contains(&n.value));
                if off && (hardware || network) {
                    self.reconfigure(op, vm, p.flavor, String::new()).await?;
                }
                Ok(())
            }
            Some(_) => Err(Error::conflict(
                op,
                resource(),
                "an instance of this name exists with a different spec: delete it or choose another name",
            )),
            None if off => {
                self.reconfigure(op, vm, p.flavor, extra_config(op, p.spec)?)
                    .await
            }
            None => Err(Error::conflict(
                op,
                resource(),
                "a running VM of this name exists that Plinth did not create: rename it or choose another name",
            )),
        }
    }

    /// `ReconfigVM_Task` of a powered-off VM: the flavor, its first adapter onto
    /// `VSphere.Network`, and `extra` (extraConfig elements).
    async fn reconfigure(
        &self,
        op: Operation,
        vm: &Vm,
        flavor: Flavor,
        extra: String,
    ) -> Result<()> {
        let devices = match &self.inv().await?.network_backing {
            Some(backing) => network_change(vm, backing),
            None => String::new(),
        };
        let body = format!(
            "<ReconfigVM_Task>{}<spec><numCPUs>{}</numCPUs><memoryMB>{}</memoryMB>{devices}{extra}</spec></ReconfigVM_Task>",
            vm.moref.xml("_this"),
            flavor.cpus,
            flavor.memory_mib
        );
        self.client
            .run_task(
                op,
                &format!("instance {}", vm.moref.value),
                &body,
                self.cfg.timeouts.instance,
            )
            .await
            .map(|_| ())
    }

    /// Powers on `vms` with one `PowerOnMultiVM_Task` (DRS may only recommend: the wait
    /// then powers on what is still off, one call each).
    async fn power_on(&self, op: Operation, vms: &[MoRef]) -> Result<()> {
        if vms.is_empty() {
            return Ok(());
        }
        let inv = self.inv().await?;
        let list: String = vms.iter().map(|v| v.xml("vm")).collect();
        let body = format!(
            "<PowerOnMultiVM_Task>{}{list}</PowerOnMultiVM_Task>",
            inv.datacenter.xml("_this")
        );
        match self
            .client
            .run_task(op, "instances", &body, self.cfg.timeouts.instance)
            .await
        {
            // Powered on meanwhile by a concurrent create.
            Ok(_) | Err(Error::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until the VMs of `ids` run: one read of all of them per poll interval. A
    /// VM found powered off on the first read (DRS only recommended it) is powered on
    /// by itself.
    async fn wait_running(&self, op: Operation, ids: &[String]) -> Result<Vec<Instance>> {
        let nudged = std::sync::atomic::AtomicBool::new(false);
        let resource = if ids.len() == 1 {
            format!("instance {}", ids[0])
        } else {
            format!("instances {}", ids.join(", "))
        };
        self.cfg
            .poller
            .until(
                op,
                &resource,
                "running",
                self.cfg.timeouts.instance,
                || async {
                    let vms = self.get_vms(op, ids).await?;
                    let by_id: BTreeMap<&str, &Vm> =
                        vms.iter().map(|v| (v.moref.value.as_str(), v)).collect();
                    let mut out = Vec::with_capacity(ids.len());
                    let mut pending = Vec::new();
                    let mut off = Vec::new();
                    for id in ids {
                        let vm = by_id
                            .get(id.as_str())
                            .ok_or_else(|| Error::not_found(op, format!("instance {id}")))?;
                        let i = self.instance_record(vm).await?;
                        if i.state == InstanceState::Running {
                            out.push(i);
                        } else {
                            if vm.power == "poweredOff" {
                                off.push(vm.moref.clone());
                            }
                            pending.push(format!("{id} {:?}", i.state));
                        }
                    }
                    if !off.is_empty() && !nudged.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        for vm in &off {
                            self.power_on_one(op, vm).await?;
                        }
                    }
                    Ok(if pending.is_empty() {
                        Poll::Ready(out)
                    } else {
                        Poll::Pending(pending.join(", "))
                    })
                },
            )
            .await
    }

    async fn power_on_one(&self, op: Operation, vm: &MoRef) -> Result<()> {
        let body = format!("<PowerOnVM_Task>{}</PowerOnVM_Task>", vm.xml("_this"));
        match self
            .client
            .run_task(
                op,
                &format!("instance {}", vm.value),
                &body,
                self.cfg.timeouts.instance,
            )
            .await
        {
            // Powered on meanwhile by a concurrent create.
            Ok(_) | Err(Error::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The extraConfig of a new VM: its user data (as cloud-init's VMware datasource reads
/// it), its tags and its spec as created.
fn extra_config(op: Operation, spec: &InstanceSpec) -> Result<String> {
    let tags = serde_json::to_string(&spec.tags)
        .map_err(|e| Error::transient(op, format!("cannot encode the tags: {e}")).with_source(e))?;
    let json = recorded(op, spec)?;
    let mut entries = vec![(TAGS_KEY, tags), (SPEC_KEY, json)];
    if let Some(ud) = &spec.user_data {
        entries.push(("guestinfo.userdata", base64(ud.as_bytes())));
        entries.push(("guestinfo.userdata.encoding", "base64".to_string()));
    }
    Ok(tags::extra_config_xml(
        entries.iter().map(|(k, v)| (*k, v.as_str())),
    ))
}
