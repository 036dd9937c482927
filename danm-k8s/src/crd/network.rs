//! DanmNet, TenantNetwork and ClusterNetwork: three kinds sharing danm-core's [`NetworkSpec`].

use std::borrow::Cow;

use danm_core::model::{self, NetworkKind, NetworkSpec};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::definition::{Column, danm_resource};
use super::{ConversionError, meta};

/// The `kubectl get` columns of the three network kinds.
const NETWORK_COLUMNS: &[Column] = &[
    Column {
        name: "NetworkType",
        type_: "string",
        json_path: ".spec.NetworkType",
        description: "The backend: ipvlan (also when empty), macvlan, sriov or a delegate plugin",
        priority: 0,
    },
    Column {
        name: "NetworkID",
        type_: "string",
        json_path: ".spec.NetworkID",
        description: "The second identifier: names static delegate configs and host interfaces",
        priority: 0,
    },
    Column {
        name: "CIDR",
        type_: "string",
        json_path: ".spec.Options.cidr",
        description: "The IPv4 subnet",
        priority: 0,
    },
    Column {
        name: "Net6",
        type_: "string",
        json_path: ".spec.Options.net6",
        description: "The IPv6 subnet",
        priority: 0,
    },
    Column {
        name: "HostDevice",
        type_: "string",
        json_path: ".spec.Options.host_device",
        description: "The parent host interface",
        priority: 0,
    },
    Column {
        name: "VLAN",
        type_: "integer",
        json_path: ".spec.Options.vlan",
        description: "The VLAN ID of the host interface <NetworkID>.<vlan>",
        priority: 0,
    },
    Column {
        name: "VXLAN",
        type_: "integer",
        json_path: ".spec.Options.vxlan",
        description: "The VNI of the host interface vx_<NetworkID>",
        priority: 0,
    },
    Column {
        name: "DevicePool",
        type_: "string",
        json_path: ".spec.Options.device_pool",
        description: "The device plugin resource (SR-IOV)",
        priority: 1,
    },
    Column::AGE,
];

/// ClusterNetworks also show which namespaces may use them.
const CLUSTER_NETWORK_COLUMNS: &[Column] = &[
    NETWORK_COLUMNS[0],
    NETWORK_COLUMNS[1],
    NETWORK_COLUMNS[2],
    NETWORK_COLUMNS[3],
    NETWORK_COLUMNS[4],
    NETWORK_COLUMNS[5],
    NETWORK_COLUMNS[6],
    NETWORK_COLUMNS[7],
    Column {
        name: "AllowedTenants",
        type_: "string",
        json_path: ".spec.AllowedTenants",
        description: "The namespaces that may connect (all when empty)",
        priority: 1,
    },
    Column::AGE,
];

danm_resource! {
    /// A DanmNet (`danm.k8s.io/v1`, namespaced, short names `dn`, `dnet`): a network that only pods of
    /// its own namespace use, and whose every field its user sets.
    pub struct DanmNet {
        kind: "DanmNet",
        plural: "danmnets",
        short_names: ["dn", "dnet"],
        scope: NamespaceResourceScope,
        spec: NetworkSpec,
        status: NetworkStatus,
        columns: NETWORK_COLUMNS,
    }
}

danm_resource! {
    /// A TenantNetwork (`danm.k8s.io/v1`, namespaced, short names `tn`, `tnet`): a tenant's network,
    /// whose physical attributes (host device, VLAN/VXLAN) come from the TenantConfig.
    pub struct TenantNetwork {
        kind: "TenantNetwork",
        plural: "tenantnetworks",
        short_names: ["tn", "tnet"],
        scope: NamespaceResourceScope,
        spec: NetworkSpec,
        status: NetworkStatus,
        columns: NETWORK_COLUMNS,
    }
}

danm_resource! {
    /// A ClusterNetwork (`danm.k8s.io/v1`, cluster-scoped, short names `cn`, `cnet`): an
    /// administrator's network, usable from the namespaces in `AllowedTenants` (all when empty).
    pub struct ClusterNetwork {
        kind: "ClusterNetwork",
        plural: "clusternetworks",
        short_names: ["cn", "cnet"],
        scope: ClusterResourceScope,
        spec: NetworkSpec,
        status: NetworkStatus,
        columns: CLUSTER_NETWORK_COLUMNS,
    }
}

/// The status subresource of a network, kept verbatim: danm-rs writes none today, upstream's
/// continuation line writes `reservedIPs`. Its schema keeps unknown fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetworkStatus(pub serde_json::Map<String, serde_json::Value>);

impl JsonSchema for NetworkStatus {
    fn schema_name() -> Cow<'static, str> {
        "NetworkStatus".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The status subresource, kept as written.",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

fn status_to_crd(status: Option<serde_json::Value>) -> Result<Option<NetworkStatus>, ConversionError> {
    match status {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Object(map)) => Ok(Some(NetworkStatus(map))),
        Some(other) => Err(ConversionError::invalid("status", format!("must be an object, not {other}"))),
    }
}

/// Conversions between one network kind and danm-core's [`Network`](model::Network).
macro_rules! network_conversions {
    ($root:ident) => {
        impl TryFrom<model::Network> for $root {
            type Error = ConversionError;

            /// Takes a danm-core network of this kind; `WrongKind` for another kind.
            fn try_from(network: model::Network) -> Result<Self, ConversionError> {
                if network.kind != NetworkKind::$root {
                    return Err(ConversionError::WrongKind { expected: NetworkKind::$root, found: network.kind });
                }
                Ok(Self {
                    metadata: meta::to_kube(&network.metadata)?,
                    spec: network.spec,
                    status: status_to_crd(network.status)?,
                })
            }
        }

        impl From<$root> for model::Network {
            fn from(object: $root) -> Self {
                let mut network =
                    model::Network::new(NetworkKind::$root, meta::from_kube(object.metadata), object.spec);
                network.status = object.status.map(|s| serde_json::Value::Object(s.0));
                network
            }
        }
    };
}

network_conversions!(DanmNet);
network_conversions!(TenantNetwork);
network_conversions!(ClusterNetwork);

/// A network object of any of the three kinds, as a datastore handles them.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkResource {
    /// A DanmNet.
    DanmNet(DanmNet),
    /// A TenantNetwork.
    TenantNetwork(TenantNetwork),
    /// A ClusterNetwork.
    ClusterNetwork(ClusterNetwork),
}

impl NetworkResource {
    /// Which kind it is.
    pub fn kind(&self) -> NetworkKind {
        match self {
            Self::DanmNet(_) => NetworkKind::DanmNet,
            Self::TenantNetwork(_) => NetworkKind::TenantNetwork,
            Self::ClusterNetwork(_) => NetworkKind::ClusterNetwork,
        }
    }
}

impl TryFrom<model::Network> for NetworkResource {
    type Error = ConversionError;

    /// The resource of the network's kind; fails only on metadata or a status that Kubernetes cannot
    /// carry.
    fn try_from(network: model::Network) -> Result<Self, ConversionError> {
        Ok(match network.kind {
            NetworkKind::DanmNet => Self::DanmNet(network.try_into()?),
            NetworkKind::TenantNetwork => Self::TenantNetwork(network.try_into()?),
            NetworkKind::ClusterNetwork => Self::ClusterNetwork(network.try_into()?),
        })
    }
}

impl From<NetworkResource> for model::Network {
    fn from(resource: NetworkResource) -> Self {
        match resource {
            NetworkResource::DanmNet(n) => n.into(),
            NetworkResource::TenantNetwork(n) => n.into(),
            NetworkResource::ClusterNetwork(n) => n.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use danm_core::model::{IpPool, NetworkOptions};
    use kube::core::{CustomResourceExt, Resource};

    use super::*;

    fn network(kind: NetworkKind) -> model::Network {
        let mut metadata = model::ObjectMeta::new("internal", kind.is_namespaced().then_some("blue"));
        metadata.labels.insert("tier".into(), "backend".into());
        metadata.other.insert("generation".into(), 2.into());
        let spec = NetworkSpec {
            network_id: "internal".into(),
            network_type: "ipvlan".into(),
            allowed_tenants: if kind.is_namespaced() { vec![] } else { vec!["blue".into()] },
            options: NetworkOptions {
                host_device: "eth1".into(),
                vlan: Some(500),
                cidr: "10.0.0.0/24".into(),
                allocation_pool: IpPool { start: "10.0.0.10".into(), end: "10.0.0.200".into(), ..IpPool::default() },
                routes: [("10.1.0.0/16".to_owned(), "10.0.0.1".to_owned())].into(),
                rt_tables: Some(200),
                ..NetworkOptions::default()
            },
        };
        let mut network = model::Network::new(kind, metadata, spec);
        network.status = Some(serde_json::json!({"reservedIPs": [{"namespace": "blue", "objects": ["r1"]}]}));
        network
    }

    #[test]
    fn every_kind_round_trips_through_its_resource() {
        for kind in NetworkKind::ALL {
            let net = network(kind);
            let resource = NetworkResource::try_from(net.clone()).unwrap();
            assert_eq!(resource.kind(), kind);
            assert_eq!(model::Network::from(resource), net);
        }
    }

    #[test]
    fn the_resource_serializes_as_the_model_does() {
        // Same wire format: what kubectl shows is what danm-core parses, and the other way round.
        let net = network(NetworkKind::TenantNetwork);
        let resource = TenantNetwork::try_from(net.clone()).unwrap();
        assert_eq!(serde_json::to_value(&resource).unwrap(), serde_json::to_value(&net).unwrap());
        let back: model::Network = serde_json::from_value(serde_json::to_value(&resource).unwrap()).unwrap();
        assert_eq!(back, net);
        let parsed: TenantNetwork = serde_json::from_value(serde_json::to_value(&net).unwrap()).unwrap();
        assert_eq!(parsed, resource);
    }

    #[test]
    fn kinds_are_checked() {
        let err = DanmNet::try_from(network(NetworkKind::ClusterNetwork)).unwrap_err();
        assert_eq!(
            err,
            ConversionError::WrongKind { expected: NetworkKind::DanmNet, found: NetworkKind::ClusterNetwork }
        );
        let mut net = network(NetworkKind::DanmNet);
        net.status = Some("ready".into());
        assert!(matches!(DanmNet::try_from(net), Err(ConversionError::Invalid { field, .. }) if field == "status"));
    }

    #[test]
    fn resources_name_their_kind_and_scope() {
        assert_eq!(DanmNet::kind(&()), "DanmNet");
        assert_eq!(ClusterNetwork::api_version(&()), "danm.k8s.io/v1");
        assert_eq!(TenantNetwork::url_path(&(), Some("blue")), "/apis/danm.k8s.io/v1/namespaces/blue/tenantnetworks");
        assert_eq!(ClusterNetwork::url_path(&(), None), "/apis/danm.k8s.io/v1/clusternetworks");
        assert_eq!(ClusterNetwork::crd_name(), "clusternetworks.danm.k8s.io");
        assert_eq!(DanmNet::shortnames(), ["dn", "dnet"]);
        let crd = DanmNet::crd();
        assert_eq!(crd.metadata.name.as_deref(), Some(DanmNet::crd_name()));
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(ClusterNetwork::crd().spec.scope, "Cluster");
        assert!(crd.spec.versions[0].subresources.as_ref().unwrap().status.is_some());
        let new = DanmNet::new("n", NetworkSpec::default());
        assert_eq!(new.metadata.name.as_deref(), Some("n"));
        assert_eq!(new.status, None);
    }
}
