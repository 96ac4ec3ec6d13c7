//! Instance processes: spawning one per instance in its own process group, telling
//! whether it still lives (also after a daemon restart, when it is no longer our
//! child), and stopping the whole group.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::catalog::Image;
use crate::locate::HelperCommand;

/// What the `plinth-local instance` process reads from its directory at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceBoot {
    /// Instance id.
    pub id: String,
    /// Instance name.
    pub name: String,
    /// AZ.
    pub availability_zone: String,
    /// Private address.
    pub address: IpAddr,
    /// Image.
    pub image: Image,
    /// Paths of the volumes attached at boot.
    pub volumes: Vec<PathBuf>,
}

/// File names inside an instance directory.
pub mod files {
    /// The [`super::InstanceBoot`] JSON.
    pub const BOOT: &str = "boot.json";
    /// The user data script.
    pub const USER_DATA: &str = "user-data";
    /// Written by the instance process once it serves.
    pub const READY: &str = "ready";
    /// stdout and stderr of the instance.
    pub const CONSOLE: &str = "console.log";
    /// Directory with one link per attached volume.
    pub const VOLUMES: &str = "volumes";
}

/// A process we started or adopted: the pid plus its start time, so a recycled pid is
/// never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// Process id (also its process group id).
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_ticks: u64,
}

impl ProcessId {
    /// Whether the process still runs (a zombie counts as dead).
    pub fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, start)) if start == self.start_ticks && state != 'Z' && state != 'X')
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop_group(&self, grace: Duration) {
        if !self.alive() {
            // The leader is gone; members of its group may still run.
            signal_group(self.pid, libc::SIGKILL);
            return;
        }
        signal_group(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while self.alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Whatever is left of the group (children of a shell script) goes now.
        signal_group(self.pid, libc::SIGKILL);
        let deadline = Instant::now() + grace;
        while self.alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The id of the running process `pid`, if it exists.
    pub fn of(pid: u32) -> Option<ProcessId> {
        proc_stat(pid).map(|(_, start_ticks)| ProcessId { pid, start_ticks })
    }
}

fn signal_group(pgid: u32, sig: i32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return; // never signal init or "every process"
    }
    // SAFETY: killpg only sends a signal; the group id is a positive id we started.
    unsafe {
        libc::killpg(pgid, sig);
    }
}

/// State letter and start time of `pid` from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; field 22 the start time: 19 fields further.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Starts `<helper> instance <dir>` in a new process group, output to the console log.
/// The returned child must be reaped (the caller waits on it in a task).
pub fn spawn_instance(
    helper: &HelperCommand,
    dir: &Path,
    boot: &InstanceBoot,
) -> std::io::Result<(ProcessId, tokio::process::Child)> {
    let console = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(files::CONSOLE))?;
    let console2 = console.try_clone()?;
    let mut cmd = helper.command("instance", dir);
    cmd.current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(console)
        .stderr(console2)
        // Its own group, so delete can stop the instance and everything it started.
        .process_group(0)
        // The daemon's own markers are not the instance's.
        .env_remove("PLINTH_LOCAL_DAEMON")
        .env_remove(crate::config::DAEMON_CONFIG_ENV)
        .env("PLINTH_INSTANCE_ID", &boot.id)
        .env("PLINTH_ADDRESS", boot.address.to_string())
        .env("PLINTH_AZ", &boot.availability_zone);
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("instance process exited at once"))?;
    let id = ProcessId::of(pid).unwrap_or(ProcessId {
        pid,
        start_ticks: 0,
    });
    Ok((id, child))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive() {
        let me = ProcessId::of(std::process::id()).unwrap();
        assert!(me.alive());
        let other = ProcessId {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!other.alive());
    }
}
