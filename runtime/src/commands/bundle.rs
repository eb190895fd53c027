//! `rtctr bundle --image DIR[:TAG] BUNDLE`: a bundle from an OCI image on
//! disk; its layers unpacked once into the layer store, shared by every
//! container of the image (docs/layers.md).

pub use crate::image::bundle::{BundleOptions, Bundled};
use crate::image::ImageError;
pub use crate::image::DEFAULT_STORE;

pub fn bundle(opts: &BundleOptions) -> Result<Bundled, ImageError> {
    let done = crate::image::bundle::bundle(opts)?;
    log::debug!(
        "bundle {}: {} layers, {} unpacked now",
        opts.bundle.display(),
        done.layers,
        done.unpacked
    );
    Ok(done)
}
