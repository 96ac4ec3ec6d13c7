//! Small JSON records kept as files on the datastore, for what vSphere cannot tag:
//! detached virtual disks (volumes) and security groups (which vSphere has not at all).
//!
//! A record lives at `[datastore] <dir>/<name>.json`, written and read over the
//! datastore's HTTP file interface (`/folder`, as `govc datastore.upload` does), listed
//! with `SearchDatastore_Task` and deleted with `DeleteDatastoreFile_Task`. The
//! directory prefix is the owner marker: everything under `plinth-volumes/` and
//! `plinth-security-groups/` is the provider's. A read-modify-write of one record is
//! serialised inside one process and starts from its last read or write of the record;
//! two processes changing the same record meanwhile may lose one change (vSphere's
//! datastore files have no compare-and-swap).

use provider_core::{Error, Operation, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::Client;
use crate::inventory::Inventory;
use crate::soap::esc;

/// Directory of volume disks and their records.
pub const VOLUME_DIR: &str = "plinth-volumes";
/// Directory of security group records.
pub const GROUP_DIR: &str = "plinth-security-groups";

/// Whether `id` can name a record (the ids are resource names: `[A-Za-z0-9._-]`).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Re-reads of a record that does not parse, and the pause before each: a datastore
/// `PUT` truncates the file before writing it, so a read that races a write (of this
/// process or another) can see it empty or cut short.
const REREADS: [u64; 4] = [25, 50, 100, 200];

/// Reads record `dir/id.json`; `None` when absent. A record that does not parse is
/// read again a few times (it may be mid-write) before it is `CorruptRecord`.
pub async fn get<T: DeserializeOwned>(
    client: &Client,
    inv: &Inventory,
    op: Operation,
    dir: &str,
    id: &str,
) -> Result<Option<T>> {
    if !valid_id(id) {
        return Ok(None);
    }
    let path = format!("{dir}/{id}.json");
    let mut pauses = REREADS.iter();
    loop {
        let Some(text) = client
            .get_file(op, &inv.datacenter_name, &inv.datastore_name, &path)
            .await?
        else {
            return Ok(None);
        };
        let parsed = serde_json::from_str(&text);
        match (parsed, pauses.next()) {
            (Ok(record), _) => return Ok(Some(record)),
            (Err(_), Some(ms)) => {
                tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
            }
            (Err(e), None) => return Err(corrupt(inv, op, dir, id, e)),
        }
    }
}

/// The error of a record that never parsed.
fn corrupt(inv: &Inventory, op: Operation, dir: &str, id: &str, e: serde_json::Error) -> Error {
    let message = format!(
        "[{}] {dir}/{id}.json is not a Plinth record: {e}",
        inv.datastore_name
    );
    Error::api(op, None, "CorruptRecord", message).with_source(e)
}

/// Writes record `dir/id.json`.
pub async fn put<T: Serialize>(
    client: &Client,
    inv: &Inventory,
    op: Operation,
    dir: &str,
    id: &str,
    record: &T,
) -> Result<()> {
    let text = serde_json::to_string_pretty(record).map_err(|e| {
        Error::transient(op, format!("cannot encode the record: {e}")).with_source(e)
    })?;
    client
        .put_file(
            op,
            &inv.datacenter_name,
            &inv.datastore_name,
            &format!("{dir}/{id}.json"),
            text,
        )
        .await
}

/// Deletes record `dir/id.json`; absent is fine.
pub async fn delete(
    client: &Client,
    inv: &Inventory,
    op: Operation,
    dir: &str,
    id: &str,
    timeout: std::time::Duration,
) -> Result<()> {
    delete_file(client, inv, op, &format!("{dir}/{id}.json"), timeout).await
}

/// Deletes a datastore file; absent is fine.
pub async fn delete_file(
    client: &Client,
    inv: &Inventory,
    op: Operation,
    path: &str,
    timeout: std::time::Duration,
) -> Result<()> {
    let fm = client.content().await?.file_manager.clone();
    let body = format!(
        "<DeleteDatastoreFile_Task>{}<name>{}</name>{}</DeleteDatastoreFile_Task>",
        fm.xml("_this"),
        esc(&inv.ds_path(path)),
        inv.datacenter.xml("datacenter")
    );
    match client.run_task(op, path, &body, timeout).await {
        Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The ids of the records in `dir` (one `SearchDatastore_Task`).
pub async fn list_ids(
    client: &Client,
    inv: &Inventory,
    op: Operation,
    dir: &str,
    timeout: std::time::Duration,
) -> Result<Vec<String>> {
    let body = format!(
        "<SearchDatastore_Task>{}<datastorePath>{}</datastorePath><searchSpec><matchPattern>*.json</matchPattern></searchSpec></SearchDatastore_Task>",
        inv.datastore_browser.xml("_this"),
        esc(&inv.ds_path(dir))
    );
    let result = match client.run_task(op, dir, &body, timeout).await {
        Ok(r) => r,
        Err(Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut ids: Vec<String> = result
        .iter()
        .flat_map(|r| r.children_named("file"))
        .filter_map(|f| f.child_text("path"))
        .filter_map(|p| p.rsplit('/').next())
        .filter_map(|p| p.strip_suffix(".json"))
        .filter(|id| valid_id(id))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Creates `dir` on the datastore (present is fine).
pub async fn make_dir(client: &Client, inv: &Inventory, op: Operation, dir: &str) -> Result<()> {
    let fm = client.content().await?.file_manager.clone();
    let body = format!(
        "<MakeDirectory>{}<name>{}</name>{}<createParentDirectories>true</createParentDirectories></MakeDirectory>",
        fm.xml("_this"),
        esc(&inv.ds_path(dir)),
        inv.datacenter.xml("datacenter")
    );
    match client.call(op, dir, &body).await {
        Ok(_) | Err(Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
