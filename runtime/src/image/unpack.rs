//! Tar extraction that cannot write outside its directory. The `tar` crate
//! parses (GNU long names, PAX headers, sparse files); every file is then
//! made here, relative to a descriptor of the destination, one path
//! component at a time with `O_NOFOLLOW`, so that no `..`, absolute path,
//! symlink (made by an earlier entry) or hard link can lead out of it:
//! such entries are refused, naming the layer and the entry. OCI
//! whiteouts become overlay whiteouts: `.wh.NAME` a 0:0 character device
//! NAME, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its
//! directory. Owners, modes, xattrs (`security.capability` too; not
//! overlay's own `trusted.overlay.*`, which would steer the mount), times,
//! hard links and device nodes are kept; an xattr the host refuses is
//! skipped, a device node it refuses fails the layer.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timestamps, Uid};
use rustix::io::Errno;
use tar::EntryType;

use super::ImageError;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const XATTR_PAX: &str = "SCHILY.xattr.";
const OVERLAY_XATTRS: &str = "trusted.overlay.";

/// Extracts the tar stream `reader` into the existing, empty directory
/// `dest`. `layer` names the blob in errors; `whiteouts` converts OCI
/// whiteouts (off for an `oci-archive`, which holds plain files).
pub fn unpack(
    reader: impl Read,
    dest: &Path,
    layer: &str,
    whiteouts: bool,
) -> Result<(), ImageError> {
    let root = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| super::io_err("open", dest)(e.into()))?;
    let mut ex = Extractor {
        root,
        layer,
        whiteouts,
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| ex.layer_err(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ex.layer_err(e))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        ex.entry(&mut entry, &raw)
            .map_err(|reason| ex.entry_err(&name, reason))?;
    }
    ex.set_dir_times();
    Ok(())
}

/// Why one entry was refused or failed.
#[derive(Debug)]
enum Refused {
    Path(&'static str),
    Io(&'static str, io::Error),
}

impl From<Errno> for Refused {
    fn from(e: Errno) -> Self {
        Refused::Io("create", e.into())
    }
}

fn at(what: &'static str) -> impl FnOnce(Errno) -> Refused {
    move |e| Refused::Io(what, e.into())
}

struct Extractor<'a> {
    root: OwnedFd,
    layer: &'a str,
    whiteouts: bool,
    /// Directories whose times are set last (their entries change them).
    dir_times: Vec<(PathBuf, u64)>,
}

/// The entry's path relative to the root, `.` components dropped;
/// refused when absolute or with `..`.
pub fn relative(raw: &[u8]) -> Result<PathBuf, &'static str> {
    let path = Path::new(OsStr::from_bytes(raw));
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("a `..` component would lead out of the layer"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("an absolute path would lead out of the layer")
            }
        }
    }
    Ok(rel)
}

impl Extractor<'_> {
    fn layer_err(&self, source: io::Error) -> ImageError {
        ImageError::Layer {
            digest: self.layer.to_string(),
            source,
        }
    }

    fn entry_err(&self, entry: &str, reason: Refused) -> ImageError {
        let reason = match reason {
            Refused::Path(r) => r.to_string(),
            Refused::Io(what, e) => format!("{what}: {e}"),
        };
        ImageError::Entry {
            digest: self.layer.to_string(),
            entry: entry.to_string(),
            reason,
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<(), Refused> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let rel = relative(raw).map_err(Refused::Path)?;
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Ok(()); // the root itself ("./"): the store owns it
        };
        let dir = self.open_dir(parent, true)?;
        let name_str = name.to_string_lossy();
        if self.whiteouts && name_str.starts_with(WHITEOUT) {
            return whiteout(dir.as_fd(), &name_str);
        }
        if kind != EntryType::Directory || !is_dir_at(dir.as_fd(), name) {
            remove_existing(dir.as_fd(), name)?;
        }
        let meta = Meta::of(entry)?;
        let dir = dir.as_fd();
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                write_file(dir, name, entry, &meta)?
            }
            EntryType::Directory => {
                make_dir(dir, name, &meta)?;
                self.dir_times.push((rel.clone(), meta.mtime));
            }
            EntryType::Symlink => make_symlink(dir, name, entry, &meta)?,
            EntryType::Link => self.hard_link(dir, name, entry)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                make_node(dir, name, kind, &meta)?
            }
            other => log::debug!("layer {}: skip entry type {other:?}", self.layer),
        }
        Ok(())
    }

    /// A hard link to an earlier entry of the layer (never outside it).
    fn hard_link<R: Read>(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        entry: &tar::Entry<'_, R>,
    ) -> Result<(), Refused> {
        let target = entry
            .link_name_bytes()
            .ok_or(Refused::Path("a hard link without a target"))?;
        let target = relative(&target)
            .map_err(|_| Refused::Path("a hard link to a path outside the layer"))?;
        let (Some(tparent), Some(tname)) = (target.parent(), target.file_name()) else {
            return Err(Refused::Path("a hard link to the layer's root"));
        };
        let tdir = self.open_dir(tparent, false)?;
        rustix::fs::linkat(&tdir, tname, dir, name, AtFlags::empty()).map_err(at("link"))
    }

    /// Opens (with `create`: making the missing ones) the directory `rel`
    /// below the root, one component at a time, refusing symlinks.
    fn open_dir(&self, rel: &Path, create: bool) -> Result<OwnedFd, Refused> {
        let mut cur = rustix::io::dup(&self.root).map_err(at("dup"))?;
        for c in rel.components() {
            let Component::Normal(n) = c else { continue };
            if create {
                match rustix::fs::mkdirat(&cur, n, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(at("mkdir")(e)),
                }
            }
            cur = open_child_dir(cur.as_fd(), n, true)?;
        }
        Ok(cur)
    }

    /// Directory times, once every entry is in (best effort: a directory
    /// replaced since is skipped).
    fn set_dir_times(&self) {
        for (rel, mtime) in self.dir_times.iter().rev() {
            let how =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            if let Ok(fd) = rustix::fs::openat2(&self.root, rel, flags, Mode::empty(), how) {
                let _ = rustix::fs::futimens(&fd, &times(*mtime));
            }
        }
    }
}

fn open_child_dir(dir: BorrowedFd<'_>, name: &OsStr, path_only: bool) -> Result<OwnedFd, Refused> {
    let mut flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    flags |= if path_only {
        OFlags::PATH
    } else {
        OFlags::RDONLY
    };
    rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| match e {
        Errno::LOOP => Refused::Path("its path goes through a symlink"),
        Errno::NOTDIR => Refused::Path("its path goes through a symlink or a non-directory"),
        e => at("open")(e),
    })
}

fn is_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// A later entry replaces an earlier one of the same name.
fn remove_existing(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Refused> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => {
            // std's remove_dir_all does not follow symlinks inside.
            let fd = open_child_dir(dir, name, true)?;
            drop(fd);
            let path = PathBuf::from(format!(
                "/proc/self/fd/{}",
                rustix::fd::AsRawFd::as_raw_fd(&dir)
            ))
            .join(name);
            std::fs::remove_dir_all(path).map_err(|e| Refused::Io("remove", e))
        }
        Err(e) => Err(at("unlink")(e)),
    }
}

fn whiteout(dir: BorrowedFd<'_>, name: &str) -> Result<(), Refused> {
    if name == OPAQUE {
        let fd = rustix::io::dup(dir).map_err(at("dup"))?;
        // `dir` is O_PATH: reopen it readable for the xattr.
        let fd = rustix::fs::openat(
            &fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(at("open"))?;
        return rustix::fs::fsetxattr(
            &fd,
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(at("set trusted.overlay.opaque"));
    }
    if name.starts_with(".wh..wh.") {
        return Ok(()); // aufs bookkeeping (.wh..wh.plnk and the like)
    }
    let hidden = &name[WHITEOUT.len()..];
    if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
        return Err(Refused::Path("a whiteout of no valid name"));
    }
    remove_existing(dir, OsStr::new(hidden))?;
    rustix::fs::mknodat(dir, hidden, FileType::CharacterDevice, Mode::empty(), 0)
        .map_err(at("mknod whiteout"))
}

/// What a header says about ownership, mode, time and xattrs.
struct Meta {
    uid: Uid,
    gid: Gid,
    mode: u32,
    mtime: u64,
    dev: u64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn of<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, Refused> {
        let h = entry.header();
        let bad = |_| Refused::Path("a header field that does not parse");
        let id = |v: u64| {
            u32::try_from(v)
                .ok()
                .filter(|v| *v != u32::MAX)
                .ok_or(Refused::Path("a uid or gid out of range"))
        };
        let uid = Uid::from_raw(id(h.uid().map_err(bad)?)?);
        let gid = Gid::from_raw(id(h.gid().map_err(bad)?)?);
        let mode = h.mode().map_err(bad)? & 0o7777;
        let mtime = h.mtime().unwrap_or(0);
        let major = h.device_major().ok().flatten().unwrap_or(0);
        let minor = h.device_minor().ok().flatten().unwrap_or(0);
        let mut xattrs = Vec::new();
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                let Some(name) = ext.key_bytes().strip_prefix(XATTR_PAX.as_bytes()) else {
                    continue;
                };
                // overlay's own (opaque, redirect, metacopy...) would steer
                // the overlay: only whiteout conversion sets them.
                if name.starts_with(OVERLAY_XATTRS.as_bytes()) {
                    log::warn!(
                        "skip xattr {} of an image entry",
                        String::from_utf8_lossy(name)
                    );
                    continue;
                }
                xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
            }
        }
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime,
            dev: rustix::fs::makedev(major, minor),
            xattrs,
        })
    }

    /// Owner, then mode (chown clears set-id bits), then xattrs (chown
    /// clears security.capability), then times.
    fn apply_fd(&self, fd: BorrowedFd<'_>) -> Result<(), Refused> {
        rustix::fs::fchown(fd, Some(self.uid), Some(self.gid)).map_err(at("chown"))?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(self.mode)).map_err(at("chmod"))?;
        for (name, value) in &self.xattrs {
            let name = OsStr::from_bytes(name);
            if let Err(e) = rustix::fs::fsetxattr(fd, name, value, rustix::fs::XattrFlags::empty())
            {
                log::debug!("skip xattr {}: {e}", name.to_string_lossy());
            }
        }
        rustix::fs::futimens(fd, &times(self.mtime)).map_err(at("set times"))
    }

    /// The same for a node not opened (a symlink, a device, a fifo).
    fn apply_at(&self, dir: BorrowedFd<'_>, name: &OsStr, symlink: bool) -> Result<(), Refused> {
        let nofollow = AtFlags::SYMLINK_NOFOLLOW;
        rustix::fs::chownat(dir, name, Some(self.uid), Some(self.gid), nofollow)
            .map_err(at("chown"))?;
        if !symlink {
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(self.mode), AtFlags::empty())
                .map_err(at("chmod"))?;
        }
        rustix::fs::utimensat(dir, name, &times(self.mtime), nofollow).map_err(at("set times"))
    }
}

fn times(mtime: u64) -> Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(0),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// A regular file, created (never opened through a link) and filled.
fn write_file<R: Read>(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    entry: &mut tar::Entry<'_, R>,
    meta: &Meta,
) -> Result<(), Refused> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?;
    let mut file = std::fs::File::from(fd);
    io::copy(entry, &mut file).map_err(|e| Refused::Io("write", e))?;
    meta.apply_fd(file.as_fd())
}

/// A directory (an existing one is kept: a later layer entry re-states it).
fn make_dir(dir: BorrowedFd<'_>, name: &OsStr, meta: &Meta) -> Result<(), Refused> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(at("mkdir")(e)),
    }
    let fd = open_child_dir(dir, name, false)?;
    meta.apply_fd(fd.as_fd())
}

fn make_symlink<R: Read>(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    entry: &tar::Entry<'_, R>,
    meta: &Meta,
) -> Result<(), Refused> {
    let target = entry
        .link_name_bytes()
        .ok_or(Refused::Path("a symlink without a target"))?;
    rustix::fs::symlinkat(OsStr::from_bytes(&target), dir, name).map_err(at("symlink"))?;
    meta.apply_at(dir, name, true)
}

/// A character or block device, or a fifo; a device the host refuses
/// (EPERM, e.g. in a user namespace) is named as such.
fn make_node(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: EntryType,
    meta: &Meta,
) -> Result<(), Refused> {
    let (ft, dev) = match kind {
        EntryType::Char => (FileType::CharacterDevice, meta.dev),
        EntryType::Block => (FileType::BlockDevice, meta.dev),
        _ => (FileType::Fifo, 0),
    };
    rustix::fs::mknodat(dir, name, ft, Mode::from_raw_mode(0o600), dev).map_err(|e| {
        if e == Errno::PERM {
            Refused::Path("a device node the host does not allow here (mknod: EPERM)")
        } else {
            at("mknod")(e)
        }
    })?;
    meta.apply_at(dir, name, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_drops_dots_and_refuses_escapes() {
        assert_eq!(relative(b"./a/./b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(relative(b"./").unwrap(), PathBuf::new());
        assert!(relative(b"a/../../etc").is_err());
        assert!(relative(b"/etc/passwd").is_err());
        assert!(relative(b"a/..").is_err());
    }
}
