//! Slots: the place a node fills in the layout (`<cluster>-<role>-<ordinal>`), as distinct
//! from the instance filling it. A rolling replacement creates a new instance
//! (`<slot>-r<generation>`) for the same slot before the old one goes, so for a while two
//! instances claim one slot; these helpers say which one the planner treats as the slot's
//! node (the older one, until it is deleted), so `apply` and `replace` agree.

use std::collections::HashMap;

use provider_core::{Instance, Tags};

use crate::spec::Role;

/// Tag key naming the slot a replacement instance fills (absent on first-generation
/// nodes, whose name is their slot).
pub const TAG_SLOT: &str = "plinth.slot";
/// Tag key holding an instance's generation within its slot (absent means 0).
pub const TAG_GENERATION: &str = "plinth.generation";
/// Tag key on a replacement naming the instance it replaces, until that one is gone.
pub const TAG_REPLACES: &str = "plinth.replaces";
/// Tag key on a node a replacement run has selected (`pending`).
pub const TAG_REPLACE: &str = "plinth.replace";
/// Prefix of the tag keys on the cluster's base security group that record the slots a
/// delete-first replacement (`--max-surge 0`) empties: `plinth.vacant.<slot>` =
/// `<generation of the node that goes>@<its AZ>` (see [`Vacancy`]). Set before the old
/// node leaves its load balancers, removed once its successor serves: while the slot has
/// no instance, this record is what a rerun after a crash finds it by.
pub const TAG_VACANT: &str = "plinth.vacant.";

/// A slot a delete-first replacement empties, as recorded on the base security group
/// under [`TAG_VACANT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vacancy {
    /// The slot.
    pub slot: String,
    /// Generation of the node that goes (its successor has the next one).
    pub generation: u64,
    /// AZ of the node that goes: its successor is created there.
    pub availability_zone: String,
}

impl Vacancy {
    /// The vacancy `old` leaves.
    pub fn of(old: &Instance) -> Self {
        Self {
            slot: slot_of(old).to_string(),
            generation: generation_of(old),
            availability_zone: old.availability_zone.clone(),
        }
    }

    /// Its tag key on the base group.
    pub fn key(&self) -> String {
        format!("{TAG_VACANT}{}", self.slot)
    }

    /// Its tag value on the base group.
    pub fn value(&self) -> String {
        format!("{}@{}", self.generation, self.availability_zone)
    }

    /// Parses a tag of the base group; `None` for other tags and malformed values.
    pub fn parse(key: &str, value: &str) -> Option<Self> {
        let slot = key.strip_prefix(TAG_VACANT)?;
        let (generation, az) = value.split_once('@')?;
        if slot.is_empty() || az.is_empty() {
            return None;
        }
        Some(Self {
            slot: slot.to_string(),
            generation: generation.parse().ok()?,
            availability_zone: az.to_string(),
        })
    }

    /// The name of the node that goes.
    pub fn old_name(&self) -> String {
        if self.generation == 0 {
            self.slot.clone()
        } else {
            format!("{}-r{}", self.slot, self.generation)
        }
    }

    /// The name of its successor (as [`replacement_name`] gives it).
    pub fn successor(&self) -> String {
        format!("{}-r{}", self.slot, self.generation + 1)
    }
}

/// The vacancies recorded in `tags` (the base security group's), by slot name.
pub fn vacancies(tags: &Tags) -> Vec<Vacancy> {
    tags.iter()
        .filter_map(|(k, v)| Vacancy::parse(k, v))
        .collect()
}

/// The role and ordinal of slot `slot` (`<cluster>-<role>-<ordinal>`) of `cluster`.
pub fn parse_slot(cluster: &str, slot: &str) -> Option<(Role, usize)> {
    let rest = slot.strip_prefix(cluster)?.strip_prefix('-')?;
    let (role, ordinal) = rest.rsplit_once('-')?;
    Some((Role::parse(role)?, ordinal.parse().ok()?))
}

/// The slot `instance` fills.
pub fn slot_of(instance: &Instance) -> &str {
    instance
        .tags
        .get(TAG_SLOT)
        .map(String::as_str)
        .unwrap_or(instance.name.as_str())
}

/// The generation of `instance` in its slot (0 for first-generation nodes).
pub fn generation_of(instance: &Instance) -> u64 {
    instance
        .tags
        .get(TAG_GENERATION)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

/// The name of the instance that replaces `instance`: deterministic, so a rerun after a
/// crash finds (or idempotently creates) the same one.
pub fn replacement_name(instance: &Instance) -> String {
    format!("{}-r{}", slot_of(instance), generation_of(instance) + 1)
}

/// The instance standing for each slot: of several claiming one slot, the oldest
/// generation, which keeps serving until a replacement has taken over and deleted it.
pub fn canonical(instances: &[Instance]) -> HashMap<&str, &Instance> {
    let mut by_slot: HashMap<&str, &Instance> = HashMap::new();
    for i in instances {
        let slot = slot_of(i);
        match by_slot.get(slot) {
            Some(cur) if generation_of(cur) <= generation_of(i) => {}
            _ => {
                by_slot.insert(slot, i);
            }
        }
    }
    by_slot
}

/// Whether `instance` is the one standing for its slot.
pub fn is_canonical(map: &HashMap<&str, &Instance>, instance: &Instance) -> bool {
    map.get(slot_of(instance))
        .is_some_and(|c| c.id == instance.id)
}
