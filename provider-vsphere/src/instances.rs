//! Instances: VMs cloned from a template into the zone's cluster root resource pool.
//!
//! Create = `CloneVM_Task` (powered off) -> `ReconfigVM_Task` (flavor `cpus:memoryMiB`,
//! the first network adapter moved onto `VSphere.Network`, user data as
//! `guestinfo.userdata` base64 in `extraConfig`, as cloud-init's VMware datasource
//! reads it) -> `SetField` per tag -> `SetField` of the spec as created ->
//! `PowerOnVM_Task`, then a wait for `poweredOn` through the shared poller. A VM of the
//! same name with the same recorded spec is returned as is; a different spec is
//! `Conflict`; a powered-off VM of that name without a recorded spec (a create that
//! crashed half-way) is adopted and finished.

use async_trait::async_trait;
use provider_core::wait::Poll;
use provider_core::*;

use crate::config::Flavor;
use crate::provider::{VSphereProvider, Vm};
use crate::records::VOLUME_DIR;
use crate::soap::{esc, MoRef};
use crate::tags::{self, SPEC_FIELD};

/// The `deviceChange` that puts `vm` on the network of `backing`: its first adapter
/// edited in place (the device as read, with the new backing, so the MAC address, slot
/// and connection settings stay), or a VMXNET3 adapter added when it has none.
pub(crate) fn network_change(vm: &Vm, backing: &str) -> String {
    match vm.nics.first() {
        Some(nic) => {
            let mut xml = format!("<device xsi:type=\"{}\">", esc(nic.xsi_type().unwrap_or("VirtualEthernetCard")));
            for c in &nic.children {
                if c.name == "backing" {
                    xml.push_str(backing);
                } else {
                    xml.push_str(&c.to_xml());
                }
            }
            xml.push_str("</device>");
            format!("<deviceChange><operation>edit</operation>{xml}</deviceChange>")
        }
        None => format!(
            "<deviceChange><operation>add</operation><device xsi:type=\"VirtualVmxnet3\"><key>-1</key>{backing}<connectable><startConnected>true</startConnected><allowGuestControl>true</allowGuestControl><connected>false</connected></connectable><addressType>generated</addressType></device></deviceChange>"
        ),
    }
}

/// Standard base64 (RFC 4648, with padding).
pub(crate) fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The spec as recorded on the VM, where anyone who can read the VM reads it: without
/// the user data (bootstrap tokens live there), whose digest still shows a change.
fn recorded(op: Operation, spec: &InstanceSpec) -> Result<String> {
    serde_json::to_string(&spec.redacted())
        .map_err(|e| Error::transient(op, format!("cannot encode the spec: {e}")).with_source(e))
}

impl VSphereProvider {
    pub(crate) fn spec_of(vm: &Vm) -> Option<InstanceSpec> {
        vm.attrs
            .get(SPEC_FIELD)
            .and_then(|s| serde_json::from_str(s).ok())
    }

    pub(crate) async fn instance_record(&self, vm: &Vm) -> Result<Instance> {
        let inv = self.inv().await?;
        let spec = Self::spec_of(vm);
        let zone = vm
            .pool
            .as_deref()
            .and_then(|p| inv.zone_of_pool(p))
            .map(|z| z.name.clone())
            .or_else(|| spec.as_ref().map(|s| s.availability_zone.clone()))
            .unwrap_or_default();
        let state = match vm.power.as_str() {
            "poweredOn" => InstanceState::Running,
            "poweredOff" | "suspended" if spec.is_some() => InstanceState::Stopped,
            _ => InstanceState::Pending,
        };
        Ok(Instance {
            id: vm.moref.value.clone(),
            name: vm.name.clone(),
            availability_zone: zone,
            flavor: spec
                .as_ref()
                .map(|s| s.flavor.clone())
                .unwrap_or_else(|| format!("{}:{}", vm.cpus, vm.memory_mib)),
            image: spec.as_ref().map(|s| s.image.clone()).unwrap_or_default(),
            state,
            private_ip: vm.ip.as_deref().and_then(|ip| ip.parse().ok()),
            public_ip: None,
            security_groups: spec.map(|s| s.security_groups).unwrap_or_default(),
            tags: tags::user_tags(&vm.attrs),
        })
    }

    /// Checks a spec against the inventory; returns the flavor and template.
    async fn check_vm_spec(
        &self,
        op: Operation,
        field: &str,
        spec: &InstanceSpec,
        vms: &[Vm],
    ) -> Result<(Flavor, MoRef)> {
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
            .map(|v| v.moref.clone())
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
            if self.group_record(op, g).await?.is_none() {
                return Err(Error::invalid(
                    op,
                    format!("{field}.security_groups[{i}]"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        Ok((flavor, template))
    }

    pub(crate) async fn create_vm(
        &self,
        op: Operation,
        field: &str,
        spec: &InstanceSpec,
    ) -> Result<Instance> {
        let vms = self.list_vms(op).await?;
        let (flavor, template) = self.check_vm_spec(op, field, spec, &vms).await?;
        let inv = self.inv().await?;
        let mut existing = vms.into_iter().find(|v| !v.template && v.name == spec.name);
        if existing.is_none() {
            let zone = inv.zone(&spec.availability_zone).ok_or_else(|| {
                Error::invalid(op, format!("{field}.availability_zone"), "unknown zone")
            })?;
            let body = format!(
                "<CloneVM_Task>{}{}<name>{}</name><spec><location>{}{}</location><template>false</template><powerOn>false</powerOn></spec></CloneVM_Task>",
                template.xml("_this"),
                inv.vm_folder.xml("folder"),
                esc(&spec.name),
                inv.datastore.xml("datastore"),
                zone.pool.xml("pool"),
            );
            match self
                .client
                .run_task(
                    op,
                    &format!("instance {}", spec.name),
                    &body,
                    self.cfg.timeouts.instance,
                )
                .await
            {
                Ok(_) => {}
                // Another create of the same name won the race: treat as existing.
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            existing = self
                .list_vms(op)
                .await?
                .into_iter()
                .find(|v| !v.template && v.name == spec.name);
        }
        let vm = existing.ok_or_else(|| {
            Error::transient(
                op,
                format!("instance {} not listed after its clone", spec.name),
            )
        })?;
        match Self::spec_of(&vm) {
            Some(s) if s == spec.redacted() => {}
            Some(_) => {
                return Err(Error::conflict(
                    op,
                    format!("instance {} ({})", spec.name, vm.moref.value),
                    "an instance of this name exists with a different spec: delete it or choose another name",
                ))
            }
            None if vm.power == "poweredOff" => self.finish_vm(op, &vm, spec, flavor).await?,
            None => {
                return Err(Error::conflict(
                    op,
                    format!("instance {} ({})", spec.name, vm.moref.value),
                    "a running VM of this name exists that Plinth did not create: rename it or choose another name",
                ))
            }
        }
        self.power_on_and_wait(op, &vm.moref).await
    }

    /// Reconfigures a fresh clone (flavor, user data, its first network adapter moved
    /// onto `VSphere.Network`, or one added when the template has none) and records its
    /// tags and spec.
    async fn finish_vm(
        &self,
        op: Operation,
        vm_read: &Vm,
        spec: &InstanceSpec,
        flavor: Flavor,
    ) -> Result<()> {
        let vm = &vm_read.moref;
        let devices = match &self.inv().await?.network_backing {
            Some(backing) => network_change(vm_read, backing),
            None => String::new(),
        };
        let mut extra = String::new();
        if let Some(ud) = &spec.user_data {
            for (k, v) in [
                ("guestinfo.userdata", base64(ud.as_bytes())),
                ("guestinfo.userdata.encoding", "base64".to_string()),
            ] {
                extra.push_str(&format!(
                    "<extraConfig xsi:type=\"OptionValue\"><key>{k}</key><value xsi:type=\"xsd:string\">{}</value></extraConfig>",
                    esc(&v)
                ));
            }
        }
        let body = format!(
            "<ReconfigVM_Task>{}<spec><numCPUs>{}</numCPUs><memoryMB>{}</memoryMB>{devices}{extra}</spec></ReconfigVM_Task>",
            vm.xml("_this"),
            flavor.cpus,
            flavor.memory_mib
        );
        self.client
            .run_task(
                op,
                &format!("instance {}", vm.value),
                &body,
                self.cfg.timeouts.instance,
            )
            .await?;
        for (k, v) in &spec.tags {
            tags::set_tag(&self.client, &self.fields, op, vm, k, v).await?;
        }
        let json = recorded(op, spec)?;
        tags::set_field(&self.client, &self.fields, op, vm, SPEC_FIELD, &json).await
    }

    async fn power_on_and_wait(&self, op: Operation, vm: &MoRef) -> Result<Instance> {
        let resource = format!("instance {}", vm.value);
        let current = self.get_vm(op, &vm.value).await?;
        if current.as_ref().is_some_and(|v| v.power != "poweredOn") {
            let body = format!("<PowerOnVM_Task>{}</PowerOnVM_Task>", vm.xml("_this"));
            match self
                .client
                .run_task(op, &resource, &body, self.cfg.timeouts.instance)
                .await
            {
                // Powered on meanwhile by a concurrent create.
                Ok(_) | Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.cfg
            .poller
            .until(
                op,
                &resource,
                "running",
                self.cfg.timeouts.instance,
                || async {
                    let vm = self
                        .get_vm(op, &vm.value)
                        .await?
                        .ok_or_else(|| Error::not_found(op, resource.clone()))?;
                    let i = self.instance_record(&vm).await?;
                    Ok(match i.state {
                        InstanceState::Running => Poll::Ready(i),
                        s => Poll::Pending(format!("{s:?}")),
                    })
                },
            )
            .await
    }

    pub(crate) async fn update_instance_tags(
        &self,
        op: Operation,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        let vm = match self.get_vm(op, id).await? {
            Some(vm) if !vm.template => vm,
            _ => return Err(Error::not_found(op, format!("instance {id}"))),
        };
        for k in remove {
            if !set.contains_key(k)
                && vm.attrs.contains_key(k)
                && !k.starts_with(tags::RESERVED_PREFIX)
            {
                tags::set_field(&self.client, &self.fields, op, &vm.moref, k, "").await?;
            }
        }
        for (k, v) in set {
            tags::set_tag(&self.client, &self.fields, op, &vm.moref, k, v).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Instances for VSphereProvider {
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        self.create_vm(Operation::CreateInstance, "spec", spec)
            .await
    }

    async fn get_instance(&self, id: &str) -> Result<Instance> {
        let op = Operation::GetInstance;
        match self.get_vm(op, id).await? {
            Some(vm) if !vm.template => self.instance_record(&vm).await,
            _ => Err(Error::not_found(op, format!("instance {id}"))),
        }
    }

    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>> {
        let op = Operation::ListInstances;
        let mut out = Vec::new();
        for vm in self.list_vms(op).await? {
            if vm.template {
                continue;
            }
            let i = self.instance_record(&vm).await?;
            if filter.matches(&i.tags) {
                out.push(i);
            }
        }
        Ok(out)
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteInstance;
        let resource = format!("instance {id}");
        let Some(vm) = self.get_vm(op, id).await? else {
            return Ok(());
        };
        if vm.template {
            return Ok(());
        }
        let inv = self.inv().await?;
        let prefix = inv.ds_path(&format!("{VOLUME_DIR}/"));
        if let Some(d) = vm.disks.iter().find(|d| d.file.starts_with(&prefix)) {
            let vol = d.file[prefix.len()..].trim_end_matches(".vmdk");
            return Err(Error::conflict(
                op,
                resource,
                format!("volume {vol} is attached: detach it first so it is not lost"),
            ));
        }
        if vm.power != "poweredOff" {
            let body = format!(
                "<PowerOffVM_Task>{}</PowerOffVM_Task>",
                vm.moref.xml("_this")
            );
            match self
                .client
                .run_task(op, &resource, &body, self.cfg.timeouts.delete)
                .await
            {
                Ok(_) | Err(Error::Conflict { .. }) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let body = format!("<Destroy_Task>{}</Destroy_Task>", vm.moref.xml("_this"));
        match self
            .client
            .run_task(op, &resource, &body, self.cfg.timeouts.delete)
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.cfg
            .poller
            .until(
                op,
                &resource,
                "deleted",
                self.cfg.timeouts.delete,
                || async {
                    Ok(match self.get_vm(op, id).await? {
                        None => Poll::Ready(()),
                        Some(v) => Poll::Pending(v.power),
                    })
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_spec_holds_no_user_data_but_tells_a_change() {
        let spec = InstanceSpec::new("n", "az", "1:1024", "tmpl")
            .with_user_data("#cloud-config\ntoken: Zq9-bootstrap-token\n");
        let json = recorded(Operation::CreateInstance, &spec).unwrap();
        assert!(!json.contains("Zq9-bootstrap-token"), "{json}");
        let back: InstanceSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec.redacted());
        let other = spec.clone().with_user_data("#cloud-config\ntoken: other\n");
        assert_ne!(back, other.redacted());
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
