//! Checks of security groups and their rules.

use std::collections::BTreeSet;

use super::ctx::*;
use super::expect::*;
use super::fixtures::*;
use super::CheckResult;
use crate::model::*;
use crate::ProviderExt;

fn sorted(rules: &[IngressRule]) -> Vec<IngressRule> {
    let mut r = rules.to_vec();
    r.sort();
    r
}

fn count(rules: &[IngressRule], rule: &IngressRule) -> usize {
    rules.iter().filter(|r| *r == rule).count()
}

check! {
    /// Creates a group with rules; the record, `get_security_group` and
    /// `list_security_groups` show its name, description, rules and tags; after
    /// `delete_security_group` it is `NotFound` and no longer listed.
    security_group_lifecycle => security_group_lifecycle_body
}

async fn security_group_lifecycle_body(cx: &Ctx<'_>) -> CheckResult {
    let mut spec = cx.sg_spec("sg");
    spec.rules = vec![
        IngressRule::tcp(cx.cfg.member_port, net(1)),
        IngressRule::new(Protocol::Tcp, RuleSource::Cidr(net(2))).with_ports(PortRange {
            from: 30000,
            to: 30010,
        }),
    ];
    let g = cx.create_sg(&spec).await?;
    ensure!(
        g.name == spec.name,
        "create_security_group returned name {:?}, asked for {:?}",
        g.name,
        spec.name
    );
    ensure!(
        g.description == spec.description,
        "create_security_group returned description {:?}, asked for {:?}",
        g.description,
        spec.description
    );
    ensure!(
        sorted(&g.rules) == sorted(&spec.rules),
        "create_security_group returned rules {:?}, asked for {:?}",
        g.rules,
        spec.rules
    );
    ensure_tags(&spec.tags, &g.tags, "create_security_group")?;

    let got =
        cx.p.get_security_group(&g.id)
            .await
            .step("get_security_group")?;
    ensure!(
        got.id == g.id,
        "get_security_group({}) returned group {}",
        g.id,
        got.id
    );
    ensure!(
        got.name == spec.name,
        "get_security_group returned name {:?}, expected {:?}",
        got.name,
        spec.name
    );
    ensure!(
        sorted(&got.rules) == sorted(&spec.rules),
        "get_security_group returned rules {:?}, expected {:?}",
        got.rules,
        spec.rules
    );
    ensure_tags(&spec.tags, &got.tags, "get_security_group")?;

    let listed =
        cx.p.list_security_groups(&cx.filter())
            .await
            .step("list_security_groups")?;
    let n = listed.iter().filter(|x| x.id == g.id).count();
    ensure!(
        n == 1,
        "list_security_groups with the run's filter returned group {} {n} times, expected once",
        g.id
    );

    cx.p.delete_security_group(&g.id)
        .await
        .step("delete_security_group")?;
    expect_not_found(
        cx.p.get_security_group(&g.id).await,
        "get_security_group after delete",
    )?;
    let listed =
        cx.p.list_security_groups(&cx.filter())
            .await
            .step("list_security_groups after delete")?;
    ensure!(
        !listed.iter().any(|x| x.id == g.id),
        "list_security_groups still returns group {} after delete",
        g.id
    );
    Ok(())
}

check! {
    /// `add_security_group_rule` adds a rule once (adding it again succeeds without a
    /// duplicate), ICMP and group-sourced rules included (the latter when
    /// `capabilities().group_sources`); `remove_security_group_rule` removes it, and
    /// removing an absent rule succeeds.
    security_group_rules => security_group_rules_body
}

async fn security_group_rules_body(cx: &Ctx<'_>) -> CheckResult {
    let mut spec = cx.sg_spec("rules");
    spec.rules.clear();
    let g = cx.create_sg(&spec).await?;
    let ssh = IngressRule::tcp(22, net(3));
    let icmp = IngressRule::new(Protocol::Icmp, RuleSource::Cidr(net(4)));
    cx.p.add_security_group_rule(&g.id, &ssh)
        .await
        .step("add_security_group_rule (tcp 22)")?;
    cx.p.add_security_group_rule(&g.id, &ssh)
        .await
        .step("add_security_group_rule of a rule that is present")?;
    cx.p.add_security_group_rule(&g.id, &icmp)
        .await
        .step("add_security_group_rule (icmp)")?;
    let rules =
        cx.p.get_security_group(&g.id)
            .await
            .step("get_security_group")?
            .rules;
    ensure!(
        count(&rules, &ssh) == 1,
        "after adding {ssh:?} twice the group has it {} times: {rules:?}",
        count(&rules, &ssh)
    );
    ensure!(
        count(&rules, &icmp) == 1,
        "after adding {icmp:?} the group has it {} times: {rules:?}",
        count(&rules, &icmp)
    );

    if cx.p.capabilities().group_sources {
        let other = cx.sg("rules-src").await?;
        let from_group = IngressRule::tcp_from_group(cx.cfg.member_port, other.id.clone());
        cx.p.add_security_group_rule(&g.id, &from_group)
            .await
            .step("add_security_group_rule with a group source")?;
        let rules =
            cx.p.get_security_group(&g.id)
                .await
                .step("get_security_group")?
                .rules;
        ensure!(
            count(&rules, &from_group) == 1,
            "after adding {from_group:?} the group has {rules:?}"
        );
        cx.p.remove_security_group_rule(&g.id, &from_group)
            .await
            .step("remove_security_group_rule with a group source")?;
        let rules =
            cx.p.get_security_group(&g.id)
                .await
                .step("get_security_group")?
                .rules;
        ensure!(
            count(&rules, &from_group) == 0,
            "after removing {from_group:?} the group has {rules:?}"
        );
    }

    cx.p.remove_security_group_rule(&g.id, &ssh)
        .await
        .step("remove_security_group_rule")?;
    cx.p.remove_security_group_rule(&g.id, &ssh)
        .await
        .step("remove_security_group_rule of a rule that is absent")?;
    let rules =
        cx.p.get_security_group(&g.id)
            .await
            .step("get_security_group")?
            .rules;
    ensure!(
        count(&rules, &ssh) == 0,
        "after removing {ssh:?} the group still has it: {rules:?}"
    );
    ensure!(
        count(&rules, &icmp) == 1,
        "removing {ssh:?} also removed {icmp:?}: {rules:?}"
    );
    cx.p.remove_security_group_rule(&g.id, &icmp)
        .await
        .step("remove_security_group_rule (icmp)")?;
    let rules =
        cx.p.get_security_group(&g.id)
            .await
            .step("get_security_group")?
            .rules;
    ensure!(
        rules.is_empty(),
        "after removing every rule the group has {rules:?}"
    );
    Ok(())
}

check! {
    /// Creating a group again with the same name and spec returns the same group, and
    /// only one group has that name.
    security_group_create_idempotent => security_group_create_idempotent_body
}

async fn security_group_create_idempotent_body(cx: &Ctx<'_>) -> CheckResult {
    let spec = cx.sg_spec("idem");
    let a = cx.create_sg(&spec).await?;
    let b = cx
        .try_create_sg(&spec)
        .await
        .step("create_security_group again with the same name and spec")?;
    ensure!(
        a.id == b.id,
        "creating group {} again returned a new group {} instead of {}",
        spec.name,
        b.id,
        a.id
    );
    let listed =
        cx.p.list_security_groups(&cx.filter())
            .await
            .step("list_security_groups")?;
    let n = listed.iter().filter(|x| x.name == spec.name).count();
    ensure!(
        n == 1,
        "{n} groups are named {} after creating it twice",
        spec.name
    );
    Ok(())
}

check! {
    /// Creating a group with the name of an existing group but another description, or
    /// other rules, is `Conflict`, and the existing group is unchanged.
    security_group_name_conflict => security_group_name_conflict_body
}

async fn security_group_name_conflict_body(cx: &Ctx<'_>) -> CheckResult {
    let spec = cx.sg_spec("conflict");
    let a = cx.create_sg(&spec).await?;
    let mut other = spec.clone();
    other.description = "another description".into();
    expect_conflict(
        cx.try_create_sg(&other).await,
        "create_security_group with an existing name and another description",
    )?;
    let mut other = spec.clone();
    other.rules.push(IngressRule::tcp(22, net(5)));
    expect_conflict(
        cx.try_create_sg(&other).await,
        "create_security_group with an existing name and other rules",
    )?;
    let got =
        cx.p.get_security_group(&a.id)
            .await
            .step("get_security_group")?;
    ensure!(
        got.description == spec.description && sorted(&got.rules) == sorted(&spec.rules),
        "the refused creates changed the existing group: {}",
        brief(&got)
    );
    Ok(())
}

check! {
    /// `get_security_group`, `add_security_group_rule` and `remove_security_group_rule`
    /// of a deleted group are `NotFound`.
    security_group_missing_not_found => security_group_missing_not_found_body
}

async fn security_group_missing_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    let gone = cx.gone_sg().await?;
    let rule = IngressRule::tcp(22, net(6));
    expect_not_found(
        cx.p.get_security_group(&gone).await,
        format!("get_security_group of deleted group {gone}"),
    )?;
    expect_not_found(
        cx.p.add_security_group_rule(&gone, &rule).await,
        format!("add_security_group_rule on deleted group {gone}"),
    )?;
    expect_not_found(
        cx.p.remove_security_group_rule(&gone, &rule).await,
        format!("remove_security_group_rule on deleted group {gone}"),
    )?;
    Ok(())
}

check! {
    /// Deleting a group that is already deleted succeeds.
    security_group_delete_gone_ok => security_group_delete_gone_ok_body
}

async fn security_group_delete_gone_ok_body(cx: &Ctx<'_>) -> CheckResult {
    let g = cx.sg("gone").await?;
    cx.p.delete_security_group(&g.id)
        .await
        .step("delete_security_group")?;
    cx.p.delete_security_group(&g.id).await.step(format!(
        "delete_security_group of already deleted group {}",
        g.id
    ))?;
    Ok(())
}

check! {
    /// Deleting a group an instance uses is `Conflict` and leaves the group; once the
    /// instance is deleted, the group deletes.
    security_group_in_use_conflict => security_group_in_use_conflict_body
}

async fn security_group_in_use_conflict_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let g = cx.sg("inuse").await?;
    let mut spec = cx.instance_spec("inuse-inst", &zone);
    spec.security_groups.push(g.id.clone());
    let inst = cx.create_instance(&spec).await?;
    expect_conflict(
        cx.p.delete_security_group(&g.id).await,
        format!(
            "delete_security_group of group {} used by instance {}",
            g.id, inst.id
        ),
    )?;
    cx.p.get_security_group(&g.id)
        .await
        .step("get_security_group after the refused delete")?;
    cx.p.delete_instance(&inst.id)
        .await
        .step("delete_instance")?;
    cx.p.delete_security_group(&g.id)
        .await
        .step("delete_security_group once its instance is gone")?;
    Ok(())
}

check! {
    /// Deleting a group another group's rule names as its source is `Conflict`; once
    /// the rule is removed, the group deletes. Skipped without
    /// `capabilities().group_sources`.
    security_group_referenced_conflict => security_group_referenced_conflict_body
}

async fn security_group_referenced_conflict_body(cx: &Ctx<'_>) -> CheckResult {
    if !cx.p.capabilities().group_sources {
        return Err(skipped(
            "rules cannot name a group as source (capabilities().group_sources is false)",
        ));
    }
    let a = cx.sg("ref-a").await?;
    let rule = IngressRule::tcp_from_group(cx.cfg.member_port, a.id.clone());
    let mut spec = cx.sg_spec("ref-b");
    spec.rules = vec![rule.clone()];
    let b = cx.create_sg(&spec).await?;
    expect_conflict(
        cx.p.delete_security_group(&a.id).await,
        format!(
            "delete_security_group of group {} named by a rule of group {}",
            a.id, b.id
        ),
    )?;
    cx.p.get_security_group(&a.id)
        .await
        .step("get_security_group after the refused delete")?;
    cx.p.remove_security_group_rule(&b.id, &rule)
        .await
        .step("remove_security_group_rule")?;
    cx.p.delete_security_group(&a.id)
        .await
        .step("delete_security_group once no rule names it")?;
    Ok(())
}

check! {
    /// Bad group specs and rules are `InvalidInput` naming the field: a bad name
    /// (leading `-`, empty, 64 characters, a space), a bad port range (from > to, from 0,
    /// missing for TCP, present for ICMP), a tag key with `=`.
    security_group_invalid_input => security_group_invalid_input_body
}

async fn security_group_invalid_input_body(cx: &Ctx<'_>) -> CheckResult {
    let base = cx.sg_spec("inv");
    let with_name = |name: String| edited(base.clone(), |s| s.name = name);
    let with_rule = |label: &str, rule: IngressRule| {
        edited(base.clone(), |s| {
            s.name = cx.name(label);
            s.rules = vec![rule];
        })
    };
    let tcp = |from: u16, to: Option<u16>| {
        let rule = IngressRule::new(Protocol::Tcp, RuleSource::Cidr(net(7)));
        match to {
            Some(to) => rule.with_ports(PortRange { from, to }),
            None => rule,
        }
    };
    let mut bad_tag = cx.sg_spec("inv-tag");
    bad_tag.tags.insert("a=b".into(), "c".into());
    let cases = vec![
        (
            "a name starting with '-'",
            with_name(format!("-{}", base.name)),
            "name",
        ),
        ("an empty name", with_name(String::new()), "name"),
        (
            "a 64-character name",
            with_name(format!(
                "{}{}",
                base.name,
                "x".repeat(64usize.saturating_sub(base.name.len()))
            )),
            "name",
        ),
        (
            "a name with a space",
            with_name(format!("{} x", base.name)),
            "name",
        ),
        (
            "a TCP rule with from > to",
            with_rule("inv-range", tcp(200, Some(100))),
            "ports",
        ),
        (
            "a TCP rule from port 0",
            with_rule("inv-zero", tcp(0, Some(10))),
            "ports",
        ),
        (
            "a TCP rule without ports",
            with_rule("inv-none", tcp(0, None)),
            "ports",
        ),
        (
            "an ICMP rule with ports",
            with_rule(
                "inv-icmp",
                IngressRule::new(Protocol::Icmp, RuleSource::Cidr(net(7)))
                    .with_ports(PortRange::single(1)),
            ),
            "ports",
        ),
        ("a tag key containing '='", bad_tag, "tags"),
    ];
    for (what, spec, field) in cases {
        expect_invalid(
            cx.try_create_sg(&spec).await,
            field,
            format!("create_security_group with {what}"),
        )?;
    }
    let g = cx.sg("inv-ok").await?;
    expect_invalid(
        cx.p.add_security_group_rule(&g.id, &tcp(200, Some(100)))
            .await,
        "ports",
        "add_security_group_rule with from > to",
    )?;
    Ok(())
}

check! {
    /// `list_security_groups` with a tag filter returns the groups that match and only
    /// those.
    security_group_tag_filter => security_group_tag_filter_body
}

async fn security_group_tag_filter_body(cx: &Ctx<'_>) -> CheckResult {
    let mut a = cx.sg_spec("tf-a");
    a.tags = cx.tags_with_role("a");
    let mut b = cx.sg_spec("tf-b");
    b.tags = cx.tags_with_role("b");
    let a = cx.create_sg(&a).await?;
    let b = cx.create_sg(&b).await?;
    cx.check_tag_filter(ResourceKind::SecurityGroup, &a.id, &b.id)
        .await
}

check! {
    /// `list_security_groups` follows pagination: with `capabilities().page_size + 1`
    /// groups, the filtered list and the unfiltered list return every one of them, once.
    /// Skipped when that is more than `config.max_pagination_resources`.
    security_group_pagination => security_group_pagination_body
}

async fn security_group_pagination_body(cx: &Ctx<'_>) -> CheckResult {
    let page = cx.p.capabilities().page_size;
    let n = page.saturating_add(1);
    if n > cx.cfg.max_pagination_resources {
        return Err(skipped(format!(
            "a page of {page} needs {n} groups, more than config.max_pagination_resources ({})",
            cx.cfg.max_pagination_resources
        )));
    }
    let specs: Vec<SecurityGroupSpec> = (0..n)
        .map(|i| edited(cx.sg_spec(&format!("pg-{i}")), |s| s.rules = Vec::new()))
        .collect();
    let created = cx
        .create_many(specs.iter().map(|s| cx.create_sg(s)).collect::<Vec<_>>())
        .await?;
    let want: BTreeSet<String> = created.into_iter().map(|g| g.id).collect();
    ensure!(
        want.len() == n,
        "creating {n} groups with distinct names returned {} distinct ids",
        want.len()
    );

    let listed =
        cx.p.list_security_groups(&cx.filter())
            .await
            .step("list_security_groups")?;
    let ours = listed.iter().filter(|g| want.contains(&g.id)).count();
    let got: BTreeSet<&String> = listed.iter().map(|g| &g.id).collect();
    let missing: Vec<&String> = want.iter().filter(|id| !got.contains(id)).collect();
    ensure!(
        missing.is_empty(),
        "list_security_groups with a filter matching {n} groups (page size {page}) returned {} of them; missing {} (e.g. {:?}): it does not follow pagination",
        listed.len(),
        missing.len(),
        missing.first()
    );
    ensure!(
        ours == n,
        "list_security_groups returned {ours} entries for {n} groups: some twice"
    );

    let all =
        cx.p.list_security_groups(&TagFilter::all())
            .await
            .step("list_security_groups with no filter")?;
    let got: BTreeSet<&String> = all.iter().map(|g| &g.id).collect();
    let missing = want.iter().filter(|id| !got.contains(id)).count();
    ensure!(
        missing == 0,
        "list_security_groups with no filter ({} returned) misses {missing} of the {n} groups: it does not follow pagination",
        all.len()
    );
    Ok(())
}
