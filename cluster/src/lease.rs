//! The operator lease: two operators changing one cluster at once are refused.
//!
//! The lease is a tag ([`TAG_LEASE`]) on the cluster's base security group
//! (`<cluster>-base`), so it lives on the cloud like the rest of the cluster's state. Its
//! value is `holder;pid;expiry`: who holds it ([`LeaseOptions::holder`], by default
//! `user@host`), the process id of the run, and when it expires (Unix seconds, UTC).
//!
//! Every mutating command (`apply`, `destroy`, `replace`, `scale`) runs under the lease:
//!
//! 1. **Acquire**: read the base group's tags. A lease of someone else that has not
//!    expired refuses the command with [`Error::Locked`], naming the holder, when the
//!    lease expires and how to override it. Otherwise write our lease with
//!    [`Provider::update_tags`], wait [`LeaseOptions::settle`] (so that a concurrent
//!    writer that read before our write has written too), and read it back: if another
//!    holder's value is there, we lost the race and back off with [`Error::Locked`],
//!    having changed nothing (their lease stays).
//! 2. **Renew**: while the command runs, a background task rewrites the expiry every
//!    third of [`LeaseOptions::ttl`] (10 minutes by default). If it finds the lease gone or
//!    taken over, it sets the run's stop flag (as the first Ctrl-C does) and the command
//!    fails with [`Error::Lease`] at the end.
//! 3. **Release**: after the command, on success and on failure alike, the tag is removed
//!    (if it is still ours). A release that fails is an error (the work itself finished;
//!    the lease expires by itself).
//!
//! Which lease may be taken over:
//! - our own: the same holder *and* the same process (a library user running several
//!   commands, or one command resuming another, such as `scale` applying the cluster);
//! - an expired one (a crashed run's lease expires after at most one `ttl`);
//! - one of the same holder from a process of this host that no longer runs (a crashed
//!   or aborted run of the same operator; only where `/proc` tells, i.e. Linux, and only
//!   for holders of the form `...@<this host>`);
//! - any lease with [`LeaseOptions::force`] (`plinth ... --force-unlock`): for a run
//!   known to be dead on another machine. The previous holder is logged.
//!
//! Where the base group does not exist yet (the very first `apply`), `apply` and `scale`
//! create it first, exactly as the plan would (same name, rules and tags, so the plan's
//! own create finds it). `destroy` and `replace` do not create it: without a base group
//! there is no node to replace, and `destroy` only has leftover groups to delete, which
//! concurrent runs delete idempotently; they run without a lease.
//!
//! Limits: expiry uses the local clock of each operator (keep clocks in sync, as NTP
//! does); the read-back detects a race only if the other writer's read-to-write gap is
//! shorter than the pause (one API round trip, against 1 s by default). On a cloud whose
//! tag writes are read-after-write consistent
//! ([`Capabilities::tags_read_after_write`](provider_core::Capabilities): memory, local,
//! OpenStack, vCenter) the pause is twice our own read-to-write gap instead, at least
//! [`MIN_CONSISTENT_SETTLE`] and at most [`LeaseOptions::settle`] (see [`settle_for`]);
//! on AWS, whose tags are eventually consistent, it stays [`LeaseOptions::settle`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use provider_core::ProviderExt;
use provider_core::{ErrorKind, Provider, ResourceKind, SecurityGroupSpec, TagFilter, Tags};

use crate::plan::TAG_CLUSTER;
use crate::{Error, Result};

/// Tag key of the lease on the cluster's base security group.
pub const TAG_LEASE: &str = "plinth.lease";

/// Longest holder id kept (longer ones are cut), so the tag fits every cloud.
pub const MAX_HOLDER_LEN: usize = 64;

/// Environment variable that overrides the default holder id.
pub const HOLDER_ENV: &str = "PLINTH_LEASE_HOLDER";

/// How commands take the lease.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// Who we are, as other operators see it in the refusal (default: [`default_holder`]).
    pub holder: String,
    /// How long a lease lives without renewal; it is renewed every third of it.
    pub ttl: Duration,
    /// Pause between writing the lease and reading it back (race detection).
    pub settle: Duration,
    /// Take over any lease, live or not (`--force-unlock`).
    pub force: bool,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self {
            holder: default_holder(),
            ttl: Duration::from_secs(600),
            settle: Duration::from_secs(1),
            force: false,
        }
    }
}

/// The holder id of this process: [`HOLDER_ENV`] if set, else `user@host`.
pub fn default_holder() -> String {
    if let Ok(h) = std::env::var(HOLDER_ENV) {
        if !h.trim().is_empty() {
            return clean_holder(&h);
        }
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    clean_holder(&format!("{user}@{}", hostname()))
}

fn hostname() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    read("/proc/sys/kernel/hostname")
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| read("/etc/hostname"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// A holder id without the separator or control characters, at most
/// [`MAX_HOLDER_LEN`] characters.
fn clean_holder(h: &str) -> String {
    h.trim()
        .chars()
        .map(|c| if c == ';' || c.is_control() { '_' } else { c })
        .take(MAX_HOLDER_LEN)
        .collect()
}

/// A lease as recorded on the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Who holds it.
    pub holder: String,
    /// The holder's process id.
    pub pid: u32,
    /// When it expires, in Unix seconds.
    pub expires: u64,
}

impl LeaseRecord {
    /// Reads a tag value (`holder;pid;expiry`); `None` if it is not one.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.rsplitn(3, ';');
        let expires = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let holder = parts.next()?.to_string();
        Some(Self {
            holder,
            pid,
            expires,
        })
    }

    /// The tag value.
    pub fn encode(&self) -> String {
        format!("{};{};{}", self.holder, self.pid, self.expires)
    }

    /// Whether this process holds it under `holder`.
    fn is_ours(&self, holder: &str) -> bool {
        self.holder == holder && self.pid == std::process::id()
    }

    /// When it expires, as an RFC 3339 UTC time.
    pub fn expires_utc(&self) -> String {
        utc(self.expires)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Whether `pid` names a process that no longer runs on this host (Linux only; elsewhere
/// nothing is known and the answer is `false`).
fn process_gone(pid: u32) -> bool {
    cfg!(target_os = "linux")
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The name of the group that carries the lease.
pub fn base_group_name(cluster: &str) -> String {
    format!("{cluster}-base")
}

fn locked(cluster: &str, r: &LeaseRecord, how: &str) -> Error {
    let left = r.expires.saturating_sub(now());
    let you = if r.holder == default_holder() {
        " (that is you, in another process)"
    } else {
        ""
    };
    Error::Locked {
        cluster: cluster.to_string(),
        holder: format!("{} (pid {}){you}", r.holder, r.pid),
        expires: r.expires_utc(),
        message: format!(
            "{how}; the lease expires in {left}s unless that run renews it: wait for it to finish, \
             or, if that run is dead, rerun with --force-unlock"
        ),
    }
}

/// Whether we may write our lease over `value`; `Err` says why not.
fn may_take(cluster: &str, value: &str, opts: &LeaseOptions) -> Result<()> {
    let Some(r) = LeaseRecord::parse(value) else {
        if opts.force {
            tracing::warn!(cluster, lease = value, "forcing over an unreadable lease");
            return Ok(());
        }
        return Err(Error::Lease {
            cluster: cluster.to_string(),
            message: format!(
                "the lease tag {TAG_LEASE}={value:?} on {} is not one plinth writes: if no other run is going on, rerun with --force-unlock",
                base_group_name(cluster)
            ),
        });
    };
    if r.is_ours(&opts.holder) {
        return Ok(());
    }
    if opts.force {
        tracing::warn!(cluster, holder = %r.holder, pid = r.pid, expires = %r.expires_utc(), "--force-unlock: taking over the lease");
        return Ok(());
    }
    if r.expires <= now() {
        tracing::info!(cluster, holder = %r.holder, pid = r.pid, "taking over an expired lease");
        return Ok(());
    }
    let this_host = format!("@{}", hostname());
    if r.holder == opts.holder && r.holder.ends_with(&this_host) && process_gone(r.pid) {
        tracing::info!(cluster, holder = %r.holder, pid = r.pid, "taking over the lease of a run of ours that is gone");
        return Ok(());
    }
    Err(locked(cluster, &r, "another run is changing this cluster"))
}

/// Shortest pause between write and read-back on a read-after-write consistent cloud.
pub const MIN_CONSISTENT_SETTLE: Duration = Duration::from_millis(50);

/// How long to pause between writing the lease and reading it back, given the
/// configured `settle`, whether the cloud's tag writes are read-after-write consistent,
/// and how long our own read-to-write gap (`gap`) took.
///
/// The read-back catches a rival that read the group before our write and writes after
/// it: the pause must outlast the rival's read-to-write gap. On an eventually consistent
/// cloud (AWS) the pause also covers the propagation of both writes, which the API does
/// not bound: the full `settle` stays. On a read-after-write consistent cloud only the
/// rival's gap is left, which is one round trip of the same API: twice our own gap
/// (at least [`MIN_CONSISTENT_SETTLE`], at most `settle`). Without a compare-and-swap
/// on tags the pause cannot be dropped altogether.
pub fn settle_for(settle: Duration, read_after_write: bool, gap: Duration) -> Duration {
    if !read_after_write {
        return settle;
    }
    (gap * 2).max(MIN_CONSISTENT_SETTLE).min(settle)
}

/// A lease this process holds; [`Lease::release`] it when the command ends. Dropped
/// without release, it stops renewing and expires after at most one `ttl`.
#[derive(Debug)]
pub struct Lease {
    provider: Arc<dyn Provider>,
    cluster: String,
    group_id: String,
    holder: String,
    record: Arc<Mutex<LeaseRecord>>,
    lost: Arc<Mutex<Option<String>>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    /// The base group, when this acquire created it.
    created: Option<provider_core::SecurityGroup>,
}

/// Takes the lease of `cluster` (see the module docs). `create` is the base group's spec,
/// to create it when it does not exist yet; without it, a cluster without a base group
/// gives `Ok(None)` (nothing to hold). `stop` is set if the lease is lost during the run.
pub async fn acquire(
    provider: Arc<dyn Provider>,
    cluster: &str,
    opts: &LeaseOptions,
    create: Option<SecurityGroupSpec>,
    stop: Arc<AtomicBool>,
) -> Result<Option<Lease>> {
    let name = base_group_name(cluster);
    let filter = TagFilter::new(TAG_CLUSTER, cluster);
    let started = tokio::time::Instant::now();
    let existing = provider
        .list_security_groups(&filter)
        .await?
        .into_iter()
        .find(|g| g.name == name);
    let (group, created) = match (existing, create) {
        (Some(g), _) => (g, false),
        (None, Some(spec)) => (provider.create_security_group(&spec).await?, true),
        (None, None) => return Ok(None),
    };
    let created = created.then(|| group.clone());
    if let Some(v) = group.tags.get(TAG_LEASE) {
        may_take(cluster, v, opts)?;
    }
    let holder = clean_holder(&opts.holder);
    let record = LeaseRecord {
        holder: holder.clone(),
        pid: std::process::id(),
        expires: now() + opts.ttl.as_secs().max(1),
    };
    let value = record.encode();
    let tags: Tags = [(TAG_LEASE.to_string(), value.clone())].into();
    provider
        .update_tags(ResourceKind::SecurityGroup, &group.id, &tags, &[])
        .await?;
    let settle = settle_for(
        opts.settle,
        provider.capabilities().tags_read_after_write,
        started.elapsed(),
    );
    if !settle.is_zero() {
        tokio::time::sleep(settle).await;
    }
    let back = provider.get_security_group(&group.id).await?;
    match back.tags.get(TAG_LEASE) {
        Some(v) if *v == value => {}
        Some(v) => match LeaseRecord::parse(v) {
            Some(r) if r.is_ours(&holder) => {}
            Some(r) => {
                return Err(locked(
                    cluster,
                    &r,
                    "another run took the lease at the same moment (nothing was changed)",
                ))
            }
            None => {
                return Err(Error::Lease {
                    cluster: cluster.to_string(),
                    message: format!(
                        "the lease was overwritten with {v:?} right after it was written: nothing was changed; try again"
                    ),
                })
            }
        },
        None => {
            return Err(Error::Lease {
                cluster: cluster.to_string(),
                message: "the lease was removed right after it was written (another operator's release?): nothing was changed; try again".into(),
            })
        }
    }
    let record = Arc::new(Mutex::new(record));
    let lost = Arc::new(Mutex::new(None));
    let renewer = tokio::spawn(renew(
        provider.clone(),
        cluster.to_string(),
        group.id.clone(),
        holder.clone(),
        opts.ttl,
        record.clone(),
        lost.clone(),
        stop,
    ));
    Ok(Some(Lease {
        provider,
        cluster: cluster.to_string(),
        group_id: group.id,
        holder,
        record,
        lost,
        renewer: Some(renewer),
        created,
    }))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Rewrites the expiry every third of `ttl`; on losing the lease, records why and sets
/// `stop`.
#[allow(clippy::too_many_arguments)]
async fn renew(
    provider: Arc<dyn Provider>,
    cluster: String,
    group_id: String,
    holder: String,
    ttl: Duration,
    record: Arc<Mutex<LeaseRecord>>,
    lost: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
) {
    let every = (ttl / 3).max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let group = match provider.get_security_group(&group_id).await {
            Ok(g) => g,
            // `destroy` deleted it: nothing left to hold.
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(cluster, error = %e, "cannot renew the lease; retrying");
                continue;
            }
        };
        let current = group.tags.get(TAG_LEASE).map(|v| LeaseRecord::parse(v));
        let why = match current {
            Some(Some(r)) if r.is_ours(&holder) => None,
            Some(Some(r)) => Some(format!(
                "{} (pid {}) took the lease over during this run (--force-unlock?)",
                r.holder, r.pid
            )),
            Some(None) => Some("the lease was overwritten during this run".to_string()),
            None => Some("the lease was removed during this run".to_string()),
        };
        if let Some(why) = why {
            tracing::warn!(cluster, "{why}: stopping");
            *lock(&lost) = Some(why);
            stop.store(true, Ordering::SeqCst);
            return;
        }
        let renewed = LeaseRecord {
            holder: holder.clone(),
            pid: std::process::id(),
            expires: now() + ttl.as_secs().max(1),
        };
        let tags: Tags = [(TAG_LEASE.to_string(), renewed.encode())].into();
        match provider
            .update_tags(ResourceKind::SecurityGroup, &group_id, &tags, &[])
            .await
        {
            Ok(()) => *lock(&record) = renewed,
            Err(e) => tracing::warn!(cluster, error = %e, "cannot renew the lease; retrying"),
        }
    }
}

impl Lease {
    /// The holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The lease as last written.
    pub fn record(&self) -> LeaseRecord {
        lock(&self.record).clone()
    }

    /// The base group, when taking the lease created it (as the plan's create would:
    /// same name, rules and tags), so a plan made before can use it as it is.
    pub(crate) fn created(&self) -> Option<&provider_core::SecurityGroup> {
        self.created.as_ref()
    }

    /// The id of the base group holding the lease.
    pub(crate) fn group_id(&self) -> &str {
        &self.group_id
    }

    /// Stops renewing and removes the lease if it is still ours. Fails if the lease was
    /// lost during the run or cannot be removed (it then expires by itself).
    pub async fn release(mut self) -> Result<()> {
        if let Some(r) = self.renewer.take() {
            r.abort();
            let _ = r.await;
        }
        if let Some(why) = lock(&self.lost).take() {
            return Err(Error::Lease {
                cluster: self.cluster.clone(),
                message: format!("{why}; the run stopped starting new work: check `plinth status` and rerun when the other run is done"),
            });
        }
        let failed = |e: provider_core::Error, expires: String| {
            Error::Lease {
            cluster: self.cluster.clone(),
            message: format!(
                "the command finished, but its lease could not be released ({e}): it expires at {expires}, or the next run can pass --force-unlock"
            ),
        }
        };
        let expires = self.record().expires_utc();
        let group = match self.provider.get_security_group(&self.group_id).await {
            Ok(g) => g,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(failed(e, expires)),
        };
        match group.tags.get(TAG_LEASE).map(|v| LeaseRecord::parse(v)) {
            None => return Ok(()),
            Some(Some(r)) if r.is_ours(&self.holder) => {}
            Some(Some(r)) => {
                return Err(Error::Lease {
                    cluster: self.cluster.clone(),
                    message: format!(
                        "{} (pid {}) took the lease over during this run (--force-unlock?): check `plinth status`",
                        r.holder, r.pid
                    ),
                })
            }
            Some(None) => {
                return Err(Error::Lease {
                    cluster: self.cluster.clone(),
                    message: "the lease was overwritten during this run: check `plinth status`"
                        .into(),
                })
            }
        }
        match self
            .provider
            .update_tags(
                ResourceKind::SecurityGroup,
                &self.group_id,
                &Tags::new(),
                &[TAG_LEASE.to_string()],
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(failed(e, expires)),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
    }
}

/// Runs `work` under `lease` and releases it afterwards, on success and on failure. The
/// work's error wins over a release error (which is then logged).
pub(crate) async fn holding<T>(
    lease: Option<Lease>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    holding_unless_deleted(lease, false, work).await
}

/// As [`holding`]; with `deletes_group` (the work deletes the lease's base group), a
/// successful run has nothing left to release: only a lease lost during the run is
/// reported, and the group is not read again.
pub(crate) async fn holding_unless_deleted<T>(
    lease: Option<Lease>,
    deletes_group: bool,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let result = work.await;
    let released = match lease {
        Some(mut l) if deletes_group && result.is_ok() => {
            if let Some(r) = l.renewer.take() {
                r.abort();
                let _ = r.await;
            }
            match lock(&l.lost).take() {
                Some(why) => Err(Error::Lease {
                    cluster: l.cluster.clone(),
                    message: format!("{why}; the run stopped starting new work: check `plinth status` and rerun when the other run is done"),
                }),
                None => Ok(()),
            }
        }
        Some(l) => l.release().await,
        None => Ok(()),
    };
    match (result, released) {
        (Ok(v), Ok(())) => Ok(v),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(r)) => {
            tracing::warn!(error = %r, "releasing the lease after a failure");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_holders_may_contain_separators() {
        let r = LeaseRecord {
            holder: clean_holder("a;b@host"),
            pid: 42,
            expires: 1_700_000_000,
        };
        assert_eq!(r.holder, "a_b@host");
        assert_eq!(LeaseRecord::parse(&r.encode()), Some(r));
        assert_eq!(LeaseRecord::parse("x;y;z"), None);
        assert_eq!(LeaseRecord::parse("garbage"), None);
    }

    #[test]
    fn utc_formats_unix_seconds() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn the_pause_shrinks_only_where_tags_are_consistent() {
        let one = Duration::from_secs(1);
        let ms = Duration::from_millis;
        assert_eq!(settle_for(one, false, ms(10)), one);
        assert_eq!(settle_for(one, true, ms(10)), MIN_CONSISTENT_SETTLE);
        assert_eq!(settle_for(one, true, ms(200)), ms(400));
        assert_eq!(settle_for(one, true, ms(900)), one);
        assert_eq!(settle_for(Duration::ZERO, true, ms(10)), Duration::ZERO);
    }

    #[test]
    fn holders_are_cut_to_the_limit() {
        assert_eq!(clean_holder(&"x".repeat(200)).len(), MAX_HOLDER_LEN);
    }
}
