//! Process-level syscalls: fork (also into a cgroup and a new pid
//! namespace), _exit, close_range, setdomainname.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Pid};

/// Which side of a [`fork`] we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// fork(2). <https://man7.org/linux/man-pages/man2/fork.2.html>
///
/// rtctr forks only while it is single-threaded (it never starts threads
/// before `create` forks), so the child may run ordinary Rust code.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: rtctr is single-threaded whenever it forks (no thread is
    // spawned before create/exec/run fork), so the child inherits a
    // consistent heap and no locks held by other threads.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// fork(2) as clone3(2): with `CLONE_INTO_CGROUP` when `cgroup` (a
/// cgroup2 directory) is given, so the child is born in that cgroup and
/// need not migrate there, and with the namespace `flags` (rtctr passes
/// at most `CLONE_NEWPID`), which the child is born in. Returns whether
/// the child was born in the cgroup. If the directory cannot be opened or
/// clone3 refuses it (an old kernel, a cgroup that refuses processes) the
/// child is cloned without it, and joins by writing to the cgroup, which
/// reports the real error.
/// <https://man7.org/linux/man-pages/man2/clone3.2.html>
pub fn clone_into(flags: CloneFlags, cgroup: Option<&Path>) -> io::Result<(Forked, bool)> {
    if let Some(dir) = cgroup.and_then(|d| std::fs::File::open(d).ok()) {
        let args = CloneArgs {
            flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: dir.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        if let Ok(forked) = clone3(&args) {
            return Ok((forked, true));
        }
    }
    if flags.is_empty() {
        return fork().map(|f| (f, false));
    }
    let args = CloneArgs {
        flags: flags.bits() as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    clone3(&args).map(|f| (f, false))
}

fn clone3(args: &CloneArgs) -> io::Result<Forked> {
    // SAFETY: without CLONE_VM (or any other sharing flag) clone3 is fork:
    // the child gets a copy of this single-threaded process (see fork), and
    // `args` outlives the call, whose size argument is its exact size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        0 => Ok(Forked::Child),
        pid if pid > 0 => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
        _ => Err(io::Error::last_os_error()),
    }
}

/// linux/sched.h (libc declares it as an overflowing c_int).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2, linux/sched.h).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// _exit(2): leave a forked child without running the parent's exit handlers
/// or flushing its buffers twice. <https://man7.org/linux/man-pages/man2/_exit.2.html>
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): mark every descriptor from
/// `first` on close-on-exec, so nothing of rtctr's leaks into the container.
/// <https://man7.org/linux/man-pages/man2/close_range.2.html>
pub fn cloexec_from(first: u32) -> io::Result<()> {
    close_range(first, libc::CLOSE_RANGE_CLOEXEC)
}

/// close_range(first, ~0, 0): close every descriptor from `first` on.
pub fn close_from(first: u32) -> io::Result<()> {
    close_range(first, 0)
}

fn close_range(first: u32, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: close_range only closes or flags this process's descriptors;
    // no memory is passed. Callers own every descriptor in the range.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// setdomainname(2). <https://man7.org/linux/man-pages/man2/setdomainname.2.html>
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive
    // the call; the kernel copies them.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// ioctl(fd, NS_GET_NSTYPE): the CLONE_NEW* type of a namespace file.
/// <https://man7.org/linux/man-pages/man2/ioctl_nsfs.2.html>
pub fn ns_get_nstype(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<i32> {
    use std::os::fd::AsRawFd;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

extern "C" fn exit_with_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) }
}

/// Makes the container init (pid 1 of its namespace, which the kernel
/// shields from signals it has no handler for) die on the usual
/// terminating signals while it waits to be started. execve resets these
/// handlers, so the container's program never sees them.
pub fn exit_on_signals(signals: &[nix::sys::signal::Signal]) -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let action = SigAction::new(
        SigHandler::Handler(exit_with_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for &sig in signals {
        // SAFETY: the handler only calls _exit, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a fresh session keyring, so
/// the container does not share the caller's keys.
/// <https://man7.org/linux/man-pages/man2/keyctl.2.html>
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    let name =
        std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `struct sched_attr` (linux/sched/types.h, SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_setattr(0, attr, 0) for the calling thread.
/// <https://man7.org/linux/man-pages/man2/sched_setattr.2.html>
pub fn sched_setattr(attr: &SchedAttr) -> io::Result<()> {
    // SAFETY: `attr` is a valid sched_attr whose `size` the caller set to
    // its size; the kernel only reads it.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, value) for the calling process.
/// <https://man7.org/linux/man-pages/man2/ioprio_set.2.html>
pub fn ioprio_set(value: u16) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: plain integer arguments; no memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            value as libc::c_int,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// set_mempolicy(mode, nodemask, maxnode) for the calling thread.
/// <https://man7.org/linux/man-pages/man2/set_mempolicy.2.html>
pub fn set_mempolicy(mode: i32, mask: &[u64]) -> io::Result<()> {
    let (ptr, maxnode) = if mask.iter().all(|w| *w == 0) {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), mask.len() as u64 * 64)
    };
    // SAFETY: `ptr` is null or points at `mask`, `maxnode` bits long, which
    // outlives the call; the kernel only reads it.
    let rc = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
