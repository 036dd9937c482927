//! What a pod asks of IPAM for one family of one interface.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The value of an interface's `ip` or `ip6` key: `dynamic`, `none`, or a static address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpRequest {
    /// The next free address of the allocation pool.
    Dynamic,
    /// No address, recorded as `none` (the interface is IPv6-enabled for `ip6: none`).
    None,
    /// This address; it must lie in the network's subnet, and may lie outside the pool.
    /// A `/len` suffix in the request is accepted and ignored: the network's prefix length is used.
    Static(IpAddr),
}

/// Why an `ip`/`ip6` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is neither `dynamic`, `none` nor an IP address (optionally with a /prefix)")]
pub struct IpRequestParseError {
    /// The rejected value.
    pub value: String,
}

impl FromStr for IpRequest {
    type Err = IpRequestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IpRequestParseError { value: s.to_owned() };
        match s {
            "dynamic" => Ok(Self::Dynamic),
            "none" => Ok(Self::None),
            _ => {
                let (addr, prefix) = match s.split_once('/') {
                    Some((a, p)) => (a, Some(p)),
                    None => (s, None),
                };
                let addr: IpAddr = addr.parse().map_err(|_| err())?;
                if let Some(p) = prefix {
                    let max = if addr.is_ipv4() { 32 } else { 128 };
                    match p.parse::<u8>() {
                        Ok(len) if len <= max && !p.starts_with('+') => {}
                        _ => return Err(err()),
                    }
                }
                Ok(Self::Static(addr))
            }
        }
    }
}

impl fmt::Display for IpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dynamic => f.write_str("dynamic"),
            Self::None => f.write_str("none"),
            Self::Static(a) => write!(f, "{a}"),
        }
    }
}

impl Serialize for IpRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("dynamic".parse(), Ok(IpRequest::Dynamic));
        assert_eq!("none".parse(), Ok(IpRequest::None));
        assert_eq!("10.0.0.5".parse(), Ok(IpRequest::Static("10.0.0.5".parse().unwrap())));
        assert_eq!("10.0.0.5/24".parse(), Ok(IpRequest::Static("10.0.0.5".parse().unwrap())));
        assert_eq!("fd00::5/64".parse(), Ok(IpRequest::Static("fd00::5".parse().unwrap())));
        for bad in ["", "Dynamic", "10.0.0.5/33", "10.0.0.5/", "10.0.0.5/+3", "fd00::1/129", "host"] {
            assert!(bad.parse::<IpRequest>().is_err(), "{bad}");
        }
    }
}
