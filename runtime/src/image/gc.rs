//! `rtctr layers ls|prune`: what the layer store holds, who uses it, and
//! removing what nobody does. A layer is kept while a kept image (a
//! record in `images/`, written by `bundle`) or a live container names
//! it. A container is live while its state dir exists or its overlay is
//! mounted; a container dir with neither (its host rebooted, /run
//! cleared) is stale and `prune` removes it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::overlay::{self, Usage};
use super::store::{self, ImageRecord, LayerStore};
use super::{io_err, ImageError};

/// One layer of the store.
#[derive(Debug, Serialize)]
pub struct Layer {
    pub digest: String,
    /// Bytes on disk (du: allocated blocks, each inode once).
    pub size: u64,
    /// Names (or manifest digests) of the kept images that list it.
    pub images: Vec<String>,
    /// Ids of the live containers whose overlay uses it.
    pub containers: Vec<String>,
}

/// What `prune` removed.
#[derive(Debug, Default, Serialize)]
pub struct Pruned {
    pub layers: Vec<String>,
    pub bytes: u64,
    pub images: Vec<String>,
    pub stale_containers: Vec<String>,
}

struct Scan {
    images: Vec<(PathBuf, ImageRecord)>,
    live: BTreeMap<String, Vec<String>>,
    stale: Vec<(String, PathBuf)>,
    layers: BTreeSet<String>,
}

fn scan(store: &LayerStore) -> Result<Scan, ImageError> {
    let root = store.root();
    let mut images = Vec::new();
    for path in dir_entries(&root.join("images"))? {
        let rec = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<ImageRecord>(&b).ok());
        match rec {
            Some(rec) => images.push((path, rec)),
            None => log::warn!("layer store: unreadable image record {}", path.display()),
        }
    }
    let (mut live, mut stale) = (BTreeMap::new(), Vec::new());
    for dir in dir_entries(&root.join("containers"))? {
        let id = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let usage = std::fs::read(dir.join("layers.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Usage>(&b).ok());
        let alive =
            overlay::mounted(&dir).is_some() || usage.as_ref().is_some_and(|u| u.state.is_dir());
        match usage {
            Some(u) if alive => {
                live.insert(id, u.layers);
            }
            _ if alive => {
                live.insert(id, Vec::new());
            }
            _ => stale.push((id, dir)),
        }
    }
    let layers = dir_entries(&root.join("sha256"))?
        .iter()
        .filter_map(|p| {
            p.file_name()
                .map(|n| format!("sha256:{}", n.to_string_lossy()))
        })
        .collect();
    Ok(Scan {
        images,
        live,
        stale,
        layers,
    })
}

fn dir_entries(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let rd = std::fs::read_dir(dir).map_err(io_err("read", dir))?;
    let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    v.sort();
    Ok(v)
}

fn image_name(rec: &ImageRecord) -> String {
    rec.name.clone().unwrap_or_else(|| rec.manifest.clone())
}

pub fn list(store_root: &Path) -> Result<Vec<Layer>, ImageError> {
    if !store_root.join("sha256").is_dir() {
        return Ok(Vec::new()); // no store yet: nothing made by looking
    }
    let store = LayerStore::open(store_root)?;
    let scan = scan(&store)?;
    let mut out = Vec::new();
    for digest in &scan.layers {
        let images = scan
            .images
            .iter()
            .filter(|(_, r)| r.layers.contains(digest))
            .map(|(_, r)| image_name(r))
            .collect();
        let containers = scan
            .live
            .iter()
            .filter(|(_, l)| l.contains(digest))
            .map(|(id, _)| id.clone())
            .collect();
        out.push(Layer {
            digest: digest.clone(),
            size: du(&store.layer_dir(digest)?),
            images,
            containers,
        });
    }
    Ok(out)
}

/// Removes stale container dirs, then (with `all`, every image record
/// first) each layer no kept image and no live container names. The store
/// is locked throughout: no bundle or create runs meanwhile.
pub fn prune(store_root: &Path, all: bool) -> Result<Pruned, ImageError> {
    let store = LayerStore::open(store_root)?;
    let _lock = store.gc_lock(true)?;
    let scan = scan(&store)?;
    let mut pruned = Pruned::default();
    for (id, dir) in &scan.stale {
        store::remove_all(dir);
        pruned.stale_containers.push(id.clone());
    }
    let mut used: HashSet<&String> = scan.live.values().flatten().collect();
    for (path, rec) in &scan.images {
        if all {
            std::fs::remove_file(path).map_err(io_err("remove", path))?;
            pruned.images.push(image_name(rec));
        } else {
            used.extend(rec.layers.iter());
        }
    }
    for digest in scan.layers.iter().filter(|d| !used.contains(d)) {
        let dir = store.layer_dir(digest)?;
        let size = du(&dir);
        // Renamed out of sha256/ first: a layer is there whole or not at all.
        let doomed = store
            .root()
            .join("tmp")
            .join(format!("prune-{}", &digest[7..]));
        std::fs::rename(&dir, &doomed).map_err(io_err("rename", &dir))?;
        store::remove_all(&doomed);
        pruned.layers.push(digest.clone());
        pruned.bytes += size;
    }
    Ok(pruned)
}

/// Disk usage of a tree: allocated bytes, each inode counted once.
pub fn du(dir: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut HashSet<(u64, u64)>, total: &mut u64) {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return;
        };
        if seen.insert((m.dev(), m.ino())) {
            *total += m.blocks() * 512;
        }
        if m.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                walk(&e.path(), seen, total);
            }
        }
    }
    let (mut seen, mut total) = (HashSet::new(), 0);
    walk(dir, &mut seen, &mut total);
    total
}
