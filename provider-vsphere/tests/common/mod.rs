//! What the simulator tests share.

/// Whether the vSphere simulator is configured (`VSPHERE_URL`); says why a test is
/// skipped when it is not, and panics under `CI`, which must start emulators/vsphere.
pub fn simulator() -> bool {
    if std::env::var("VSPHERE_URL").is_ok() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("vSphere simulator not running (set VSPHERE_URL): CI must start emulators/vsphere");
    }
    eprintln!("skipped: vSphere simulator not running (set VSPHERE_URL)");
    false
}
