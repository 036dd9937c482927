//! Object names and labels of the IPAM state objects.
//!
//! A name is a stable, injective encoding of the key, readable where the key allows it:
//!
//! - pool prefix: `<k>.<namespace>.<network>.<family>` (`<k>.<network>.<family>` for a ClusterNetwork),
//!   with `<k>` = `dn`, `tn` or `cn` and `<family>` = `ipv4` or `ipv6`, e.g. `dn.blue.internal.ipv4`. When
//!   the namespace is not a DNS label, the network name not a DNS subdomain, or the prefix longer than
//!   [`MAX_READABLE_PREFIX`], it is `<k>-<16 hex digits>.<family>` instead, the digits an FNV-1a digest
//!   of the pool key (no readable prefix starts with `<k>-`).
//! - block: `<pool prefix>.<index>`, the index in decimal, e.g. `dn.blue.internal.ipv4.3`.
//! - cursor: `<pool prefix>.n-<allocator>` when the allocator (a node name) is a DNS label of at most 61
//!   characters, else `<pool prefix>.h-<16 hex digits>`, a digest of the allocator.
//!
//! Readable names decode unambiguously from the right (the namespace is a single label, the index and
//! allocator parts a single label each). Digests could in principle collide, so every object also
//! carries its full key in its spec, and a reader compares that key with the one it asked for.

use danm_core::ipam::{AllocatorId, BlockKey, Family, PoolKey};
use danm_core::model::{NetworkKind, labels};

/// The longest readable pool prefix: leaves room for a 39-digit block index or a 63-character
/// allocator label within Kubernetes' 253-character names.
pub const MAX_READABLE_PREFIX: usize = 189;

/// The label with the namespace of the network an IPAM object belongs to (absent for ClusterNetworks).
pub const NETWORK_NAMESPACE_LABEL: &str = "danm.k8s.io/network-namespace";
/// The label with the address family (`ipv4` or `ipv6`) of an IPAM object's pool.
pub const FAMILY_LABEL: &str = "danm.k8s.io/family";
/// The label with the allocator (node) of a cursor.
pub const ALLOCATOR_LABEL: &str = "danm.k8s.io/allocator";

fn kind_code(kind: NetworkKind) -> &'static str {
    match kind {
        NetworkKind::DanmNet => "dn",
        NetworkKind::TenantNetwork => "tn",
        NetworkKind::ClusterNetwork => "cn",
    }
}

/// `ipv4` or `ipv6`: the family as it appears in names and labels.
pub fn family_code(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// Whether `s` is an RFC 1123 DNS label: 1 to 63 of `[a-z0-9-]`, alphanumeric at both ends.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is an RFC 1123 DNS subdomain: DNS labels joined by dots, at most 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// 64-bit FNV-1a over the parts, each followed by a 0xff separator (a byte UTF-8 never contains).
/// Part of the persisted format: it must never change.
fn digest(parts: &[&str]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for b in parts.iter().flat_map(|p| p.bytes().chain([0xff])) {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:016x}")
}

/// The name prefix shared by every block and cursor of `pool`.
pub fn pool_prefix(pool: &PoolKey) -> String {
    let net = &pool.network;
    let (kind, family) = (kind_code(net.kind), family_code(pool.family));
    let namespace_ok = match (&net.namespace, net.kind.is_namespaced()) {
        (Some(ns), true) => is_dns_label(ns),
        (None, false) => true,
        _ => false,
    };
    let readable = match &net.namespace {
        Some(ns) => format!("{kind}.{ns}.{}.{family}", net.name),
        None => format!("{kind}.{}.{family}", net.name),
    };
    if namespace_ok && is_dns_subdomain(&net.name) && readable.len() <= MAX_READABLE_PREFIX {
        return readable;
    }
    let hash = digest(&[net.kind.as_str(), net.namespace.as_deref().unwrap_or_default(), &net.name, family]);
    format!("{kind}-{hash}.{family}")
}

/// The object name of a block.
pub fn block_name(key: &BlockKey) -> String {
    format!("{}.{}", pool_prefix(&key.pool), key.index)
}

/// The object name of an allocator's cursor in a pool.
pub fn cursor_name(pool: &PoolKey, allocator: &AllocatorId) -> String {
    let id = &allocator.0;
    if id.len() <= 61 && is_dns_label(id) {
        format!("{}.n-{id}", pool_prefix(pool))
    } else {
        format!("{}.h-{}", pool_prefix(pool), digest(&[id]))
    }
}

/// The labels of every IPAM object of `pool`: network kind, namespace (namespaced kinds), name and
/// family. Values go through [`labels::value`], so a long network name is cut: a selector narrows,
/// the spec decides.
pub fn pool_labels(pool: &PoolKey) -> std::collections::BTreeMap<String, String> {
    let net = &pool.network;
    let mut out = std::collections::BTreeMap::from([
        (labels::NETWORK_KIND.to_owned(), net.kind.as_str().to_owned()),
        (labels::NETWORK_NAME.to_owned(), labels::value(&net.name)),
        (FAMILY_LABEL.to_owned(), family_code(pool.family).to_owned()),
    ]);
    if let Some(ns) = &net.namespace {
        out.insert(NETWORK_NAMESPACE_LABEL.to_owned(), labels::value(ns));
    }
    out
}

/// The label selector that lists the blocks (or cursors) of one pool. Results must still be checked
/// against the key in their spec, as label values may be cut.
pub fn pool_selector(pool: &PoolKey) -> String {
    pool_labels(pool).iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use danm_core::model::NetworkKey;

    use super::*;

    fn pool(kind: NetworkKind, ns: &str, name: &str, family: Family) -> PoolKey {
        PoolKey::new(NetworkKey::new(kind, ns, name), family)
    }

    #[test]
    fn names_are_readable_where_they_can_be() {
        let p = pool(NetworkKind::DanmNet, "blue", "internal", Family::V4);
        assert_eq!(block_name(&BlockKey { pool: p.clone(), index: 3 }), "dn.blue.internal.ipv4.3");
        assert_eq!(cursor_name(&p, &AllocatorId::new("node-1")), "dn.blue.internal.ipv4.n-node-1");
        let c = pool(NetworkKind::ClusterNetwork, "ignored", "mgmt.v6", Family::V6);
        assert_eq!(
            block_name(&BlockKey { pool: c.clone(), index: u128::MAX }),
            format!("cn.mgmt.v6.ipv6.{}", u128::MAX)
        );
        assert_eq!(
            cursor_name(&c, &AllocatorId::new("node-1.example.com")),
            format!("cn.mgmt.v6.ipv6.h-{}", digest(&["node-1.example.com"]))
        );
    }

    #[test]
    fn odd_keys_get_digests_that_fit() {
        let long = "n".repeat(253);
        for (ns, name) in [("blue", long.as_str()), ("blue", "Upper_Case"), ("a.b", "x"), ("", "x")] {
            let p = pool(NetworkKind::TenantNetwork, ns, name, Family::V4);
            let prefix = pool_prefix(&p);
            assert!(prefix.starts_with("tn-") && prefix.ends_with(".ipv4"), "{prefix}");
            let name = block_name(&BlockKey { pool: p.clone(), index: u128::MAX });
            assert!(name.len() <= 253 && is_dns_subdomain(&name), "{name}");
            let name = cursor_name(&p, &AllocatorId::new("x".repeat(300)));
            assert!(name.len() <= 253 && is_dns_subdomain(&name), "{name}");
        }
        // Readable names stay within bounds at the limit too.
        // (Labels of at most 63 characters, so that the name is a DNS subdomain.)
        let name: String =
            (0..MAX_READABLE_PREFIX - "dn.blue..ipv4".len()).map(|i| if i % 50 == 49 { '.' } else { 'a' }).collect();
        let p = pool(NetworkKind::DanmNet, "blue", &name, Family::V4);
        assert_eq!(pool_prefix(&p).len(), MAX_READABLE_PREFIX);
        assert!(cursor_name(&p, &AllocatorId::new("n".repeat(61))).len() <= 253);
        assert!(block_name(&BlockKey { pool: p, index: u128::MAX }).len() <= 253);
    }

    #[test]
    fn names_are_injective_on_tricky_keys() {
        // Dots in network names cannot make two keys meet.
        let a = pool(NetworkKind::DanmNet, "ns", "a.ipv4.b", Family::V4);
        let b = pool(NetworkKind::DanmNet, "ns", "a", Family::V4);
        assert_ne!(cursor_name(&a, &AllocatorId::new("c")), cursor_name(&b, &AllocatorId::new("b.ipv4.n-c")));
        assert_ne!(block_name(&BlockKey { pool: a, index: 1 }), block_name(&BlockKey { pool: b, index: 1 }));
        // A readable allocator never looks like a digest.
        let p = pool(NetworkKind::DanmNet, "ns", "a", Family::V4);
        let hashed = cursor_name(&p, &AllocatorId::new("Node"));
        let id = hashed.rsplit('.').next().unwrap().to_owned();
        assert_ne!(cursor_name(&p, &AllocatorId::new(id)), hashed);
    }

    #[test]
    fn digests_are_stable() {
        // The digest is part of the persisted format: it must never change.
        assert_eq!(digest(&["node-1.example.com"]), "0d0e807b5457e2bd");
    }

    #[test]
    fn selectors_select_one_pool() {
        let p = pool(NetworkKind::DanmNet, "blue", "internal", Family::V6);
        assert_eq!(
            pool_selector(&p),
            "danm.k8s.io/family=ipv6,danm.k8s.io/network=internal,danm.k8s.io/network-kind=DanmNet,\
             danm.k8s.io/network-namespace=blue"
        );
        let c = pool(NetworkKind::ClusterNetwork, "blue", "mgmt", Family::V4);
        assert!(!pool_selector(&c).contains("network-namespace"));
    }
}
