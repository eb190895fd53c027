//! What `run` and `exec` do while a container process runs in the
//! foreground: rtctr is its subreaper, forwards every signal it gets to
//! it, proxies its terminal when there is no --console-socket, reaps what
//! the container leaves behind, and returns its exit status (128+N when
//! killed by signal N).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{pidfd, terminal};

#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct SuperviseError {
    op: &'static str,
    #[source]
    source: std::io::Error,
}

fn err(op: &'static str) -> impl FnOnce(nix::Error) -> SuperviseError {
    move |e| SuperviseError {
        op,
        source: e.into(),
    }
}

/// Signals forwarded to the container; synchronous faults stay unblocked.
fn forwarded() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
        Signal::SIGSYS,
        Signal::SIGKILL,
        Signal::SIGSTOP,
    ] {
        set.remove(s);
    }
    set
}

/// Set up before the process exists, so neither its SIGCHLD nor a signal
/// meant for it can be lost (the youki/runc#5208 hang).
pub struct Supervisor {
    sfd: SignalFd,
}

impl Supervisor {
    /// Blocks the forwarded signals into a signalfd; with `subreaper`,
    /// orphans of the container are reparented to rtctr, which reaps them.
    pub fn new(subreaper: bool) -> Result<Supervisor, SuperviseError> {
        if subreaper {
            nix::sys::prctl::set_child_subreaper(true)
                .map_err(err("prctl(PR_SET_CHILD_SUBREAPER)"))?;
        }
        let set = forwarded();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(err("sigprocmask"))?;
        let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(err("signalfd"))?;
        Ok(Supervisor { sfd })
    }

    /// Reaps children until `pid` exits; forwards every other signal to
    /// it; with a pty, copies stdin to it and its output to stdout.
    pub fn wait(&self, pid: i32, pty: Option<&OwnedFd>) -> Result<i32, SuperviseError> {
        let target = pidfd::open(pid);
        let stdin = std::io::stdin();
        let _raw = pty.and_then(|_| terminal::RawMode::enter(stdin.as_fd()));
        if let Some(pty) = pty {
            terminal::copy_size(stdin.as_fd(), pty.as_fd());
        }
        let mut stdin_open = pty.is_some();
        loop {
            // The process may already be gone (its SIGCHLD is pending on sfd).
            if let Some(code) = reap(pid) {
                if let Some(pty) = pty {
                    drain(pty);
                }
                return Ok(code);
            }
            if let Some(pty) = pty {
                if !self.proxy(pty, &mut stdin_open)? {
                    continue;
                }
            }
            self.forward_one(target.as_ref(), pty)?;
        }
    }

    /// One round of terminal copying; true when a signal is waiting.
    fn proxy(&self, pty: &OwnedFd, stdin_open: &mut bool) -> Result<bool, SuperviseError> {
        use rustix::event::{poll, PollFd, PollFlags};
        let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
        let mut fds = vec![
            PollFd::new(&self.sfd, PollFlags::IN),
            PollFd::new(pty, PollFlags::IN),
        ];
        if *stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(false),
            Err(e) => {
                return Err(SuperviseError {
                    op: "poll",
                    source: e.into(),
                })
            }
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        if ready[1] {
            terminal::pump(pty.as_fd(), stdout.as_fd());
        }
        if *stdin_open && ready[2] && !terminal::pump(stdin.as_fd(), pty.as_fd()) {
            *stdin_open = false;
        }
        Ok(ready[0])
    }

    /// Reads one signal and sends it on (SIGCHLD only wakes the reaper;
    /// SIGWINCH resizes the pty).
    fn forward_one(
        &self,
        target: Option<&OwnedFd>,
        pty: Option<&OwnedFd>,
    ) -> Result<(), SuperviseError> {
        let info = match self.sfd.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) | Err(nix::Error::EINTR) => return Ok(()),
            Err(e) => return Err(err("read signalfd")(e)),
        };
        let sig = info.ssi_signo as i32;
        match (sig, pty) {
            (libc::SIGCHLD, _) => {}
            (libc::SIGWINCH, Some(pty)) => {
                terminal::copy_size(std::io::stdin().as_fd(), pty.as_fd())
            }
            _ => {
                if let Some(fd) = target {
                    if let Err(e) = pidfd::send(fd, sig) {
                        log::debug!("forward signal {sig}: {e}");
                    }
                }
            }
        }
        Ok(())
    }
}

/// What the container wrote last, once it has exited.
fn drain(pty: &OwnedFd) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let stdout = std::io::stdout();
    while poll(&mut [PollFd::new(pty, PollFlags::IN)], Some(&now)).unwrap_or(0) > 0
        && terminal::pump(pty.as_fd(), stdout.as_fd())
    {}
}

/// Reaps exited children; returns `pid`'s exit code once it is reaped.
fn reap(pid: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                return Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Without subreaper the init is not rtctr's child: wait on its pidfd;
/// the exit status cannot be known.
pub fn wait_not_child(pid: i32) -> i32 {
    if let Some(fd) = pidfd::open(pid) {
        while !pidfd::wait_exit(&fd, Duration::from_secs(3600)) {}
    }
    0
}
