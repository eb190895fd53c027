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
    mkdir_all_depth(root, path, mode, 0)
}

fn mkdir_all_depth(
    root: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
    depth: u32,
) -> io::Result<OwnedFd> {
    if depth > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let rel = relative(path);
    let mut current = open_path(root, Path::new(""), false)?;
    let mut prefix = PathBuf::new();
    for comp in rel.components() {
        prefix.push(comp);
        let next = match openat2(root, &prefix, how(OFlag::O_PATH | OFlag::O_DIRECTORY)) {
            Ok(fd) => fd,
            Err(nix::Error::ENOENT) => {
                match nix::sys::stat::mkdirat(
                    current.as_fd(),
                    comp.as_os_str(),
                    Mode::from_bits_truncate(mode),
                ) {
                    Ok(()) => {}
                    Err(nix::Error::EEXIST) => {
                        // A dangling symlink: create its target, inside the root.
                        let target = nix::fcntl::readlinkat(current.as_fd(), comp.as_os_str())?;
                        let target = Path::new(&target);
                        let inside = if target.is_absolute() {
                            target.to_path_buf()
                        } else {
                            Path::new("/")
                                .join(prefix.parent().unwrap_or(Path::new("")))
                                .join(target)
                        };
                        mkdir_all_depth(root, &normalize(&inside), mode, depth + 1)?;
                    }
                    Err(e) => return Err(e.into()),
                }
                openat2(root, &prefix, how(OFlag::O_PATH | OFlag::O_DIRECTORY))?
            }
            Err(e) => return Err(e.into()),
        };
        current = next;
    }
    Ok(current)
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
