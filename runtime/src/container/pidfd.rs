//! A container's processes by pidfd: the init if it is still the process
//! rtctr started (pid plus start time, [`crate::state::is_alive`], so a
//! reused pid is never mistaken for it), signals sent through the pidfd,
//! and waiting for an exit.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// A pidfd of `pid`, if it exists.
pub fn open(pid: i32) -> Option<OwnedFd> {
    rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid)?,
        rustix::process::PidfdFlags::empty(),
    )
    .ok()
}

/// A pidfd of the container's init, if it is still the same process.
pub fn open_init(pid: i32, start: u64) -> Option<OwnedFd> {
    let fd = open(pid)?;
    // The pidfd pins the process: checking after opening is race-free.
    crate::state::is_alive(pid, start).then_some(fd)
}

/// Sends signal number `sig` to the process behind `pidfd`.
pub fn send(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SIGRTMIN.. are not in nix's Signal enum: use the raw number.
    let sig = rustix::process::Signal::from_named_raw(sig)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    rustix::process::pidfd_send_signal(pidfd.as_fd(), sig).map_err(Into::into)
}

/// Waits until the process behind a pidfd has exited; false on timeout.
pub fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
}

/// SIGKILL and wait (up to 10 s) until the process is gone, then reap it
/// if it is rtctr's child. Best effort, for undoing a failed create or run;
/// a failure is logged.
pub fn kill_and_wait(pid: i32, pidfd: Option<&OwnedFd>) {
    let owned;
    let fd = match pidfd {
        Some(fd) => fd,
        None => match open(pid) {
            Some(fd) => {
                owned = fd;
                &owned
            }
            None => return,
        },
    };
    if let Err(e) = send(fd, libc::SIGKILL) {
        log::debug!("kill {pid}: {e}");
    }
    if !wait_exit(fd, Duration::from_secs(10)) {
        log::warn!("process {pid} did not exit within 10 s of SIGKILL");
    }
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_is_opened_only_if_it_is_the_same_process() {
        let me = std::process::id() as i32;
        let start = crate::state::start_time(me).unwrap();
        assert!(open_init(me, start).is_some());
        assert!(open_init(me, start + 1).is_none());
    }

    #[test]
    fn kill_and_wait_ends_a_child() {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let fd = open(pid).unwrap();
        assert!(!wait_exit(&fd, Duration::from_millis(0)));
        kill_and_wait(pid, Some(&fd));
        assert!(wait_exit(&fd, Duration::from_millis(0)));
        // kill_and_wait reaped it: nothing is left to wait for.
        let reaped = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        assert_eq!(reaped, Err(nix::Error::ECHILD));
        drop(child);
    }
}
