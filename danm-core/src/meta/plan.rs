//! Planning an ADD, without I/O: which interface goes on which network, through which backend, with
//! which address request.

use super::error::MetaError;
use crate::ipam::{AddressRequest, IpRequest, OwnerId};
use crate::model::{Network, NetworkKind};
use crate::pod::{InterfaceRequest, NamingScheme, check_unique_names, interface_name};
use crate::provision::{HostInterface, HostLinkKind, IpVlanMode, LinkKind, MacVlanMode};
use crate::validate;

/// How an attachment is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A built-in pod interface, created in process through the InterfaceProvisioner
    /// (NetworkType empty, `ipvlan` or `macvlan`).
    BuiltIn(LinkKind),
    /// The `sriov` plugin, with a configuration DANM generates (a dynamic delegate).
    Sriov,
    /// Any other plugin, with `<cniDir>/<NetworkID>.conf` or `.conflist` (a static delegate).
    Static(String),
}

impl Backend {
    /// The backend of a NetworkType (compared without regard to ASCII case, as upstream).
    pub fn of(network_type: &str) -> Self {
        match network_type.to_ascii_lowercase().as_str() {
            "" | "ipvlan" => Self::BuiltIn(LinkKind::IpVlan(IpVlanMode::L2)),
            "macvlan" => Self::BuiltIn(LinkKind::MacVlan(MacVlanMode::Bridge)),
            "sriov" => Self::Sriov,
            _ => Self::Static(network_type.to_owned()),
        }
    }
}

/// One interface of the pod, fully decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// Position in the pod's request (0 is `eth0`).
    pub index: usize,
    /// The interface name in the pod.
    pub name: String,
    /// The network.
    pub network: Network,
    /// What the pod asked for.
    pub request: InterfaceRequest,
    /// How it is set up.
    pub backend: Backend,
    /// What DANM's IPAM allocates; `None` when the attachment keeps its delegate's own IPAM.
    pub addresses: Option<AddressRequest>,
    /// Who holds the addresses: derived from the container and the interface name.
    pub owner: OwnerId,
    /// Whether the network's `routes`/`routes6` go on this interface: only on the pod's first interface on
    /// that network.
    pub network_routes: bool,
}

impl Attachment {
    /// The network as text, for messages.
    pub fn network_label(&self) -> String {
        self.network.key().to_string()
    }

    /// The host interface the pod interface hangs off: the network's VLAN or VXLAN interface when it has
    /// one, otherwise `host_device`.
    pub fn parent(&self) -> Option<String> {
        host_interface(&self.network).map(|h| h.name).or_else(|| {
            let dev = &self.network.spec.options.host_device;
            (!dev.is_empty()).then(|| dev.clone())
        })
    }
}

/// The VLAN or VXLAN host interface a network needs, if any (`<NetworkID>.<vlan>` or `vx_<NetworkID>`).
pub fn host_interface(network: &Network) -> Option<HostInterface> {
    let o = &network.spec.options;
    let id = &network.spec.network_id;
    let mtu = o.mtu.and_then(|m| u32::try_from(m).ok());
    let kind = match (o.vlan, o.vxlan) {
        (Some(v), _) => HostLinkKind::Vlan(u16::try_from(v).ok()?),
        (None, Some(v)) => HostLinkKind::Vxlan(u32::try_from(v).ok()?),
        (None, None) => return None,
    };
    let name = match kind {
        HostLinkKind::Vlan(v) => format!("{id}.{v}"),
        HostLinkKind::Vxlan(_) => format!("vx_{id}"),
    };
    Some(HostInterface { name, parent: o.host_device.clone(), kind, mtu })
}

fn invalid(net: &Network, field: &str, reason: impl Into<String>) -> MetaError {
    MetaError::InvalidNetwork { network: net.key().to_string(), field: field.to_owned(), reason: reason.into() }
}

/// Whether DANM allocates for a static delegate: when the pod asks for `none`, or asks for an address of a
/// family the network has a subnet for (upstream's rule). Once it does, it does so for both families.
fn danm_allocates_for_delegate(network: &Network, request: &InterfaceRequest) -> bool {
    let o = &network.spec.options;
    let asks = |r: Option<IpRequest>, has_subnet: bool| match r {
        Some(IpRequest::None) => true,
        Some(_) => has_subnet,
        None => false,
    };
    asks(request.ip, !o.cidr.is_empty()) || asks(request.ip6, !o.net6.is_empty())
}

/// Decides every attachment of a pod. `networks[i]` is the network `requests[i]` names, already read
/// from the store. Checks access (a ClusterNetwork's AllowedTenants), that each network is usable by its
/// backend, and that interface names are unique.
pub fn plan(
    namespace: &str,
    container_id: &str,
    requests: &[InterfaceRequest],
    networks: Vec<Network>,
    naming: NamingScheme,
) -> Result<Vec<Attachment>, MetaError> {
    let mut attachments = Vec::with_capacity(requests.len());
    for (index, (request, network)) in requests.iter().zip(networks).enumerate() {
        if network.kind == NetworkKind::ClusterNetwork
            && !network.spec.allowed_tenants.is_empty()
            && !network.spec.allowed_tenants.iter().any(|t| t == namespace)
        {
            return Err(MetaError::AccessDenied {
                index,
                name: network.metadata.name.clone(),
                namespace: namespace.to_owned(),
            });
        }
        let spec = &network.spec;
        if !spec.network_type.is_empty() {
            validate::plugin_name("spec.NetworkType", &spec.network_type)
                .map_err(|e| invalid(&network, "spec.NetworkType", e.message))?;
        }
        let backend = Backend::of(&spec.network_type);
        let addresses = match &backend {
            Backend::Static(_) if !danm_allocates_for_delegate(&network, request) => None,
            _ => Some(AddressRequest { ip: request.ip, ip6: request.ip6 }),
        };
        match &backend {
            Backend::BuiltIn(_) => {
                if spec.options.host_device.is_empty() {
                    return Err(invalid(
                        &network,
                        "spec.Options.host_device",
                        "is empty: a built-in interface needs a parent",
                    ));
                }
                validate::interface_name("spec.Options.host_device", &spec.options.host_device)
                    .map_err(|e| invalid(&network, "spec.Options.host_device", e.message))?;
            }
            Backend::Sriov if spec.options.device_pool.is_empty() => {
                return Err(invalid(&network, "spec.Options.device_pool", "is empty: sriov needs a device pool"));
            }
            Backend::Static(_) => {
                validate::plugin_name("spec.NetworkID", &spec.network_id)
                    .map_err(|e| invalid(&network, "spec.NetworkID", e.message))?;
            }
            Backend::Sriov => {}
        }
        let name = interface_name(index, &spec.options.container_prefix, naming);
        let owner = OwnerId::for_attachment(container_id, &name);
        let network_routes = !attachments.iter().any(|a: &Attachment| a.network.key() == network.key());
        attachments.push(Attachment {
            index,
            name,
            network,
            request: request.clone(),
            backend,
            addresses,
            owner,
            network_routes,
        });
    }
    check_unique_names(&attachments.iter().map(|a| a.name.as_str()).collect::<Vec<_>>())?;
    Ok(attachments)
}
