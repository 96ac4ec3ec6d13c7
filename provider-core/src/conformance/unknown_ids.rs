//! Checks of ids no resource ever had: one in the cloud's own format that never existed,
//! and one malformed. Both are missing like a deleted resource: `get_*` is `NotFound`
//! and a delete succeeds (a provider cannot tell "never existed" from "already gone",
//! and a delete whose first reply was lost is retried the same way).

use super::ctx::*;
use super::expect::*;
use super::CheckResult;
use crate::model::*;

/// An id shaped like `live` that no resource has: the last (up to 12) hex digits of its
/// trailing alphanumeric run changed, so a uuid, an AWS id or an ARN keeps its format.
/// A short or non-hex tail (a counter like vSphere's `vm-42`, a name) becomes nine 9s,
/// far above any counter a test cloud reaches.
pub(crate) fn never_existed(live: &str) -> String {
    let tail_len = live
        .chars()
        .rev()
        .take_while(char::is_ascii_alphanumeric)
        .count();
    let split = live.len() - tail_len; // alphanumerics are one byte each
    let (head, tail) = live.split_at(split);
    if tail.len() >= 8 && tail.chars().rev().take(12).any(|c| c.is_ascii_hexdigit()) {
        let mut out: Vec<char> = tail.chars().collect();
        for c in out.iter_mut().rev().take(12) {
            *c = match *c {
                '9' => '8',
                '0'..='8' => '9',
                'f' => 'e',
                'a'..='e' => 'f',
                'F' => 'E',
                'A'..='E' => 'F',
                other => other,
            };
        }
        format!("{head}{}", out.into_iter().collect::<String>())
    } else {
        format!("{head}999999999")
    }
}

/// Checks `get` and delete of an unknown id of `kind`, shaped after `live`, and of a
/// malformed one.
async fn check_unknown_ids(cx: &Ctx<'_>, kind: ResourceKind, live: &str) -> CheckResult {
    let ids = [
        ("a never-existing", never_existed(live)),
        ("a malformed", format!("not an id {}", cx.short())),
    ];
    for (what, id) in ids {
        expect_not_found(
            cx.tags_of(kind, &id).await,
            format!("get of {what} {kind} id {id:?} (a live one is {live:?})"),
        )?;
        cx.delete(kind, &id).await.step(format!(
            "delete of {what} {kind} id {id:?}: what does not exist counts as deleted"
        ))?;
    }
    Ok(())
}

check! {
    /// `get_security_group` of an id that never existed, or is malformed, is `NotFound`;
    /// `delete_security_group` of one succeeds.
    security_group_unknown_id_not_found => security_group_unknown_id_not_found_body
}

async fn security_group_unknown_id_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    let g = cx.sg("live").await?;
    check_unknown_ids(cx, ResourceKind::SecurityGroup, &g.id).await
}

check! {
    /// `get_floating_ip` of an id that never existed, or is malformed, is `NotFound`;
    /// `release_floating_ip` of one succeeds.
    floating_ip_unknown_id_not_found => floating_ip_unknown_id_not_found_body
}

async fn floating_ip_unknown_id_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let f = cx.fip("live").await?;
    check_unknown_ids(cx, ResourceKind::FloatingIp, &f.id).await
}

check! {
    /// `get_volume` of an id that never existed, or is malformed, is `NotFound`;
    /// `delete_volume` of one succeeds.
    volume_unknown_id_not_found => volume_unknown_id_not_found_body
}

async fn volume_unknown_id_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let v = cx.volume("live", &zone).await?;
    check_unknown_ids(cx, ResourceKind::Volume, &v.id).await
}

check! {
    /// `get_instance` of an id that never existed, or is malformed, is `NotFound`;
    /// `delete_instance` of one succeeds.
    instance_unknown_id_not_found => instance_unknown_id_not_found_body
}

async fn instance_unknown_id_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let i = cx.instance("live", &zone).await?;
    check_unknown_ids(cx, ResourceKind::Instance, &i.id).await
}

check! {
    /// `get_load_balancer` of an id that never existed, or is malformed, is `NotFound`;
    /// `delete_load_balancer` of one succeeds.
    load_balancer_unknown_id_not_found => load_balancer_unknown_id_not_found_body
}

async fn load_balancer_unknown_id_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let lb = cx.empty_lb("live").await?;
    check_unknown_ids(cx, ResourceKind::LoadBalancer, &lb.id).await
}

#[cfg(test)]
mod tests {
    use super::never_existed;

    #[test]
    fn never_existing_ids_keep_the_format_and_differ() {
        for (live, want) in [
            (
                "3f2a9c1e-0000-4000-8000-1234567890ab",
                "3f2a9c1e-0000-4000-8000-9999999989ff",
            ),
            ("sg-0000000a", "sg-9999999f"),
            ("vm-42", "vm-999999999"),
            ("pc-1234abcd-vol", "pc-1234abcd-999999999"),
            ("i-0123456789abcdef0", "i-0123499998fffffe9"),
        ] {
            let got = never_existed(live);
            assert_eq!(got, want, "{live}");
            assert_ne!(got, live);
        }
    }
}
