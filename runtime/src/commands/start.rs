//! `rtctr start`: release a created container's init, then run the
//! poststart hooks.

use crate::container::lifecycle::{self, StartError};
use crate::state::Store;

pub fn start(store: &Store, id: &str) -> Result<(), StartError> {
    let dir = store.open(id)?;
    let state = dir.load()?;
    lifecycle::start(&dir, &state)
}
