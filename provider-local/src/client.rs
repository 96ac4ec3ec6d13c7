//! [`LocalProvider`]: the `Provider` the rest of Plinth uses. A thin client of the
//! state directory's daemon, which it starts when none answers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use provider_core::{
    AvailabilityZone, Capabilities, Error, FloatingIp, FloatingIpSpec, FloatingIps, IngressRule,
    Instance, InstanceSpec, Instances, LbProtocol, LoadBalancer, LoadBalancerSpec, LoadBalancers,
    MemberSpec, Operation, Problem, Provider, References, ResourceKind, Result, SecurityGroup,
    SecurityGroupSpec, SecurityGroups, TagFilter, Tags, Volume, VolumeSpec, Volumes,
};
use serde::de::DeserializeOwned;
use tokio::io::BufReader;
use tokio::net::UnixStream;
use tokio::time::Instant;

use crate::config::LocalConfig;
use crate::daemon::paths;
use crate::locate::{helper_command, HelperCommand};
use crate::protocol::{read_frame, write_frame, FrameError, Page, Request, Response};
use crate::supervisor::files;

/// How long a client waits for a daemon it started to answer.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(60);

/// The local provider: a real cloud on this machine (see the crate docs).
#[derive(Debug, Clone)]
pub struct LocalProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: LocalConfig,
    helper: HelperCommand,
    socket: PathBuf,
    /// Serialises daemon starts of this client, so concurrent calls start one daemon.
    starting: tokio::sync::Mutex<()>,
}

fn setup_err(message: impl Into<String>) -> Error {
    Error::api(
        Operation::ListAvailabilityZones,
        None,
        "local_setup",
        message,
    )
}

impl LocalProvider {
    /// Opens the provider over `config.state_dir`, starting its daemon if none runs.
    ///
    /// Fails with `InvalidInput` on a bad configuration and with an `Api` error naming
    /// `PLINTH_LOCAL_HELPER` when the helper executable cannot be found.
    pub async fn open(config: LocalConfig) -> Result<LocalProvider> {
        let op = Operation::ListAvailabilityZones;
        if config.availability_zones.is_empty() {
            return Err(Error::invalid(
                op,
                "availability_zones",
                "configure at least one zone",
            ));
        }
        if config.page_size == 0 {
            return Err(Error::invalid(
                op,
                "page_size",
                "use a page size of at least 1",
            ));
        }
        for (field, net) in [
            ("instance_network", config.instance_network),
            ("floating_ip_network", config.floating_ip_network),
            ("load_balancer_network", config.load_balancer_network),
        ] {
            if !matches!(net, ipnet::IpNet::V4(n) if n.network().is_loopback() && n.prefix_len() <= 30)
            {
                return Err(Error::invalid(op, field, format!("{net} is not a loopback IPv4 network of at least 4 addresses: use one inside 127.0.0.0/8")));
            }
        }
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            setup_err(format!(
                "creating state directory {}: {e}",
                config.state_dir.display()
            ))
            .with_source(e)
        })?;
        let state_dir =
            std::fs::canonicalize(&config.state_dir).unwrap_or(config.state_dir.clone());
        let helper = helper_command(config.helper.as_deref())
            .map_err(|e| setup_err(e.to_string()).with_source(e))?;
        let socket = paths::socket(&state_dir);
        if socket.as_os_str().len() >= 100 {
            return Err(Error::invalid(
                op,
                "state_dir",
                format!(
                    "{} is too long for a unix socket path: use a shorter state directory",
                    state_dir.display()
                ),
            ));
        }
        let mut cfg = config;
        cfg.state_dir = state_dir;
        let p = LocalProvider {
            inner: Arc::new(Inner {
                cfg,
                helper,
                socket,
                starting: tokio::sync::Mutex::new(()),
            }),
        };
        let _: u32 = p.call(op, &Request::Ping).await?;
        Ok(p)
    }

    /// The configuration in use (with the state directory made absolute).
    pub fn config(&self) -> &LocalConfig {
        &self.inner.cfg
    }

    /// The sparse file behind a volume.
    pub fn volume_file(&self, volume_id: &str) -> PathBuf {
        self.inner
            .cfg
            .state_dir
            .join("volumes")
            .join(format!("{volume_id}.img"))
    }

    /// An instance's directory (boot file, console log, volume links).
    pub fn instance_dir(&self, instance_id: &str) -> PathBuf {
        self.inner.cfg.state_dir.join("instances").join(instance_id)
    }

    /// The pid of an instance's process, once it has started.
    pub fn instance_pid(&self, instance_id: &str) -> Option<u32> {
        std::fs::read_to_string(self.instance_dir(instance_id).join(files::READY))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// The pid of the daemon, if one answers.
    pub async fn daemon_pid(&self) -> Option<u32> {
        self.try_call::<u32>(Operation::ListAvailabilityZones, &Request::Ping)
            .await
            .ok()
    }

    /// Stops the daemon. Instance processes keep running; the next call starts a new
    /// daemon, which re-adopts them and restarts forwarders and load balancers.
    pub async fn shutdown_daemon(&self) -> Result<()> {
        let op = Operation::ListAvailabilityZones;
        match self.try_call::<()>(op, &Request::Shutdown).await {
            Ok(()) => self.wait_daemon_gone().await,
            Err(Attempt::Unreachable(_)) => Ok(()),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }

    /// Deletes every resource of the state directory and stops the daemon: nothing of
    /// it stays running.
    pub async fn destroy_all(&self) -> Result<()> {
        self.call::<()>(Operation::DeleteInstance, &Request::DestroyAll)
            .await?;
        self.wait_daemon_gone().await
    }

    async fn wait_daemon_gone(&self) -> Result<()> {
        let deadline = Instant::now() + DAEMON_START_TIMEOUT;
        while self.inner.socket.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// One call; starts the daemon (once) when it does not answer, and repeats the
    /// call when the daemon went away before answering (every request is idempotent).
    async fn call<T: DeserializeOwned>(&self, op: Operation, req: &Request) -> Result<T> {
        let mut last = None;
        for _ in 0..3 {
            match self.try_call(op, req).await {
                Ok(v) => return Ok(v),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Unreachable(why)) => {
                    last = Some(why);
                    self.start_daemon(op).await?;
                }
            }
        }
        let why = last.as_ref().map(ToString::to_string).unwrap_or_default();
        let e = Error::transient(op, format!("the local daemon does not answer: {why}"));
        Err(match last {
            Some(cause) => e.with_source(cause),
            None => e,
        })
    }

    async fn try_call<T: DeserializeOwned>(
        &self,
        op: Operation,
        req: &Request,
    ) -> Result<T, Attempt> {
        let stream = UnixStream::connect(&self.inner.socket)
            .await
            .map_err(|e| Attempt::Unreachable(FrameError::Io(e)))?;
        let (r, mut w) = stream.into_split();
        write_frame(&mut w, req)
            .await
            .map_err(Attempt::Unreachable)?;
        let resp: Response = match read_frame(&mut BufReader::new(r)).await {
            Ok(resp) => resp,
            Err(e @ (FrameError::Closed | FrameError::Io(_))) => {
                return Err(Attempt::Unreachable(e))
            }
            Err(e) => {
                return Err(Attempt::Failed(
                    Error::api(op, None, "protocol", e.to_string()).with_source(e),
                ))
            }
        };
        match resp {
            Response::Ok(v) => serde_json::from_value(v).map_err(|e| {
                Attempt::Failed(
                    Error::api(op, None, "protocol", format!("unexpected answer: {e}"))
                        .with_source(e),
                )
            }),
            Response::Err(e) => Err(Attempt::Failed(e)),
        }
    }

    /// Starts a daemon unless one answers now, then waits until one does.
    async fn start_daemon(&self, op: Operation) -> Result<()> {
        let _g = self.inner.starting.lock().await;
        if self.ping().await {
            return Ok(());
        }
        let dir = &self.inner.cfg.state_dir;
        // An exiting daemon removes the directory when it empties it: make it again.
        std::fs::create_dir_all(dir)
            .map_err(|e| setup_err(format!("creating state directory {}: {e}", dir.display())))?;
        let cfg_json = serde_json::to_vec(&self.inner.cfg)
            .map_err(|e| setup_err(format!("encoding the config: {e}")))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(paths::log(dir))
            .map_err(|e| setup_err(format!("opening the daemon log: {e}")))?;
        let log2 = log
            .try_clone()
            .map_err(|e| setup_err(format!("opening the daemon log: {e}")))?;
        let helper = &self.inner.helper;
        let mut child = std::process::Command::new(&helper.program)
            .args(&helper.prefix)
            .arg("daemon")
            .arg(dir)
            // Marks the daemon for .ci/check-local-leftovers, whatever its program.
            .env("PLINTH_LOCAL_DAEMON", dir)
            .env(
                crate::config::DAEMON_CONFIG_ENV,
                String::from_utf8_lossy(&cfg_json).as_ref(),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .current_dir(dir)
            .spawn()
            .map_err(|e| setup_err(format!("starting {}: {e}", helper.program.display())))?;
        tracing::debug!(pid = child.id(), "started the local daemon");
        // Reap it when it exits, so it never lingers as our zombie.
        std::thread::spawn(move || child.wait());
        let deadline = Instant::now() + DAEMON_START_TIMEOUT;
        loop {
            if self.ping().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    operation: op,
                    resource: format!("local daemon of {}", dir.display()),
                    wanted: "answering".into(),
                    last_state: format!("not answering; see {}", paths::log(dir).display()),
                    waited: DAEMON_START_TIMEOUT,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ping(&self) -> bool {
        self.try_call::<u32>(Operation::ListAvailabilityZones, &Request::Ping)
            .await
            .is_ok()
    }

    async fn list_all<T: DeserializeOwned>(
        &self,
        op: Operation,
        make: impl Fn(Option<String>) -> Request,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page: Page<T> = self.call(op, &make(after.take())).await?;
            out.extend(page.items);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// The state directory in use.
    pub fn state_dir(&self) -> &Path {
        &self.inner.cfg.state_dir
    }
}

/// The outcome of one try of a call.
enum Attempt {
    /// No daemon answered; starting one may help. Kept whole, as the source of the
    /// `Transient` error reported when no daemon answers at all.
    Unreachable(FrameError),
    /// The daemon answered with an error (or garbage).
    Failed(Error),
}

/// Generates the [`Provider`] and family impls from the contract's table of operations:
/// each operation is one request to the daemon (a list, one request per page).
macro_rules! client {
    (
        core { $($cv:ident = $ck:ident $cm:ident ($($ca:ident : [$($ct:tt)*] $(as $co:ty)?),*) -> [$($cr:tt)*];)* }
        families { $(
            $fam:ident $acc:ident $label:literal {
                $($v:ident = $k:ident $m:ident ($($a:ident : [$($t:tt)*] $(as $o:ty)?),*) -> [$($r:tt)*];)*
            }
        )* }
    ) => {
        #[async_trait]
        impl Provider for LocalProvider {
            fn name(&self) -> &str {
                "local"
            }

            fn capabilities(&self) -> Capabilities {
                // Both are TCP proxies underneath; HTTP health checks speak HTTP.
                Capabilities::new(self.inner.cfg.page_size)
                    .with_lb_protocols([LbProtocol::Tcp, LbProtocol::Http])
                    .with_group_sources(true)
                    // Tags live in one database: a write is seen by every later read.
                    .with_tags_read_after_write(true)
            }

            $(
                async fn $cm(&self, $($ca: $($ct)*),*) -> Result<$($cr)*> {
                    client!(@send self $ck $cv ($($ca $(as $co)?),*))
                }
            )*

            $(
                fn $acc(&self) -> Option<&dyn $fam> {
                    Some(self)
                }
            )*
        }

        $(
            #[async_trait]
            impl $fam for LocalProvider {
                $(
                    async fn $m(&self, $($a: $($t)*),*) -> Result<$($r)*> {
                        client!(@send self $k $v ($($a $(as $o)?),*))
                    }
                )*
            }
        )*
    };
    (@send $self:ident call $v:ident ($($a:ident $(as $o:ty)?),*)) => {
        $self
            .call(Operation::$v, &Request::$v { $($a: client!(@owned $a $(as $o)?)),* })
            .await
    };
    (@send $self:ident paged $v:ident ($($a:ident $(as $o:ty)?),*)) => {
        $self
            .list_all(Operation::$v, |after| Request::$v {
                $($a: client!(@owned $a $(as $o)?),)*
                after,
            })
            .await
    };
    (@owned $a:ident as $o:ty) => { $a.to_owned() };
    (@owned $a:ident) => { $a };
}

provider_core::for_each_operation!(client);

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[tokio::test]
    async fn a_setup_failure_keeps_its_io_cause() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let e = LocalProvider::open(LocalConfig::with_state_dir(file.join("state")))
            .await
            .unwrap_err();
        assert!(e.source().is_some(), "{e:?}");
        let io = e
            .underlying()
            .and_then(|u| u.downcast_ref::<std::io::Error>());
        assert!(io.is_some(), "{e:?}");
        assert!(e.to_string().contains("creating state directory"), "{e}");
    }
}
