//! `plinth`: lay out a multi-AZ cluster on any Plinth provider.
//!
//! ```text
//! plinth plan    -i examples/local.properties
//! plinth apply   -i examples/local.properties      (alias: install)
//! plinth status  -i examples/local.properties
//! plinth destroy -i examples/local.properties [--yes]
//! plinth replace -i examples/local.properties --all | --role node | --nodes A,B | --stale
//! plinth scale   -i examples/local.properties node 6
//! ```
//!
//! The spec's `Provider` picks the provider; providers are compiled in through cargo
//! features (`local`, `openstack`, `aws`, `vsphere`, all on by default).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use cluster::execute::{ExecuteOptions, Observer};
use cluster::plan::PlannedAction;
use cluster::status::ClusterStatus;
use cluster::{destroy, Cluster, ClusterSpec, Error, ProviderKind, ProviderSettings};
use indicatif::{ProgressBar, ProgressStyle};
use provider_core::Provider;

#[path = "plinth/rolling.rs"]
mod rolling;

#[derive(Debug, Parser)]
#[command(
    name = "plinth",
    version,
    about = "Multi-AZ, highly available clusters on any IaaS"
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
}

fn main() -> ExitCode {
    // When provider-local started this program as its helper (daemon or instance),
    // this runs it and exits; so `cargo run -p cluster` needs nothing else built.
    #[cfg(feature = "local")]
    provider_local::helper::run_if_requested();
    let cli = Cli::parse();
    init_tracing(cli.verbose);
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
            ExitCode::FAILURE
        }
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
    #[error("{0}")]
    Message(String),
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
            let (plan, _) = cluster.plan().await?;
            match out {
                Output::Json => print_json(&plan)?,
                Output::Human => print!("{plan}"),
            }
        }
        Command::Apply { spec, concurrency } => {
            let (cluster, stop) = open(&spec, concurrency).await?;
            stop_on_ctrl_c(stop);
            let (plan, observed) = cluster.plan().await?;
            let progress = Progress::new(plan.actions.len(), out == Output::Human);
            let outcome = cluster.run(plan, &observed, &progress).await;
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
                    if outcome.plan.is_empty() {
                        println!("cluster {}: up to date, nothing to do", status.cluster);
                    } else {
                        println!(
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
            let provider = cluster.provider().clone();
            let opts = cluster.options().clone();
            let (plan, observed) = destroy::plan(provider.clone(), &name, &opts).await?;
            if observed.is_empty() {
                match out {
                    Output::Json => {
                        print_json(&serde_json::json!({"cluster": name, "removed": 0}))?
                    }
                    Output::Human => println!("cluster {name}: nothing to destroy"),
                }
                return Ok(());
            }
            confirm(&name, observed.len(), yes)?;
            stop_on_ctrl_c(stop);
            let progress = Progress::new(plan.actions.len(), out == Output::Human);
            let report = destroy::run(provider, &plan, &observed, &opts, &progress).await;
            progress.finish();
            let report = report?;
            match out {
                Output::Json => print_json(&serde_json::json!({
                    "cluster": name,
                    "removed": observed.len(),
                    "report": report,
                }))?,
                Output::Human => println!(
                    "cluster {name}: destroyed ({} resources, {} actions)",
                    observed.len(),
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
    let provider = open_provider(&spec).await?;
    let mut options = ExecuteOptions {
        concurrency: concurrency.max(1),
        ..ExecuteOptions::default()
    };
    options.lease.force = args.force_unlock;
    let stop = options.stop.clone();
    Ok((Cluster::new(spec, provider).with_options(options), stop))
}

/// Maps the spec to a concrete provider; only the binary knows them.
async fn open_provider(spec: &ClusterSpec) -> Result<Arc<dyn Provider>, CliError> {
    match &spec.settings {
        #[cfg(feature = "local")]
        ProviderSettings::Local(settings) => local::open(spec, settings).await,
        #[cfg(not(feature = "local"))]
        ProviderSettings::Local(_) => Err(not_compiled(ProviderKind::Local, "local")),
        #[cfg(feature = "openstack")]
        ProviderSettings::OpenStack(settings) => openstack::open(settings).await,
        #[cfg(not(feature = "openstack"))]
        ProviderSettings::OpenStack(_) => Err(not_compiled(ProviderKind::OpenStack, "openstack")),
        #[cfg(feature = "aws")]
        ProviderSettings::Aws(settings) => aws::open(spec, settings).await,
        #[cfg(not(feature = "aws"))]
        ProviderSettings::Aws(_) => Err(not_compiled(ProviderKind::Aws, "aws")),
        #[cfg(feature = "vsphere")]
        ProviderSettings::VSphere(settings) => vsphere::open(spec, settings),
        #[cfg(not(feature = "vsphere"))]
        ProviderSettings::VSphere(_) => Err(not_compiled(ProviderKind::VSphere, "vsphere")),
    }
}

/// Only a build that leaves a cloud out can need this.
#[cfg(not(all(
    feature = "local",
    feature = "openstack",
    feature = "aws",
    feature = "vsphere"
)))]
fn not_compiled(kind: ProviderKind, feature: &str) -> CliError {
    CliError::Message(format!(
        "provider {kind} is not compiled into this build: rebuild with `--features {feature}`"
    ))
}

#[cfg(feature = "aws")]
mod aws {
    use std::sync::Arc;

    use cluster::spec::AwsSettings;
    use cluster::ClusterSpec;
    use provider_aws::AwsBuilder;
    use provider_core::Provider;

    use super::CliError;

    /// Opens provider-aws: credentials from the AWS config chain (and
    /// `AWS_ENDPOINT_URL` for an emulator), `AWS.Region` and `AWS.VpcID` from the spec,
    /// and the spec's AZs with `AWS.SubnetIDs` (one subnet per AZ, in AZ order).
    pub async fn open(spec: &ClusterSpec, s: &AwsSettings) -> Result<Arc<dyn Provider>, CliError> {
        let mut b = AwsBuilder::from_env()
            .region(s.region.clone())
            .availability_zones(spec.availability_zones.iter().cloned())
            .subnet_ids(spec.network.subnets.iter().cloned());
        if let Some(v) = &s.vpc_id {
            b = b.vpc_id(v.clone());
        }
        Ok(Arc::new(b.build().await?))
    }
}

#[cfg(feature = "openstack")]
mod openstack {
    use std::sync::Arc;

    use cluster::spec::OpenStackSettings;
    use provider_core::Provider;
    use provider_openstack::OpenStackBuilder;

    use super::CliError;

    /// Opens provider-openstack with the spec's `OpenStack.*` settings.
    pub async fn open(s: &OpenStackSettings) -> Result<Arc<dyn Provider>, CliError> {
        let mut b = OpenStackBuilder::new()
            .with_auth_url(s.auth_url.clone())
            .with_username(s.username.clone())
            .with_password(s.password.clone());
        if let Some(v) = &s.domain_name {
            b = b.with_domain_name(v.clone());
        }
        if let Some(v) = &s.project_id {
            b = b.with_project_id(v.clone());
        }
        if let Some(v) = &s.project_name {
            b = b.with_project_name(v.clone());
        }
        if let Some(v) = &s.region_name {
            b = b.with_region_name(v.clone());
        }
        if let Some(v) = &s.ca_cert_file {
            b = b.with_ca_cert_file(v.clone());
        }
        Ok(Arc::new(b.build().await?))
    }
}

#[cfg(feature = "vsphere")]
mod vsphere {
    use std::sync::Arc;

    use cluster::spec::VSphereSettings;
    use cluster::ClusterSpec;
    use provider_core::Provider;
    use provider_vsphere::VSphereBuilder;

    use super::CliError;

    /// Opens provider-vsphere with the spec's `VSphere.*` settings: `VSphere.Clusters`
    /// are the spec's AZs, `VSphere.Network` its network, `VSphere.Template` the roles'
    /// image, and the `VSphere.*Flavor` keys the roles' flavors (`cpus:memoryMiB`).
    /// It connects lazily, on the first call.
    pub fn open(spec: &ClusterSpec, s: &VSphereSettings) -> Result<Arc<dyn Provider>, CliError> {
        let mut b = VSphereBuilder::new()
            .with_url(s.url.clone())
            .with_username(s.username.clone())
            .with_password_secret(s.password.clone())
            .with_datacenter(s.datacenter.clone())
            .with_clusters(spec.availability_zones.iter().cloned());
        if let Some(v) = &s.datastore {
            b = b.with_datastore(v.clone());
        }
        if let Some(v) = &spec.network.network {
            b = b.with_network(v.clone());
        }
        if !spec.masters.image.is_empty() {
            b = b.with_template(spec.masters.image.clone());
        }
        for (role, flavor) in [
            ("master", &spec.masters.flavor),
            ("node", &spec.nodes.flavor),
            ("glusterfs", &spec.storage.flavor),
        ] {
            if !flavor.is_empty() {
                b = b.with_role_flavor(role, flavor.clone());
            }
        }
        if let Some(v) = &s.ca_cert_file {
            b = b.with_ca_cert_file(v.clone());
        }
        Ok(Arc::new(b.build()?))
    }
}

#[cfg(feature = "local")]
mod local {
    use std::sync::Arc;

    use cluster::spec::LocalSettings;
    use cluster::ClusterSpec;
    use provider_core::Provider;
    use provider_local::{LocalConfig, LocalProvider};

    use super::CliError;

    /// Opens provider-local with the spec's AZs and state directory.
    pub async fn open(
        spec: &ClusterSpec,
        settings: &LocalSettings,
    ) -> Result<Arc<dyn Provider>, CliError> {
        let mut config = LocalConfig::from_env();
        if let Some(dir) = &settings.state_dir {
            config.state_dir = dir.clone();
        }
        config.availability_zones = spec.availability_zones.clone();
        let p = LocalProvider::open(config).await?;
        Ok(Arc::new(p))
    }
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
        return Err(CliError::Message(format!(
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

/// A progress bar over the plan's actions (hidden when stderr is not a terminal).
struct Progress(Option<ProgressBar>);

impl Progress {
    fn new(total: usize, human: bool) -> Self {
        if !human || total == 0 {
            return Self(None);
        }
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {wide_msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Self(Some(bar))
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn started(&self, action: &PlannedAction) {
        if let Some(b) = &self.0 {
            b.set_message(action.action.to_string());
        }
    }

    fn finished(&self, action: &PlannedAction, error: Option<&Error>) {
        if let Some(b) = &self.0 {
            b.inc(1);
            match error {
                None => b.println(format!("  done  {}", action.action)),
                Some(e) => b.println(format!("  FAIL  {}: {e}", action.action)),
            }
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| CliError::Message(format!("cannot write JSON: {e}")))?;
    println!("{s}");
    Ok(())
}

fn print_endpoints(status: &ClusterStatus) {
    for lb in &status.load_balancers {
        for e in lb.endpoints() {
            println!("  {:<28} {e}", lb.name);
        }
    }
}

fn print_status(status: &ClusterStatus, provider: ProviderKind) {
    println!("cluster {} on {provider}", status.cluster);
    if status.nodes.is_empty() {
        println!("no nodes");
    } else {
        let rows: Vec<[String; 7]> = status
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
                    n.name.clone(),
                    n.availability_zone.clone(),
                    state,
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
                "NAME",
                "AZ",
                "STATE",
                "PRIVATE IP",
                "PUBLIC IP",
                "VOLUMES",
            ],
            &rows,
        );
    }
    if !status.missing.is_empty() {
        println!("missing (run apply): {}", status.missing.join(", "));
    }
    for (role, zones) in &status.spread {
        let z: Vec<String> = zones.iter().map(|(az, n)| format!("{az}={n}")).collect();
        println!("spread {role}: {}", z.join(" "));
    }
    if !status.load_balancers.is_empty() {
        println!();
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
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}
