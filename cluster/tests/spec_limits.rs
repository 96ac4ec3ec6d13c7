//! Hostile and oversized specs: every limit of `cluster::spec::limits` refuses with the
//! key named and a short message, and no error ever holds a password, whatever the
//! separators, line endings and continuations.

use cluster::spec::limits::{MAX_FILE_BYTES, MAX_LIST_ITEMS, MAX_NODES, MAX_PROBLEMS};
use cluster::spec::ClusterSpec;
use cluster::Error;

const PASSWORD: &str = "S3cr3t-Pa55w0rd";

/// The base of an OpenStack spec that is valid but for what a test adds.
fn openstack(extra: &str) -> String {
    format!(
        "Provider = OpenStack\nClusterName = lim\nOpenStack.AuthURL = https://keystone:5000/v3\n\
         OpenStack.Username = u\nOpenStack.ProjectName = p\nOpenStack.LinuxImageID = img\n\
         OpenStack.MasterFlavorID = m1\nOpenStack.NodeFlavorID = m1\nOpenStack.NetworkID = n\n\
         OpenStack.JumpboxCIDR = 10.1.1.4/32\nOpenStack.LoadBalancerCIDR = 10.1.1.0/24\n\
         OpenStack.AvailabilityZones = az1,az2,az3\n{extra}"
    )
}

/// The report of a spec that must be refused; asserts it never shows the password.
fn refused(file: &str, text: &str) -> String {
    match ClusterSpec::parse(file, text) {
        Err(Error::Spec(e)) => {
            let text = e.to_string();
            assert!(!text.contains(PASSWORD), "the password leaked: {text}");
            assert!(
                !format!("{e:?}").contains(PASSWORD),
                "the password leaked: {e:?}"
            );
            text
        }
        other => panic!("expected spec errors, got {other:?}"),
    }
}

#[test]
fn counts_beyond_the_limits_are_refused_without_overflow() {
    let msg = refused("a.properties", &openstack("NodeCount = 300000\n"));
    assert!(
        msg.contains(&format!(
            "NodeCount: 300000 is more than the limit of {MAX_NODES}"
        )),
        "{msg}"
    );
    // The largest usize with 2 and 4 AZs (an addition overflowed here once).
    for zones in ["az1,az2", "az1,az2,az3,az4"] {
        let text =
            openstack(&format!("NodeCount = {}\n", usize::MAX)).replace("az1,az2,az3", zones);
        let msg = refused("a.properties", &text);
        assert!(msg.contains("is more than the limit"), "{msg}");
    }
    let msg = refused("a.properties", &openstack("MasterCount = 9\n"));
    assert!(
        msg.contains("MasterCount: 9 is more than the limit of 7"),
        "{msg}"
    );
}

#[test]
fn a_huge_line_or_value_is_refused_in_a_few_words() {
    let big = "x".repeat(10 * 1024 * 1024);
    let msg = refused(
        "a.properties",
        &openstack(&format!("OpenStack.Keypair = {big}\n")),
    );
    assert!(msg.contains("too large for a spec"), "{msg}");
    assert!(msg.len() < 300, "{} bytes of error", msg.len());
    // Under the file limit, over the line limit.
    let line = "y".repeat(40 * 1024);
    let msg = refused(
        "a.properties",
        &openstack(&format!("OpenStack.Keypair = {line}\n")),
    );
    assert!(
        msg.contains("OpenStack.Keypair: the line is longer than"),
        "{msg}"
    );
    assert!(msg.len() < 300, "{msg}");
    // Under the line limit, over the value limit.
    let value = "z".repeat(8 * 1024);
    let msg = refused(
        "a.properties",
        &openstack(&format!("OpenStack.Keypair = {value}\n")),
    );
    assert!(
        msg.contains("OpenStack.Keypair: 8192 bytes is too long"),
        "{msg}"
    );
    assert!(!msg.contains("missing"), "refused, not also missing: {msg}");
    // An AZ list of too many items.
    let zones: Vec<String> = (0..100).map(|i| format!("z{i}")).collect();
    let text = openstack("").replace("az1,az2,az3", &zones.join(","));
    let msg = refused("a.properties", &text);
    assert!(
        msg.contains(&format!(
            "100 items is too many: list at most {MAX_LIST_ITEMS}"
        )),
        "{msg}"
    );
    assert!(!msg.contains("missing"), "refused, not also missing: {msg}");
}

#[test]
fn a_key_of_any_length_gets_a_short_answer() {
    let key = "K".repeat(1000);
    let msg = refused("a.properties", &openstack(&format!("{key} = 1\n")));
    assert!(msg.contains("the key is longer than"), "{msg}");
    assert!(msg.len() < 300, "{msg}");
    let key = "K".repeat(10 * 1024 * 1024 - 1000);
    let msg = refused("a.properties", &openstack(&format!("{key} = 1\n")));
    assert!(msg.contains("too large for a spec"), "{msg}");
    let key = "K".repeat(200_000);
    let msg = refused("a.properties", &openstack(&format!("{key} = 1\n")));
    assert!(msg.contains("the line is longer than"), "{msg}");
    assert!(msg.len() < 300, "{msg}");
}

#[test]
fn many_unknown_keys_are_counted_not_all_listed() {
    let mut extra = String::new();
    for i in 0..20_000 {
        extra.push_str(&format!("Unknown{i} = 1\n"));
    }
    let msg = refused("a.properties", &openstack(&extra));
    let lines = msg.lines().filter(|l| l.starts_with("  - ")).count();
    assert_eq!(lines, MAX_PROBLEMS + 1, "{msg}");
    assert!(
        msg.contains(&format!("and {} more problems", 20_000 - MAX_PROBLEMS)),
        "{msg}"
    );
    assert!(
        msg.contains("did you mean"),
        "the first ones get a suggestion: {msg}"
    );
}

#[test]
fn a_password_never_reaches_an_error_whatever_the_separator() {
    // Java properties: whitespace separates key and value, so this is the password.
    let text = openstack(&format!(
        "OpenStack.Password {PASSWORD}\nNodeCount = three\n"
    ));
    let msg = refused("a.properties", &text);
    assert!(
        msg.contains("NodeCount: \"three\" is not a whole number"),
        "{msg}"
    );
    // Colon, tab.
    for sep in [":", "\t", " : "] {
        let text = openstack(&format!(
            "OpenStack.Password{sep}{PASSWORD}\nNodeCount = x\n"
        ));
        refused("a.properties", &text);
    }
}

#[test]
fn a_password_never_reaches_an_error_whatever_the_line_endings() {
    // CR-only line endings: old Mac files. Each line is still a line.
    let text = openstack(&format!(
        "NodeCount = three\nOpenStack.Password = {PASSWORD}\n"
    ))
    .replace('\n', "\r");
    let msg = refused("a.properties", &text);
    assert!(msg.contains("a.properties:13: NodeCount"), "{msg}");
    let text = text.replace('\r', "\r\n");
    let msg = refused("a.properties", &text);
    assert!(msg.contains("a.properties:13: NodeCount"), "{msg}");
}

#[test]
fn a_continuation_that_pulls_in_the_password_does_not_show_it() {
    // The Provider line continues into the next one, which holds the password.
    let text = openstack("").replace("Provider = OpenStack\n", "Provider = OpenStack \\\n");
    let text = text.replacen(
        "ClusterName = lim\n",
        &format!("OpenStack.Password = {PASSWORD}\nClusterName = lim\n"),
        1,
    );
    let msg = refused("a.properties", &text);
    assert!(msg.contains("Provider: unknown provider"), "{msg}");
    // And a secret key written as the value of another key, on one line.
    let msg = refused(
        "a.properties",
        &openstack(&format!("NodeCount = OpenStack.Password={PASSWORD}\n")),
    );
    assert!(msg.contains("NodeCount"), "{msg}");
}

#[test]
fn toml_errors_point_at_the_right_line_and_name_the_key() {
    let text = "Provider = \"local\"\nClusterName = \"t\"\nNodeCount = 3\nNodeCount = 6\n";
    let msg = refused("a.toml", text);
    assert!(msg.contains("a.toml:4: NodeCount: not valid TOML"), "{msg}");
    let text = "Provider = \"local\"\nNodeCount = \"three\"\n[Local]\nImage = \"http\"\n";
    let msg = refused("a.toml", text);
    assert!(
        msg.contains("a.toml:2: NodeCount: \"three\" is not a whole number"),
        "{msg}"
    );
    let text = "Provider = \"local\"\n\n[Local]\nAvailabilityZones = [\"a\", \"a\"]\n";
    let msg = refused("a.toml", text);
    assert!(msg.contains("a.toml:4: Local.AvailabilityZones"), "{msg}");
    // A TOML array near the file limit: refused by its length, quickly.
    let items = vec!["\"a\""; MAX_FILE_BYTES / 5];
    let text = format!(
        "Provider = \"local\"\n[Local]\nAvailabilityZones = [{}]\n",
        items.join(",")
    );
    let msg = refused("a.toml", &text);
    assert!(msg.contains("items is too many"), "{msg}");
    // [OpenStack] Password in TOML is a secret too.
    let text = format!("Provider = \"OpenStack\"\nNodeCount = 1\n[OpenStack]\nPassword = \"{PASSWORD}\"\nAuthURL = 3\n");
    refused("a.toml", &text);
}

#[test]
fn a_file_over_the_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.properties");
    let f = std::fs::File::create(&path).unwrap();
    // Sparse: 1 GiB that costs no disk.
    f.set_len(1 << 30).unwrap();
    match ClusterSpec::load(&path) {
        Err(Error::Spec(e)) => {
            let msg = e.to_string();
            assert!(msg.contains("1073741824 bytes is too large"), "{msg}");
        }
        other => panic!("expected a spec error, got {other:?}"),
    }
}
