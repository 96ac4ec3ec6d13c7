//! Load balancers = ELBv2: a network load balancer when the listeners are TCP, an
//! application load balancer when they are HTTP (one protocol per load balancer).
//! Each listener forwards to its own target group (target type `instance`) with the
//! listener's health check; members are registered targets; the target groups'
//! deregistration delay is the drain period ([`crate::AwsBuilder::with_drain_period`]).
//!
//! Mapping limits:
//! - The id of a load balancer is its ARN.
//! - ELBv2 names are at most 32 letters, digits and hyphens: a longer or otherwise
//!   unfit Plinth name is shortened to a prefix plus a hash (the `Name` tag keeps the
//!   Plinth name). Target groups are named `pl-<hash of the LB name>-<port>`.
//! - Health checks are clamped to what ELBv2 accepts (interval 5-300 s, timeout
//!   2-120 s, thresholds 2-10); an application LB checks over HTTP, so a TCP check on
//!   an HTTP listener becomes `GET /` accepting any answer below 500.
//! - ELBv2 has no server-side tag filter: lists describe the load balancers page by
//!   page and read their tags 20 at a time (`DescribeTags`), then filter.
//! - AWS refuses a second load balancer of the same name; moto makes one. The provider
//!   looks the name up first: same spec returns the existing one, another spec is
//!   `Conflict`.

mod listeners;

use listeners::{health_check_of, listener_port};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancer as ElbLb, LoadBalancerSchemeEnum, LoadBalancerTypeEnum,
    Matcher, ProtocolEnum, Tag as ElbTag, TargetDescription, TargetGroup, TargetGroupAttribute,
    TargetTypeEnum,
};
use provider_core::wait::Poll;
use provider_core::{
    Error, HealthCheck, HealthCheckProtocol, LbProtocol, Listener, ListenerSpec, LoadBalancer,
    LoadBalancerSpec, LoadBalancerState, Member, MemberHealth, MemberSpec, Operation, Pool, Result,
    TagFilter, Tags,
};

use crate::error::{sdk, AwsError};
use crate::tags::{self, NAME_TAG, PORTS_TAG, SPEC_HASH_TAG};
use crate::AwsProvider;

/// What creating a load balancer answered: its tags and its target groups.
type Made = (Vec<(String, String)>, Vec<TargetGroup>);

/// Most ARNs per `DescribeTags` call.
const TAGS_PER_CALL: usize = 20;

/// The ELBv2 name of a Plinth load balancer name.
pub fn aws_lb_name(name: &str) -> String {
    let fits = name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with("internal-");
    if fits {
        return name.to_string();
    }
    let prefix: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(23)
        .collect();
    let prefix = prefix.trim_matches('-');
    let prefix = prefix
        .strip_prefix("internal")
        .unwrap_or(prefix)
        .trim_matches('-');
    let hash = format!("{:08x}", tags::fnv64(name.as_bytes()) as u32);
    if prefix.is_empty() {
        format!("pl-{hash}")
    } else {
        format!("{prefix}-{hash}")
    }
}

fn elb_tags(tags: &Tags) -> Vec<ElbTag> {
    tags.iter()
        .map(|(k, v)| ElbTag::builder().key(k).value(v).build())
        .collect()
}

fn state_of(lb: &ElbLb) -> LoadBalancerState {
    match lb.state().and_then(|s| s.code()).map(|c| c.as_str()) {
        Some("active") | Some("active_impaired") => LoadBalancerState::Active,
        Some("failed") => LoadBalancerState::Error,
        _ => LoadBalancerState::Pending,
    }
}

impl AwsProvider {
    /// Describes one LB by ARN; `NotFound` when missing (or not an ARN at all).
    pub(crate) async fn elb(&self, op: Operation, id: &str) -> Result<ElbLb> {
        let resource = format!("load balancer {id}");
        if !id.starts_with("arn:") {
            return Err(Error::not_found(op, resource));
        }
        let out = self
            .elb
            .describe_load_balancers()
            .load_balancer_arns(id)
            .send()
            .await
            .map_err(sdk(op, &resource))?;
        out.load_balancers()
            .first()
            .cloned()
            .ok_or_else(|| Error::not_found(op, resource))
    }

    /// Tags of many ARNs, [`TAGS_PER_CALL`] per call.
    async fn elb_tags_of(
        &self,
        op: Operation,
        arns: &[String],
    ) -> Result<BTreeMap<String, Vec<(String, String)>>> {
        let mut out = BTreeMap::new();
        for chunk in arns.chunks(TAGS_PER_CALL) {
            let page = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(sdk(op, "load balancer tags"))?;
            for d in page.tag_descriptions() {
                if let Some(arn) = d.resource_arn() {
                    out.insert(
                        arn.to_string(),
                        d.tags()
                            .iter()
                            .map(|t| {
                                (
                                    t.key().unwrap_or_default().to_string(),
                                    t.value().unwrap_or_default().to_string(),
                                )
                            })
                            .collect(),
                    );
                }
            }
        }
        Ok(out)
    }

    /// The target groups of the load balancers `arns`: by ARN for one, the region's
    /// list for several (one listing, not one call each). `NotFound` when a single
    /// load balancer does not exist.
    async fn target_groups_of(&self, op: Operation, arns: &[String]) -> Result<Vec<TargetGroup>> {
        match arns {
            [] => Ok(Vec::new()),
            [arn] => Ok(self
                .elb
                .describe_target_groups()
                .load_balancer_arn(arn)
                .send()
                .await
                .map_err(sdk(op, &format!("load balancer {arn}")))?
                .target_groups()
                .to_vec()),
            _ => self.all_target_groups(op).await,
        }
    }

    /// Every target group of the region, page by page.
    async fn all_target_groups(&self, op: Operation) -> Result<Vec<TargetGroup>> {
        self.elb
            .describe_target_groups()
            .page_size(self.config.page_size.clamp(1, 400) as i32)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(sdk(op, "target groups"))
    }

    /// The full record: listeners, their target groups and target health. `groups` holds
    /// (at least) the LB's target groups: a listener is a target group the LB forwards
    /// to (ELBv2 lists the LBs of each group), on the port its name ends with (see
    /// [`tg_name`]), so no `DescribeListeners` is needed.
    async fn lb_record(
        &self,
        op: Operation,
        lb: &ElbLb,
        lb_tags: &[(String, String)],
        groups: &[TargetGroup],
    ) -> Result<LoadBalancer> {
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        let attached: Vec<&TargetGroup> = groups
            .iter()
            .filter(|g| g.load_balancer_arns().contains(&arn))
            .collect();
        self.lb_record_of(op, lb, lb_tags, &attached).await
    }

    /// The full record from the LB's target groups (`groups`: those it forwards to).
    async fn lb_record_of(
        &self,
        op: Operation,
        lb: &ElbLb,
        lb_tags: &[(String, String)],
        groups: &[&TargetGroup],
    ) -> Result<LoadBalancer> {
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        let aws_name = lb.load_balancer_name().unwrap_or_default();
        let mut out = Vec::new();
        for tg in groups {
            let Some(port) = tg
                .target_group_name()
                .and_then(|n| listener_port(aws_name, n))
            else {
                continue;
            };
            let proto = match tg.protocol().map(|p| p.as_str()) {
                Some("HTTP") | Some("HTTPS") => LbProtocol::Http,
                _ => LbProtocol::Tcp,
            };
            out.push(Listener {
                protocol: proto,
                port,
                pool: Pool {
                    health_check: health_check_of(tg),
                    members: self.members(op, tg).await?,
                },
            });
        }
        out.sort_by_key(|l| l.port);
        let pairs = || lb_tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        Ok(LoadBalancer {
            id: arn,
            name: tags::tag_value(pairs(), NAME_TAG)
                .or_else(|| lb.load_balancer_name().map(str::to_string))
                .unwrap_or_default(),
            state: state_of(lb),
            address: lb.dns_name().map(str::to_string),
            security_groups: lb.security_groups().to_vec(),
            listeners: out,
            tags: tags::user_tags(pairs()),
        })
    }

    /// The full record of one load balancer from its description.
    async fn lb_described(&self, op: Operation, lb: &ElbLb) -> Result<LoadBalancer> {
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        let arns = [arn];
        let (t, groups) = futures::try_join!(
            self.elb_tags_of(op, &arns),
            self.target_groups_of(op, &arns)
        )?;
        let t = t.get(&arns[0]).map(Vec::as_slice).unwrap_or_default();
        self.lb_record(op, lb, t, &groups).await
    }

    async fn lb_full(&self, op: Operation, id: &str) -> Result<LoadBalancer> {
        let lb = self.elb(op, id).await?;
        self.lb_described(op, &lb).await
    }

    /// Checks what ELBv2 needs beyond the spec's own validation; answers the LB type.
    async fn check_lb(
        &self,
        op: Operation,
        spec: &LoadBalancerSpec,
    ) -> Result<LoadBalancerTypeEnum> {
        spec.validate()?;
        tags::check_user_tags(op, "spec.tags", &spec.tags)?;
        let first = spec
            .listeners
            .first()
            .map(|l| l.protocol)
            .unwrap_or(LbProtocol::Tcp);
        if let Some(i) = spec.listeners.iter().position(|l| l.protocol != first) {
            return Err(Error::invalid(
                op,
                format!("spec.listeners[{i}].protocol"),
                "an AWS load balancer speaks TCP (network LB) or HTTP (application LB), not both: use one protocol per load balancer",
            ));
        }
        if !spec.security_groups.is_empty() {
            let out = self
                .ec2
                .describe_security_groups()
                .filters(tags::filter(
                    "group-id",
                    spec.security_groups.iter().cloned(),
                ))
                .send()
                .await
                .map_err(sdk(op, "security groups"))?;
            let found: BTreeSet<&str> = out
                .security_groups()
                .iter()
                .filter_map(|g| g.group_id())
                .collect();
            for (i, g) in spec.security_groups.iter().enumerate() {
                if !found.contains(g.as_str()) {
                    return Err(Error::invalid(
                        op,
                        format!("spec.security_groups[{i}]"),
                        format!("no security group with id {g:?}: create it first"),
                    ));
                }
            }
        }
        // RegisterTargets of unknown instances succeeds on moto; AWS refuses.
        let ids: Vec<String> = spec
            .listeners
            .iter()
            .flat_map(|l| l.members.iter().map(|m| m.instance_id.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !ids.is_empty() {
            let seen = self.instances_by_id(op, &ids).await?;
            for (i, l) in spec.listeners.iter().enumerate() {
                for (j, m) in l.members.iter().enumerate() {
                    if seen
                        .get(&m.instance_id)
                        .is_none_or(|x| crate::instances::record(x).is_none())
                    {
                        return Err(Error::invalid(
                            op,
                            format!("spec.listeners[{i}].members[{j}].instance_id"),
                            format!("no instance with id {:?}", m.instance_id),
                        ));
                    }
                }
            }
        }
        Ok(match first {
            LbProtocol::Tcp => LoadBalancerTypeEnum::Network,
            LbProtocol::Http => LoadBalancerTypeEnum::Application,
        })
    }

    pub(crate) async fn create_lb(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        let op = Operation::CreateLoadBalancer;
        let kind = self.check_lb(op, spec).await?;
        let hash = tags::spec_hash(spec);
        let name = aws_lb_name(&spec.name);
        let resource = format!("load balancer {}", spec.name);

        // Look up by name first (moto makes a second LB of the same name).
        let existing = match self.elb.describe_load_balancers().names(&name).send().await {
            Ok(out) => out.load_balancers().to_vec(),
            Err(e) => {
                let e = AwsError::from_sdk(e);
                if e.is_not_found() {
                    Vec::new()
                } else {
                    return Err(e.classify(op, &resource));
                }
            }
        };
        let (arn, made) = if let Some(lb) = existing.first() {
            let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
            let t = self.elb_tags_of(op, std::slice::from_ref(&arn)).await?;
            let theirs = t.get(&arn).and_then(|t| {
                tags::tag_value(
                    t.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    SPEC_HASH_TAG,
                )
            });
            if theirs.as_deref() != Some(hash.as_str()) {
                return Err(Error::conflict(
                    op,
                    format!("load balancer {} ({arn})", spec.name),
                    "a load balancer of this name exists with a different spec: delete it or choose another name",
                ));
            }
            // A create that stopped half-way left listeners out: add them.
            let have: BTreeSet<u16> = self
                .elb
                .describe_listeners()
                .load_balancer_arn(&arn)
                .send()
                .await
                .map_err(sdk(op, &resource))?
                .listeners()
                .iter()
                .filter_map(|l| l.port().map(|p| p.clamp(0, 65535) as u16))
                .collect();
            for l in spec.listeners.iter().filter(|l| !have.contains(&l.port)) {
                self.add_listener(op, &arn, &name, l, &kind, &spec.tags)
                    .await?;
            }
            (arn, None)
        } else {
            let subnets = self.lb_subnets(op, spec.subnet.as_deref()).await?;
            let mut all = tags::create_tags(&spec.name, &spec.tags, &hash);
            all.insert(
                PORTS_TAG.into(),
                spec.listeners
                    .iter()
                    .map(|l| l.port.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            let scheme = if self.config.internal_load_balancers {
                LoadBalancerSchemeEnum::Internal
            } else {
                LoadBalancerSchemeEnum::InternetFacing
            };
            let out = self
                .elb
                .create_load_balancer()
                .name(&name)
                .set_subnets(Some(subnets))
                .set_security_groups(
                    (!spec.security_groups.is_empty()).then(|| spec.security_groups.clone()),
                )
                .scheme(scheme)
                .r#type(kind.clone())
                .set_tags(Some(elb_tags(&all)))
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk(e).with_input(
                        op,
                        &resource,
                        &[
                            ("InvalidSubnet", "spec.subnet"),
                            ("InvalidSecurityGroup", "spec.security_groups"),
                        ],
                    )
                })?;
            let arn = out
                .load_balancers()
                .first()
                .and_then(|l| l.load_balancer_arn())
                .ok_or_else(|| Error::transient(op, "CreateLoadBalancer answered no ARN"))?
                .to_string();
            let mut groups = Vec::with_capacity(spec.listeners.len());
            for l in &spec.listeners {
                groups.push(
                    self.add_listener(op, &arn, &name, l, &kind, &spec.tags)
                        .await?,
                );
            }
            let made: Vec<(String, String)> = all.into_iter().collect();
            (arn, Some((made, groups)))
        };
        self.wait_lb_active(op, &arn, made).await
    }

    /// Waits for the LB to be active; answers its record. `made`: the tags and target
    /// groups (as ELBv2 answered their creation) of an LB this call created, whose
    /// record then needs only its members' health read.
    async fn wait_lb_active(
        &self,
        op: Operation,
        arn: &str,
        made: Option<Made>,
    ) -> Result<LoadBalancer> {
        let resource = format!("load balancer {arn}");
        let lb = self
            .eventually(op, &resource, || {
                self.watches.lbs.until(
                    op,
                    &resource,
                    "active",
                    self.config.timeouts.load_balancer,
                    arn,
                    |ids| self.lbs_by_id(op, ids),
                    |lb| {
                        let lb = lb.ok_or_else(|| Error::not_found(op, &resource))?;
                        match state_of(lb) {
                            LoadBalancerState::Active => Ok(Poll::Ready(lb.clone())),
                            LoadBalancerState::Error => Err(Error::api(
                                op,
                                None,
                                "failed",
                                format!("load balancer {arn} failed: delete it and recreate it"),
                            )),
                            s => Ok(Poll::Pending(format!("{s:?}"))),
                        }
                    },
                )
            })
            .await?;
        match made {
            Some((tags, groups)) => {
                let groups: Vec<&TargetGroup> = groups.iter().collect();
                self.lb_record_of(op, &lb, &tags, &groups).await
            }
            None => self.lb_described(op, &lb).await,
        }
    }

    pub(crate) async fn get_lb(&self, id: &str) -> Result<LoadBalancer> {
        self.lb_full(Operation::GetLoadBalancer, id).await
    }

    /// Every load balancer of the region, page by page.
    pub(crate) async fn all_lbs(&self, op: Operation) -> Result<Vec<ElbLb>> {
        self.elb
            .describe_load_balancers()
            .page_size(self.config.page_size.clamp(1, 400) as i32)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(sdk(op, "load balancers"))
    }

    pub(crate) async fn list_lbs(&self, tf: &TagFilter) -> Result<Vec<LoadBalancer>> {
        let op = Operation::ListLoadBalancers;
        let lbs = self.all_lbs(op).await?;
        let arns: Vec<String> = lbs
            .iter()
            .filter_map(|l| l.load_balancer_arn().map(str::to_string))
            .collect();
        let all_tags = self.elb_tags_of(op, &arns).await?;
        let tags_of = |lb: &ElbLb| {
            all_tags
                .get(lb.load_balancer_arn().unwrap_or_default())
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        let matching: Vec<&ElbLb> = lbs
            .iter()
            .filter(|lb| {
                let t = tags_of(lb);
                tf.matches(&tags::user_tags(
                    t.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                ))
            })
            .collect();
        let arns: Vec<String> = matching
            .iter()
            .filter_map(|l| l.load_balancer_arn().map(str::to_string))
            .collect();
        let groups = match self.target_groups_of(op, &arns).await {
            // The one LB went since it was listed: the region's list then.
            Err(Error::NotFound { .. }) => self.all_target_groups(op).await?,
            r => r?,
        };
        let mut out = Vec::new();
        for lb in matching {
            out.push(self.lb_record(op, lb, tags_of(lb), &groups).await?);
        }
        Ok(out)
    }

    pub(crate) async fn delete_lb(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteLoadBalancer;
        let resource = format!("load balancer {id}");
        // An id that is not a load balancer ARN names nothing: gone already.
        let Some(aws_name) = id
            .strip_prefix("arn:")
            .and_then(|rest| rest.split_once(":loadbalancer/"))
            .and_then(|(_, path)| path.split('/').nth(1))
            .filter(|n| !n.is_empty())
            .map(str::to_string)
        else {
            return Ok(());
        };
        // Its target groups: those it forwards to, and those of listeners a crashed
        // create never made (not attached; found by their names). One listing for both.
        let groups: BTreeSet<String> = self
            .all_target_groups(op)
            .await?
            .iter()
            .filter(|g| {
                let lbs = g.load_balancer_arns();
                let ours = g
                    .target_group_name()
                    .and_then(|n| listener_port(&aws_name, n))
                    .is_some();
                lbs.iter().any(|a| a == id) || (ours && lbs.is_empty())
            })
            .filter_map(|g| g.target_group_arn().map(str::to_string))
            .collect();
        if let Err(e) = self
            .elb
            .delete_load_balancer()
            .load_balancer_arn(id)
            .send()
            .await
        {
            let e = AwsError::from_sdk(e);
            if !e.is_not_found() {
                return Err(e.classify(op, &resource));
            }
        }
        self.watches
            .lbs
            .until(
                op,
                &resource,
                "deleted",
                self.config.timeouts.delete,
                id,
                |ids| self.lbs_by_id(op, ids),
                |lb| {
                    Ok(match lb {
                        None => Poll::Ready(()),
                        Some(_) => Poll::Pending("deleting".into()),
                    })
                },
            )
            .await?;
        for g in groups {
            let tg_resource = format!("target group {g}");
            // ResourceInUse while the LB's listeners are still going away: wait.
            self.config
                .poller
                .until(
                    op,
                    &tg_resource,
                    "deleted",
                    self.config.timeouts.delete,
                    || async {
                        match self
                            .elb
                            .delete_target_group()
                            .target_group_arn(&g)
                            .send()
                            .await
                        {
                            Ok(_) => Ok(Poll::Ready(())),
                            Err(e) => {
                                let e = AwsError::from_sdk(e);
                                if e.is_not_found() {
                                    Ok(Poll::Ready(()))
                                } else if e.code == "ResourceInUse" {
                                    Ok(Poll::Pending("in use".into()))
                                } else {
                                    Err(e.classify(op, &tg_resource))
                                }
                            }
                        }
                    },
                )
                .await?;
        }
        Ok(())
    }

    /// Sets and removes tags of a load balancer.
    pub(crate) async fn tag_lb(&self, id: &str, set: &Tags, remove: &[String]) -> Result<()> {
        let op = Operation::UpdateTags;
        let resource = format!("load balancer {id}");
        self.elb(op, id).await?;
        if !set.is_empty() {
            self.elb
                .add_tags()
                .resource_arns(id)
                .set_tags(Some(elb_tags(set)))
                .send()
                .await
                .map_err(sdk(op, &resource))?;
        }
        if !remove.is_empty() {
            self.elb
                .remove_tags()
                .resource_arns(id)
                .set_tag_keys(Some(remove.to_vec()))
                .send()
                .await
                .map_err(sdk(op, &resource))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lb_names_fit_elbv2() {
        assert_eq!(aws_lb_name("pc-1234abcd-lb"), "pc-1234abcd-lb");
        for n in [
            "a.name_with.dots",
            "a-very-long-name-that-is-longer-than-32-characters",
            "internal-api",
            "-x",
        ] {
            let a = aws_lb_name(n);
            assert!(a.len() <= 32, "{a}");
            assert!(
                a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{a}"
            );
            assert!(
                !a.starts_with('-') && !a.ends_with('-') && !a.starts_with("internal-"),
                "{a}"
            );
        }
        assert_ne!(aws_lb_name("a.b"), aws_lb_name("a_b"));
        assert!(listeners::tg_name(&aws_lb_name("x"), 65535).len() <= 32);
        let tg = listeners::tg_name(&aws_lb_name("x"), 8080);
        assert_eq!(listeners::listener_port(&aws_lb_name("x"), &tg), Some(8080));
        assert_eq!(listeners::listener_port(&aws_lb_name("y"), &tg), None);
    }
}
