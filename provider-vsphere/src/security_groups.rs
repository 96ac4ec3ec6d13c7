//! Security groups: records only. vSphere without NSX has no firewall objects, so a
//! group is a record `[datastore] plinth-security-groups/<name>.json` (id = name) with
//! its rules and tags, and instances record the group ids they were created with.
//!
//! **Nothing enforces these rules on vSphere.** They exist so the cluster layer can
//! plan and audit the same least-privilege policy on every cloud and so a later NSX
//! or guest-firewall integration has the policy to apply. The contract's
//! `Capabilities` has no flag for "groups not enforced"; this is reported as a gap.
//! The contract's checks still hold: `Conflict` while an instance or another group's
//! rule uses a group, idempotent create by name.

use async_trait::async_trait;
use provider_core::*;
use serde::{Deserialize, Serialize};

use crate::provider::VSphereProvider;
use crate::records::{self, GROUP_DIR};

/// The record of a group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    pub spec: SecurityGroupSpec,
    pub rules: Vec<IngressRule>,
    pub tags: Tags,
}

impl GroupRecord {
    fn group(&self) -> SecurityGroup {
        SecurityGroup {
            id: self.spec.name.clone(),
            name: self.spec.name.clone(),
            description: self.spec.description.clone(),
            rules: self.rules.clone(),
            tags: self.tags.clone(),
        }
    }
}

impl VSphereProvider {
    /// Reads group record `id` from the datastore (and remembers what it read).
    pub(crate) async fn group_record(
        &self,
        op: Operation,
        id: &str,
    ) -> Result<Option<GroupRecord>> {
        let inv = self.inv().await?;
        let rec: Option<GroupRecord> = records::get(&self.client, inv, op, GROUP_DIR, id).await?;
        self.seen(id, rec.clone());
        Ok(rec)
    }

    /// Remembers the record of group `id` as read or written (`None`: gone).
    fn seen(&self, id: &str, rec: Option<GroupRecord>) {
        let mut seen = self.groups_seen.lock().unwrap_or_else(|p| p.into_inner());
        match rec {
            Some(r) => seen.insert(id.to_string(), r),
            None => seen.remove(id),
        };
    }

    fn seen_record(&self, id: &str) -> Option<GroupRecord> {
        self.groups_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Whether group `id` exists, for the checks of a create that names it: known from
    /// this process's own reads and writes, else read.
    pub(crate) async fn group_exists(&self, op: Operation, id: &str) -> Result<bool> {
        if self.seen_record(id).is_some() {
            return Ok(true);
        }
        Ok(self.group_record(op, id).await?.is_some())
    }

    /// The record a read-modify-write starts from: this process's last read or write of
    /// it, else a read. (A change another process made since is lost, as with two
    /// writers at once: records have no compare-and-swap; the cluster's lease keeps
    /// writers to one.)
    async fn known_group(&self, op: Operation, id: &str) -> Result<Option<GroupRecord>> {
        match self.seen_record(id) {
            Some(r) => Ok(Some(r)),
            None => self.group_record(op, id).await,
        }
    }

    async fn put_group(&self, op: Operation, id: &str, rec: &GroupRecord) -> Result<()> {
        let inv = self.inv().await?;
        records::put(&self.client, inv, op, GROUP_DIR, id, rec).await?;
        self.seen(id, Some(rec.clone()));
        self.note_record(GROUP_DIR, id, true);
        Ok(())
    }

    async fn check_sources(
        &self,
        op: Operation,
        field: &str,
        rule: &IngressRule,
        own: &str,
    ) -> Result<()> {
        if let RuleSource::Group(g) = &rule.source {
            if g != own && !self.group_exists(op, g).await? {
                return Err(Error::invalid(
                    op,
                    format!("{field}.source"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        Ok(())
    }

    pub(crate) async fn get_group(&self, op: Operation, id: &str) -> Result<SecurityGroup> {
        self.group_record(op, id)
            .await?
            .map(|r| r.group())
            .ok_or_else(|| Error::not_found(op, format!("security group {id}")))
    }

    /// Every group record: the ids listed, each record read (`reuse`: the ones this
    /// process read or wrote last are taken as they were).
    async fn all_groups(&self, op: Operation, reuse: bool) -> Result<Vec<GroupRecord>> {
        let ids = self.record_ids(op, GROUP_DIR).await?;
        let read = ids.iter().map(|id| async move {
            match reuse.then(|| self.seen_record(id)).flatten() {
                Some(r) => Ok(Some(r)),
                None => self.group_record(op, id).await,
            }
        });
        Ok(futures::future::try_join_all(read)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    pub(crate) async fn change_rule(
        &self,
        op: Operation,
        id: &str,
        rule: &IngressRule,
        add: bool,
    ) -> Result<()> {
        if add {
            rule.validate(op, "rule")?;
            self.check_sources(op, "rule", rule, id).await?;
        }
        let lock = self.record_lock(&format!("group/{id}")).await;
        let _guard = lock.lock().await;
        let mut rec = self
            .known_group(op, id)
            .await?
            .ok_or_else(|| Error::not_found(op, format!("security group {id}")))?;
        let present = rec.rules.contains(rule);
        if add == present {
            return Ok(());
        }
        if add {
            rec.rules.push(rule.clone());
            rec.rules.sort();
        } else {
            rec.rules.retain(|r| r != rule);
        }
        self.put_group(op, id, &rec).await
    }

    pub(crate) async fn update_group_tags(
        &self,
        op: Operation,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        let lock = self.record_lock(&format!("group/{id}")).await;
        let _guard = lock.lock().await;
        let mut rec = self
            .known_group(op, id)
            .await?
            .ok_or_else(|| Error::not_found(op, format!("security group {id}")))?;
        for k in remove {
            rec.tags.remove(k);
        }
        rec.tags
            .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.put_group(op, id, &rec).await
    }
}

#[async_trait]
impl SecurityGroups for VSphereProvider {
    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        self.get_group(Operation::GetSecurityGroup, id).await
    }

    async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        self.change_rule(Operation::AddSecurityGroupRule, group_id, rule, true)
            .await
    }

    async fn remove_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        self.change_rule(Operation::RemoveSecurityGroupRule, group_id, rule, false)
            .await
    }

    async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
        let op = Operation::CreateSecurityGroup;
        spec.validate()?;
        crate::tags::check_keys(op, "spec.tags", &spec.tags)?;
        for (i, r) in spec.rules.iter().enumerate() {
            self.check_sources(op, &format!("spec.rules[{i}]"), r, &spec.name)
                .await?;
        }
        let lock = self.record_lock(&format!("group/{}", spec.name)).await;
        let _guard = lock.lock().await;
        // What this process listed, wrote or read of the group answers without a read:
        // a record it knows, or a name absent from its last listing.
        let known = match self.seen_record(&spec.name) {
            Some(rec) => Some(rec),
            None if self.known_absent(GROUP_DIR, &spec.name) => None,
            None => self.group_record(op, &spec.name).await?,
        };
        if let Some(rec) = known {
            return if rec.spec == *spec {
                Ok(rec.group())
            } else {
                Err(Error::conflict(
                    op,
                    format!("security group {}", spec.name),
                    "a group of this name exists with a different spec: delete it or choose another name",
                ))
            };
        }
        let mut rules = spec.rules.clone();
        rules.sort();
        rules.dedup();
        let rec = GroupRecord {
            spec: spec.clone(),
            rules,
            tags: spec.tags.clone(),
        };
        self.put_group(op, &spec.name, &rec).await?;
        tracing::debug!(group = %spec.name, "security group recorded; vSphere does not enforce its rules");
        Ok(rec.group())
    }

    async fn list_security_groups(&self, filter: &TagFilter) -> Result<Vec<SecurityGroup>> {
        Ok(self
            .all_groups(Operation::ListSecurityGroups, false)
            .await?
            .into_iter()
            .filter(|r| filter.matches(&r.tags))
            .map(|r| r.group())
            .collect())
    }

    async fn delete_security_group(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteSecurityGroup;
        let inv = self.inv().await?;
        let lock = self.record_lock(&format!("group/{id}")).await;
        let _guard = lock.lock().await;
        // One listing of each kind, shared by the deletes running at once: the groups
        // (this process's last read of each, the id list fresh) and the VMs.
        let (groups, vms) = futures::try_join!(self.all_groups(op, true), self.list_vms(op))?;
        if !groups.iter().any(|g| g.spec.name == id) {
            return Ok(());
        }
        for vm in vms {
            if Self::spec_of(&vm).is_some_and(|s| s.security_groups.iter().any(|g| g == id)) {
                return Err(Error::conflict(
                    op,
                    format!("security group {id}"),
                    format!(
                        "in use by instance {}: delete the instance first",
                        vm.moref.value
                    ),
                ));
            }
        }
        let source = RuleSource::Group(id.to_string());
        if let Some(other) = groups
            .into_iter()
            .find(|g| g.spec.name != id && g.rules.iter().any(|r| r.source == source))
        {
            return Err(Error::conflict(
                op,
                format!("security group {id}"),
                format!(
                    "referenced by a rule of group {}: remove that rule first",
                    other.spec.name
                ),
            ));
        }
        records::delete(
            &self.client,
            inv,
            op,
            GROUP_DIR,
            id,
            self.cfg.timeouts.delete,
        )
        .await?;
        self.seen(id, None);
        self.note_record(GROUP_DIR, id, false);
        Ok(())
    }
}
