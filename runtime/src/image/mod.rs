//! OCI images on disk turned into overlay root filesystems (issue 12).
//!
//! - [`layout`]: an OCI image layout (or an `oci-archive` tar of one):
//!   `index.json`, manifest, config, every blob's sha256 checked as it is
//!   read.
//! - [`store`]: the content-addressed layer store, one directory per layer
//!   diff-id, filled under a lock by unpacking into a temporary directory
//!   that is renamed into place only once the blob checked out.
//! - [`unpack`]: tar extraction that cannot write outside its directory,
//!   OCI whiteouts turned into overlay whiteouts.
//! - [`bundle`]: the bundle's config.json from the image config.
//! - [`gc`]: `rtctr layers ls|prune`.
//! - [`overlay`]: at `create`, the overlay of the layers on root.path,
//!   with an upper and work dir of the container's own; undone at delete.

use std::io;
use std::path::{Path, PathBuf};

pub mod bundle;
pub mod gc;
pub mod layout;
pub mod overlay;
pub mod store;
pub mod unpack;
mod user;
mod zstd;

/// The annotation listing a bundle's layers, diff-ids bottom first,
/// comma-separated.
pub const LAYERS_ANNOTATION: &str = "rtctr.image.layers";
/// The annotation naming the layer store that holds them.
pub const STORE_ANNOTATION: &str = "rtctr.image.layer-store";
/// The default `--layer-store`.
pub const DEFAULT_STORE: &str = "/var/lib/rtctr/layers";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("blob {digest}: {reason}")]
    Blob { digest: String, reason: String },
    #[error("layer {digest}: entry {entry:?}: {reason}")]
    Entry {
        digest: String,
        entry: String,
        reason: String,
    },
    #[error("layer {digest}: {source}")]
    Layer {
        digest: String,
        #[source]
        source: io::Error,
    },
    #[error("image user {user:?}: {reason}")]
    User { user: String, reason: String },
    #[error("{0} exists: remove it first")]
    Exists(PathBuf),
    #[error("annotation {key}: {reason}")]
    Annotation { key: &'static str, reason: String },
}

pub(crate) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The hex part of a `sha256:<64 hex>` digest, or None for anything else.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(hex)
}

/// Lower-case hex of a digest output.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_accepts_only_lowercase_64_hex() {
        let ok = format!("sha256:{}", "a1".repeat(32));
        assert_eq!(sha256_hex(&ok), Some(&ok[7..]));
        assert_eq!(sha256_hex(&ok.to_uppercase()), None);
        assert_eq!(sha256_hex("sha256:abc"), None);
        assert_eq!(sha256_hex(&format!("sha512:{}", "a1".repeat(32))), None);
        assert_eq!(sha256_hex(&format!("sha256:../{}", "a".repeat(61))), None);
    }
}
