//! `rtctr create`: a container from a bundle, its init waiting for `start`.

use crate::container::parent::{self, CreateError, CreateOptions};
use crate::state::Store;

pub fn create(store: &Store, opts: &CreateOptions) -> Result<(), CreateError> {
    parent::create(store, opts, None).map(drop)
}
