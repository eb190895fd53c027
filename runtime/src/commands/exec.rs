//! `rtctr exec`: run another process in a running container. It joins
//! the container's cgroup and every namespace of its init (by
//! /proc/<init>/ns/*), then gets the same treatment as the init: rlimits,
//! capabilities, user, cwd, no_new_privs, seccomp — and a terminal when
//! asked for.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::container::init::{finalize_process, InitError};
use crate::container::sync::{self, Msg, SyncError};
use crate::container::{capabilities, namespaces, process, seccomp, terminal};
use crate::state::{StateError, Status, Store};
use crate::sys::process::{exit_now, fork, fork_into_cgroup, Forked};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot exec in container {id}: it is {status}")]
    NotRunning { id: String, status: Status },
    #[error("cannot exec in container {0}: it is paused (use --ignore-paused)")]
    Paused(String),
    #[error("config snapshot: {0}")]
    Config(#[from] crate::spec::SpecError),
    #[error("--process {path}: {msg}")]
    ProcessFile { path: PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Ns(#[from] namespaces::NsError),
    #[error(transparent)]
    Caps(#[from] capabilities::CapError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Terminal(#[from] terminal::TerminalError),
    #[error(transparent)]
    Run(#[from] crate::commands::run::RunError),
    #[error(transparent)]
    Create(#[from] crate::container::parent::CreateError),
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
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

/// The process to run: `--process FILE`, or the container's own process
/// with the flags applied (as runc builds it).
pub fn build_process(spec: &Spec, o: &ExecOptions) -> Result<Process, ExecError> {
    if let Some(path) = &o.process {
        let raw = std::fs::read(path).map_err(|e| ExecError::ProcessFile {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        let mut de = serde_json::Deserializer::from_slice(&raw);
        return serde_path_to_error::deserialize(&mut de).map_err(|e| ExecError::ProcessFile {
            path: path.clone(),
            msg: format!("{}: {}", e.path(), e.inner()),
        });
    }
    if o.args.is_empty() {
        return Err(ExecError::Invalid(
            "exec needs a command (or --process FILE)".into(),
        ));
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(o.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &o.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let bad = || ExecError::Invalid(format!("--user {user:?}: expected uid[:gid] as numbers"));
        let mut u = p.user().clone();
        u.set_uid(uid.parse().map_err(|_| bad())?);
        if let Some(g) = gid {
            u.set_gid(g.parse().map_err(|_| bad())?);
        }
        p.set_user(u);
    }
    if !o.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(o.additional_gids.clone()));
        p.set_user(u);
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &o.caps {
            let cap = capabilities::parse_name(name)?;
            let cap: oci_spec::runtime::Capability = capabilities::name(cap)
                .trim_start_matches("CAP_")
                .parse()
                .map_err(|_| ExecError::Invalid(format!("--cap {name}: unknown capability")))?;
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
    }
    Ok(p)
}

pub fn exec(store: &Store, o: &ExecOptions) -> Result<i32, ExecError> {
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
    let spec = crate::commands::start::load_snapshot(&dir)?;
    drop(dir);
    let proc_ = build_process(&spec, o)?;
    if !proc_.cwd().is_absolute() {
        return Err(ExecError::Invalid(format!(
            "cwd {:?} is not absolute",
            proc_.cwd()
        )));
    }
    let tty = proc_.terminal().unwrap_or(false);
    if tty && o.detach && o.console_socket.is_none() {
        return Err(ExecError::Invalid(
            "cannot allocate a terminal if rtctr detaches without --console-socket".into(),
        ));
    }
    let (caps, _warnings) = capabilities::plan(proc_.capabilities().as_ref())?;
    let linux = spec.linux().clone().unwrap_or_default();
    let filter = linux.seccomp().as_ref().map(seccomp::compile).transpose()?;
    let ns = join_plan(&linux, state.pid)?;
    let sfd = if o.detach {
        None
    } else {
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| ExecError::Io {
            op: "prctl(PR_SET_CHILD_SUBREAPER)",
            source: e.into(),
        })?;
        let set = crate::commands::run::forwarded();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(|e| {
            ExecError::Io {
                op: "sigprocmask",
                source: e.into(),
            }
        })?;
        Some(
            SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(|e| ExecError::Io {
                op: "signalfd",
                source: e.into(),
            })?,
        )
    };
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ExecError::Io {
        op: "socketpair",
        source: e.into(),
    })?;
    // Connected here: the process joins the container's mount namespace
    // before it could reach a host path.
    let console_conn = match &o.console_socket {
        Some(path) if tty => Some(std::os::unix::net::UnixStream::connect(path).map_err(
            |source| ExecError::Io {
                op: "connect --console-socket",
                source,
            },
        )?),
        _ => None,
    };
    let (parent, child) = sync::pair().map_err(|source| ExecError::Io {
        op: "socketpair",
        source,
    })?;
    let job = Job {
        proc_: &proc_,
        caps: &caps,
        seccomp: filter.as_ref(),
        ns: &ns,
        cgroup: state.cgroup.as_ref(),
        console_fd: match &console_conn {
            Some(conn) => Some(conn.as_fd()),
            None => tty.then(|| theirs.as_fd()),
        },
        preserve_fds: o.preserve_fds,
        chan: &child,
    };
    // Born in the container's cgroup2 directory where there is one.
    let forked = fork_into_cgroup(state.cgroup.as_ref().and_then(|cg| cg.unified_dir()));
    match forked.map_err(|source| ExecError::Io { op: "fork", source })? {
        (Forked::Child, in_unified) => {
            drop(parent);
            intermediate(&job, in_unified)
        }
        (Forked::Parent(x), _) => {
            drop(child);
            drop(theirs);
            let pid = match parent.expect_init_pid() {
                Ok(pid) => pid,
                Err(e) => {
                    let _ = nix::sys::wait::waitpid(x, None);
                    return Err(e.into());
                }
            };
            let _ = nix::sys::wait::waitpid(x, None);
            let pty = if tty && o.console_socket.is_none() {
                Some(terminal::recv_fd(ours.as_fd())?)
            } else {
                None
            };
            // EOF: the process exec'd (the channel is close-on-exec).
            match parent.recv() {
                Err(SyncError::Eof) => {}
                Err(e) => {
                    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                    return Err(e.into());
                }
                Ok(m) => {
                    return Err(SyncError::Unexpected {
                        got: format!("{m:?}"),
                        want: "exec",
                    }
                    .into())
                }
            }
            if let Some(p) = &o.pid_file {
                crate::container::parent::write_pid_file(p, pid)?;
            }
            match sfd {
                None => Ok(0),
                Some(sfd) => Ok(crate::commands::run::wait_child(&sfd, pid, pty.as_ref())?),
            }
        }
    }
}

/// Every namespace of the container, joined through its init's /proc files.
fn join_plan(linux: &oci_spec::runtime::Linux, init: i32) -> Result<namespaces::Plan, ExecError> {
    let mut list = Vec::new();
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        let name = ns_file(ns.typ());
        list.push(serde_json::json!({"type": ns.typ(), "path": format!("/proc/{init}/ns/{name}")}));
    }
    let linux: oci_spec::runtime::Linux =
        serde_json::from_value(serde_json::json!({ "namespaces": list }))
            .map_err(|e| ExecError::Invalid(e.to_string()))?;
    Ok(namespaces::plan(&linux)?)
}

fn ns_file(t: LinuxNamespaceType) -> &'static str {
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

struct Job<'a> {
    proc_: &'a Process,
    caps: &'a capabilities::CapabilityPlan,
    seccomp: Option<&'a seccomp::Program>,
    ns: &'a namespaces::Plan,
    cgroup: Option<&'a rtctr_cgroups::Cgroup>,
    /// Receives the pty master (the connected --console-socket, or run's own).
    console_fd: Option<std::os::fd::BorrowedFd<'a>>,
    preserve_fds: u32,
    chan: &'a sync::Channel,
}

fn intermediate(job: &Job, in_unified: bool) -> ! {
    let result = (|| -> Result<(), InitError> {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .map_err(|e| InitError::Sys {
                op: "sigprocmask".into(),
                source: e.into(),
            })?;
        // Before joining the container: nothing in it may open our
        // /proc/<pid>/exe (rtctr) or fds, or ptrace us; the forked child
        // inherits this until its execve.
        nix::sys::prctl::set_dumpable(false).map_err(|e| InitError::Sys {
            op: "prctl(PR_SET_DUMPABLE)".into(),
            source: e.into(),
        })?;
        if let Some(cg) = job.cgroup {
            cg.join_self(in_unified)?;
        }
        namespaces::join_all(job.ns)?;
        // The pid namespace applies to children: fork the process itself.
        match fork().map_err(|source| InitError::Sys {
            op: "fork".into(),
            source,
        })? {
            Forked::Parent(pid) => {
                job.chan.send(&Msg::InitPid(pid.as_raw()))?;
                Ok(())
            }
            Forked::Child => {
                let e = match run_process(job) {
                    Ok(never) => match never {},
                    Err(e) => e,
                };
                job.chan.send_error(&e);
                exit_now(1)
            }
        }
    })();
    match result {
        Ok(()) => exit_now(0),
        Err(e) => {
            job.chan.send_error(&e);
            exit_now(1)
        }
    }
}

fn run_process(job: &Job) -> Result<std::convert::Infallible, InitError> {
    let proc_ = job.proc_;
    let sys = |op: &str| {
        let op = op.to_string();
        move |e: nix::Error| InitError::Sys {
            op,
            source: e.into(),
        }
    };
    if let Some(console) = job.console_fd {
        nix::unistd::setsid().map_err(sys("setsid"))?;
        let root: OwnedFd = std::fs::File::open("/")
            .map_err(|source| InitError::Sys {
                op: "open /".into(),
                source,
            })?
            .into();
        let pty = terminal::open_in_root(root.as_fd())?;
        terminal::set_size(pty.master.as_fd(), proc_)?;
        terminal::send_fd(console, &pty.master)?;
        drop(pty.master);
        terminal::make_stdio(&pty.slave)?;
    }
    process::set_rlimits(proc_.rlimits().as_deref().unwrap_or_default())?;
    crate::container::lsm::set_exec_labels(proc_)?;
    crate::sys::process::cloexec_from(3 + job.preserve_fds).map_err(|source| InitError::Sys {
        op: "close_range".into(),
        source,
    })?;
    let nnp = proc_.no_new_privileges().unwrap_or(false);
    if let (Some(f), false) = (job.seccomp, nnp) {
        f.install()?;
    }
    finalize_process(proc_, job.caps)?;
    let env = process::environment(proc_);
    let args = proc_.args().as_deref().unwrap_or_default();
    let program = process::lookup(&args[0], &env)?;
    let argv = process::cstrings("process.args", args)?;
    let envp = process::cstrings("process.env", &env)?;
    let path = process::cpath(&program)?;
    if let (Some(f), true) = (job.seccomp, nnp) {
        f.install()?;
    }
    let err = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
    Err(InitError::Sys {
        op: format!("exec {}", program.display()),
        source: err.into(),
    })
}
