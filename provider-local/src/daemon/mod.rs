//! The daemon (`plinth-local daemon <state-dir>`): the one process that owns a state
//! directory. It holds the database, supervises instance processes, runs floating IP
//! forwarders and load balancers, and answers clients on `<state-dir>/daemon.sock`.
//!
//! It is started on demand by [`crate::LocalProvider`], outlives the program that
//! started it, and exits by itself once the state is empty and no client has talked to
//! it for [`IDLE_EXIT`] (or when asked, or when its state directory disappears).

mod cloud;
mod rows;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use provider_core::{Error, Operation, Result};
use tokio::io::BufReader;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{LocalConfig, DAEMON_CONFIG_ENV as CONFIG_ENV};
use crate::locate::HelperCommand;
use crate::locate::HOSTED_MARKER;
use crate::protocol::{read_frame, write_frame, Request, Response};
use crate::store::{Store, StoreError};
pub use cloud::Cloud;

/// How long an empty, unused daemon lingers before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(3);

/// File names in the state directory.
pub mod paths {
    use std::path::{Path, PathBuf};

    /// The client socket.
    pub fn socket(state_dir: &Path) -> PathBuf {
        state_dir.join("daemon.sock")
    }
    /// The database.
    pub fn database(state_dir: &Path) -> PathBuf {
        state_dir.join("state.redb")
    }
    /// The daemon's log.
    pub fn log(state_dir: &Path) -> PathBuf {
        state_dir.join("daemon.log")
    }
    /// The daemon's pid.
    pub fn pid(state_dir: &Path) -> PathBuf {
        state_dir.join("daemon.pid")
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Setting up the state directory or socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Re-adopting resources failed.
    #[error("restoring state: {0}")]
    Restore(#[from] Error),
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io {
        what: what.to_string(),
        source,
    }
}

/// Runs the daemon of `state_dir` until it exits. Returns `Ok` at once when another
/// daemon already owns the directory.
pub async fn run(state_dir: PathBuf) -> Result<(), DaemonError> {
    std::fs::create_dir_all(&state_dir).map_err(io("creating the state directory"))?;
    // The configuration comes in the environment, from the client that started us (a
    // file could be raced by a daemon exiting at the same moment).
    let mut cfg = std::env::var(CONFIG_ENV)
        .ok()
        .and_then(|j| serde_json::from_str::<LocalConfig>(&j).ok())
        .unwrap_or_default();
    cfg.state_dir = state_dir.clone();
    // Instances run the same program the daemon runs, started the same way.
    let hosted = std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(HOSTED_MARKER));
    let helper = HelperCommand {
        program: std::env::current_exe().map_err(io("finding the helper executable"))?,
        prefix: if hosted {
            vec![HOSTED_MARKER.into()]
        } else {
            Vec::new()
        },
    };
    let Some(store) = open_store(&state_dir).await? else {
        tracing::info!("another daemon serves {}: exiting", state_dir.display());
        return Ok(());
    };
    // Log to the log file as it is now (an exiting daemon may have unlinked the one our
    // stderr was opened on).
    redirect_output(&paths::log(&state_dir));
    // We own the database, so any socket left here is a dead daemon's.
    let sock = paths::socket(&state_dir);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).map_err(io("binding the daemon socket"))?;
    std::fs::write(paths::pid(&state_dir), std::process::id().to_string())
        .map_err(io("writing the pid file"))?;
    let cloud = Arc::new(Cloud::new(cfg, helper, store));
    cloud.restore().await?;
    tracing::info!(pid = std::process::id(), dir = %state_dir.display(), "daemon serving");

    let active = Arc::new(AtomicUsize::new(0));
    let last_seen = Arc::new(Mutex::new(Instant::now()));
    let stop = Arc::new(Notify::new());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io("installing the SIGTERM handler"))?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let vanished = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    active.fetch_add(1, Ordering::SeqCst);
                    let (cloud, active, last_seen, stop) = (cloud.clone(), active.clone(), last_seen.clone(), stop.clone());
                    tokio::spawn(async move {
                        serve(stream, &cloud, &stop).await;
                        *last_seen.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                        active.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
            _ = stop.notified() => break false,
            _ = term.recv() => break false,
            _ = tick.tick() => {
                if !sock.exists() {
                    tracing::warn!("state directory or socket removed: stopping everything");
                    break true;
                }
                let idle_for = last_seen.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
                if active.load(Ordering::SeqCst) == 0 && idle_for >= IDLE_EXIT && cloud.is_empty() {
                    tracing::info!("state empty and idle: exiting");
                    break false;
                }
            }
        }
    };
    drop(listener);
    cloud.stop_runtime();
    if vanished {
        cloud.kill_all_instances().await;
        return Ok(());
    }
    cleanup(&state_dir, cloud.is_empty());
    Ok(())
}

/// Opens the database; `None` when another daemon holds it and serves. A daemon that
/// holds it but is on its way out (idle exit) is waited for, so a client that came in
/// at that moment still gets a daemon.
async fn open_store(state_dir: &Path) -> Result<Option<Store>, DaemonError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Store::open(&paths::database(state_dir)) {
            Ok(s) => return Ok(Some(s)),
            Err(StoreError::Locked) => {
                if UnixStream::connect(paths::socket(state_dir)).await.is_ok() {
                    return Ok(None);
                }
                if Instant::now() >= deadline {
                    return Err(StoreError::Locked.into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Points stdout and stderr at `log` (appending), best effort.
fn redirect_output(log: &Path) {
    use std::os::fd::AsRawFd;
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        Ok(f) => {
            // SAFETY: dup2 on descriptors we own; the file stays open through fds 1 and 2
            // after `f` is dropped.
            unsafe {
                libc::dup2(f.as_raw_fd(), 1);
                libc::dup2(f.as_raw_fd(), 2);
            }
        }
        Err(e) => tracing::warn!("opening {}: {e}", log.display()),
    }
}

/// Removes the socket and pid file; with empty state, the database and log
/// too (and the state directory when nothing else is in it), so deleting everything
/// leaves no file of ours behind.
fn cleanup(state_dir: &Path, empty: bool) {
    let _ = std::fs::remove_file(paths::socket(state_dir));
    let _ = std::fs::remove_file(paths::pid(state_dir));
    if empty {
        let _ = std::fs::remove_file(paths::log(state_dir));
        for d in ["volumes", "instances"] {
            let _ = std::fs::remove_dir(state_dir.join(d));
        }
        // The database last: until it is gone, a new daemon waits for our lock, so it
        // never sees the removals above. Unlinking it while locked is safe: a new
        // daemon creates a fresh file.
        let _ = std::fs::remove_file(paths::database(state_dir));
        // Only if empty: the user may keep other files there.
        let _ = std::fs::remove_dir(state_dir);
    }
}

async fn serve(stream: UnixStream, cloud: &Cloud, stop: &Notify) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let req: Request = match read_frame(&mut r).await {
        Ok(req) => req,
        Err(e) => {
            tracing::debug!("bad request: {e}");
            return;
        }
    };
    tracing::debug!(?req, "request");
    let stop_after = matches!(req, Request::Shutdown | Request::DestroyAll);
    let resp = match dispatch(cloud, req).await {
        Ok(v) => Response::Ok(v),
        Err(e) => Response::Err(e),
    };
    if let Err(e) = write_frame(&mut w, &resp).await {
        tracing::debug!("client went away: {e}");
    }
    if stop_after {
        stop.notify_one();
    }
}

fn json<T: serde::Serialize>(op: Operation, v: T) -> Result<serde_json::Value> {
    serde_json::to_value(v)
        .map_err(|e| Error::api(op, None, "encode", e.to_string()).with_source(e))
}

/// Generates [`dispatch`] from the contract's table of operations: each operation
/// request calls the cloud's method of the same name (a list's with its page cursor).
macro_rules! dispatch {
    (
        core { $($core:tt)* }
        families { $($fam:ident $acc:ident $label:literal { $($ops:tt)* })* }
    ) => {
        dispatch!(@fn $($core)* $($($ops)*)*);
    };
    (@fn $($v:ident = $k:ident $m:ident ($($a:ident : [$($t:tt)*] $(as $o:ty)?),*) -> [$($r:tt)*];)*) => {
        async fn dispatch(c: &Cloud, req: Request) -> Result<serde_json::Value> {
            match req {
                Request::Ping => json(Operation::ListAvailabilityZones, std::process::id()),
                Request::Shutdown => json(Operation::ListAvailabilityZones, ()),
                Request::DestroyAll => {
                    c.destroy_all().await?;
                    json(Operation::DeleteInstance, ())
                }
                $(
                    dispatch!(@pattern $k $v ($($a),*) after) => json(
                        Operation::$v,
                        dispatch!(@call c $k $m ($($a $(as $o)?),*) after).await?,
                    ),
                )*
            }
        }
    };
    (@pattern call $v:ident ($($a:ident),*) $after:ident) => { Request::$v { $($a),* } };
    (@pattern paged $v:ident ($($a:ident),*) $after:ident) => { Request::$v { $($a,)* $after } };
    (@call $c:ident call $m:ident ($($a:ident $(as $o:ty)?),*) $after:ident) => {
        $c.$m($(dispatch!(@borrow $a $(as $o)?)),*)
    };
    (@call $c:ident paged $m:ident ($($a:ident $(as $o:ty)?),*) $after:ident) => {
        $c.$m($(dispatch!(@borrow $a $(as $o)?),)* $after.as_deref())
    };
    (@borrow $a:ident as $o:ty) => { &$a };
    (@borrow $a:ident) => { $a };
}

provider_core::for_each_operation!(dispatch);
