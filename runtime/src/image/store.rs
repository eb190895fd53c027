//! The layer store (`--layer-store`, default /var/lib/rtctr/layers):
//!
//! ```text
//! lock                 flock'd (exclusive) while layers are unpacked
//! gc.lock              flock'd shared by bundle and create, exclusive by prune
//! sha256/<hex>/        one unpacked layer per diff-id, never changed once there
//! tmp/                 unpacks in progress (a leftover is an interrupted one)
//! images/<hex>.json    the images bundled (manifest digest): name, layers
//! containers/<id>/     a container's upper/ and work/ dirs, and layers.json
//! ```
//!
//! A layer directory appears by rename(2) of a finished, checked unpack,
//! so its existence means it is complete: a second bundle of an image
//! reads no layer again.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;
use serde::{Deserialize, Serialize};

use super::layout::{Hashing, Image, Verified};
use super::{io_err, sha256_hex, unpack, ImageError};

pub struct LayerStore {
    root: PathBuf,
}

/// The store's lock, held while it lives.
pub struct Locked(#[allow(dead_code)] File);

/// What the store keeps about a bundled image.
#[derive(Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    pub name: Option<String>,
    pub manifest: String,
    /// Diff-ids, bottom first.
    pub layers: Vec<String>,
}

impl LayerStore {
    /// Opens the store, making its directories if missing. The path is made
    /// absolute: bundles name it in their config.
    pub fn open(root: &Path) -> Result<LayerStore, ImageError> {
        for sub in ["sha256", "tmp", "images", "containers"] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        let root = std::fs::canonicalize(root).map_err(io_err("layer store", root))?;
        Ok(LayerStore { root })
    }

    /// The store at `root` (absolute), as a bundle's annotation names it:
    /// nothing made or resolved (create's hot path).
    pub fn at(root: &Path) -> LayerStore {
        LayerStore {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The unpack lock: one bundle unpacks at a time.
    pub fn lock(&self) -> Result<Locked, ImageError> {
        self.flock("lock", rustix::fs::FlockOperation::LockExclusive)
    }

    /// The gc lock: shared by those that add to the store or use its
    /// layers (bundle, create), so that they do not wait on each other;
    /// exclusive for `layers prune`.
    pub fn gc_lock(&self, exclusive: bool) -> Result<Locked, ImageError> {
        use rustix::fs::FlockOperation::{LockExclusive, LockShared};
        self.flock(
            "gc.lock",
            if exclusive { LockExclusive } else { LockShared },
        )
    }

    fn flock(&self, name: &str, op: rustix::fs::FlockOperation) -> Result<Locked, ImageError> {
        let path = self.root.join(name);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        rustix::fs::flock(f.as_fd(), op).map_err(|e| io_err("lock", &path)(e.into()))?;
        Ok(Locked(f))
    }

    /// The directory of the layer with this diff-id (a sha256 digest).
    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        let hex = sha256_hex(diff_id).ok_or_else(|| ImageError::Annotation {
            key: super::LAYERS_ANNOTATION,
            reason: format!("{diff_id:?} is not a sha256 digest"),
        })?;
        Ok(self.root.join("sha256").join(hex))
    }

    /// Unpacks the image's layers that are not in the store yet; returns how
    /// many it unpacked. Holds the lock throughout, so a concurrent bundle
    /// of the same image waits, then finds them there.
    pub fn add_image(&self, image: &Image) -> Result<usize, ImageError> {
        let _gc = self.gc_lock(false)?;
        let _lock = self.lock()?;
        self.clean_tmp();
        let mut unpacked = 0;
        for (desc, diff_id) in image.layers() {
            let dir = self.layer_dir(diff_id)?;
            if dir.is_dir() {
                continue;
            }
            let tmp = self
                .root
                .join("tmp")
                .join(dir.file_name().unwrap_or_default());
            std::fs::create_dir(&tmp).map_err(io_err("create", &tmp))?;
            match unpack_layer(&image.dir, desc, diff_id, &tmp) {
                Ok(()) => std::fs::rename(&tmp, &dir).map_err(io_err("rename", &tmp))?,
                Err(e) => {
                    remove_all(&tmp);
                    return Err(e);
                }
            }
            unpacked += 1;
        }
        self.record_image(image)?;
        Ok(unpacked)
    }

    /// Leftovers of interrupted unpacks (called with the lock held, so no
    /// unpack is in progress).
    fn clean_tmp(&self) {
        let tmp = self.root.join("tmp");
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            // Only layer unpacks and prunes: an archive-* dir is a live
            // bundle's.
            let layers = rd.flatten().filter(|e| {
                let name = e.file_name();
                name.len() == 64 || name.to_string_lossy().starts_with("prune-")
            });
            for e in layers {
                log::debug!("remove an interrupted unpack: {}", e.path().display());
                remove_all(&e.path());
            }
        }
    }

    fn record_image(&self, image: &Image) -> Result<(), ImageError> {
        let hex = sha256_hex(&image.manifest_digest).unwrap_or_default();
        let rec = ImageRecord {
            name: image.name.clone(),
            manifest: image.manifest_digest.clone(),
            layers: image.layers().map(|(_, d)| d.clone()).collect(),
        };
        let path = self.root.join("images").join(format!("{hex}.json"));
        let json = serde_json::to_vec_pretty(&rec).unwrap_or_default();
        if std::fs::read(&path).is_ok_and(|old| old == json) {
            return Ok(()); // bundled before: no write on the fast path
        }
        crate::state::write_atomic(&path, &json).map_err(|e| ImageError::Io {
            what: "write",
            path,
            source: io::Error::other(e.to_string()),
        })
    }
}

/// One layer blob into `dest`: decompressed (gzip, zstd or none, told
/// by its first bytes), extracted, then both its blob digest and its
/// diff-id checked; the caller removes `dest` on error.
fn unpack_layer(
    dir: &Path,
    desc: &Descriptor,
    diff_id: &str,
    dest: &Path,
) -> Result<(), ImageError> {
    let digest = desc.digest().to_string();
    let blob_err = |e: io::Error| ImageError::Blob {
        digest: digest.clone(),
        reason: e.to_string(),
    };
    let mut blob = io::BufReader::new(Verified::open(dir, desc)?);
    let magic = io::BufRead::fill_buf(&mut blob).map_err(blob_err)?.to_vec();
    let stream: Box<dyn Read + '_> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(&mut blob))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(super::zstd::Frames::new(&mut blob))
    } else {
        Box::new(&mut blob)
    };
    let mut tar = Hashing::new(stream);
    unpack::unpack(&mut tar, dest, &digest, true)?;
    // The tar ends before its stream and the stream before its blob: read
    // both to the end, so that every byte is checked.
    io::copy(&mut tar, &mut io::sink()).map_err(blob_err)?;
    let got = tar.hex();
    drop(tar);
    io::copy(&mut blob, &mut io::sink()).map_err(blob_err)?;
    if sha256_hex(diff_id) != Some(got.as_str()) {
        return Err(ImageError::Blob {
            digest,
            reason: format!(
                "its uncompressed content is sha256:{got}, the config's diff-id {diff_id}"
            ),
        });
    }
    Ok(())
}

pub(crate) fn remove_all(path: &Path) {
    if let Err(e) = std::fs::remove_dir_all(path) {
        if e.kind() != io::ErrorKind::NotFound {
            log::warn!("remove {}: {e}", path.display());
        }
    }
}
