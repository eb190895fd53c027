//! `mounts` of the config: [`plan`] (pure) turns each entry into operations
//! (a new filesystem, a bind, a remount, cgroups, propagation and attributes);
//! [`apply`] performs one on its destination, resolved inside the root.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use crate::container::resolve;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mounts[{index}] ({dest}): filesystem {fstype:?} must be mounted on an ordinary directory{why}")]
    NotADirectory {
        index: usize,
        dest: PathBuf,
        fstype: String,
        why: &'static str,
    },
    #[error("mounts[{index}] ({dest}): bind source {path}: {source}")]
    BindSource {
        index: usize,
        dest: PathBuf,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mounts[{index}]: {op} {dest}: {source}")]
    Op {
        index: usize,
        op: &'static str,
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A failed step of one operation: what was done, and the kernel's answer
/// (the caller adds which mount, device or path it was for).
pub(crate) type Step<T = ()> = Result<T, (&'static str, io::Error)>;

pub(crate) trait StepExt<T> {
    fn op(self, op: &'static str) -> Step<T>;
}

impl<T, E: Into<io::Error>> StepExt<T> for Result<T, E> {
    fn op(self, op: &'static str) -> Step<T> {
        self.map_err(|e| (op, e.into()))
    }
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
pub fn parse_options(options: &[String]) -> Options {
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
        if let Some((set, clear)) = flag(opt) {
            o.bind |= set.contains(MsFlags::MS_BIND);
            o.flags |= set;
            o.flags &= !clear;
            o.cleared |= clear;
        } else if let Some(p) = propagation_flag(opt) {
            o.propagation.push(p);
        } else if let Some((set, clear)) = recursive_attr(opt) {
            o.rec_set |= set;
            o.rec_clear |= clear;
        } else if opt == "tmpcopyup" {
            o.copy_up = true;
        } else if super::idmap::is_idmap_option(opt) {
            // Made before the mount (container/idmap.rs), never passed on.
        } else {
            data.push(opt.as_str());
        }
    }
    o.data = data.join(",");
    o
}

/// mount(2) flags an option sets and clears.
fn flag(name: &str) -> Option<(MsFlags, MsFlags)> {
    let none = MsFlags::empty();
    Some(match name {
        "defaults" => (none, none),
        "ro" => (MsFlags::MS_RDONLY, none),
        "rw" => (none, MsFlags::MS_RDONLY),
        "nosuid" => (MsFlags::MS_NOSUID, none),
        "suid" => (none, MsFlags::MS_NOSUID),
        "nodev" => (MsFlags::MS_NODEV, none),
        "dev" => (none, MsFlags::MS_NODEV),
        "noexec" => (MsFlags::MS_NOEXEC, none),
        "exec" => (none, MsFlags::MS_NOEXEC),
        "sync" => (MsFlags::MS_SYNCHRONOUS, none),
        "async" => (none, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (MsFlags::MS_DIRSYNC, none),
        "remount" => (MsFlags::MS_REMOUNT, none),
        "mand" => (MsFlags::MS_MANDLOCK, none),
        "nomand" => (none, MsFlags::MS_MANDLOCK),
        "noatime" => (MsFlags::MS_NOATIME, none),
        "atime" => (none, MsFlags::MS_NOATIME),
        "nodiratime" => (MsFlags::MS_NODIRATIME, none),
        "diratime" => (none, MsFlags::MS_NODIRATIME),
        "relatime" => (MsFlags::MS_RELATIME, none),
        "norelatime" => (none, MsFlags::MS_RELATIME),
        "strictatime" => (MsFlags::MS_STRICTATIME, none),
        "nostrictatime" => (none, MsFlags::MS_STRICTATIME),
        "lazytime" => (MsFlags::MS_LAZYTIME, none),
        "nolazytime" => (none, MsFlags::MS_LAZYTIME),
        "silent" => (MsFlags::MS_SILENT, none),
        "loud" => (none, MsFlags::MS_SILENT),
        "iversion" => (MsFlags::MS_I_VERSION, none),
        "noiversion" => (none, MsFlags::MS_I_VERSION),
        "bind" => (MsFlags::MS_BIND, none),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, none),
        _ => return None,
    })
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
    "tmpcopyup",
    "idmap",
    "ridmap",
];

/// One operation on the mount at `dest`, from `mounts[index]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub index: usize,
    pub dest: PathBuf,
    pub op: MountOp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MountOp {
    /// A new filesystem on a directory.
    Filesystem(Filesystem),
    /// `source` (on the host) bound onto a file or directory target.
    Bind {
        source: PathBuf,
        recursive: bool,
        file: bool,
    },
    /// The bind at `dest` remounted with these flags (and MS_BIND|MS_REMOUNT).
    Remount { flags: MsFlags },
    /// `type: cgroup`: the container's cgroup hierarchies at `dest`.
    Cgroup { flags: MsFlags, readonly: bool },
    /// After the mount: propagation changes in order, then recursive
    /// mount_setattr attributes (when any is non-zero).
    Attributes {
        propagation: Vec<MsFlags>,
        set: u64,
        clear: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filesystem {
    pub fstype: String,
    pub source: PathBuf,
    pub flags: MsFlags,
    pub data: Option<String>,
    /// `tmpcopyup`: copy what the image has at `dest` into the new mount.
    pub copy_up: bool,
    /// Where the kernel refuses a new instance (sysfs or mqueue without a
    /// network or IPC namespace of its own), the host's one to bind instead.
    pub fallback: Option<PathBuf>,
    /// procfs and sysfs: the destination must be a real directory, reached
    /// through no symlink. procfs on a path the image chose would defeat
    /// LSM path rules (CVE-2019-16884, CVE-2019-19921); runc refuses too.
    pub plain_dir: bool,
}

/// Whether a host path is a directory (follows symlinks): bind sources.
pub type IsDir<'a> = &'a dyn Fn(&Path) -> io::Result<bool>;

/// The real [`IsDir`] probe.
pub fn host_is_dir(path: &Path) -> io::Result<bool> {
    Ok(std::fs::metadata(path)?.is_dir())
}

/// The operations for `mounts`, in order. Relative bind sources are taken
/// from `bundle`; `is_dir` tells whether a bind source is a directory.
pub fn plan(mounts: &[Mount], bundle: &Path, is_dir: IsDir) -> Result<Vec<Planned>, MountError> {
    let mut ops = Vec::new();
    for (index, m) in mounts.iter().enumerate() {
        let at = |op| Planned {
            index,
            dest: m.destination().clone(),
            op,
        };
        ops.extend(plan_one(index, m, bundle, is_dir)?.into_iter().map(at));
    }
    Ok(ops)
}

fn plan_one(
    index: usize,
    m: &Mount,
    bundle: &Path,
    is_dir: IsDir,
) -> Result<Vec<MountOp>, MountError> {
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    let is_bind = opts.bind || typ == "bind";
    if typ == "cgroup" && !is_bind {
        let flags = opts.flags & !(MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT | MsFlags::MS_BIND);
        let readonly = opts.flags.contains(MsFlags::MS_RDONLY);
        return Ok(vec![MountOp::Cgroup { flags, readonly }]);
    }
    let mut ops = if is_bind {
        plan_bind(&opts, m, bundle, is_dir).map_err(|(path, source)| MountError::BindSource {
            index,
            dest: m.destination().clone(),
            path,
            source,
        })?
    } else {
        vec![plan_filesystem(&opts, typ, m.source().as_deref())]
    };
    if !opts.propagation.is_empty() || opts.rec_set != 0 || opts.rec_clear != 0 {
        ops.push(MountOp::Attributes {
            propagation: opts.propagation,
            set: opts.rec_set,
            clear: opts.rec_clear,
        });
    }
    Ok(ops)
}

/// The bind, then a remount if the options set or clear flags. An error
/// names the source.
fn plan_bind(
    opts: &Options,
    m: &Mount,
    bundle: &Path,
    is_dir: IsDir,
) -> Result<Vec<MountOp>, (PathBuf, io::Error)> {
    let source = match m.source() {
        Some(s) if s.is_relative() => bundle.join(s),
        Some(s) => s.clone(),
        None => PathBuf::new(),
    };
    let file = match is_dir(&source) {
        Ok(dir) => !dir,
        Err(e) => return Err((source, e)),
    };
    let mut ops = vec![MountOp::Bind {
        source,
        recursive: opts.flags.contains(MsFlags::MS_REC),
        file,
    }];
    let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() || !opts.cleared.is_empty() {
        ops.push(MountOp::Remount { flags: extra });
    }
    Ok(ops)
}

fn plan_filesystem(opts: &Options, typ: &str, source: Option<&Path>) -> MountOp {
    let fallback = match typ {
        "sysfs" => Some(PathBuf::from("/sys")),
        "mqueue" => Some(PathBuf::from("/dev/mqueue")),
        _ => None,
    };
    MountOp::Filesystem(Filesystem {
        fstype: typ.to_string(),
        source: source.map_or_else(|| PathBuf::from(typ), Path::to_path_buf),
        flags: opts.flags & !MsFlags::MS_REMOUNT,
        data: (!opts.data.is_empty()).then(|| opts.data.clone()),
        copy_up: opts.copy_up,
        fallback,
        plain_dir: matches!(typ, "proc" | "sysfs"),
    })
}

/// `linux.mountLabel` as the `context=` option of the new filesystems that
/// take one (not procfs, sysfs or mqueue, whose labels are the kernel's
/// own), as runc gives it.
pub fn set_mount_label(ops: &mut [Planned], label: &str) {
    for p in ops {
        let MountOp::Filesystem(fs) = &mut p.op else {
            continue;
        };
        if matches!(fs.fstype.as_str(), "proc" | "sysfs" | "mqueue") {
            continue;
        }
        let context = format!("context=\"{label}\"");
        fs.data = Some(match fs.data.take() {
            Some(d) if !d.is_empty() => format!("{d},{context}"),
            _ => context,
        });
    }
}

/// Everything an operation needs from its surroundings.
pub struct Ctx<'a> {
    pub root: BorrowedFd<'a>,
    /// The container's cgroup, for `type: cgroup` mounts.
    pub cgroup: Option<&'a rtctr_cgroups::Cgroup>,
    /// A new cgroup namespace: cgroupfs can be mounted fresh.
    pub cgroupns: bool,
    /// Idmapped copies of bind sources, made by the runtime.
    pub idmapped: &'a [super::idmap::Idmapped],
}

/// Performs one planned operation.
pub fn apply(ctx: &Ctx, p: &Planned) -> Result<(), MountError> {
    let dest = p.dest.as_path();
    match &p.op {
        MountOp::Filesystem(fs) if fs.plain_dir => {
            let checked = check_plain_dir(ctx, p, fs)?;
            mount_filesystem(ctx, dest, fs, checked)
        }
        MountOp::Filesystem(fs) => mount_filesystem(ctx, dest, fs, None),
        MountOp::Bind {
            source,
            recursive,
            file,
        } => match super::idmap::find(ctx.idmapped, p.index) {
            Some(fd) => attach(ctx, dest, fd, *file),
            None => bind(ctx, dest, source, *recursive, *file),
        },
        MountOp::Remount { flags } => remount(ctx, dest, *flags),
        MountOp::Cgroup { flags, readonly } => {
            mount_cgroup(ctx, dest, *flags, *readonly).op("mount cgroup")
        }
        MountOp::Attributes {
            propagation,
            set,
            clear,
        } => set_attributes(ctx, dest, propagation, *set, *clear),
    }
    .map_err(|(op, source)| MountError::Op {
        index: p.index,
        op,
        dest: p.dest.clone(),
        source,
    })
}

/// The destination of a procfs or sysfs mount: a directory, or missing (it
/// is then created), with no symlink on the way (openat2
/// RESOLVE_NO_SYMLINKS: a dangling one is refused too). Returns the
/// directory, opened, to mount on; `None` when it is missing.
fn check_plain_dir(ctx: &Ctx, p: &Planned, fs: &Filesystem) -> Result<Option<OwnedFd>, MountError> {
    let refuse = |why| MountError::NotADirectory {
        index: p.index,
        dest: p.dest.clone(),
        fstype: fs.fstype.clone(),
        why,
    };
    match resolve::open_no_symlinks(ctx.root, &p.dest) {
        Ok(fd)
            if nix::sys::stat::fstat(fd.as_fd())
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) =>
        {
            Ok(Some(fd))
        }
        Ok(_) => Err(refuse(", not a file")),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(refuse(", not through a symlink")),
        Err(source) => Err(MountError::Op {
            index: p.index,
            op: "open mount point",
            dest: p.dest.clone(),
            source,
        }),
    }
}

/// The mount now at `dest` (a descriptor opened before the mount still
/// names the covered directory).
fn reopen(ctx: &Ctx, dest: &Path) -> Step<OwnedFd> {
    resolve::open_path(ctx.root, dest, false).op("reopen mount point")
}

/// `checked`: the destination, already opened by [`check_plain_dir`];
/// otherwise it is looked up (and made if missing) here.
fn mount_filesystem(ctx: &Ctx, dest: &Path, fs: &Filesystem, checked: Option<OwnedFd>) -> Step {
    let target = match checked {
        Some(fd) => fd,
        None => resolve::mkdir_all(ctx.root, dest, 0o755).op("create mount point")?,
    };
    let target_path = resolve::fd_path(&target);
    // Opened before the mount: the image's directory, still reachable
    // through this fd once the new filesystem covers it.
    let below = if fs.copy_up {
        Some(open_dir(ctx.root, dest).op("open for tmpcopyup")?)
    } else {
        None
    };
    let (fstype, data) = (Some(fs.fstype.as_str()), fs.data.as_deref());
    let result = mount(Some(&fs.source), &target_path, fstype, fs.flags, data);
    match (result, &fs.fallback) {
        (Ok(()), _) => match below {
            Some(below) => {
                let mounted = reopen(ctx, dest)?;
                copy_tree(&resolve::fd_path(&below), &resolve::fd_path(&mounted)).op("tmpcopyup")
            }
            None => Ok(()),
        },
        (Err(nix::Error::EPERM), Some(host)) => {
            let rec = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(Some(host), &target_path, None::<&str>, rec, None::<&str>).op("bind mount")?;
            remount(ctx, dest, fs.flags)
        }
        (Err(e), _) => Err(("mount", e.into())),
    }
}

fn open_dir(root: BorrowedFd<'_>, dest: &Path) -> io::Result<OwnedFd> {
    use nix::fcntl::OFlag;
    resolve::open(
        root,
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
}

fn bind(ctx: &Ctx, dest: &Path, source: &Path, recursive: bool, file: bool) -> Step {
    let target = if file {
        resolve::create_file(ctx.root, dest)
    } else {
        resolve::mkdir_all(ctx.root, dest, 0o755)
    }
    .op("create mount point")?;
    let mut flags = MsFlags::MS_BIND;
    flags.set(MsFlags::MS_REC, recursive);
    mount(
        Some(source),
        &resolve::fd_path(&target),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .op("bind mount")
}

/// An idmapped copy of a bind source attached in place of the bind.
fn attach(ctx: &Ctx, dest: &Path, fd: BorrowedFd<'_>, file: bool) -> Step {
    let target = if file {
        resolve::create_file(ctx.root, dest)
    } else {
        resolve::mkdir_all(ctx.root, dest, 0o755)
    }
    .op("create mount point")?;
    crate::sys::mount::move_mount(fd, target.as_fd()).op("move_mount the idmapped copy")
}

fn remount(ctx: &Ctx, dest: &Path, flags: MsFlags) -> Step {
    let mounted = reopen(ctx, dest)?;
    remount_bind(&resolve::fd_path(&mounted), flags).op("remount bind")
}

fn set_attributes(ctx: &Ctx, dest: &Path, propagation: &[MsFlags], set: u64, clear: u64) -> Step {
    let mounted = reopen(ctx, dest)?;
    let path = resolve::fd_path(&mounted);
    for p in propagation {
        mount(None::<&str>, &path, None::<&str>, *p, None::<&str>).op("set propagation")?;
    }
    if set != 0 || clear != 0 {
        crate::sys::mount::mount_setattr(mounted.as_fd(), true, set, clear).op("mount_setattr")?;
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
            let st = rustix::fs::statvfs(path)?;
            let mut keep = MsFlags::empty();
            use rustix::fs::StatVfsMountFlags as St;
            for (f, m) in [
                (St::NOSUID, MsFlags::MS_NOSUID),
                (St::NODEV, MsFlags::MS_NODEV),
                (St::NOEXEC, MsFlags::MS_NOEXEC),
                (St::RDONLY, MsFlags::MS_RDONLY),
                (St::NOATIME, MsFlags::MS_NOATIME),
                (St::NODIRATIME, MsFlags::MS_NODIRATIME),
                (St::RELATIME, MsFlags::MS_RELATIME),
            ] {
                if st.f_flag.contains(f) {
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
fn mount_cgroup(ctx: &Ctx, dest: &Path, flags: MsFlags, readonly: bool) -> io::Result<()> {
    let Some(cgroup) = ctx.cgroup else {
        return Ok(());
    };
    let mounts = cgroup.mounts();
    let single_v2 = mounts.len() == 1 && mounts[0].fstype == "cgroup2" && mounts[0].name.is_empty();
    let mut to_seal = Vec::new();
    let mut tmpfs_root = None;
    if !single_v2 {
        // v1 / hybrid: a tmpfs holding one directory per hierarchy.
        let dir = resolve::mkdir_all(ctx.root, dest, 0o755)?;
        let tmpfs = Some("tmpfs");
        mount(
            tmpfs,
            &resolve::fd_path(&dir),
            tmpfs,
            flags,
            Some("mode=755"),
        )?;
        to_seal.push(dest.to_path_buf());
        // The new tmpfs, opened once: the hierarchies' directories and
        // symlinks are made in it, not resolved from the root each time.
        tmpfs_root = Some(resolve::open_path(ctx.root, dest, false)?);
    }
    for cm in &mounts {
        let in_tmpfs = tmpfs_root.as_ref().map(|fd| fd.as_fd());
        to_seal.push(mount_hierarchy(ctx, dest, in_tmpfs, cm, flags)?);
    }
    if readonly {
        // Sub-mounts first, the tmpfs last.
        for path in to_seal.iter().rev() {
            let fd = resolve::open_path(ctx.root, path, false)?;
            remount_bind(&resolve::fd_path(&fd), flags | MsFlags::MS_RDONLY)?;
        }
    }
    Ok(())
}

/// One hierarchy under `dest` (and its symlinks, e.g. cpu -> cpu,cpuacct);
/// returns where it was mounted. `tmpfs` is the v1 / hybrid tmpfs at
/// `dest`, where the hierarchy's directory is made.
fn mount_hierarchy(
    ctx: &Ctx,
    dest: &Path,
    tmpfs: Option<BorrowedFd<'_>>,
    cm: &rtctr_cgroups::CgroupMount,
    flags: MsFlags,
) -> io::Result<PathBuf> {
    let (sub, dir) = match tmpfs {
        Some(tmpfs) if !cm.name.is_empty() => (
            dest.join(&cm.name),
            resolve::mkdir_all(tmpfs, Path::new(&cm.name), 0o755)?,
        ),
        _ => (
            dest.to_path_buf(),
            resolve::mkdir_all(ctx.root, dest, 0o755)?,
        ),
    };
    let target = resolve::fd_path(&dir);
    let fresh = || {
        let data = (!cm.options.is_empty()).then_some(cm.options.as_str());
        mount(
            Some("cgroup"),
            &target,
            Some(cm.fstype.as_str()),
            flags,
            data,
        )
    };
    let bind = || {
        let rec = MsFlags::MS_BIND | MsFlags::MS_REC;
        mount(Some(&cm.host_dir), &target, None::<&str>, rec, None::<&str>)
    };
    match ctx.cgroupns {
        // In a user namespace the kernel may refuse a fresh cgroup
        // filesystem (EPERM, or EBUSY on a cgroup2 mounted with other
        // options): bind the container's own directory instead, as runc.
        true => match fresh() {
            Err(nix::Error::EPERM | nix::Error::EBUSY) => bind()?,
            r => r?,
        },
        false => bind()?,
    }
    // Only co-mounted v1 controllers have symlinks, and v1 has the tmpfs.
    if let Some(tmpfs) = tmpfs {
        for link in &cm.symlinks {
            match nix::unistd::symlinkat(cm.name.as_str(), tmpfs, link.as_str()) {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(o: &[&str]) -> Options {
        parse_options(&o.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    /// Host paths under /host/dirs are directories, /host/missing does not
    /// exist, anything else is a file.
    fn fake_is_dir(p: &Path) -> io::Result<bool> {
        if p.starts_with("/host/missing") {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(p.starts_with("/host/dirs") || p.starts_with("/bundle"))
    }

    fn plan_json(mounts: serde_json::Value) -> Result<Vec<Planned>, MountError> {
        let mounts: Vec<Mount> = serde_json::from_value(mounts).unwrap();
        plan(&mounts, Path::new("/bundle"), &fake_is_dir)
    }

    fn ops(mounts: serde_json::Value) -> Vec<MountOp> {
        plan_json(mounts)
            .unwrap()
            .into_iter()
            .map(|p| p.op)
            .collect()
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
    fn idmap_options_never_reach_the_kernel() {
        let o = opts(&["rbind", "ridmap", "idmap", "mode=755"]);
        assert_eq!(o.data, "mode=755");
        assert!(o.bind);
    }

    #[test]
    fn bind_filesystem_and_cgroup_are_told_apart() {
        let planned = plan_json(serde_json::json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/a", "type": "bind", "source": "/host/dirs/a"},
            {"destination": "/b", "type": "none", "source": "/host/dirs/b", "options": ["rbind"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "ro", "rprivate"]},
            {"destination": "/c", "type": "cgroup", "source": "/host/dirs/c", "options": ["bind"]}
        ]))
        .unwrap();
        let at: Vec<(usize, &str)> = planned
            .iter()
            .map(|p| (p.index, p.dest.to_str().unwrap()))
            .collect();
        assert_eq!(
            at,
            [
                (0, "/proc"),
                (1, "/a"),
                (2, "/b"),
                (3, "/sys/fs/cgroup"),
                (4, "/c")
            ]
        );
        let MountOp::Filesystem(proc_) = &planned[0].op else {
            panic!("{:?}", planned[0]);
        };
        assert_eq!(
            (proc_.fstype.as_str(), proc_.data.as_deref()),
            ("proc", None)
        );
        assert_eq!(proc_.source, Path::new("proc"));
        let bind = |source: &str, recursive| MountOp::Bind {
            source: source.into(),
            recursive,
            file: false,
        };
        assert_eq!(planned[1].op, bind("/host/dirs/a", false));
        assert_eq!(planned[2].op, bind("/host/dirs/b", true));
        assert_eq!(
            planned[3].op,
            MountOp::Cgroup {
                flags: MsFlags::MS_NOSUID,
                readonly: true
            }
        );
        assert_eq!(planned[4].op, bind("/host/dirs/c", false));
    }

    #[test]
    fn bind_target_is_a_file_or_directory_as_the_source_is() {
        let ops = ops(serde_json::json!([
            {"destination": "/etc/hosts", "type": "bind", "source": "/host/hosts"},
            {"destination": "/d", "type": "bind", "source": "/host/dirs/d"}
        ]));
        assert!(matches!(ops[0], MountOp::Bind { file: true, .. }));
        assert!(matches!(ops[1], MountOp::Bind { file: false, .. }));
        let err = plan_json(serde_json::json!([
            {"destination": "/x", "type": "bind", "source": "/host/missing"}
        ]))
        .unwrap_err();
        assert!(
            matches!(&err, MountError::BindSource { index: 0, source, .. }
                if source.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .starts_with("mounts[0] (/x): bind source /host/missing: "));
    }

    #[test]
    fn relative_bind_sources_are_taken_from_the_bundle() {
        let ops = ops(serde_json::json!([
            {"destination": "/r", "type": "bind", "source": "data/r"},
            {"destination": "/abs", "type": "bind", "source": "/host/dirs/abs"},
            {"destination": "/t", "type": "tmpfs", "source": "tmpfs"}
        ]));
        assert!(
            matches!(&ops[0], MountOp::Bind { source, .. } if source == Path::new("/bundle/data/r"))
        );
        assert!(
            matches!(&ops[1], MountOp::Bind { source, .. } if source == Path::new("/host/dirs/abs"))
        );
        // Only bind sources are paths: a filesystem's source is left alone.
        assert!(matches!(&ops[2], MountOp::Filesystem(fs) if fs.source == Path::new("tmpfs")));
    }

    #[test]
    fn propagation_changes_come_after_the_mount_in_order() {
        let ops = ops(serde_json::json!([
            {"destination": "/p", "type": "bind", "source": "/host/dirs/p",
             "options": ["rbind", "rprivate", "shared", "rslave"]}
        ]));
        assert_eq!(ops.len(), 2);
        assert_eq!(
            ops[1],
            MountOp::Attributes {
                propagation: vec![
                    MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                    MsFlags::MS_SHARED,
                    MsFlags::MS_SLAVE | MsFlags::MS_REC
                ],
                set: 0,
                clear: 0
            }
        );
    }

    #[test]
    fn recursive_attributes_are_planned_after_the_bind() {
        let ops = ops(serde_json::json!([
            {"destination": "/r", "type": "bind", "source": "/host/dirs/r",
             "options": ["rbind", "rro", "rnoexec", "rrelatime"]}
        ]));
        assert_eq!(
            ops,
            [
                MountOp::Bind {
                    source: "/host/dirs/r".into(),
                    recursive: true,
                    file: false
                },
                MountOp::Attributes {
                    propagation: vec![],
                    set: libc::MOUNT_ATTR_RDONLY
                        | libc::MOUNT_ATTR_NOEXEC
                        | libc::MOUNT_ATTR_RELATIME,
                    clear: libc::MOUNT_ATTR__ATIME
                }
            ]
        );
    }

    #[test]
    fn a_bind_with_flags_is_remounted() {
        let ops = ops(serde_json::json!([
            {"destination": "/ro", "type": "bind", "source": "/host/dirs/ro",
             "options": ["rbind", "ro", "nosuid", "remount"]},
            {"destination": "/rw", "type": "bind", "source": "/host/dirs/rw", "options": ["rbind", "rw"]},
            {"destination": "/plain", "type": "bind", "source": "/host/dirs/plain", "options": ["rbind"]}
        ]));
        assert_eq!(ops.len(), 5, "{ops:?}");
        assert_eq!(
            ops[1],
            MountOp::Remount {
                flags: MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
            }
        );
        // "rw" clears a flag: remounted with none.
        assert_eq!(
            ops[3],
            MountOp::Remount {
                flags: MsFlags::empty()
            }
        );
        assert!(matches!(ops[4], MountOp::Bind { .. }));
    }

    #[test]
    fn only_sysfs_and_mqueue_fall_back_to_the_hosts() {
        let ops = ops(serde_json::json!([
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "ro", "remount"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["mode=1777"]}
        ]));
        let fs: Vec<&Filesystem> = ops
            .iter()
            .map(|op| match op {
                MountOp::Filesystem(fs) => fs,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(fs[0].fallback.as_deref(), Some(Path::new("/sys")));
        assert_eq!(fs[0].flags, MsFlags::MS_NOSUID | MsFlags::MS_RDONLY);
        assert_eq!(fs[1].fallback.as_deref(), Some(Path::new("/dev/mqueue")));
        assert_eq!(fs[2].fallback, None);
        assert_eq!(fs[3].fallback, None);
        assert_eq!(fs[3].data.as_deref(), Some("mode=1777"));
    }

    #[test]
    fn procfs_and_sysfs_need_an_ordinary_directory() {
        let ops = ops(serde_json::json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        ]));
        let plain: Vec<bool> = ops
            .iter()
            .map(|op| matches!(op, MountOp::Filesystem(fs) if fs.plain_dir))
            .collect();
        assert_eq!(plain, [true, true, false]);
    }

    #[test]
    fn tmpcopyup_is_planned_on_the_filesystem() {
        let ops = ops(serde_json::json!([
            {"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        ]));
        assert!(
            matches!(&ops[0], MountOp::Filesystem(fs) if fs.copy_up && fs.data.as_deref() == Some("mode=755"))
        );
        assert!(matches!(&ops[1], MountOp::Filesystem(fs) if !fs.copy_up));
    }
}
