//! The container process's own settings: liveness of a pid, rlimits,
//! user and groups, environment and the executable lookup.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType, Process};

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
}

/// Is `pid` alive and still the process that started at `start`
/// (clock ticks after boot)? A zombie counts as dead.
pub fn is_alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match procfs::process::Process::new(pid).and_then(|p| p.stat()) {
        Ok(stat) => stat.starttime == start && stat.state != 'Z' && stat.state != 'X',
        Err(_) => false,
    }
}

/// The start time of `pid` in clock ticks after boot.
pub fn start_time(pid: i32) -> io::Result<u64> {
    procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .map(|s| s.starttime)
        .map_err(|e| io::Error::other(e.to_string()))
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
pub fn set_rlimits(rlimits: &[PosixRlimit]) -> Result<(), ProcessError> {
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
pub fn switch_user(process: &Process) -> Result<(), ProcessError> {
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
pub fn environment(process: &Process) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(process.user().uid()).unwrap_or_else(|| "/".to_string());
        env.push(format!("HOME={home}"));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
    })
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds `program` as execvp would, with PATH from the container's env.
pub fn lookup(program: &str, env: &[String]) -> Result<PathBuf, ProcessError> {
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
pub fn cstrings(what: &str, items: &[String]) -> Result<Vec<CString>, ProcessError> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes()).map_err(|_| ProcessError::Nul {
                what: what.to_string(),
            })
        })
        .collect()
}

pub fn cpath(p: &Path) -> Result<CString, ProcessError> {
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
    fn own_process_is_alive_and_start_checked() {
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap();
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
        assert!(!is_alive(0, 0));
    }

    #[test]
    fn rlimit_names_are_spec_names() {
        assert_eq!(rlimit_name(PosixRlimitType::RlimitNofile), "RLIMIT_NOFILE");
    }
}
