//! The embedded datastore: every object in one SQLite file, shared by all DANM processes of a node.

mod error;
mod layout;
mod query;
mod schema;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use danm_core::store::{Datastore, Object, ObjectKey, Query, Result, StoreError, Version, Versioned};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params_from_iter};

use error::backend;
use layout::Table;

pub use error::SqliteError;
pub use schema::SCHEMA_VERSION;

/// How long a write waits for other connections' writes before it fails with [`SqliteError::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Datastore`] in one SQLite file.
///
/// Many handles — threads of one process, or the many short-lived `danm` processes of a node — may use
/// one file at once:
///
/// - Every trait call is one transaction. Writes begin with `BEGIN IMMEDIATE`, so the version check and
///   the write that depends on it happen under the database's write lock, and compare-and-swap holds
///   across processes. Reads are one snapshot, also for a list answered by several SELECTs.
/// - The file is in write-ahead-log mode: readers never wait for the writer. A writer waits up to
///   [`BUSY_TIMEOUT`] for another; past that the call fails with [`StoreError::Backend`] whose source is
///   [`SqliteError::Busy`], which is transient.
/// - Versions are the values of one counter stored in the file, incremented by every write (create,
///   update and delete), like an etcd revision: an object's version changes on every write and is never
///   reused, also after a delete and a new create.
/// - Commits are crash-consistent: a transaction is applied whole or not at all. With `synchronous=NORMAL`
///   a committed write survives the crash of its process; a power loss may roll back the last commits,
///   but never leaves a torn one.
///
/// Objects are stored as the JSON of [`Object::to_json`], keyed by typed columns whose order is the order
/// of [`ObjectKey`], and every [`Query`] is answered from the primary key or an index. The calls block
/// the calling thread (a CNI invocation serves one request); a handle is `Send + Sync`, its connection
/// behind a mutex, and separate processes each open their own handle.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database file at `path`, creating the file and its tables if absent. The directory must
    /// exist: it is not created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SqliteError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
            return Err(SqliteError::MissingDirectory { path: path.to_owned(), dir: dir.to_owned() });
        }
        let conn = Connection::open(path).map_err(|source| schema::open_error(path, source))?;
        Self::setup(conn, path.to_owned())
    }

    /// A private in-memory database, gone when the handle is dropped. For tests.
    pub fn open_in_memory() -> Result<Self, SqliteError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| schema::open_error(&path, source))?;
        Self::setup(conn, path)
    }

    fn setup(mut conn: Connection, path: PathBuf) -> Result<Self, SqliteError> {
        schema::prepare(&mut conn, &path)?;
        Ok(Self { conn: Mutex::new(conn), path })
    }

    /// The database file (`:memory:` for an in-memory database).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| SqliteError::Poisoned.into())
    }

    /// Runs `f` in one transaction: `IMMEDIATE` (holding the write lock from the start) when `write`, a
    /// read snapshot otherwise. It commits only if `f` succeeds.
    fn transaction<T>(&self, write: bool, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock()?;
        let behavior = if write { TransactionBehavior::Immediate } else { TransactionBehavior::Deferred };
        let tx = conn.transaction_with_behavior(behavior).map_err(backend(|| "beginning a transaction".into()))?;
        let out = f(&tx)?;
        tx.commit().map_err(backend(|| "committing a transaction".into()))?;
        Ok(out)
    }
}

/// The stored version of `key`, if it exists.
fn version_of(tx: &Transaction<'_>, key: &ObjectKey) -> Result<Option<i64>> {
    let (table, values) = layout::locate(key);
    let sql = format!("SELECT version FROM {} WHERE {}", table.name(), conditions(table.key_columns()));
    let mut stmt = tx.prepare_cached(&sql).map_err(backend(|| format!("reading {key}")))?;
    stmt.query_row(params_from_iter(&values), |r| r.get(0)).optional().map_err(backend(|| format!("reading {key}")))
}

/// Checks `key`'s stored version against `expected` (any version when `None`).
fn check_version(tx: &Transaction<'_>, key: &ObjectKey, expected: Option<&Version>) -> Result<()> {
    match version_of(tx, key)? {
        None => Err(StoreError::NotFound { key: key.to_string() }),
        Some(v) if expected.is_some_and(|e| e.as_str() != v.to_string()) => {
            Err(StoreError::Conflict { key: key.to_string() })
        }
        Some(_) => Ok(()),
    }
}

/// Increments the store's revision and returns it: the version of the write in progress.
fn next_revision(tx: &Transaction<'_>) -> Result<i64> {
    let sql = "UPDATE meta SET value = value + 1 WHERE name = 'revision' RETURNING value";
    let mut stmt = tx.prepare_cached(sql).map_err(backend(|| "advancing the revision".into()))?;
    stmt.query_row([], |r| r.get(0)).map_err(backend(|| "advancing the revision".into()))
}

/// `a = ?1 AND b = ?2 ...` over `columns`.
fn conditions(columns: &[&str]) -> String {
    let parts: Vec<String> = columns.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
    parts.join(" AND ")
}

/// The JSON text stored for `object`.
fn payload(object: &Object, key: &ObjectKey) -> Result<Value> {
    let invalid = |reason: String| StoreError::Invalid { key: key.to_string(), reason };
    let bytes = object.to_json().map_err(|e| invalid(e.to_string()))?;
    String::from_utf8(bytes).map(Value::Text).map_err(|e| invalid(e.to_string()))
}

/// Inserts `object` at version `rev` (`insert`), or replaces the existing row's version and value.
fn put(tx: &Transaction<'_>, object: &Object, key: &ObjectKey, rev: i64, insert: bool) -> Result<()> {
    let (table, key_values) = layout::locate(key);
    let mut values = vec![Value::Integer(rev), payload(object, key)?];
    values.extend(layout::index_values(object));
    let mut data_columns = vec!["version", "value"];
    data_columns.extend(table.index_columns());
    let sql = if insert {
        let columns: Vec<&str> = data_columns.iter().chain(table.key_columns()).copied().collect();
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        format!("INSERT INTO {} ({}) VALUES ({})", table.name(), columns.join(", "), marks.join(", "))
    } else {
        let set: Vec<String> = data_columns.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
        let cond: Vec<String> = (table.key_columns().iter().enumerate())
            .map(|(i, c)| format!("{c} = ?{}", data_columns.len() + i + 1))
            .collect();
        format!("UPDATE {} SET {} WHERE {}", table.name(), set.join(", "), cond.join(" AND "))
    };
    values.extend(key_values);
    let mut stmt = tx.prepare_cached(&sql).map_err(backend(|| format!("writing {key}")))?;
    stmt.execute(params_from_iter(&values)).map_err(backend(|| format!("writing {key}")))?;
    Ok(())
}

/// Decodes a row of `table`: key columns, version, value.
fn decode(table: Table, row: &rusqlite::Row<'_>) -> Result<Versioned<Object>> {
    let key = layout::key_from_row(table, row)?;
    let n = table.key_columns().len();
    let invalid = |e: rusqlite::Error| StoreError::Invalid { key: key.to_string(), reason: e.to_string() };
    let version: i64 = row.get(n).map_err(invalid)?;
    let value = row.get_ref(n + 1).and_then(|v| Ok(v.as_bytes()?)).map_err(invalid)?;
    let object = Object::from_json(&key, value)?;
    if object.key() != key {
        let reason = format!("the stored value is that of {}", object.key());
        return Err(StoreError::Invalid { key: key.to_string(), reason });
    }
    Ok(Versioned { version: Version::new(version.to_string()), value: object })
}

#[async_trait]
impl Datastore for SqliteStore {
    async fn get(&self, key: &ObjectKey) -> Result<Option<Versioned<Object>>> {
        self.transaction(false, |tx| {
            let (table, values) = layout::locate(key);
            let columns = table.key_columns().join(", ");
            let sql = format!(
                "SELECT {columns}, version, value FROM {} WHERE {}",
                table.name(),
                conditions(table.key_columns())
            );
            let mut stmt = tx.prepare_cached(&sql).map_err(backend(|| format!("reading {key}")))?;
            let mut rows = stmt.query(params_from_iter(&values)).map_err(backend(|| format!("reading {key}")))?;
            match rows.next().map_err(backend(|| format!("reading {key}")))? {
                Some(row) => decode(table, row).map(Some),
                None => Ok(None),
            }
        })
    }

    async fn list(&self, query: &Query) -> Result<Vec<Versioned<Object>>> {
        self.transaction(false, |tx| {
            let mut out = Vec::new();
            for select in query::plan(query) {
                let failed = || format!("listing {query:?}");
                let mut stmt = tx.prepare_cached(&select.sql()).map_err(backend(failed))?;
                let mut rows = stmt.query(params_from_iter(select.params())).map_err(backend(failed))?;
                while let Some(row) = rows.next().map_err(backend(failed))? {
                    let item = decode(select.table, row)?;
                    // The SELECT narrows by the indexed criteria; the rest (the host, used by GC only)
                    // is checked on the decoded endpoint, so every criterion holds whatever is indexed.
                    if let (Query::Endpoints(q), Object::Endpoint(ep)) = (query, &item.value)
                        && !q.matches(ep)
                    {
                        continue;
                    }
                    out.push(item);
                }
            }
            Ok(out)
        })
    }

    async fn create(&self, object: &Object) -> Result<Version> {
        let key = object.key();
        self.transaction(true, |tx| {
            if version_of(tx, &key)?.is_some() {
                return Err(StoreError::Conflict { key: key.to_string() });
            }
            let rev = next_revision(tx)?;
            put(tx, object, &key, rev, true)?;
            Ok(Version::new(rev.to_string()))
        })
    }

    async fn update(&self, object: &Object, expected: &Version) -> Result<Version> {
        let key = object.key();
        self.transaction(true, |tx| {
            check_version(tx, &key, Some(expected))?;
            let rev = next_revision(tx)?;
            put(tx, object, &key, rev, false)?;
            Ok(Version::new(rev.to_string()))
        })
    }

    async fn delete(&self, key: &ObjectKey, expected: Option<&Version>) -> Result<()> {
        self.transaction(true, |tx| {
            check_version(tx, key, expected)?;
            next_revision(tx)?;
            let (table, values) = layout::locate(key);
            let sql = format!("DELETE FROM {} WHERE {}", table.name(), conditions(table.key_columns()));
            let mut stmt = tx.prepare_cached(&sql).map_err(backend(|| format!("deleting {key}")))?;
            stmt.execute(params_from_iter(&values)).map_err(backend(|| format!("deleting {key}")))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
