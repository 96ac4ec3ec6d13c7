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

/// The target group name of the listener on `port` of the LB named `aws_name`.
fn tg_name(aws_name: &str, port: u16) -> String {
    format!(
        "pl-{:012x}-{port}",
        tags::fnv64(aws_name.as_bytes()) & 0xffff_ffff_ffff
    )
}

fn elb_tags(tags: &Tags) -> Vec<ElbTag> {
    tags.iter()
        .map(|(k, v)| ElbTag::builder().key(k).value(v).build())
        .collect()
}

fn protocol(p: LbProtocol) -> ProtocolEnum {
    match p {
        LbProtocol::Tcp => ProtocolEnum::Tcp,
        LbProtocol::Http => ProtocolEnum::Http,
    }
}

fn secs(d: Duration, lo: i32, hi: i32) -> i32 {
    (d.as_secs().min(i32::MAX as u64) as i32).clamp(lo, hi)
}

/// The health check as ELBv2 reports it.
fn health_check_of(tg: &TargetGroup) -> HealthCheck {
    let protocol = match tg.health_check_protocol().map(|p| p.as_str()) {
        Some("HTTP") | Some("HTTPS") => HealthCheckProtocol::Http,
        _ => HealthCheckProtocol::Tcp,
    };
    let d = HealthCheck::default();
    let mut check = HealthCheck::new(protocol)
        .with_interval(
            tg.health_check_interval_seconds()
                .map_or(d.interval, |s| Duration::from_secs(s.max(0) as u64)),
        )
        .with_timeout(
            tg.health_check_timeout_seconds()
                .map_or(d.timeout, |s| Duration::from_secs(s.max(0) as u64)),
        )
        .with_healthy_threshold(
            tg.healthy_threshold_count()
                .map_or(d.healthy_threshold, |n| n.max(0) as u32),
        )
        .with_unhealthy_threshold(
            tg.unhealthy_threshold_count()
                .map_or(d.unhealthy_threshold, |n| n.max(0) as u32),
        );
    // ELBv2 answers with options: copy them as they are.
    check.port = tg.health_check_port().and_then(|p| p.parse().ok());
    check.path = match protocol {
        HealthCheckProtocol::Http => tg.health_check_path().map(str::to_string),
        HealthCheckProtocol::Tcp => None,
    };
    check
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
    async fn elb(&self, op: Operation, id: &str) -> Result<ElbLb> {
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

    /// The full record: listeners, their target groups and target health.
    async fn lb_record(
        &self,
        op: Operation,
        lb: &ElbLb,
        lb_tags: &[(String, String)],
    ) -> Result<LoadBalancer> {
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        let resource = format!("load balancer {arn}");
        let listeners = self
            .elb
            .describe_listeners()
            .load_balancer_arn(&arn)
            .send()
            .await
            .map_err(sdk(op, &resource))?;
        let groups = self
            .elb
            .describe_target_groups()
            .load_balancer_arn(&arn)
            .send()
            .await
            .map_err(sdk(op, &resource))?;
        let by_arn: BTreeMap<&str, &TargetGroup> = groups
            .target_groups()
            .iter()
            .filter_map(|g| g.target_group_arn().map(|a| (a, g)))
            .collect();
        let mut out = Vec::new();
        for l in listeners.listeners() {
            let port = l.port().unwrap_or(0).clamp(0, 65535) as u16;
            let proto = match l.protocol().map(|p| p.as_str()) {
                Some("HTTP") | Some("HTTPS") => LbProtocol::Http,
                _ => LbProtocol::Tcp,
            };
            let tg_arn = l
                .default_actions()
                .iter()
                .find_map(|a| a.target_group_arn())
                .map(str::to_string);
            let (health_check, members) = match tg_arn.as_deref().and_then(|a| by_arn.get(a)) {
                Some(tg) => (health_check_of(tg), self.members(op, tg).await?),
                None => (HealthCheck::default(), Vec::new()),
            };
            out.push(Listener {
                protocol: proto,
                port,
                pool: Pool {
                    health_check,
                    members,
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

    async fn members(&self, op: Operation, tg: &TargetGroup) -> Result<Vec<Member>> {
        let arn = tg.target_group_arn().unwrap_or_default();
        let health = self
            .elb
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(sdk(op, &format!("target group {arn}")))?;
        let mut out: Vec<Member> = health
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let t = d.target()?;
                Some(Member {
                    instance_id: t.id()?.to_string(),
                    port: t.port().or(tg.port()).unwrap_or(0).clamp(0, 65535) as u16,
                    health: match d
                        .target_health()
                        .and_then(|h| h.state())
                        .map(|s| s.as_str())
                    {
                        Some("healthy") => MemberHealth::Healthy,
                        Some("unhealthy") | Some("unhealthy.draining") => MemberHealth::Unhealthy,
                        Some("draining") => MemberHealth::Draining,
                        _ => MemberHealth::Unknown,
                    },
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.instance_id, a.port).cmp(&(&b.instance_id, b.port)));
        Ok(out)
    }

    async fn lb_full(&self, op: Operation, id: &str) -> Result<LoadBalancer> {
        let lb = self.elb(op, id).await?;
        let t = self.elb_tags_of(op, &[id.to_string()]).await?;
        self.lb_record(op, &lb, t.get(id).map(Vec::as_slice).unwrap_or_default())
            .await
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
        let arn = if let Some(lb) = existing.first() {
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
            arn
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
            for l in &spec.listeners {
                self.add_listener(op, &arn, &name, l, &kind, &spec.tags)
                    .await?;
            }
            arn
        };
        self.wait_lb_active(op, &arn).await
    }

    /// Creates (or finds) the target group of a listener, tagged like its load balancer
    /// (`tags`: the spec's), registers its members and creates the listener.
    async fn add_listener(
        &self,
        op: Operation,
        lb_arn: &str,
        aws_name: &str,
        l: &ListenerSpec,
        kind: &LoadBalancerTypeEnum,
        tags: &Tags,
    ) -> Result<()> {
        let vpc = self.vpc(op).await?;
        let tg_name = tg_name(aws_name, l.port);
        let resource = format!("target group {tg_name}");
        let hc = &l.health_check;
        let application = *kind == LoadBalancerTypeEnum::Application;
        let http_check = hc.protocol == HealthCheckProtocol::Http || application;
        let mut req = self
            .elb
            .create_target_group()
            .name(&tg_name)
            .set_tags((!tags.is_empty()).then(|| elb_tags(tags)))
            .protocol(protocol(l.protocol))
            .port(i32::from(l.members.first().map_or(l.port, |m| m.port)))
            .vpc_id(vpc)
            .target_type(TargetTypeEnum::Instance)
            .health_check_enabled(true)
            .health_check_protocol(if http_check {
                ProtocolEnum::Http
            } else {
                ProtocolEnum::Tcp
            })
            .health_check_port(
                hc.port
                    .map_or_else(|| "traffic-port".to_string(), |p| p.to_string()),
            )
            .health_check_interval_seconds(secs(hc.interval, 5, 300))
            .health_check_timeout_seconds(secs(hc.timeout, 2, 120))
            .healthy_threshold_count((hc.healthy_threshold.min(10) as i32).max(2))
            .unhealthy_threshold_count((hc.unhealthy_threshold.min(10) as i32).max(2));
        if http_check {
            req = req.health_check_path(hc.path.clone().unwrap_or_else(|| "/".into()));
            if hc.protocol == HealthCheckProtocol::Tcp {
                // An ALB cannot check TCP: any HTTP answer below 500 means alive.
                req = req.matcher(Matcher::builder().http_code("200-499").build());
            }
        }
        let tg_arn = match req.send().await {
            Ok(out) => out
                .target_groups()
                .first()
                .and_then(|g| g.target_group_arn())
                .map(str::to_string)
                .ok_or_else(|| Error::transient(op, "CreateTargetGroup answered no ARN"))?,
            Err(e) => {
                let e = AwsError::from_sdk(e);
                if !e.code.starts_with("DuplicateTargetGroupName") {
                    return Err(e.classify(op, &resource));
                }
                self.elb
                    .describe_target_groups()
                    .names(&tg_name)
                    .send()
                    .await
                    .map_err(sdk(op, &resource))?
                    .target_groups()
                    .first()
                    .and_then(|g| g.target_group_arn())
                    .map(str::to_string)
                    .ok_or_else(|| Error::not_found(op, &resource))?
            }
        };
        self.elb
            .modify_target_group_attributes()
            .target_group_arn(&tg_arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value(self.config.drain_period.as_secs().to_string())
                    .build(),
            )
            .send()
            .await
            .map_err(sdk(op, &resource))?;
        if !l.members.is_empty() {
            self.elb
                .register_targets()
                .target_group_arn(&tg_arn)
                .set_targets(Some(
                    l.members
                        .iter()
                        .map(|m| {
                            TargetDescription::builder()
                                .id(&m.instance_id)
                                .port(i32::from(m.port))
                                .build()
                        })
                        .collect(),
                ))
                .send()
                .await
                .map_err(sdk(op, &resource))?;
        }
        let listener = self
            .elb
            .create_listener()
            .load_balancer_arn(lb_arn)
            .protocol(protocol(l.protocol))
            .port(i32::from(l.port))
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn(&tg_arn)
                    .build(),
            )
            .send()
            .await;
        if let Err(e) = listener {
            let e = AwsError::from_sdk(e);
            if !e.code.starts_with("DuplicateListener") {
                return Err(e.classify(op, &format!("listener {} of {lb_arn}", l.port)));
            }
        }
        Ok(())
    }

    async fn wait_lb_active(&self, op: Operation, arn: &str) -> Result<LoadBalancer> {
        let resource = format!("load balancer {arn}");
        let lb = self
            .eventually(op, &resource, || {
                self.config.poller.until(
                    op,
                    &resource,
                    "active",
                    self.config.timeouts.load_balancer,
                    || async {
                        let lb = self.elb(op, arn).await?;
                        match state_of(&lb) {
                            LoadBalancerState::Active => Ok(Poll::Ready(lb)),
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
        let t = self.elb_tags_of(op, &[arn.to_string()]).await?;
        self.lb_record(op, &lb, t.get(arn).map(Vec::as_slice).unwrap_or_default())
            .await
    }

    pub(crate) async fn get_lb(&self, id: &str) -> Result<LoadBalancer> {
        self.lb_full(Operation::GetLoadBalancer, id).await
    }

    /// Every load balancer of the region, page by page.
    async fn all_lbs(&self, op: Operation) -> Result<Vec<ElbLb>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .elb
                .describe_load_balancers()
                .page_size(self.config.page_size.clamp(1, 400) as i32)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(sdk(op, "load balancers"))?;
            out.extend(page.load_balancers().iter().cloned());
            marker = page
                .next_marker()
                .filter(|m| !m.is_empty())
                .map(str::to_string);
            if marker.is_none() {
                return Ok(out);
            }
        }
    }

    pub(crate) async fn list_lbs(&self, tf: &TagFilter) -> Result<Vec<LoadBalancer>> {
        let op = Operation::ListLoadBalancers;
        let lbs = self.all_lbs(op).await?;
        let arns: Vec<String> = lbs
            .iter()
            .filter_map(|l| l.load_balancer_arn().map(str::to_string))
            .collect();
        let all_tags = self.elb_tags_of(op, &arns).await?;
        let mut out = Vec::new();
        for lb in &lbs {
            let arn = lb.load_balancer_arn().unwrap_or_default();
            let t = all_tags.get(arn).map(Vec::as_slice).unwrap_or_default();
            let user = tags::user_tags(t.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            if tf.matches(&user) {
                out.push(self.lb_record(op, lb, t).await?);
            }
        }
        Ok(out)
    }

    /// The target group of the listener on `port`.
    async fn listener_group(&self, op: Operation, lb_id: &str, port: u16) -> Result<String> {
        let resource = format!("load balancer {lb_id}");
        let out = self
            .elb
            .describe_listeners()
            .load_balancer_arn(lb_id)
            .send()
            .await
            .map_err(sdk(op, &resource))?;
        out.listeners()
            .iter()
            .find(|l| l.port() == Some(i32::from(port)))
            .and_then(|l| {
                l.default_actions()
                    .iter()
                    .find_map(|a| a.target_group_arn())
            })
            .map(str::to_string)
            .ok_or_else(|| {
                Error::invalid(
                    op,
                    "listener_port",
                    format!("load balancer {lb_id} has no listener on port {port}"),
                )
            })
    }

    pub(crate) async fn change_member(
        &self,
        op: Operation,
        lb_id: &str,
        port: u16,
        member: &MemberSpec,
        add: bool,
    ) -> Result<LoadBalancer> {
        member.validate(op)?;
        self.elb(op, lb_id).await?;
        let tg = self.listener_group(op, lb_id, port).await?;
        let target = TargetDescription::builder()
            .id(&member.instance_id)
            .port(i32::from(member.port))
            .build();
        let resource = format!("load balancer {lb_id}");
        if add {
            // RegisterTargets of an unknown instance succeeds on moto; AWS refuses.
            match self.ec2_instance(op, &member.instance_id).await {
                Err(Error::NotFound { .. }) => {
                    return Err(Error::invalid(
                        op,
                        "member.instance_id",
                        format!("no instance with id {:?}", member.instance_id),
                    ))
                }
                r => {
                    r?;
                }
            }
            self.elb
                .register_targets()
                .target_group_arn(&tg)
                .targets(target)
                .send()
                .await
                .map_err(sdk(op, &resource))?;
        } else if let Err(e) = self
            .elb
            .deregister_targets()
            .target_group_arn(&tg)
            .targets(target)
            .send()
            .await
        {
            let e = AwsError::from_sdk(e);
            // Deregistering what is not registered: already absent.
            if e.code != "InvalidTarget" {
                return Err(e.classify(op, &resource));
            }
        }
        self.lb_full(op, lb_id).await
    }

    pub(crate) async fn delete_lb(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteLoadBalancer;
        let resource = format!("load balancer {id}");
        let lb = match self.elb(op, id).await {
            Err(Error::NotFound { .. }) => return Ok(()),
            r => r?,
        };
        let aws_name = lb.load_balancer_name().unwrap_or_default().to_string();
        let mut groups: BTreeSet<String> = self
            .elb
            .describe_target_groups()
            .load_balancer_arn(id)
            .send()
            .await
            .map_err(sdk(op, &resource))?
            .target_groups()
            .iter()
            .filter_map(|g| g.target_group_arn().map(str::to_string))
            .collect();
        // Target groups of listeners a crashed create never made are not attached:
        // find them by their names.
        let t = self.elb_tags_of(op, &[id.to_string()]).await?;
        let ports: Vec<u16> = t
            .get(id)
            .and_then(|t| {
                tags::tag_value(t.iter().map(|(k, v)| (k.as_str(), v.as_str())), PORTS_TAG)
            })
            .map(|p| p.split(',').filter_map(|s| s.parse().ok()).collect())
            .unwrap_or_default();
        if !ports.is_empty() {
            let names: Vec<String> = ports.iter().map(|p| tg_name(&aws_name, *p)).collect();
            for n in names {
                if let Ok(out) = self.elb.describe_target_groups().names(&n).send().await {
                    groups.extend(
                        out.target_groups()
                            .iter()
                            .filter(|g| g.load_balancer_arns().is_empty())
                            .filter_map(|g| g.target_group_arn().map(str::to_string)),
                    );
                }
            }
        }
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
        self.config
            .poller
            .until(
                op,
                &resource,
                "deleted",
                self.config.timeouts.delete,
                || async {
                    match self.elb(op, id).await {
                        Err(Error::NotFound { .. }) => Ok(Poll::Ready(())),
                        Err(e) => Err(e),
                        Ok(_) => Ok(Poll::Pending("deleting".into())),
                    }
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

    /// The first load balancer that uses security group `group_id`.
    pub(crate) async fn load_balancer_using_group(
        &self,
        op: Operation,
        group_id: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .all_lbs(op)
            .await?
            .iter()
            .find(|l| l.security_groups().iter().any(|g| g == group_id))
            .and_then(|l| l.load_balancer_arn().map(str::to_string)))
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
        assert!(tg_name(&aws_lb_name("x"), 65535).len() <= 32);
    }
}
