//! The container side of `create`: the intermediate process (joins and
//! unshares namespaces, then forks) and the container init (builds the
//! root filesystem and the process, waits on the exec fifo, execs).
//! Each step is one line; comments say where the kernel forces the order.

use std::convert::Infallible;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::sync::{Channel, Msg, SyncError};
use crate::container::proc_files::{self, ProcFile};
use crate::container::{hooks, namespaces, process, resolve, rootfs, terminal};
use crate::sys::process::{exit_now, fork, Forked};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Ns(#[from] namespaces::NsError),
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Terminal(#[from] terminal::TerminalError),
    #[error(transparent)]
    Caps(#[from] crate::container::capabilities::CapError),
    #[error(transparent)]
    Seccomp(#[from] crate::container::seccomp::SeccompError),
    #[error(transparent)]
    Cgroup(#[from] rtctr_cgroups::Error),
    #[error(transparent)]
    Lsm(#[from] crate::container::lsm::LsmError),
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: io::Error,
    },
}

fn sys(op: impl Into<String>) -> impl FnOnce(nix::Error) -> InitError {
    let op = op.into();
    move |e| InitError::Sys {
        op,
        source: e.into(),
    }
}

fn sys_io(op: impl Into<String>) -> impl FnOnce(io::Error) -> InitError {
    let op = op.into();
    move |source| InitError::Sys { op, source }
}

/// Everything the forked processes need; they share the parent's memory
/// image, so nothing is serialised.
pub struct Ctx<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub ns: &'a namespaces::Plan,
    pub cgroup: Option<&'a rtctr_cgroups::Cgroup>,
    pub fifo: PathBuf,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// To the parent, for the intermediate process.
    pub ns_chan: &'a Channel,
    /// To the parent, for the container init.
    pub init_chan: &'a Channel,
    /// The state directory's lock, inherited through fork: closed at once.
    pub lock_fd: std::os::fd::RawFd,
    /// Where the terminal master goes when process.terminal is set.
    pub console: Option<Console<'a>>,
    /// Capabilities, planned by the parent.
    pub caps: &'a crate::container::capabilities::CapabilityPlan,
    /// The compiled seccomp filter, if the config has one.
    pub seccomp: Option<&'a crate::container::seccomp::Program>,
}

/// The receiver of a container's terminal master.
#[derive(Clone)]
pub enum Console<'a> {
    /// `--console-socket`: a unix socket path to connect to.
    Path(&'a Path),
    /// A connected socket (`run` with a terminal and no socket).
    Fd(std::os::fd::BorrowedFd<'a>),
}

/// The intermediate process: never returns. `in_unified`: it was born
/// in the container's cgroup2 directory.
pub fn intermediate(ctx: &Ctx, in_unified: bool) -> ! {
    match run_intermediate(ctx, in_unified) {
        Ok(()) => exit_now(0),
        Err(e) => {
            ctx.ns_chan.send_error(&e);
            exit_now(1)
        }
    }
}

fn run_intermediate(ctx: &Ctx, in_unified: bool) -> Result<(), InitError> {
    let _ = nix::unistd::close(ctx.lock_fd);
    // rtctr run blocks signals to forward them; the container must not inherit that.
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(sys("sigprocmask"))?;
    // Join the cgroup while still in the host's namespaces, and before a
    // new cgroup namespace, whose root becomes this cgroup.
    if let Some(cg) = ctx.cgroup {
        cg.join_self(in_unified)?;
    }
    namespaces::join_all(ctx.ns)?;
    if ctx.ns.new_user {
        namespaces::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)?;
        ctx.ns_chan.send(&Msg::UsernsCreated)?;
        ctx.ns_chan.expect(Msg::MapsWritten, "MapsWritten")?;
    }
    if ctx.ns.has(LinuxNamespaceType::User) {
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(sys("setresgid 0 in the user namespace"))?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(sys("setresuid 0 in the user namespace"))?;
    }
    namespaces::unshare(ctx.ns.unshare)?;
    if ctx.ns.creates(LinuxNamespaceType::Time) {
        // Offsets can only be set before any process lives in the namespace.
        namespaces::write_time_offsets(ctx.spec.linux().as_ref().expect("validated"))?;
    }
    // A new pid (and time) namespace applies to children only: fork the init.
    match fork().map_err(sys_io("fork container init"))? {
        Forked::Parent(pid) => {
            ctx.ns_chan.send(&Msg::InitPid(pid.as_raw()))?;
            Ok(())
        }
        Forked::Child => init(ctx),
    }
}

fn init(ctx: &Ctx) -> ! {
    match run_init(ctx) {
        Ok(never) => match never {},
        Err(e) => {
            ctx.init_chan.send_error(&e);
            exit_now(1)
        }
    }
}

const TERMINATING: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGPIPE,
];

fn run_init(ctx: &Ctx) -> Result<Infallible, InitError> {
    let spec = ctx.spec;
    let proc_ = spec.process().as_ref().expect("validated");
    nix::unistd::setsid().map_err(sys("setsid"))?;
    // Until exec, nothing in the container may ptrace or open our fds.
    nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    crate::sys::process::exit_on_signals(TERMINATING).map_err(sys_io("sigaction"))?;
    if !ctx.no_new_keyring {
        match crate::sys::process::join_session_keyring(&format!("_ses.{}", ctx.id)) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EACCES)) => {}
            Err(e) => return Err(sys_io("join session keyring")(e)),
        }
    }
    let own_mounts = ctx.ns.has(LinuxNamespaceType::Mount);
    let root = if own_mounts {
        rootfs::prepare(spec, ctx.rootfs)?
    } else {
        rootfs::open_shared(ctx.rootfs)?
    };
    let cgroupns = ctx.ns.creates(LinuxNamespaceType::Cgroup);
    rootfs::mount_all(spec, &root, ctx.bundle, ctx.cgroup, cgroupns)?;
    if let Some(console) = &ctx.console {
        // Before pivot_root: the console socket is a host path.
        setup_terminal(console, root.fd.as_fd(), proc_)?;
    }
    // createRuntime hooks run in the parent once the namespaces exist.
    ctx.init_chan.send(&Msg::RuntimeHooks)?;
    let state_json = ctx.init_chan.expect_continue()?;
    bind_network_files(ctx, root.fd.as_fd())?;
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_deref())
    {
        hooks::run_all("createContainer", h, state_json.as_bytes())?;
    }
    set_names(spec)?;
    rootfs::sysctl(spec)?;
    if let Some(adj) = proc_.oom_score_adj() {
        let file = ProcFile::OwnSelf("oom_score_adj");
        proc_files::write(file, &adj.to_string())
            .map_err(sys_io(format!("write {}", file.path().display())))?;
    }
    let dev_null = rootfs::open_dev_null().map_err(sys_io("open /dev/null"))?;
    rootfs::protect_paths(spec, root.fd.as_fd(), &dev_null)?;
    resolve::mkdir_all(root.fd.as_fd(), proc_.cwd(), 0o755).map_err(sys_io(format!(
        "process.cwd {}: create",
        proc_.cwd().display()
    )))?;
    let fifo = open_fifo(&ctx.fifo)?;
    drop(dev_null);
    if !own_mounts {
        rootfs::chroot(&root)?;
    } else if ctx.no_pivot {
        rootfs::move_root(&root)?;
    } else {
        rootfs::pivot(&root)?;
    }
    drop(root);
    // Without a mount namespace `/` is the host's filesystem: never remount it.
    if own_mounts
        && spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
    {
        rootfs::readonly_root()?;
    }
    process::set_rlimits(proc_.rlimits().as_deref().unwrap_or_default())?;
    // Before seccomp (which may forbid fsopen) and the user switch.
    crate::container::lsm::set_exec_labels(proc_)?;
    // Only stdio and --preserve-fds reach the container (before any
    // seccomp filter, which may well forbid close_range).
    crate::sys::process::cloexec_from(3 + ctx.preserve_fds).map_err(sys_io("close_range"))?;
    let nnp = proc_.no_new_privileges().unwrap_or(false);
    let mut listener = None;
    if let (Some(filter), false) = (ctx.seccomp, nnp) {
        // Without no_new_privs the kernel wants CAP_SYS_ADMIN for the
        // filter: install it before the capabilities are dropped.
        listener = filter.install()?;
    }
    finalize_process(proc_, ctx.caps)?;
    let env = process::environment(proc_);
    let args = proc_.args().as_deref().expect("validated");
    let program = process::lookup(&args[0], &env)?;
    let argv = process::cstrings("process.args", args)?;
    let envp = process::cstrings("process.env", &env)?;
    let path = process::cpath(&program)?;
    if let (Some(filter), true) = (ctx.seccomp, nnp) {
        // As late as possible: rtctr's own set-up is not filtered.
        listener = filter.install()?;
    }
    if let Some(fd) = &listener {
        ctx.init_chan.send(&Msg::SeccompListener(fd.as_raw_fd()))?;
        // The parent copies it with pidfd_getfd before we go on.
        ctx.init_chan
            .expect(Msg::Continue(String::new()), "Continue")?;
    }
    drop(listener);
    ctx.init_chan.send(&Msg::Created)?;
    wait_for_start(fifo)?;
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_deref())
    {
        if let Err(e) = hooks::run_all("startContainer", h, &with_status(&state_json, "created")) {
            // create has returned and nobody reads the channel: the
            // container's stderr gets the error (as with runc).
            let _ = writeln!(io::stderr(), "rtctr init: {e}");
            return Err(e.into());
        }
    }
    let err = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
    Err(InitError::Sys {
        op: format!("exec {}", program.display()),
        source: err.into(),
    })
}

/// resolv.conf and hosts written by the network hook into the state dir
/// are bound over the image's /etc files when it has none (a read-only
/// image without /etc/resolv.conf is left alone).
fn bind_network_files(ctx: &Ctx, root: std::os::fd::BorrowedFd<'_>) -> Result<(), InitError> {
    let Some(state_dir) = ctx.fifo.parent() else {
        return Ok(());
    };
    for name in ["resolv.conf", "hosts"] {
        let source = state_dir.join(name);
        if !source.exists() {
            continue;
        }
        let dest = Path::new("/etc").join(name);
        if resolve::open_path(root, &dest, false)
            .is_ok_and(|fd| nix::sys::stat::fstat(fd.as_fd()).is_ok_and(|st| st.st_size > 0))
        {
            continue;
        }
        let Ok(target) = resolve::create_file(root, &dest) else {
            log::warn!("no /etc/{name} in the image and it is read-only: not providing one");
            continue;
        };
        nix::mount::mount(
            Some(&source),
            &resolve::fd_path(&target),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(format!("bind {} on /etc/{name}", source.display())))?;
    }
    Ok(())
}

/// A pty from the container's devpts: the master to the console
/// receiver, the peer on /dev/console and as stdio.
fn setup_terminal(
    console: &Console,
    root: std::os::fd::BorrowedFd<'_>,
    proc_: &Process,
) -> Result<(), InitError> {
    let pty = terminal::open_in_root(root)?;
    terminal::set_size(pty.master.as_fd(), proc_)?;
    terminal::bind_console(root, &pty.slave)?;
    match console {
        Console::Path(p) => terminal::send_to_socket(p, &pty.master)?,
        Console::Fd(fd) => terminal::send_fd(*fd, &pty.master)?,
    }
    drop(pty.master);
    terminal::make_stdio(&pty.slave)?;
    Ok(())
}

/// hostname and domainname (in the container's UTS namespace).
fn set_names(spec: &Spec) -> Result<(), InitError> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(sys(format!("hostname {h:?}: sethostname")))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        crate::sys::process::setdomainname(d)
            .map_err(sys_io(format!("domainname {d:?}: setdomainname")))?;
    }
    Ok(())
}

/// Bounding set, user and groups, the other capability sets, umask, cwd,
/// no_new_privs — in that order: capabilities must survive the uid switch
/// (keepcaps), and a cwd the user may not enter must fail.
pub(crate) fn finalize_process(
    proc_: &Process,
    caps: &crate::container::capabilities::CapabilityPlan,
) -> Result<(), InitError> {
    caps.drop_bounding()?;
    nix::sys::prctl::set_keepcaps(true).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
    process::switch_user(proc_)?;
    nix::sys::prctl::set_keepcaps(false).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
    caps.apply_after_user_switch()?;
    if let Some(mask) = proc_.user().umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    // Resolved inside "/" (the container's root, for init and exec alike)
    // without magic links: a cwd of /proc/self/fd/N cannot follow a host
    // directory fd that is still open here (CVE-2024-21626).
    let cwd = proc_.cwd();
    let what = |op: &str| format!("process.cwd {}: {op}", cwd.display());
    let root = File::open("/").map_err(sys_io(what("open /")))?;
    match resolve::open_path(root.as_fd(), cwd, false) {
        Ok(dir) => nix::unistd::fchdir(&dir).map_err(sys(what("chdir")))?,
        // openat2 refused by a seccomp profile older than it (installed
        // already when noNewPrivileges is false): chdir, then check as runc
        // does that the cwd is reachable from the root.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOSYS)) => {
            nix::unistd::chdir(cwd).map_err(sys(what("chdir")))?;
            if let Err(e) = std::env::current_dir() {
                if e.raw_os_error() == Some(libc::ENOENT) {
                    return Err(sys_io(what("outside the container root"))(e));
                }
            }
        }
        Err(e) => return Err(sys_io(what("resolve"))(e)),
    }
    if proc_.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().map_err(sys("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    }
    Ok(())
}

/// The exec fifo, opened for reading without blocking; `start` opens it
/// for writing and writes one byte.
fn open_fifo(path: &Path) -> Result<OwnedFd, InitError> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys(format!("open exec fifo {}", path.display())))
}

/// Blocks until `start` writes to the fifo. A FIFO reader polls as not
/// readable until a writer has come, so poll waits for exactly that.
fn wait_for_start(fifo: OwnedFd) -> Result<(), InitError> {
    use rustix::event::{poll, PollFd, PollFlags};
    loop {
        let mut fds = [PollFd::new(&fifo, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(sys_io("poll exec fifo")(e.into())),
        }
    }
    let mut f = File::from(fifo);
    let mut byte = [0u8; 1];
    let _ = f.read(&mut byte);
    Ok(())
}

/// The state JSON with another status (for hooks that run after create).
pub fn with_status(state_json: &str, status: &str) -> Vec<u8> {
    match serde_json::from_str::<serde_json::Value>(state_json) {
        Ok(mut v) => {
            v["status"] = status.into();
            serde_json::to_vec(&v).unwrap_or_default()
        }
        Err(_) => state_json.as_bytes().to_vec(),
    }
}
