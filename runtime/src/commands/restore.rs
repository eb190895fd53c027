//! `rtctr restore`: a container from `checkpoint`'s images and its bundle,
//! as runc restores. With `--detach` rtctr returns once it is restored;
//! otherwise it waits for the restored init (forwarding signals, as `run`
//! does), removes the container and exits with its status.

use crate::container::lifecycle::{self, DestroyError};
pub use crate::container::restore::{RestoreError, RestoreOptions};
use crate::container::supervise::{SuperviseError, Supervisor};
use crate::state::{StateError, Store};

#[derive(Debug, thiserror::Error)]
pub enum RestoreVerbError {
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Supervise(#[from] SuperviseError),
    #[error(transparent)]
    Destroy(#[from] DestroyError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Restores the container; returns its exit status when not detached.
pub fn restore(store: &Store, opts: &RestoreOptions) -> Result<i32, RestoreVerbError> {
    if opts.detach {
        crate::container::restore::restore(store, opts)?;
        return Ok(0);
    }
    // Before the init exists, so none of its signals or SIGCHLD is lost.
    let supervisor = Supervisor::new(!opts.no_subreaper)?;
    let restored = crate::container::restore::restore(store, opts)?;
    let (pid, id) = (restored.state.pid, restored.state.id.clone());
    // Other commands must be able to lock the directory meanwhile.
    drop(restored.dir);
    // CRIU restored the init as rtctr's child (rst_sibling): reap it here.
    let code = supervisor.wait(pid, None)?;
    match store.open(&id) {
        Ok(dir) => lifecycle::destroy(dir, &restored.state)?,
        Err(StateError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(code)
}
