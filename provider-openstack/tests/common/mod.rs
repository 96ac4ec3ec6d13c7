//! Shared set-up of the tests against OpenStack's own services (emulators/openstack/):
//! finding the cloud, a provider builder for it, the `plinth` binary, and raw admin calls
//! with curl (to read back what the services hold with their own APIs).
//!
//! The cloud is found through `PLINTH_OS_TEST_CLOUD` (a clouds.yaml entry, the file named
//! by `OS_CLIENT_CONFIG_FILE`). Unset, each test prints why it is skipped and passes,
//! except under `CI`, where it fails.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use provider_core::wait::{Poller, Timeouts};
use provider_openstack::OpenStackBuilder;
use serde_json::{json, Value};

/// The variable naming the clouds.yaml entry of the services.
pub const CLOUD_VAR: &str = "PLINTH_OS_TEST_CLOUD";

/// The cloud name, or `None` (after printing why) when the test must be skipped.
pub fn cloud_name() -> Option<String> {
    match std::env::var(CLOUD_VAR) {
        Ok(c) if !c.is_empty() => Some(c),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("OpenStack services not running in CI: set {CLOUD_VAR} (and OS_CLIENT_CONFIG_FILE); see emulators/openstack/README.md");
            }
            eprintln!("skipped: OpenStack services not running (set {CLOUD_VAR} and OS_CLIENT_CONFIG_FILE; see emulators/openstack/README.md)");
            None
        }
    }
}

/// A builder for the services: a quick poller, and timeouts long enough for the fake
/// servers and amphorae of a busy machine.
pub fn builder(cloud: &str) -> OpenStackBuilder {
    OpenStackBuilder::from_cloud(cloud)
        .expect("clouds.yaml entry")
        .with_poller(Poller::new(
            Duration::from_millis(300),
            Duration::from_secs(3),
        ))
        .with_timeouts(Timeouts::all(Duration::from_secs(240)))
}

/// The workspace's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `plinth` binary: `PLINTH_BIN`, else `<target>/debug/plinth` (built by
/// `cargo test --workspace`), else it is built here; also when the one there was built
/// without OpenStack (as the README's local-only command builds it).
pub fn plinth_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PLINTH_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let bin = target.join("debug").join("plinth");
    let includes_openstack = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("OpenStack"));
    if !includes_openstack {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "cluster", "--bin", "plinth"])
            .current_dir(workspace())
            .status()
            .expect("run cargo to build plinth");
        assert!(status.success(), "building plinth failed: {status}");
    }
    bin
}

/// Runs `plinth` with `args`, echoing the command and its output to stderr.
pub fn plinth(bin: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin).args(args).output().expect("run plinth");
    eprintln!(
        "$ plinth {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One call with curl: (status line and headers, JSON body; `Null` when there is none).
pub fn curl(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> (String, Value) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-D",
        "-",
        "-X",
        method,
        "-H",
        "Content-Type: application/json",
    ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("X-Auth-Token: {t}")]);
    }
    if let Some(b) = body {
        cmd.args(["-d", &b.to_string()]);
    }
    let out = cmd.arg(url).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.to_string(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// The admin's token and its catalog's public endpoints by service type.
pub fn admin(auth_url: &str, password: &str) -> (String, BTreeMap<String, String>) {
    let auth = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}
    }});
    let (head, body) = curl(
        "POST",
        &format!("{auth_url}/auth/tokens"),
        None,
        Some(&auth),
    );
    let token = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("X-Subject-Token: ")
                .or_else(|| l.strip_prefix("x-subject-token: "))
        })
        .expect("an admin token")
        .trim()
        .to_string();
    let mut endpoints = BTreeMap::new();
    for s in body["token"]["catalog"].as_array().expect("a catalog") {
        let public = s["endpoints"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["interface"] == "public"))
            .and_then(|e| e["url"].as_str());
        if let (Some(t), Some(url)) = (s["type"].as_str(), public) {
            endpoints.insert(t.to_string(), url.trim_end_matches('/').to_string());
        }
    }
    (token, endpoints)
}
