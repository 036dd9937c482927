//! How each [`Query`] is answered: one or more SELECTs, each an equality match on a key prefix or on an
//! indexed column, ordered by the key.

use danm_core::model::NetworkKind;
use danm_core::store::{EndpointQuery, Query};
use rusqlite::types::Value;

use super::layout::{Table, kind_value, pool_values, text};

/// One SELECT: every row of `table` whose columns equal the values given, in key order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Select {
    /// The table.
    pub(super) table: Table,
    /// Equality conditions, all of which must hold.
    pub(super) filter: Vec<(&'static str, Value)>,
}

impl Select {
    fn all(table: Table) -> Self {
        Self { table, filter: Vec::new() }
    }

    fn and(mut self, column: &'static str, value: Value) -> Self {
        self.filter.push((column, value));
        self
    }

    /// The statement: the key columns, then `version` and `value`.
    pub(super) fn sql(&self) -> String {
        let columns = self.table.key_columns().join(", ");
        let mut sql = format!("SELECT {columns}, version, value FROM {}", self.table.name());
        for (i, (column, _)) in self.filter.iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            sql.push_str(&format!("{column} = ?{}", i + 1));
        }
        sql.push_str(&format!(" ORDER BY {columns}"));
        sql
    }

    /// The statement's parameters, in order.
    pub(super) fn params(&self) -> impl Iterator<Item = &Value> {
        self.filter.iter().map(|(_, v)| v)
    }
}

/// The SELECTs that answer `query`. Their rows, concatenated in this order, are in key order.
pub(super) fn plan(query: &Query) -> Vec<Select> {
    match query {
        Query::Networks { kind: None, namespace: None } => vec![Select::all(Table::Networks)],
        Query::Networks { kind: Some(kind), namespace: None } => {
            vec![Select::all(Table::Networks).and("kind", kind_value(*kind))]
        }
        Query::Networks { kind, namespace: Some(ns) } => {
            // Per kind: the networks without a namespace (ClusterNetworks), then those of `ns`.
            let kinds = kind.map_or(NetworkKind::ALL.to_vec(), |k| vec![k]);
            kinds
                .into_iter()
                .flat_map(|k| {
                    let of_kind = Select::all(Table::Networks).and("kind", kind_value(k));
                    [
                        of_kind.clone().and("namespaced", Value::Integer(0)),
                        of_kind.and("namespaced", Value::Integer(1)).and("namespace", text(ns)),
                    ]
                })
                .collect()
        }
        Query::TenantConfigs => vec![Select::all(Table::TenantConfigs)],
        Query::Endpoints(q) => vec![endpoints(q)],
        Query::Pods { namespace } => {
            let all = Select::all(Table::Pods);
            vec![match namespace {
                Some(ns) => all.and("namespace", text(ns)),
                None => all,
            }]
        }
        Query::Services { namespace } => {
            let all = Select::all(Table::Services);
            vec![match namespace {
                Some(ns) => all.and("namespace", text(ns)),
                None => all,
            }]
        }
        Query::Blocks(pool) => {
            let columns = Table::Blocks.key_columns().iter().copied();
            vec![Select { table: Table::Blocks, filter: columns.zip(pool_values(pool)).collect() }]
        }
    }
}

/// The SELECT of DanmEps matching `q`, with the conditions of [`EndpointQuery::matches`]: SQLite picks
/// the most selective of the container, pod and network indexes or the namespace key prefix.
fn endpoints(q: &EndpointQuery) -> Select {
    let mut s = Select::all(Table::Endpoints);
    if let Some(ns) = &q.namespace {
        s = s.and("namespace", text(ns));
    }
    if let Some(cid) = &q.container_id {
        s = s.and("container_id", text(cid));
    }
    if let Some(uid) = &q.pod_uid {
        s = s.and("pod_uid", text(uid));
    }
    if let Some(net) = &q.network {
        s = s.and("net_kind", kind_value(net.kind)).and("net_name", text(&net.name));
        if let Some(ns) = &net.namespace {
            s = s.and("namespace", text(ns));
        }
    }
    s
}
