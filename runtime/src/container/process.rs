//! The one path from "in the container's namespaces and root" to
//! `execve`, taken by the container init and by every `exec`'d process:
//! rlimits, the LSM exec label, descriptors, seccomp (before the user
//! switch unless no_new_privs), capabilities and user, umask, cwd,
//! no_new_privs, the program lookup, seccomp (after, with no_new_privs),
//! the seccomp listener handed to the runtime, and finally execve.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Linux, PosixRlimit, PosixRlimitType, Process};

use super::capabilities::{self, CapError, CapabilityPlan};
use super::lsm::{self, LsmError};
use super::resolve;
use super::sched;
use super::seccomp::{self, Program, SeccompError};
use super::sync::{Channel, Msg, SyncError};
use crate::spec::ValidProcess;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("rlimit {name}: cannot raise the hard limit from {current} to {wanted}: CAP_SYS_RESOURCE is not available to rtctr (set process.rlimits[{index}].hard to at most {current})")]
    RlimitAboveHard {
        name: String,
        index: usize,
        current: u64,
        wanted: u64,
    },
    #[error("rlimit {name}: setrlimit: {source}")]
    Rlimit {
        name: String,
        #[source]
        source: nix::Error,
    },
    #[error("{op}: {source}")]
    User {
        op: String,
        #[source]
        source: nix::Error,
    },
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec: {path:?}: {source}")]
    NotExecutable {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} contains a NUL byte")]
    Nul { what: String },
    #[error("process.cwd {cwd}: {op}: {source}")]
    Cwd {
        cwd: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("exec {program}: {source}")]
    Exec {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Lsm(#[from] LsmError),
    #[error(transparent)]
    Caps(#[from] CapError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Sched(#[from] sched::SchedError),
}

fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> ProcessError {
    move |e| ProcessError::Sys {
        op,
        source: e.into(),
    }
}

/// A process's own failures found before anything is forked.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Lsm(#[from] LsmError),
    #[error(transparent)]
    Caps(#[from] CapError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Sched(#[from] sched::SchedError),
}

/// What a container process is made of besides its config, planned by the
/// runtime before it forks (the child reads it from its copy of memory).
pub struct Plan {
    caps: CapabilityPlan,
    seccomp: Option<Program>,
    sched: sched::Sched,
}

impl Plan {
    /// Scheduler, I/O priority, CPU affinity, memory policy.
    pub fn sched(&self) -> &sched::Sched {
        &self.sched
    }

    /// The compiled `linux.seccomp` profile, if any.
    pub fn seccomp(&self) -> Option<&Program> {
        self.seccomp.as_ref()
    }
}

/// Checks that a requested LSM label can be applied, and computes the
/// capability sets and the seccomp program — for `create` and `exec` alike.
pub fn plan(process: &ValidProcess, linux: &Linux) -> Result<Plan, PlanError> {
    lsm::check_enabled(process)?;
    let (caps, warnings) = capabilities::plan(process.capabilities().as_ref())?;
    warnings.iter().for_each(|w| log::warn!("{w}"));
    let seccomp = linux.seccomp().as_ref().map(seccomp::compile).transpose()?;
    let sched = sched::plan(process, linux.memory_policy().as_ref())?;
    Ok(Plan {
        caps,
        seccomp,
        sched,
    })
}

/// Everything [`prepare`] works from.
pub struct Setup<'a> {
    pub process: &'a ValidProcess,
    pub plan: &'a Plan,
    /// `--preserve-fds`: descriptors 3..3+N stay open across execve.
    pub preserve_fds: u32,
}

/// A process with everything set but the program: only [`exec`] is left.
pub struct Ready {
    program: PathBuf,
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

/// Sets up the calling process, already in the container's namespaces and
/// root, as `setup.process` says. A seccomp notify listener is reported
/// over `chan`; the parent copies it before this returns.
pub fn prepare(setup: &Setup, chan: &Channel) -> Result<Ready, ProcessError> {
    let process = setup.process;
    set_rlimits(process.rlimits().as_deref().unwrap_or_default())?;
    // Realtime classes need privileges the user switch drops.
    sched::apply(&setup.plan.sched)?;
    // Before seccomp (which may forbid fsopen) and the user switch.
    lsm::set_exec_labels(process)?;
    // Only stdio and --preserve-fds reach the program (before any seccomp
    // filter, which may well forbid close_range).
    crate::sys::process::cloexec_from(3 + setup.preserve_fds).map_err(|source| {
        ProcessError::Sys {
            op: "close_range",
            source,
        }
    })?;
    let nnp = process.no_new_privileges();
    let mut listener = None;
    if let (Some(filter), false) = (setup.plan.seccomp(), nnp) {
        // Without no_new_privs the kernel wants CAP_SYS_ADMIN for the
        // filter: install it before the capabilities are dropped.
        listener = filter.install()?;
    }
    become_user(process, &setup.plan.caps)?;
    let ready = resolve_program(process)?;
    if let (Some(filter), true) = (setup.plan.seccomp(), nnp) {
        // As late as possible: rtctr's own set-up is not filtered.
        listener = filter.install()?;
    }
    if let Some(fd) = listener {
        chan.send(&Msg::SeccompListener(fd.as_raw_fd()))?;
        // The parent copies it with pidfd_getfd before we go on.
        chan.expect(Msg::ListenerTaken)?;
    }
    Ok(ready)
}

/// execve: returns only the error.
pub fn exec(ready: Ready) -> ProcessError {
    let result: Result<Infallible, _> = nix::unistd::execve(&ready.path, &ready.argv, &ready.envp);
    let source = match result {
        Ok(never) => match never {},
        Err(e) => e.into(),
    };
    ProcessError::Exec {
        program: ready.program,
        source,
    }
}

/// Bounding set, user and groups, the other capability sets, umask, cwd,
/// no_new_privs — in that order: capabilities must survive the uid switch
/// (keepcaps), and a cwd the user may not enter must fail.
fn become_user(process: &ValidProcess, caps: &CapabilityPlan) -> Result<(), ProcessError> {
    caps.drop_bounding()?;
    nix::sys::prctl::set_keepcaps(true).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
    switch_user(process)?;
    nix::sys::prctl::set_keepcaps(false).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
    caps.apply_after_user_switch()?;
    if let Some(mask) = process.user().umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    enter_cwd(process.cwd())?;
    if process.no_new_privileges() {
        nix::sys::prctl::set_no_new_privs().map_err(sys("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    }
    Ok(())
}

/// chdir to `cwd`, resolved inside "/" (the container's root) without magic
/// links: a cwd of /proc/self/fd/N cannot follow a host directory fd that
/// is still open here (CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<(), ProcessError> {
    let err = |op| {
        move |e: io::Error| ProcessError::Cwd {
            cwd: cwd.to_path_buf(),
            op,
            source: e,
        }
    };
    let root = File::open("/").map_err(err("open /"))?;
    match resolve::open_path(root.as_fd(), cwd, false) {
        Ok(dir) => nix::unistd::fchdir(&dir).map_err(|e| err("chdir")(e.into())),
        // openat2 refused by a seccomp profile older than it (installed
        // already when noNewPrivileges is false): chdir, then check as runc
        // does that the cwd is reachable from the root.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOSYS)) => {
            nix::unistd::chdir(cwd).map_err(|e| err("chdir")(e.into()))?;
            match std::env::current_dir() {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    Err(err("outside the container root")(e))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(err("resolve")(e)),
    }
}

/// The program found in the container's PATH, and execve's arguments.
fn resolve_program(process: &ValidProcess) -> Result<Ready, ProcessError> {
    let env = environment(process);
    let program = lookup(process.program(), &env)?;
    Ok(Ready {
        path: cpath(&program)?,
        argv: cstrings("process.args", process.argv())?,
        envp: cstrings("process.env", &env)?,
        program,
    })
}

fn rlimit_resource(t: PosixRlimitType) -> Resource {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => Resource::RLIMIT_CPU,
        RlimitFsize => Resource::RLIMIT_FSIZE,
        RlimitData => Resource::RLIMIT_DATA,
        RlimitStack => Resource::RLIMIT_STACK,
        RlimitCore => Resource::RLIMIT_CORE,
        RlimitRss => Resource::RLIMIT_RSS,
        RlimitNproc => Resource::RLIMIT_NPROC,
        RlimitNofile => Resource::RLIMIT_NOFILE,
        RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        RlimitAs => Resource::RLIMIT_AS,
        RlimitLocks => Resource::RLIMIT_LOCKS,
        RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        RlimitNice => Resource::RLIMIT_NICE,
        RlimitRtprio => Resource::RLIMIT_RTPRIO,
        RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

fn rlimit_name(t: PosixRlimitType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{t:?}"))
}

/// setrlimit for each configured limit. Raising a hard limit needs
/// CAP_SYS_RESOURCE, which some hosts withhold: say so plainly.
fn set_rlimits(rlimits: &[PosixRlimit]) -> Result<(), ProcessError> {
    for (index, r) in rlimits.iter().enumerate() {
        let resource = rlimit_resource(r.typ());
        let name = rlimit_name(r.typ());
        if let Err(source) = setrlimit(resource, r.soft(), r.hard()) {
            if source == nix::Error::EPERM {
                if let Ok((_, current)) = getrlimit(resource) {
                    if r.hard() > current {
                        return Err(ProcessError::RlimitAboveHard {
                            name,
                            index,
                            current,
                            wanted: r.hard(),
                        });
                    }
                }
            }
            return Err(ProcessError::Rlimit { name, source });
        }
    }
    Ok(())
}

/// setgroups, setresgid, setresuid for `process.user`.
fn switch_user(process: &Process) -> Result<(), ProcessError> {
    let user = process.user();
    let err = |op: String| move |source| ProcessError::User { op, source };
    let gids: Vec<Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups is refused in a user namespace whose setgroups is "deny";
    // only an explicit list is an error then.
    if let Err(e) = nix::unistd::setgroups(&gids) {
        if !gids.is_empty() || e != nix::Error::EPERM {
            return Err(err(format!("setgroups {:?}", user.additional_gids()))(e));
        }
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(err(format!("setresgid {}", user.gid())))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(err(format!("setresuid {}", user.uid())))?;
    Ok(())
}

/// The environment for execve, with HOME added from the container's
/// /etc/passwd when the config has none (as runc does).
fn environment(process: &Process) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = passwd_field(process.user().uid(), 5).unwrap_or_else(|| "/".to_string());
        env.push(format!("HOME={home}"));
    }
    env
}

/// Field `i` of `uid`'s line in /etc/passwd (0: name, 5: home), read as a
/// file, as runc does: no NSS (the binary is static).
pub(crate) fn passwd_field(uid: u32, i: usize) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid)).then(|| f[i].to_string())
    })
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds `program` as execvp would, with PATH from the container's env.
fn lookup(program: &str, env: &[String]) -> Result<PathBuf, ProcessError> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        check_executable(&p).map_err(|source| ProcessError::NotExecutable {
            path: program.to_string(),
            source,
        })?;
        return Ok(p);
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        if check_executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(ProcessError::NotFound(program.to_string()))
}

fn check_executable(p: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(p)?;
    if meta.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::from_raw_os_error(libc::EACCES));
    }
    Ok(())
}

/// Converts strings for execve.
fn cstrings(what: &str, items: &[String]) -> Result<Vec<CString>, ProcessError> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes()).map_err(|_| ProcessError::Nul {
                what: what.to_string(),
            })
        })
        .collect()
}

fn cpath(p: &Path) -> Result<CString, ProcessError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| ProcessError::Nul {
        what: p.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_path_from_env() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(lookup("sh", &env).unwrap(), PathBuf::from("/bin/sh"));
        let err = lookup("no-such-program-xyz", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec: \"no-such-program-xyz\": executable file not found in $PATH"
        );
        assert!(lookup("/etc/passwd", &env).is_err());
    }

    #[test]
    fn rlimit_names_are_spec_names() {
        assert_eq!(rlimit_name(PosixRlimitType::RlimitNofile), "RLIMIT_NOFILE");
    }
}
