//! Security groups: Neutron security groups and their ingress rules (CIDR sources as
//! `remote_ip_prefix`, group sources as `remote_group_id`); Neutron's default egress rules
//! are left alone and not reported.

use super::*;

fn rule_from_neutron(r: &NeutronRule) -> Option<IngressRule> {
    if r.direction != "ingress" {
        return None;
    }
    let protocol = match r.protocol.as_deref() {
        None | Some("any") => Protocol::Any,
        Some("tcp") | Some("6") => Protocol::Tcp,
        Some("udp") | Some("17") => Protocol::Udp,
        Some("icmp") | Some("1") => Protocol::Icmp,
        Some(_) => return None,
    };
    let ports = match protocol {
        Protocol::Tcp | Protocol::Udp => Some(PortRange {
            from: r.port_range_min.unwrap_or(1),
            to: r.port_range_max.or(r.port_range_min).unwrap_or(65535),
        }),
        _ => None,
    };
    let source = if let Some(g) = &r.remote_group_id {
        RuleSource::Group(g.clone())
    } else {
        let default = if r.ethertype.as_deref() == Some("IPv6") {
            "::/0"
        } else {
            "0.0.0.0/0"
        };
        let cidr = r.remote_ip_prefix.as_deref().unwrap_or(default);
        // A bare address (no prefix length) is a host route.
        let net: IpNet = cidr
            .parse()
            .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from))
            .ok()?;
        RuleSource::Cidr(net)
    };
    let mut rule = IngressRule::new(protocol, source);
    rule.ports = ports;
    Some(rule)
}

fn rule_body(group_id: &str, rule: &IngressRule) -> Value {
    let mut body = json!({
        "security_group_id": group_id,
        "direction": "ingress",
    });
    let proto = match rule.protocol {
        Protocol::Tcp => Some("tcp"),
        Protocol::Udp => Some("udp"),
        Protocol::Icmp => Some("icmp"),
        Protocol::Any => None,
    };
    if let Some(p) = proto {
        body["protocol"] = json!(p);
    }
    if let Some(r) = rule.ports {
        body["port_range_min"] = json!(r.from);
        body["port_range_max"] = json!(r.to);
    }
    match &rule.source {
        RuleSource::Cidr(net) => {
            body["ethertype"] = json!(if net.addr().is_ipv6() { "IPv6" } else { "IPv4" });
            body["remote_ip_prefix"] = json!(net.trunc().to_string());
        }
        RuleSource::Group(g) => {
            body["ethertype"] = json!("IPv4");
            body["remote_group_id"] = json!(g);
        }
    }
    body
}

/// A rule with its CIDR normalised (host bits cleared), as Neutron stores it.
fn normalise(rule: &IngressRule) -> IngressRule {
    let mut r = rule.clone();
    if let RuleSource::Cidr(net) = &r.source {
        r.source = RuleSource::Cidr(net.trunc());
    }
    r
}

/// Whether a Neutron 404 names the group source of `rule`.
fn names_source(e: &Error, rule: &IngressRule) -> bool {
    match (e, &rule.source) {
        (Error::NotFound { resource, .. }, RuleSource::Group(g)) => resource.contains(g.as_str()),
        _ => false,
    }
}

/// A group source that does not exist: the caller's input, on `field`.
fn missing_source(op: Operation, field: &str, group: &str) -> Error {
    Error::invalid(
        op,
        format!("{field}.source"),
        format!("no security group with id {group:?}: create it first"),
    )
}

fn group_record(g: &NeutronGroup) -> SecurityGroup {
    let mut rules: Vec<IngressRule> = g
        .security_group_rules
        .iter()
        .filter_map(rule_from_neutron)
        .collect();
    rules.sort();
    rules.dedup();
    SecurityGroup {
        id: g.id.clone(),
        name: g.name.clone(),
        description: g.description.clone(),
        rules,
        tags: tags::user_tags(&g.tags),
    }
}

impl OpenStackProvider {
    pub(crate) async fn neutron_group(&self, op: Operation, id: &str) -> Result<NeutronGroup> {
        self.api
            .send_as(
                op,
                Call::get(Service::Network, format!("security-groups/{id}")),
                "security_group",
            )
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found(op, format!("security group {id}")),
                e => e,
            })
    }

    /// Which of the group ids `ids` exist, with one list call.
    pub(crate) async fn existing_groups(
        &self,
        op: Operation,
        ids: &[String],
    ) -> Result<BTreeSet<String>> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        if ids.is_empty() {
            return Ok(BTreeSet::new());
        }
        let mut call = Call::get(Service::Network, "security-groups").query("fields", "id");
        for id in ids {
            call = call.query("id", id.clone());
        }
        let found: Vec<Id> = self.api.list(op, call, "security_groups").await?;
        Ok(found.into_iter().map(|g| g.id).collect())
    }

    /// Which group sources of `rules` do not exist (one list call): the first one, with
    /// its index, as the `InvalidInput` a create answers.
    async fn check_rule_sources(
        &self,
        op: Operation,
        field: &str,
        rules: &[IngressRule],
    ) -> Result<()> {
        let sources: Vec<String> = rules
            .iter()
            .filter_map(|r| match &r.source {
                RuleSource::Group(g) => Some(g.clone()),
                RuleSource::Cidr(_) => None,
            })
            .collect();
        if sources.is_empty() {
            return Ok(());
        }
        let found = self.existing_groups(op, &sources).await?;
        for (i, r) in rules.iter().enumerate() {
            if let RuleSource::Group(g) = &r.source {
                if !found.contains(g) {
                    return Err(missing_source(op, &format!("{field}[{i}]"), g));
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn get_security_group_impl(
        &self,
        op: Operation,
        id: &str,
    ) -> Result<SecurityGroup> {
        Ok(group_record(&self.neutron_group(op, id).await?))
    }

    async fn post_rule(&self, op: Operation, group_id: &str, rule: &IngressRule) -> Result<()> {
        match self
            .api
            .send(
                op,
                Call::post(
                    Service::Network,
                    "security-group-rules",
                    &json!({ "security_group_rule": rule_body(group_id, rule) }),
                ),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Only Neutron's SecurityGroupRuleExists means the rule is there: adding it
            // again succeeds. Its other 409s (OverQuota, ...) are errors: the rule
            // does not exist.
            Err(Error::AlreadyExists { .. }) => Ok(()),
            Err(e @ Error::NotFound { .. }) => Err(self.missing_group(op, group_id, rule, e)),
            Err(e) => Err(e),
        }
    }

    /// Posts `rules` to a group in one bulk request (Neutron creates them all or none).
    /// A rule there already fails the bulk request: then one by one, each duplicate
    /// being a success.
    async fn post_rules(&self, op: Operation, group_id: &str, rules: &[IngressRule]) -> Result<()> {
        match rules {
            [] => return Ok(()),
            [one] => return self.post_rule(op, group_id, one).await,
            _ => {}
        }
        let bodies: Vec<Value> = rules.iter().map(|r| rule_body(group_id, r)).collect();
        let call = Call::post(
            Service::Network,
            "security-group-rules",
            &json!({ "security_group_rules": bodies }),
        );
        match self.api.send(op, call).await {
            Ok(_) => Ok(()),
            Err(Error::AlreadyExists { .. }) => {
                for r in rules {
                    self.post_rule(op, group_id, r).await?;
                }
                Ok(())
            }
            Err(e @ Error::NotFound { .. }) => {
                let source = rules.iter().find(|r| names_source(&e, r));
                Err(match source {
                    Some(r) => self.missing_group(op, group_id, r, e),
                    None => Error::not_found(op, format!("security group {group_id}")),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The error of a rule post Neutron answered 404 to: Neutron names the group that
    /// does not exist, the rule's group source or the group itself.
    fn missing_group(&self, op: Operation, group_id: &str, rule: &IngressRule, e: Error) -> Error {
        match &rule.source {
            RuleSource::Group(g) if names_source(&e, rule) && g != group_id => {
                missing_source(op, "rule", g)
            }
            _ => Error::not_found(op, format!("security group {group_id}")),
        }
    }

    /// Why a group is in use: an instance that exists is a `Conflict`; ports of
    /// instances already gone are still being cleaned up (`Transient`).
    async fn group_in_use(&self, op: Operation, id: &str, message: String) -> Error {
        let ports: Vec<NeutronPort> = match self
            .api
            .list(
                op,
                Call::get(Service::Network, "ports").query("security_groups", id),
                "ports",
            )
            .await
        {
            Ok(p) => p,
            Err(e) => return e,
        };
        for p in &ports {
            if p.device_owner.starts_with("compute:") && !p.device_id.is_empty() {
                match self.server(op, &p.device_id).await {
                    Ok(_) => {
                        return Error::conflict(
                            op,
                            format!("security group {id}"),
                            format!(
                                "in use by instance {}: delete the instance first",
                                p.device_id
                            ),
                        )
                    }
                    Err(Error::NotFound { .. }) => continue,
                    Err(e) => return e,
                }
            } else if !p.device_owner.is_empty() || !p.name.is_empty() {
                return Error::conflict(
                    op,
                    format!("security group {id}"),
                    format!("in use by port {} ({}): {message}", p.id, p.device_owner),
                );
            }
        }
        Error::transient(
            op,
            format!("security group {id} is still in use by ports being deleted: {message}"),
        )
    }
}

#[async_trait]
impl SecurityGroups for OpenStackProvider {
    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        self.get_security_group_impl(provider_core::Operation::GetSecurityGroup, id)
            .await
    }

    async fn list_security_groups(&self, filter: &TagFilter) -> Result<Vec<SecurityGroup>> {
        let op = Operation::ListSecurityGroups;
        let mut call = self.scoped(Call::get(Service::Network, "security-groups"));
        if let Some(t) = tags::filter_query(filter, MAX_STRING_TAG_LEN) {
            call = call.query("tags", t);
        }
        let groups: Vec<NeutronGroup> = self.api.list(op, call, "security_groups").await?;
        Ok(groups
            .iter()
            .map(group_record)
            .filter(|g| filter.matches(&g.tags))
            .collect())
    }

    async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
        let op = Operation::CreateSecurityGroup;
        spec.validate()?;
        tags::to_strings(op, "spec.tags", &spec.tags, MAX_STRING_TAG_LEN)?;
        self.check_rule_sources(op, "spec.rules", &spec.rules)
            .await?;
        let want: BTreeSet<IngressRule> = spec.rules.iter().map(normalise).collect();
        let hash = spec_hash(spec);
        // Creates started together look their names up with one list.
        let existing: Vec<NeutronGroup> = self
            .watches
            .groups_named
            .get(&spec.name, |names| {
                let mut call = self.scoped(Call::get(Service::Network, "security-groups"));
                for n in names {
                    call = call.query("name", n);
                }
                self.api.list(op, call, "security_groups")
            })
            .await?;
        let group = match existing.into_iter().find(|g| g.name == spec.name) {
            Some(g) => {
                let have = group_record(&g);
                let have_rules: BTreeSet<IngressRule> = have.rules.iter().cloned().collect();
                // Tags are set last: an untagged group with a subset of the rules is a
                // create that stopped half-way, and is finished. A tagged one matches when
                // it was created with this spec (its spec tag): tags and rules added since
                // (by update_tags, add_security_group_rule) do not make it another group,
                // and fewer tags or rules than it was created with are another spec.
                let half_made = g.tags.is_empty() && have_rules.is_subset(&want);
                let same = match tags::spec_of(&g.tags) {
                    Some(h) => h == hash,
                    // Created before the spec tag: its tags and rules exactly as asked.
                    None => have.tags == spec.tags && have_rules == want,
                };
                if have.description != spec.description || !(half_made || same) {
                    return Err(Error::conflict(
                        op,
                        format!("security group {} ({})", spec.name, g.id),
                        "a group of this name exists with a different spec: delete it or choose another name",
                    ));
                }
                g
            }
            None => {
                let body = json!({
                    "name": spec.name,
                    "description": spec.description,
                });
                // Untagged until its rules are in (see above).
                self.api
                    .send_as(
                        op,
                        Call::post(
                            Service::Network,
                            "security-groups",
                            &json!({ "security_group": body }),
                        ),
                        "security_group",
                    )
                    .await?
            }
        };
        let mut record = group_record(&group);
        let have: BTreeSet<IngressRule> = record.rules.iter().cloned().collect();
        let missing: Vec<IngressRule> = want.difference(&have).cloned().collect();
        self.post_rules(op, &group.id, &missing).await?;
        if group.tags.is_empty() {
            let created_tags = tags::with_spec(&spec.tags, &hash);
            self.put_neutron_tags(op, "security-groups", &group.id, &created_tags)
                .await?;
            record.tags = spec.tags.clone();
        }
        // What it holds now, without reading it back: what it had and what was added.
        record.rules.extend(missing);
        record.rules.sort();
        record.rules.dedup();
        Ok(record)
    }

    async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        let op = Operation::AddSecurityGroupRule;
        rule.validate(op, "rule")?;
        // No read first: Neutron refuses a rule the group has (a success here) and names
        // the group that does not exist.
        self.post_rule(op, group_id, &normalise(rule)).await
    }

    async fn remove_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        let op = Operation::RemoveSecurityGroupRule;
        let g = self.group_read(op, group_id).await?;
        let rule = normalise(rule);
        for r in &g.security_group_rules {
            if rule_from_neutron(r).as_ref() == Some(&rule) {
                match self
                    .api
                    .send(
                        op,
                        Call::delete(Service::Network, format!("security-group-rules/{}", r.id)),
                    )
                    .await
                {
                    Ok(_) | Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    async fn delete_security_group(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteSecurityGroup;
        // No read first: a group already gone has no rules naming it, and its delete
        // answers 404, a success.
        // Neutron would silently delete other groups' rules that name this one.
        // One list for the deletes started together.
        let referencing: Vec<NeutronRule> = self
            .watches
            .rules_naming
            .get(id, |ids| {
                let mut call = Call::get(Service::Network, "security-group-rules");
                for i in ids {
                    call = call.query("remote_group_id", i);
                }
                self.api.list(op, call, "security_group_rules")
            })
            .await?;
        if let Some(r) = referencing
            .iter()
            .find(|r| r.remote_group_id.as_deref() == Some(id) && r.security_group_id != id)
        {
            return Err(Error::conflict(
                op,
                format!("security group {id}"),
                format!(
                    "referenced by a rule of group {}: remove that rule first",
                    r.security_group_id
                ),
            ));
        }
        match self
            .api
            .send(
                op,
                Call::delete(Service::Network, format!("security-groups/{id}")),
            )
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(Error::Conflict { message, .. }) => Err(self.group_in_use(op, id, message).await),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_neutron_shape() {
        let rules = [
            IngressRule::tcp(22, "10.1.1.4/32".parse().unwrap()),
            IngressRule::tcp_from_group(8080, "g1"),
            IngressRule::new(
                Protocol::Icmp,
                RuleSource::Cidr("0.0.0.0/0".parse().unwrap()),
            ),
            IngressRule::new(
                Protocol::Any,
                RuleSource::Cidr("2001:db8::/32".parse().unwrap()),
            ),
        ];
        for r in rules {
            let body = rule_body("sg", &r);
            let mut n: NeutronRule = serde_json::from_value(json!({
                "id": "r", "security_group_id": "sg", "direction": "ingress",
            }))
            .unwrap();
            n.ethertype = body["ethertype"].as_str().map(str::to_string);
            n.protocol = body["protocol"].as_str().map(str::to_string);
            n.port_range_min = body["port_range_min"].as_u64().map(|p| p as u16);
            n.port_range_max = body["port_range_max"].as_u64().map(|p| p as u16);
            n.remote_ip_prefix = body["remote_ip_prefix"].as_str().map(str::to_string);
            n.remote_group_id = body["remote_group_id"].as_str().map(str::to_string);
            assert_eq!(rule_from_neutron(&n), Some(r));
        }
    }
}
