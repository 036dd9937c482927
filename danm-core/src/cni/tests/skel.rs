//! The plugin harness: environment rules per verb, stdin limits, version handling, output rendering,
//! and a property test that no input makes it panic.

use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::executor::block_on;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::cni::skel::{
    CNI_ARGS, CNI_COMMAND, CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS, CNI_PATH, Call, Environment, MAX_CONFIG_BYTES,
    Output, Plugin, Request, container_id_problem, dispatch, ifname_problem,
};
use crate::cni::{CniError, CniResult, CniVersion, ErrorCode, IpConfig};
use crate::delegate::CniCommand;

/// Records the requests it gets; answers ADD with one address, or fails every verb when told to.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Request>>,
    fail: Option<CniError>,
}

impl Recorder {
    fn failing(e: CniError) -> Self {
        Self { fail: Some(e), ..Self::default() }
    }

    fn record(&self, req: &Request) -> Result<(), CniError> {
        self.seen.lock().unwrap().push(req.clone());
        self.fail.clone().map_or(Ok(()), Err)
    }

    fn calls(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Plugin for Recorder {
    async fn add(&self, req: &Request) -> Result<CniResult, CniError> {
        self.record(req)?;
        let ip = IpConfig { address: "10.1.2.3/24".parse().unwrap(), gateway: None, interface: None };
        Ok(CniResult { ips: vec![ip], ..CniResult::default() })
    }
    async fn del(&self, req: &Request) -> Result<(), CniError> {
        self.record(req)
    }
    async fn check(&self, req: &Request) -> Result<(), CniError> {
        self.record(req)
    }
    async fn status(&self, req: &Request) -> Result<(), CniError> {
        self.record(req)
    }
    async fn gc(&self, req: &Request) -> Result<(), CniError> {
        self.record(req)
    }
}

fn conf(version: &str) -> Vec<u8> {
    json!({"cniVersion": version, "name": "net", "type": "x"}).to_string().into_bytes()
}

fn full(command: &str, version: &str) -> Environment {
    Environment::new()
        .with_var(CNI_COMMAND, command)
        .with_var(CNI_CONTAINERID, "ctr-1")
        .with_var(CNI_NETNS, "/run/netns/pod")
        .with_var(CNI_IFNAME, "eth0")
        .with_var(CNI_ARGS, "K8S_POD_NAME=web;IgnoreUnknown=1")
        .with_var(CNI_PATH, "/opt/cni/bin::/usr/lib/cni")
        .with_stdin(conf(version))
}

fn without(mut env: Environment, vars: &[&str]) -> Environment {
    for v in vars {
        env.vars.remove(*v);
    }
    env
}

fn run(plugin: &Recorder, env: &Environment) -> Output {
    block_on(dispatch(plugin, env))
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The error printed, with the version it was printed in.
fn error_of(out: &Output) -> (CniError, String) {
    assert_eq!(out.exit_code, 1, "{}", String::from_utf8_lossy(&out.stdout));
    let v = json_out(out);
    (CniError::from_slice(&out.stdout).unwrap(), v["cniVersion"].as_str().unwrap().to_owned())
}

#[test]
fn version_is_answered_by_the_harness() {
    let p = Recorder::default();
    let supported = json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]);
    for (stdin, echoed) in [
        (&b""[..], "1.1.0"),
        (br#"{"cniVersion":"0.4.0"}"#, "0.4.0"),
        (br#"{"cniVersion":"0.2.0"}"#, "1.1.0"),
        (b"\xff garbage", "1.1.0"),
    ] {
        let out = run(&p, &Environment::new().with_var(CNI_COMMAND, "VERSION").with_stdin(stdin));
        assert_eq!(out.exit_code, 0);
        assert_eq!(json_out(&out), json!({"cniVersion": echoed, "supportedVersions": supported}));
    }
    assert!(p.calls().is_empty());
}

#[test]
fn add_prints_the_result_in_the_request_version() {
    let p = Recorder::default();
    let out = run(&p, &full("ADD", "0.3.1"));
    assert_eq!(out.exit_code, 0);
    assert_eq!(json_out(&out), json!({"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "10.1.2.3/24"}]}));
    let out = run(&p, &full("ADD", "1.0.0"));
    assert_eq!(json_out(&out), json!({"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/24"}]}));
    let req = &p.calls()[0];
    assert_eq!(req.command, CniCommand::Add);
    assert_eq!(req.container_id, "ctr-1");
    assert_eq!(req.netns, Some(PathBuf::from("/run/netns/pod")));
    assert_eq!(req.ifname, "eth0");
    assert_eq!(req.args.pod_name(), Some("web"));
    assert_eq!(req.path, [PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]);
    assert_eq!(req.config, conf("0.3.1"));
    assert_eq!((req.conf.name.as_str(), req.version), ("net", CniVersion::V0_3_1));
}

#[test]
fn other_verbs_print_nothing_on_success() {
    for verb in ["DEL", "CHECK", "STATUS", "GC"] {
        let p = Recorder::default();
        let out = run(&p, &full(verb, "1.1.0"));
        assert_eq!(out, Output { stdout: Vec::new(), exit_code: 0 }, "{verb}");
        assert_eq!(p.calls()[0].command.as_str(), verb);
    }
}

#[test]
fn plugin_errors_print_in_the_request_version() {
    let p = Recorder::failing(CniError::new(ErrorCode::TRY_AGAIN_LATER, "busy").with_details("locked"));
    for verb in ["ADD", "DEL", "CHECK"] {
        let (e, v) = error_of(&run(&p, &full(verb, "0.4.0")));
        assert_eq!(
            (e.code, e.msg.as_str(), e.details.as_str(), v.as_str()),
            (ErrorCode::TRY_AGAIN_LATER, "busy", "locked", "0.4.0")
        );
    }
}

#[test]
fn required_variables_per_verb() {
    let identity = [CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME];
    // ADD and CHECK need all of them; DEL all but the netns; GC and STATUS none.
    for (verb, needed) in [
        ("ADD", &identity[..]),
        ("CHECK", &identity[..]),
        ("DEL", &[CNI_CONTAINERID, CNI_IFNAME][..]),
        ("STATUS", &[][..]),
        ("GC", &[][..]),
    ] {
        let p = Recorder::default();
        let out = run(&p, &without(full(verb, "1.1.0"), &identity));
        if needed.is_empty() {
            assert_eq!(out.exit_code, 0, "{verb}");
            let req = &p.calls()[0];
            assert!(req.container_id.is_empty() && req.ifname.is_empty() && req.netns.is_none() && req.args.is_empty());
            continue;
        }
        let (e, _) = error_of(&out);
        assert_eq!(e.code, ErrorCode::INVALID_ENVIRONMENT_VARIABLES, "{verb}");
        for var in identity {
            assert_eq!(e.msg.contains(var), needed.contains(&var), "{verb}: {var} in {:?}", e.msg);
        }
        assert!(p.calls().is_empty());
    }
    // DEL without a netns goes through with `netns: None`.
    let p = Recorder::default();
    assert_eq!(run(&p, &without(full("DEL", "1.0.0"), &[CNI_NETNS])).exit_code, 0);
    assert_eq!(p.calls()[0].netns, None);
}

#[test]
fn empty_variables_count_as_missing() {
    let env = full("ADD", "1.0.0").with_var(CNI_NETNS, "").with_var(CNI_IFNAME, "");
    let (e, _) = error_of(&run(&Recorder::default(), &env));
    assert!(e.msg.contains(CNI_NETNS) && e.msg.contains(CNI_IFNAME) && !e.msg.contains(CNI_CONTAINERID));
    assert!(e.details.contains("CNI_NETNS is missing"), "{}", e.details);
}

#[test]
fn missing_and_unknown_commands() {
    let (e, _) = error_of(&run(&Recorder::default(), &without(full("ADD", "1.0.0"), &[CNI_COMMAND])));
    assert_eq!(e.code, ErrorCode::INVALID_ENVIRONMENT_VARIABLES);
    assert!(e.msg.contains(CNI_COMMAND));
    for bad in ["add", "FROB", "ADD "] {
        let (e, v) = error_of(&run(&Recorder::default(), &full(bad, "0.4.0")));
        assert_eq!(e.code, ErrorCode::INVALID_ENVIRONMENT_VARIABLES);
        assert!(e.msg.contains(CNI_COMMAND) && e.details.contains(bad), "{e}");
        assert_eq!(v, "0.4.0");
    }
}

#[test]
fn container_id_and_ifname_syntax() {
    for ok in ["a", "0abc", "Ab_c.d-e", "deadbeef0123"] {
        assert_eq!(container_id_problem(ok), None, "{ok}");
    }
    for bad in ["", "-a", "_a", ".a", "a b", "a/b", "a:b", "é"] {
        assert!(container_id_problem(bad).is_some(), "{bad:?}");
    }
    for ok in ["eth0", "a", "net1.100", "x-y_z", "123456789012345", "é1234567890123"] {
        assert_eq!(ifname_problem(ok), None, "{ok}");
    }
    for bad in ["", ".", "..", "1234567890123456", "éé1234567890123", "a/b", "a:b", "a b", "a\tb", "a\u{a0}b"] {
        assert!(ifname_problem(bad).is_some(), "{bad:?}");
    }
    let env = full("ADD", "1.0.0").with_var(CNI_CONTAINERID, "-x").with_var(CNI_IFNAME, "a/b");
    let (e, _) = error_of(&run(&Recorder::default(), &env));
    assert_eq!(e.code, ErrorCode::INVALID_ENVIRONMENT_VARIABLES);
    assert!(e.msg.contains(CNI_CONTAINERID) && e.msg.contains(CNI_IFNAME) && !e.msg.contains(CNI_NETNS));
    assert!(e.details.contains("`-x`") && e.details.contains("`a/b`"), "{}", e.details);
    // Long values are quoted cut short.
    let env = full("ADD", "1.0.0").with_var(CNI_IFNAME, &"x".repeat(10_000));
    assert!(error_of(&run(&Recorder::default(), &env)).0.details.len() < 200);
}

#[test]
fn invalid_cni_args_are_named() {
    let (e, _) = error_of(&run(&Recorder::default(), &full("DEL", "1.0.0").with_var(CNI_ARGS, "A=1;oops")));
    assert_eq!(e.code, ErrorCode::INVALID_ENVIRONMENT_VARIABLES);
    assert!(e.msg.contains(CNI_ARGS) && e.details.contains("oops"), "{e}");
    // GC and STATUS do not read the per-attachment variables at all.
    let env = full("GC", "1.1.0").with_var(CNI_ARGS, "oops").with_var(CNI_IFNAME, "a/b");
    assert_eq!(run(&Recorder::default(), &env).exit_code, 0);
}

#[test]
fn stdin_limit() {
    let mut big = conf("1.0.0");
    big.resize(MAX_CONFIG_BYTES, b' ');
    assert_eq!(run(&Recorder::default(), &full("ADD", "1.0.0").with_stdin(big.clone())).exit_code, 0);
    big.push(b' ');
    let (e, v) = error_of(&run(&Recorder::default(), &full("ADD", "1.0.0").with_stdin(big)));
    assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
    assert!(e.msg.contains(&(MAX_CONFIG_BYTES + 1).to_string()), "{e}");
    assert_eq!(v, CniVersion::LATEST.as_str());
}

#[test]
fn config_decoding_and_versions() {
    // Errors print in the input's version when it can be read and is supported, else in the latest.
    let cases: [(&[u8], ErrorCode, &str); 5] = [
        (b"", ErrorCode::DECODING_FAILURE, "1.1.0"),
        (b"{not json", ErrorCode::DECODING_FAILURE, "1.1.0"),
        (br#"{"cniVersion":"1.0.0","name":"n","type":7}"#, ErrorCode::DECODING_FAILURE, "1.0.0"),
        (br#"{"cniVersion":"0.4.0","name":"n"}"#, ErrorCode::INVALID_NETWORK_CONFIG, "0.4.0"),
        (br#"{"cniVersion":"0.2.0","name":"n","type":"x"}"#, ErrorCode::INCOMPATIBLE_VERSION, "1.1.0"),
    ];
    for (stdin, code, version) in cases {
        let (e, v) = error_of(&run(&Recorder::default(), &full("ADD", "1.0.0").with_stdin(stdin)));
        assert_eq!((e.code, v.as_str()), (code, version), "{}", String::from_utf8_lossy(stdin));
    }
    let e = Call::from_environment(&full("ADD", "")).unwrap_err();
    assert_eq!(e.code, ErrorCode::INCOMPATIBLE_VERSION);
}

#[test]
fn verbs_need_their_minimum_version() {
    for (verb, too_old, enough) in [("CHECK", "0.3.1", "0.4.0"), ("STATUS", "1.0.0", "1.1.0"), ("GC", "1.0.0", "1.1.0")]
    {
        let (e, v) = error_of(&run(&Recorder::default(), &full(verb, too_old)));
        assert_eq!((e.code, v.as_str()), (ErrorCode::INCOMPATIBLE_VERSION, too_old), "{verb}");
        assert!(e.msg.contains(verb), "{e}");
        assert_eq!(run(&Recorder::default(), &full(verb, enough)).exit_code, 0, "{verb}");
    }
}

#[test]
fn gc_attachment_list_must_decode() {
    let gc = |list: Value| {
        let stdin = json!({"cniVersion": "1.1.0", "name": "n", "type": "x", "cni.dev/valid-attachments": list});
        full("GC", "1.1.0").with_stdin(stdin.to_string())
    };
    let (e, _) = error_of(&run(&Recorder::default(), &gc(json!([{"ifname": "eth0"}]))));
    assert_eq!(e.code, ErrorCode::DECODING_FAILURE);
    let p = Recorder::default();
    assert_eq!(run(&p, &gc(json!([{"containerID": "c", "ifname": "eth0"}]))).exit_code, 0);
    assert_eq!(p.calls()[0].conf.valid_attachments().unwrap().map(|a| a.len()), Some(1));
}

fn arb_env() -> impl Strategy<Value = Environment> {
    let key = prop::sample::select(vec![
        CNI_COMMAND,
        CNI_CONTAINERID,
        CNI_NETNS,
        CNI_IFNAME,
        CNI_ARGS,
        CNI_PATH,
        "CNI_OTHER",
        "PATH",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "ADD",
            "DEL",
            "CHECK",
            "STATUS",
            "GC",
            "VERSION",
            "eth0",
            "c1",
            "/run/netns/x",
            "A=1"
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    let version = prop::sample::select(vec!["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", "0.2.0", ""]);
    let stdin = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (version, any::<bool>(), any::<bool>()).prop_map(|(v, attachments, junk)| {
            let mut c = json!({"cniVersion": v, "name": "n", "type": "t"});
            if attachments {
                c["cni.dev/valid-attachments"] = json!([{"containerID": "c", "ifname": 3}]);
            }
            if junk {
                c["prevResult"] = json!({"ips": [{"address": "nope"}]});
            }
            c.to_string().into_bytes()
        }),
    ];
    (prop::collection::btree_map(key.prop_map(str::to_owned), value, 0..8), stdin)
        .prop_map(|(vars, stdin)| Environment { vars, stdin })
}

proptest! {
    #[test]
    fn dispatch_never_panics_and_always_speaks_cni(env in arb_env()) {
        let p = Recorder::default();
        let out = run(&p, &env);
        match out.exit_code {
            0 if out.stdout.is_empty() => {}
            0 => prop_assert!(serde_json::from_slice::<Value>(&out.stdout).is_ok()),
            1 => {
                let e = CniError::from_slice(&out.stdout);
                prop_assert!(e.is_ok(), "{}", String::from_utf8_lossy(&out.stdout));
            }
            other => prop_assert!(false, "exit code {other}"),
        }
    }
}
