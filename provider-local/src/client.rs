//! [`LocalProvider`]: the `Provider` the rest of Plinth uses. A thin client of the
//! state directory's daemon, which it starts when none answers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use provider_core::{
    AvailabilityZone, Capabilities, Error, FloatingIp, FloatingIpSpec, IngressRule, Instance,
    InstanceSpec, LbProtocol, LoadBalancer, LoadBalancerSpec, MemberSpec, Operation, Provider,
    ResourceKind, Result, SecurityGroup, SecurityGroupSpec, TagFilter, Tags, Volume, VolumeSpec,
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
    Error::Api {
        operation: Operation::ListAvailabilityZones,
        status: None,
        code: "local_setup".into(),
        message: message.into(),
    }
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
        })?;
        let state_dir =
            std::fs::canonicalize(&config.state_dir).unwrap_or(config.state_dir.clone());
        let helper =
            helper_command(config.helper.as_deref()).map_err(|e| setup_err(e.to_string()))?;
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
        let mut last = String::new();
        for _ in 0..3 {
            match self.try_call(op, req).await {
                Ok(v) => return Ok(v),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Unreachable(why)) => {
                    last = why;
                    self.start_daemon(op).await?;
                }
            }
        }
        Err(Error::transient(
            op,
            format!("the local daemon does not answer: {last}"),
        ))
    }

    async fn try_call<T: DeserializeOwned>(
        &self,
        op: Operation,
        req: &Request,
    ) -> Result<T, Attempt> {
        let stream = UnixStream::connect(&self.inner.socket)
            .await
            .map_err(|e| Attempt::Unreachable(e.to_string()))?;
        let (r, mut w) = stream.into_split();
        write_frame(&mut w, req)
            .await
            .map_err(|e| Attempt::Unreachable(e.to_string()))?;
        let resp: Response = match read_frame(&mut BufReader::new(r)).await {
            Ok(resp) => resp,
            Err(e @ (FrameError::Closed | FrameError::Io(_))) => {
                return Err(Attempt::Unreachable(e.to_string()))
            }
            Err(e) => {
                return Err(Attempt::Failed(Error::Api {
                    operation: op,
                    status: None,
                    code: "protocol".into(),
                    message: e.to_string(),
                }))
            }
        };
        match resp {
            Response::Ok(v) => serde_json::from_value(v).map_err(|e| {
                Attempt::Failed(Error::Api {
                    operation: op,
                    status: None,
                    code: "protocol".into(),
                    message: format!("unexpected answer: {e}"),
                })
            }),
            Response::Err(e) => Err(Attempt::Failed(e.into())),
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
                crate::daemon::CONFIG_ENV,
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
    /// No daemon answered; starting one may help.
    Unreachable(String),
    /// The daemon answered with an error (or garbage).
    Failed(Error),
}

#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &str {
        "local"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            floating_ips: true,
            load_balancers: true,
            // Both are TCP proxies underneath; HTTP health checks speak HTTP.
            lb_protocols: vec![LbProtocol::Tcp, LbProtocol::Http],
            group_sources: true,
            page_size: self.inner.cfg.page_size,
        }
    }

    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        self.call(
            Operation::ListAvailabilityZones,
            &Request::ListAvailabilityZones,
        )
        .await
    }

    async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        self.call(
            Operation::UpdateTags,
            &Request::UpdateTags {
                kind,
                id: id.into(),
                set: set.clone(),
                remove: remove.to_vec(),
            },
        )
        .await
    }

    async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
        spec.validate()?;
        self.call(
            Operation::CreateSecurityGroup,
            &Request::CreateSecurityGroup { spec: spec.clone() },
        )
        .await
    }

    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        self.call(
            Operation::GetSecurityGroup,
            &Request::GetSecurityGroup { id: id.into() },
        )
        .await
    }

    async fn list_security_groups(&self, filter: &TagFilter) -> Result<Vec<SecurityGroup>> {
        self.list_all(Operation::ListSecurityGroups, |after| {
            Request::ListSecurityGroups {
                filter: filter.clone(),
                after,
            }
        })
        .await
    }

    async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        self.call(
            Operation::AddSecurityGroupRule,
            &Request::AddSecurityGroupRule {
                group_id: group_id.into(),
                rule: rule.clone(),
            },
        )
        .await
    }

    async fn remove_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        self.call(
            Operation::RemoveSecurityGroupRule,
            &Request::RemoveSecurityGroupRule {
                group_id: group_id.into(),
                rule: rule.clone(),
            },
        )
        .await
    }

    async fn delete_security_group(&self, id: &str) -> Result<()> {
        self.call(
            Operation::DeleteSecurityGroup,
            &Request::DeleteSecurityGroup { id: id.into() },
        )
        .await
    }

    async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp> {
        spec.validate()?;
        self.call(
            Operation::AllocateFloatingIp,
            &Request::AllocateFloatingIp { spec: spec.clone() },
        )
        .await
    }

    async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        self.call(
            Operation::GetFloatingIp,
            &Request::GetFloatingIp { id: id.into() },
        )
        .await
    }

    async fn list_floating_ips(&self, filter: &TagFilter) -> Result<Vec<FloatingIp>> {
        self.list_all(Operation::ListFloatingIps, |after| {
            Request::ListFloatingIps {
                filter: filter.clone(),
                after,
            }
        })
        .await
    }

    async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp> {
        self.call(
            Operation::AssociateFloatingIp,
            &Request::AssociateFloatingIp {
                id: id.into(),
                instance_id: instance_id.into(),
            },
        )
        .await
    }

    async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        self.call(
            Operation::DisassociateFloatingIp,
            &Request::DisassociateFloatingIp { id: id.into() },
        )
        .await
    }

    async fn release_floating_ip(&self, id: &str) -> Result<()> {
        self.call(
            Operation::ReleaseFloatingIp,
            &Request::ReleaseFloatingIp { id: id.into() },
        )
        .await
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        spec.validate()?;
        self.call(
            Operation::CreateVolume,
            &Request::CreateVolume { spec: spec.clone() },
        )
        .await
    }

    async fn get_volume(&self, id: &str) -> Result<Volume> {
        self.call(Operation::GetVolume, &Request::GetVolume { id: id.into() })
            .await
    }

    async fn list_volumes(&self, filter: &TagFilter) -> Result<Vec<Volume>> {
        self.list_all(Operation::ListVolumes, |after| Request::ListVolumes {
            filter: filter.clone(),
            after,
        })
        .await
    }

    async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume> {
        self.call(
            Operation::AttachVolume,
            &Request::AttachVolume {
                volume_id: volume_id.into(),
                instance_id: instance_id.into(),
            },
        )
        .await
    }

    async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        self.call(
            Operation::DetachVolume,
            &Request::DetachVolume {
                volume_id: volume_id.into(),
            },
        )
        .await
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        self.call(
            Operation::DeleteVolume,
            &Request::DeleteVolume { id: id.into() },
        )
        .await
    }

    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        spec.validate()?;
        self.call(
            Operation::CreateInstance,
            &Request::CreateInstance { spec: spec.clone() },
        )
        .await
    }

    async fn get_instance(&self, id: &str) -> Result<Instance> {
        self.call(
            Operation::GetInstance,
            &Request::GetInstance { id: id.into() },
        )
        .await
    }

    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>> {
        self.list_all(Operation::ListInstances, |after| Request::ListInstances {
            filter: filter.clone(),
            after,
        })
        .await
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        self.call(
            Operation::DeleteInstance,
            &Request::DeleteInstance { id: id.into() },
        )
        .await
    }

    async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        spec.validate()?;
        self.call(
            Operation::CreateLoadBalancer,
            &Request::CreateLoadBalancer { spec: spec.clone() },
        )
        .await
    }

    async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer> {
        self.call(
            Operation::GetLoadBalancer,
            &Request::GetLoadBalancer { id: id.into() },
        )
        .await
    }

    async fn list_load_balancers(&self, filter: &TagFilter) -> Result<Vec<LoadBalancer>> {
        self.list_all(Operation::ListLoadBalancers, |after| {
            Request::ListLoadBalancers {
                filter: filter.clone(),
                after,
            }
        })
        .await
    }

    async fn add_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.call(
            Operation::AddLoadBalancerMember,
            &Request::AddLoadBalancerMember {
                lb_id: lb_id.into(),
                listener_port,
                member: member.clone(),
            },
        )
        .await
    }

    async fn remove_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.call(
            Operation::RemoveLoadBalancerMember,
            &Request::RemoveLoadBalancerMember {
                lb_id: lb_id.into(),
                listener_port,
                member: member.clone(),
            },
        )
        .await
    }

    async fn delete_load_balancer(&self, id: &str) -> Result<()> {
        self.call(
            Operation::DeleteLoadBalancer,
            &Request::DeleteLoadBalancer { id: id.into() },
        )
        .await
    }
}
