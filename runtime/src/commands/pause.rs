//! `rtctr pause` / `rtctr resume`: freeze and thaw every process of the
//! container through its cgroup's freezer. `state` reports `paused` while
//! the cgroup is frozen (see [`crate::state`]).

use crate::state::{StateError, Status, Store};

#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("container {id} is not running: {status}")]
    NotRunning { id: String, status: Status },
    #[error("container {id} is not paused: {status}")]
    NotPaused { id: String, status: Status },
    #[error(
        "container {0} has no cgroup to freeze (made rootless, where its user could write none)"
    )]
    NoCgroup(String),
    #[error("{verb} container {id}: {source}")]
    Cgroup {
        verb: &'static str,
        id: String,
        #[source]
        source: rtctr_cgroups::Error,
    },
}

/// Freezes a running (or created) container, as runc allows both.
pub fn pause(store: &Store, id: &str) -> Result<(), PauseError> {
    let dir = store.open(id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    if !matches!(status, Status::Running | Status::Created) {
        return Err(PauseError::NotRunning {
            id: id.to_string(),
            status,
        });
    }
    let cg = state
        .cgroup
        .as_ref()
        .filter(|cg| !cg.dirs.is_empty())
        .ok_or_else(|| PauseError::NoCgroup(id.to_string()))?;
    cg.freeze().map_err(|source| PauseError::Cgroup {
        verb: "pause",
        id: id.to_string(),
        source,
    })
}

/// Thaws a paused container; anything else is an error, as in runc.
pub fn resume(store: &Store, id: &str) -> Result<(), PauseError> {
    let dir = store.open(id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    // A created container that was paused still reports `created`: ask
    // the freezer itself.
    let frozen = state
        .cgroup
        .as_ref()
        .filter(|cg| cg.is_frozen().unwrap_or(false));
    let Some(cg) = frozen.filter(|_| status != Status::Stopped) else {
        return Err(PauseError::NotPaused {
            id: id.to_string(),
            status,
        });
    };
    cg.thaw().map_err(|source| PauseError::Cgroup {
        verb: "resume",
        id: id.to_string(),
        source,
    })
}
