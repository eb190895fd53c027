//! Mount syscalls that nix lacks: mount_setattr(2).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// mount_setattr(fd, "", AT_EMPTY_PATH | (AT_RECURSIVE), attr): change the
/// attributes of the mount at `fd` (and, with `recursive`, its submounts).
/// <https://man7.org/linux/man-pages/man2/mount_setattr.2.html>
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64, clear: u64) -> io::Result<()> {
    let mut attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
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
