//! Admission validation of networks and TenantConfigs: pure functions that report every broken rule.
//!
//! The rules are those of upstream DANM's admission webhook (numbered as in the DANM inventory, section 6),
//! with these deliberate differences:
//!
//! - an IPv4 `cidr` may be as wide as /8;
//! - instead of a combined size cap, the IPv6 allocation pool CIDR is /64 to /127 and `net6` is not a /128;
//! - pool boundaries may not be the first or last address of their subnet, and route destinations and
//!   gateways must be of the right family;
//! - names are checked: NetworkType and NetworkID are plugin names, `host_device` and `container_prefix`
//!   make kernel interface names, `device_pool` is a resource name, `AllowedTenants` holds namespace names;
//! - integer options are range-checked; `vniRange` is checked against its `vniType`'s ID range.
//!
//! Errors are [`ValidationErrors`]: one [`ValidationError`] per broken rule, each naming the offending field
//! and its [`Violation`].
//!
//! | module | contents |
//! | --- | --- |
//! | `error` | [`ValidationError`], [`ValidationErrors`], [`Violation`] |
//! | `names` | [`plugin_name`], [`interface_name`], [`namespace_name`], [`device_pool_name`] |
//! | `addressing` | rules 1–16: subnets, routes, pools ([`crate::ipam::default_v6_pool_cidr`]) |
//! | `network` | [`validate_network`], [`validate_tenant_network_mutated`], [`validate_network_delete`] |
//! | `tenant` | [`validate_tenant_config`], [`parse_vni_range`] |

mod addressing;
mod error;
mod names;
mod network;
mod tenant;

pub use addressing::{MIN_IPV4_PREFIX, MIN_IPV6_POOL_PREFIX};
pub use error::{ValidationError, ValidationErrors, Violation};
pub use names::{MAX_INTERFACE_NAME_LEN, device_pool_name, interface_name, namespace_name, plugin_name};
pub use network::{
    DEFAULT_MTU, MAX_NETWORK_ID_LEN_WITH_VNI, MTU_RANGE, Operation, RT_TABLES_RANGE, SRIOV, VLAN_RANGE, VXLAN_RANGE,
    validate_network, validate_network_delete, validate_tenant_network_mutated,
};
pub use tenant::{TenantConfigOperation, VniRangeParseError, VniType, parse_vni_range, validate_tenant_config};
