//! `plinth replace` and `plinth scale`: the CLI over [`cluster::Cluster::replace`] and
//! [`cluster::Cluster::scale`]. Progress goes to stderr one line per node step; the summary (or
//! one JSON document with `--output json`) to stdout. The first Ctrl-C lets the
//! actions in flight finish and starts no new one; a second aborts; a rerun finishes.

use std::time::Duration;

use std::sync::Arc;

use cluster::replace::{Probe, ReplaceOptions};
use cluster::{Role, Selector};

use super::{open, print_json, stop_on_ctrl_c, CliError, Output, Progress, SpecArgs};

/// Knobs shared by replace and scale.
#[derive(Debug, clap::Args)]
pub struct RollingArgs {
    /// Health probe port on new nodes (TCP, or HTTP with --probe-path).
    #[arg(long)]
    probe_port: Option<u16>,
    /// HTTP path of the probe (needs --probe-port).
    #[arg(long, requires = "probe_port")]
    probe_path: Option<String>,
    /// Seconds an old node stays up after leaving its load balancers.
    #[arg(long, default_value_t = 5)]
    drain_secs: u64,
    /// Seconds a new node may take to run and pass its checks.
    #[arg(long, default_value_t = 600)]
    ready_timeout_secs: u64,
}

impl RollingArgs {
    /// The replacement options these flags set.
    pub fn options(&self) -> ReplaceOptions {
        ReplaceOptions {
            probe: self.probe_port.map(|port| match &self.probe_path {
                Some(path) => Probe::Http {
                    port,
                    path: path.clone(),
                },
                None => Probe::Tcp { port },
            }),
            drain: Duration::from_secs(self.drain_secs),
            ready_timeout: Duration::from_secs(self.ready_timeout_secs),
            ..ReplaceOptions::default()
        }
    }
}

/// `plinth replace`.
#[derive(Debug, clap::Args)]
pub struct ReplaceArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// Replace every node of this role (master, node, storage).
    #[arg(long, conflicts_with_all = ["nodes", "stale", "all"])]
    role: Option<String>,
    /// Replace these nodes (comma-separated names).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["stale", "all"])]
    nodes: Vec<String>,
    /// Replace the nodes whose spec hash is out of date (after an image or flavor change).
    #[arg(long, conflicts_with = "all")]
    stale: bool,
    /// Replace every node.
    #[arg(long)]
    all: bool,
    /// New nodes created before their old ones go, at once (nodes only; masters and
    /// storage nodes go one at a time). 0 replaces delete-first, for a project whose
    /// quota has no room for one more instance: each old node leaves its load balancers,
    /// drains, hands over its data volume (detached, kept) and floating IP, and is
    /// deleted before its successor is created in the same AZ and serves again. Needs
    /// --max-unavailable 1 or more; refused for masters that would fall below quorum
    /// (a single master: use --max-surge 1 for the masters).
    #[arg(long, default_value_t = 1)]
    max_surge: usize,
    /// With --max-surge 0: nodes that may be down at once. Otherwise: further nodes
    /// replaced at once (old nodes still serve until replaced).
    #[arg(long, default_value_t = 0)]
    max_unavailable: usize,
    /// Repeat a replacement that already finished.
    #[arg(long)]
    again: bool,
    #[command(flatten)]
    rolling: RollingArgs,
}

/// `plinth scale ROLE N`.
#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// The role: master, node or storage.
    role: String,
    /// Nodes the role should have.
    count: usize,
    #[command(flatten)]
    rolling: RollingArgs,
}

fn role(s: &str) -> Result<Role, CliError> {
    Role::parse(s)
        .ok_or_else(|| CliError::Usage(format!("unknown role {s:?}: use master, node or storage")))
}

/// Runs `plinth replace`.
pub async fn replace(args: ReplaceArgs, out: Output) -> Result<(), CliError> {
    let selector = if let Some(r) = &args.role {
        Selector::Role(role(r)?)
    } else if !args.nodes.is_empty() {
        Selector::Nodes(args.nodes.clone())
    } else if args.stale {
        Selector::Stale
    } else if args.all {
        Selector::All
    } else {
        return Err(CliError::Usage(
            "say what to replace: --all, --role ROLE, --nodes A,B or --stale".into(),
        ));
    };
    let (cluster, stop) = open(&args.spec, 8).await?;
    stop_on_ctrl_c(stop);
    let opts = ReplaceOptions {
        max_surge: args.max_surge,
        max_unavailable: args.max_unavailable,
        again: args.again,
        ..args.rolling.options()
    };
    let report = cluster
        .with_observer(Arc::new(Progress::lines(out == Output::Human)))
        .replace(&selector, &opts)
        .await?;
    match out {
        Output::Json => print_json(&report)?,
        Output::Human => outln!("{report}"),
    }
    Ok(())
}

/// Runs `plinth scale`.
pub async fn scale(args: ScaleArgs, out: Output) -> Result<(), CliError> {
    let r = role(&args.role)?;
    let (cluster, stop) = open(&args.spec, 8).await?;
    stop_on_ctrl_c(stop);
    let report = cluster
        .with_observer(Arc::new(Progress::lines(out == Output::Human)))
        .scale(r, args.count, &args.rolling.options())
        .await?;
    match out {
        Output::Json => print_json(&report)?,
        Output::Human => outln!("{report}"),
    }
    Ok(())
}
