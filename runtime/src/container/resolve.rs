//! Paths inside the container root, resolved by the kernel with
//! openat2(RESOLVE_IN_ROOT): a symlink in the image (absolute or `..`)
//! cannot lead out of the root. Mounts are then made onto the returned
//! O_PATH descriptor (`/proc/self/fd/N`), so a path swapped after the check
//! cannot redirect them.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// The path relative to the root ("" for the root itself).
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// Opens `path` inside `root` as O_PATH (not following a final symlink
/// when `nofollow`).
pub fn open_path(root: BorrowedFd<'_>, path: &Path, nofollow: bool) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let mut flags = OFlag::O_PATH;
    if nofollow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    Ok(openat2(root, &rel, how(flags))?)
}

/// Opens `path` inside `root` as O_PATH, refusing (ELOOP) any symlink on
/// the way, the last component included.
pub fn open_no_symlinks(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    Ok(openat2(root, &rel, how)?)
}

/// Opens `path` inside `root` with the given flags (e.g. for writing).
pub fn open(root: BorrowedFd<'_>, path: &Path, flags: OFlag, mode: Mode) -> io::Result<OwnedFd> {
    let rel = relative(path);
    Ok(openat2(root, &rel, how(flags).mode(mode))?)
}

/// mkdir -p inside the root; returns an O_PATH descriptor of the directory.
/// A dangling symlink on the way is followed inside the root (its target
/// is created there), as runc does.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    mkdir_all_depth(root, &relative(path), mode, 0)
}

/// `rel` is relative to the root. The whole path is looked up first (the
/// directory usually exists: one openat2); when it is missing, its parent
/// is made the same way, then the directory in it. Every lookup starts at
/// the root with RESOLVE_IN_ROOT.
fn mkdir_all_depth(root: BorrowedFd<'_>, rel: &Path, mode: u32, depth: u32) -> io::Result<OwnedFd> {
    if depth > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let Some(name) = rel.file_name() else {
        return open_path(root, Path::new(""), false);
    };
    let dir_how = || how(OFlag::O_PATH | OFlag::O_DIRECTORY);
    match openat2(root, rel, dir_how()) {
        Ok(fd) => return Ok(fd),
        Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    // The root itself needs no lookup.
    let parent = match parent_rel.as_os_str().is_empty() {
        true => None,
        false => Some(mkdir_all_depth(root, parent_rel, mode, depth)?),
    };
    let parent = parent.as_ref().map_or(root, |fd| fd.as_fd());
    match nix::sys::stat::mkdirat(parent, name, Mode::from_bits_truncate(mode)) {
        Ok(()) => {}
        Err(nix::Error::EEXIST) => {
            // A dangling symlink: create its target, inside the root.
            let target = nix::fcntl::readlinkat(parent, name)?;
            let target = Path::new(&target);
            let inside = if target.is_absolute() {
                target.to_path_buf()
            } else {
                Path::new("/").join(parent_rel).join(target)
            };
            mkdir_all_depth(root, &relative(&normalize(&inside)), mode, depth + 1)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(openat2(root, rel, dir_how())?)
}

/// Lexically resolves `.` and `..` (never above `/`).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Makes sure a regular file exists at `path` (for bind-mounting a file
/// onto); returns its O_PATH descriptor.
pub fn create_file(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    if let Some(parent) = path.parent() {
        mkdir_all(root, parent, 0o755)?;
    }
    match open_path(root, path, false) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    drop(open(
        root,
        path,
        OFlag::O_CREAT | OFlag::O_WRONLY,
        Mode::from_bits_truncate(0o644),
    )?);
    open_path(root, path, false)
}

/// The `/proc/self/fd/N` magic link naming a descriptor, for syscalls that
/// take a path (mount(2)).
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn no_symlink_is_followed_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("real/sub")).unwrap();
        symlink("real", root.join("link")).unwrap();
        symlink("/nowhere", root.join("dangling")).unwrap();
        let rootfd: OwnedFd = fs::File::open(root).unwrap().into();
        open_no_symlinks(rootfd.as_fd(), Path::new("/real/sub")).unwrap();
        for p in ["/link", "/link/sub", "/dangling"] {
            let e = open_no_symlinks(rootfd.as_fd(), Path::new(p)).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{p}");
        }
        let e = open_no_symlinks(rootfd.as_fd(), Path::new("/missing")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn mkdir_all_makes_what_is_missing_and_reports_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("file"), "").unwrap();
        // A dangling relative symlink: its target is made, inside the root.
        symlink("../made", root.join("a/dangling")).unwrap();
        let rootfd: OwnedFd = fs::File::open(root).unwrap().into();
        let same = |fd: OwnedFd, p: &str| {
            let (a, b) = (
                nix::sys::stat::fstat(fd).unwrap(),
                fs::metadata(root.join(p)).unwrap(),
            );
            assert_eq!(a.st_ino, std::os::unix::fs::MetadataExt::ino(&b), "{p}");
        };
        // (asked, made): an existing path, the root, nested missing
        // directories, a new one, one through the dangling symlink.
        for (asked, made) in [
            ("/a/b", "a/b"),
            ("/", ""),
            ("/a/b/c/d", "a/b/c/d"),
            ("/new", "new"),
            ("/a/dangling/x", "made/x"),
        ] {
            same(
                mkdir_all(rootfd.as_fd(), Path::new(asked), 0o755).unwrap(),
                made,
            );
        }
        let e = mkdir_all(rootfd.as_fd(), Path::new("/file/x"), 0o755).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        // An absolute symlink and a ../ symlink, both pointing out.
        symlink(&outside, root.join("abs")).unwrap();
        symlink("../../outside", root.join("rel")).unwrap();
        let rootfd: OwnedFd = fs::File::open(&root).unwrap().into();
        mkdir_all(rootfd.as_fd(), Path::new("/abs/x/y"), 0o755).unwrap();
        mkdir_all(rootfd.as_fd(), Path::new("/rel/z"), 0o755).unwrap();
        create_file(rootfd.as_fd(), Path::new("/abs/f")).unwrap();
        assert!(fs::read_dir(&outside).unwrap().next().is_none(), "escaped");
        // They landed inside the root instead.
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("x/y")
            .is_dir());
    }
}
