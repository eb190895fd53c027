//! `rtctr delete`: remove every trace of a container — its processes
//! (with --force), cgroup, network attachment and state directory — then
//! run the poststop hooks.

use crate::container::lifecycle::{self, DestroyError};
use crate::state::{StateError, Status, Store};

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot delete container {id} that is not stopped: {status} (use --force)")]
    NotStopped { id: String, status: Status },
    #[error(transparent)]
    Destroy(#[from] DestroyError),
}

pub fn delete(store: &Store, id: &str, force: bool) -> Result<(), DeleteError> {
    if force {
        store.remove_stale(id);
    }
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
        Status::Created => lifecycle::stop(&state),
        _ if force => lifecycle::stop(&state),
        _ => {
            return Err(DeleteError::NotStopped {
                id: id.to_string(),
                status,
            })
        }
    }
    Ok(lifecycle::destroy(dir, &state)?)
}
