//! `rtctr run`: create, start, and (unless detached) wait for the init,
//! forwarding signals to it; the exit status is the container's (128+N
//! when it was killed by signal N).

use std::os::fd::AsFd;

use crate::container::lifecycle::{self, DestroyError, StartError};
use crate::container::parent;
use crate::container::plan::{CreateError, CreateOptions};
use crate::container::supervise::{self, SuperviseError, Supervisor};
use crate::container::{pidfd, terminal};
use crate::state::{StateError, Store};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Destroy(#[from] DestroyError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Terminal(#[from] terminal::TerminalError),
    #[error(transparent)]
    Supervise(#[from] SuperviseError),
    #[error("cannot allocate a terminal if rtctr detaches without --console-socket")]
    Detached,
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

pub fn run(store: &Store, opts: &RunOptions) -> Result<i32, RunError> {
    if opts.detach {
        if opts.create.console_socket.is_none() && terminal_requested(&opts.create.bundle) {
            return Err(RunError::Detached);
        }
        let created = parent::create(store, &opts.create, None)?;
        lifecycle::start(&created.dir, &created.state)?;
        return Ok(0);
    }
    let supervisor = Supervisor::new(!opts.no_subreaper)?;
    // With process.terminal and no --console-socket, the init sends its
    // pty master here and run copies between it and our own stdio.
    let (ours, theirs) = terminal::proxy_pair()?;
    let given = opts.create.console_socket.is_none().then(|| theirs.as_fd());
    let created = parent::create(store, &opts.create, given)?;
    drop(theirs);
    let pty = match created.terminal && opts.create.console_socket.is_none() {
        true => Some(terminal::recv_fd(ours.as_fd())?),
        false => None,
    };
    let pid = created.state.pid;
    if let Err(e) = lifecycle::start(&created.dir, &created.state) {
        pidfd::kill_and_wait(pid, None);
        if let Err(d) = lifecycle::destroy(created.dir, &created.state) {
            log::warn!("remove the container after a failed start: {d}");
        }
        return Err(e.into());
    }
    // Other commands (state, kill) must be able to lock the directory
    // while the container runs.
    let id = created.state.id.clone();
    drop(created.dir);
    let code = match opts.no_subreaper {
        true => supervise::wait_not_child(pid),
        false => supervisor.wait(pid, pty.as_ref())?,
    };
    if !opts.keep {
        match store.open(&id) {
            Ok(dir) => lifecycle::destroy(dir, &created.state)?,
            // Somebody deleted it meanwhile.
            Err(StateError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(code)
}
