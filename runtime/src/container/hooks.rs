//! OCI hooks: each runs with its `path`, `args` and `env` (rtctr's own
//! environment when it has none), the container state JSON on stdin, and an optional
//! `timeout` in seconds after which it is killed.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: cannot run: {source}")]
    Spawn {
        kind: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{kind} hook {path} failed: {status}{stderr}")]
    Failed {
        kind: &'static str,
        path: String,
        status: String,
        stderr: String,
    },
    #[error("{kind} hook {path} timed out after {secs}s and was killed")]
    Timeout {
        kind: &'static str,
        path: String,
        secs: i64,
    },
}

/// Runs hooks in order; the first failure stops the rest.
pub fn run_all(kind: &'static str, hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    for hook in hooks {
        run(kind, hook, state_json)?;
    }
    Ok(())
}

/// Runs every hook, logging each failure as a warning (poststart and
/// poststop: "the remaining hooks and lifecycle continue").
pub fn run_all_warn(kind: &'static str, hooks: &[Hook], state_json: &[u8]) {
    for hook in hooks {
        if let Err(e) = run(kind, hook, state_json) {
            log::warn!("{e}");
        }
    }
}

pub fn run(kind: &'static str, hook: &Hook, state_json: &[u8]) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let spawn_err = |source| HookError::Spawn {
        kind,
        path: path.clone(),
        source,
    };
    let mut child = spawn(hook, state_json).map_err(spawn_err)?;
    if !wait(&mut child, hook.timeout().filter(|t| *t > 0)).map_err(spawn_err)? {
        let _ = child.kill();
        let _ = child.wait();
        let secs = hook.timeout().unwrap_or_default();
        return Err(HookError::Timeout { kind, path, secs });
    }
    let status = child.wait().map_err(spawn_err)?;
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    let text = text.trim();
    Err(HookError::Failed {
        kind,
        path,
        status: status.to_string(),
        stderr: if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        },
    })
}

/// The hook with its `path`, `args` and `env` only, the state on stdin
/// and its stderr kept for the error message.
fn spawn(hook: &Hook, state_json: &[u8]) -> io::Result<std::process::Child> {
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        std::os::unix::process::CommandExt::arg0(&mut cmd, argv0);
        cmd.args(rest);
    }
    // Without `env` a hook inherits rtctr's environment (PATH and all), as
    // with runc and crun; hooks in the wild rely on it. With `env`, it gets
    // exactly that.
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for (k, v) in env.iter().filter_map(|e| e.split_once('=')) {
            cmd.env(k, v);
        }
    }
    // The state is written before the hook starts, into a file rather than
    // a pipe: a pipe holds at most 1 MiB without CAP_SYS_RESOURCE (the
    // state carries the config's annotations), and writing to a hook that
    // exited without reading would raise SIGPIPE, which kills the
    // container init (it runs with default dispositions).
    let stdin = state_file(state_json)?;
    cmd.stdin(Stdio::from(stdin))
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
}

/// Waits for the hook to exit: false if `timeout` seconds passed first.
fn wait(child: &mut std::process::Child, timeout: Option<i64>) -> io::Result<bool> {
    // A timeout past what the clock can hold is no timeout (issue 11: a
    // timeout of i64::MAX made `Instant + Duration` panic, aborting create).
    let deadline = timeout.and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));
    let pid = rustix::process::Pid::from_raw(child.id() as i32)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if wait_readable(&pidfd, left) {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}

/// The state JSON with another status (for hooks that run after create).
pub fn with_status(state_json: &str, status: &str) -> Vec<u8> {
    match serde_json::from_str::<serde_json::Value>(state_json) {
        Ok(mut v) => {
            v["status"] = status.into();
            serde_json::to_vec(&v).unwrap_or_default()
        }
        Err(_) => state_json.as_bytes().to_vec(),
    }
}

/// An anonymous file (memfd) holding `data`, read from its start.
fn state_file(data: &[u8]) -> io::Result<std::os::fd::OwnedFd> {
    let fd = rustix::fs::memfd_create("rtctr-state", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(data)?;
    std::io::Seek::rewind(&mut file)?;
    Ok(file.into())
}

/// Polls a pidfd; true once the process has exited.
fn wait_readable(fd: &impl AsFd, timeout: Option<Duration>) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let ts = timeout.map(|t| Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: t.subsec_nanos() as i64,
    });
    matches!(poll(&mut fds, ts.as_ref()), Ok(n) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: serde_json::Value) -> Hook {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn hook_gets_state_args_and_env_only() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {0}; echo \" $0 $FOO $HOME\" >> {0}", out.display())],
            "env": ["FOO=bar"]
        }));
        run("prestart", &h, b"{\"id\":\"x\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"x\"} sh bar \n"
        );
    }

    #[test]
    fn a_hook_without_env_inherits_rtctrs() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("path");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo \"$PATH\" > {}", out.display())]
        }));
        run("poststop", &h, b"{}").unwrap();
        let path = std::env::var("PATH").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), path);
        // "env": [] is an empty environment.
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo \"[$PATH]\" > {}", out.display())],
            "env": []
        }));
        run("poststop", &h, b"{}").unwrap();
        assert_ne!(
            std::fs::read_to_string(&out).unwrap().trim(),
            format!("[{path}]")
        );
    }

    #[test]
    fn a_state_larger_than_a_pipe_reaches_the_hook() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("n");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("wc -c > {}", out.display())]
        }));
        let state = vec![b'x'; 3 << 20];
        run("createRuntime", &h, &state).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "3145728");
        // A hook that never reads its stdin is no problem either.
        let h = hook(serde_json::json!({"path": "/bin/true"}));
        run("createRuntime", &h, &state).unwrap();
    }

    #[test]
    fn failure_and_timeout_are_reported() {
        let h = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 3"]}),
        );
        let err = run("poststart", &h, b"{}").unwrap_err().to_string();
        assert_eq!(err, "poststart hook /bin/sh failed: exit status: 3: boom");
        let h =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}));
        let t = Instant::now();
        let err = run("prestart", &h, b"{}").unwrap_err().to_string();
        assert!(err.contains("timed out after 1s"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(3));
        let h = hook(serde_json::json!({"path": "/nonexistent/hook"}));
        assert!(run("prestart", &h, b"{}")
            .unwrap_err()
            .to_string()
            .contains("cannot run"));
    }
}
