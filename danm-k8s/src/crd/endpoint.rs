//! DanmEp: the record of one pod interface, with danm-core's [`DanmEpSpec`] as its spec.

use danm_core::model::{self, DanmEpSpec};

use super::definition::{Column, danm_resource};
use super::{API_VERSION, ConversionError, meta};

/// The `kubectl get` columns of DanmEps.
const COLUMNS: &[Column] = &[
    Column { name: "Pod", type_: "string", json_path: ".spec.Pod", description: "The pod", priority: 0 },
    Column {
        name: "Interface",
        type_: "string",
        json_path: ".spec.Interface.Name",
        description: "The interface inside the pod",
        priority: 0,
    },
    Column {
        name: "Network",
        type_: "string",
        json_path: ".spec.NetworkName",
        description: "The network object",
        priority: 0,
    },
    Column {
        name: "Kind",
        type_: "string",
        json_path: ".spec.apiType",
        description: "The network's kind (DanmNet when empty)",
        priority: 1,
    },
    Column {
        name: "Address",
        type_: "string",
        json_path: ".spec.Interface.Address",
        description: "The IPv4 address, `none`, or empty",
        priority: 0,
    },
    Column {
        name: "Address6",
        type_: "string",
        json_path: ".spec.Interface.AddressIPv6",
        description: "The IPv6 address, `none`, or empty",
        priority: 0,
    },
    Column { name: "Host", type_: "string", json_path: ".spec.Host", description: "The node", priority: 0 },
    Column {
        name: "Container",
        type_: "string",
        json_path: ".spec.CID",
        description: "The infra container ID",
        priority: 1,
    },
    Column::AGE,
];

danm_resource! {
    /// A DanmEp (`danm.k8s.io/v1`, namespaced, short names `de`, `dep`): one per pod interface DANM set
    /// up, in the pod's namespace, named by its EndpointID. It is the record CNI DEL, service discovery
    /// and the cleaner work from.
    pub struct DanmEp {
        kind: "DanmEp",
        plural: "danmeps",
        short_names: ["de", "dep"],
        scope: NamespaceResourceScope,
        spec: DanmEpSpec,
        columns: COLUMNS,
    }
}

impl TryFrom<model::DanmEp> for DanmEp {
    type Error = ConversionError;

    /// The resource of a danm-core DanmEp; fails only on metadata Kubernetes cannot carry. The
    /// `apiVersion` becomes `danm.k8s.io/v1` whatever group the value was read with.
    fn try_from(ep: model::DanmEp) -> Result<Self, ConversionError> {
        Ok(Self { metadata: meta::to_kube(&ep.metadata)?, spec: ep.spec })
    }
}

impl From<DanmEp> for model::DanmEp {
    fn from(ep: DanmEp) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: "DanmEp".to_owned(),
            metadata: meta::from_kube(ep.metadata),
            spec: ep.spec,
        }
    }
}

#[cfg(test)]
mod tests {
    use danm_core::model::{DanmEpIface, labels};
    use kube::core::{CustomResourceExt, Resource};

    use super::*;

    fn endpoint() -> model::DanmEp {
        let mut metadata = model::ObjectMeta::new("6f1e9c2a-0d4b-4a0e-9d1c-2b7f8e0a1c3d", Some("blue"));
        metadata.labels.insert(labels::POD_UID.into(), "uid-1".into());
        metadata.other.insert("creationTimestamp".into(), "2024-05-06T07:08:09Z".into());
        let spec = DanmEpSpec {
            network_name: "internal".into(),
            network_type: "ipvlan".into(),
            endpoint_id: metadata.name.clone(),
            interface: DanmEpIface {
                name: "eth1".into(),
                address: "10.0.0.5/24".into(),
                address_ipv6: "none".into(),
                mac_address: "02:00:00:00:00:01".into(),
                proutes: [("10.2.0.0/16".to_owned(), "10.0.0.1".to_owned())].into(),
                mtu: Some(9000),
                ..DanmEpIface::default()
            },
            host: "node-1".into(),
            pod: "web-0".into(),
            pod_uid: "uid-1".into(),
            cid: "c0ffee".into(),
            netns: "/var/run/netns/x".into(),
            api_type: "TenantNetwork".into(),
        };
        model::DanmEp { api_version: API_VERSION.into(), kind: "DanmEp".into(), metadata, spec }
    }

    #[test]
    fn danm_ep_round_trips() {
        let ep = endpoint();
        let resource = DanmEp::try_from(ep.clone()).unwrap();
        assert_eq!(serde_json::to_value(&resource).unwrap(), serde_json::to_value(&ep).unwrap());
        assert_eq!(model::DanmEp::from(resource), ep);
    }

    #[test]
    fn danm_ep_is_namespaced_without_status() {
        assert_eq!(DanmEp::url_path(&(), Some("blue")), "/apis/danm.k8s.io/v1/namespaces/blue/danmeps");
        let crd = DanmEp::crd();
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["de".to_owned(), "dep".to_owned()]));
        assert!(crd.spec.versions[0].subresources.is_none());
    }
}
