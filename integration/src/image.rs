//! OCI image layouts written by tests and benchmarks (issue 12): layer
//! tars made with the `tar` crate (raw names, so malicious ones too),
//! gzip, zstd or plain; and helpers around `rtctr bundle` and overlays.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{rtctr_bin, Bundle, Out};

pub const MTIME: u64 = 1_600_000_000;

pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Clone, Copy)]
pub enum Comp {
    Plain,
    Gzip,
    Zstd,
}

/// A header with raw name bytes (the tar crate's setters refuse the
/// malicious paths these tests need).
pub fn header(kind: tar::EntryType, name: &[u8], size: u64, mode: u32, owner: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_mut_bytes()[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(owner);
    h.set_gid(owner);
    h.set_mtime(MTIME);
    h
}

pub struct Tar(pub tar::Builder<Vec<u8>>);

impl Default for Tar {
    fn default() -> Tar {
        Tar::new()
    }
}

impl Tar {
    pub fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }
    pub fn file(&mut self, name: &str, data: &[u8], mode: u32, owner: u64) -> &mut Self {
        let mut h = header(
            tar::EntryType::Regular,
            name.as_bytes(),
            data.len() as u64,
            mode,
            owner,
        );
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }
    pub fn dir(&mut self, name: &str, mode: u32, owner: u64) -> &mut Self {
        let mut h = header(tar::EntryType::Directory, name.as_bytes(), 0, mode, owner);
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }
    /// A symlink or hard link entry (`kind`) to `target`, raw.
    pub fn link(&mut self, kind: tar::EntryType, name: &str, target: &str) -> &mut Self {
        let mut h = header(kind, name.as_bytes(), 0, 0o777, 0);
        h.as_mut_bytes()[157..157 + target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }
    /// A PAX extended header for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = [b" ", k.as_bytes(), b"=", v, b"\n"].concat();
            // The length counts its own digits.
            let mut len = body.len() + 1;
            while len.to_string().len() + body.len() != len {
                len += 1;
            }
            data.extend_from_slice(len.to_string().as_bytes());
            data.extend_from_slice(&body);
        }
        let mut h = header(
            tar::EntryType::XHeader,
            b"PaxHeader",
            data.len() as u64,
            0o644,
            0,
        );
        h.set_cksum();
        self.0.append(&h, &data[..]).unwrap();
        self
    }
    /// A device node or fifo entry.
    pub fn node(
        &mut self,
        kind: tar::EntryType,
        name: &str,
        major: u32,
        minor: u32,
        mode: u32,
    ) -> &mut Self {
        let mut h = header(kind, name.as_bytes(), 0, mode, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }
    pub fn tree(&mut self, dir: &Path) -> &mut Self {
        self.0.follow_symlinks(false);
        self.0.append_dir_all(".", dir).unwrap();
        self
    }
    pub fn bytes(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

pub fn compress(raw: &[u8], comp: Comp) -> Vec<u8> {
    match comp {
        Comp::Plain => raw.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(raw, 3).unwrap(),
    }
}

/// An OCI image layout written by a test.
pub struct Image {
    pub dir: tempfile::TempDir,
    /// Layer blob digests and diff-ids, bottom first.
    pub blobs: Vec<String>,
    pub diff_ids: Vec<String>,
}

impl Image {
    pub fn write(layers: &[(Vec<u8>, Comp)], config: Value, tag: &str) -> Image {
        let dir = tempfile::Builder::new()
            .prefix("rtctr-img-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        let blob = |bytes: &[u8], media: &str| {
            let hex = sha256(bytes);
            std::fs::write(dir.path().join("blobs/sha256").join(&hex), bytes).unwrap();
            json!({"mediaType": media, "digest": format!("sha256:{hex}"), "size": bytes.len()})
        };
        let (mut descs, mut blobs, mut diff_ids) = (vec![], vec![], vec![]);
        for (raw, comp) in layers {
            let media = match comp {
                Comp::Plain => "application/vnd.oci.image.layer.v1.tar",
                Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            };
            let d = blob(&compress(raw, *comp), media);
            blobs.push(d["digest"].as_str().unwrap().to_string());
            diff_ids.push(format!("sha256:{}", sha256(raw)));
            descs.push(d);
        }
        let config = json!({
            "architecture": "amd64", "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = blob(
            &serde_json::to_vec(&config).unwrap(),
            "application/vnd.oci.image.config.v1+json",
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": descs,
        });
        let mut m = blob(
            &serde_json::to_vec(&manifest).unwrap(),
            "application/vnd.oci.image.manifest.v1+json",
        );
        m["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        let index = json!({"schemaVersion": 2, "manifests": [m]});
        std::fs::write(dir.path().join("index.json"), index.to_string()).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Image {
            dir,
            blobs,
            diff_ids,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.path()
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..])
    }
}

pub fn bundle_cmd(store: &Path, image: &str, bundle: &Path) -> Command {
    let mut c = Command::new(rtctr_bin());
    c.arg("--layer-store")
        .arg(store)
        .args(["bundle", "--image", image])
        .arg(bundle)
        .stdin(Stdio::null());
    c
}

pub fn bundle(store: &Path, image: &str, bundle: &Path) -> Out {
    let o = bundle_cmd(store, image, bundle).output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The overlay mounted on `point`: its super options.
pub fn overlay_at(point: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| l.split_once(" - "))
        .find(|(pre, post)| pre.split(' ').nth(4) == point.to_str() && post.starts_with("overlay "))
        .map(|(_, post)| post.split(' ').nth(2).unwrap_or("").to_string())
}

pub fn option<'a>(opts: &'a str, key: &str) -> Option<&'a str> {
    opts.split(',')
        .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
}

pub fn as_bundle(dir: tempfile::TempDir) -> Bundle {
    let config =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    Bundle { dir, config }
}
