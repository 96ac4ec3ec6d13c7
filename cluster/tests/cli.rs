//! The `plinth` binary, run as a user would.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
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

#[test]
fn invalid_spec_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.properties");
    std::fs::write(
        &spec,
        "Provider = local\nMasterCount = 2\nNodeCount = 4\nLocal.Imag = http\n",
    )
    .unwrap();
    let out = plinth(&["plan", "-i", spec.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2), "a spec error exits 2");
    let err = text(&out.stderr);
    assert!(err.contains("the spec has 3 problems"), "{err}");
    assert!(
        err.contains("bad.properties:2: MasterCount: 2 is even"),
        "{err}"
    );
    assert!(
        err.contains(
            "bad.properties:3: NodeCount: 4 is not a multiple of the 3 availability zones"
        ),
        "{err}"
    );
    assert!(
        err.contains("bad.properties:4: Local.Imag: unknown key: did you mean Local.Image?"),
        "{err}"
    );
}

/// A cloud whose feature is off says how to get it. (Compiled-in clouds connect for
/// real; their own crates test that, against emulators.)
#[test]
fn clouds_not_compiled_in_say_how_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    let version = text(&plinth(&["--version"], dir.path()).stdout);
    assert!(
        version.starts_with("plinth 0.1.0 (providers: "),
        "{version}"
    );
    assert_eq!(
        version.contains("local"),
        cfg!(feature = "local"),
        "{version}"
    );
    for (file, line, name, feature, compiled) in [
        ("aws.properties", 5, "AWS", "aws", cfg!(feature = "aws")),
        (
            "openstack.properties",
            5,
            "OpenStack",
            "openstack",
            cfg!(feature = "openstack"),
        ),
        (
            "vsphere.properties",
            15,
            "VSphere",
            "vsphere",
            cfg!(feature = "vsphere"),
        ),
    ] {
        // `--version` names exactly the clouds this build includes.
        assert_eq!(version.contains(name), compiled, "{name}: {version}");
        if compiled {
            continue;
        }
        let out = plinth(&["plan", "-i", example(file).to_str().unwrap()], dir.path());
        // A spec problem (fix the build or the file): exit 2, naming the line and key.
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = text(&out.stderr);
        let want = format!(
            "{file}:{line}: Provider: provider {name} is not compiled into this build: rebuild with `--features {feature}`"
        );
        assert!(err.contains(&want), "{file}: {err}");
    }
}

#[test]
fn missing_input_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = plinth(&["apply"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--input <FILE>"));
    let out = plinth(&["install", "-i", "/no/such/file.properties"], dir.path());
    assert!(text(&out.stderr).contains("cannot read /no/such/file.properties"));
    assert_eq!(out.status.code(), Some(2));
    let out = plinth(
        &[
            "replace",
            "-i",
            example("local.properties").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("say what to replace"));
    let out = plinth(&["--help"], dir.path());
    assert!(text(&out.stdout).contains("Exit status: 0 done; 1 the cloud"));
}

/// The local example without some keys and with others, in a file of `dir`.
#[cfg(feature = "local")]
fn local_spec(dir: &Path, file: &str, drop: &[&str], add: &str) -> PathBuf {
    let text = std::fs::read_to_string(example("local.properties")).unwrap();
    let mut out: Vec<&str> = text
        .lines()
        .filter(|l| !drop.iter().any(|k| l.starts_with(&format!("{k} "))))
        .collect();
    out.push(add);
    let path = dir.join(file);
    std::fs::write(&path, out.join("\n")).unwrap();
    path
}

#[cfg(feature = "local")]
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let spec = example("local.properties");
    for args in [
        vec!["plan", "-i", spec.to_str().unwrap()],
        vec!["plan", "--output", "json", "-i", spec.to_str().unwrap()],
        vec!["status", "-i", spec.to_str().unwrap()],
    ] {
        let mut child = command(&args, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before plinth writes, as `| head -c 0` would.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[cfg(feature = "local")]
#[test]
fn a_default_cluster_name_is_said_in_plan_apply_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let spec = local_spec(
        dir.path(),
        "noname.properties",
        &["ClusterName", "NodeCount", "GlusterNodeCount"],
        "NodeCount = 0\nGlusterNodeCount = 0\nLoadBalancer = external\n",
    );
    let spec_s = spec.to_str().unwrap();
    let _cleanup = Cleanup(&state, spec.clone());
    let notice = "ClusterName is not set: the cluster is named plinth";

    let out = plinth(&["plan", "-i", spec_s], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("warning: {notice}")),
        "{}",
        text(&out.stdout)
    );
    let out = plinth(&["plan", "--output", "json", "-i", spec_s], &state);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan["warnings"].to_string().contains(notice), "{plan}");

    let out = plinth(&["apply", "-i", spec_s], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("warning: {notice}")),
        "{}",
        text(&out.stderr)
    );
    let out = plinth(&["apply", "--output", "json", "-i", spec_s], &state);
    let applied: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        applied["plan"]["warnings"].to_string().contains(notice),
        "{applied}"
    );

    let out = plinth(&["status", "-i", spec_s], &state);
    assert!(
        text(&out.stdout).contains(&format!("warning: {notice}")),
        "{}",
        text(&out.stdout)
    );
    let out = plinth(&["status", "--output", "json", "-i", spec_s], &state);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(st["warnings"].to_string().contains(notice), "{st}");
    assert_eq!(st["nodes"][0]["slot"], "plinth-master-0", "{st}");
}

#[cfg(feature = "local")]
#[test]
fn a_failed_run_exits_1_and_ctrl_c_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A state directory the local cloud cannot create: the spec is fine, the cloud fails.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = plinth(
        &["apply", "-i", example("local.properties").to_str().unwrap()],
        &file.join("state"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    let spec = local_spec(
        dir.path(),
        "intr.properties",
        &["ClusterName"],
        "ClusterName = intr\n",
    );
    let spec_s = spec.to_str().unwrap();
    let _cleanup = Cleanup(&state, spec.clone());
    let out = plinth(&["apply", "-i", spec_s], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A replacement with a long drain, interrupted once: the actions in flight finish,
    // no new one starts, and the exit says so.
    let child = command(
        &["replace", "--all", "--drain-secs", "3", "-i", spec_s],
        &state,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("stopping: waiting for actions in flight"),
        "{err}"
    );
    // The rerun finishes the job.
    let out = plinth(
        &["replace", "--all", "--drain-secs", "0", "-i", spec_s],
        &state,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("resumed"),
        "{}",
        text(&out.stdout)
    );
}

/// Destroys the example cluster of a state dir even if the test fails halfway.
#[cfg(feature = "local")]
struct Cleanup<'a>(&'a Path, PathBuf);

#[cfg(feature = "local")]
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = plinth(
            &["destroy", "--yes", "-i", self.1.to_str().unwrap_or("")],
            self.0,
        );
    }
}

#[cfg(feature = "local")]
fn http_get(addr: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: plinth\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

#[cfg(feature = "local")]
#[test]
fn local_example_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let spec = example("local.properties");
    let spec_s = spec.to_str().unwrap();
    let _cleanup = Cleanup(&state, spec.clone());

    let out = plinth(&["plan", "--output", "json", "-i", spec_s], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["actions"].as_array().map(Vec::len), Some(18));

    let out = plinth(&["apply", "--output", "json", "-i", spec_s], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let applied: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lbs = applied["status"]["load_balancers"].as_array().unwrap();
    let ingress = lbs
        .iter()
        .find(|l| l["name"] == "plinth-local-ingress")
        .unwrap();
    let addr = format!("{}:8080", ingress["address"].as_str().unwrap());
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        if let Ok(body) = http_get(&addr) {
            if let Some(name) = body
                .split_whitespace()
                .find_map(|w| w.strip_prefix("name="))
            {
                seen.insert(name.to_string());
            }
        }
        if seen.len() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(seen.len(), 3, "round robin over the 3 nodes: {seen:?}");
    assert!(seen.iter().all(|n| n.starts_with("plinth-local-node-")));

    let out = plinth(&["status", "-i", spec_s], &state);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for want in [
        "plinth-local-master-0",
        "plinth-local-storage-1-data",
        "LOAD BALANCER",
        "spread node: local-a=1 local-b=1 local-c=1",
    ] {
        assert!(s.contains(want), "{want} not in\n{s}");
    }

    let out = plinth(&["apply", "-i", spec_s], &state);
    assert!(
        text(&out.stdout).contains("up to date, nothing to do"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains(&format!("http://{addr}/")),
        "{}",
        text(&out.stdout)
    );

    let out = plinth(&["destroy", "-i", spec_s], &state);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("without confirmation: pass --yes"));

    let out = plinth(&["destroy", "--yes", "-i", spec_s], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("destroyed"));
    let out = plinth(&["status", "--output", "json", "-i", spec_s], &state);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["nodes"].as_array().map(Vec::len), Some(0));
    assert_eq!(st["load_balancers"].as_array().map(Vec::len), Some(0));
}

/// What the spec names but the cloud lacks is refused before anything is created: every
/// problem, each with its key, exit 2, for `plan` and `apply` alike.
#[cfg(feature = "local")]
#[test]
fn the_preflight_refuses_what_the_cloud_lacks_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let bad = local_spec(
        dir.path(),
        "pf.properties",
        &[
            "ClusterName",
            "Local.Image",
            "Local.NodeFlavor",
            "Local.FloatingIPPool",
        ],
        "ClusterName = pf\nLocal.Image = no-such-image\nLocal.NodeFlavor = huge\nLocal.FloatingIPPool = nopool\n",
    );
    let bad_s = bad.to_str().unwrap();
    let _cleanup = Cleanup(&state, bad.clone());
    for verb in ["plan", "apply"] {
        let out = plinth(&[verb, "-i", bad_s], &state);
        assert_eq!(out.status.code(), Some(2), "{verb}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        for want in [
            "error: 3 problems with what the spec names on the cloud (nothing was created):",
            "  Local.Image: no image with id or name `no-such-image`; images: http, shell",
            "  Local.NodeFlavor: no flavor with id or name `huge`; flavors: large, medium, small",
            "  Local.FloatingIPPool: no floating IP pool with id or name `nopool`; floating IP pools: local",
        ] {
            assert!(err.contains(want), "{verb}: {err}");
        }
    }
    // Nothing was created: the cluster tag owns nothing.
    let out = plinth(&["status", "--output", "json", "-i", bad_s], &state);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["nodes"].as_array().map(Vec::len), Some(0), "{st}");
}
