//! The kubelet PodResources client against a fake kubelet on a unix socket: `Get`, the fall-back to
//! `List` when `Get` is not served, a kubelet that never answers, and one that is not there.

use std::time::{Duration, Instant};

use danm_core::device::{DeviceError, DeviceSource, PodRef};
use danm_k8s::podresources::PodResourcesClient;
use danm_k8s::podresources::proto::{ContainerDevices, ContainerResources, PodResources};
use danm_k8s::testing::{FakeKubelet, KubeletBehaviour};

const POOL: &str = "nokia.k8s.io/sriov_ens1f0";

fn devices(resource: &str, ids: &[&str]) -> ContainerDevices {
    ContainerDevices { resource_name: resource.into(), device_ids: ids.iter().map(|s| (*s).to_owned()).collect() }
}

/// A kubelet running pod `vnf/p` (two containers with VFs of the pool, the second also a GPU) and
/// `vnf/other`.
fn kubelet() -> FakeKubelet {
    let kubelet = FakeKubelet::new();
    kubelet.add_pod(PodResources {
        name: "other".into(),
        namespace: "vnf".into(),
        containers: vec![ContainerResources { name: "c".into(), devices: vec![devices(POOL, &["0000:01:00.9"])] }],
    });
    kubelet.add_pod(PodResources {
        name: "p".into(),
        namespace: "vnf".into(),
        containers: vec![
            ContainerResources { name: "main".into(), devices: vec![devices(POOL, &["0000:01:00.4", "0000:01:00.2"])] },
            ContainerResources { name: "side".into(), devices: vec![] },
            ContainerResources {
                name: "helper".into(),
                devices: vec![devices("example.com/gpu", &["gpu-1"]), devices(POOL, &["0000:01:00.3"])],
            },
        ],
    });
    kubelet
}

const P: PodRef<'static> = PodRef { namespace: "vnf", name: "p" };

#[tokio::test]
async fn get_gives_the_pods_devices_across_its_containers() {
    let dir = tempfile::TempDir::new().unwrap();
    let socket = dir.path().join("kubelet.sock");
    let kubelet = kubelet();
    kubelet.serve(&socket).unwrap();
    let client = PodResourcesClient::new(&socket);

    let found = client.pod_devices(P).await.unwrap();
    assert_eq!(found.of(POOL), ["0000:01:00.4", "0000:01:00.2", "0000:01:00.3"], "container order, then kubelet order");
    assert_eq!(found.of("example.com/gpu"), ["gpu-1"]);
    assert_eq!(kubelet.calls(), ["Get"]);

    // A pod the kubelet does not run: its Get fails, and the error says so.
    let err = client.pod_devices(PodRef { namespace: "vnf", name: "gone" }).await.unwrap_err();
    match &err {
        DeviceError::Refused { endpoint, reason } => {
            assert!(endpoint.contains(&socket.display().to_string()), "{err}");
            assert!(reason.contains("Get: UNKNOWN (2): pod gone in namespace vnf not found"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.list().await.unwrap().len(), 2);
}

#[tokio::test]
async fn list_is_used_when_get_is_unimplemented() {
    let dir = tempfile::TempDir::new().unwrap();
    let socket = dir.path().join("kubelet.sock");
    let kubelet = kubelet();
    kubelet.set_behaviour(KubeletBehaviour::WithoutGet);
    kubelet.serve(&socket).unwrap();
    let client = PodResourcesClient::new(&socket);

    let found = client.pod_devices(P).await.unwrap();
    assert_eq!(found.of(POOL), ["0000:01:00.4", "0000:01:00.2", "0000:01:00.3"]);
    assert_eq!(kubelet.calls(), ["Get", "List"]);
    // A pod List does not show has no devices.
    let none = client.pod_devices(PodRef { namespace: "other-ns", name: "p" }).await.unwrap();
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn list_is_used_when_get_is_disabled_by_the_feature_gate() {
    let dir = tempfile::TempDir::new().unwrap();
    let socket = dir.path().join("kubelet.sock");
    let kubelet = kubelet();
    kubelet.set_behaviour(KubeletBehaviour::GetDisabled);
    kubelet.serve(&socket).unwrap();
    let client = PodResourcesClient::new(&socket);

    let found = client.pod_devices(P).await.unwrap();
    assert_eq!(found.of(POOL), ["0000:01:00.4", "0000:01:00.2", "0000:01:00.3"]);
    assert_eq!(kubelet.calls(), ["Get", "List"]);
}

/// The CNI error code of an ADD that failed on `err`.
fn cni_code(err: DeviceError) -> danm_core::cni::ErrorCode {
    let interface = "eth1".into();
    danm_core::meta::MetaError::Devices {
        interface,
        network: "DanmNet/vnf/fast".into(),
        pool: POOL.into(),
        source: Box::new(err),
    }
    .code()
}

#[tokio::test]
async fn a_rate_limited_kubelet_is_busy_and_the_cni_answers_try_again_later() {
    let dir = tempfile::TempDir::new().unwrap();
    let socket = dir.path().join("kubelet.sock");
    let kubelet = kubelet();
    kubelet.set_behaviour(KubeletBehaviour::RateLimited);
    kubelet.serve(&socket).unwrap();
    let err = PodResourcesClient::new(&socket).pod_devices(P).await.unwrap_err();
    assert!(matches!(&err, DeviceError::Busy { reason, .. } if reason.contains("RESOURCE_EXHAUSTED")), "{err:?}");
    assert_eq!(cni_code(err), danm_core::cni::ErrorCode::TRY_AGAIN_LATER);
}

#[tokio::test]
async fn a_kubelet_that_never_answers_is_a_timeout() {
    let dir = tempfile::TempDir::new().unwrap();
    let socket = dir.path().join("kubelet.sock");
    let kubelet = kubelet();
    kubelet.set_behaviour(KubeletBehaviour::Silent);
    kubelet.serve(&socket).unwrap();
    let client = PodResourcesClient::new(&socket).with_timeout(Duration::from_millis(300));

    let started = Instant::now();
    let err = client.pod_devices(P).await.unwrap_err();
    assert!(matches!(err, DeviceError::Timeout { seconds, .. } if seconds == 0.3), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(kubelet.calls(), ["Get"], "the request reached the kubelet");
    assert!(err.to_string().ends_with("kubelet.sock did not answer within 0.3 s"), "{err}");
    // An overloaded kubelet is worth asking again: the CNI says so.
    assert_eq!(cni_code(err), danm_core::cni::ErrorCode::TRY_AGAIN_LATER);
}

#[tokio::test]
async fn a_missing_socket_is_unreachable_and_named() {
    let dir = tempfile::TempDir::new().unwrap();
    let socket = dir.path().join("no-kubelet.sock");
    let client = PodResourcesClient::new(&socket);
    let err = client.pod_devices(P).await.unwrap_err();
    let DeviceError::Unreachable { endpoint, reason } = &err else { panic!("{err:?}") };
    assert_eq!(endpoint, &format!("the kubelet's PodResources API at {}", socket.display()));
    assert!(reason.starts_with("connecting: No such file or directory"), "{err}");

    // Something that is not a gRPC server on the socket: an error, not a hang.
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let junk = std::thread::spawn(move || {
        use std::io::Write;
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let err = client.pod_devices(P).await.unwrap_err();
    assert!(matches!(err, DeviceError::Unreachable { .. }), "{err:?}");
    junk.join().unwrap();
}

#[tokio::test]
async fn a_list_larger_than_the_http2_windows_is_read_whole() {
    let dir = tempfile::TempDir::new().unwrap();
    let socket = dir.path().join("kubelet.sock");
    let kubelet = FakeKubelet::new();
    // About 8 MB: more than HTTP/2's default windows, so the answer arrives only as it is read.
    let ids: Vec<String> = (0..64).map(|i| format!("0000:{i:02x}:00.0-{}", "x".repeat(100))).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for i in 0..1_000 {
        kubelet.add_pod(PodResources {
            name: format!("p{i}"),
            namespace: "vnf".into(),
            containers: vec![ContainerResources { name: "c".into(), devices: vec![devices(POOL, &ids)] }],
        });
    }
    kubelet.set_behaviour(KubeletBehaviour::WithoutGet);
    kubelet.serve(&socket).unwrap();
    let client = PodResourcesClient::new(&socket).with_timeout(Duration::from_secs(20));
    let found = client.pod_devices(PodRef { namespace: "vnf", name: "p999" }).await.unwrap();
    assert_eq!(found.of(POOL).len(), 64);
}
