//! # provider-local: a real cloud on one machine
//!
//! The embedded default [`Provider`](provider_core::Provider): what it creates exists
//! and works, with no cloud account and no root.
//!
//! - **Instances** are supervised processes, each bound to its own address in
//!   127.0.0.0/8 (Linux accepts binds on any 127.x.y.z). Images ([`catalog`]): `http`
//!   answers on port 8080 with `instance=<id> az=<az> name=<name>`; `shell` runs the
//!   user data with `PLINTH_INSTANCE_ID`, `PLINTH_ADDRESS`, `PLINTH_AZ`,
//!   `PLINTH_VOLUMES` (paths attached at boot) and `PLINTH_VOLUMES_DIR` (a link per
//!   attached volume, kept current). Flavors `small`, `medium`, `large` are recorded,
//!   not enforced. A dead process shows as `Failed`; delete stops its process group.
//! - **Volumes** are sparse files of the requested size; attach links the file into
//!   the instance's volumes directory (the attachment's `device` is that link).
//! - **Availability zones** are names from [`LocalConfig::availability_zones`].
//! - **Security groups** are enforced on every path the provider carries: a floating IP
//!   forwarder admits a client only if the instance's groups allow its address on that
//!   port; an LB listener only if the LB's groups do (an LB without groups is open); and
//!   the LB reaches a member (traffic and health checks, sent from the LB's address)
//!   only if the member's groups allow the LB's address or one of the LB's groups.
//!   Direct connections to an instance's private address are not filtered.
//! - **Floating IPs** come from a loopback network; associated, they forward each TCP
//!   port the instance's groups open (lowest first, at most
//!   [`LocalConfig::max_forwarded_ports`]; `Any` rules open no port by themselves).
//! - **Load balancers** listen on their own loopback address. `Tcp` and `Http`
//!   listeners are both TCP proxies; pools are round robin over healthy members (or,
//!   until a check passes, members not known to be unhealthy); health checks are TCP
//!   connects or HTTP GETs with interval, timeout and thresholds; a removed member
//!   drains (its open connections finish, up to [`LocalConfig::drain_timeout`]) before
//!   the call returns.
//! - **State** lives in a redb database in [`LocalConfig::state_dir`], owned by one
//!   daemon per directory, started on demand and reached over a unix
//!   socket. Resources outlive the program that created them; a restarted daemon
//!   re-adopts instance processes and restarts forwarders and LBs. The daemon exits once
//!   the state is empty, removing its database, socket and files.
//!
//! ## Spec keys
//!
//! [`LocalBuilder`] is a [`provider_core::config::ProviderBuilder`]; it reads these
//! `Local.*` keys of a cluster spec ([`KEYS`]):
//!
//! | key | what | default |
//! |---|---|---|
//! | `Local.StateDir` | directory of the local cloud's state (`PLINTH_LOCAL_STATE_DIR`) | `~/.local/share/plinth/local` |
//! | `Local.AvailabilityZones` | the zones the local cloud offers, comma-separated | `local-a,local-b,local-c` |
//!
//! Tags are stored as given: no mapping and no limits beyond the core's. Networks,
//! subnets and keypairs in specs are accepted and ignored (everything is on loopback).
//! The helper executable `plinth-local` must be findable ([`locate`]), or the program
//! embedding this crate hosts it by calling [`helper::run_if_requested`] first in
//! `main`.

#![warn(missing_docs)]

mod acl;
mod builder;
pub mod catalog;
mod client;
pub mod config;
mod daemon;
mod forwarder;
pub mod helper;
mod image;
mod lb;
pub mod locate;
mod protocol;
mod store;
mod supervisor;

pub use builder::{LocalBuilder, KEYS};
pub use client::LocalProvider;
pub use config::LocalConfig;
