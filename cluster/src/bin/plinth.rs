//! `plinth`: lay out a multi-AZ cluster on any Plinth provider.
//!
//! ```text
//! plinth plan    -i examples/local.properties
//! plinth apply   -i examples/local.properties      (alias: install)
//! plinth status  -i examples/local.properties
//! plinth destroy -i examples/local.properties [--yes]
//! plinth replace -i examples/local.properties --all | --role node | --nodes A,B | --stale
//!                [--max-surge 0 --max-unavailable N]   (delete-first, for a full quota)
//! plinth scale   -i examples/local.properties node 6
//! plinth repair  -i examples/local.properties [--dry-run] [--max-unhealthy 40%]
//! plinth watch   -i examples/local.properties [--interval-secs 30]
//! ```
//!
//! Arguments, prompts and output only: the spec's `Provider` picks the provider
//! ([`cluster::cloud`], cargo features `local`, `openstack`, `aws`, `vsphere`, all on by
//! default) and every command is a [`cluster::Cluster`] method.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use cluster::execute::{ExecuteOptions, Observer};
use cluster::plan::PlannedAction;
use cluster::status::ClusterStatus;
use cluster::{Cluster, ClusterSpec, Error, ProviderKind, Step};
use indicatif::{ProgressBar, ProgressStyle};

/// `println!` to stdout that survives a closed pipe (`plinth status | head -1`): the
/// program ends quietly with 141, as a Unix tool killed by SIGPIPE does.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::emit(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[path = "plinth/day2.rs"]
mod day2;
#[path = "plinth/rolling.rs"]
mod rolling;

/// Exit status: the spec or the command line is wrong (fix the input).
const EXIT_USAGE: u8 = 2;
/// Exit status: the cloud or the run failed (rerun, or look at the cloud).
const EXIT_FAILURE: u8 = 1;
/// Exit status: stopped by Ctrl-C (rerun to finish).
const EXIT_INTERRUPTED: u8 = 130;
/// Exit status: stdout was closed (128 + SIGPIPE).
const EXIT_BROKEN_PIPE: i32 = 141;

/// Writes to stdout; see [`outln!`].
fn emit(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(EXIT_BROKEN_PIPE);
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "plinth",
    version,
    about = "Multi-AZ, highly available clusters on any IaaS",
    after_help = "Exit status: 0 done; 1 the cloud or the run failed (rerun the same command); \
2 the command line or the spec is wrong (fix it: the message names the key); \
3 repair's circuit breaker held (too many nodes unhealthy at once: nothing was replaced); \
130 stopped by Ctrl-C (rerun to finish); 141 stdout was closed."
)]
struct Cli {
    /// More logs on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Output::Human, global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Tables and sentences.
    Human,
    /// One JSON document, for scripts.
    Json,
}

#[derive(Debug, clap::Args)]
struct SpecArgs {
    /// The cluster spec (.properties or .toml).
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: PathBuf,
    /// Take over the cluster's lease even if another operator's run holds it (only when
    /// that run is known to be dead; commands that change the cluster).
    #[arg(long)]
    force_unlock: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what apply would do.
    Plan(SpecArgs),
    /// Bring the cluster to the spec (safe to rerun, also after a crash).
    #[command(alias = "install")]
    Apply {
        #[command(flatten)]
        spec: SpecArgs,
        /// Most provider actions in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Nodes by role and AZ, load balancers and member health.
    Status(SpecArgs),
    /// Remove everything the cluster owns.
    Destroy {
        #[command(flatten)]
        spec: SpecArgs,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Replace nodes one by one without losing capacity (resumes after a crash).
    Replace(rolling::ReplaceArgs),
    /// Scale a role up or down, keeping the AZ spread even.
    Scale(rolling::ScaleArgs),
    /// Replace the nodes that are unhealthy and recreate gone ones, once (exit 3 when
    /// too many are unhealthy: the circuit breaker holds).
    Repair(day2::RepairArgs),
    /// Fix drift and repair every interval until Ctrl-C or SIGTERM.
    Watch(day2::WatchArgs),
}

fn main() -> ExitCode {
    // When provider-local started this program as its helper (daemon or instance),
    // this runs it and exits; so `cargo run -p cluster` needs nothing else built.
    cluster::cloud::host_helper_if_requested();
    let cli = match Cli::command()
        .version(version())
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // `watch` and `repair` log their decisions (and repair its re-checks, which may
    // take a hold time): at least at info level.
    let verbose = match cli.command {
        Command::Watch(_) | Command::Repair(_) => cli.verbose.max(1),
        _ => cli.verbose,
    };
    init_tracing(verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit_status(&e))
        }
    }
}

/// `--version`: the version and the providers this build includes (a build with some
/// providers left out, such as the README's local one, says so).
fn version() -> String {
    let providers: Vec<&str> = cluster::ProviderKind::ALL
        .into_iter()
        .filter(|&kind| cluster::cloud::keys(kind).is_some())
        .map(cluster::ProviderKind::as_str)
        .collect();
    format!(
        "{} (providers: {})",
        env!("CARGO_PKG_VERSION"),
        providers.join(", ")
    )
}

/// The exit status of a failed command (see the `after_help` text).
fn exit_status(e: &CliError) -> u8 {
    use provider_core::ErrorKind;
    match e {
        CliError::Usage(_) => EXIT_USAGE,
        CliError::Message(_) => EXIT_FAILURE,
        CliError::Breaker(_) => day2::EXIT_BREAKER,
        CliError::Cluster(e) => match e {
            Error::Io { .. }
            | Error::Spec(_)
            | Error::Plan { .. }
            | Error::Blocked(_)
            | Error::Preflight(_) => EXIT_USAGE,
            Error::Open { source, .. } if source.kind() == ErrorKind::Config => EXIT_USAGE,
            Error::Stopped(_) => EXIT_INTERRUPTED,
            Error::Incomplete(report) if report.stopped => EXIT_INTERRUPTED,
            _ => EXIT_FAILURE,
        },
    }
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// What can go wrong in the CLI: the library's errors and a few of its own.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Cluster(#[from] Error),
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// Something else failed at run time.
    #[error("{0}")]
    Message(String),
    /// `repair`'s circuit breaker held.
    #[error("{0}")]
    Breaker(String),
}

impl From<provider_core::Error> for CliError {
    fn from(e: provider_core::Error) -> Self {
        CliError::Cluster(Error::Provider(e))
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let out = cli.output;
    match cli.command {
        Command::Plan(args) => {
            let (cluster, _) = open(&args, 8).await?;
            let plan = cluster.plan().await?;
            match out {
                Output::Json => print_json(&plan)?,
                Output::Human => emit(format_args!("{plan}")),
            }
        }
        Command::Apply { spec, concurrency } => {
            let (cluster, stop) = open(&spec, concurrency).await?;
            stop_on_ctrl_c(stop);
            let plan = cluster.plan().await?;
            let progress = Arc::new(Progress::bar(plan.actions.len(), out == Output::Human));
            let outcome = cluster
                .clone()
                .with_observer(progress.clone())
                .run(plan)
                .await;
            progress.finish();
            let outcome = outcome?;
            let status = cluster.status().await?;
            match out {
                Output::Json => print_json(&serde_json::json!({
                    "plan": outcome.plan,
                    "report": outcome.report,
                    "status": status,
                }))?,
                Output::Human => {
                    print_warnings(&outcome.plan.warnings);
                    if outcome.plan.is_empty() {
                        outln!("cluster {}: up to date, nothing to do", status.cluster);
                    } else {
                        outln!(
                            "cluster {}: {} actions done",
                            status.cluster,
                            outcome.report.done.len()
                        );
                    }
                    print_endpoints(&status);
                }
            }
        }
        Command::Replace(args) => rolling::replace(args, out).await?,
        Command::Scale(args) => rolling::scale(args, out).await?,
        Command::Repair(args) => day2::repair(args, out).await?,
        Command::Watch(args) => day2::watch(args, out).await?,
        Command::Status(args) => {
            let (cluster, _) = open(&args, 8).await?;
            let status = cluster.status().await?;
            match out {
                Output::Json => print_json(&status)?,
                Output::Human => print_status(&status, cluster.spec().provider),
            }
        }
        Command::Destroy { spec: args, yes } => {
            let (cluster, stop) = open(&args, 8).await?;
            let name = cluster.spec().name.clone();
            let plan = cluster.plan_destroy().await?;
            if plan.is_empty() {
                match out {
                    Output::Json => {
                        print_json(&serde_json::json!({"cluster": name, "removed": 0}))?
                    }
                    Output::Human => outln!("cluster {name}: nothing to destroy"),
                }
                return Ok(());
            }
            let resources = plan.resources();
            confirm(&name, resources, yes)?;
            stop_on_ctrl_c(stop);
            let progress = Arc::new(Progress::bar(plan.actions.len(), out == Output::Human));
            let outcome = cluster.with_observer(progress.clone()).run(plan).await;
            progress.finish();
            let report = outcome?.report;
            match out {
                Output::Json => print_json(&serde_json::json!({
                    "cluster": name,
                    "removed": resources,
                    "report": report,
                }))?,
                Output::Human => outln!(
                    "cluster {name}: destroyed ({resources} resources, {} actions)",
                    report.done.len()
                ),
            }
        }
    }
    Ok(())
}

/// Loads the spec and opens its provider.
async fn open(
    args: &SpecArgs,
    concurrency: usize,
) -> Result<(Cluster, Arc<std::sync::atomic::AtomicBool>), CliError> {
    let spec = ClusterSpec::load(&args.input)?;
    let mut options = ExecuteOptions {
        concurrency: concurrency.max(1),
        ..ExecuteOptions::default()
    };
    options.lease.force = args.force_unlock;
    let stop = options.stop.clone();
    Ok((Cluster::open(spec).await?.with_options(options), stop))
}

/// First Ctrl-C: start nothing new and let in-flight actions finish; second: abort.
fn stop_on_ctrl_c(stop: Arc<std::sync::atomic::AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.store(true, Ordering::SeqCst);
            eprintln!("\nstopping: waiting for actions in flight (Ctrl-C again to abort); rerun to finish");
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("aborted: rerun the same command to finish the job");
                std::process::exit(130);
            }
        }
    });
}

/// Asks on a terminal; needs `--yes` otherwise.
fn confirm(cluster: &str, resources: usize, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "refusing to destroy cluster {cluster} ({resources} resources) without confirmation: pass --yes"
        )));
    }
    eprint!("Destroy cluster {cluster} and its {resources} resources? Type the cluster name to confirm: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::Message(format!("cannot read the confirmation: {e}")))?;
    if answer.trim() == cluster {
        Ok(())
    } else {
        Err(CliError::Message(
            "not confirmed: nothing was destroyed".into(),
        ))
    }
}

/// Progress on stderr for humans: a bar over a plan's actions (hidden when there is
/// nothing to do or output is JSON), or one line per node step of replace and scale.
struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Progress {
    fn bar(total: usize, human: bool) -> Self {
        if !human || total == 0 {
            return Self {
                bar: None,
                lines: false,
            };
        }
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {wide_msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Self {
            bar: Some(bar),
            lines: false,
        }
    }

    fn lines(human: bool) -> Self {
        Self {
            bar: None,
            lines: human,
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn started(&self, action: &PlannedAction) {
        if let Some(b) = &self.bar {
            b.set_message(action.action.to_string());
        }
    }

    fn finished(&self, action: &PlannedAction, error: Option<&Error>) {
        if let Some(b) = &self.bar {
            b.inc(1);
            match error {
                None => b.println(format!("  done  {}", action.action)),
                Some(e) => b.println(format!("  FAIL  {}: {e}", action.action)),
            }
        }
    }

    fn replacing(&self, old: &str, new: &str, step: &Step) {
        if !self.lines {
            return;
        }
        match (old.is_empty(), new.is_empty()) {
            (true, _) => eprintln!("{new}: {step}"),
            (_, true) => eprintln!("{old}: {step}"),
            _ => eprintln!("{old} -> {new}: {step}"),
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| CliError::Message(format!("cannot write JSON: {e}")))?;
    outln!("{s}");
    Ok(())
}

/// The plan's warnings, on stderr with the progress (stdout keeps the result).
fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn print_endpoints(status: &ClusterStatus) {
    for lb in &status.load_balancers {
        for e in lb.endpoints() {
            outln!("  {:<28} {e}", lb.name);
        }
    }
}

fn print_status(status: &ClusterStatus, provider: ProviderKind) {
    outln!("cluster {} on {provider}", status.cluster);
    for w in &status.warnings {
        outln!("warning: {w}");
    }
    if status.nodes.is_empty() {
        outln!("no nodes");
    } else {
        let rows: Vec<[String; 9]> = status
            .nodes
            .iter()
            .map(|n| {
                let mut state = format!("{:?}", n.state).to_lowercase();
                if n.stale {
                    state.push_str(" (stale)");
                }
                if !n.wanted {
                    state.push_str(" (not in spec)");
                }
                [
                    n.role.clone(),
                    n.slot.clone(),
                    n.name.clone(),
                    n.availability_zone.clone(),
                    state,
                    n.health.state.to_string(),
                    n.private_ip.clone().unwrap_or_else(|| "-".into()),
                    n.public_ip.clone().unwrap_or_else(|| "-".into()),
                    if n.volumes.is_empty() {
                        "-".into()
                    } else {
                        n.volumes.join(",")
                    },
                ]
            })
            .collect();
        table(
            &[
                "ROLE",
                "SLOT",
                "NAME",
                "AZ",
                "STATE",
                "HEALTH",
                "PRIVATE IP",
                "PUBLIC IP",
                "VOLUMES",
            ],
            &rows,
        );
    }
    for n in status
        .nodes
        .iter()
        .filter(|n| !n.health.findings.is_empty())
    {
        outln!("{} {}: {}", n.name, n.health.state, n.health.why());
    }
    if !status.missing.is_empty() {
        outln!(
            "missing (run apply or repair): {}",
            status.missing.join(", ")
        );
    }
    for (role, zones) in &status.spread {
        let z: Vec<String> = zones.iter().map(|(az, n)| format!("{az}={n}")).collect();
        outln!("spread {role}: {}", z.join(" "));
    }
    if !status.load_balancers.is_empty() {
        outln!("");
        let mut rows = Vec::new();
        for lb in &status.load_balancers {
            for l in &lb.listeners {
                let members: Vec<String> = l
                    .members
                    .iter()
                    .map(|m| {
                        format!(
                            "{}:{} {}",
                            m.instance,
                            m.port,
                            format!("{:?}", m.health).to_lowercase()
                        )
                    })
                    .collect();
                rows.push([
                    lb.name.clone(),
                    format!("{:?}", lb.state).to_lowercase(),
                    lb.address.clone().unwrap_or_else(|| "-".into()),
                    format!("{:?}/{}", l.protocol, l.port).to_lowercase(),
                    members.join(", "),
                ]);
            }
        }
        table(
            &["LOAD BALANCER", "STATE", "ADDRESS", "LISTENER", "MEMBERS"],
            &rows,
        );
    }
}

fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", parts.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}
