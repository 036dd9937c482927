//! `danmctl demo`, the main job: every check holds, with real interfaces as root and in a dry run, and
//! nothing is left behind.

mod common;

use std::process::Command;

fn demo(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_danmctl")).arg("demo").args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn the_demo_holds_in_a_dry_run() {
    let (ok, text) = demo(&["--dry-run"]);
    assert!(ok, "{text}");
    assert!(text.contains("dry run") && text.contains("checks held"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn the_demo_holds_with_real_interfaces() {
    if !common::require(true) {
        return;
    }
    let (ok, text) = demo(&[]);
    assert!(ok, "{text}");
    assert!(text.contains("real interfaces"), "{text}");
    assert!(text.contains("vnf-external-svc publishes exactly 10.100.0.1, fd00:100::1"), "{text}");
    assert!(text.contains("no Service publishes a management address"), "{text}");
    let left = common::ip(&["netns", "list"]);
    assert!(!String::from_utf8_lossy(&left.stdout).contains("danm-demo-"), "namespaces left behind");
}
