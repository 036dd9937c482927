//! The database layout, created when absent, and the connection settings every handle uses.
//!
//! Tables (all `WITHOUT ROWID`, keyed by the columns of [`layout`](super::layout)):
//!
//! - `meta (name, value)`: `schema_version` (see [`SCHEMA_VERSION`]) and `revision`, the global counter
//!   every write increments and whose new value becomes the written object's version (as etcd's revision).
//! - `networks`, `tenant_configs`, `endpoints`, `pods`, `services`, `blocks`, `cursors`: one per object kind, each
//!   with the key columns, `version` and `value` (the object's JSON from `Object::to_json`).
//! - `endpoints` also has `pod_uid`, `container_id`, `net_kind` (NULL when `apiType` names no known kind)
//!   and `net_name`, each indexed; a pool's blocks are a prefix of the `blocks` key.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use super::{BUSY_TIMEOUT, SqliteError};

/// The version of the layout this build reads and writes; a file of another version is refused.
pub const SCHEMA_VERSION: i64 = 2;

const POOL_COLUMNS: &str = "net_kind INTEGER NOT NULL, net_namespaced INTEGER NOT NULL, \
    net_namespace TEXT NOT NULL, net_name TEXT NOT NULL, family INTEGER NOT NULL";
const POOL_KEY: &str = "net_kind, net_namespaced, net_namespace, net_name, family";
const VALUE_COLUMNS: &str = "version INTEGER NOT NULL, value TEXT NOT NULL";

fn tables() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS networks (kind INTEGER NOT NULL, namespaced INTEGER NOT NULL, \
            namespace TEXT NOT NULL, name TEXT NOT NULL, {VALUE_COLUMNS}, \
            PRIMARY KEY (kind, namespaced, namespace, name)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS tenant_configs (name TEXT NOT NULL, {VALUE_COLUMNS}, \
            PRIMARY KEY (name)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS endpoints (namespace TEXT NOT NULL, name TEXT NOT NULL, {VALUE_COLUMNS}, \
            pod_uid TEXT NOT NULL, container_id TEXT NOT NULL, net_kind INTEGER, net_name TEXT NOT NULL, \
            PRIMARY KEY (namespace, name)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS endpoints_by_container ON endpoints (container_id);
        CREATE INDEX IF NOT EXISTS endpoints_by_pod ON endpoints (pod_uid);
        CREATE INDEX IF NOT EXISTS endpoints_by_network ON endpoints (net_kind, net_name);
        CREATE TABLE IF NOT EXISTS pods (namespace TEXT NOT NULL, name TEXT NOT NULL, {VALUE_COLUMNS}, \
            PRIMARY KEY (namespace, name)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS services (namespace TEXT NOT NULL, name TEXT NOT NULL, {VALUE_COLUMNS}, \
            PRIMARY KEY (namespace, name)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS blocks ({POOL_COLUMNS}, idx BLOB NOT NULL, {VALUE_COLUMNS}, \
            PRIMARY KEY ({POOL_KEY}, idx)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS cursors ({POOL_COLUMNS}, allocator TEXT NOT NULL, {VALUE_COLUMNS}, \
            PRIMARY KEY ({POOL_KEY}, allocator)) WITHOUT ROWID;"
    )
}

/// Configures `conn` and creates the tables if absent.
///
/// Connections opening a new file at the same moment can find it locked in ways SQLite does not wait
/// out with the busy timeout (switching the file to WAL mode needs it to itself); such attempts are
/// repeated, a few milliseconds apart, until [`BUSY_TIMEOUT`] has passed.
pub(super) fn prepare(conn: &mut Connection, path: &Path) -> Result<(), SqliteError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        let result = configure(conn).map_err(|source| open_error(path, source)).and_then(|()| install(conn, path));
        match result {
            Err(e) if e.is_transient() && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            other => return other,
        }
    }
}

/// An error opening `path`: [`SqliteError::Busy`] when SQLite says the file is locked.
pub(super) fn open_error(path: &Path, source: rusqlite::Error) -> SqliteError {
    match SqliteError::statement(format!("opening {}", path.display()), source) {
        SqliteError::Statement { source, .. } => SqliteError::Open { path: path.to_owned(), source },
        busy => busy,
    }
}

/// Sets what every connection needs: wait up to [`BUSY_TIMEOUT`] for other writers, write-ahead logging
/// (readers never block the writer nor it them), and `synchronous=NORMAL` (in WAL mode: a commit survives
/// a crash of the process; after a power loss the last commits may be rolled back, never torn).
///
/// A `danm` process opens the file, makes a few commits and exits, usually as the only connection; by
/// default SQLite would then copy the whole log back into the database and sync it on every exit. The
/// log is instead left in place and checkpointed every [`WAL_CHECKPOINT_PAGES`] pages by the commits
/// themselves. The log must stay that short: the first connection of a process reads all of it to
/// rebuild its index.
/// How many pages of write-ahead log trigger a checkpoint.
const WAL_CHECKPOINT_PAGES: i64 = 32;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // An in-memory database answers `memory`: it has no file to log beside.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
    Ok(())
}

/// Creates the tables if the database has none, in one transaction, and refuses a file written with
/// another schema version.
fn install(conn: &mut Connection, path: &Path) -> Result<(), SqliteError> {
    let failed = |source| open_error(path, source);
    if let Some(found) = schema_version(conn).map_err(failed)? {
        return check(found, path);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed)?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS meta (name TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', {SCHEMA_VERSION}), ('revision', 0);"
    ))
    .map_err(failed)?;
    let found = schema_version(&tx).map_err(failed)?.unwrap_or_default();
    check(found, path)?;
    tx.execute_batch(&tables()).map_err(failed)?;
    tx.commit().map_err(failed)
}

/// The schema version recorded in the file, if it has a `meta` table.
fn schema_version(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let has_meta: bool =
        conn.query_row("SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'", [], |r| {
            r.get(0)
        })?;
    if !has_meta {
        return Ok(None);
    }
    conn.query_row("SELECT value FROM meta WHERE name = 'schema_version'", [], |r| r.get(0)).map(Some)
}

fn check(found: i64, path: &Path) -> Result<(), SqliteError> {
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    Err(SqliteError::SchemaVersion { path: path.to_owned(), found, supported: SCHEMA_VERSION })
}
