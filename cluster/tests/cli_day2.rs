//! Day-2 commands of the `plinth` binary on the local example, run as a user would:
//! `replace --max-surge 0` (delete-first), `status` with each node's health, `repair`
//! (dry run, a real pass, the circuit breaker's exit 3) and `watch` stopped by SIGTERM.
#![cfg(feature = "local")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/local.properties")
}

/// `plinth args` on the local cloud of `state_dir`, with no input.
fn command(args: &[&str], state_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_plinth"));
    c.args(args)
        .env("PLINTH_LOCAL_STATE_DIR", state_dir)
        .env_remove("PLINTH_LOCAL_HELPER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

fn plinth(args: &[&str], state_dir: &Path) -> Output {
    command(args, state_dir).output().expect("run plinth")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Destroys the example cluster of a state dir even if the test fails halfway.
struct Cleanup<'a>(&'a Path, PathBuf);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = plinth(
            &["destroy", "--yes", "-i", self.1.to_str().unwrap_or("")],
            self.0,
        );
    }
}

/// The process of the local instance bound to `address` (its environment says so).
fn instance_pid(address: &str) -> Option<u32> {
    let want = format!("PLINTH_ADDRESS={address}");
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == want.as_bytes()))
        })
        .collect();
    pids.sort();
    pids.first().copied()
}

/// Kills the processes of the workers named, found by their private addresses.
fn kill_workers(status: &serde_json::Value, names: &[&str]) {
    for n in status["nodes"].as_array().expect("nodes") {
        if names.iter().any(|w| n["name"] == *w) {
            let ip = n["private_ip"].as_str().expect("private ip");
            let pid = instance_pid(ip).unwrap_or_else(|| panic!("no process at {ip}"));
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn node<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("no node {name} in {status}"))
}

#[test]
fn replace_delete_first_status_health_repair_and_watch() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let spec = example();
    let spec_s = spec.to_str().unwrap();
    let _cleanup = Cleanup(&state, spec.clone());
    let out = plinth(&["apply", "-i", spec_s], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = |args: &[&str]| {
        let mut a = vec!["status", "--output", "json", "-i", spec_s];
        a.extend_from_slice(args);
        json(&plinth(&a, &state))
    };
    let before = status(&[]);

    // Delete-first needs room for nobody down: refused as a usage error.
    let out = plinth(
        &[
            "replace",
            "-i",
            spec_s,
            "--nodes",
            "plinth-local-node-0",
            "--max-surge",
            "0",
        ],
        &state,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("needs --max-unavailable 1"),
        "{}",
        text(&out.stderr)
    );
    // `--max-surge 0 --max-unavailable 1`: the old node goes first, its successor comes
    // in the same AZ.
    let out = plinth(
        &[
            "replace",
            "--output",
            "json",
            "-i",
            spec_s,
            "--nodes",
            "plinth-local-node-0",
            "--max-surge",
            "0",
            "--max-unavailable",
            "1",
            "--drain-secs",
            "0",
        ],
        &state,
    );
    let report = json(&out);
    let r = &report["replaced"][0];
    assert_eq!(r["old"], "plinth-local-node-0", "{report}");
    assert_eq!(r["new"], "plinth-local-node-0-r1");
    assert_eq!(
        r["availability_zone"],
        node(&before, "plinth-local-node-0")["availability_zone"]
    );
    let after = status(&[]);
    assert_eq!(after["spread"], before["spread"]);

    // A dead worker: status says why, a dry run says what it would do, repair does it.
    kill_workers(&after, &["plinth-local-node-1"]);
    let st = status(&[]);
    let h = &node(&st, "plinth-local-node-1")["health"];
    assert_eq!(h["state"], "suspect", "{st}");
    assert_eq!(h["findings"][0]["signal"], "cloud");
    let out = plinth(&["status", "-i", spec_s], &state);
    assert!(
        text(&out.stdout)
            .contains("plinth-local-node-1 suspect: cloud: the cloud reports it failed"),
        "{}",
        text(&out.stdout)
    );
    let quick = [
        "--cloud-hold-secs",
        "1",
        "--lb-hold-secs",
        "1",
        "--drain-secs",
        "0",
    ];
    let mut dry = vec!["repair", "-i", spec_s, "--dry-run"];
    dry.extend_from_slice(&quick);
    let out = plinth(&dry, &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("would replace plinth-local-node-1"),
        "{}",
        text(&out.stdout)
    );
    let mut fix = vec!["repair", "--output", "json", "-i", spec_s];
    fix.extend_from_slice(&quick);
    let report = json(&plinth(&fix, &state));
    assert_eq!(
        report["replaced"][0]["old"], "plinth-local-node-1",
        "{report}"
    );
    assert_eq!(status(&[])["spread"], before["spread"]);

    // Every worker dead: the circuit breaker holds, exit 3, nothing replaced.
    let st = status(&[]);
    let workers: Vec<String> = st["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "node")
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    let names: Vec<&str> = workers.iter().map(String::as_str).collect();
    kill_workers(&st, &names);
    let mut held = vec!["repair", "-i", spec_s];
    held.extend_from_slice(&quick);
    let out = plinth(&held, &state);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("circuit breaker held"),
        "{}",
        text(&out.stdout)
    );
    let names_of = |s: &serde_json::Value| -> Vec<String> {
        s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names_of(&status(&[])), names_of(&st));

    // `watch` logs the breaker and stops cleanly on SIGTERM with exit 0.
    let mut w = vec!["watch", "-i", spec_s, "--interval-secs", "1"];
    w.extend_from_slice(&quick);
    let child = command(&w, &state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watch");
    std::thread::sleep(Duration::from_secs(4));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("watch ends");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("circuit breaker held"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("watch stopped after"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(names_of(&status(&[])), names_of(&st));
}
