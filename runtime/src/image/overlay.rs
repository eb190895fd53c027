//! The root filesystem of a bundle made by `rtctr bundle`: at `create`,
//! an overlay of its layers (read-only, from the layer store) with an
//! upper and a work dir of the container's own
//! (`<store>/containers/<id>/`), mounted on root.path in rtctr's mount
//! namespace before anything else. The state records it first, so that
//! `delete`, `delete --force` and every failing create unmount it and
//! remove the container's dir; the layers stay.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

use super::store::{self, LayerStore};
use super::{io_err, ImageError, LAYERS_ANNOTATION, STORE_ANNOTATION};

/// What `create` will mount.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub target: PathBuf,
    /// Layer dirs, top first (overlay's lowerdir order).
    pub lowers: Vec<PathBuf>,
    /// Diff-ids, bottom first (as in the annotation).
    pub layers: Vec<String>,
    pub store: PathBuf,
    /// The container's own dir: upper/ and work/.
    pub dir: PathBuf,
}

/// What the state keeps, for `delete`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub target: PathBuf,
    pub dir: PathBuf,
}

/// The mount(2) data is one page.
const MAX_DATA: usize = 4095;

/// The overlay the annotations ask for, or None for a plain bundle. Every
/// layer must be in the store and root.path free.
pub fn plan(
    annotations: &HashMap<String, String>,
    rootfs: &Path,
    id: &str,
) -> Result<Option<Plan>, ImageError> {
    let Some(list) = annotations.get(LAYERS_ANNOTATION) else {
        return Ok(None);
    };
    let plan = plan_paths(annotations, list, rootfs, id)?;
    check_layers(&plan)?;
    if is_mount_root(rootfs) {
        return Err(ImageError::Invalid {
            path: rootfs.to_path_buf(),
            reason:
                "root.path has a mount on it already (is another container of this bundle running?)"
                    .into(),
        });
    }
    Ok(Some(plan))
}

fn check_layers(plan: &Plan) -> Result<(), ImageError> {
    for (lower, id) in plan.lowers.iter().zip(plan.layers.iter().rev()) {
        if !lower.is_dir() {
            return Err(ImageError::Annotation {
                key: LAYERS_ANNOTATION,
                reason: format!(
                    "layer {id} is not in the layer store {} (run rtctr bundle again)",
                    plan.store.display()
                ),
            });
        }
    }
    Ok(())
}

/// The pure part of [`plan`]: the annotations into paths.
fn plan_paths(
    annotations: &HashMap<String, String>,
    list: &str,
    rootfs: &Path,
    id: &str,
) -> Result<Plan, ImageError> {
    let bad = |key, reason: String| ImageError::Annotation { key, reason };
    let store = annotations
        .get(STORE_ANNOTATION)
        .map(PathBuf::from)
        .ok_or_else(|| {
            bad(
                STORE_ANNOTATION,
                format!("missing (needed with {LAYERS_ANNOTATION})"),
            )
        })?;
    let text = store.to_string_lossy();
    if !store.is_absolute() || text.contains([':', ',', '\\', '\n']) {
        return Err(bad(
            STORE_ANNOTATION,
            format!("{text:?} must be an absolute path without ':', ',' or '\\'"),
        ));
    }
    let layers: Vec<String> = list.split(',').map(str::to_string).collect();
    let mut lowers = Vec::new();
    for l in layers.iter().rev() {
        let hex = super::sha256_hex(l)
            .ok_or_else(|| bad(LAYERS_ANNOTATION, format!("{l:?} is not a sha256 digest")))?;
        lowers.push(store.join("sha256").join(hex));
    }
    let dir = store.join("containers").join(id);
    let plan = Plan {
        target: rootfs.to_path_buf(),
        lowers,
        layers,
        store,
        dir,
    };
    if plan.data().len() > MAX_DATA {
        return Err(bad(
            LAYERS_ANNOTATION,
            format!(
                "{} layers are too many for one overlay mount",
                plan.layers.len()
            ),
        ));
    }
    Ok(plan)
}

impl Plan {
    pub fn record(&self) -> Record {
        Record {
            target: self.target.clone(),
            dir: self.dir.clone(),
        }
    }

    fn data(&self) -> String {
        let lowers: Vec<String> = self
            .lowers
            .iter()
            .map(|l| l.display().to_string())
            .collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            self.dir.join("upper").display(),
            self.dir.join("work").display()
        )
    }
}

/// What `<store>/containers/<id>/layers.json` holds: the layers a
/// container uses, and its state dir (while that exists, the container
/// does, whatever mount namespace `rtctr layers` runs in).
#[derive(Debug, Serialize, Deserialize)]
pub struct Usage {
    pub layers: Vec<String>,
    pub state: PathBuf,
}

/// Makes the container's dir and mounts the overlay on root.path. A dir
/// of the same id left by a container that is gone is replaced. The store
/// is locked meanwhile: `layers prune` sees the container's dir before
/// it removes a layer, or the layer is gone and this fails by name.
pub fn mount(plan: &Plan, state_dir: &Path) -> Result<(), ImageError> {
    let store = LayerStore::at(&plan.store);
    let _lock = store.gc_lock(false)?;
    check_layers(plan)?;
    if plan.dir.symlink_metadata().is_ok() {
        if mounted(&plan.dir).is_some() {
            return Err(ImageError::Invalid {
                path: plan.dir.clone(),
                reason: "is the upper dir of a mounted overlay (a container of this id in another --root?)".into(),
            });
        }
        store::remove_all(&plan.dir);
    }
    for d in [
        plan.dir.clone(),
        plan.dir.join("upper"),
        plan.dir.join("work"),
    ] {
        std::fs::create_dir(&d).map_err(io_err("create", &d))?;
    }
    let layers = plan.dir.join("layers.json");
    let usage = Usage {
        layers: plan.layers.clone(),
        // Absolute, whatever --root was: `layers` may run elsewhere.
        state: std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf()),
    };
    let json = serde_json::to_vec(&usage).unwrap_or_default();
    std::fs::write(&layers, json).map_err(io_err("write", &layers))?;
    nix::mount::mount(
        Some("overlay"),
        &plan.target,
        Some("overlay"),
        MsFlags::empty(),
        Some(plan.data().as_str()),
    )
    .map_err(|e| io_err("mount overlay on", &plan.target)(e.into()))
}

/// Unmounts the overlay (if it is still there: only the one whose upper
/// dir is the container's) and removes the container's dir.
pub fn unmount(record: &Record) {
    if let Some(point) = mounted(&record.dir) {
        if let Err(e) = nix::mount::umount2(&point, MntFlags::MNT_DETACH) {
            log::warn!("unmount the overlay on {}: {e}", point.display());
        }
    }
    store::remove_all(&record.dir);
}

/// Where the overlay whose upper dir is `dir/upper` is mounted, if it is.
pub fn mounted(dir: &Path) -> Option<PathBuf> {
    let upper = dir.join("upper");
    let info = procfs::process::Process::myself().and_then(|p| p.mountinfo());
    let info = match info {
        Ok(i) => i,
        Err(e) => {
            log::warn!("read mountinfo: {e}");
            return None;
        }
    };
    info.into_iter()
        .filter(|m| m.fs_type == "overlay")
        .find(|m| {
            m.super_options
                .get("upperdir")
                .cloned()
                .flatten()
                .as_deref()
                == Some(upper.to_string_lossy().as_ref())
        })
        .map(|m| m.mount_point)
}

/// Whether `path` is the root of a mount (statx STATX_ATTR_MOUNT_ROOT).
fn is_mount_root(path: &Path) -> bool {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags, CWD};
    match rustix::fs::statx(
        CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    ) {
        Ok(st) => st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(layers: &str, store: &str) -> HashMap<String, String> {
        [
            (LAYERS_ANNOTATION.to_string(), layers.to_string()),
            (STORE_ANNOTATION.to_string(), store.to_string()),
        ]
        .into()
    }

    #[test]
    fn lowers_are_top_first_and_paths_checked() {
        let (a, b) = (
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        );
        let list = format!("{a},{b}");
        let p = plan_paths(&ann(&list, "/s"), &list, Path::new("/b/rootfs"), "c1").unwrap();
        assert_eq!(
            p.lowers,
            [
                PathBuf::from(format!("/s/sha256/{}", "b".repeat(64))),
                PathBuf::from(format!("/s/sha256/{}", "a".repeat(64)))
            ]
        );
        assert_eq!(p.dir, PathBuf::from("/s/containers/c1"));
        assert!(p
            .data()
            .ends_with(",upperdir=/s/containers/c1/upper,workdir=/s/containers/c1/work"));
        let err = |list: &str, store: &str| {
            plan_paths(&ann(list, store), list, Path::new("/r"), "c")
                .unwrap_err()
                .to_string()
        };
        assert!(err(&a, "rel/store").contains(STORE_ANNOTATION));
        assert!(err(&a, "/s:x").contains(STORE_ANNOTATION));
        assert!(err("sha256:../../etc", "/s").contains("not a sha256 digest"));
        let many = vec![a.as_str(); 60].join(",");
        assert!(err(&many, "/s").contains("too many"));
    }
}
