//! Mount syscalls that nix lacks: mount_setattr(2), open_tree(2),
//! move_mount(2).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// mount_setattr(fd, "", AT_EMPTY_PATH | (AT_RECURSIVE), attr): change the
/// attributes of the mount at `fd` (and, with `recursive`, its submounts).
/// <https://man7.org/linux/man-pages/man2/mount_setattr.2.html>
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64, clear: u64) -> io::Result<()> {
    setattr(fd, recursive, set, clear, 0)
}

/// mount_setattr with `MOUNT_ATTR_IDMAP`: the detached mount at `fd` (and,
/// with `recursive`, its submounts) shows ids through the mappings of the
/// user namespace `userns`.
pub fn mount_setattr_idmap(
    fd: BorrowedFd<'_>,
    recursive: bool,
    userns: BorrowedFd<'_>,
) -> io::Result<()> {
    let userns = u64::try_from(userns.as_raw_fd()).map_err(io::Error::other)?;
    setattr(fd, recursive, libc::MOUNT_ATTR_IDMAP, 0, userns)
}

fn setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    userns: u64,
) -> io::Result<()> {
    let mut attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` is a
    // properly initialised mount_attr whose size we pass, and `fd` is open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &mut attr as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
/// (AT_RECURSIVE)): a detached copy of the mount at `path` (with its
/// submounts when `recursive`), as a bind mount would make, not yet
/// attached anywhere. It vanishes when the fd is closed unattached.
/// <https://man7.org/linux/man-pages/man2/open_tree.2.html>
pub fn open_tree_clone(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let path = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut flags = (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: the kernel just returned this new descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// move_mount(from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH |
/// MOVE_MOUNT_T_EMPTY_PATH): attaches the detached mount `from` on the
/// directory or file open at `to` (a /proc/self/fd path would name the
/// magic link itself: move_mount does not follow a last symlink).
/// <https://man7.org/linux/man-pages/man2/move_mount.2.html>
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both paths are valid NUL-terminated empty strings and both
    // descriptors are open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
