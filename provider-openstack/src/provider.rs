//! [`OpenStackProvider`]: the session, the settings, and the [`Provider`] impl that
//! hands each call to its family's module.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use openstack_sdk::types::ServiceType;
use openstack_sdk::AsyncOpenStack;
use provider_core::model::*;
use provider_core::{
    Capabilities, FloatingIps, Instances, LoadBalancers, Provider, Result, SecurityGroups, Volumes,
};

use crate::client::Api;
use crate::config::{OpenStackBuilder, Settings};
use crate::error::from_connect_failure;

/// A Plinth provider for one OpenStack project (Keystone v3 scope) in one region.
#[derive(Debug)]
pub struct OpenStackProvider {
    pub(crate) api: Api,
    pub(crate) settings: Settings,
    /// One lock per load balancer: Octavia takes one change at a time.
    lb_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Neutron refused `tags` in a POST (no `tag-creation`): tag with a PUT after.
    pub(crate) no_tags_on_create: std::sync::atomic::AtomicBool,
    /// The shared waits: one probe per poll interval per kind.
    pub(crate) watches: crate::watch::Watches,
    /// Look-ups made once: what creates resolve by name.
    pub(crate) memos: crate::watch::Memos,
}

impl OpenStackProvider {
    /// A builder ([`OpenStackBuilder::new`]).
    pub fn builder() -> OpenStackBuilder {
        OpenStackBuilder::new()
    }

    pub(crate) async fn connect(builder: OpenStackBuilder) -> Result<Self> {
        // openstack_sdk 0.22.8's build script does not see the table-style
        // `[dependencies.x]` entries of its published manifest, so it anchors no auth
        // plugin and the linker may drop the ones nothing names (application credentials
        // were): name the two this crate supports.
        std::hint::black_box((
            &openstack_sdk_auth_password::ANCHOR,
            &openstack_sdk_auth_applicationcredential::ANCHOR,
        ));
        let config = builder.cloud_config()?;
        let settings = builder.settings();
        let os = match AsyncOpenStack::builder(&config)
            .disable_auth_cache(true)
            .connect()
            .await
        {
            Ok(os) => os,
            Err(e) => {
                let auth_url = config.auth.as_ref().and_then(|a| a.auth_url.as_deref());
                return Err(from_connect_failure(e, auth_url).await);
            }
        };
        // Version discovery: catalogs list Neutron, Octavia and Glance unversioned (or
        // not); the sdk finds the versioned base URL the paths of this crate are relative to.
        for service in [
            ServiceType::Compute,
            ServiceType::Network,
            ServiceType::BlockStorage,
            ServiceType::LoadBalancer,
            ServiceType::Image,
        ] {
            if let Err(e) = os.discover_service_endpoint(&service).await {
                tracing::warn!(%service, error = %e, "endpoint version discovery failed; using the catalog URL");
            }
        }
        let margin = chrono::TimeDelta::from_std(settings.renew_margin)
            .unwrap_or_else(|_| chrono::TimeDelta::minutes(5));
        let renew = os.enable_auto_renew(margin);
        Ok(Self {
            watches: crate::watch::Watches::new(&settings.poller),
            memos: crate::watch::Memos::default(),
            api: Api::new(os, settings.page_size, renew),
            settings,
            lb_locks: Mutex::new(HashMap::new()),
            no_tags_on_create: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The project the token is scoped to.
    pub fn project_id(&self) -> Option<String> {
        use openstack_sdk::api::RestClient;
        self.api.session().get_current_project().and_then(|p| p.id)
    }

    /// HTTP requests sent so far (each page of a list counts).
    pub fn api_calls(&self) -> u64 {
        self.api.calls()
    }

    /// HTTP requests sent so far per service and operation, retries included: keys are
    /// `<service>.<METHOD> <path>` with ids replaced by `{id}` (`nova.POST /servers`,
    /// `neutron.GET /security-groups`, `octavia.PUT /lbaas/pools/{id}/members`). The
    /// Keystone token requests and version discovery that `openstack_sdk` sends itself
    /// (once per session and on renewal) are not counted. The counter is shared: clone
    /// it before handing the provider away, [`reset`](provider_core::requests::RequestCounts::reset) it between phases.
    pub fn request_counts(&self) -> &provider_core::requests::RequestCounts {
        self.api.counts()
    }

    /// The current Keystone token (a secret: never log it). For tests that revoke it.
    pub fn token(&self) -> Option<secrecy::SecretString> {
        self.api.session().get_auth_token()
    }

    /// The per-LB lock that serialises changes.
    pub(crate) fn lb_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.lb_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    /// The Cinder AZ of a Nova AZ.
    pub(crate) fn volume_zone(&self, compute: &str) -> String {
        self.settings
            .volume_zones
            .get(compute)
            .cloned()
            .unwrap_or_else(|| compute.to_string())
    }

    /// The Nova AZ of a Cinder AZ.
    pub(crate) fn compute_zone(&self, volume: &str) -> String {
        self.settings
            .volume_zones
            .iter()
            .find(|(_, v)| *v == volume)
            .map(|(c, _)| c.clone())
            .unwrap_or_else(|| volume.to_string())
    }
}

#[async_trait]
impl Provider for OpenStackProvider {
    fn name(&self) -> &str {
        "openstack"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.api.page_size())
            .with_lb_protocols([LbProtocol::Tcp, LbProtocol::Http])
            .with_group_sources(true)
            // Tags live in one database: a write is seen by every later read.
            .with_tags_read_after_write(true)
    }

    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        self.zones().await
    }

    /// Resolves the references against Nova, Glance, Cinder and Neutron, the keypair
    /// file against the keypair, and the demand against Nova's, Cinder's and Neutron's
    /// quotas (see the crate docs).
    async fn preflight(&self, refs: &References) -> Result<Vec<Problem>> {
        self.preflight_checks(refs).await
    }

    async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        self.update_tags_impl(kind, id, set, remove).await
    }

    fn security_groups(&self) -> Option<&dyn SecurityGroups> {
        Some(self)
    }

    fn instances(&self) -> Option<&dyn Instances> {
        Some(self)
    }

    fn volumes(&self) -> Option<&dyn Volumes> {
        Some(self)
    }

    fn floating_ips(&self) -> Option<&dyn FloatingIps> {
        Some(self)
    }

    fn load_balancers(&self) -> Option<&dyn LoadBalancers> {
        Some(self)
    }
}

impl OpenStackProvider {
    /// `update_tags`, per kind: Neutron and Octavia tags are replaced whole, Nova and
    /// Cinder metadata keys are set and removed one by one.
    pub(crate) async fn update_tags_impl(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        use provider_core::Operation;
        let op = Operation::UpdateTags;
        let merge = |mut tags: Tags| {
            for k in remove {
                tags.remove(k);
            }
            tags.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            tags
        };
        let not_found = |e: provider_core::Error| match e {
            provider_core::Error::NotFound { .. } => {
                provider_core::Error::not_found(op, format!("{kind} {id}"))
            }
            e => e,
        };
        match kind {
            // From the raw string tags, so the spec tag the records leave out is kept.
            ResourceKind::SecurityGroup => {
                let g = self.neutron_group(op, id).await.map_err(not_found)?;
                let tags = merge(crate::tags::from_strings(&g.tags));
                self.put_neutron_tags(op, "security-groups", id, &tags)
                    .await
                    .map_err(not_found)
            }
            ResourceKind::FloatingIp => {
                let f = self.neutron_fip(op, id).await.map_err(not_found)?;
                let tags = merge(crate::tags::from_strings(&f.tags));
                self.put_neutron_tags(op, "floatingips", id, &tags)
                    .await
                    .map_err(not_found)
            }
            ResourceKind::Volume => self
                .update_volume_tags(op, id, set, remove)
                .await
                .map_err(not_found),
            ResourceKind::Instance => self
                .update_server_tags(op, id, set, remove)
                .await
                .map_err(not_found),
            ResourceKind::LoadBalancer => {
                let lock = self.lb_lock(id);
                let _guard = lock.lock().await;
                let tags = self.lb_tags(op, id).await.map_err(not_found)?;
                self.wait_lb_settled(op, id).await?;
                self.put_lb_tags(op, id, &merge(tags))
                    .await
                    .map_err(not_found)?;
                self.wait_lb_settled(op, id).await
            }
        }
    }
}
