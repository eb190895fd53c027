//! Idmapped mounts (runtime-spec 1.2: a bind mount's `uidMappings` and
//! `gidMappings`, options `idmap` and `ridmap`). Made by the runtime on
//! the host before the container's processes exist, because setting
//! `MOUNT_ATTR_IDMAP` on a host filesystem needs privilege over it, which
//! an init in a user namespace of its own lacks: a detached copy of the
//! source (open_tree), shown through the ids of a user namespace that
//! holds the mappings (mount_setattr). The init inherits the descriptors
//! and attaches each at its destination (move_mount) in place of the
//! bind. Unattached, a copy vanishes with its descriptor: nothing to undo.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, LinuxIdMapping, Mount};

use super::mounts::{Step, StepExt};
use super::namespaces;
use crate::sys::process::{exit_now, fork, Forked};

#[derive(Debug, thiserror::Error)]
pub enum IdmapError {
    #[error("mounts[{index}] ({dest}): idmapped mount of {source_path}: {op}: {source}")]
    Op {
        index: usize,
        dest: PathBuf,
        source_path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("mounts[{index}]: a user namespace for the mount's mappings: {op}: {source}")]
    Userns {
        index: usize,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A detached, idmapped copy of `mounts[index]`'s source.
pub struct Idmapped {
    pub index: usize,
    pub fd: OwnedFd,
}

/// The fd to attach in place of `mounts[index]`'s bind, if it is idmapped.
pub fn find(idmapped: &[Idmapped], index: usize) -> Option<BorrowedFd<'_>> {
    idmapped
        .iter()
        .find(|m| m.index == index)
        .map(|m| m.fd.as_fd())
}

/// The mappings of an idmapped mount: its own, or (option `idmap` or
/// `ridmap` alone) the container's user namespace's. Validation made sure
/// one of them exists. None for a mount that is not idmapped.
fn mappings<'a>(
    m: &'a Mount,
    linux: &'a Linux,
) -> Option<(&'a [LinuxIdMapping], &'a [LinuxIdMapping])> {
    let own = m.uid_mappings().as_deref().zip(m.gid_mappings().as_deref());
    let options = m.options().as_deref().unwrap_or_default();
    let asked = options.iter().any(|o| o == "idmap" || o == "ridmap");
    match own {
        Some(maps) => Some(maps),
        None if asked => Some((
            linux.uid_mappings().as_deref().unwrap_or_default(),
            linux.gid_mappings().as_deref().unwrap_or_default(),
        )),
        None => None,
    }
}

/// Makes the idmapped copies `mounts` asks for (none: no work at all).
pub fn prepare(
    mounts: &[Mount],
    linux: &Linux,
    bundle: &Path,
) -> Result<Vec<Idmapped>, IdmapError> {
    let mut out = Vec::new();
    for (index, m) in mounts.iter().enumerate() {
        let Some((uid, gid)) = mappings(m, linux) else {
            continue;
        };
        let options = m.options().as_deref().unwrap_or_default();
        let recursive_bind = options.iter().any(|o| o == "rbind");
        let recursive_map = options.iter().any(|o| o == "ridmap");
        let source = match m.source() {
            Some(s) if s.is_relative() => bundle.join(s),
            Some(s) => s.clone(),
            None => PathBuf::new(),
        };
        let err = |op, source_err| IdmapError::Op {
            index,
            dest: m.destination().clone(),
            source_path: source.clone(),
            op,
            source: source_err,
        };
        let userns = userns_with(uid, gid).map_err(|(op, source)| IdmapError::Userns {
            index,
            op,
            source,
        })?;
        let fd = crate::sys::mount::open_tree_clone(&source, recursive_bind)
            .map_err(|e| err("open_tree", e))?;
        crate::sys::mount::mount_setattr_idmap(fd.as_fd(), recursive_map, userns.as_fd())
            .map_err(|e| match e.raw_os_error() {
                // The kernel's answer for a filesystem (or a submount, with
                // ridmap) that cannot be idmapped.
                Some(libc::EINVAL) => err(
                    "mount_setattr(MOUNT_ATTR_IDMAP): its filesystem does not support idmapped mounts on this kernel",
                    e,
                ),
                _ => err("mount_setattr(MOUNT_ATTR_IDMAP)", e),
            })?;
        out.push(Idmapped { index, fd });
    }
    Ok(out)
}

/// A user namespace holding the mappings, as a /proc/<pid>/ns/user
/// descriptor: a child unshares it and waits while the mappings are
/// written and the namespace is opened, then exits (the descriptor keeps
/// the namespace).
fn userns_with(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Step<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe().op("pipe")?;
    let (done_r, done_w) = nix::unistd::pipe().op("pipe")?;
    let pid = match fork().op("fork")? {
        Forked::Child => {
            drop((ready_r, done_w));
            let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_err() {
                exit_now(1);
            }
            let _ = File::from(ready_w).write_all(b"1");
            // Until the parent closes its end (or dies).
            let _ = File::from(done_r).read(&mut [0]);
            exit_now(0)
        }
        Forked::Parent(pid) => pid,
    };
    drop((ready_w, done_r));
    let result = (|| {
        let mut byte = [0];
        if File::from(ready_r)
            .read(&mut byte)
            .op("unshare(CLONE_NEWUSER)")?
            == 0
        {
            let e = io::Error::other("the child could not unshare it");
            return Err(("unshare(CLONE_NEWUSER)", e));
        }
        namespaces::write_maps(pid.as_raw(), uid, gid)
            .map_err(|e| ("write uid_map and gid_map", io::Error::other(e)))?;
        let path = format!("/proc/{}/ns/user", pid.as_raw());
        File::open(&path).map(OwnedFd::from).op("open its ns/user")
    })();
    drop(done_w);
    let _ = nix::sys::wait::waitpid(pid, None);
    result
}

/// Mount options that only say "idmapped" (the kernel never sees them).
pub fn is_idmap_option(option: &str) -> bool {
    option == "idmap" || option == "ridmap"
}
