//! `rtctr exec`: run another process in a running container. The process
//! comes from `--process FILE` (validated as config.json's `process` is) or
//! from the container's own with the flags applied; it joins the
//! container's cgroup and namespaces and takes the init's path to execve.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{Process, Spec};

use crate::container::supervise::{SuperviseError, Supervisor};
use crate::container::tenant::{self, TenantError};
use crate::container::{capabilities, namespaces, process, terminal};
use crate::spec::{self, SpecError, ValidProcess};
use crate::state::{self, State, StateError, Status, Store};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot exec in container {id}: it is {status}")]
    NotRunning { id: String, status: Status },
    #[error("cannot exec in container {0}: it is paused (use --ignore-paused)")]
    Paused(String),
    #[error("config snapshot: {0}")]
    Config(#[source] SpecError),
    #[error("--process {path}: {msg}")]
    ProcessFile { path: PathBuf, msg: String },
    #[error(transparent)]
    Process(#[from] SpecError),
    #[error("exec needs a command (or --process FILE)")]
    NoCommand,
    #[error("--user {0:?}: expected uid[:gid] as numbers")]
    BadUser(String),
    #[error("--cap {0}: unknown capability")]
    UnknownCap(String),
    #[error("cannot allocate a terminal if rtctr detaches without --console-socket")]
    DetachedTerminal,
    #[error(transparent)]
    Ns(#[from] namespaces::NsError),
    #[error(transparent)]
    Plan(#[from] process::PlanError),
    #[error(transparent)]
    Caps(#[from] capabilities::CapError),
    #[error(transparent)]
    Terminal(#[from] terminal::TerminalError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Supervise(#[from] SuperviseError),
}

/// The command line of `exec`.
#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    pub id: String,
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
}

pub fn exec(store: &Store, o: &ExecOptions) -> Result<i32, ExecError> {
    let (state, spec) = load_running(store, o)?;
    let process = build_process(&spec, o)?;
    if process.terminal() && o.detach && o.console_socket.is_none() {
        return Err(ExecError::DetachedTerminal);
    }
    let linux = spec.linux().clone().unwrap_or_default();
    let plan = process::plan(&process, &linux)?;
    let ns = namespaces::plan_joining(&linux, state.pid)?;
    let supervisor = match o.detach {
        true => None,
        false => Some(Supervisor::new(true)?),
    };
    let (console, proxy) = console(&process, o)?;
    let setup = process::Setup {
        process: &process,
        plan: &plan,
        preserve_fds: o.preserve_fds,
    };
    let pid = tenant::spawn(&state, &ns, &setup, console.as_ref().map(|c| c.as_fd()))?;
    drop(console);
    let pty = proxy
        .map(|ours| terminal::recv_fd(ours.as_fd()))
        .transpose()?;
    if let Some(p) = &o.pid_file {
        state::write_pid_file(p, pid)?;
    }
    match supervisor {
        None => Ok(0),
        Some(s) => Ok(s.wait(pid, pty.as_ref())?),
    }
}

/// The container's state and config snapshot, if it can take a process.
fn load_running(store: &Store, o: &ExecOptions) -> Result<(State, Spec), ExecError> {
    let dir = store.open(&o.id)?;
    let state = dir.load()?;
    match dir.status(&state) {
        Status::Running | Status::Created => {}
        Status::Paused if o.ignore_paused => {}
        Status::Paused => return Err(ExecError::Paused(o.id.clone())),
        status => {
            return Err(ExecError::NotRunning {
                id: o.id.clone(),
                status,
            })
        }
    }
    let spec = dir.config().map_err(ExecError::Config)?;
    Ok((state, spec))
}

/// Where the pty master goes: --console-socket (connected here, a host
/// path), or (proxy) rtctr's own socket, from which it is received.
fn console(
    process: &ValidProcess,
    o: &ExecOptions,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>), ExecError> {
    if !process.terminal() {
        return Ok((None, None));
    }
    if let Some(path) = &o.console_socket {
        return Ok((Some(terminal::connect(path)?), None));
    }
    let (ours, theirs) = terminal::proxy_pair()?;
    Ok((Some(theirs), Some(ours)))
}

/// The process to run: `--process FILE`, or the container's own process
/// with the flags applied (as runc builds it); validated either way.
pub fn build_process(spec: &Spec, o: &ExecOptions) -> Result<ValidProcess, ExecError> {
    if let Some(path) = &o.process {
        let process = read_process_file(path)?;
        return Ok(spec::validate_process(
            process,
            &path.display().to_string(),
            "",
        )?);
    }
    if o.args.is_empty() {
        return Err(ExecError::NoCommand);
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    p.set_env(Some(with_env(
        p.env().as_deref().unwrap_or_default(),
        &o.env,
    )));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    apply_user(&mut p, o)?;
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    add_caps(&mut p, &o.caps)?;
    Ok(spec::validate_process(p, "exec", "")?)
}

/// `--env NAME=value` replaces the container's `NAME` (as runc does),
/// and adds it when there is none.
fn with_env(base: &[String], extra: &[String]) -> Vec<String> {
    let name = |e: &str| e.split('=').next().unwrap_or_default().to_string();
    let mut env: Vec<String> = base.to_vec();
    for e in extra {
        match env.iter().position(|b| name(b) == name(e)) {
            Some(i) => env[i] = e.clone(),
            None => env.push(e.clone()),
        }
    }
    env
}

fn read_process_file(path: &std::path::Path) -> Result<Process, ExecError> {
    let bad = |msg: String| ExecError::ProcessFile {
        path: path.to_path_buf(),
        msg,
    };
    let raw = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut de = serde_json::Deserializer::from_slice(&raw);
    let process = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| bad(format!("{}: {}", e.path(), e.inner())))?;
    // Like config.json: anything after the object is an error, not ignored.
    de.end().map_err(|e| bad(e.to_string()))?;
    Ok(process)
}

/// `--user uid[:gid]` and `--additional-gids`.
fn apply_user(p: &mut Process, o: &ExecOptions) -> Result<(), ExecError> {
    let mut u = p.user().clone();
    if let Some(user) = &o.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let bad = || ExecError::BadUser(user.clone());
        u.set_uid(uid.parse().map_err(|_| bad())?);
        if let Some(g) = gid {
            u.set_gid(g.parse().map_err(|_| bad())?);
        }
    }
    if !o.additional_gids.is_empty() {
        u.set_additional_gids(Some(o.additional_gids.clone()));
    }
    p.set_user(u);
    Ok(())
}

/// `--cap`: added to the bounding, effective and permitted sets.
fn add_caps(p: &mut Process, names: &[String]) -> Result<(), ExecError> {
    if names.is_empty() {
        return Ok(());
    }
    let mut caps = p.capabilities().clone().unwrap_or_default();
    for name in names {
        let cap = capabilities::parse_name(name)?;
        let cap: oci_spec::runtime::Capability = capabilities::name(cap)
            .trim_start_matches("CAP_")
            .parse()
            .map_err(|_| ExecError::UnknownCap(name.clone()))?;
        let add = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut set = set.clone().unwrap_or_default();
            set.insert(cap);
            Some(set)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
    }
    p.set_capabilities(Some(caps));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flags_replace_and_add() {
        let base = [
            "PATH=/bin".to_string(),
            "A=1".to_string(),
            "B=2".to_string(),
        ];
        let extra = ["A=x".to_string(), "C=3".to_string(), "A=y".to_string()];
        assert_eq!(with_env(&base, &extra), ["PATH=/bin", "A=y", "B=2", "C=3"]);
    }
}
