//! The fakeipam binary end to end: environment and stdin in, CNI JSON and exit code out (no root).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Runs fakeipam with `vars` and `stdin`; returns its exit code and stdout.
fn fakeipam(vars: &[(&str, &str)], stdin: &[u8]) -> (i32, Vec<u8>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fakeipam"))
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fakeipam");
    let mut pipe = child.stdin.take().expect("stdin");
    // fakeipam may exit before reading everything (e.g. VERSION); a broken pipe is fine then.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    let out = child.wait_with_output().expect("fakeipam runs");
    (out.status.code().expect("exit code"), out.stdout)
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out).expect("JSON on stdout")
}

const ADD: &[(&str, &str)] =
    &[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", "/run/netns/p"), ("CNI_IFNAME", "eth0")];

fn conf(version: &str, ips: Value) -> Vec<u8> {
    json!({"cniVersion": version, "name": "n", "type": "macvlan", "ipam": {"type": "fakeipam", "ips": ips}})
        .to_string()
        .into_bytes()
}

#[test]
fn add_prints_the_configured_addresses() {
    let ips = json!([{"ipcidr": "10.0.0.5/24", "version": 4}, {"ipcidr": "fd00::5/64", "version": 6}]);
    let (rc, out) = fakeipam(ADD, &conf("0.3.1", ips.clone()));
    assert_eq!(rc, 0);
    assert_eq!(
        json_of(&out),
        json!({"cniVersion": "0.3.1", "ips": [
            {"version": "4", "address": "10.0.0.5/24"}, {"version": "6", "address": "fd00::5/64"}]})
    );
    let (rc, out) = fakeipam(ADD, &conf("1.1.0", ips));
    assert_eq!(rc, 0);
    assert_eq!(
        json_of(&out),
        json!({"cniVersion": "1.1.0", "ips": [{"address": "10.0.0.5/24"}, {"address": "fd00::5/64"}]})
    );
    let (rc, out) = fakeipam(ADD, &conf("1.0.0", json!([])));
    assert_eq!((rc, json_of(&out)), (0, json!({"cniVersion": "1.0.0"})));
}

#[test]
fn other_verbs_succeed_silently() {
    let del = [("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "c1"), ("CNI_IFNAME", "eth0")];
    assert_eq!(fakeipam(&del, &conf("1.0.0", json!([]))), (0, Vec::new()));
    assert_eq!(fakeipam(&[("CNI_COMMAND", "STATUS")], &conf("1.1.0", json!([]))), (0, Vec::new()));
    let (rc, out) = fakeipam(&[("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"0.4.0"}"#);
    assert_eq!(rc, 0);
    assert_eq!(json_of(&out)["cniVersion"], "0.4.0");
}

#[test]
fn errors_are_cni_json_with_exit_1() {
    let (rc, out) = fakeipam(&[("CNI_COMMAND", "ADD")], &conf("1.0.0", json!([])));
    let e = json_of(&out);
    assert_eq!((rc, e["code"].as_u64(), e["cniVersion"].as_str()), (1, Some(4), Some("1.0.0")));
    assert!(e["msg"].as_str().is_some_and(|m| m.contains("CNI_NETNS")), "{e}");
    let (rc, out) = fakeipam(ADD, &vec![b' '; (1 << 20) + 10]);
    assert_eq!((rc, json_of(&out)["code"].as_u64()), (1, Some(7)));
    let (rc, out) = fakeipam(ADD, b"{");
    assert_eq!((rc, json_of(&out)["code"].as_u64()), (1, Some(6)));
}
