//! `rtctr delete`: remove every trace of a container — its processes
//! (with --force), cgroup, network attachment and state directory — then
//! run the poststop hooks.

use std::time::Duration;

use crate::state::{ContainerDir, State, StateError, Status, Store};

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot delete container {id} that is not stopped: {status} (use --force)")]
    NotStopped { id: String, status: Status },
    #[error(transparent)]
    Cgroup(#[from] rtctr_cgroups::Error),
}

pub fn delete(store: &Store, id: &str, force: bool) -> Result<(), DeleteError> {
    let dir = match store.open(id) {
        Ok(dir) => dir,
        Err(StateError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let state = match dir.load() {
        Ok(s) => s,
        // A create that died half-way leaves a directory without state:
        // --force removes it.
        Err(StateError::NotFound(_) | StateError::Corrupt { .. }) if force => {
            dir.remove()?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let status = dir.status(&state);
    match status {
        Status::Stopped => {}
        // runc deletes a created (never started) container without --force.
        Status::Created => stop(&state),
        _ if force => stop(&state),
        _ => {
            return Err(DeleteError::NotStopped {
                id: id.to_string(),
                status,
            })
        }
    }
    destroy(dir, &state)
}

/// SIGKILL everything in the container and wait for the init to go.
fn stop(state: &State) {
    if let Some(cg) = &state.cgroup {
        // Thaws a paused container first: it cannot die frozen.
        let _ = cg.kill_all(libc::SIGKILL);
    }
    if let Some(fd) = crate::commands::kill::init_pidfd(state.pid, state.pid_start) {
        let _ = crate::commands::kill::send(&fd, libc::SIGKILL);
        crate::commands::kill::wait_exit(&fd, Duration::from_secs(10));
    }
}

/// Removes the cgroup and the state directory, then runs poststop hooks
/// (whose failures are only warnings).
pub fn destroy(dir: ContainerDir, state: &State) -> Result<(), DeleteError> {
    let spec = crate::commands::start::load_snapshot(&dir).ok();
    if let Some(cg) = &state.cgroup {
        // Processes the init left behind (no pid namespace) die with it.
        cg.destroy_killing()?;
    }
    if let Some(net) = state.network.as_ref().and_then(|n| n["network"].as_str()) {
        if let Err(e) = rtctr_hooks::teardown(&state.id, Some(net)) {
            log::warn!("network teardown of {}: {e}", state.id);
        }
    }
    if state.host_mounts {
        crate::container::rootfs::unmount_under(&state.rootfs);
    }
    dir.remove()?;
    if let Some(h) = spec
        .as_ref()
        .and_then(|s| s.hooks().as_ref())
        .and_then(|h| h.poststop().as_deref())
    {
        let json = serde_json::to_vec(&state.oci(Status::Stopped)).expect("state serializes");
        crate::container::hooks::run_all_warn("poststop", h, &json);
    }
    Ok(())
}
