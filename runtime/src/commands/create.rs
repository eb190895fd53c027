//! `rtctr create`: a container from a bundle, its init waiting for `start`.

use crate::container::parent;
use crate::container::plan::CreateError;
pub use crate::container::plan::CreateOptions;
use crate::state::Store;

pub fn create(store: &Store, opts: &CreateOptions) -> Result<(), CreateError> {
    parent::create(store, opts, None).map(drop)
}
