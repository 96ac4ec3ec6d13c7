//! What one action does: provider calls for the cloud's part, waits and hooks for the
//! steps of replacement and scaling. Names resolve to ids through the [`Registry`].

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use provider_core::{
    InstanceSpec, InstanceState, ListenerSpec, LoadBalancerSpec, MemberSpec, ProviderExt,
    ResourceKind, SecurityGroup, SecurityGroupSpec, TagFilter,
};

use super::{ready, Engine};
use crate::plan::{Action, Observed, TAG_CLUSTER, TAG_ROLE};
use crate::{Error, Result};

/// Names to provider ids, seeded from observed state and filled as resources appear;
/// the run's shared waits; and the groups made for the run before it started (the base
/// group the lease created), whose creates are done.
#[derive(Debug)]
pub(super) struct Registry(
    Mutex<HashMap<(ResourceKind, String), String>>,
    ready::Waits,
    HashSet<String>,
);

impl Registry {
    /// From the state the plan was made from; waits poll every `interval`.
    pub(super) fn from_observed(o: &Observed, interval: std::time::Duration) -> Self {
        let mut m = HashMap::new();
        for g in &o.groups {
            m.insert((ResourceKind::SecurityGroup, g.name.clone()), g.id.clone());
        }
        for i in &o.instances {
            m.insert((ResourceKind::Instance, i.name.clone()), i.id.clone());
        }
        // A slot's name resolves to the instance standing for it (a replacement's own
        // name differs from its slot's).
        for (slot, i) in crate::slot::canonical(&o.instances) {
            m.insert((ResourceKind::Instance, slot.to_string()), i.id.clone());
        }
        for v in &o.volumes {
            m.insert((ResourceKind::Volume, v.name.clone()), v.id.clone());
        }
        for f in &o.floating_ips {
            m.insert((ResourceKind::FloatingIp, f.name.clone()), f.id.clone());
        }
        for l in &o.load_balancers {
            m.insert((ResourceKind::LoadBalancer, l.name.clone()), l.id.clone());
        }
        Self(Mutex::new(m), ready::Waits::new(interval), HashSet::new())
    }

    /// Adds a group made for this run just before it (by the lease, from the same spec
    /// as the plan's create): that create uses it instead of asking the cloud.
    pub(super) fn with_made(mut self, made: Option<SecurityGroup>) -> Self {
        if let Some(g) = made {
            self.insert(ResourceKind::SecurityGroup, &g.name, &g.id);
            self.2.insert(g.name);
        }
        self
    }

    fn insert(&self, kind: ResourceKind, name: &str, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((kind, name.to_string()), id.to_string());
    }

    fn lookup(&self, kind: ResourceKind, name: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(kind, name.to_string()))
            .cloned()
    }

    fn id(&self, kind: ResourceKind, name: &str) -> Result<String> {
        self.lookup(kind, name).ok_or_else(|| Error::Unresolved {
            kind,
            name: name.to_string(),
        })
    }
}

/// Performs one action.
pub(super) async fn perform(engine: &Engine<'_>, action: &Action, reg: &Registry) -> Result<()> {
    use ResourceKind as K;
    let p = engine.provider.as_ref();
    match action {
        Action::CreateSecurityGroup {
            name,
            description,
            rules,
            tags,
        } => {
            if reg.2.contains(name) {
                return Ok(());
            }
            let g = p
                .create_security_group(
                    &SecurityGroupSpec::new(name.clone())
                        .with_description(description.clone())
                        .with_rules(rules.clone())
                        .with_tags(tags.clone()),
                )
                .await?;
            reg.insert(K::SecurityGroup, name, &g.id);
        }
        Action::AddSecurityGroupRules { group, rules } => {
            let gid = reg.id(K::SecurityGroup, group)?;
            for r in rules {
                let rule = match r.resolve(|n| reg.lookup(K::SecurityGroup, n)) {
                    Some(rule) => rule,
                    None => {
                        return Err(Error::Unresolved {
                            kind: K::SecurityGroup,
                            name: format!("{r:?}"),
                        })
                    }
                };
                p.add_security_group_rule(&gid, &rule).await?;
            }
        }
        Action::RemoveSecurityGroupRules { id, rules, .. } => {
            for r in rules {
                p.remove_security_group_rule(id, r).await?;
            }
        }
        Action::DeleteSecurityGroup { id, .. } => p.delete_security_group(id).await?,
        Action::CreateVolume { spec } => {
            let v = p.create_volume(spec).await?;
            reg.insert(K::Volume, &spec.name, &v.id);
        }
        Action::CreateInstances { instances } => {
            let mut specs = Vec::with_capacity(instances.len());
            for i in instances {
                let mut groups = Vec::with_capacity(i.groups.len());
                for g in &i.groups {
                    groups.push(reg.id(K::SecurityGroup, g)?);
                }
                let mut spec = InstanceSpec::new(
                    i.name.clone(),
                    i.availability_zone.clone(),
                    i.flavor.clone(),
                    i.image.clone(),
                )
                .with_security_groups(groups)
                .with_tags(i.tags.clone());
                // The plan holds the optional settings as options: copy them as they are.
                spec.network = i.network.clone();
                spec.subnet = i.subnet.clone();
                spec.keypair = i.keypair.clone();
                spec.user_data = i.user_data.clone();
                specs.push(spec);
            }
            let created = if specs.len() == 1 {
                vec![p.create_instance(&specs[0]).await?]
            } else {
                p.create_instances(&specs).await?
            };
            for inst in created {
                reg.insert(K::Instance, &inst.name, &inst.id);
            }
        }
        Action::AttachVolume { volume, instance } => {
            let v = reg.id(K::Volume, volume)?;
            let i = reg.id(K::Instance, instance)?;
            p.attach_volume(&v, &i).await?;
        }
        Action::DetachVolume { id, .. } => {
            p.detach_volume(id).await?;
        }
        Action::DeleteVolume { id, .. } => p.delete_volume(id).await?,
        Action::AllocateFloatingIp { spec } => {
            let f = p.allocate_floating_ip(spec).await?;
            reg.insert(K::FloatingIp, &spec.name, &f.id);
        }
        Action::AssociateFloatingIp {
            floating_ip,
            instance,
        } => {
            let f = reg.id(K::FloatingIp, floating_ip)?;
            let i = reg.id(K::Instance, instance)?;
            p.associate_floating_ip(&f, &i).await?;
        }
        Action::DisassociateFloatingIp { id, .. } => {
            p.disassociate_floating_ip(id).await?;
        }
        Action::ReleaseFloatingIp { id, .. } => p.release_floating_ip(id).await?,
        Action::CreateLoadBalancer { lb } => {
            let mut groups = Vec::new();
            for g in &lb.groups {
                groups.push(reg.id(K::SecurityGroup, g)?);
            }
            let mut member_ids = Vec::new();
            for m in &lb.members {
                member_ids.push(reg.id(K::Instance, m)?);
            }
            let listeners = lb.listeners.iter().map(|l| {
                ListenerSpec::new(l.protocol, l.port)
                    .with_health_check(l.health_check.clone())
                    .with_members(
                        member_ids
                            .iter()
                            .map(|id| MemberSpec::new(id.clone(), l.target_port)),
                    )
            });
            let mut spec = LoadBalancerSpec::new(lb.name.clone(), listeners)
                .with_security_groups(groups)
                .with_tags(lb.tags.clone());
            spec.subnet = lb.subnet.clone();
            let created = p.create_load_balancer(&spec).await?;
            reg.insert(K::LoadBalancer, &lb.name, &created.id);
        }
        Action::AddLoadBalancerMember {
            lb,
            port,
            instance,
            target_port,
        } => {
            let l = reg.id(K::LoadBalancer, lb)?;
            let i = reg.id(K::Instance, instance)?;
            p.add_load_balancer_member(&l, *port, &MemberSpec::new(i, *target_port))
                .await?;
        }
        Action::RemoveLoadBalancerMember {
            lb_id,
            port,
            member,
            ..
        } => {
            p.remove_load_balancer_member(lb_id, *port, member).await?;
        }
        Action::DeleteLoadBalancer { id, .. } => p.delete_load_balancer(id).await?,
        Action::DeleteInstance { id, .. } => p.delete_instance(id).await?,
        Action::AwaitReady { instance } => {
            let id = reg.id(K::Instance, instance)?;
            ready::wait_ready(engine, &reg.1, &id)
                .await
                .map_err(|why| not_ready(instance, why))?;
        }
        Action::OnReady { instance } => {
            let node = p.get_instance(&reg.id(K::Instance, instance)?).await?;
            engine
                .hooks
                .on_ready(&node)
                .await
                .map_err(|e| not_ready(instance, format!("on_ready hook: {e}")))?;
        }
        Action::AwaitMemberHealthy { lb, port, instance } => {
            let lb_id = reg.id(K::LoadBalancer, lb)?;
            let id = reg.id(K::Instance, instance)?;
            ready::wait_member_healthy(engine, &reg.1, lb, &lb_id, *port, &id)
                .await
                .map_err(|why| not_ready(instance, why))?;
        }
        Action::Drain { instance, served } => {
            let node = p.get_instance(&reg.id(K::Instance, instance)?).await?;
            if *served && !engine.rolling.drain.is_zero() {
                tokio::time::sleep(engine.rolling.drain).await;
            }
            engine
                .hooks
                .drain(&node)
                .await
                .map_err(|e| not_ready(instance, format!("drain hook: {e}")))?;
        }
        Action::CheckQuorum { instance, quorum } => {
            let old = p.get_instance(&reg.id(K::Instance, instance)?).await?;
            let mut masters = TagFilter::all();
            for key in [TAG_CLUSTER, TAG_ROLE] {
                if let Some(v) = old.tags.get(key) {
                    masters = masters.and(key, v);
                }
            }
            let others = p
                .list_instances(&masters)
                .await?
                .iter()
                .filter(|m| m.id != old.id && m.state == InstanceState::Running)
                .count();
            if others < *quorum {
                return Err(Error::Rolling {
                    node: instance.clone(),
                    message: format!(
                        "deleting it would leave {others} running master(s), below the quorum of {quorum}: it keeps running"
                    ),
                });
            }
        }
        Action::TagInstance {
            instance,
            set,
            remove,
        } => {
            let id = reg.id(K::Instance, instance)?;
            p.update_tags(K::Instance, &id, set, remove).await?;
        }
        Action::TagGroup { group, set, remove } => {
            let id = reg.id(K::SecurityGroup, group)?;
            p.update_tags(K::SecurityGroup, &id, set, remove).await?;
        }
    }
    Ok(())
}

/// A node that did not pass a readiness step: the verdict a replacement rolls back on.
fn not_ready(node: &str, why: String) -> Error {
    Error::NotReady {
        node: node.to_string(),
        message: why,
    }
}
