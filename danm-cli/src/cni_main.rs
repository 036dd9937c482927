//! The `main` of a CNI plugin binary: collects the `CNI_*` environment variables and stdin, runs
//! [`dispatch`] on a single-threaded tokio runtime, prints the output and returns the exit code.
//!
//! Nothing here writes to stdout but the plugin's answer; diagnostics go to stderr.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;

use danm_core::cni::skel::{Environment, MAX_CONFIG_BYTES, Output, Plugin, dispatch, reply_version};
use danm_core::cni::{CniError, CniVersion, ErrorCode};

/// Runs `plugin` as this process's CNI plugin and returns the exit code for `main` to return.
pub fn run<P: Plugin + ?Sized>(plugin: &P) -> ExitCode {
    let output = match read_environment(std::env::vars_os(), std::io::stdin().lock()) {
        Ok(env) => execute(plugin, &env),
        Err(e) => Output::failure(&e, CniVersion::LATEST),
    };
    emit(&output)
}

/// Runs [`dispatch`] for `env` on a fresh current-thread tokio runtime.
pub fn execute<P: Plugin + ?Sized>(plugin: &P, env: &Environment) -> Output {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(dispatch(plugin, env)),
        Err(e) => {
            let err =
                CniError::new(ErrorCode::IO_FAILURE, "cannot start the async runtime").with_details(e.to_string());
            Output::failure(&err, reply_version(env))
        }
    }
}

/// Builds an [`Environment`] from process variables and stdin: keeps the `CNI_*` variables (values
/// that are not UTF-8 are converted lossily) and reads at most [`MAX_CONFIG_BYTES`] + 1 bytes, enough
/// for the harness to tell that the input is too large. A read failure is code 5.
pub fn read_environment(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    stdin: impl Read,
) -> Result<Environment, CniError> {
    let mut env = Environment::new();
    for (k, v) in vars {
        let key = k.to_string_lossy();
        if key.starts_with("CNI_") {
            env.vars.insert(key.into_owned(), v.to_string_lossy().into_owned());
        }
    }
    let limit = u64::try_from(MAX_CONFIG_BYTES).map_or(u64::MAX, |m| m.saturating_add(1));
    stdin.take(limit).read_to_end(&mut env.stdin).map_err(|e| {
        CniError::new(ErrorCode::IO_FAILURE, "cannot read the configuration from stdin").with_details(e.to_string())
    })?;
    Ok(env)
}

fn emit(output: &Output) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(&output.stdout).and_then(|()| stdout.flush()) {
        eprintln!("cannot write the CNI answer to stdout: {e}");
        return ExitCode::FAILURE;
    }
    u8::try_from(output.exit_code).map_or(ExitCode::FAILURE, ExitCode::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_cni_variables_and_caps_stdin() {
        let vars = [("CNI_COMMAND", "ADD"), ("HOME", "/root"), ("CNI_IFNAME", "eth0")]
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let big = vec![b'x'; MAX_CONFIG_BYTES * 2];
        let env = read_environment(vars, &big[..]).unwrap();
        assert_eq!(env.vars.keys().collect::<Vec<_>>(), ["CNI_COMMAND", "CNI_IFNAME"]);
        assert_eq!(env.stdin.len(), MAX_CONFIG_BYTES + 1);
    }

    #[test]
    fn read_failure_is_code_5() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("gone"))
            }
        }
        let e = read_environment(Vec::new(), Broken).unwrap_err();
        assert_eq!(e.code, ErrorCode::IO_FAILURE);
        assert_eq!(e.details, "gone");
    }
}
