//! `plinth repair` and `plinth watch`: the CLI over [`cluster::Cluster::repair`] and
//! [`cluster::Cluster::watch`]. Repair prints what it found and did (or one JSON
//! document); when the circuit breaker holds it says so and exits with
//! [`EXIT_BREAKER`]. Both log each decision on stderr (at least at info level); watch
//! prints a summary when it stops: Ctrl-C or SIGTERM lets the step in flight finish,
//! then it exits 0; a second Ctrl-C aborts (130).

use std::sync::Arc;
use std::time::Duration;

use cluster::health::HealthOptions;
use cluster::repair::{MaxUnhealthy, RepairOptions};
use cluster::replace::ReplaceOptions;
use cluster::watch::{Cancel, WatchOptions};

use super::rolling::RollingArgs;
use super::{open, print_json, stop_on_ctrl_c, CliError, Output, Progress, SpecArgs};

/// Exit status of `repair` when the circuit breaker held (nothing was replaced).
pub const EXIT_BREAKER: u8 = 3;

/// What `repair` and `watch` share: how health is judged and how nodes are replaced.
#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// Most unhealthy nodes (a count, or a percentage of the nodes the spec wants) for
    /// which repair acts; beyond it the circuit breaker holds and nothing is replaced.
    #[arg(long, default_value = "40%", value_parser = parse_max_unhealthy)]
    max_unhealthy: MaxUnhealthy,
    /// Only say what would be done.
    #[arg(long)]
    dry_run: bool,
    /// Seconds a new node is not judged by its load balancer, hook or probe.
    #[arg(long, default_value_t = 300)]
    grace_secs: u64,
    /// Seconds the cloud must report a node failed, stopped or gone.
    #[arg(long, default_value_t = 30)]
    cloud_hold_secs: u64,
    /// Seconds a load balancer must report a node unhealthy.
    #[arg(long, default_value_t = 60)]
    lb_hold_secs: u64,
    /// Seconds the probe (--probe-port) must fail.
    #[arg(long, default_value_t = 60)]
    check_hold_secs: u64,
    /// Successors created before their old nodes go (0: delete-first, for a full quota;
    /// needs --max-unavailable 1 or more).
    #[arg(long, default_value_t = 1)]
    max_surge: usize,
    /// With --max-surge 0: nodes that may be down at once.
    #[arg(long, default_value_t = 0)]
    max_unavailable: usize,
    /// Health and readiness probe (--probe-port, --probe-path) and replacement timings.
    #[command(flatten)]
    rolling: RollingArgs,
}

fn parse_max_unhealthy(s: &str) -> Result<MaxUnhealthy, String> {
    s.parse().map_err(|e: cluster::Error| e.to_string())
}

impl RepairArgs {
    fn health(&self) -> HealthOptions {
        let r = self.rolling.options();
        HealthOptions {
            grace: Duration::from_secs(self.grace_secs),
            cloud_hold: Duration::from_secs(self.cloud_hold_secs),
            lb_hold: Duration::from_secs(self.lb_hold_secs),
            check_hold: Duration::from_secs(self.check_hold_secs),
            probe: r.probe.clone(),
            probe_timeout: r.probe_timeout,
            ..HealthOptions::default()
        }
    }

    fn options(&self) -> RepairOptions {
        RepairOptions {
            max_unhealthy: self.max_unhealthy,
            dry_run: self.dry_run,
            replace: ReplaceOptions {
                max_surge: self.max_surge,
                max_unavailable: self.max_unavailable,
                ..self.rolling.options()
            },
        }
    }
}

/// `plinth watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    repair: RepairArgs,
    /// Seconds between passes.
    #[arg(long, default_value_t = 30)]
    interval_secs: u64,
    /// Longest wait, in seconds, after passes failed (the cloud unreachable).
    #[arg(long, default_value_t = 300)]
    max_backoff_secs: u64,
}

/// Runs `plinth repair`.
pub async fn repair(args: RepairArgs, out: Output) -> Result<(), CliError> {
    let (cluster, stop) = open(&args.spec, 8).await?;
    stop_on_ctrl_c(stop);
    let report = cluster
        .with_health(args.health())
        .with_observer(Arc::new(Progress::lines(out == Output::Human)))
        .repair(&args.options())
        .await?;
    match out {
        Output::Json => print_json(&report)?,
        Output::Human => outln!("{report}"),
    }
    match &report.breaker {
        Some(b) => Err(CliError::Breaker(b.to_string())),
        None => Ok(()),
    }
}

/// Runs `plinth watch`.
pub async fn watch(args: WatchArgs, out: Output) -> Result<(), CliError> {
    let (cluster, _) = open(&args.repair.spec, 8).await?;
    let cancel = Cancel::new();
    stop_on_signals(cancel.clone());
    let opts = WatchOptions {
        interval: Duration::from_secs(args.interval_secs.max(1)),
        max_backoff: Duration::from_secs(args.max_backoff_secs),
        repair: args.repair.options(),
    };
    tracing::info!(
        cluster = %cluster.spec().name,
        interval = ?opts.interval,
        max_unhealthy = %opts.repair.max_unhealthy,
        "watching (Ctrl-C or SIGTERM stops)"
    );
    let report = cluster
        .with_health(args.repair.health())
        .with_observer(Arc::new(Progress::lines(out == Output::Human)))
        .watch(&opts, &cancel)
        .await?;
    match out {
        Output::Json => print_json(&report)?,
        Output::Human => {
            outln!(
                "watch stopped after {} passes ({} failed): {} drift actions, {} nodes replaced, circuit breaker held {} times",
                report.passes,
                report.failed_passes,
                report.drift_actions,
                report.replaced.len(),
                report.breaker_held
            );
            for r in &report.replaced {
                outln!(
                    "  {} -> {} ({}, {})",
                    r.old,
                    r.new,
                    r.role,
                    r.availability_zone
                );
            }
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM: stop the loop after the step in flight; a second Ctrl-C aborts.
fn stop_on_signals(cancel: Cancel) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            r = tokio::signal::ctrl_c() => { if r.is_err() { return; } }
            () = term => {}
        }
        cancel.cancel();
        eprintln!("\nstopping: finishing the step in flight (Ctrl-C again to abort)");
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("aborted: run repair or watch again to finish the job");
            std::process::exit(130);
        }
    });
}
