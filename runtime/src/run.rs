//! `rtctr run`: create, start, and (unless detached) wait for the init,
//! forwarding signals to it; the exit status is the container's (128+N
//! when it was killed by signal N).

use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::create::{self, CreateError, CreateOptions};
use crate::delete::{self, DeleteError};
use crate::start::{self, StartError};
use crate::state::Store;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Delete(#[from] DeleteError),
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
}

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub create: CreateOptions,
    pub detach: bool,
    pub keep: bool,
    pub no_subreaper: bool,
}

/// Signals `run` forwards; synchronous faults stay unblocked.
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

pub fn run(store: &Store, opts: &RunOptions) -> Result<i32, RunError> {
    if opts.detach {
        let mut created = create::create(store, &opts.create)?;
        start::start_loaded(&created.dir, &mut created.state)?;
        return Ok(0);
    }
    if !opts.no_subreaper {
        nix::sys::prctl::set_child_subreaper(true).map_err(|source| RunError::Sys {
            op: "prctl(PR_SET_CHILD_SUBREAPER)",
            source,
        })?;
    }
    // Block before the init exists, so neither its SIGCHLD nor a signal
    // meant for it can be lost (the youki/runc#5208 hang).
    let set = forwarded();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(|source| {
        RunError::Sys {
            op: "sigprocmask",
            source,
        }
    })?;
    let sfd =
        SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(|source| RunError::Sys {
            op: "signalfd",
            source,
        })?;
    let mut created = create::create(store, &opts.create)?;
    let pid = created.state.pid;
    if let Err(e) = start::start_loaded(&created.dir, &mut created.state) {
        crate::kill::kill_and_wait(pid, None);
        let _ = delete::destroy(created.dir, &created.state);
        return Err(e.into());
    }
    // Other commands (state, kill) must be able to lock the directory
    // while the container runs.
    let id = created.state.id.clone();
    drop(created.dir);
    let code = if opts.no_subreaper {
        wait_pidfd(pid)
    } else {
        wait_child(&sfd, pid)?
    };
    if !opts.keep {
        match store.open(&id) {
            Ok(dir) => delete::destroy(dir, &created.state)?,
            // Somebody deleted it meanwhile.
            Err(crate::state::StateError::NotFound(_)) => {}
            Err(e) => return Err(DeleteError::from(e).into()),
        }
    }
    Ok(code)
}

/// Reaps children until the init exits; forwards every other signal.
fn wait_child(sfd: &SignalFd, init: i32) -> Result<i32, RunError> {
    let pidfd = crate::create::pidfd_of(init);
    loop {
        // The init may already be gone (its SIGCHLD is pending on sfd).
        if let Some(code) = reap(init) {
            return Ok(code);
        }
        let info = match sfd.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(source) => {
                return Err(RunError::Sys {
                    op: "read signalfd",
                    source,
                })
            }
        };
        let sig = info.ssi_signo as i32;
        if sig == libc::SIGCHLD {
            continue;
        }
        if let Some(fd) = &pidfd {
            let _ = crate::kill::send(fd, sig);
        }
    }
}

/// Reaps exited children; returns the init's exit code once it is reaped.
fn reap(init: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == init => return Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == init => {
                return Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Without subreaper the init is not our child: wait on its pidfd; the
/// exit status cannot be known.
fn wait_pidfd(init: i32) -> i32 {
    if let Some(fd) = crate::create::pidfd_of(init) {
        while !crate::kill::wait_exit(&fd, Duration::from_secs(3600)) {}
    }
    0
}
