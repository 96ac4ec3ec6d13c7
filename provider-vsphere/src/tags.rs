//! Tags on VMs as vCenter custom attributes (`AddCustomFieldDef` + `SetField`).
//!
//! Each tag key is one global custom attribute definition of that name; a VM's tags are
//! its `customValue`s whose definition is not reserved. vCenter clears an attribute
//! set to the empty string, so an empty tag value is stored as [`EMPTY_VALUE`], and a
//! removed tag is an attribute set to `""`. Names starting with [`RESERVED_PREFIX`] are
//! the provider's own (the instance spec) and are not tags.

use std::collections::BTreeMap;

use provider_core::{Error, Operation, Result, Tags};
use tokio::sync::Mutex;

use crate::client::Client;
use crate::soap::{esc, Element, MoRef};

/// Prefix of the provider's own attribute names; tag keys may not start with it.
pub const RESERVED_PREFIX: &str = "plinth-internal:";
/// The attribute holding an instance's spec as created (JSON).
pub const SPEC_FIELD: &str = "plinth-internal:instance-spec";
/// Prefix of the provider's `config.extraConfig` entries on a VM.
pub const EXTRA_PREFIX: &str = "plinth.";
/// The extraConfig entry holding a VM's tags (a JSON object), set in its clone spec.
pub const TAGS_KEY: &str = "plinth.tags";
/// The extraConfig entry holding a VM's spec as created (JSON), set in its clone spec.
pub const SPEC_KEY: &str = "plinth.instance-spec";
/// How an empty tag value is stored.
pub const EMPTY_VALUE: &str = "\u{2205}";

/// Rejects reserved tag keys.
pub fn check_keys(op: Operation, field: &str, tags: &Tags) -> Result<()> {
    match tags.keys().find(|k| k.starts_with(RESERVED_PREFIX)) {
        Some(k) => Err(Error::invalid(
            op,
            format!("{field}[{k:?}]"),
            format!(
                "tag keys starting with {RESERVED_PREFIX:?} are reserved by the vSphere provider"
            ),
        )),
        None => Ok(()),
    }
}

/// The custom attribute definitions, by name and key, loaded lazily.
#[derive(Debug, Default)]
pub struct Fields {
    inner: Mutex<FieldMaps>,
}

#[derive(Debug, Default)]
struct FieldMaps {
    loaded: bool,
    by_name: BTreeMap<String, i32>,
    by_key: BTreeMap<i32, String>,
}

impl Fields {
    async fn load(&self, client: &Client, op: Operation, maps: &mut FieldMaps) -> Result<()> {
        let cfm = client.content().await?.custom_fields_manager.clone();
        let got = client
            .retrieve(
                op,
                "CustomFieldsManager",
                None,
                std::slice::from_ref(&cfm),
                &["field"],
            )
            .await?;
        maps.by_name.clear();
        maps.by_key.clear();
        if let Some(val) = got.first().and_then(|o| o.props.get("field")) {
            for def in &val.children {
                if let (Some(k), Some(n)) = (
                    def.child_text("key")
                        .and_then(|k| k.trim().parse::<i32>().ok()),
                    def.child_text("name"),
                ) {
                    maps.by_name.insert(n.to_string(), k);
                    maps.by_key.insert(k, n.to_string());
                }
            }
        }
        maps.loaded = true;
        Ok(())
    }

    /// The key of the attribute `name`, defining it when missing.
    pub async fn key(&self, client: &Client, op: Operation, name: &str) -> Result<i32> {
        let mut maps = self.inner.lock().await;
        if !maps.loaded {
            self.load(client, op, &mut maps).await?;
        }
        if let Some(k) = maps.by_name.get(name) {
            return Ok(*k);
        }
        let cfm = client.content().await?.custom_fields_manager.clone();
        let body = format!(
            "<AddCustomFieldDef>{}<name>{}</name></AddCustomFieldDef>",
            cfm.xml("_this"),
            esc(name)
        );
        match client
            .call_raw(op, &format!("custom attribute {name}"), &body)
            .await?
        {
            Ok(resp) => {
                let k = resp
                    .child("returnval")
                    .and_then(|r| r.child_text("key"))
                    .and_then(|k| k.trim().parse::<i32>().ok())
                    .ok_or_else(|| Error::transient(op, "AddCustomFieldDef returned no key"))?;
                maps.by_name.insert(name.to_string(), k);
                maps.by_key.insert(k, name.to_string());
                Ok(k)
            }
            Err(_) => {
                // Defined meanwhile by another client: reload.
                self.load(client, op, &mut maps).await?;
                maps.by_name.get(name).copied().ok_or_else(|| {
                    Error::transient(
                        op,
                        format!("custom attribute {name} exists but is not listed yet"),
                    )
                })
            }
        }
    }

    /// Reads `customValue` into (attribute name -> value), last value per key winning
    /// and empty values dropped. Unknown keys trigger one reload of the definitions.
    pub async fn values(
        &self,
        client: &Client,
        op: Operation,
        custom_value: Option<&Element>,
    ) -> Result<BTreeMap<String, String>> {
        let mut raw: BTreeMap<i32, String> = BTreeMap::new();
        if let Some(cv) = custom_value {
            for v in &cv.children {
                if let Some(k) = v
                    .child_text("key")
                    .and_then(|k| k.trim().parse::<i32>().ok())
                {
                    raw.insert(k, v.child_text("value").unwrap_or_default().to_string());
                }
            }
        }
        if raw.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut maps = self.inner.lock().await;
        if !maps.loaded || raw.keys().any(|k| !maps.by_key.contains_key(k)) {
            self.load(client, op, &mut maps).await?;
        }
        Ok(raw
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .filter_map(|(k, v)| maps.by_key.get(&k).map(|n| (n.clone(), v)))
            .collect())
    }
}

/// The user tags among attribute values.
pub fn user_tags(values: &BTreeMap<String, String>) -> Tags {
    values
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| {
            let v = if v == EMPTY_VALUE {
                String::new()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// A VM's tags: its custom attributes (how VMs made before [`TAGS_KEY`] hold them, and
/// any a user set) overlaid by its [`TAGS_KEY`] entry.
pub fn vm_tags(attrs: &BTreeMap<String, String>, extra: &BTreeMap<String, String>) -> Tags {
    let mut tags = user_tags(attrs);
    if let Some(t) = extra
        .get(TAGS_KEY)
        .and_then(|j| serde_json::from_str::<Tags>(j).ok())
    {
        tags.extend(t);
    }
    tags
}

/// `extraConfig` elements of a VM config spec setting `entries` (an empty value removes
/// the entry).
pub fn extra_config_xml<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    entries
        .into_iter()
        .map(|(k, v)| {
            format!(
                "<extraConfig xsi:type=\"OptionValue\"><key>{}</key><value xsi:type=\"xsd:string\">{}</value></extraConfig>",
                esc(k),
                esc(v)
            )
        })
        .collect()
}

/// Sets attribute `name` on `entity` (`""` clears it).
pub async fn set_field(
    client: &Client,
    fields: &Fields,
    op: Operation,
    entity: &MoRef,
    name: &str,
    value: &str,
) -> Result<()> {
    let key = fields.key(client, op, name).await?;
    let cfm = client.content().await?.custom_fields_manager.clone();
    let body = format!(
        "<SetField>{}{}<key>{key}</key><value>{}</value></SetField>",
        cfm.xml("_this"),
        entity.xml("entity"),
        esc(value)
    );
    client
        .call(op, &format!("{} {}", entity.kind, entity.value), &body)
        .await
        .map(|_| ())
}

/// The contract's tag rules (as `provider-core` checks specs), for `update_tags`.
pub fn validate(op: Operation, field: &str, tags: &Tags) -> Result<()> {
    for (k, v) in tags {
        if k.is_empty() || k.len() > provider_core::MAX_TAG_KEY_LEN || k.contains('=') {
            return Err(Error::invalid(
                op,
                format!("{field}[{k:?}]"),
                format!(
                    "tag keys must be 1 to {} characters without '='",
                    provider_core::MAX_TAG_KEY_LEN
                ),
            ));
        }
        if v.len() > provider_core::MAX_TAG_VALUE_LEN {
            return Err(Error::invalid(
                op,
                format!("{field}[{k:?}]"),
                format!(
                    "tag values must be at most {} characters",
                    provider_core::MAX_TAG_VALUE_LEN
                ),
            ));
        }
    }
    check_keys(op, field, tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_config_tags_win_over_custom_attributes_which_are_still_read() {
        let attrs: BTreeMap<String, String> = [
            ("plinth.role".to_string(), "node".to_string()),
            ("owner".to_string(), EMPTY_VALUE.to_string()),
            (SPEC_FIELD.to_string(), "{}".to_string()),
        ]
        .into();
        let extra: BTreeMap<String, String> = [(
            TAGS_KEY.to_string(),
            r#"{"plinth.role":"master","k":""}"#.to_string(),
        )]
        .into();
        let tags = vm_tags(&attrs, &extra);
        assert_eq!(tags.get("plinth.role").map(String::as_str), Some("master"));
        assert_eq!(tags.get("owner").map(String::as_str), Some(""));
        assert_eq!(tags.get("k").map(String::as_str), Some(""));
        assert!(!tags.contains_key(SPEC_FIELD));
        // A VM of an older version: custom attributes only.
        let old = vm_tags(&attrs, &BTreeMap::new());
        assert_eq!(old.get("plinth.role").map(String::as_str), Some("node"));
    }

    #[test]
    fn extra_config_entries_are_escaped() {
        let xml = extra_config_xml([(TAGS_KEY, r#"{"a":"<b>&"}"#)]);
        assert!(xml.contains("<key>plinth.tags</key>"), "{xml}");
        assert!(xml.contains("&lt;b&gt;&amp;"), "{xml}");
    }
}
