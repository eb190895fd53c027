//! Writes to /proc files (oom_score_adj, sysctls, id maps, time offsets,
//! LSM labels) through a procfs handle rtctr opens itself, never through
//! the `/proc` path of whatever mount namespace it is in.
//!
//! CVE-2025-52881: a container image or a racing container can bind
//! another file over `/proc/self/attr/exec`, `/proc/sys/...` or its
//! parents (through shared mounts, or a `/proc` symlink in the rootfs), so
//! that a write meant for the container's own settings lands somewhere
//! else, e.g. `/proc/sysrq-trigger`. The handle comes from `pathrs`
//! (libpathrs, what runc uses): a detached procfs instance made with
//! fsopen("proc")/fsmount — nothing can be mounted on it — or a checked
//! clone of `/proc` on older kernels; every open is checked to be on
//! procfs, follows no magic links and crosses no mount.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle, ProcfsHandleBuilder};

/// A /proc file, relative to a base the handle resolves.
#[derive(Debug, Clone, Copy)]
pub enum ProcFile<'a> {
    /// `/proc/self/<file>`.
    OwnSelf(&'a str),
    /// `/proc/thread-self/<file>` (LSM attributes are per thread).
    ThreadSelf(&'a str),
    /// `/proc/<pid>/<file>`, for a child rtctr has not reaped.
    Pid(i32, &'a str),
    /// `/proc/sys/<key with dots as slashes>`.
    Sysctl(&'a str),
}

impl ProcFile<'_> {
    /// The path as a user would write it, for error messages.
    pub fn path(&self) -> PathBuf {
        match *self {
            ProcFile::OwnSelf(f) => Path::new("/proc/self").join(f),
            ProcFile::ThreadSelf(f) => Path::new("/proc/thread-self").join(f),
            ProcFile::Pid(pid, f) => Path::new("/proc").join(pid.to_string()).join(f),
            ProcFile::Sysctl(key) => Path::new("/proc/sys").join(key.replace('.', "/")),
        }
    }

    fn base_and_subpath(&self) -> (ProcfsBase, PathBuf) {
        match *self {
            ProcFile::OwnSelf(f) => (ProcfsBase::ProcSelf, f.into()),
            ProcFile::ThreadSelf(f) => (ProcfsBase::ProcThreadSelf, f.into()),
            ProcFile::Pid(pid, f) => (ProcfsBase::ProcPid(pid as u32), f.into()),
            ProcFile::Sysctl(key) => (
                ProcfsBase::ProcRoot,
                Path::new("sys").join(key.replace('.', "/")),
            ),
        }
    }
}

/// A procfs instance of rtctr's own.
pub struct Proc(ProcfsHandle);

impl Proc {
    /// For per-process files (`subset=pid`: no global files at all;
    /// pathrs keeps one per process).
    pub fn open() -> io::Result<Proc> {
        ProcfsHandle::new().map(Proc).map_err(to_io)
    }

    /// With the global files too (/proc/sys): keep it only as long as
    /// the writes that need it.
    pub fn open_unmasked() -> io::Result<Proc> {
        ProcfsHandleBuilder::new()
            .unmasked()
            .build()
            .map(Proc)
            .map_err(to_io)
    }

    /// Whether `file` exists (checked like an open, without following links).
    pub fn exists(&self, file: ProcFile<'_>) -> bool {
        let (base, subpath) = file.base_and_subpath();
        self.0
            .open(base, &subpath, OpenFlags::O_PATH | OpenFlags::O_CLOEXEC)
            .is_ok()
    }

    /// Writes `value` to `file` in one write(2), as the kernel's /proc
    /// writers expect.
    pub fn write(&self, file: ProcFile<'_>, value: &str) -> io::Result<()> {
        let (base, subpath) = file.base_and_subpath();
        let mut f = self
            .0
            .open(base, &subpath, OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC)
            .map_err(to_io)?;
        f.write_all(value.as_bytes())
    }
}

/// One write through the process's `subset=pid` handle (for a global
/// file, pathrs retries through a short-lived unmasked one).
pub fn write(file: ProcFile<'_>, value: &str) -> io::Result<()> {
    Proc::open()?.write(file, value)
}

/// pathrs errors as io errors, keeping the errno where there is one.
fn to_io(e: pathrs::error::Error) -> io::Error {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_for_messages() {
        assert_eq!(
            ProcFile::Sysctl("net.ipv4.ip_forward").path(),
            Path::new("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            ProcFile::Pid(42, "uid_map").path(),
            Path::new("/proc/42/uid_map")
        );
    }

    #[test]
    fn writes_reach_procfs_and_errors_keep_errno() {
        // Our own oom_score_adj: raising it needs no privilege.
        let before = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        let up = (before.trim().parse::<i32>().unwrap() + 1).min(1000);
        write(ProcFile::OwnSelf("oom_score_adj"), &up.to_string()).unwrap();
        let after = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        assert_eq!(after.trim(), up.to_string());
        let e = write(ProcFile::OwnSelf("no-such-file"), "1").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    }
}
