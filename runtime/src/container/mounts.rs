//! `mounts` of the config: options parsed into flags (pure, unit-tested),
//! then applied one by one onto targets resolved inside the root.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use crate::container::resolve;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mounts[{index}] ({dest}): option {option:?} is not supported")]
    Unsupported {
        index: usize,
        dest: String,
        option: String,
    },
    #[error("mounts[{index}]: {op} {dest}: {source}")]
    Op {
        index: usize,
        op: &'static str,
        dest: String,
        #[source]
        source: io::Error,
    },
}

/// What the options of one mount mean to the kernel.
#[derive(Debug, PartialEq)]
pub struct Options {
    /// Flags for mount(2).
    pub flags: MsFlags,
    /// Flags the options explicitly clear (for bind remounts).
    pub cleared: MsFlags,
    /// Propagation changes, applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// mount_setattr attributes to set/clear recursively (`rro`, ...).
    pub rec_set: u64,
    pub rec_clear: u64,
    /// Filesystem-specific options ("mode=755,size=64k").
    pub data: String,
    pub bind: bool,
    /// runc's `tmpcopyup`: fill a new tmpfs with what the image had there.
    pub copy_up: bool,
}

/// Parses mount options as runc does; unknown words go to `data`.
pub fn parse_options(options: &[String]) -> Result<Options, String> {
    let mut o = Options {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        rec_set: 0,
        rec_clear: 0,
        data: String::new(),
        bind: false,
        copy_up: false,
    };
    let mut data = Vec::new();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "bind" => {
                o.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                o.bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.propagation
                    .push(propagation_flag(opt).expect("listed above"));
                continue;
            }
            "tmpcopyup" => {
                o.copy_up = true;
                continue;
            }
            "idmap" | "ridmap" => return Err(opt.clone()),
            other => {
                if let Some((set, clear)) = recursive_attr(other) {
                    o.rec_set |= set;
                    o.rec_clear |= clear;
                } else {
                    data.push(other.to_string());
                }
                continue;
            }
        };
        o.flags |= set;
        o.flags &= !clear;
        o.cleared |= clear;
    }
    o.data = data.join(",");
    Ok(o)
}

/// `shared`, `rslave`, ... as mount(2) flags.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Recursive mount attributes (`rro`, `rnosuid`, ...), applied with
/// mount_setattr(AT_RECURSIVE): (set, clear).
fn recursive_attr(name: &str) -> Option<(u64, u64)> {
    const RDONLY: u64 = libc::MOUNT_ATTR_RDONLY;
    const NOSUID: u64 = libc::MOUNT_ATTR_NOSUID;
    const NODEV: u64 = libc::MOUNT_ATTR_NODEV;
    const NOEXEC: u64 = libc::MOUNT_ATTR_NOEXEC;
    const ATIME: u64 = libc::MOUNT_ATTR__ATIME;
    const NODIRATIME: u64 = libc::MOUNT_ATTR_NODIRATIME;
    const NOSYMFOLLOW: u64 = libc::MOUNT_ATTR_NOSYMFOLLOW;
    Some(match name {
        "rro" => (RDONLY, 0),
        "rrw" => (0, RDONLY),
        "rnosuid" => (NOSUID, 0),
        "rsuid" => (0, NOSUID),
        "rnodev" => (NODEV, 0),
        "rdev" => (0, NODEV),
        "rnoexec" => (NOEXEC, 0),
        "rexec" => (0, NOEXEC),
        "rnodiratime" => (NODIRATIME, 0),
        "rdiratime" => (0, NODIRATIME),
        "rrelatime" => (libc::MOUNT_ATTR_RELATIME, ATIME),
        "rnorelatime" => (0, ATIME),
        "rnoatime" => (libc::MOUNT_ATTR_NOATIME, ATIME),
        "ratime" => (0, ATIME),
        "rstrictatime" => (libc::MOUNT_ATTR_STRICTATIME, ATIME),
        "rnostrictatime" => (0, ATIME),
        "rnosymfollow" => (NOSYMFOLLOW, 0),
        "rsymfollow" => (0, NOSYMFOLLOW),
        _ => return None,
    })
}

/// Mount option names rtctr understands (for `features`).
pub const OPTION_NAMES: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
];

/// Everything a mount needs from its surroundings.
pub struct Ctx<'a> {
    pub root: BorrowedFd<'a>,
    pub bundle: &'a Path,
    /// The container's cgroup, for `type: cgroup` mounts.
    pub cgroup: Option<&'a rtctr_cgroups::Cgroup>,
    /// A new cgroup namespace: cgroupfs can be mounted fresh.
    pub cgroupns: bool,
}

pub fn apply(ctx: &Ctx, index: usize, m: &Mount) -> Result<(), MountError> {
    let dest = m.destination().display().to_string();
    let opts = parse_options(m.options().as_deref().unwrap_or_default()).map_err(|option| {
        MountError::Unsupported {
            index,
            dest: dest.clone(),
            option,
        }
    })?;
    let op_err = |op: &'static str| {
        let dest = dest.clone();
        move |source: io::Error| MountError::Op {
            index,
            op,
            dest,
            source,
        }
    };
    let typ = m.typ().as_deref().unwrap_or("");
    let is_bind = opts.bind || typ == "bind";
    if typ == "cgroup" && !is_bind {
        return mount_cgroup(ctx, m.destination(), &opts).map_err(op_err("mount cgroup"));
    }
    let source: Option<PathBuf> = m.source().as_ref().map(|s| {
        if is_bind && s.is_relative() {
            ctx.bundle.join(s)
        } else {
            s.clone()
        }
    });
    let target = if is_bind {
        let src = source.as_deref().unwrap_or(Path::new(""));
        let meta = std::fs::metadata(src).map_err(op_err("stat bind source"))?;
        if meta.is_dir() {
            resolve::mkdir_all(ctx.root, m.destination(), 0o755)
        } else {
            resolve::create_file(ctx.root, m.destination())
        }
    } else {
        resolve::mkdir_all(ctx.root, m.destination(), 0o755)
    }
    .map_err(op_err("create mount point"))?;
    let target_path = resolve::fd_path(&target);
    if is_bind {
        let src = source.as_deref().unwrap_or(Path::new(""));
        let rec = opts.flags & MsFlags::MS_REC;
        mount(
            Some(src),
            &target_path,
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .map_err(|e| op_err("bind mount")(e.into()))?;
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() || !opts.cleared.is_empty() {
            // The fd still names the covered directory: reopen the target.
            let mounted = resolve::open_path(ctx.root, m.destination(), false)
                .map_err(op_err("reopen mount point"))?;
            remount_bind(&resolve::fd_path(&mounted), extra).map_err(op_err("remount bind"))?;
        }
    } else {
        let src = source
            .as_deref()
            .map(|p| p.as_os_str())
            .unwrap_or(typ.as_ref());
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let flags = opts.flags & !MsFlags::MS_REMOUNT;
        // The directory underneath, still reachable through this fd once
        // the tmpfs covers it.
        let below = if opts.copy_up {
            Some(
                resolve::open(
                    ctx.root,
                    m.destination(),
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(op_err("open for tmpcopyup"))?,
            )
        } else {
            None
        };
        let result = mount(Some(src), &target_path, Some(typ), flags, data);
        if let (Ok(()), Some(below)) = (&result, &below) {
            let mounted = resolve::open_path(ctx.root, m.destination(), false)
                .map_err(op_err("reopen mount point"))?;
            copy_tree(&resolve::fd_path(below), &resolve::fd_path(&mounted))
                .map_err(op_err("tmpcopyup"))?;
        }
        match result {
            Ok(()) => {}
            // Without a netns of its own the kernel refuses a new sysfs:
            // bind the host's instead, as runc does.
            Err(nix::Error::EPERM) if typ == "sysfs" || typ == "mqueue" => {
                let host = if typ == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                };
                mount(
                    Some(host),
                    &target_path,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| op_err("bind mount")(e.into()))?;
                let mounted = resolve::open_path(ctx.root, m.destination(), false)
                    .map_err(op_err("reopen mount point"))?;
                remount_bind(&resolve::fd_path(&mounted), flags).map_err(op_err("remount bind"))?;
            }
            Err(e) => return Err(op_err("mount")(e.into())),
        }
    }
    if !opts.propagation.is_empty() || opts.rec_set != 0 || opts.rec_clear != 0 {
        let mounted = resolve::open_path(ctx.root, m.destination(), false)
            .map_err(op_err("reopen mount point"))?;
        for p in &opts.propagation {
            mount(
                None::<&str>,
                &resolve::fd_path(&mounted),
                None::<&str>,
                *p,
                None::<&str>,
            )
            .map_err(|e| op_err("set propagation")(e.into()))?;
        }
        if opts.rec_set != 0 || opts.rec_clear != 0 {
            crate::sys::mount::mount_setattr(mounted.as_fd(), true, opts.rec_set, opts.rec_clear)
                .map_err(op_err("mount_setattr"))?;
        }
    }
    Ok(())
}

/// Copies a directory tree (files, directories, symlinks; modes and
/// owners kept) — for `tmpcopyup`.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
    }
    let meta = std::fs::metadata(from)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()))
}

/// Remounts a bind mount with `flags`. The kernel refuses to drop flags
/// that are locked (e.g. nodev inherited in a user namespace): then retry
/// keeping the mount's current ones.
pub fn remount_bind(path: &Path, flags: MsFlags) -> io::Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(None::<&str>, path, None::<&str>, base | flags, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::Error::EPERM) => {
            let st = nix::sys::statvfs::statvfs(path)?;
            let mut keep = MsFlags::empty();
            use nix::sys::statvfs::FsFlags;
            for (f, m) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if st.flags().contains(f) {
                    keep |= m;
                }
            }
            mount(
                None::<&str>,
                path,
                None::<&str>,
                base | flags | keep,
                None::<&str>,
            )
            .map_err(io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// `type: cgroup`: the container's own cgroup at the destination. With a
/// cgroup namespace each hierarchy is mounted fresh (its root is the
/// container's cgroup); without one, the container's directories are bound.
fn mount_cgroup(ctx: &Ctx, dest: &Path, opts: &Options) -> io::Result<()> {
    let Some(cgroup) = ctx.cgroup else {
        return Ok(());
    };
    let flags = opts.flags & !(MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT | MsFlags::MS_BIND);
    let mounts = cgroup.mounts();
    let single_v2 = mounts.len() == 1 && mounts[0].fstype == "cgroup2" && mounts[0].name.is_empty();
    let mut to_seal = Vec::new();
    if !single_v2 {
        // v1 / hybrid: a tmpfs holding one directory per hierarchy.
        let dir = resolve::mkdir_all(ctx.root, dest, 0o755)?;
        mount(
            Some("tmpfs"),
            &resolve::fd_path(&dir),
            Some("tmpfs"),
            flags,
            Some("mode=755"),
        )?;
        to_seal.push(dest.to_path_buf());
    }
    for cm in &mounts {
        let sub = if cm.name.is_empty() {
            dest.to_path_buf()
        } else {
            dest.join(&cm.name)
        };
        let dir = resolve::mkdir_all(ctx.root, &sub, 0o755)?;
        let target = resolve::fd_path(&dir);
        if ctx.cgroupns {
            let data = (!cm.options.is_empty()).then_some(cm.options.as_str());
            mount(
                Some("cgroup"),
                &target,
                Some(cm.fstype.as_str()),
                flags,
                data,
            )?;
        } else {
            mount(
                Some(&cm.host_dir),
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
        }
        for link in &cm.symlinks {
            let parent = resolve::mkdir_all(ctx.root, dest, 0o755)?;
            match nix::unistd::symlinkat(cm.name.as_str(), parent.as_fd(), link.as_str()) {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        to_seal.push(sub);
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        // Sub-mounts first, the tmpfs last.
        for path in to_seal.iter().rev() {
            let fd = resolve::open_path(ctx.root, path, false)?;
            remount_bind(&resolve::fd_path(&fd), flags | MsFlags::MS_RDONLY)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(o: &[&str]) -> Options {
        parse_options(&o.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = opts(&["rbind", "ro", "rslave"]);
        assert!(o.bind);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        let o = opts(&["ro", "rw"]);
        assert_eq!(o.flags, MsFlags::empty());
        assert_eq!(o.cleared, MsFlags::MS_RDONLY);
    }

    #[test]
    fn recursive_attributes() {
        let o = opts(&["rbind", "rro", "rnosuid"]);
        assert_eq!(o.rec_set, libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID);
        assert!(o.data.is_empty());
    }

    #[test]
    fn unsupported_options_are_named() {
        let err = parse_options(&["idmap".to_string()]).unwrap_err();
        assert_eq!(err, "idmap");
    }
}
