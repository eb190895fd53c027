//! `rtctr kill`: signal names and numbers as runc takes them, and
//! signals sent through a pidfd so a reused pid is never hit.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::Signal;

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

/// Sends `sig` to the process behind `pidfd`.
pub fn send(pidfd: &OwnedFd, sig: i32) -> std::io::Result<()> {
    // SIGRTMIN.. are not in nix's Signal enum: use the raw number.
    let sig = rustix::process::Signal::from_named_raw(sig)
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    rustix::process::pidfd_send_signal(pidfd.as_fd(), sig).map_err(Into::into)
}

/// Opens a pidfd for the container's init if it is still the same process.
pub fn init_pidfd(pid: i32, start: u64) -> Option<OwnedFd> {
    let fd = crate::container::parent::pidfd_of(pid)?;
    // The pidfd pins the process: checking after opening is race-free.
    crate::container::process::is_alive(pid, start).then_some(fd)
}

pub fn kill(store: &Store, id: &str, signal: &str, all: bool) -> Result<(), KillError> {
    let sig = parse_signal(signal)?;
    let dir = store.open(id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    if status == Status::Stopped {
        return Err(KillError::NotRunning(id.to_string()));
    }
    if all {
        if let Some(cg) = &state.cgroup {
            cg.kill_all(sig)?;
            return Ok(());
        }
    }
    let pidfd = init_pidfd(state.pid, state.pid_start)
        .ok_or_else(|| KillError::NotRunning(id.to_string()))?;
    send(&pidfd, sig).map_err(|source| KillError::Send {
        id: id.to_string(),
        source,
    })
}

/// SIGKILL and wait (up to 10 s) until the process is gone. Best effort:
/// used while undoing a failed create and by `delete --force`.
pub fn kill_and_wait(pid: i32, pidfd: Option<&OwnedFd>) {
    let owned;
    let fd = match pidfd {
        Some(fd) => fd,
        None => match crate::container::parent::pidfd_of(pid) {
            Some(fd) => {
                owned = fd;
                &owned
            }
            None => return,
        },
    };
    let _ = send(fd, libc::SIGKILL);
    wait_exit(fd, Duration::from_secs(10));
    // Reap it if it is our child (run, or a failed create's intermediate).
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}

/// Waits until the process behind a pidfd has exited.
pub fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
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
