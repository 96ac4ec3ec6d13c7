//! Instances: VMs cloned from a template into the zone's cluster root resource pool.
//!
//! Create is one `CloneVM_Task` per VM carrying the flavor `cpus:memoryMiB`, the first
//! network adapter moved onto `VSphere.Network`, user data as `guestinfo.userdata`
//! base64 in `extraConfig` (as cloud-init's VMware datasource reads it), the tags and
//! the spec as created in `extraConfig` ([`TAGS_KEY`], [`SPEC_KEY`]) and `powerOn`
//! (see [`create`]). Tag updates rewrite the [`TAGS_KEY`] entry; custom attributes,
//! where older versions kept tags and spec, are still read (the entry wins).

use async_trait::async_trait;
use provider_core::*;

use crate::provider::{VSphereProvider, Vm};
use crate::records::VOLUME_DIR;
use crate::soap::esc;
use crate::tags::{self, SPEC_FIELD, SPEC_KEY, TAGS_KEY};

mod create;

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
    /// The spec a VM was created with: its [`SPEC_KEY`] entry, or the custom attribute
    /// older versions recorded it in.
    pub(crate) fn spec_of(vm: &Vm) -> Option<InstanceSpec> {
        vm.extra
            .get(SPEC_KEY)
            .or_else(|| vm.attrs.get(SPEC_FIELD))
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
            tags: tags::vm_tags(&vm.attrs, &vm.extra),
        })
    }

    pub(crate) async fn update_instance_tags(
        &self,
        op: Operation,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        // A read-modify-write of the tags entry: serialised within this process.
        let lock = self.record_lock(&format!("vm/{id}")).await;
        let _guard = lock.lock().await;
        let vm = match self.get_vm(op, id).await? {
            Some(vm) if !vm.template => vm,
            _ => return Err(Error::not_found(op, format!("instance {id}"))),
        };
        let mut now = tags::vm_tags(&vm.attrs, &vm.extra);
        for k in remove {
            now.remove(k);
        }
        now.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        let json = serde_json::to_string(&now).map_err(|e| {
            Error::transient(op, format!("cannot encode the tags: {e}")).with_source(e)
        })?;
        let body = format!(
            "<ReconfigVM_Task>{}<spec>{}</spec></ReconfigVM_Task>",
            vm.moref.xml("_this"),
            tags::extra_config_xml([(TAGS_KEY, json.as_str())])
        );
        self.client
            .run_task(
                op,
                &format!("instance {id}"),
                &body,
                self.cfg.timeouts.instance,
            )
            .await?;
        // A removed tag an older version (or a user) set as a custom attribute.
        for k in remove {
            if !set.contains_key(k)
                && vm.attrs.contains_key(k)
                && !k.starts_with(tags::RESERVED_PREFIX)
            {
                tags::set_field(&self.client, &self.fields, op, &vm.moref, k, "").await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Instances for VSphereProvider {
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        let op = Operation::CreateInstance;
        self.create_vms(op, "spec", std::slice::from_ref(spec))
            .await?
            .pop()
            .ok_or_else(|| Error::transient(op, format!("instance {} not created", spec.name)))
    }

    async fn create_instances(&self, specs: &[InstanceSpec]) -> Result<Vec<Instance>> {
        self.create_vms(Operation::CreateInstances, "specs", specs)
            .await
    }

    async fn get_instances(&self, ids: &[String]) -> Result<Vec<Instance>> {
        let op = Operation::GetInstance;
        let vms = self.get_vms(op, ids).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match vms.iter().find(|v| &v.moref.value == id && !v.template) {
                Some(vm) => out.push(self.instance_record(vm).await?),
                None => return Err(Error::not_found(op, format!("instance {id}"))),
            }
        }
        Ok(out)
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
        self.delete_vms(
            Operation::DeleteInstance,
            std::slice::from_ref(&id.to_string()),
        )
        .await
    }

    async fn delete_instances(&self, ids: &[String]) -> Result<()> {
        self.delete_vms(Operation::DeleteInstances, ids).await
    }
}

impl VSphereProvider {
    /// Deletes the VMs of `ids` that exist (one read of all of them): refused as a
    /// whole, before anything is deleted, when one has a volume attached; then each is
    /// powered off and destroyed. `Destroy_Task` ends once the VM is gone, so there is
    /// nothing left to wait for.
    async fn delete_vms(&self, op: Operation, ids: &[String]) -> Result<()> {
        let vms: Vec<Vm> = self
            .get_vms(op, ids)
            .await?
            .into_iter()
            .filter(|v| !v.template)
            .collect();
        let inv = self.inv().await?;
        let prefix = inv.ds_path(&format!("{VOLUME_DIR}/"));
        for vm in &vms {
            if let Some(d) = vm.disks.iter().find(|d| d.file.starts_with(&prefix)) {
                let vol = d.file[prefix.len()..].trim_end_matches(".vmdk");
                return Err(Error::conflict(
                    op,
                    format!("instance {}", vm.moref.value),
                    format!("volume {vol} is attached: detach it first so it is not lost"),
                ));
            }
        }
        futures::future::try_join_all(vms.iter().map(|vm| self.destroy_vm(op, vm))).await?;
        Ok(())
    }

    async fn destroy_vm(&self, op: Operation, vm: &Vm) -> Result<()> {
        let resource = format!("instance {}", vm.moref.value);
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
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
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
