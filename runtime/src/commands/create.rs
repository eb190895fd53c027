//! `rtctr create`: a container from a bundle, its init waiting for `start`.

use crate::container::parent;
use crate::container::plan::CreateError;
pub use crate::container::plan::CreateOptions;
use crate::state::Store;

pub fn create(store: &Store, opts: &CreateOptions) -> Result<(), CreateError> {
    parent::create(store, opts, None).map(drop)
}

/// Closes every descriptor rtctr inherited past stdio and `--preserve-fds`
/// (call it first, before rtctr opens any of its own): the container init
/// forked later must not hold the caller's pipes and sockets until
/// `start`, as runc's init holds only its own.
pub fn close_inherited_fds(preserve_fds: u32) -> std::io::Result<()> {
    crate::sys::process::close_from(3 + preserve_fds)
}
