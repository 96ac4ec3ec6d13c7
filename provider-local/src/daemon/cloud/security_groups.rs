//! Security groups: rules are stored and enforced by the ACL view every forwarder and load balancer reads.

use provider_core::{
    Error, IngressRule, Operation, Result, RuleSource, SecurityGroup, SecurityGroupSpec, TagFilter,
};

use super::{db, new_id, Cloud};
use crate::daemon::rows::{GroupRow, InstanceRow, LbRow};
use crate::protocol::Page;
use crate::store::Table;

impl Cloud {
    pub(super) fn check_rule_source(
        &self,
        op: Operation,
        field: &str,
        rule: &IngressRule,
    ) -> Result<()> {
        if let RuleSource::Group(g) = &rule.source {
            if self
                .store
                .get::<GroupRow>(Table::SecurityGroups, g)
                .map_err(db(op))?
                .is_none()
            {
                return Err(Error::invalid(
                    op,
                    format!("{field}.source"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        Ok(())
    }

    /// Creates a security group (idempotent by name and spec).
    pub async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
        let op = Operation::CreateSecurityGroup;
        spec.validate()?;
        let _g = self.changes.lock().await;
        for (i, r) in spec.rules.iter().enumerate() {
            self.check_rule_source(op, &format!("spec.rules[{i}]"), r)?;
        }
        if let Some(r) = self.find_by_name::<GroupRow>(op, Table::SecurityGroups, &spec.name)? {
            return if r.spec == *spec {
                Ok(r.record)
            } else {
                Err(Error::conflict(op, format!("security group {} ({})", spec.name, r.record.id), "a security group of this name exists with a different spec: delete it or choose another name"))
            };
        }
        let mut rules = spec.rules.clone();
        rules.sort();
        rules.dedup();
        let record = SecurityGroup {
            id: new_id("sg"),
            name: spec.name.clone(),
            description: spec.description.clone(),
            rules,
            tags: spec.tags.clone(),
        };
        let row = GroupRow {
            spec: spec.clone(),
            record: record.clone(),
        };
        self.store
            .put(Table::SecurityGroups, &record.id, &row)
            .map_err(db(op))?;
        self.refresh_view(op)?;
        Ok(record)
    }

    /// Gets a security group.
    pub async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        let op = Operation::GetSecurityGroup;
        Ok(self
            .get_row::<GroupRow>(op, Table::SecurityGroups, "security group", id)?
            .record)
    }

    /// One page of security groups.
    pub async fn list_security_groups(
        &self,
        filter: &TagFilter,
        after: Option<&str>,
    ) -> Result<Page<SecurityGroup>> {
        self.page(
            Operation::ListSecurityGroups,
            Table::SecurityGroups,
            filter,
            after,
            |_, r: GroupRow| r.record,
        )
    }

    /// Adds a rule; adding one that exists succeeds.
    pub async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        self.change_rule(group_id, rule, true).await
    }

    /// Removes a rule; removing one that is absent succeeds.
    pub async fn remove_security_group_rule(
        &self,
        group_id: &str,
        rule: &IngressRule,
    ) -> Result<()> {
        self.change_rule(group_id, rule, false).await
    }

    /// Adds or removes a rule.
    pub(super) async fn change_rule(
        &self,
        group_id: &str,
        rule: &IngressRule,
        add: bool,
    ) -> Result<()> {
        let op = if add {
            Operation::AddSecurityGroupRule
        } else {
            Operation::RemoveSecurityGroupRule
        };
        if add {
            rule.validate(op, "rule")?;
        }
        let _g = self.changes.lock().await;
        if add {
            self.check_rule_source(op, "rule", rule)?;
        }
        let mut row: GroupRow =
            self.get_row(op, Table::SecurityGroups, "security group", group_id)?;
        let present = row.record.rules.contains(rule);
        if add && !present {
            row.record.rules.push(rule.clone());
            row.record.rules.sort();
        } else if !add && present {
            row.record.rules.retain(|r| r != rule);
        } else {
            return Ok(());
        }
        self.store
            .put(Table::SecurityGroups, group_id, &row)
            .map_err(db(op))?;
        self.refresh_view(op)
    }

    /// Deletes a security group; `Conflict` while used.
    pub async fn delete_security_group(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteSecurityGroup;
        let _g = self.changes.lock().await;
        let Some(_) = self
            .store
            .get::<GroupRow>(Table::SecurityGroups, id)
            .map_err(db(op))?
        else {
            return Ok(());
        };
        let res = format!("security group {id}");
        if let Some(i) = self
            .store
            .all::<InstanceRow>(Table::Instances)
            .map_err(db(op))?
            .into_iter()
            .find(|i| i.record.security_groups.iter().any(|g| g == id))
        {
            return Err(Error::conflict(
                op,
                res,
                format!(
                    "in use by instance {}: delete the instance first",
                    i.record.id
                ),
            ));
        }
        if let Some(g) = self
            .store
            .all::<GroupRow>(Table::SecurityGroups)
            .map_err(db(op))?
            .into_iter()
            .find(|g| {
                g.record.id != id
                    && g.record
                        .rules
                        .iter()
                        .any(|r| r.source == RuleSource::Group(id.to_string()))
            })
        {
            return Err(Error::conflict(
                op,
                res,
                format!(
                    "referenced by a rule of group {}: remove that rule first",
                    g.record.id
                ),
            ));
        }
        if let Some(l) = self
            .store
            .all::<LbRow>(Table::LoadBalancers)
            .map_err(db(op))?
            .into_iter()
            .find(|l| l.record.security_groups.iter().any(|g| g == id))
        {
            return Err(Error::conflict(
                op,
                res,
                format!("in use by load balancer {}: delete it first", l.record.id),
            ));
        }
        self.store
            .delete(Table::SecurityGroups, id)
            .map_err(db(op))?;
        self.refresh_view(op)
    }
}
