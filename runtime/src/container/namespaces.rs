//! Namespaces: which to create and which to join (by path), checked in
//! the parent before anything is forked, then entered by the forked
//! process in the order the kernel needs.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

use crate::container::proc_files::{self, ProcFile};
use crate::container::rootless::{self, MapWriter};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("namespace {kind} path {path}: {source}")]
    Open {
        kind: LinuxNamespaceType,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("namespace path {path} is a {found} namespace, but linux.namespaces says {kind}")]
    WrongType {
        kind: LinuxNamespaceType,
        path: PathBuf,
        found: String,
    },
    #[error("setns {kind} ({path}): {source}")]
    Setns {
        kind: LinuxNamespaceType,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("rootless (uid {uid}): cannot join {kind} namespace {path}: it is owned by a user namespace this user has no privilege in (setns: Operation not permitted)")]
    SetnsRootless {
        kind: LinuxNamespaceType,
        path: PathBuf,
        uid: u32,
    },
    #[error("unshare {flags:?}: {source}")]
    Unshare {
        flags: CloneFlags,
        #[source]
        source: nix::Error,
    },
    #[error("write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Rootless(#[from] rootless::RootlessError),
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(t as i32)
}

fn type_name(flag: i32) -> String {
    use LinuxNamespaceType::*;
    for t in [Mount, Cgroup, Uts, Ipc, User, Pid, Network, Time] {
        if t as i32 == flag {
            return t.to_string();
        }
    }
    format!("unknown ({flag:#x})")
}

/// An opened namespace to join.
pub struct Join {
    pub kind: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// What the intermediate process does with namespaces.
pub struct Plan {
    /// Namespaces to join, user first and mount last.
    pub join: Vec<Join>,
    /// A new user namespace (its maps are written by the parent).
    pub new_user: bool,
    /// The other namespaces to unshare.
    pub unshare: CloneFlags,
    /// `linux.timeOffsets` as timens_offsets text, for a new time namespace.
    pub time_offsets: Option<String>,
}

impl Plan {
    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        if t == LinuxNamespaceType::User {
            self.new_user
        } else {
            self.unshare.contains(clone_flag(t))
        }
    }

    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.creates(t) || self.join.iter().any(|j| j.kind == t)
    }

    /// Whether entering these namespaces takes an intermediate process
    /// (see `init::spawn`): with a user or a time namespace.
    pub fn needs_intermediate(&self) -> bool {
        self.has(LinuxNamespaceType::User) || self.has(LinuxNamespaceType::Time)
    }

    /// The pid namespace to join, if any.
    pub fn joined_pid(&self) -> Option<&Join> {
        self.join.iter().find(|j| j.kind == LinuxNamespaceType::Pid)
    }
}

/// Opens every namespace path and checks its type (ioctl NS_GET_NSTYPE),
/// so a wrong path fails before anything is forked.
pub fn plan(linux: &Linux) -> Result<Plan, NsError> {
    let mut join = Vec::new();
    let mut new_user = false;
    let mut unshare = CloneFlags::empty();
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        let kind = ns.typ();
        match ns.path() {
            Some(path) => join.push(open(kind, path)?),
            None if kind == LinuxNamespaceType::User => new_user = true,
            None => unshare |= clone_flag(kind),
        }
    }
    sort_joins(&mut join);
    let time_offsets = linux
        .time_offsets()
        .as_ref()
        .filter(|_| unshare.contains(clone_flag(LinuxNamespaceType::Time)))
        .map(|offsets| {
            offsets
                .iter()
                .map(|(clock, off)| {
                    format!(
                        "{clock} {} {}\n",
                        off.secs().unwrap_or(0),
                        off.nanosecs().unwrap_or(0)
                    )
                })
                .collect()
        });
    Ok(Plan {
        join,
        new_user,
        unshare,
        time_offsets,
    })
}

/// For `exec`: every namespace of the container, joined through its
/// init's /proc/<pid>/ns files.
pub fn plan_joining(linux: &Linux, init: i32) -> Result<Plan, NsError> {
    let mut join = Vec::new();
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        let path = PathBuf::from(format!("/proc/{init}/ns/{}", proc_name(ns.typ())));
        join.push(open(ns.typ(), &path)?);
    }
    sort_joins(&mut join);
    Ok(Plan {
        join,
        new_user: false,
        unshare: CloneFlags::empty(),
        time_offsets: None,
    })
}

/// The name of a namespace's file in /proc/<pid>/ns.
fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// setns(user) first: later joins need its privileges; mount last,
/// because it changes how the remaining paths would resolve.
fn sort_joins(join: &mut [Join]) {
    join.sort_by_key(|j| match j.kind {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
}

fn open(kind: LinuxNamespaceType, path: &Path) -> Result<Join, NsError> {
    let file = File::open(path).map_err(|source| NsError::Open {
        kind,
        path: path.to_path_buf(),
        source,
    })?;
    let fd: OwnedFd = file.into();
    let found = crate::sys::process::ns_get_nstype(fd.as_fd()).map_err(|source| {
        let source = if source.raw_os_error() == Some(libc::ENOTTY) {
            io::Error::other("not a namespace file")
        } else {
            source
        };
        NsError::Open {
            kind,
            path: path.to_path_buf(),
            source,
        }
    })?;
    if found != kind as i32 {
        return Err(NsError::WrongType {
            kind,
            path: path.to_path_buf(),
            found: type_name(found),
        });
    }
    Ok(Join {
        kind,
        path: path.to_path_buf(),
        fd,
    })
}

/// setns into each namespace of the plan, in order, but those the process
/// was `born_in`.
pub fn join_all(plan: &Plan, born_in: CloneFlags) -> Result<(), NsError> {
    for j in plan
        .join
        .iter()
        .filter(|j| !born_in.contains(clone_flag(j.kind)))
    {
        nix::sched::setns(j.fd.as_fd(), clone_flag(j.kind)).map_err(|source| {
            if source == nix::Error::EPERM && !rootless::is_root() {
                return NsError::SetnsRootless {
                    kind: j.kind,
                    path: j.path.clone(),
                    uid: nix::unistd::geteuid().as_raw(),
                };
            }
            NsError::Setns {
                kind: j.kind,
                path: j.path.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Enters the pid namespace `join` for the children rtctr forks from now
/// on (setns applies a pid namespace to children only); returns rtctr's
/// own, to go back to with [`leave_pid_for_children`]. setns takes
/// CAP_SYS_ADMIN over the owner of each namespace, which rtctr in a user
/// namespace (rootless, or in a rootless engine's) may lack for its own:
/// going back is tried first, so rtctr never enters one it cannot leave.
pub fn enter_pid_for_children(join: &Join) -> io::Result<OwnedFd> {
    let own: OwnedFd = File::open("/proc/self/ns/pid")?.into();
    nix::sched::setns(&own, CloneFlags::CLONE_NEWPID)?;
    nix::sched::setns(join.fd.as_fd(), CloneFlags::CLONE_NEWPID)?;
    Ok(own)
}

/// Back to rtctr's own pid namespace for its children.
pub fn leave_pid_for_children(own: OwnedFd) -> io::Result<()> {
    Ok(nix::sched::setns(own, CloneFlags::CLONE_NEWPID)?)
}

pub fn unshare(flags: CloneFlags) -> Result<(), NsError> {
    if flags.is_empty() {
        return Ok(());
    }
    nix::sched::unshare(flags).map_err(|source| NsError::Unshare { flags, source })
}

/// The uid_map/gid_map text for a list of mappings.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Written by the parent for the child that unshared a user namespace:
/// directly by root, or by a user for their own id alone (gid_map only
/// once setgroups is "deny", as the kernel wants); wider maps of a user go
/// through `newuidmap`/`newgidmap` ([`rootless`]).
pub fn write_id_maps(pid: i32, linux: &Linux) -> Result<(), NsError> {
    let root = rootless::is_root();
    let uids = linux.uid_mappings().as_deref().unwrap_or_default();
    let gids = linux.gid_mappings().as_deref().unwrap_or_default();
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    match rootless::map_writer(root, uid, uids, false) {
        MapWriter::Direct => write_proc(ProcFile::Pid(pid, "uid_map"), &map_text(uids))?,
        MapWriter::Helper(tool) => rootless::run_map_tool(tool, pid, uids)?,
    }
    match rootless::map_writer(root, gid, gids, true) {
        MapWriter::Direct if !root && !gids.is_empty() => {
            write_proc(ProcFile::Pid(pid, "setgroups"), "deny")?;
            write_proc(ProcFile::Pid(pid, "gid_map"), &map_text(gids))
        }
        MapWriter::Direct => write_proc(ProcFile::Pid(pid, "gid_map"), &map_text(gids)),
        MapWriter::Helper(tool) => Ok(rootless::run_map_tool(tool, pid, gids)?),
    }
}

/// The uid_map and gid_map of process `pid`'s new user namespace, written
/// directly (by root: the user namespaces of idmapped mounts).
pub fn write_maps(pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<(), NsError> {
    write_proc(ProcFile::Pid(pid, "uid_map"), &map_text(uid))?;
    write_proc(ProcFile::Pid(pid, "gid_map"), &map_text(gid))
}

fn write_proc(file: ProcFile<'_>, text: &str) -> Result<(), NsError> {
    proc_files::write(file, text).map_err(|source| NsError::Write {
        path: file.path().display().to_string(),
        source,
    })
}

/// Offsets for a new time namespace, written by the process that
/// unshared it, before its first child (the init) is forked.
pub fn write_time_offsets(plan: &Plan) -> Result<(), NsError> {
    match &plan.time_offsets {
        Some(text) => write_proc(ProcFile::OwnSelf("timens_offsets"), text),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(json: serde_json::Value) -> Linux {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn plan_splits_new_and_joined() {
        let l = linux(serde_json::json!({"namespaces": [
            {"type": "pid"}, {"type": "mount"}, {"type": "user"},
            {"type": "network", "path": "/proc/self/ns/net"},
            {"type": "uts", "path": "/proc/self/ns/uts"}
        ]}));
        let p = plan(&l).unwrap();
        assert!(p.new_user);
        assert_eq!(
            p.unshare,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        assert_eq!(p.join.len(), 2);
        assert!(p.has(LinuxNamespaceType::Network) && !p.creates(LinuxNamespaceType::Network));
    }

    #[test]
    fn wrong_type_and_missing_path_are_named() {
        let l = linux(serde_json::json!({"namespaces": [
            {"type": "network", "path": "/proc/self/ns/uts"}
        ]}));
        let err = plan(&l).err().unwrap().to_string();
        assert_eq!(
            err,
            "namespace path /proc/self/ns/uts is a uts namespace, but linux.namespaces says net"
        );
        let l = linux(serde_json::json!({"namespaces": [
            {"type": "ipc", "path": "/etc/passwd"}
        ]}));
        assert!(plan(&l)
            .err()
            .unwrap()
            .to_string()
            .contains("not a namespace file"));
        let l = linux(serde_json::json!({"namespaces": [
            {"type": "ipc", "path": "/nonexistent/ns"}
        ]}));
        assert!(plan(&l)
            .err()
            .unwrap()
            .to_string()
            .contains("/nonexistent/ns"));
    }

    #[test]
    fn map_text_format() {
        let l = linux(serde_json::json!({"uidMappings": [
            {"containerID": 0, "hostID": 100000, "size": 65536}
        ]}));
        assert_eq!(
            map_text(l.uid_mappings().as_deref().unwrap()),
            "0 100000 65536\n"
        );
    }
}
