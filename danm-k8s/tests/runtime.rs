//! The controllers' runtime: the telemetry endpoints over real HTTP, and leader election on a Lease
//! against the fake API server.

use std::time::{Duration, Instant};

use danm_k8s::runtime::{LeaderElector, LeaseTimings, Telemetry, serve_telemetry};
use danm_k8s::testing::FakeApiServer;
use k8s_openapi::api::coordination::v1::Lease;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn telemetry_serves_metrics_health_and_readiness_until_shutdown() {
    let telemetry = Telemetry::new("test");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_telemetry(listener, telemetry.clone(), async {
        let _ = stopped.await;
    }));

    let metrics = telemetry.reconcile_metrics("svcwatcher");
    metrics.observe(Instant::now(), true);
    metrics.observe(Instant::now(), false);
    let (status, body) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"danm_reconcile_total{component="test",controller="svcwatcher"} 2"#), "{body}");
    assert!(body.contains(r#"danm_reconcile_errors_total{component="test",controller="svcwatcher"} 1"#), "{body}");
    assert!(body.contains("danm_reconcile_duration_seconds_bucket"), "{body}");
    assert!(body.contains(r#"danm_ready{component="test"} 0"#), "{body}");

    assert_eq!(get(address, "/healthz").await.0, 200);
    assert_eq!(get(address, "/readyz").await.0, 503, "not ready until told");
    telemetry.set_ready(true);
    assert_eq!(get(address, "/readyz").await.0, 200);
    telemetry.set_healthy(false);
    assert_eq!(get(address, "/healthz").await.0, 503);
    assert_eq!(get(address, "/nothing").await.0, 404);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("the server stops").unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(address).await.is_err(), "the listener is closed");
}

fn timings() -> LeaseTimings {
    LeaseTimings {
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    }
}

fn holder(server: &FakeApiServer) -> Option<String> {
    server.object::<Lease>("kube-system", "svcwatcher").and_then(|l| l.spec?.holder_identity)
}

#[tokio::test(start_paused = true)]
async fn one_leader_takeover_after_expiry_and_release_on_shutdown() {
    let server = FakeApiServer::new();
    let mut a = LeaderElector::new(server.client(), "kube-system", "svcwatcher", "a", timings());
    let mut b = LeaderElector::new(server.client(), "kube-system", "svcwatcher", "b", timings());
    let mut b_leads = b.leadership();

    assert!(a.step().await.unwrap(), "the first replica creates the lease");
    assert!(!b.step().await.unwrap(), "a held lease is not taken");
    assert_eq!(holder(&server).as_deref(), Some("a"));

    // a renews; b sees the lease change and keeps following.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(a.step().await.unwrap());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(!b.step().await.unwrap(), "renewed 10 s ago: not expired");

    // a stops renewing: after a whole lease duration unchanged, b takes over.
    tokio::time::advance(Duration::from_secs(16)).await;
    assert!(b.step().await.unwrap(), "expired: taken over");
    assert!(b_leads.is_leader());
    assert_eq!(holder(&server).as_deref(), Some("b"));
    let lease = server.object::<Lease>("kube-system", "svcwatcher").unwrap().spec.unwrap();
    assert_eq!(lease.lease_transitions, Some(1));
    assert!(!a.step().await.unwrap(), "the old leader sees the new holder and follows");
    assert!(!a.is_leader());

    // b shuts down: it releases the lease, and a takes it on its next round without waiting.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(b.run(async {
        let _ = stopped.await;
    }));
    tokio::task::yield_now().await;
    stop.send(()).unwrap();
    running.await.unwrap();
    assert_eq!(b_leads.changed().await, Some(false));
    assert_eq!(holder(&server), None, "released");
    assert!(a.step().await.unwrap(), "a released lease is taken at once");
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_steps_down_before_the_lease_expires() {
    let server = FakeApiServer::new();
    let mut a = LeaderElector::new(server.client(), "kube-system", "svcwatcher", "a", timings());
    assert!(a.step().await.unwrap());
    server.inject(danm_k8s::testing::Fault::status(500).times(100));
    tokio::time::advance(Duration::from_secs(4)).await;
    assert!(a.step().await.is_err());
    assert!(a.is_leader(), "within the renew deadline a failed renewal keeps leadership");
    tokio::time::advance(Duration::from_secs(7)).await;
    assert!(a.step().await.is_err());
    assert!(!a.is_leader(), "past the renew deadline (10 s < 15 s lease) it steps down");
}
