//! Where each object lives: its table, and its key as column values whose SQLite order is the order of
//! [`ObjectKey`].
//!
//! Strings compare as SQLite's default `BINARY` collation does, byte by byte over UTF-8, which is how
//! `String`'s `Ord` compares; enums are stored as integers in declaration order; a network key's optional
//! namespace is two columns, `namespaced` (0 for none, so that none sorts first) and the text; a block index
//! is 16 big-endian bytes, so that blob order is numeric order.

use danm_core::ipam::{AllocatorId, BlockKey, Family, PoolKey};
use danm_core::model::{NetworkKey, NetworkKind};
use danm_core::store::{Object, ObjectKey, StoreError};
use rusqlite::Row;
use rusqlite::types::Value;

/// The tables, one per object kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Table {
    Networks,
    TenantConfigs,
    Endpoints,
    Pods,
    Services,
    Blocks,
    Cursors,
}

impl Table {
    /// The table's name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Networks => "networks",
            Self::TenantConfigs => "tenant_configs",
            Self::Endpoints => "endpoints",
            Self::Pods => "pods",
            Self::Services => "services",
            Self::Blocks => "blocks",
            Self::Cursors => "cursors",
        }
    }

    /// The primary key's columns, in key order.
    pub(super) fn key_columns(self) -> &'static [&'static str] {
        const POOL: [&str; 5] = ["net_kind", "net_namespaced", "net_namespace", "net_name", "family"];
        match self {
            Self::Networks => &["kind", "namespaced", "namespace", "name"],
            Self::TenantConfigs => &["name"],
            Self::Endpoints | Self::Pods | Self::Services => &["namespace", "name"],
            Self::Blocks => &[POOL[0], POOL[1], POOL[2], POOL[3], POOL[4], "idx"],
            Self::Cursors => &[POOL[0], POOL[1], POOL[2], POOL[3], POOL[4], "allocator"],
        }
    }

    /// The indexed columns besides the key that are derived from the value.
    pub(super) fn index_columns(self) -> &'static [&'static str] {
        match self {
            Self::Endpoints => &["pod_uid", "container_id", "net_kind", "net_name"],
            _ => &[],
        }
    }
}

/// The table and key column values of `key`.
pub(super) fn locate(key: &ObjectKey) -> (Table, Vec<Value>) {
    match key {
        ObjectKey::Network(n) => (Table::Networks, network_values(n).to_vec()),
        ObjectKey::TenantConfig(name) => (Table::TenantConfigs, vec![text(name)]),
        ObjectKey::Endpoint { namespace, name } => (Table::Endpoints, vec![text(namespace), text(name)]),
        ObjectKey::Pod { namespace, name } => (Table::Pods, vec![text(namespace), text(name)]),
        ObjectKey::Service { namespace, name } => (Table::Services, vec![text(namespace), text(name)]),
        ObjectKey::Block(b) => {
            let mut v = pool_values(&b.pool);
            v.push(Value::Blob(b.index.to_be_bytes().to_vec()));
            (Table::Blocks, v)
        }
        ObjectKey::Cursor { pool, allocator } => {
            let mut v = pool_values(pool);
            v.push(text(&allocator.0));
            (Table::Cursors, v)
        }
    }
}

/// The values of [`Table::index_columns`] for `object`.
pub(super) fn index_values(object: &Object) -> Vec<Value> {
    match object {
        Object::Endpoint(ep) => vec![
            text(&ep.spec.pod_uid),
            text(&ep.spec.cid),
            ep.spec.network_kind().map_or(Value::Null, kind_value),
            text(&ep.spec.network_name),
        ],
        _ => Vec::new(),
    }
}

/// The key columns of a network key.
pub(super) fn network_values(n: &NetworkKey) -> [Value; 4] {
    let namespaced = Value::Integer(i64::from(n.namespace.is_some()));
    [kind_value(n.kind), namespaced, text(n.namespace.as_deref().unwrap_or_default()), text(&n.name)]
}

/// The key columns of a pool key: its network's, then the family.
pub(super) fn pool_values(p: &PoolKey) -> Vec<Value> {
    let mut v = network_values(&p.network).to_vec();
    v.push(Value::Integer(match p.family {
        Family::V4 => 0,
        Family::V6 => 1,
    }));
    v
}

/// A network kind's column value.
pub(super) fn kind_value(kind: NetworkKind) -> Value {
    Value::Integer(match kind {
        NetworkKind::DanmNet => 0,
        NetworkKind::TenantNetwork => 1,
        NetworkKind::ClusterNetwork => 2,
    })
}

/// A text column value.
pub(super) fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Reads the key of a row whose first columns are `table`'s key columns.
pub(super) fn key_from_row(table: Table, row: &Row<'_>) -> Result<ObjectKey, StoreError> {
    let bad = |reason: String| StoreError::Invalid { key: format!("a row of table {}", table.name()), reason };
    let string = |i: usize| row.get::<_, String>(i).map_err(|e| bad(e.to_string()));
    let int = |i: usize| row.get::<_, i64>(i).map_err(|e| bad(e.to_string()));
    let network = |first: usize| -> Result<NetworkKey, StoreError> {
        let kind = match int(first)? {
            0 => NetworkKind::DanmNet,
            1 => NetworkKind::TenantNetwork,
            2 => NetworkKind::ClusterNetwork,
            k => return Err(bad(format!("unknown network kind {k}"))),
        };
        let namespace = string(first + 2)?;
        let namespace = (int(first + 1)? != 0).then_some(namespace);
        Ok(NetworkKey { kind, namespace, name: string(first + 3)? })
    };
    let pool = || -> Result<PoolKey, StoreError> {
        let family = match int(4)? {
            0 => Family::V4,
            1 => Family::V6,
            f => return Err(bad(format!("unknown address family {f}"))),
        };
        Ok(PoolKey::new(network(0)?, family))
    };
    Ok(match table {
        Table::Networks => ObjectKey::Network(network(0)?),
        Table::TenantConfigs => ObjectKey::TenantConfig(string(0)?),
        Table::Endpoints => ObjectKey::Endpoint { namespace: string(0)?, name: string(1)? },
        Table::Pods => ObjectKey::Pod { namespace: string(0)?, name: string(1)? },
        Table::Services => ObjectKey::Service { namespace: string(0)?, name: string(1)? },
        Table::Blocks => {
            let bytes: Vec<u8> = row.get(5).map_err(|e| bad(e.to_string()))?;
            let index = <[u8; 16]>::try_from(bytes.as_slice())
                .map_err(|_| bad(format!("a block index of {} bytes, not 16", bytes.len())))?;
            ObjectKey::Block(BlockKey { pool: pool()?, index: u128::from_be_bytes(index) })
        }
        Table::Cursors => ObjectKey::Cursor { pool: pool()?, allocator: AllocatorId(string(5)?) },
    })
}
