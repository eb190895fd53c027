//! An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/`), as
//! `podman save --format oci-dir`, `skopeo copy ... oci:DIR:TAG` and umoci
//! write it. Every blob is checked against its descriptor's size and
//! sha256 as it is read; a layer blob is streamed through [`Verified`],
//! which checks at its end.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use sha2::{Digest as _, Sha256};

use super::{io_err, sha256_hex, ImageError};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// index.json, manifests and configs are small; a bigger one is refused
/// rather than read into memory.
const MAX_JSON: u64 = 4 << 20;

/// An image picked from a layout: its manifest and config, both checked.
pub struct Image {
    pub dir: PathBuf,
    pub name: Option<String>,
    pub manifest_digest: String,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
}

impl Image {
    /// The layer descriptors with their diff-ids, bottom first.
    pub fn layers(&self) -> impl Iterator<Item = (&Descriptor, &String)> {
        self.manifest
            .layers()
            .iter()
            .zip(self.config.rootfs().diff_ids())
    }
}

/// Opens the image named `tag` (the `org.opencontainers.image.ref.name`
/// annotation in index.json), or the only one when `tag` is None.
pub fn open(dir: &Path, tag: Option<&str>) -> Result<Image, ImageError> {
    let index_path = dir.join("index.json");
    let index = read_limited(&index_path)?;
    let index: ImageIndex = parse(&index_path, &index)?;
    let desc = pick(&index_path, index.manifests(), tag)?;
    let desc = resolve_nested_index(dir, desc)?;
    let manifest: ImageManifest = parse_blob(dir, &desc)?;
    let config: ImageConfiguration = parse_blob(dir, manifest.config())?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(ImageError::Blob {
            digest: manifest.config().digest().to_string(),
            reason: format!(
                "rootfs.diff_ids lists {} layers, the manifest {}",
                diff_ids.len(),
                manifest.layers().len()
            ),
        });
    }
    for d in diff_ids {
        if sha256_hex(d).is_none() {
            return Err(ImageError::Blob {
                digest: manifest.config().digest().to_string(),
                reason: format!("rootfs.diff_ids: {d:?} is not a sha256 digest"),
            });
        }
    }
    Ok(Image {
        dir: dir.to_path_buf(),
        name: tag.map(str::to_string).or_else(|| ref_name(&desc)),
        manifest_digest: desc.digest().to_string(),
        manifest,
        config,
    })
}

fn ref_name(d: &Descriptor) -> Option<String> {
    d.annotations().as_ref()?.get(REF_NAME).cloned()
}

fn pick<'a>(
    path: &Path,
    manifests: &'a [Descriptor],
    tag: Option<&str>,
) -> Result<&'a Descriptor, ImageError> {
    let names = || {
        let n: Vec<String> = manifests.iter().filter_map(ref_name).collect();
        if n.is_empty() {
            "none".to_string()
        } else {
            n.join(", ")
        }
    };
    let invalid = |reason: String| ImageError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    match tag {
        Some(t) => manifests
            .iter()
            .find(|d| ref_name(d).as_deref() == Some(t))
            .ok_or_else(|| invalid(format!("no manifest is tagged {t:?} (tags: {})", names()))),
        None => match manifests {
            [one] => Ok(one),
            [] => Err(invalid("lists no manifest".into())),
            _ => Err(invalid(format!(
                "lists {} manifests: name one as DIR:TAG (tags: {})",
                manifests.len(),
                names()
            ))),
        },
    }
}

/// A tag may name an image index (a multi-platform image): take its
/// manifest for this host's platform.
fn resolve_nested_index(dir: &Path, desc: &Descriptor) -> Result<Descriptor, ImageError> {
    if *desc.media_type() != MediaType::ImageIndex {
        return Ok(desc.clone());
    }
    let index: ImageIndex = parse_blob(dir, desc)?;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    index
        .manifests()
        .iter()
        .find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                p.os().to_string() == "linux" && p.architecture().to_string() == arch
            })
        })
        .cloned()
        .ok_or_else(|| ImageError::Blob {
            digest: desc.digest().to_string(),
            reason: format!("the image index has no manifest for linux/{arch}"),
        })
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, ImageError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| ImageError::Invalid {
        path: path.to_path_buf(),
        reason: format!("{}: {}", e.path(), e.inner()),
    })
}

fn read_limited(path: &Path) -> Result<Vec<u8>, ImageError> {
    let f = File::open(path).map_err(io_err("open", path))?;
    let mut buf = Vec::new();
    f.take(MAX_JSON + 1)
        .read_to_end(&mut buf)
        .map_err(io_err("read", path))?;
    if buf.len() as u64 > MAX_JSON {
        return Err(ImageError::Invalid {
            path: path.to_path_buf(),
            reason: format!("larger than {MAX_JSON} bytes"),
        });
    }
    Ok(buf)
}

/// The path of a blob, for sha256 digests only.
pub fn blob_path(dir: &Path, desc: &Descriptor) -> Result<PathBuf, ImageError> {
    let digest = desc.digest().to_string();
    let hex = sha256_hex(&digest).ok_or_else(|| ImageError::Blob {
        digest: digest.clone(),
        reason: "only sha256 digests are supported".into(),
    })?;
    Ok(dir.join("blobs/sha256").join(hex))
}

fn parse_blob<T: serde::de::DeserializeOwned>(
    dir: &Path,
    desc: &Descriptor,
) -> Result<T, ImageError> {
    if desc.size() > MAX_JSON {
        return Err(ImageError::Blob {
            digest: desc.digest().to_string(),
            reason: format!("size {} is larger than {MAX_JSON} bytes", desc.size()),
        });
    }
    let mut r = Verified::open(dir, desc)?;
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).map_err(|e| ImageError::Blob {
        digest: desc.digest().to_string(),
        reason: e.to_string(),
    })?;
    parse(&blob_path(dir, desc)?, &buf)
}

/// A blob's reader that counts and hashes what passes through, and fails
/// (InvalidData) at its end, or past its size, when the blob does not match
/// its descriptor. Read it to the end.
pub struct Verified {
    file: io::Take<File>,
    hasher: Sha256,
    read: u64,
    size: u64,
    hex: String,
}

impl Verified {
    pub fn open(dir: &Path, desc: &Descriptor) -> Result<Verified, ImageError> {
        let path = blob_path(dir, desc)?;
        let digest = desc.digest().to_string();
        let file = File::open(&path).map_err(|e| ImageError::Blob {
            digest: digest.clone(),
            reason: format!("open {}: {e}", path.display()),
        })?;
        Ok(Verified {
            file: file.take(desc.size() + 1),
            hasher: Sha256::new(),
            read: 0,
            size: desc.size(),
            hex: sha256_hex(&digest).unwrap_or_default().to_string(),
        })
    }
}

impl Read for Verified {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read += n as u64;
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        if self.read > self.size {
            return Err(bad(format!("longer than its size {}", self.size)));
        }
        self.hasher.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            if self.read != self.size {
                return Err(bad(format!(
                    "truncated: {} of {} bytes",
                    self.read, self.size
                )));
            }
            let got = super::hex(&self.hasher.clone().finalize());
            if got != self.hex {
                return Err(bad(format!(
                    "content does not match the digest (sha256 is {got})"
                )));
            }
        }
        Ok(n)
    }
}

/// A reader that hashes what passes through (a layer's uncompressed
/// stream, to check its diff-id).
pub struct Hashing<R> {
    pub inner: R,
    hasher: Sha256,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
        }
    }

    pub fn hex(&self) -> String {
        super::hex(&self.hasher.clone().finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(name: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(
            MediaType::ImageManifest,
            1,
            oci_spec::image::Digest::try_from(format!("sha256:{}", "a".repeat(64))).unwrap(),
        );
        if let Some(n) = name {
            d.set_annotations(Some([(REF_NAME.to_string(), n.to_string())].into()));
        }
        d
    }

    #[test]
    fn pick_by_tag_or_the_only_one() {
        let p = Path::new("index.json");
        let one = [desc(None)];
        assert!(pick(p, &one, None).is_ok());
        let two = [desc(Some("a")), desc(Some("b"))];
        assert_eq!(
            ref_name(pick(p, &two, Some("b")).unwrap()).as_deref(),
            Some("b")
        );
        let err = pick(p, &two, None).unwrap_err().to_string();
        assert!(err.contains("2 manifests") && err.contains("a, b"), "{err}");
        let err = pick(p, &two, Some("c")).unwrap_err().to_string();
        assert!(err.contains("\"c\""), "{err}");
    }
}
