//! ProcessExecutor against small shell-script plugins (no root needed).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use danm_core::delegate::{CniCommand, DelegateError, DelegateExecutor, Invocation};
use tempfile::TempDir;

use super::{MAX_CONFIG_FILE_BYTES, MAX_STDOUT_BYTES, ProcessExecutor};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn inv(plugin: &str) -> Invocation {
    Invocation {
        plugin: plugin.into(),
        command: CniCommand::Add,
        container_id: "ctr-1".into(),
        netns: Some("/run/netns/pod".into()),
        ifname: "net1".into(),
        args: "K8S_POD_NAME=web".into(),
        stdin: br#"{"cniVersion":"1.0.0"}"#.to_vec(),
    }
}

fn setup() -> (TempDir, ProcessExecutor) {
    let dir = TempDir::new().unwrap();
    let exec = ProcessExecutor::new([dir.path().join("empty"), dir.path().to_path_buf()], dir.path().join("conf"));
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    (dir, exec)
}

#[tokio::test]
async fn passes_stdin_and_returns_stdout() {
    let (dir, exec) = setup();
    script(dir.path(), "echo", "cat");
    assert_eq!(exec.invoke(&inv("echo")).await.unwrap(), inv("echo").stdin);
    // A plugin that does not read its (large) stdin still succeeds.
    script(dir.path(), "deaf", "echo '{}'");
    let big = Invocation { stdin: vec![b' '; 1 << 20], ..inv("deaf") };
    assert_eq!(exec.invoke(&big).await.unwrap(), b"{}\n");
}

#[tokio::test]
async fn environment_is_cleared_but_for_cni_variables_and_path() {
    let (dir, exec) = setup();
    script(dir.path(), "env", "env");
    let parse = |out: Vec<u8>| -> BTreeMap<String, String> {
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    };
    let env = parse(exec.invoke(&inv("env")).await.unwrap());
    let cni_path = format!("{}:{}", dir.path().join("empty").display(), dir.path().display());
    for (k, v) in [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "ctr-1"),
        ("CNI_NETNS", "/run/netns/pod"),
        ("CNI_IFNAME", "net1"),
        ("CNI_ARGS", "K8S_POD_NAME=web"),
        ("CNI_PATH", cni_path.as_str()),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(env.get("PATH"), std::env::var("PATH").ok().as_ref());
    // Only what the shell sets itself may be added.
    for k in env.keys() {
        assert!(k.starts_with("CNI_") || ["PATH", "PWD", "OLDPWD", "SHLVL", "_"].contains(&k.as_str()), "leaked {k}");
    }
    let del = Invocation { command: CniCommand::Del, netns: None, ..inv("env") };
    let env = parse(exec.invoke(&del).await.unwrap());
    assert_eq!((env.get("CNI_COMMAND").map(String::as_str), env.get("CNI_NETNS")), (Some("DEL"), None));
}

#[tokio::test]
async fn cni_errors_are_failed_and_others_crashed() {
    let (dir, exec) = setup();
    script(dir.path(), "fails", r#"echo '{"cniVersion":"1.0.0","code":123,"msg":"nope","details":"why"}'; exit 1"#);
    match exec.invoke(&inv("fails")).await {
        Err(DelegateError::Failed { plugin, command, error }) => {
            assert_eq!((plugin.as_str(), command), ("fails", CniCommand::Add));
            assert_eq!((error.code.get(), error.msg.as_str(), error.details.as_str()), (123, "nope", "why"));
        }
        other => panic!("{other:?}"),
    }
    script(dir.path(), "crashes", "echo garbage; echo first >&2; echo 'boom' >&2; exit 3");
    match exec.invoke(&inv("crashes")).await {
        Err(DelegateError::Crashed { status, stderr, .. }) => {
            assert!(status.contains('3'), "{status}");
            assert_eq!(stderr, "first\nboom");
        }
        other => panic!("{other:?}"),
    }
    script(dir.path(), "killed", "kill -9 $$");
    match exec.invoke(&inv("killed")).await {
        Err(DelegateError::Crashed { status, .. }) => assert!(status.contains("signal"), "{status}"),
        other => panic!("{other:?}"),
    }
    // With nothing on stderr, the end of stdout explains.
    script(dir.path(), "quiet", "echo 'not json'; exit 2");
    match exec.invoke(&inv("quiet")).await {
        Err(DelegateError::Crashed { stderr, .. }) => assert_eq!(stderr, "not json"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn output_is_capped() {
    let (dir, exec) = setup();
    script(dir.path(), "chatty", &format!("head -c {} /dev/zero; head -c 100000 /dev/zero >&2", MAX_STDOUT_BYTES + 1));
    match exec.invoke(&inv("chatty")).await {
        Err(DelegateError::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::InvalidData),
        other => panic!("{other:?}"),
    }
    script(dir.path(), "noisy", "head -c 100000 /dev/zero | tr '\\0' x >&2; echo END >&2; exit 1");
    match exec.invoke(&inv("noisy")).await {
        Err(DelegateError::Crashed { stderr, .. }) => {
            assert!(stderr.len() <= super::STDERR_TAIL_BYTES && stderr.ends_with("xEND"), "{}", stderr.len());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn lookup_rules() {
    let (dir, exec) = setup();
    // Not executable, or a directory: skipped; the first executable file wins.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("empty/plain"), "#!/bin/sh\n").unwrap();
    std::fs::create_dir(dir.path().join("empty/dir")).unwrap();
    assert!(matches!(exec.invoke(&inv("plain")).await, Err(DelegateError::NotFound { .. })));
    assert!(matches!(exec.invoke(&inv("dir")).await, Err(DelegateError::NotFound { .. })));
    let second = script(dir.path(), "plain", "echo second");
    assert_eq!(exec.find("plain").await, Some(second));
    let first = script(&dir.path().join("empty"), "plain", "echo first");
    assert_eq!(exec.find("plain").await, Some(first));
    assert_eq!(exec.invoke(&inv("plain")).await.unwrap(), b"first\n");
    match exec.invoke(&inv("absent")).await {
        Err(DelegateError::NotFound { plugin, path }) => {
            assert_eq!(plugin, "absent");
            assert!(path.contains(':') && path.contains(&dir.path().display().to_string()), "{path}");
        }
        other => panic!("{other:?}"),
    }
    for bad in ["../plain", "/bin/sh", "empty/plain", "", "a b"] {
        assert!(matches!(exec.invoke(&inv(bad)).await, Err(DelegateError::BadName { .. })), "{bad:?}");
        assert_eq!(exec.find(bad).await, None);
    }
}

#[tokio::test]
async fn static_configs() {
    let (dir, exec) = setup();
    let conf = dir.path().join("conf");
    assert_eq!(exec.static_config("net1").await.unwrap(), None);
    std::fs::write(conf.join("net1.conflist"), b"list").unwrap();
    assert_eq!(exec.static_config("net1").await.unwrap(), Some((conf.join("net1.conflist"), b"list".to_vec())));
    std::fs::write(conf.join("net1.conf"), b"single").unwrap();
    assert_eq!(exec.static_config("net1").await.unwrap(), Some((conf.join("net1.conf"), b"single".to_vec())));
    for bad in ["../net1", "a/b", ".."] {
        assert!(matches!(exec.static_config(bad).await, Err(DelegateError::Config { .. })), "{bad}");
    }
    std::fs::write(conf.join("big.conf"), vec![b' '; MAX_CONFIG_FILE_BYTES + 1]).unwrap();
    match exec.static_config("big").await {
        Err(DelegateError::Config { path, reason }) => {
            assert_eq!(path, conf.join("big.conf"));
            assert!(reason.contains("larger"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    std::fs::create_dir(conf.join("odd.conf")).unwrap();
    assert!(matches!(exec.static_config("odd").await, Err(DelegateError::Config { .. })));
}
