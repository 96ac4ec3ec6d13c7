//! Slots: the place a node fills in the layout (`<cluster>-<role>-<ordinal>`), as distinct
//! from the instance filling it. A rolling replacement creates a new instance
//! (`<slot>-r<generation>`) for the same slot before the old one goes, so for a while two
//! instances claim one slot; these helpers say which one the planner treats as the slot's
//! node (the older one, until it is deleted), so `apply` and `replace` agree.

use std::collections::HashMap;

use provider_core::Instance;

/// Tag key naming the slot a replacement instance fills (absent on first-generation
/// nodes, whose name is their slot).
pub const TAG_SLOT: &str = "plinth.slot";
/// Tag key holding an instance's generation within its slot (absent means 0).
pub const TAG_GENERATION: &str = "plinth.generation";
/// Tag key on a replacement naming the instance it replaces, until that one is gone.
pub const TAG_REPLACES: &str = "plinth.replaces";
/// Tag key on a node a replacement run has selected (`pending`).
pub const TAG_REPLACE: &str = "plinth.replace";

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
