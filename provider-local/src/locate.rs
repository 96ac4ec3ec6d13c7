//! Finding the `plinth-local` helper executable (daemon and instance processes).
//!
//! Looked up, in order: [`LocalConfig::helper`](crate::LocalConfig::helper), the
//! `PLINTH_LOCAL_HELPER` environment variable, next to the running program, and in its
//! parent directory (a `cargo test` binary lives in `target/<profile>/deps/`, the bin
//! target in `target/<profile>/`). `cargo build` and `cargo test --workspace` build it.

use std::path::{Path, PathBuf};

use crate::config::HELPER_ENV;

/// File name of the helper.
pub const HELPER_NAME: &str = "plinth-local";

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

/// Where the helper is, given an explicit path from the config, if any.
pub fn helper_path(configured: Option<&Path>) -> Result<PathBuf, HelperNotFound> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = configured {
        candidates.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(HELPER_ENV).filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join(HELPER_NAME));
            if let Some(up) = dir.parent() {
                candidates.push(up.join(HELPER_NAME));
            }
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| HelperNotFound {
            tried: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}
