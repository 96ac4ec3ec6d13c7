//! # provider-openstack: Plinth on OpenStack
//!
//! Keystone v3, Nova, Neutron, Cinder and Octavia behind [`provider_core::Provider`].
//!
//! | module | what |
//! |---|---|
//! | [`config`] | [`OpenStackBuilder`]: setters, `OpenStack.*` spec keys, clouds.yaml (`OS_CLOUD`), `OS_*` variables |
//! | `client` | the authenticated session and the one generic REST endpoint every call goes through |
//! | `error` | HTTP status, `Retry-After` and fault bodies to [`provider_core::Error`] |
//! | [`tags`] | the tag mapping per service and its limits |
//! | `compute` | AZs, Nova servers, flavors and images by id or name |
//! | `network` | Neutron security groups and rules, floating IPs, networks, subnets, ports |
//! | `volumes` | Cinder volumes, attached through Nova volume attachments |
//! | `loadbalancer` | Octavia load balancers, listeners, pools, members, health monitors |
//! | `preflight` | references resolved against Nova, Glance, Cinder and Neutron; the keypair file against the keypair; Nova, Cinder and Neutron quotas (Octavia's are not checked) |
//! | `provider` | [`OpenStackProvider`], its `Provider` impl and one impl per family |
//!
//! ```no_run
//! # async fn f() -> provider_core::Result<()> {
//! use provider_core::{Provider, ProviderExt, TagFilter};
//! // OS_CLOUD=mycloud, or OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, ...
//! let cloud = provider_openstack::OpenStackBuilder::from_env().build().await?;
//! for zone in cloud.list_availability_zones().await? {
//!     println!("{} {}", zone.name, zone.available);
//! }
//! let mine = cloud.list_instances(&TagFilter::new("plinth-cluster", "c1")).await?;
//! # Ok(()) }
//! ```
//!
//! ## Spec keys
//!
//! [`OpenStackBuilder`] is a [`provider_core::config::ProviderBuilder`]: `from_env()`
//! reads clouds.yaml (`OS_CLOUD`) and the `OS_*` variables, and `with_property` sets the
//! `OpenStack.*` keys of a cluster spec on top ([`config::KEYS`]):
//!
//! | key | what | environment |
//! |---|---|---|
//! | `OpenStack.AuthURL` | Keystone v3 endpoint (required) | `OS_AUTH_URL` |
//! | `OpenStack.Username` | user name for password authentication | `OS_USERNAME` |
//! | `OpenStack.Password` | the user's password (secret) | `OS_PASSWORD` |
//! | `OpenStack.DomainName` | domain of the user and project when they have none of their own | `OS_DOMAIN_NAME` |
//! | `OpenStack.ProjectID` | project to scope to, by id | `OS_PROJECT_ID` |
//! | `OpenStack.ProjectName` | project to scope to, by name | `OS_PROJECT_NAME` |
//! | `OpenStack.RegionName` | region whose endpoints are used | `OS_REGION_NAME` |
//! | `OpenStack.CACertFile` | PEM bundle of CAs to trust besides the system's | `OS_CACERT` |
//! | `OpenStack.ApplicationCredentialID` | application credential id, instead of a password | `OS_APPLICATION_CREDENTIAL_ID` |
//! | `OpenStack.ApplicationCredentialName` | application credential name, with the user name | `OS_APPLICATION_CREDENTIAL_NAME` |
//! | `OpenStack.ApplicationCredentialSecret` | application credential secret (secret) | `OS_APPLICATION_CREDENTIAL_SECRET` |
//! | `OpenStack.VolumeAvailabilityZones` | `compute:volume` AZ pairs where Cinder names its zones differently | |
//!
//! A missing or unreadable setting is [`provider_core::Error::Config`] naming its key.
//!
//! ## Authentication
//!
//! Keystone v3 with a password (user name or id, user domain; scoped to a project by id,
//! or by name and domain, or to a domain) or an application credential (by id, or by
//! name with its user). The token is renewed in the background before it expires
//! ([`OpenStackBuilder::with_token_renew_margin`], default 5 minutes), and a call answered
//! 401 (token revoked or expired) re-authenticates once and is repeated. Endpoints come
//! from the token's catalog (region and interface as configured). TLS verification is on;
//! [`OpenStackBuilder::with_ca_cert_file`] adds a CA bundle (`OpenStack.CACertFile`).
//! A wrong password is [`provider_core::Error::Unauthorized`] from
//! [`OpenStackBuilder::build`].
//!
//! ## Client library
//!
//! The session is `openstack_sdk`'s (gtema/openstack 0.22), core only
//! (`default-features = false, features = ["async"]`): Keystone v3 password and
//! application-credential auth, scopes, the catalog and endpoint version discovery,
//! region and interface, microversion negotiation (`OpenStack-API-Version`), 401
//! re-authentication, background renewal before expiry, CA bundle, clouds.yaml and
//! `OS_*` parsing, secrets as `SecretString`. This crate adds one generic REST endpoint
//! (`client::Call`, paths relative to the discovered versioned endpoint) and typed serde
//! structs for the few fields it reads. The sdk's generated per-call modules (one crate
//! per service) work against the test services too (network list, security group
//! create and delete), but are not used: they answer untyped JSON, so this crate would
//! wrap them the same way; their pagination cannot set a page size (`Pagination` sends
//! no `limit`), so lists follow `limit`/`marker` here; one endpoint type keeps status,
//! `Retry-After` and fault bodies uniform for the error mapping; and they cost about one
//! more CPU-minute and 250 MB of build artefacts for five services.
//! `openstack` (rust-openstack 0.6) was tried too: it lists networks against the same
//! services, but has no security-group CRUD, volume attachments, AZ listing or
//! Octavia, so most of this crate would have gone around it through its raw session.
//!
//! ## Tags
//!
//! | resource | where the pairs live | limits |
//! |---|---|---|
//! | security group, floating IP | Neutron tags `key=value` | 255 characters a pair |
//! | load balancer | Octavia tags `key=value` (and its VIP port's Neutron tags) | 255 characters a pair |
//! | instance | Nova metadata (truth) + Nova server tags `key=value` where they fit | metadata: 255 a key or value, 128 pairs; server tags: 60 characters, no `,` or `/` (longer pairs are filtered client-side) |
//! | volume | Cinder metadata | 255 a key or value |
//!
//! A pair over a limit is `InvalidInput` naming the tag. Lists filter on the server where
//! the service can (`tags=`, Cinder `metadata=`) and always again on the client.
//!
//! ## Names and idempotency
//!
//! Names are Nova/Cinder/Octavia/Neutron names; a floating IP has none, so its name is
//! its `description`. Re-creating with the same name and spec returns the existing
//! resource: servers, volumes... compare what they have; servers and load balancers keep
//! a hash of their spec in their `description` for that. The same name with another
//! spec is `Conflict`.
//!
//! ## Requests
//!
//! What a create refers to and the cloud rarely changes (networks, subnets, flavors,
//! images by name, the Cinder AZs) is looked up once per provider. The look-ups by name
//! of creates started together (the cluster starts a kind's creates at once) share one
//! list where the service filters on several names (Neutron: groups, ports), and so do
//! the reads before deletes and attaches started together (`coalesce`; an id such a
//! list leaves out is read by id before it counts as gone); waits share one list per
//! poll interval per kind. A create does not
//! read what Nova and Neutron check themselves (the groups, the keypair): their refusal
//! names what is missing, and is answered as `InvalidInput` on the spec's field. A
//! created server's or load balancer's record comes from its spec and what the wait
//! read (and, for a load balancer, its status tree), not from reading it all back.
//!
//! ## Availability zones
//!
//! Nova's AZs; each maps to the Cinder AZ of the same name unless
//! [`OpenStackBuilder::with_volume_zone`] (`OpenStack.VolumeAvailabilityZones =
//! nova-az:cinder-az,...`) says otherwise. A compute AZ without its Cinder AZ is listed
//! as unavailable with a warning, and a volume for it is `InvalidInput`: never a silent
//! mismatch.
//!
//! ## What a cloud without a dataplane shows differently
//!
//! A floating IP's `status` stays `DOWN` without an L3 agent: association is reported
//! from its `port_id`, not its status. Octavia's noop network driver invents VIPs made
//! from a subnet, so the VIP is always a Neutron port made by this crate (a real address).
//! Members are created without `subnet_id` (Octavia uses the VIP subnet), which the noop
//! driver can also delete.

pub mod config;
pub mod tags;

mod client;
mod coalesce;
mod compute;
mod error;
mod loadbalancer;
mod network;
mod preflight;
mod provider;
mod volumes;
mod watch;

pub use config::OpenStackBuilder;
pub use provider::OpenStackProvider;
