//! `rtctr create`: a container from a bundle, its init waiting for `start`.

pub use crate::container::parent::CreateOptions;
use crate::container::parent::{self, CreateError};
use crate::state::Store;

pub fn create(store: &Store, opts: &CreateOptions) -> Result<(), CreateError> {
    parent::create(store, opts, None).map(drop)
}
