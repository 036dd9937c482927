//! The wire format, checked against bytes written out by hand from the API's `.proto`.

use super::*;

/// `GetPodResourcesResponse` for pod `vnf/p` whose container `c1` has two VFs, with the fields DANM does not
/// read (a device's topology, CPU IDs, memory) and fields of every other wire type that no version of the
/// API has (as a newer kubelet might send).
fn kubelet_answer() -> Vec<u8> {
    let mut devices = vec![0x0a, 0x0e]; // resource_name = 1, 14 bytes
    devices.extend(b"example.com/vf");
    devices.extend([0x12, 0x0c]); // device_ids = 2, 12 bytes
    devices.extend(b"0000:01:00.2");
    devices.extend([0x12, 0x0c]);
    devices.extend(b"0000:01:00.3");
    // topology = 3: TopologyInfo { nodes = 1: NUMANode { ID = 1 (varint): 1 } }
    devices.extend([0x1a, 0x04, 0x0a, 0x02, 0x08, 0x01]);
    assert_eq!(devices.len(), 0x32);

    let mut container = vec![0x0a, 0x02, b'c', b'1']; // name = 1
    container.extend([0x12, 0x32]); // devices = 2, 50 bytes
    container.extend(&devices);
    container.extend([0x1a, 0x02, 0x02, 0x03]); // cpu_ids = 3, packed [2, 3]
    // memory = 4: ContainerMemory { memory_type = 1: "memory", size = 2 (varint): 1024 }
    container.extend([0x22, 0x0b, 0x0a, 0x06]);
    container.extend(b"memory");
    container.extend([0x10, 0x80, 0x08]);
    assert_eq!(container.len(), 0x49);

    let mut pod = vec![0x0a, 0x01, b'p', 0x12, 0x03, b'v', b'n', b'f']; // name = 1, namespace = 2
    pod.extend([0x1a, 0x49]); // containers = 3, 73 bytes
    pod.extend(&container);
    pod.extend([0x49, 1, 2, 3, 4, 5, 6, 7, 8]); // field 9, 64-bit
    pod.extend([0x55, 1, 2, 3, 4]); // field 10, 32-bit
    pod.extend([0x78, 0x96, 0x01]); // field 15, varint 150
    pod.extend([0xc0, 0x3e, 0x01]); // field 1000, varint 1
    assert_eq!(pod.len(), 0x67);

    let mut answer = vec![0x0a, 0x67]; // pod_resources = 1, 103 bytes
    answer.extend(&pod);
    answer
}

fn expected_pod() -> PodResources {
    PodResources {
        name: "p".into(),
        namespace: "vnf".into(),
        containers: vec![ContainerResources {
            name: "c1".into(),
            devices: vec![ContainerDevices {
                resource_name: "example.com/vf".into(),
                device_ids: vec!["0000:01:00.2".into(), "0000:01:00.3".into()],
            }],
        }],
    }
}

#[test]
fn a_kubelet_answer_decodes_and_unknown_fields_are_skipped() {
    let decoded = GetPodResourcesResponse::decode(&kubelet_answer()).unwrap();
    assert_eq!(decoded, GetPodResourcesResponse { pod_resources: Some(expected_pod()) });
    // The same pod in a List answer: pod_resources = 1, repeated.
    let mut list = kubelet_answer();
    list.extend(kubelet_answer());
    let decoded = ListPodResourcesResponse::decode(&list).unwrap();
    assert_eq!(decoded.pod_resources, [expected_pod(), expected_pod()]);
}

#[test]
fn requests_encode_as_the_proto_says() {
    let get = GetPodResourcesRequest { pod_name: "p".into(), pod_namespace: "vnf".into() };
    assert_eq!(get.to_bytes(), [0x0a, 0x01, b'p', 0x12, 0x03, b'v', b'n', b'f']);
    assert_eq!(GetPodResourcesRequest::decode(&get.to_bytes()).unwrap(), get);
    assert!(ListPodResourcesRequest.to_bytes().is_empty());
    // Empty strings are left out, as proto3 does.
    assert_eq!(GetPodResourcesRequest { pod_name: "p".into(), ..Default::default() }.to_bytes(), [0x0a, 0x01, b'p']);
}

#[test]
fn responses_round_trip() {
    let mut other = expected_pod();
    other.name = "q".into();
    other.containers.push(ContainerResources { name: "sidecar".into(), devices: vec![] });
    other.containers[0].devices.push(ContainerDevices { resource_name: "x/y".into(), device_ids: vec![String::new()] });
    let list = ListPodResourcesResponse { pod_resources: vec![expected_pod(), other] };
    assert_eq!(ListPodResourcesResponse::decode(&list.to_bytes()).unwrap(), list);
    let get = GetPodResourcesResponse { pod_resources: Some(expected_pod()) };
    assert_eq!(GetPodResourcesResponse::decode(&get.to_bytes()).unwrap(), get);
    assert_eq!(GetPodResourcesResponse::decode(&[]).unwrap(), GetPodResourcesResponse::default());
    // Our encoding of the devices is the hand-written one without the topology.
    let devices = &expected_pod().containers[0].devices[0];
    assert_eq!(devices.to_bytes(), kubelet_answer()[18..18 + 44]);
}

#[test]
fn an_embedded_message_given_twice_is_merged() {
    let mut bytes = vec![0x0a, 0x03, 0x0a, 0x01, b'p']; // pod_resources { name: "p" }
    bytes.extend([0x0a, 0x05, 0x12, 0x03, b'v', b'n', b'f']); // pod_resources { namespace: "vnf" }
    let pod = GetPodResourcesResponse::decode(&bytes).unwrap().pod_resources.unwrap();
    assert_eq!((pod.name.as_str(), pod.namespace.as_str()), ("p", "vnf"));
}

#[test]
fn malformed_messages_are_errors_never_panics() {
    let answer = kubelet_answer();
    for end in 1..answer.len() {
        assert_eq!(GetPodResourcesResponse::decode(&answer[..end]), Err(DecodeError::Truncated), "prefix of {end}");
    }
    let cases: [(&[u8], DecodeError); 6] = [
        (&[0x08, 0x01], DecodeError::WrongType { field: "PodResources.name", wire_type: 0 }),
        (&[0x0b], DecodeError::BadWireType { field: 1, wire_type: 3 }),
        (&[0x0e], DecodeError::BadWireType { field: 1, wire_type: 6 }),
        (&[0x02, 0x00], DecodeError::BadFieldNumber(0)),
        (&[0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], DecodeError::VarintOverflow),
        (&[0x0a, 0x01, 0xff], DecodeError::NotUtf8("PodResources.name")),
    ];
    for (bytes, error) in cases {
        assert_eq!(PodResources::decode(bytes), Err(error), "{bytes:02x?}");
    }
    // A length beyond the end, and a length beyond usize.
    assert_eq!(PodResources::decode(&[0x1a, 0x05, 0x0a]), Err(DecodeError::Truncated));
    let huge = [0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(PodResources::decode(&huge), Err(DecodeError::Truncated));
    // Random bytes never panic.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..2_000 {
        let len = (seed % 40) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = ListPodResourcesResponse::decode(&bytes);
        let _ = GetPodResourcesResponse::decode(&bytes);
    }
}

#[test]
fn varints_of_every_size() {
    for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        let mut fields = Fields(&out);
        assert_eq!(fields.varint(), Ok(value));
        assert!(fields.0.is_empty());
    }
}
