//! The messages of the kubelet's PodResources v1 API (`k8s.io/kubelet/pkg/apis/podresources/v1`) that
//! DANM uses, encoded and decoded by hand in protobuf's wire format.
//!
//! Only the fields DANM reads are kept: pod and container names and each container's device-plugin
//! devices. Every other field (a device's NUMA topology, CPU IDs, memory, dynamic resources, and fields
//! added to the API later) is skipped, as protobuf requires of unknown fields. Decoding follows
//! proto3's rules: a repeated or embedded message field may appear several times (elements are
//! appended; an embedded message is merged), the last value of a string field wins, and a known field
//! with another wire type than its declaration is an error.
//!
//! Written by hand rather than generated: five small messages of strings and nested messages, and no
//! build step (`protoc`) for it.

use std::fmt;

/// Why bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end inside a field.
    #[error("the message ends inside a field")]
    Truncated,
    /// A varint is longer than 10 bytes or overflows 64 bits.
    #[error("a varint is longer than 64 bits")]
    VarintOverflow,
    /// Field number 0, or above 2^29 - 1.
    #[error("field number {0} is not valid")]
    BadFieldNumber(u64),
    /// Wire types 3 and 4 (groups, unused by proto3) or 6 and 7 (undefined).
    #[error("wire type {wire_type} of field {field} is not supported")]
    BadWireType {
        /// The field.
        field: u32,
        /// The wire type.
        wire_type: u8,
    },
    /// A known field with another wire type than the API declares.
    #[error("{field} has wire type {wire_type}, not length-delimited")]
    WrongType {
        /// `Message.field`.
        field: &'static str,
        /// The wire type found.
        wire_type: u8,
    },
    /// A string field that is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
}

/// A message of the API.
pub trait Message: Default + fmt::Debug {
    /// Appends the message's encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Merges the fields encoded in `bytes` into `self`.
    fn merge(&mut self, bytes: &[u8]) -> Result<(), DecodeError>;

    /// The message's encoding.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a message.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut message = Self::default();
        message.merge(bytes)?;
        Ok(message)
    }
}

/// `ListPodResourcesRequest`: no fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPodResourcesRequest;

/// `ListPodResourcesResponse { repeated PodResources pod_resources = 1; }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPodResourcesResponse {
    /// Every pod the kubelet runs.
    pub pod_resources: Vec<PodResources>,
}

/// `GetPodResourcesRequest { string pod_name = 1; string pod_namespace = 2; }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetPodResourcesRequest {
    /// The pod's name.
    pub pod_name: String,
    /// The pod's namespace.
    pub pod_namespace: String,
}

/// `GetPodResourcesResponse { PodResources pod_resources = 1; }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetPodResourcesResponse {
    /// The pod, when the field is present.
    pub pod_resources: Option<PodResources>,
}

/// `PodResources { string name = 1; string namespace = 2; repeated ContainerResources containers = 3; }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodResources {
    /// The pod's name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// Its containers, in the pod's order.
    pub containers: Vec<ContainerResources>,
}

/// `ContainerResources { string name = 1; repeated ContainerDevices devices = 2; ... }`; fields 3 and
/// up (CPU IDs, memory, dynamic resources) are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    /// The container's name.
    pub name: String,
    /// Its device-plugin devices, per resource.
    pub devices: Vec<ContainerDevices>,
}

/// `ContainerDevices { string resource_name = 1; repeated string device_ids = 2; TopologyInfo topology = 3; }`;
/// the topology is skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerDevices {
    /// The device plugin's resource name, e.g. `nokia.k8s.io/sriov_ens1f0`.
    pub resource_name: String,
    /// The devices' IDs (PCI addresses for SR-IOV VFs), in the order the kubelet reports them.
    pub device_ids: Vec<String>,
}

impl Message for ListPodResourcesRequest {
    fn encode(&self, _: &mut Vec<u8>) {}

    fn merge(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        for field in Fields(bytes) {
            field?;
        }
        Ok(())
    }
}

impl Message for ListPodResourcesResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        for pod in &self.pod_resources {
            put_message(out, 1, pod);
        }
    }

    fn merge(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        for field in Fields(bytes) {
            if let (1, value) = field? {
                self.pod_resources.push(PodResources::decode(value.bytes("ListPodResourcesResponse.pod_resources")?)?);
            }
        }
        Ok(())
    }
}

impl Message for GetPodResourcesRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        put_string(out, 1, &self.pod_name);
        put_string(out, 2, &self.pod_namespace);
    }

    fn merge(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        for field in Fields(bytes) {
            match field? {
                (1, v) => self.pod_name = v.string("GetPodResourcesRequest.pod_name")?,
                (2, v) => self.pod_namespace = v.string("GetPodResourcesRequest.pod_namespace")?,
                _ => {}
            }
        }
        Ok(())
    }
}

impl Message for GetPodResourcesResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        if let Some(pod) = &self.pod_resources {
            put_message(out, 1, pod);
        }
    }

    fn merge(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        for field in Fields(bytes) {
            if let (1, value) = field? {
                let bytes = value.bytes("GetPodResourcesResponse.pod_resources")?;
                self.pod_resources.get_or_insert_default().merge(bytes)?;
            }
        }
        Ok(())
    }
}

impl Message for PodResources {
    fn encode(&self, out: &mut Vec<u8>) {
        put_string(out, 1, &self.name);
        put_string(out, 2, &self.namespace);
        for container in &self.containers {
            put_message(out, 3, container);
        }
    }

    fn merge(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        for field in Fields(bytes) {
            match field? {
                (1, v) => self.name = v.string("PodResources.name")?,
                (2, v) => self.namespace = v.string("PodResources.namespace")?,
                (3, v) => self.containers.push(ContainerResources::decode(v.bytes("PodResources.containers")?)?),
                _ => {}
            }
        }
        Ok(())
    }
}

impl Message for ContainerResources {
    fn encode(&self, out: &mut Vec<u8>) {
        put_string(out, 1, &self.name);
        for devices in &self.devices {
            put_message(out, 2, devices);
        }
    }

    fn merge(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        for field in Fields(bytes) {
            match field? {
                (1, v) => self.name = v.string("ContainerResources.name")?,
                (2, v) => self.devices.push(ContainerDevices::decode(v.bytes("ContainerResources.devices")?)?),
                _ => {}
            }
        }
        Ok(())
    }
}

impl Message for ContainerDevices {
    fn encode(&self, out: &mut Vec<u8>) {
        put_string(out, 1, &self.resource_name);
        for id in &self.device_ids {
            put_bytes(out, 2, id.as_bytes());
        }
    }

    fn merge(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        for field in Fields(bytes) {
            match field? {
                (1, v) => self.resource_name = v.string("ContainerDevices.resource_name")?,
                (2, v) => self.device_ids.push(v.string("ContainerDevices.device_ids")?),
                _ => {}
            }
        }
        Ok(())
    }
}

const LEN: u8 = 2;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(field) << 3) | u64::from(LEN));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A string field; proto3 leaves an empty one out.
fn put_string(out: &mut Vec<u8>, field: u32, value: &str) {
    if !value.is_empty() {
        put_bytes(out, field, value.as_bytes());
    }
}

fn put_message(out: &mut Vec<u8>, field: u32, message: &impl Message) {
    put_bytes(out, field, &message.to_bytes());
}

/// One field's value as found on the wire.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    /// Wire types 0 (varint), 1 (64-bit) and 5 (32-bit): nothing DANM reads.
    Scalar(u8),
    /// Wire type 2.
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> {
    fn bytes(self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        match self {
            Self::Bytes(b) => Ok(b),
            Self::Scalar(wire_type) => Err(DecodeError::WrongType { field, wire_type }),
        }
    }

    fn string(self, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.bytes(field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8(field))
    }
}

/// The fields of an encoded message, in order: `(field number, value)`.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (i, byte) in self.0.iter().enumerate().take(10) {
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(if self.0.len() >= 10 { DecodeError::VarintOverflow } else { DecodeError::Truncated })
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(n).ok().filter(|n| *n <= self.0.len()).ok_or(DecodeError::Truncated)?;
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<(u32, Value<'a>), DecodeError> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).ok().filter(|n| (1..1 << 29).contains(n));
        let number = number.ok_or(DecodeError::BadFieldNumber(key >> 3))?;
        let wire_type = (key & 7) as u8;
        let value = match wire_type {
            0 => {
                self.varint()?;
                Value::Scalar(0)
            }
            1 => {
                self.take(8)?;
                Value::Scalar(1)
            }
            LEN => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Scalar(5)
            }
            _ => return Err(DecodeError::BadWireType { field: number, wire_type }),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            // One error ends the message.
            self.0 = &[];
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests;
