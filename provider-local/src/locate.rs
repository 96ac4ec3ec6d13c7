//! Finding the helper executable (daemon and instance processes).
//!
//! Looked up, in order: [`LocalConfig::helper`](crate::LocalConfig::helper), the
//! `PLINTH_LOCAL_HELPER` environment variable, the running program itself when it
//! called [`crate::helper::run_if_requested`], then a `plinth-local` next to the
//! running program or in its parent directory (a `cargo test` binary lives in
//! `target/<profile>/deps/`, the bin target in `target/<profile>/`). `cargo build` and
//! `cargo test --workspace` build `plinth-local`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::HELPER_ENV;

/// First argument that marks a hosted helper invocation (`<program> __plinth-local
/// daemon|instance <dir>`).
pub const HOSTED_MARKER: &str = "__plinth-local";

static HOSTED: AtomicBool = AtomicBool::new(false);

/// Whether this program called [`crate::helper::run_if_requested`] (and so can be its
/// own helper).
pub fn is_hosted() -> bool {
    HOSTED.load(Ordering::SeqCst)
}

/// Records that this program can host the helper.
pub(crate) fn mark_hosted() {
    HOSTED.store(true, Ordering::SeqCst);
}

/// File name of the helper.
pub const HELPER_NAME: &str = "plinth-local";

/// How to start a helper: a program and the arguments before `daemon|instance <dir>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperCommand {
    /// The executable.
    pub program: PathBuf,
    /// Leading arguments (the hosted marker, for a hosting program).
    pub prefix: Vec<OsString>,
}

impl HelperCommand {
    /// A command for `role` (`daemon` or `instance`) on `dir`.
    pub fn command(&self, role: &str, dir: &Path) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.program);
        c.args(&self.prefix).arg(role).arg(dir);
        c
    }
}

/// The helper was not found anywhere.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "cannot find the `{HELPER_NAME}` helper executable (looked in: {tried}): build it with \
     `cargo build -p provider-local` and set {HELPER_ENV} to its path if it is not next to \
     this program"
)]
pub struct HelperNotFound {
    /// Where we looked, comma-separated.
    pub tried: String,
}

/// How to start the helper, given an explicit path from the config, if any.
pub fn helper_command(configured: Option<&Path>) -> Result<HelperCommand, HelperNotFound> {
    let plain = |p: PathBuf| HelperCommand {
        program: p,
        prefix: Vec::new(),
    };
    let mut candidates: Vec<HelperCommand> = Vec::new();
    if let Some(p) = configured {
        candidates.push(plain(p.to_path_buf()));
    }
    if let Some(p) = std::env::var_os(HELPER_ENV).filter(|p| !p.is_empty()) {
        candidates.push(plain(PathBuf::from(p)));
    }
    if let Ok(exe) = std::env::current_exe() {
        if is_hosted() {
            candidates.push(HelperCommand {
                program: exe.clone(),
                prefix: vec![HOSTED_MARKER.into()],
            });
        }
        if let Some(dir) = exe.parent() {
            candidates.push(plain(dir.join(HELPER_NAME)));
            if let Some(up) = dir.parent() {
                candidates.push(plain(up.join(HELPER_NAME)));
            }
        }
    }
    candidates
        .iter()
        .find(|c| c.program.is_file())
        .cloned()
        .ok_or_else(|| HelperNotFound {
            tried: candidates
                .iter()
                .map(|c| c.program.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}
