//! Listeners, their target groups and the targets registered in them (members).

use super::*;

/// The target group name of the listener on `port` of the LB named `aws_name`.
pub(super) fn tg_name(aws_name: &str, port: u16) -> String {
    format!(
        "pl-{:012x}-{port}",
        tags::fnv64(aws_name.as_bytes()) & 0xffff_ffff_ffff
    )
}

/// The listener port of target group `tg` if it is named for the LB named `aws_name`
/// (see [`tg_name`]).
pub(super) fn listener_port(aws_name: &str, tg: &str) -> Option<u16> {
    let port: u16 = tg.rsplit_once('-')?.1.parse().ok()?;
    (tg_name(aws_name, port) == tg).then_some(port)
}

pub(super) fn protocol(p: LbProtocol) -> ProtocolEnum {
    match p {
        LbProtocol::Tcp => ProtocolEnum::Tcp,
        LbProtocol::Http => ProtocolEnum::Http,
    }
}

pub(super) fn secs(d: Duration, lo: i32, hi: i32) -> i32 {
    (d.as_secs().min(i32::MAX as u64) as i32).clamp(lo, hi)
}

/// The health check as ELBv2 reports it.
pub(super) fn health_check_of(tg: &TargetGroup) -> HealthCheck {
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

impl AwsProvider {
    pub(super) async fn members(&self, op: Operation, tg: &TargetGroup) -> Result<Vec<Member>> {
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

    /// Creates (or finds) the target group of a listener, tagged like its load balancer
    /// (`tags`: the spec's), registers its members and creates the listener; answers
    /// the target group as ELBv2 described it.
    pub(super) async fn add_listener(
        &self,
        op: Operation,
        lb_arn: &str,
        aws_name: &str,
        l: &ListenerSpec,
        kind: &LoadBalancerTypeEnum,
        tags: &Tags,
    ) -> Result<TargetGroup> {
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
        let tg = match req.send().await {
            Ok(out) => out.target_groups().first().cloned(),
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
                    .cloned()
            }
        };
        let tg = tg
            .filter(|g| g.target_group_arn().is_some())
            .ok_or_else(|| Error::transient(op, format!("{resource}: no ARN answered")))?;
        let tg_arn = tg.target_group_arn().unwrap_or_default().to_string();
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
        Ok(tg)
    }

    /// The target group of the listener on `port`.
    pub(super) async fn listener_group(
        &self,
        op: Operation,
        lb_id: &str,
        port: u16,
    ) -> Result<String> {
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
}
