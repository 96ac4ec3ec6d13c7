//! The state database (redb): one table per resource kind, id -> JSON row.
//!
//! Only the daemon opens it; redb's file lock makes a second opener fail instead of
//! corrupting it, which is how two daemons racing for one state dir settle who runs.

use std::path::Path;

use provider_core::{Error, Operation};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};

/// A table of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Security groups.
    SecurityGroups,
    /// Floating IPs.
    FloatingIps,
    /// Volumes.
    Volumes,
    /// Instances.
    Instances,
    /// Load balancers.
    LoadBalancers,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 5] = [
        Table::SecurityGroups,
        Table::FloatingIps,
        Table::Volumes,
        Table::Instances,
        Table::LoadBalancers,
    ];

    fn def(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(match self {
            Table::SecurityGroups => "security_groups",
            Table::FloatingIps => "floating_ips",
            Table::Volumes => "volumes",
            Table::Instances => "instances",
            Table::LoadBalancers => "load_balancers",
        })
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database.
    #[error("the state database is open in another process")]
    Locked,
    /// redb failed (boxed: redb's error is large and errors are rare).
    #[error("state database: {0}")]
    Db(Box<redb::Error>),
    /// A row did not decode.
    #[error("state database row: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// As a provider error of `op` (the store is the local "API": failures are `Api`).
    pub fn into_error(self, op: Operation) -> Error {
        Error::api(op, None, "state_store", self.to_string()).with_source(self)
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(Box::new(e.into())) }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The open state database.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (creating) the database at `path`; [`StoreError::Locked`] when another
    /// process has it open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(StoreError::Locked),
            Err(e) => return Err(e.into()),
        };
        // Create every table up front so reads never meet a missing table.
        let w = db.begin_write()?;
        for t in Table::ALL {
            w.open_table(t.def())?;
        }
        w.commit()?;
        Ok(Self { db })
    }

    /// The row `id` of `table`.
    pub fn get<T: DeserializeOwned>(
        &self,
        table: Table,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(table.def())?;
        match t.get(id)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// Every row of `table`, ordered by id.
    pub fn all<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<T>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(table.def())?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Writes the row `id` of `table`.
    pub fn put<T: Serialize>(&self, table: Table, id: &str, row: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(row)?;
        let w = self.db.begin_write()?;
        {
            let mut t = w.open_table(table.def())?;
            t.insert(id, bytes.as_slice())?;
        }
        w.commit()?;
        Ok(())
    }

    /// Removes the row `id` of `table` (absent is fine).
    pub fn delete(&self, table: Table, id: &str) -> Result<(), StoreError> {
        let w = self.db.begin_write()?;
        {
            let mut t = w.open_table(table.def())?;
            t.remove(id)?;
        }
        w.commit()?;
        Ok(())
    }

    /// Whether no table has a row.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let r = self.db.begin_read()?;
        for table in Table::ALL {
            let t = r.open_table(table.def())?;
            if t.iter()?.next().is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        assert!(s.is_empty().unwrap());
        s.put(Table::Volumes, "b", &2u32).unwrap();
        s.put(Table::Volumes, "a", &1u32).unwrap();
        assert_eq!(s.get::<u32>(Table::Volumes, "a").unwrap(), Some(1));
        assert_eq!(s.all::<u32>(Table::Volumes).unwrap(), vec![1, 2]);
        assert!(!s.is_empty().unwrap());
        s.delete(Table::Volumes, "a").unwrap();
        s.delete(Table::Volumes, "a").unwrap();
        assert_eq!(s.all::<u32>(Table::Volumes).unwrap(), vec![2]);
    }
}
