//! Security groups: rules whose group sources must exist, and deletes refused while an instance or another group's rule uses the group.

use async_trait::async_trait;

use super::state::*;
use super::MemoryProvider;
use crate::model::*;
use crate::{Error, Operation, Result, SecurityGroups};

impl MemoryProvider {
    pub(super) fn check_rule_sources(
        &self,
        st: &State,
        op: Operation,
        field: &str,
        rule: &IngressRule,
    ) -> Result<()> {
        if let RuleSource::Group(g) = &rule.source {
            if st.groups.get(g).is_none_or(|r| r.deleting.is_some()) {
                return Err(Error::invalid(
                    op,
                    format!("{field}.source"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl SecurityGroups for MemoryProvider {
    async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
        let op = Operation::CreateSecurityGroup;
        spec.validate()?;
        let mut st = self.lock();
        for (i, r) in spec.rules.iter().enumerate() {
            self.check_rule_sources(&st, op, &format!("spec.rules[{i}]"), r)?;
        }
        if let Some(r) = st
            .groups
            .values()
            .find(|r| r.spec.name == spec.name && r.deleting.is_none())
        {
            return if r.spec == *spec {
                Ok(r.group.clone())
            } else {
                Err(Error::conflict(
                    op,
                    format!("security group {} ({})", spec.name, r.group.id),
                    "a group of this name exists with a different spec: delete it or choose another name",
                ))
            };
        }
        let id = self.new_id("sg");
        let mut rules = spec.rules.clone();
        rules.sort();
        rules.dedup();
        let group = SecurityGroup {
            id: id.clone(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            rules,
            tags: spec.tags.clone(),
        };
        st.groups.insert(
            id,
            GroupRec {
                spec: spec.clone(),
                group: group.clone(),
                deleting: None,
            },
        );
        Ok(group)
    }

    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        let st = self.lock();
        st.groups.get(id).map(|r| r.group.clone()).ok_or_else(|| {
            Error::not_found(Operation::GetSecurityGroup, format!("security group {id}"))
        })
    }

    async fn list_security_groups(&self, filter: &TagFilter) -> Result<Vec<SecurityGroup>> {
        let st = self.lock();
        Ok(self
            .paginate(&st.groups, |r| filter.matches(&r.group.tags))
            .into_iter()
            .map(|r| r.group)
            .collect())
    }

    async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        let op = Operation::AddSecurityGroupRule;
        rule.validate(op, "rule")?;
        let mut st = self.lock();
        self.check_rule_sources(&st, op, "rule", rule)?;
        let r = st
            .groups
            .get_mut(group_id)
            .ok_or_else(|| Error::not_found(op, format!("security group {group_id}")))?;
        if !r.group.rules.contains(rule) {
            r.group.rules.push(rule.clone());
            r.group.rules.sort();
        }
        Ok(())
    }

    async fn remove_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        let op = Operation::RemoveSecurityGroupRule;
        let mut st = self.lock();
        let r = st
            .groups
            .get_mut(group_id)
            .ok_or_else(|| Error::not_found(op, format!("security group {group_id}")))?;
        r.group.rules.retain(|x| x != rule);
        Ok(())
    }

    async fn delete_security_group(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteSecurityGroup;
        {
            let mut st = self.lock();
            if !st.groups.contains_key(id) {
                return Ok(());
            }
            if let Some(i) = st
                .instances
                .values()
                .find(|i| i.instance.security_groups.iter().any(|g| g == id))
            {
                return Err(Error::conflict(
                    op,
                    format!("security group {id}"),
                    format!(
                        "in use by instance {}: delete the instance first",
                        i.instance.id
                    ),
                ));
            }
            if let Some(g) = st.groups.values().find(|g| {
                g.group.id != id
                    && g.group
                        .rules
                        .iter()
                        .any(|r| r.source == RuleSource::Group(id.to_string()))
            }) {
                return Err(Error::conflict(
                    op,
                    format!("security group {id}"),
                    format!(
                        "referenced by a rule of group {}: remove that rule first",
                        g.group.id
                    ),
                ));
            }
            if let Some(lb) = st
                .lbs
                .values()
                .find(|l| l.spec.security_groups.iter().any(|g| g == id))
            {
                return Err(Error::conflict(
                    op,
                    format!("security group {id}"),
                    format!("in use by load balancer {}: delete it first", lb.id),
                ));
            }
            let until = self.until();
            if let Some(g) = st.groups.get_mut(id) {
                g.deleting.get_or_insert(until);
            }
        }
        self.wait_gone(op, format!("security group {id}"), |st| {
            !st.groups.contains_key(id)
        })
        .await
    }
}
