//! A process added to a running container (`exec`; youki calls it a
//! tenant). The parent half is here: it clones the process into the
//! container's pid namespace (or forks an intermediate that joins it:
//! see [`init::spawn`]); the process joins the container's cgroup and
//! every other namespace of its init and takes the init's own path to
//! execve ([`init::run_tenant`]).

use std::os::fd::BorrowedFd;

use super::init::{self, Enter};
use super::sync::SyncError;
use super::{namespaces, pidfd, process, seccomp};
use crate::state::{State, Status};

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("fork: {0}")]
    Fork(#[source] std::io::Error),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
}

/// Starts `setup.process` in the container of `state`; returns its pid
/// once it has reached execve. `console` receives its pty master.
pub fn spawn(
    state: &State,
    ns: &namespaces::Plan,
    setup: &process::Setup,
    console: Option<BorrowedFd<'_>>,
) -> Result<i32, TenantError> {
    let enter = Enter {
        cgroup: state.cgroup.as_ref(),
        cgroup_after_clone: false,
        ns,
        lock_fd: None,
        sched: Some(setup.plan.sched()),
    };
    let spawned = init::spawn(&enter, |chan| init::run_tenant(setup, console, chan))
        .map_err(TenantError::Fork)?;
    // Nothing is unshared: a request for user namespace maps is a bug.
    let (pid, _start) = spawned.child_pid(|| {
        Err(TenantError::Sync(SyncError::Unexpected {
            got: "UsernsCreated".into(),
            want: "ChildPid",
        }))
    })?;
    let chan = spawned.child;
    let running = state.oci(Status::Running);
    let served = chan.serve_listeners(None, |fd| match setup.plan.seccomp() {
        Some(program) => Ok(program.hand_over_listener(pid, fd, &running)?),
        None => Ok::<(), TenantError>(()),
    });
    if let Err(e) = served {
        // It reported why (or was refused its listener): it must not run on.
        pidfd::kill_and_wait(pid, None);
        return Err(e);
    }
    Ok(pid)
}
