//! `rtctr kill`: signal names and numbers as runc takes them, and
//! signals sent through a pidfd so a reused pid is never hit.

use nix::sys::signal::Signal;

use crate::container::pidfd;
use crate::state::{StateError, Status, Store};

#[derive(Debug, thiserror::Error)]
pub enum KillError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("invalid signal {0:?}")]
    BadSignal(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("kill container {id}: {source}")]
    Send {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] rtctr_cgroups::Error),
}

/// "TERM", "SIGTERM", "15", "RTMIN+2", "SIGRTMAX-1" → number.
pub fn parse_signal(s: &str) -> Result<i32, KillError> {
    let bad = || KillError::BadSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        if (1..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        return Err(bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().map_err(|_| bad())?
        };
        let n = libc::SIGRTMIN() + off;
        return if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().map_err(|_| bad())?
        };
        let n = libc::SIGRTMAX() + off;
        return if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let full = format!("SIG{name}");
    let sig: Signal = full.parse().map_err(|_| bad())?;
    Ok(sig as i32)
}

pub fn kill(store: &Store, id: &str, signal: &str, all: bool) -> Result<(), KillError> {
    let sig = parse_signal(signal)?;
    let dir = store.open(id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    if status == Status::Stopped {
        // As runc: `kill --all` of a stopped container signals what is left in its cgroup
        // (processes that outlived the init) and succeeds when nothing is; containerd's
        // shim sends it while cleaning up an exited or failed task, and retries on error.
        if all {
            if let Some(cg) = &state.cgroup {
                if cg.pids().is_ok_and(|p| !p.is_empty()) {
                    cg.kill_all(sig)?;
                }
            }
            return Ok(());
        }
        return Err(KillError::NotRunning(id.to_string()));
    }
    if all {
        match &state.cgroup {
            Some(cg) if !cg.dirs.is_empty() => {
                cg.kill_all(sig)?;
                return Ok(());
            }
            // Rootless without a cgroup: the init's pid namespace.
            _ => return kill_each(id, &state, sig),
        }
    }
    let pidfd = pidfd::open_init(state.pid, state.pid_start)
        .ok_or_else(|| KillError::NotRunning(id.to_string()))?;
    pidfd::send(&pidfd, sig).map_err(|source| KillError::Send {
        id: id.to_string(),
        source,
    })
}

/// `kill --all` for a container without a cgroup: every process in its
/// init's pid namespace, through pidfds (the init checked by start time).
fn kill_each(id: &str, state: &crate::state::State, sig: i32) -> Result<(), KillError> {
    pidfd::open_init(state.pid, state.pid_start)
        .ok_or_else(|| KillError::NotRunning(id.to_string()))?;
    for pid in crate::container::rootless::pids_without_cgroup(state.pid) {
        let Some(fd) = pidfd::open(pid) else { continue };
        match pidfd::send(&fd, sig) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(source) => {
                return Err(KillError::Send {
                    id: id.to_string(),
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_spellings() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigusr1").unwrap(), 10);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("RTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse_signal("SIGRTMAX").unwrap(), libc::SIGRTMAX());
        for bad in ["", "0", "65", "SIGFOO", "RTMIN+99", "-1"] {
            assert!(parse_signal(bad).is_err(), "{bad} accepted");
        }
    }
}
