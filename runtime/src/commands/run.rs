//! `rtctr run`: create, start, and (unless detached) wait for the init,
//! forwarding signals to it; the exit status is the container's (128+N
//! when it was killed by signal N).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::commands::delete::{self, DeleteError};
use crate::commands::start::{self, StartError};
use crate::container::parent::{self, CreateError, CreateOptions};
use crate::state::Store;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Delete(#[from] DeleteError),
    #[error(transparent)]
    Terminal(crate::container::terminal::TerminalError),
    #[error("cannot allocate a terminal if rtctr detaches without --console-socket")]
    Detached,
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
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

/// Cheap look at the bundle's process.terminal (the full parse is create's).
fn terminal_requested(bundle: &std::path::Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|raw| crate::spec::parse(&raw).ok())
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false)
}

/// Signals `run` forwards; synchronous faults stay unblocked.
pub(crate) fn forwarded() -> SigSet {
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
    if opts.detach
        && opts.create.console_socket.is_none()
        && terminal_requested(&opts.create.bundle)
    {
        return Err(RunError::Detached);
    }
    if opts.detach {
        let mut created = parent::create(store, &opts.create)?;
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
    // With process.terminal and no --console-socket, the init sends its
    // pty master here and run copies between it and our own stdio.
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|source| RunError::Sys {
        op: "socketpair",
        source,
    })?;
    let console = opts.create.console_socket.is_none().then(|| theirs.as_fd());
    let mut created = parent::create_with(store, &opts.create, console)?;
    drop(theirs);
    let pty = if created.terminal && opts.create.console_socket.is_none() {
        Some(crate::container::terminal::recv_fd(ours.as_fd()).map_err(RunError::Terminal)?)
    } else {
        None
    };
    let pid = created.state.pid;
    if let Err(e) = start::start_loaded(&created.dir, &mut created.state) {
        crate::commands::kill::kill_and_wait(pid, None);
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
        wait_child(&sfd, pid, pty.as_ref())?
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

/// Reaps children until the init exits; forwards every other signal;
/// with a pty, copies stdin to it and its output to stdout.
pub(crate) fn wait_child(
    sfd: &SignalFd,
    init: i32,
    pty: Option<&OwnedFd>,
) -> Result<i32, RunError> {
    use rustix::event::{poll, PollFd, PollFlags};
    let pidfd = crate::container::parent::pidfd_of(init);
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let _raw = pty.and_then(|_| crate::container::terminal::RawMode::enter(stdin.as_fd()));
    if let Some(pty) = pty {
        crate::container::terminal::copy_size(stdin.as_fd(), pty.as_fd());
    }
    let mut stdin_open = pty.is_some();
    loop {
        // The init may already be gone (its SIGCHLD is pending on sfd).
        if let Some(code) = reap(init) {
            if let Some(pty) = pty {
                // Drain what the container wrote last.
                while poll(
                    &mut [PollFd::new(pty, PollFlags::IN)],
                    Some(&rustix::event::Timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    }),
                )
                .unwrap_or(0)
                    > 0
                    && crate::container::terminal::pump(pty.as_fd(), stdout.as_fd())
                {
                }
            }
            return Ok(code);
        }
        if let Some(pty) = pty {
            let mut fds = vec![
                PollFd::new(sfd, PollFlags::IN),
                PollFd::new(pty, PollFlags::IN),
            ];
            if stdin_open {
                fds.push(PollFd::new(&stdin, PollFlags::IN));
            }
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(RunError::Io {
                        op: "poll",
                        source: e.into(),
                    })
                }
            }
            let (sig_ready, pty_ready) =
                (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
            let stdin_ready = stdin_open && !fds[2].revents().is_empty();
            drop(fds);
            if pty_ready {
                crate::container::terminal::pump(pty.as_fd(), stdout.as_fd());
            }
            if stdin_ready && !crate::container::terminal::pump(stdin.as_fd(), pty.as_fd()) {
                stdin_open = false;
            }
            if !sig_ready {
                continue;
            }
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
        if sig == libc::SIGWINCH {
            if let Some(pty) = pty {
                crate::container::terminal::copy_size(stdin.as_fd(), pty.as_fd());
                continue;
            }
        }
        if let Some(fd) = &pidfd {
            let _ = crate::commands::kill::send(fd, sig);
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
    if let Some(fd) = crate::container::parent::pidfd_of(init) {
        while !crate::commands::kill::wait_exit(&fd, Duration::from_secs(3600)) {}
    }
    0
}
