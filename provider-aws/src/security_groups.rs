//! Security groups = VPC security groups, with ingress rules by CIDR and by source
//! group. Egress stays AWS's default (all open).
//!
//! A group is created with its tags (`TagSpecifications`), then its rules in one
//! `AuthorizeSecurityGroupIngress`. A create that crashed in between is completed by the
//! next create of the same name and spec: `CreateSecurityGroup` answers that the name
//! exists, and the rules the group lacks are authorized (a cluster's plan adds them too).

use async_trait::async_trait;
use provider_core::SecurityGroups;
use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    AttachmentStatus, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroup as Ec2Group,
    UserIdGroupPair,
};
use ipnet::IpNet;
use provider_core::wait::Poll;
use provider_core::{
    Error, IngressRule, Operation, PortRange, Protocol, Result, RuleSource, SecurityGroup,
    SecurityGroupSpec, TagFilter,
};

use crate::error::{sdk, AwsError};
use crate::tags::{self, filter, NAME_TAG, SPEC_HASH_TAG};
use crate::AwsProvider;

/// Description AWS gets when the spec's is empty (AWS requires one).
fn aws_description(spec: &SecurityGroupSpec) -> String {
    if spec.description.trim().is_empty() {
        format!("Plinth security group {}", spec.name)
    } else {
        spec.description.clone()
    }
}

/// The EC2 permission for one rule.
pub(crate) fn to_permission(rule: &IngressRule) -> IpPermission {
    let (proto, from, to) = match (rule.protocol, rule.ports) {
        (Protocol::Tcp, Some(p)) => ("tcp", p.from as i32, p.to as i32),
        (Protocol::Udp, Some(p)) => ("udp", p.from as i32, p.to as i32),
        (Protocol::Tcp, None) => ("tcp", 0, 65535),
        (Protocol::Udp, None) => ("udp", 0, 65535),
        (Protocol::Icmp, _) => ("icmp", -1, -1),
        (Protocol::Any, _) => ("-1", -1, -1),
    };
    let mut b = IpPermission::builder().ip_protocol(proto);
    if proto != "-1" {
        b = b.from_port(from).to_port(to);
    }
    match &rule.source {
        RuleSource::Cidr(IpNet::V4(n)) => {
            b = b.ip_ranges(IpRange::builder().cidr_ip(n.to_string()).build())
        }
        RuleSource::Cidr(IpNet::V6(n)) => {
            b = b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(n.to_string()).build())
        }
        RuleSource::Group(g) => {
            b = b.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build())
        }
    }
    b.build()
}

/// The rules of EC2 permissions (each permission may hold several sources).
pub(crate) fn from_permissions(perms: &[IpPermission]) -> Vec<IngressRule> {
    let mut out = BTreeSet::new();
    for p in perms {
        let protocol = match p.ip_protocol().unwrap_or("-1") {
            "tcp" | "6" => Protocol::Tcp,
            "udp" | "17" => Protocol::Udp,
            "icmp" | "1" => Protocol::Icmp,
            _ => Protocol::Any,
        };
        let ports = match protocol {
            Protocol::Tcp | Protocol::Udp => {
                let from = p.from_port().unwrap_or(0).clamp(0, 65535) as u16;
                let to = p.to_port().unwrap_or(65535).clamp(0, 65535) as u16;
                Some(PortRange { from, to })
            }
            _ => None,
        };
        let mut sources = Vec::new();
        for r in p.ip_ranges() {
            if let Some(n) = r.cidr_ip().and_then(|c| c.parse::<IpNet>().ok()) {
                sources.push(RuleSource::Cidr(n));
            }
        }
        for r in p.ipv6_ranges() {
            if let Some(n) = r.cidr_ipv6().and_then(|c| c.parse::<IpNet>().ok()) {
                sources.push(RuleSource::Cidr(n));
            }
        }
        for g in p.user_id_group_pairs() {
            if let Some(id) = g.group_id() {
                sources.push(RuleSource::Group(id.to_string()));
            }
        }
        for source in sources {
            let mut rule = IngressRule::new(protocol, source);
            rule.ports = ports;
            out.insert(rule);
        }
    }
    out.into_iter().collect()
}

fn record(g: &Ec2Group) -> SecurityGroup {
    let name = tags::tag_value(tags::ec2_pairs(g.tags()), NAME_TAG)
        .or_else(|| g.group_name().map(str::to_string))
        .unwrap_or_default();
    let description = g.description().unwrap_or_default().to_string();
    let description = if description == format!("Plinth security group {name}") {
        String::new()
    } else {
        description
    };
    SecurityGroup {
        id: g.group_id().unwrap_or_default().to_string(),
        name,
        description,
        rules: from_permissions(g.ip_permissions()),
        tags: tags::user_tags(tags::ec2_pairs(g.tags())),
    }
}

impl AwsProvider {
    /// Describes groups by id; missing ids are left out.
    async fn groups_by_id(&self, op: Operation, ids: &[String]) -> Result<Vec<Ec2Group>> {
        let out = self
            .ec2
            .describe_security_groups()
            .filters(filter("group-id", ids.iter().cloned()))
            .send()
            .await
            .map_err(sdk(op, "security groups"))?;
        Ok(out.security_groups().to_vec())
    }

    async fn group(&self, op: Operation, id: &str) -> Result<Ec2Group> {
        let resource = format!("security group {id}");
        let out = self
            .ec2
            .describe_security_groups()
            .group_ids(id)
            .send()
            .await
            .map_err(sdk(op, &resource))?;
        out.security_groups()
            .first()
            .cloned()
            .ok_or_else(|| Error::not_found(op, resource))
    }

    /// Checks that every group a rule names as its source exists.
    async fn check_sources(&self, op: Operation, rules: &[(String, &IngressRule)]) -> Result<()> {
        let wanted: Vec<String> = rules
            .iter()
            .filter_map(|(_, r)| match &r.source {
                RuleSource::Group(g) => Some(g.clone()),
                RuleSource::Cidr(_) => None,
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let found: BTreeSet<String> = self
            .groups_by_id(op, &wanted)
            .await?
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect();
        for (field, r) in rules {
            if let RuleSource::Group(g) = &r.source {
                if !found.contains(g) {
                    return Err(Error::invalid(
                        op,
                        format!("{field}.source"),
                        format!("no security group with id {g:?}: create it first"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Authorizes rules one call for all; a duplicate makes it fall back to one call
    /// per rule, skipping the duplicates.
    async fn authorize(&self, op: Operation, id: &str, rules: &[IngressRule]) -> Result<()> {
        if rules.is_empty() {
            return Ok(());
        }
        let resource = format!("security group {id}");
        let all = self
            .ec2
            .authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(rules.iter().map(to_permission).collect()))
            .send()
            .await;
        match all {
            Ok(_) => return Ok(()),
            Err(e) => {
                let e = AwsError::from_sdk(e);
                if e.code != "InvalidPermission.Duplicate" {
                    return Err(e.classify(op, &resource));
                }
            }
        }
        for r in rules {
            if let Err(e) = self
                .ec2
                .authorize_security_group_ingress()
                .group_id(id)
                .ip_permissions(to_permission(r))
                .send()
                .await
            {
                let e = AwsError::from_sdk(e);
                if e.code != "InvalidPermission.Duplicate" {
                    return Err(e.classify(op, &resource));
                }
            }
        }
        Ok(())
    }

    /// Returns an existing group of the spec's name if it was made from this spec
    /// (finishing its rules if a create stopped half-way), else `Conflict`.
    async fn adopt_group(
        &self,
        op: Operation,
        spec: &SecurityGroupSpec,
        hash: &str,
        rules: &[IngressRule],
        g: &Ec2Group,
    ) -> Result<SecurityGroup> {
        let id = g.group_id().unwrap_or_default().to_string();
        let pairs: Vec<(&str, &str)> = tags::ec2_pairs(g.tags()).collect();
        let theirs = tags::tag_value(pairs.iter().copied(), SPEC_HASH_TAG);
        if theirs.as_deref() != Some(hash) {
            return Err(Error::conflict(
                op,
                format!("security group {} ({id})", spec.name),
                "a group of this name exists with a different spec: delete it or choose another name",
            ));
        }
        // A create that stopped before its rules: authorize those the group lacks.
        let have = from_permissions(g.ip_permissions());
        let missing: Vec<IngressRule> = rules
            .iter()
            .filter(|r| !have.contains(r))
            .cloned()
            .collect();
        if !missing.is_empty() {
            self.authorize(op, &id, &missing).await?;
            return self.get_security_group(&id).await;
        }
        Ok(record(g))
    }
}

#[async_trait]
impl SecurityGroups for AwsProvider {
    async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
        let op = Operation::CreateSecurityGroup;
        spec.validate()?;
        tags::check_user_tags(op, "spec.tags", &spec.tags)?;
        let fields: Vec<(String, &IngressRule)> = spec
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("spec.rules[{i}]"), r))
            .collect();
        self.check_sources(op, &fields).await?;
        let hash = tags::spec_hash(spec);
        let vpc = self.vpc(op).await?;
        let mut rules = spec.rules.clone();
        rules.sort();
        rules.dedup();

        // Names are unique per VPC: a name taken answers `InvalidGroup.Duplicate`, and
        // the group of that name is adopted if it was made from this spec.
        let all_tags = tags::create_tags(&spec.name, &spec.tags, &hash);
        let created = self
            .ec2
            .create_security_group()
            .group_name(&spec.name)
            .description(aws_description(spec))
            .vpc_id(&vpc)
            .tag_specifications(tags::tag_spec(ResourceType::SecurityGroup, &all_tags))
            .send()
            .await;
        let created = match created {
            Ok(c) => c,
            Err(e) => {
                let e = AwsError::from_sdk(e);
                let resource = format!("security group {}", spec.name);
                if e.code != "InvalidGroup.Duplicate" {
                    return Err(e.classify(op, &resource));
                }
                let existing = self
                    .ec2
                    .describe_security_groups()
                    .filters(filter("vpc-id", [vpc.clone()]))
                    .filters(filter("group-name", [spec.name.clone()]))
                    .send()
                    .await
                    .map_err(sdk(op, &resource))?;
                return match existing.security_groups().first() {
                    Some(g) => self.adopt_group(op, spec, &hash, &rules, g).await,
                    // Deleted since: the next attempt creates it.
                    None => Err(Error::transient(
                        op,
                        format!("{resource} exists and does not"),
                    )),
                };
            }
        };
        let id = created
            .group_id()
            .ok_or_else(|| Error::transient(op, "CreateSecurityGroup answered no group id"))?
            .to_string();
        if !rules.is_empty() {
            let resource = format!("security group {id}");
            self.eventually(op, &resource, || self.authorize(op, &id, &rules))
                .await?;
        }
        Ok(SecurityGroup {
            id,
            name: spec.name.clone(),
            description: spec.description.clone(),
            rules,
            tags: spec.tags.clone(),
        })
    }

    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        Ok(record(&self.group(Operation::GetSecurityGroup, id).await?))
    }

    async fn list_security_groups(&self, tf: &TagFilter) -> Result<Vec<SecurityGroup>> {
        let op = Operation::ListSecurityGroups;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .ec2
                .describe_security_groups()
                .set_filters(Some(tags::ec2_filters(tf)))
                .max_results(self.config.page_size as i32)
                .set_next_token(token.clone());
            if let Some(v) = &self.config.vpc_id {
                req = req.filters(filter("vpc-id", [v.clone()]));
            }
            let page = req.send().await.map_err(sdk(op, "security groups"))?;
            out.extend(
                page.security_groups()
                    .iter()
                    .map(record)
                    .filter(|g| tf.matches(&g.tags)),
            );
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        let op = Operation::AddSecurityGroupRule;
        rule.validate(op, "rule")?;
        // AuthorizeSecurityGroupIngress checks both groups (moto and AWS), naming the
        // missing one: the group itself is `NotFound`, the rule's source bad input.
        match self
            .authorize(op, group_id, std::slice::from_ref(rule))
            .await
        {
            Err(Error::NotFound { .. }) => {
                let mut ids = vec![group_id.to_string()];
                if let RuleSource::Group(src) = &rule.source {
                    ids.push(src.clone());
                }
                let found: BTreeSet<String> = self
                    .groups_by_id(op, &ids)
                    .await?
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_string))
                    .collect();
                match &rule.source {
                    RuleSource::Group(src) if found.contains(group_id) && !found.contains(src) => {
                        Err(Error::invalid(
                            op,
                            "rule.source",
                            format!("no security group with id {src:?}: create it first"),
                        ))
                    }
                    _ => Err(Error::not_found(op, format!("security group {group_id}"))),
                }
            }
            r => r,
        }
    }

    async fn remove_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        let op = Operation::RemoveSecurityGroupRule;
        let resource = format!("security group {group_id}");
        match self
            .ec2
            .revoke_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(to_permission(rule))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::from_sdk(e);
                if e.code == "InvalidPermission.NotFound" {
                    Ok(())
                } else {
                    Err(e.classify(op, &resource))
                }
            }
        }
    }

    async fn delete_security_group(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteSecurityGroup;
        let resource = format!("security group {id}");
        // moto deletes groups that AWS would refuse: find the users ourselves. Every
        // user of a group is a network interface (an instance's, a load balancer's), a
        // rule of another group or a load balancer. Deletes started together share
        // these reads (a destroy deletes its groups at once).
        let users = self
            .watches
            .group_users
            .read(op, id, |ids| self.group_users(op, ids))
            .await?;
        if !users.groups.iter().any(|g| g.group_id() == Some(id)) {
            return Ok(());
        }
        let in_group = |n: &&aws_sdk_ec2::types::NetworkInterface| {
            n.groups().iter().any(|g| g.group_id() == Some(id))
        };
        if let Some(n) = users.interfaces.iter().find(in_group) {
            let eni = n.network_interface_id().unwrap_or_default();
            let attachment = n.attachment();
            let status = attachment.and_then(|a| a.status());
            // The interface of an instance just terminated lingers a moment: that clears.
            if matches!(
                status,
                Some(AttachmentStatus::Detaching | AttachmentStatus::Detached)
            ) {
                return Err(Error::transient(
                    op,
                    format!("{resource}: network interface {eni} of a deleted instance is still going away"),
                ));
            }
            let user = match attachment.and_then(|a| a.instance_id()) {
                Some(i) => format!("instance {i}"),
                None => format!("network interface {eni}"),
            };
            return Err(Error::conflict(
                op,
                &resource,
                format!("in use by {user}: delete it first"),
            ));
        }
        if let Some(g) = users.groups.iter().find(|g| {
            g.group_id() != Some(id)
                && from_permissions(g.ip_permissions())
                    .iter()
                    .any(|r| r.source == RuleSource::Group(id.to_string()))
        }) {
            return Err(Error::conflict(
                op,
                &resource,
                format!(
                    "referenced by a rule of group {}: remove that rule first",
                    g.group_id().unwrap_or_default()
                ),
            ));
        }
        if let Some(lb) = users
            .lbs
            .iter()
            .find(|l| l.security_groups().iter().any(|g| g == id))
        {
            return Err(Error::conflict(
                op,
                &resource,
                format!(
                    "in use by load balancer {}: delete it first",
                    lb.load_balancer_arn().unwrap_or_default()
                ),
            ));
        }
        if let Err(e) = self.ec2.delete_security_group().group_id(id).send().await {
            let e = AwsError::from_sdk(e);
            if e.is_not_found() {
                return Ok(());
            }
            if e.code == "DependencyViolation" {
                // No instance, rule or LB uses it: a network interface lingers.
                return Err(Error::transient(
                    op,
                    format!("{resource} still has a network interface: {}", e.message),
                ));
            }
            return Err(e.classify(op, &resource));
        }
        self.config
            .poller
            .until(
                op,
                &resource,
                "deleted",
                self.config.timeouts.delete,
                || async {
                    match self.group(op, id).await {
                        Err(Error::NotFound { .. }) => Ok(Poll::Ready(())),
                        Err(e) => Err(e),
                        Ok(_) => Ok(Poll::Pending("exists".into())),
                    }
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_permissions() {
        let rules = vec![
            IngressRule::tcp(22, "10.1.1.4/32".parse().unwrap()),
            IngressRule::tcp_from_group(6443, "sg-123"),
            IngressRule::new(
                Protocol::Icmp,
                RuleSource::Cidr("0.0.0.0/0".parse().unwrap()),
            ),
            IngressRule::new(Protocol::Any, RuleSource::Group("sg-9".into())),
            IngressRule::new(
                Protocol::Udp,
                RuleSource::Cidr("2001:db8::/32".parse().unwrap()),
            )
            .with_ports(PortRange { from: 53, to: 54 }),
        ];
        let perms: Vec<IpPermission> = rules.iter().map(to_permission).collect();
        let mut back = from_permissions(&perms);
        let mut want = rules.clone();
        want.sort();
        back.sort();
        assert_eq!(back, want);
    }
}
