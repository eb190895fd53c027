//! The container's root filesystem. [`plan`] lists the mounts and device
//! nodes, [`plan_paths`] the read-only and masked paths; the steps apply
//! them in the order the kernel needs, up to pivot_root and a read-only `/`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{Linux, Spec};

use crate::spec::Config;

use crate::container::mounts::{Step, StepExt};
use crate::container::proc_files::{Proc, ProcFile};
use crate::container::{devices, mounts, resolve};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs {path}: {op}: {source}")]
    Root {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Mount(#[from] mounts::MountError),
    #[error(transparent)]
    Device(#[from] devices::DeviceError),
    #[error("{field} {path}: {op}: {source}")]
    Path {
        field: &'static str,
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("linux.sysctl.{key}: write {value:?}: {source}")]
    Sysctl {
        key: String,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("linux.sysctl: opening a private procfs to write through: {0}")]
    SysctlProcfs(#[source] io::Error),
}

fn root_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Root {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn nix_io(e: nix::Error) -> io::Error {
    e.into()
}

/// The rootfs bound onto itself, opened: every later path is resolved
/// inside it.
pub struct Root {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// Step 1: `/` and every mount under it become slaves (or stay private):
/// nothing the container mounts reaches the host, and none is shared,
/// which pivot_root needs of the rootfs's parent mount. Then the rootfs
/// becomes a bind mount of itself. `rootfsPropagation` is applied to the
/// container's `/` once it is one ([`enter`]): applied here, `shared`
/// would make the host's mounts shared again and `unbindable` would
/// forbid the bind.
fn prepare(rootfs: &Path) -> Result<Root, RootfsError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| root_err(Path::new("/"), "mount: set the propagation of /")(nix_io(e)))?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| root_err(rootfs, "mount --rbind onto itself")(nix_io(e)))?;
    let fd: OwnedFd = File::open(rootfs).map_err(root_err(rootfs, "open"))?.into();
    Ok(Root {
        path: rootfs.to_path_buf(),
        fd,
    })
}

/// Without a mount namespace of its own the container shares the host's:
/// leave `/` and its propagation alone, mount under the rootfs (delete
/// unmounts it all again, see [`unmount_under`]) and chroot.
fn open_shared(rootfs: &Path) -> Result<Root, RootfsError> {
    let fd: OwnedFd = File::open(rootfs).map_err(root_err(rootfs, "open"))?.into();
    Ok(Root {
        path: rootfs.to_path_buf(),
        fd,
    })
}

/// chroot into the rootfs (no mount namespace: pivot_root would move the
/// host's root).
fn chroot(root: &Root) -> Result<(), RootfsError> {
    let p = &root.path;
    nix::unistd::fchdir(root.fd.as_fd()).map_err(|e| root_err(p, "chdir")(nix_io(e)))?;
    nix::unistd::chroot(".").map_err(|e| root_err(p, "chroot")(nix_io(e)))?;
    nix::unistd::chdir("/").map_err(|e| root_err(p, "chdir /")(nix_io(e)))?;
    Ok(())
}

/// Lazily unmounts every mount at or below `dir` in the caller's mount
/// namespace, deepest first (cleanup for containers without their own).
pub fn unmount_under(dir: &Path) {
    let info = match procfs::process::Process::myself().and_then(|p| p.mountinfo()) {
        Ok(info) => info,
        Err(e) => {
            log::warn!("unmount under {}: read mountinfo: {e}", dir.display());
            return;
        }
    };
    let mut points: Vec<PathBuf> = info
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if let Err(e) = umount2(&p, MntFlags::MNT_DETACH) {
            log::debug!("unmount {}: {e}", p.display());
        }
    }
}

/// What [`mount_all`] does, in order.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub mounts: Vec<mounts::Planned>,
    /// The device nodes to create; none when /dev is itself a bind mount.
    pub devices: Option<Vec<devices::Node>>,
}

/// Plans `mounts` and the device nodes (pure but for `is_dir`, which
/// looks at bind sources).
pub fn plan(spec: &Spec, bundle: &Path, is_dir: mounts::IsDir) -> Result<Plan, RootfsError> {
    let list = spec.mounts().as_deref().unwrap_or_default();
    let mut mounts = mounts::plan(list, bundle, is_dir)?;
    let linux = spec.linux().as_ref();
    if let Some(label) = linux.and_then(|l| l.mount_label().as_deref()) {
        // Checked at create: SELinux runs.
        if !label.is_empty() {
            mounts::set_mount_label(&mut mounts, label);
        }
    }
    let dev_is_bind = mounts
        .iter()
        .any(|p| p.dest == Path::new("/dev") && matches!(p.op, mounts::MountOp::Bind { .. }));
    let devices = if dev_is_bind {
        None
    } else {
        let configured = spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default();
        Some(devices::plan(configured)?)
    };
    Ok(Plan { mounts, devices })
}

/// Step 2: `mounts` in order, then the devices (unless /dev is a bind).
pub fn mount_all(
    config: &Config,
    root: &Root,
    bundle: &Path,
    cgroup: Option<&rtctr_cgroups::Cgroup>,
    cgroupns: bool,
    idmapped: &[super::idmap::Idmapped],
) -> Result<(), RootfsError> {
    let plan = plan(&config.spec, bundle, &mounts::host_is_dir)?;
    let ctx = mounts::Ctx {
        root: root.fd.as_fd(),
        cgroup,
        cgroupns,
        idmapped,
    };
    for op in &plan.mounts {
        mounts::apply(&ctx, op)?;
    }
    if let Some(nodes) = &plan.devices {
        devices::create(root.fd.as_fd(), nodes)?;
        devices::symlinks(root.fd.as_fd())?;
    }
    Ok(())
}

/// Writes `linux.sysctl`. /proc/sys applies to the writer's namespaces,
/// and this runs in the container's, through rtctr's own procfs handle
/// (the container's /proc may be read-only, absent, or tampered with).
pub fn sysctl(linux: &Linux) -> Result<(), RootfsError> {
    let Some(sysctl) = linux.sysctl().as_ref() else {
        return Ok(());
    };
    if sysctl.is_empty() {
        return Ok(());
    }
    // One unmasked handle for the batch (global files need it).
    let proc_ = Proc::open_unmasked().map_err(RootfsError::SysctlProcfs)?;
    for (key, value) in sysctl {
        proc_
            .write(ProcFile::Sysctl(key), value)
            .map_err(|source| RootfsError::Sysctl {
                key: key.clone(),
                value: value.clone(),
                source,
            })?;
    }
    Ok(())
}

/// The host's /dev/null, opened and checked to really be the character
/// device 1:3 before it is bound over anything.
fn open_dev_null() -> io::Result<OwnedFd> {
    let f = File::options().read(true).open("/dev/null")?;
    let meta = f.metadata()?;
    if !meta.file_type().is_char_device() || meta.rdev() != nix::sys::stat::makedev(1, 3) {
        return Err(io::Error::other(
            "/dev/null is not the null device (char 1:3)",
        ));
    }
    Ok(f.into())
}

/// Where a path of `linux.readonlyPaths` or `linux.maskedPaths` came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PathKind {
    /// Becomes a read-only bind of itself.
    Readonly,
    /// A file gets /dev/null bound over it, a directory an empty read-only
    /// tmpfs (which of the two is known only once the mounts are made).
    Masked,
}

impl PathKind {
    fn field(self) -> &'static str {
        match self {
            PathKind::Readonly => "linux.readonlyPaths",
            PathKind::Masked => "linux.maskedPaths",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PathOp {
    pub kind: PathKind,
    pub path: String,
}

/// `linux.readonlyPaths`, then `linux.maskedPaths`.
pub fn plan_paths(spec: &Spec) -> Vec<PathOp> {
    let linux = spec.linux().as_ref();
    let readonly = linux.and_then(|l| l.readonly_paths().as_deref());
    let masked = linux.and_then(|l| l.masked_paths().as_deref());
    let with = |kind| {
        move |path: &String| PathOp {
            kind,
            path: path.clone(),
        }
    };
    (readonly
        .unwrap_or_default()
        .iter()
        .map(with(PathKind::Readonly)))
    .chain(
        masked
            .unwrap_or_default()
            .iter()
            .map(with(PathKind::Masked)),
    )
    .collect()
}

/// Read-only and masked paths, in [`plan_paths`] order (after the
/// createContainer hooks, which may still write there). Paths missing in
/// the container are skipped.
pub fn protect_paths(spec: &Spec, root: BorrowedFd<'_>) -> Result<(), RootfsError> {
    let dev_null = open_dev_null().map_err(|source| RootfsError::Path {
        field: "linux.maskedPaths",
        path: "/dev/null".into(),
        op: "open",
        source,
    })?;
    for p in plan_paths(spec) {
        protect(root, &p, &dev_null).map_err(|(op, source)| RootfsError::Path {
            field: p.kind.field(),
            path: p.path.clone(),
            op,
            source,
        })?;
    }
    Ok(())
}

fn protect(root: BorrowedFd<'_>, p: &PathOp, dev_null: &OwnedFd) -> Step {
    let path = Path::new(&p.path);
    let fd = match resolve::open_path(root, path, true) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(("open", e)),
    };
    let target = resolve::fd_path(&fd);
    match p.kind {
        PathKind::Readonly => {
            let rec = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(Some(&target), &target, None::<&str>, rec, None::<&str>).op("bind")?;
            let mounted = resolve::open_path(root, path, true).op("reopen")?;
            let flags =
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mounts::remount_bind(&resolve::fd_path(&mounted), flags).op("remount read-only")
        }
        PathKind::Masked => mask(&fd, &target, dev_null),
    }
}

fn mask(fd: &OwnedFd, target: &Path, dev_null: &OwnedFd) -> Step {
    let st = nix::sys::stat::fstat(fd.as_fd()).op("stat")?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let (tmpfs, data) = (Some("tmpfs"), Some("size=0,nr_inodes=1"));
        mount(tmpfs, target, tmpfs, MsFlags::MS_RDONLY, data).op("mount tmpfs")
    } else {
        let null = resolve::fd_path(dev_null);
        mount(
            Some(&null),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .op("bind /dev/null")
    }
}

/// Step 3: make the rootfs `/`. pivot_root(".", ".") stacks the old root
/// under the new one; it is then made a slave (so the unmount does not
/// propagate to the host) and lazily unmounted.
fn pivot(root: &Root) -> Result<(), RootfsError> {
    let old = File::open("/").map_err(root_err(Path::new("/"), "open"))?;
    let p = &root.path;
    nix::unistd::fchdir(root.fd.as_fd()).map_err(|e| root_err(p, "chdir")(nix_io(e)))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| root_err(p, "pivot_root")(nix_io(e)))?;
    nix::unistd::fchdir(old.as_fd()).map_err(|e| root_err(p, "chdir old root")(nix_io(e)))?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| root_err(p, "mount --make-rslave the old root")(nix_io(e)))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| root_err(p, "umount the old root")(nix_io(e)))?;
    nix::unistd::chdir("/").map_err(|e| root_err(p, "chdir /")(nix_io(e)))?;
    Ok(())
}

/// `--no-pivot`: move the rootfs over `/` and chroot into it.
fn move_root(root: &Root) -> Result<(), RootfsError> {
    let p = &root.path;
    nix::unistd::fchdir(root.fd.as_fd()).map_err(|e| root_err(p, "chdir")(nix_io(e)))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| root_err(p, "mount --move to /")(nix_io(e)))?;
    nix::unistd::chroot(".").map_err(|e| root_err(p, "chroot")(nix_io(e)))?;
    nix::unistd::chdir("/").map_err(|e| root_err(p, "chdir /")(nix_io(e)))?;
    Ok(())
}

/// `root.readonly`: remount `/` read-only (after the pivot).
fn readonly_root() -> Result<(), RootfsError> {
    mounts::remount_bind(Path::new("/"), MsFlags::MS_RDONLY)
        .map_err(root_err(Path::new("/"), "mount -o remount,ro"))
}

/// Step 1, with or without a mount namespace of the container's own.
pub fn prepare_root(rootfs: &Path, own_mounts: bool) -> Result<Root, RootfsError> {
    if own_mounts {
        prepare(rootfs)
    } else {
        open_shared(rootfs)
    }
}

/// Step 3: the rootfs becomes `/` (chroot without a mount namespace of
/// the container's own, whose `/` is the host's and never remounted), with
/// `linux.rootfsPropagation` and `root.readonly`.
pub fn enter(
    root: Root,
    config: &Config,
    own_mounts: bool,
    no_pivot: bool,
) -> Result<(), RootfsError> {
    if !own_mounts {
        return chroot(&root);
    }
    if no_pivot {
        move_root(&root)?;
    } else {
        pivot(&root)?;
    }
    drop(root);
    set_root_propagation(&config.linux)?;
    if config.root_readonly {
        readonly_root()?;
    }
    Ok(())
}

/// `linux.rootfsPropagation` on the container's `/` (validated: a known
/// name or empty).
fn set_root_propagation(linux: &Linux) -> Result<(), RootfsError> {
    let name = linux.rootfs_propagation().as_deref().unwrap_or_default();
    let Some(flags) = mounts::propagation_flag(name) else {
        return Ok(());
    };
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(|e| root_err(Path::new("/"), "mount: set linux.rootfsPropagation of /")(nix_io(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    fn all_dirs(_: &Path) -> io::Result<bool> {
        Ok(true)
    }

    fn plan_of(v: serde_json::Value) -> Plan {
        plan(&spec(v), Path::new("/bundle"), &all_dirs).unwrap()
    }

    #[test]
    fn devices_are_created_unless_dev_is_a_bind() {
        let tmpfs = plan_of(serde_json::json!({"mounts": [
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}
        ]}));
        assert_eq!(tmpfs.devices.map(|d| d.len()), Some(6));
        for dev in [
            serde_json::json!({"destination": "/dev", "type": "bind", "source": "/dev"}),
            serde_json::json!({"destination": "/dev/", "type": "none", "source": "/dev", "options": ["rbind"]}),
        ] {
            let p = plan_of(serde_json::json!({"mounts": [dev],
                "linux": {"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}}));
            assert_eq!(p.devices, None, "{dev}");
        }
        let bind_below_dev = plan_of(serde_json::json!({"mounts": [
            {"destination": "/dev/fuse", "type": "bind", "source": "/dev/fuse"}
        ]}));
        assert!(bind_below_dev.devices.is_some());
    }

    #[test]
    fn the_mount_label_goes_to_new_filesystems_but_proc_sysfs_mqueue() {
        let p = plan_of(serde_json::json!({
            "ociVersion": "1.2.0",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs"},
                {"destination": "/b", "type": "bind", "source": "/x", "options": ["rbind"]}
            ],
            "linux": {"mountLabel": "system_u:object_r:container_file_t:s0:c1,c2"}
        }));
        let data: Vec<Option<&str>> = p
            .mounts
            .iter()
            .filter_map(|m| match &m.op {
                mounts::MountOp::Filesystem(fs) => Some(fs.data.as_deref()),
                _ => None,
            })
            .collect();
        let label = "context=\"system_u:object_r:container_file_t:s0:c1,c2\"";
        assert_eq!(
            data,
            [
                None,
                Some(format!("mode=755,{label}").as_str()),
                Some(label),
                None,
                None
            ]
        );
    }

    #[test]
    fn plan_errors_name_their_field() {
        let s =
            spec(serde_json::json!({"linux": {"devices": [{"path": "/dev/all", "type": "a"}]}}));
        let err = plan(&s, Path::new("/bundle"), &all_dirs).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.devices[0].type: \"a\" is not a device type"
        );
    }

    #[test]
    fn readonly_paths_come_before_masked_ones_and_none_is_dropped() {
        let s = spec(serde_json::json!({"linux": {
            "maskedPaths": ["/proc/keys", "/sys/firmware", "/proc/nonexistent", "/proc/keys"],
            "readonlyPaths": ["/proc/sys", "/proc/bus"]
        }}));
        let ops = plan_paths(&s);
        let planned: Vec<(PathKind, &str)> =
            ops.iter().map(|p| (p.kind, p.path.as_str())).collect();
        assert_eq!(
            planned,
            [
                (PathKind::Readonly, "/proc/sys"),
                (PathKind::Readonly, "/proc/bus"),
                (PathKind::Masked, "/proc/keys"),
                (PathKind::Masked, "/sys/firmware"),
                (PathKind::Masked, "/proc/nonexistent"),
                (PathKind::Masked, "/proc/keys"),
            ]
        );
        assert_eq!(PathKind::Masked.field(), "linux.maskedPaths");
        assert!(plan_paths(&spec(serde_json::json!({}))).is_empty());
        let masked_only = plan_paths(&spec(
            serde_json::json!({"linux": {"maskedPaths": ["/proc/kcore"]}}),
        ));
        assert_eq!(
            masked_only,
            [PathOp {
                kind: PathKind::Masked,
                path: "/proc/kcore".into()
            }]
        );
    }
}
