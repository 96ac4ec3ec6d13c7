//! Observed state (what the provider lists under the cluster tag) and the diff that
//! turns desired vs observed into a [`Plan`].
//!
//! Resources are matched by their deterministic names; anything carrying the cluster
//! tag that the spec does not ask for is removed (except data volumes, which only
//! `destroy` deletes). Dependencies: groups before instances, volumes attached after
//! both exist, floating IPs after instances, LBs and members last; removals in reverse
//! (members and LBs, floating IPs, detaches, instances, volumes, rules, groups).

use std::collections::{BTreeSet, HashMap};

use provider_core::{
    Family, FloatingIp, FloatingIpSpec, Instance, LoadBalancer, MemberSpec, Provider, ProviderExt,
    RuleSource, SecurityGroup, TagFilter, Volume, VolumeSpec,
};
use serde::Serialize;

use super::dag::{release_floating_ip, Action, Plan, RuleRef};
use super::desired::Desired;
use super::TAG_CLUSTER;

/// What the provider has under the cluster tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observed {
    /// Security groups.
    pub groups: Vec<SecurityGroup>,
    /// Instances.
    pub instances: Vec<Instance>,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// Floating IPs.
    pub floating_ips: Vec<FloatingIp>,
    /// Load balancers.
    pub load_balancers: Vec<LoadBalancer>,
}

impl Observed {
    /// Lists everything tagged with `cluster` (five list calls, concurrently).
    pub async fn fetch(provider: &dyn Provider, cluster: &str) -> provider_core::Result<Self> {
        let filter = TagFilter::new(TAG_CLUSTER, cluster);
        let (groups, instances, volumes, floating_ips, load_balancers) = futures::try_join!(
            provider.list_security_groups(&filter),
            provider.list_instances(&filter),
            provider.list_volumes(&filter),
            async {
                if provider.supports(Family::FloatingIps) {
                    provider.list_floating_ips(&filter).await
                } else {
                    Ok(Vec::new())
                }
            },
            async {
                if provider.supports(Family::LoadBalancers) {
                    provider.list_load_balancers(&filter).await
                } else {
                    Ok(Vec::new())
                }
            },
        )?;
        Ok(Self {
            groups,
            instances,
            volumes,
            floating_ips,
            load_balancers,
        })
    }

    /// Whether nothing is tagged with the cluster.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
            && self.instances.is_empty()
            && self.volumes.is_empty()
            && self.floating_ips.is_empty()
            && self.load_balancers.is_empty()
    }

    /// Resources in all, of every kind.
    pub fn len(&self) -> usize {
        self.groups.len()
            + self.instances.len()
            + self.volumes.len()
            + self.floating_ips.len()
            + self.load_balancers.len()
    }
}

/// Knobs of the diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffOptions {
    /// Most instances per `create_instances` call.
    pub batch_size: usize,
    /// Delete volumes the spec does not ask for (`destroy`); `apply` keeps data volumes.
    pub delete_unwanted_volumes: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            batch_size: 25,
            delete_unwanted_volumes: false,
        }
    }
}

fn by_name<T>(items: &[T], name: impl Fn(&T) -> &str) -> HashMap<&str, &T> {
    items.iter().map(|i| (name(i), i)).collect()
}

/// The plan that takes `observed` to `desired`.
pub fn diff(desired: &Desired, observed: &Observed, opts: &DiffOptions) -> Plan {
    let mut plan = Plan {
        cluster: desired.cluster.clone(),
        blockers: desired.blockers.clone(),
        warnings: desired.warnings.clone(),
        ..Plan::default()
    };
    let obs_groups = by_name(&observed.groups, |g| &g.name);
    let group_name_of_id: HashMap<&str, &str> = observed
        .groups
        .iter()
        .map(|g| (g.id.as_str(), g.name.as_str()))
        .collect();
    let want_inst: BTreeSet<&str> = desired.instances.iter().map(|i| i.name.as_str()).collect();
    // Instances by slot, so a node's replacement (another name) still fills its slot.
    let obs_inst = crate::slot::canonical(&observed.instances);
    let keep_inst = |i: &Instance| {
        want_inst.contains(crate::slot::slot_of(i)) && crate::slot::is_canonical(&obs_inst, i)
    };
    let obs_vol = by_name(&observed.volumes, |v| &v.name);
    let obs_fip = by_name(&observed.floating_ips, |f| &f.name);
    let obs_lb = by_name(&observed.load_balancers, |l| &l.name);
    let inst_id = |name: &str| obs_inst.get(name).map(|i| i.id.as_str());

    // Rule removals naming a group (by group id), which must precede its deletion.
    let mut removals_naming: HashMap<String, Vec<usize>> = HashMap::new();

    // 1. Security groups, then rules (group references need both groups).
    let mut group_create: HashMap<&str, usize> = HashMap::new();
    for g in &desired.groups {
        if !obs_groups.contains_key(g.name.as_str()) {
            let rules = g
                .rules
                .iter()
                .filter_map(|r| match r {
                    RuleRef::Rule(r) => Some(r.clone()),
                    RuleRef::Group { .. } => None,
                })
                .collect();
            let id = plan.push(
                Action::CreateSecurityGroup {
                    name: g.name.clone(),
                    description: g.description.clone(),
                    rules,
                    tags: g.tags.clone(),
                },
                [],
            );
            group_create.insert(&g.name, id);
        }
    }
    let mut rules_added: HashMap<&str, usize> = HashMap::new();
    for g in &desired.groups {
        let (missing, extra): (Vec<RuleRef>, Vec<_>) = match obs_groups.get(g.name.as_str()) {
            None => (
                g.rules
                    .iter()
                    .filter(|r| matches!(r, RuleRef::Group { .. }))
                    .cloned()
                    .collect(),
                Vec::new(),
            ),
            Some(og) => {
                let have: BTreeSet<RuleRef> = og
                    .rules
                    .iter()
                    .map(|r| observed_rule_ref(r, &group_name_of_id))
                    .collect();
                let want: BTreeSet<&RuleRef> = g.rules.iter().collect();
                let missing = g
                    .rules
                    .iter()
                    .filter(|r| !have.contains(*r))
                    .cloned()
                    .collect();
                let extra = og
                    .rules
                    .iter()
                    .filter(|r| !want.contains(&observed_rule_ref(r, &group_name_of_id)))
                    .cloned()
                    .collect();
                (missing, extra)
            }
        };
        if !missing.is_empty() {
            let mut deps: Vec<usize> = group_create
                .get(g.name.as_str())
                .copied()
                .into_iter()
                .collect();
            for r in &missing {
                if let RuleRef::Group { group, .. } = r {
                    deps.extend(group_create.get(group.as_str()).copied());
                }
            }
            let id = plan.push(
                Action::AddSecurityGroupRules {
                    group: g.name.clone(),
                    rules: missing,
                },
                deps,
            );
            rules_added.insert(&g.name, id);
        }
        if let (false, Some(og)) = (extra.is_empty(), obs_groups.get(g.name.as_str())) {
            let named: Vec<String> = extra.iter().filter_map(group_source).collect();
            let id = plan.push(
                Action::RemoveSecurityGroupRules {
                    group: g.name.clone(),
                    id: og.id.clone(),
                    rules: extra,
                },
                [],
            );
            for gid in named {
                removals_naming.entry(gid).or_default().push(id);
            }
        }
    }

    // 2. Volumes.
    let mut vol_create: HashMap<&str, usize> = HashMap::new();
    for v in &desired.volumes {
        if !obs_vol.contains_key(v.name.as_str()) {
            let mut spec = VolumeSpec::new(v.name.clone(), v.availability_zone.clone(), v.size_gib)
                .with_tags(v.tags.clone());
            spec.volume_type = v.volume_type.clone();
            let id = plan.push(Action::CreateVolume { spec }, []);
            vol_create.insert(&v.name, id);
        }
    }

    // 3. Instances, in batches per role (masters first).
    let mut inst_create: HashMap<&str, usize> = HashMap::new();
    let missing: Vec<_> = desired
        .instances
        .iter()
        .filter(|i| !obs_inst.contains_key(i.name.as_str()))
        .collect();
    let batch = opts.batch_size.max(1);
    let mut start = 0;
    while start < missing.len() {
        let role = missing[start].role;
        let mut end = start;
        while end < missing.len() && missing[end].role == role && end - start < batch {
            end += 1;
        }
        let chunk = &missing[start..end];
        let deps: Vec<usize> = chunk
            .iter()
            .flat_map(|i| i.groups.iter())
            .filter_map(|g| group_create.get(g.as_str()).copied())
            .collect();
        let id = plan.push(
            Action::CreateInstances {
                instances: chunk.iter().map(|i| (*i).clone()).collect(),
            },
            deps,
        );
        for i in chunk {
            inst_create.insert(&i.name, id);
        }
        start = end;
    }

    // 4. Volume attachments, once both exist.
    let mut detached: HashMap<&str, usize> = HashMap::new();
    for v in &desired.volumes {
        let ov = obs_vol.get(v.name.as_str());
        let attached_to = ov
            .and_then(|ov| ov.attachment.as_ref())
            .map(|a| a.instance_id.as_str());
        let want = inst_id(&v.instance);
        if want.is_some() && attached_to == want {
            continue;
        }
        let mut deps: Vec<usize> = Vec::new();
        if let (Some(ov), Some(_)) = (ov, attached_to) {
            // Attached elsewhere: detach first.
            let id = plan.push(
                Action::DetachVolume {
                    name: ov.name.clone(),
                    id: ov.id.clone(),
                },
                [],
            );
            detached.insert(&ov.name, id);
            deps.push(id);
        }
        deps.extend(vol_create.get(v.name.as_str()).copied());
        deps.extend(inst_create.get(v.instance.as_str()).copied());
        plan.push(
            Action::AttachVolume {
                volume: v.name.clone(),
                instance: v.instance.clone(),
            },
            deps,
        );
    }

    // 5. Floating IPs, after their instances.
    for f in &desired.floating_ips {
        let of = obs_fip.get(f.name.as_str());
        let mut deps = Vec::new();
        if of.is_none() {
            deps.push(
                plan.push(
                    Action::AllocateFloatingIp {
                        spec: FloatingIpSpec::new(f.name.clone(), f.pool.clone())
                            .with_tags(f.tags.clone()),
                    },
                    [],
                ),
            );
        }
        let want = inst_id(&f.instance);
        if want.is_some() && of.and_then(|o| o.instance_id.as_deref()) == want {
            continue;
        }
        deps.extend(inst_create.get(f.instance.as_str()).copied());
        plan.push(
            Action::AssociateFloatingIp {
                floating_ip: f.name.clone(),
                instance: f.instance.clone(),
            },
            deps,
        );
    }

    // 6. Load balancers and members, last.
    let desired_ids: BTreeSet<&str> = desired
        .instances
        .iter()
        .filter_map(|i| inst_id(&i.name))
        .collect();
    let mut member_removals: HashMap<String, Vec<usize>> = HashMap::new();
    for lb in &desired.load_balancers {
        match obs_lb.get(lb.name.as_str()) {
            None => {
                let mut deps: Vec<usize> = lb
                    .groups
                    .iter()
                    .filter_map(|g| group_create.get(g.as_str()).copied())
                    .collect();
                for m in &lb.members {
                    deps.extend(inst_create.get(m.as_str()).copied());
                }
                deps.extend(rules_added.values().copied());
                plan.push(Action::CreateLoadBalancer { lb: lb.clone() }, deps);
            }
            Some(olb) => {
                for l in &lb.listeners {
                    let Some(ol) = olb.listener(l.port) else {
                        plan.warnings.push(format!(
                            "load balancer {} has no listener on port {}: destroy it and apply again to change listeners",
                            lb.name, l.port
                        ));
                        continue;
                    };
                    // Sets, not scans: an LB may front thousands of nodes.
                    let have: BTreeSet<(&str, u16)> = ol
                        .pool
                        .members
                        .iter()
                        .map(|om| (om.instance_id.as_str(), om.port))
                        .collect();
                    let member_ids: BTreeSet<&str> =
                        lb.members.iter().filter_map(|m| inst_id(m)).collect();
                    for m in &lb.members {
                        let present =
                            inst_id(m).is_some_and(|id| have.contains(&(id, l.target_port)));
                        if !present {
                            plan.push(
                                Action::AddLoadBalancerMember {
                                    lb: lb.name.clone(),
                                    port: l.port,
                                    instance: m.clone(),
                                    target_port: l.target_port,
                                },
                                inst_create.get(m.as_str()).copied(),
                            );
                        }
                    }
                    for om in &ol.pool.members {
                        let wanted = desired_ids.contains(om.instance_id.as_str())
                            && om.port == l.target_port
                            && member_ids.contains(om.instance_id.as_str());
                        if !wanted {
                            let id = plan.push(
                                Action::RemoveLoadBalancerMember {
                                    lb: lb.name.clone(),
                                    lb_id: olb.id.clone(),
                                    port: l.port,
                                    member: MemberSpec::new(om.instance_id.clone(), om.port),
                                },
                                [],
                            );
                            member_removals
                                .entry(om.instance_id.clone())
                                .or_default()
                                .push(id);
                        }
                    }
                }
            }
        }
    }

    // 7. Removals, in reverse dependency order.
    let want_lb: BTreeSet<&str> = desired
        .load_balancers
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    let want_vol: BTreeSet<&str> = desired.volumes.iter().map(|v| v.name.as_str()).collect();
    let want_fip: BTreeSet<&str> = desired
        .floating_ips
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let want_group: BTreeSet<&str> = desired.groups.iter().map(|g| g.name.as_str()).collect();

    let mut before_instance: HashMap<String, Vec<usize>> = member_removals;
    let mut before_group: HashMap<String, Vec<usize>> = removals_naming;
    for olb in observed
        .load_balancers
        .iter()
        .filter(|l| !want_lb.contains(l.name.as_str()))
    {
        let id = plan.push(
            Action::DeleteLoadBalancer {
                name: olb.name.clone(),
                id: olb.id.clone(),
            },
            [],
        );
        for l in &olb.listeners {
            for m in &l.pool.members {
                before_instance
                    .entry(m.instance_id.clone())
                    .or_default()
                    .push(id);
            }
        }
        for g in &olb.security_groups {
            before_group.entry(g.clone()).or_default().push(id);
        }
    }
    for of in observed
        .floating_ips
        .iter()
        .filter(|f| !want_fip.contains(f.name.as_str()))
    {
        let (unbound, _) = release_floating_ip(of, &[], |a, deps| plan.push(a, deps));
        if let Some(i) = &of.instance_id {
            before_instance.entry(i.clone()).or_default().push(unbound);
        }
    }
    let doomed: BTreeSet<&str> = observed
        .instances
        .iter()
        .filter(|i| !keep_inst(i))
        .map(|i| i.id.as_str())
        .collect();
    for ov in &observed.volumes {
        let Some(att) = &ov.attachment else { continue };
        let unwanted = opts.delete_unwanted_volumes && !want_vol.contains(ov.name.as_str());
        if (doomed.contains(att.instance_id.as_str()) || unwanted)
            && !detached.contains_key(ov.name.as_str())
        {
            let id = plan.push(
                Action::DetachVolume {
                    name: ov.name.clone(),
                    id: ov.id.clone(),
                },
                [],
            );
            detached.insert(&ov.name, id);
            before_instance
                .entry(att.instance_id.clone())
                .or_default()
                .push(id);
        }
    }
    for oi in observed.instances.iter().filter(|i| !keep_inst(i)) {
        let deps = before_instance.get(&oi.id).cloned().unwrap_or_default();
        let id = plan.push(
            Action::DeleteInstance {
                name: oi.name.clone(),
                id: oi.id.clone(),
            },
            deps,
        );
        for g in &oi.security_groups {
            before_group.entry(g.clone()).or_default().push(id);
        }
    }
    if opts.delete_unwanted_volumes {
        for ov in observed
            .volumes
            .iter()
            .filter(|v| !want_vol.contains(v.name.as_str()))
        {
            plan.push(
                Action::DeleteVolume {
                    name: ov.name.clone(),
                    id: ov.id.clone(),
                },
                detached.get(ov.name.as_str()).copied(),
            );
        }
    }
    let doomed_groups: Vec<&SecurityGroup> = observed
        .groups
        .iter()
        .filter(|g| !want_group.contains(g.name.as_str()))
        .collect();
    for og in &doomed_groups {
        // Rules naming groups go first, or the named group is "in use".
        let named: Vec<_> = og
            .rules
            .iter()
            .filter(|r| matches!(r.source, RuleSource::Group(_)))
            .cloned()
            .collect();
        if named.is_empty() {
            continue;
        }
        let gids: Vec<String> = named.iter().filter_map(group_source).collect();
        let id = plan.push(
            Action::RemoveSecurityGroupRules {
                group: og.name.clone(),
                id: og.id.clone(),
                rules: named,
            },
            [],
        );
        for gid in gids {
            before_group.entry(gid).or_default().push(id);
        }
        before_group.entry(og.id.clone()).or_default().push(id);
    }
    for og in doomed_groups {
        let deps = before_group.get(&og.id).cloned().unwrap_or_default();
        plan.push(
            Action::DeleteSecurityGroup {
                name: og.name.clone(),
                id: og.id.clone(),
            },
            deps,
        );
    }
    plan
}

fn group_source(r: &provider_core::IngressRule) -> Option<String> {
    match &r.source {
        RuleSource::Group(id) => Some(id.clone()),
        RuleSource::Cidr(_) => None,
    }
}

/// An observed rule as a [`RuleRef`]: group sources of the cluster by name.
fn observed_rule_ref(r: &provider_core::IngressRule, names: &HashMap<&str, &str>) -> RuleRef {
    match &r.source {
        RuleSource::Group(id) => match names.get(id.as_str()) {
            Some(name) => RuleRef::Group {
                protocol: r.protocol,
                ports: r.ports,
                group: name.to_string(),
            },
            None => RuleRef::Rule(r.clone()),
        },
        RuleSource::Cidr(_) => RuleRef::Rule(r.clone()),
    }
}
