//! `rtctr state`: the OCI state of a container, with its derived status.

use crate::state::{StateError, Store};

/// The state document, pretty-printed as runc prints it.
pub fn state(store: &Store, id: &str) -> Result<String, StateError> {
    let dir = store.open(id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    serde_json::to_string_pretty(&state.oci(status)).map_err(|e| StateError::Io {
        op: "serialize the state of",
        path: dir.path.clone(),
        source: e.into(),
    })
}
