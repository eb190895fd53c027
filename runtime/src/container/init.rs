//! The container side: the process rtctr forks into the container's
//! cgroup and namespaces — directly, or through an intermediate process
//! that enters them and forks (see [`spawn`]) — which becomes the
//! container init ([`run_init`]: builds the root filesystem, waits on the
//! exec fifo) or a process `exec` adds to a running container
//! ([`run_tenant`]). Both end in [`process::prepare`] and [`process::exec`].
//! Each step is one line; comments say where the kernel forces the order.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::{Gid, Pid, Uid};
use oci_spec::runtime::LinuxNamespaceType;

use super::plan::Plan;
use super::proc_files::{self, ProcFile};
use super::sync::{self, Channel, Msg, SyncError};
use super::{hooks, namespaces, network, pidfd, process, resolve, rootfs, sched, terminal};
use crate::sys::process::{clone_into, exit_now, fork, Forked};
use nix::sched::CloneFlags;

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
    Cgroup(#[from] rtctr_cgroups::Error),
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    #[error(transparent)]
    Sched(#[from] sched::SchedError),
    #[error("config.json has no process to start")]
    NoProcess,
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

/// What the intermediate process enters before it forks.
pub struct Enter<'a> {
    pub cgroup: Option<&'a rtctr_cgroups::Cgroup>,
    /// The parent makes `cgroup` after the clone (but for its cgroup2
    /// directory, which the child is cloned into) and sends
    /// [`Msg::CgroupReady`] (see [`Spawned::cgroup_ready`]).
    pub cgroup_after_clone: bool,
    pub ns: &'a namespaces::Plan,
    /// The state directory's lock, inherited through fork: closed at once,
    /// or the container would hold it for as long as it lives.
    pub lock_fd: Option<RawFd>,
    /// `process.execCPUAffinity`, when the process has one.
    pub sched: Option<&'a sched::Sched>,
}

/// What [`spawn`] forked, and the parent's ends of its two channels.
pub struct Spawned {
    /// The intermediate process, or the child itself when it needed none.
    pub forked: Pid,
    /// The child was forked by rtctr itself, not by an intermediate.
    direct: bool,
    /// From the intermediate: user namespace maps, then the child's pid.
    ns: Channel,
    /// From the child it forks: everything after. A channel of its own,
    /// so that nothing the child says can overtake the child's pid.
    pub child: Channel,
}

impl Spawned {
    /// Tells the process that enters the namespaces that its cgroup is
    /// made ([`Enter::cgroup_after_clone`]). A child that failed before
    /// has closed its end; its error is what the parent reads next.
    pub fn cgroup_ready(&self) {
        let chan = if self.direct { &self.child } else { &self.ns };
        if let Err(e) = chan.send(&Msg::CgroupReady) {
            log::debug!("tell the child its cgroup is ready: {e}");
        }
    }

    /// The child's pid and start time. From an intermediate, which may
    /// first ask for its user namespace maps (`write_maps`), then exits
    /// and is reaped; a child rtctr forked itself is read from /proc (it
    /// is not reaped yet, so even a dead one is there).
    pub fn child_pid<E: From<SyncError>>(
        &self,
        write_maps: impl FnMut() -> Result<(), E>,
    ) -> Result<(i32, u64), E> {
        let pid = self.forked.as_raw();
        if self.direct {
            let start = crate::state::start_time(pid).map_err(SyncError::ChildStart)?;
            return Ok((pid, start));
        }
        let child = self.ns.await_child_pid(write_maps);
        if let Err(e) = nix::sys::wait::waitpid(self.forked, None) {
            log::debug!("reap the intermediate process {pid}: {e}");
        }
        child
    }
}

/// Forks the process that runs `then` in the container (born in its
/// cgroup2 directory where there is one).
///
/// Without a user or time namespace, that process is born in its pid
/// namespace — a new one (CLONE_NEWPID), or the one it joins, which rtctr
/// enters for its children around the fork — and enters the rest itself.
/// Otherwise (or when rtctr may not enter that pid namespace and come
/// back: in a user namespace)
/// an intermediate process enters them and forks it, because the kernel
/// applies a joined pid namespace and a time namespace only to children,
/// and a new user namespace needs its maps (written by rtctr) and its
/// cgroup (joined with the host's ids) before the namespaces it will own.
pub fn spawn<E: StdError + 'static>(
    enter: &Enter,
    then: impl FnOnce(&Channel) -> Result<Infallible, E>,
) -> io::Result<Spawned> {
    let (ns, ns_theirs) = sync::pair()?;
    let (child, child_theirs) = sync::pair()?;
    let rtctr = nix::unistd::getpid();
    // execCPUAffinity.initial: the CPUs it runs on before the cgroup join,
    // set on rtctr around the fork (the child may be born in the cgroup).
    let initial = enter.sched.and_then(|s| s.initial_cpus.as_ref());
    let restore = initial.and_then(|_| sched::current_cpus());
    if let Some(cpus) = initial {
        sched::set_cpus("process.execCPUAffinity.initial", cpus).map_err(io::Error::other)?;
    }
    let mut direct = !enter.ns.needs_intermediate();
    let mut own_pid_ns = None;
    if let (true, Some(join)) = (direct, enter.ns.joined_pid()) {
        match namespaces::enter_pid_for_children(join) {
            Ok(own) => own_pid_ns = Some(own),
            Err(e) => {
                log::debug!("join {} through an intermediate: {e}", join.path.display());
                direct = false;
            }
        }
    }
    let (flags, born_in) = match direct {
        true => (
            enter.ns.unshare & CloneFlags::CLONE_NEWPID,
            CloneFlags::CLONE_NEWPID,
        ),
        false => (CloneFlags::empty(), CloneFlags::empty()),
    };
    let rtctr_cpu = nix::sched::sched_getcpu().ok();
    let forked = clone_into(flags, enter.cgroup.and_then(|cg| cg.unified_dir()));
    if !matches!(forked, Ok((Forked::Child, _))) {
        back_to_own(restore, own_pid_ns.take(), &forked)?;
    }
    drop(own_pid_ns);
    match forked? {
        (Forked::Child, in_unified) if direct => {
            drop((ns, ns_theirs, child));
            // No pdeathsig: this is the container's process, which must
            // outlive rtctr. Until then it talks with rtctr, and the end of
            // the channel at its next message tells it rtctr is gone.
            if let Err(e) = enter_namespaces(enter, born_in, in_unified, rtctr_cpu, &child_theirs) {
                child_theirs.send_error(&e);
                exit_now(1)
            }
            let Err(e) = then(&child_theirs);
            child_theirs.send_error(&e);
            exit_now(1)
        }
        (Forked::Child, in_unified) => {
            drop((ns, child));
            die_with(rtctr);
            intermediate(enter, in_unified, ns_theirs, child_theirs, then)
        }
        (Forked::Parent(forked), _) => {
            if enter.cgroup_after_clone {
                // The child runs now, on this CPU, and steps aside to another
                // one (sched::step_aside) before it makes its namespaces.
                let _ = nix::sched::sched_yield();
            }
            Ok(Spawned {
                forked,
                direct,
                ns,
                child,
            })
        }
    }
}

/// rtctr's side after the fork, cloned or not: back to its own CPUs and
/// pid namespace; a child it cannot come back from is killed.
fn back_to_own(
    cpus: Option<nix::sched::CpuSet>,
    own_pid_ns: Option<OwnedFd>,
    forked: &io::Result<(Forked, bool)>,
) -> io::Result<()> {
    if let Some(cpus) = &cpus {
        if let Err(e) = sched::set_cpus("rtctr", cpus) {
            log::warn!("restore rtctr's CPU affinity: {e}");
        }
    }
    if let Some(own) = own_pid_ns {
        if let Err(e) = namespaces::leave_pid_for_children(own) {
            if let Ok((Forked::Parent(pid), _)) = forked {
                pidfd::kill_and_wait(pid.as_raw(), None);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// The intermediate dies with rtctr (SIGKILL when its parent exits), and
/// at once if rtctr is already gone. Its child, the init, notices rtctr's
/// death as the end of the channel at its next message.
fn die_with(parent: Pid) {
    let armed = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if armed.is_err() || nix::unistd::getppid() != parent {
        exit_now(1);
    }
}

/// Each process keeps only its own channel, so the parent sees the end
/// of one when its process is gone.
fn intermediate<E: StdError + 'static>(
    enter: &Enter,
    in_unified: bool,
    ns: Channel,
    child: Channel,
    then: impl FnOnce(&Channel) -> Result<Infallible, E>,
) -> ! {
    // The host's /proc, opened before any namespace is joined: the pid
    // fork returns is a host pid, which the container's /proc does not show.
    let host_proc = match File::open("/proc") {
        Ok(f) => f,
        Err(e) => {
            ns.send_error(&sys_io("open /proc")(e));
            exit_now(1)
        }
    };
    match enter_container(enter, in_unified, &ns) {
        Ok(Forked::Parent(pid)) => {
            drop(child);
            // Its own child, so not yet reaped by anyone even if it died:
            // the start time is there to read (a zombie's too).
            let pid = pid.as_raw();
            let sent = match crate::state::start_time_in(host_proc.as_fd(), pid) {
                Ok(start) => ns.send(&Msg::ChildPid { pid, start }),
                Err(e) => {
                    ns.send_error(&sys_io("read the start time of the child")(e));
                    exit_now(1)
                }
            };
            exit_now(if sent.is_ok() { 0 } else { 1 })
        }
        Ok(Forked::Child) => {
            drop((ns, host_proc));
            let Err(e) = then(&child);
            child.send_error(&e);
            exit_now(1)
        }
        Err(e) => {
            ns.send_error(&e);
            exit_now(1)
        }
    }
}

/// The intermediate's steps, then the fork into the new pid (and time)
/// namespace, which apply to children only.
fn enter_container(enter: &Enter, in_unified: bool, chan: &Channel) -> Result<Forked, InitError> {
    enter_namespaces(enter, CloneFlags::empty(), in_unified, None, chan)?;
    fork().map_err(sys_io("fork"))
}

/// Enters the cgroup and every namespace of `enter` but those the process
/// was `born_in`; off `rtctr_cpu` while rtctr makes the cgroup.
fn enter_namespaces(
    enter: &Enter,
    born_in: CloneFlags,
    in_unified: bool,
    rtctr_cpu: Option<usize>,
    chan: &Channel,
) -> Result<(), InitError> {
    if let Some(fd) = enter.lock_fd {
        let _ = nix::unistd::close(fd);
    }
    // rtctr run blocks signals to forward them; the container must not inherit that.
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(sys("sigprocmask"))?;
    // Before joining anything of the container: nothing in it may open our
    // /proc/<pid>/exe (rtctr) or fds, or ptrace us, until execve.
    nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    // Root in a user namespace is another host uid, which may not write
    // the host's cgroup files: with one, join the cgroup first. Without,
    // make the namespaces first, so that their kernel memory (a network
    // namespace alone is ~100 KiB) is charged to the caller, not to the
    // container's memory limit, as with crun; and while we do, the parent
    // makes the cgroup (`cgroup_after_clone`). The files are opened in the
    // host's mount namespace or a new copy of it, not in one joined by path
    // (which shows other cgroup files, or none).
    let in_userns = enter.ns.has(LinuxNamespaceType::User);
    let joins_mounts =
        enter.ns.has(LinuxNamespaceType::Mount) && !enter.ns.creates(LinuxNamespaceType::Mount);
    let open_late = enter.cgroup_after_clone && !in_userns && !joins_mounts;
    // The namespaces are made on another CPU than rtctr's, which makes the
    // cgroup meanwhile; back on rtctr's CPU, with the inherited affinity,
    // before joining it.
    let aside = rtctr_cpu.filter(|_| open_late).and_then(sched::step_aside);
    let mut join = match open_late {
        true => None,
        false => open_join(enter, in_unified, chan)?,
    };
    if in_userns {
        join_cgroup(join.take(), enter.sched)?;
    }
    namespaces::join_all(enter.ns, born_in)?;
    if enter.ns.new_user {
        unshare_user(chan)?;
    }
    if in_userns {
        become_root()?;
    }
    // A new cgroup namespace's root is the cgroup its creator is in.
    let cgroupns = enter.ns.unshare & CloneFlags::CLONE_NEWCGROUP;
    namespaces::unshare(enter.ns.unshare - cgroupns - born_in)?;
    if let (Some(own), Some(cpu)) = (aside, rtctr_cpu) {
        sched::step_back(cpu, &own)?;
    }
    if !in_userns {
        if open_late {
            join = open_join(enter, in_unified, chan)?;
        }
        join_cgroup(join, enter.sched)?;
    }
    namespaces::unshare(cgroupns)?;
    write_time_offsets(enter.ns)
}

/// Opens the files that join the container's cgroup, once the parent has
/// made it.
fn open_join(
    enter: &Enter,
    in_unified: bool,
    chan: &Channel,
) -> Result<Option<rtctr_cgroups::Join>, InitError> {
    let Some(cg) = enter.cgroup else {
        return Ok(None);
    };
    if enter.cgroup_after_clone {
        chan.expect(Msg::CgroupReady)?;
    }
    Ok(Some(cg.open_join(in_unified)?))
}

/// Joins the container's cgroup and takes its final CPUs.
fn join_cgroup(
    join: Option<rtctr_cgroups::Join>,
    sched: Option<&sched::Sched>,
) -> Result<(), InitError> {
    if let Some(j) = join {
        j.join()?;
    }
    if let Some(cpus) = sched.and_then(|s| s.final_cpus.as_ref()) {
        sched::set_cpus("process.execCPUAffinity.final", cpus)?;
    }
    Ok(())
}

/// Offsets can only be set before any process lives in the namespace. In
/// a new user namespace our /proc files belong to the host's root unless
/// we are dumpable (as while the parent writes the id maps): be so for
/// the write; nothing else lives in that user namespace yet.
fn write_time_offsets(ns: &namespaces::Plan) -> Result<(), InitError> {
    if ns.time_offsets.is_none() {
        return Ok(());
    }
    if ns.new_user {
        nix::sys::prctl::set_dumpable(true).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    }
    let written = namespaces::write_time_offsets(ns);
    if ns.new_user {
        nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    }
    Ok(written?)
}

/// A new user namespace, whose maps the parent writes: our /proc files
/// must be ours (dumpable) while it does, as runc does.
fn unshare_user(chan: &Channel) -> Result<(), InitError> {
    nix::sys::prctl::set_dumpable(true).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    namespaces::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)?;
    chan.send(&Msg::UsernsCreated)?;
    chan.expect(Msg::MapsWritten)?;
    nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))
}

fn become_root() -> Result<(), InitError> {
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(sys("setresgid 0 in the user namespace"))?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(sys("setresuid 0 in the user namespace"))
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

/// The container init: the child recipe of `create`.
pub fn run_init(plan: &Plan, state_dir: &Path, chan: &Channel) -> Result<Infallible, InitError> {
    become_session_leader()?;
    join_session_keyring(plan)?;
    let midway = plan.work_midway();
    if midway {
        announce_entered(chan, plan.rootless)?;
    }
    let root = rootfs::prepare_root(&plan.rootfs, plan.own_mounts())?;
    rootfs::mount_all(
        &plan.config,
        &root,
        &plan.bundle,
        Some(&plan.cgroup),
        plan.new_cgroupns(),
        &plan.idmapped,
    )?;
    // Before pivot_root: the terminal's receiver was connected by the parent.
    if let Some((console, process)) = plan.console().zip(plan.config.process.as_ref()) {
        attach_terminal(process, root.fd.as_fd(), console)?;
    }
    // The state for the init's own hooks (there are none without it).
    let state_json = match midway {
        true => run_runtime_hooks(chan, plan.rootless)?,
        false => String::new(),
    };
    network::bind_files(state_dir, root.fd.as_fd())?;
    run_hooks(plan, "createContainer", state_json.as_bytes())?;
    set_names(&plan.config.spec)?;
    if plan.ns.creates(LinuxNamespaceType::Network) {
        // As runc and crun: 127.0.0.1 works in a new network namespace.
        crate::sys::net::set_up("lo").map_err(sys_io("bring up the loopback lo"))?;
    }
    rootfs::sysctl(&plan.config.linux)?;
    if let Some(process) = &plan.config.process {
        set_oom_score_adj(process)?;
        make_cwd(process, root.fd.as_fd())?;
    }
    rootfs::protect_paths(&plan.config.spec, root.fd.as_fd())?;
    let fifo = open_fifo(&state_dir.join(crate::state::EXEC_FIFO))?;
    rootfs::enter(root, &plan.config, plan.own_mounts(), plan.opts.no_pivot)?;
    if plan.own_mounts() {
        reopen_dev_null()?;
    }
    let setup = plan.process_setup();
    let ready = setup.map(|s| process::prepare(&s, chan)).transpose()?;
    chan.send(&Msg::Created)?;
    wait_for_start(fifo)?;
    // `start` refuses a container without a process; nothing to exec.
    let ready = ready.ok_or(InitError::NoProcess)?;
    run_start_hooks(plan, &state_json)?;
    Err(process::exec(ready).into())
}

/// A process `exec` adds to a running container, in its namespaces.
pub fn run_tenant(
    setup: &process::Setup,
    console: Option<BorrowedFd<'_>>,
    chan: &Channel,
) -> Result<Infallible, InitError> {
    // A session (and process group) of its own, inside the container's
    // pid namespace, as the init has (getpgrp() would be 0 otherwise).
    nix::unistd::setsid().map_err(sys("setsid"))?;
    if let Some(console) = console {
        let root = File::open("/").map_err(sys_io("open /"))?;
        let pty = terminal::open_in_root(root.as_fd(), setup.process)?;
        terminal::hand_over(pty, console)?;
    }
    let ready = process::prepare(setup, chan)?;
    Err(process::exec(ready).into())
}

/// stdin/stdout/stderr that are the host's /dev/null (engines give a
/// detached container that) become the container's own /dev/null, as
/// runc does: CRIU can only checkpoint files it finds in the container's
/// mounts. A container without /dev/null keeps the host's.
fn reopen_dev_null() -> Result<(), InitError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(null) = File::options().read(true).write(true).open("/dev/null") else {
        return Ok(());
    };
    let meta = null.metadata().map_err(sys_io("stat /dev/null"))?;
    let (stdin, stdout, stderr) = (io::stdin(), io::stdout(), io::stderr());
    let stdio = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    let dup2 = [
        rustix::stdio::dup2_stdin::<&File>,
        rustix::stdio::dup2_stdout::<&File>,
        rustix::stdio::dup2_stderr::<&File>,
    ];
    for (fd, dup2) in stdio.into_iter().zip(dup2) {
        let Ok(st) = rustix::fs::fstat(fd) else {
            continue;
        };
        let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == meta.rdev();
        let same = st.st_dev == meta.dev() && st.st_ino == meta.ino();
        if is_null && !same {
            dup2(&null).map_err(|e| sys_io("dup2 /dev/null")(e.into()))?;
        }
    }
    Ok(())
}

/// A session of its own, not dumpable until execve, and killable while it
/// waits to be started (pid 1 of a namespace ignores signals it has no
/// handler for).
fn become_session_leader() -> Result<(), InitError> {
    // Until execve changes it, the name says "not started" to `state`.
    let comm = std::ffi::CString::new(crate::state::INIT_COMM).unwrap_or_default();
    nix::sys::prctl::set_name(&comm).map_err(sys("prctl(PR_SET_NAME)"))?;
    nix::unistd::setsid().map_err(sys("setsid"))?;
    nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    crate::sys::process::exit_on_signals(TERMINATING).map_err(sys_io("sigaction"))
}

/// A fresh session keyring, so the container does not share the caller's
/// keys (unless --no-new-keyring; kernels without keyrings are fine).
fn join_session_keyring(plan: &Plan) -> Result<(), InitError> {
    if plan.opts.no_new_keyring {
        return Ok(());
    }
    match crate::sys::process::join_session_keyring(&format!("_ses.{}", plan.opts.id)) {
        Err(e) if !matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EACCES)) => {
            Err(sys_io("join session keyring")(e))
        }
        _ => Ok(()),
    }
}

/// A pty from the container's devpts: the master to the console
/// receiver, the peer on /dev/console and as stdio.
fn attach_terminal(
    process: &oci_spec::runtime::Process,
    root: BorrowedFd<'_>,
    console: BorrowedFd<'_>,
) -> Result<(), InitError> {
    let pty = terminal::open_in_root(root, process)?;
    terminal::bind_console(root, &pty.slave)?;
    terminal::hand_over(pty, console)?;
    Ok(())
}

/// Tells the parent the init is in all the container's namespaces, so it
/// attaches the network while the init makes the mounts.
///
/// Rootless, the init is dumpable from here until the createRuntime hooks
/// ran: the parent's helpers (pasta, those hooks) run as the same
/// unprivileged user and must open its /proc/<pid>/ns files, which a
/// non-dumpable process keeps root's. No container code runs yet; only
/// that user's own processes gain access.
fn announce_entered(chan: &Channel, rootless: bool) -> Result<(), InitError> {
    if rootless {
        nix::sys::prctl::set_dumpable(true).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    }
    Ok(chan.send(&Msg::Entered)?)
}

/// The parent runs the prestart and createRuntime hooks once the
/// namespaces and mounts exist; it answers with the state JSON for ours.
fn run_runtime_hooks(chan: &Channel, rootless: bool) -> Result<String, InitError> {
    chan.send(&Msg::NamespacesReady)?;
    let state = chan.expect_hooks_done()?;
    if rootless {
        nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    }
    Ok(state)
}

fn run_hooks(plan: &Plan, kind: &'static str, state_json: &[u8]) -> Result<(), InitError> {
    let list = plan.config.spec.hooks().as_ref().and_then(|h| match kind {
        "createContainer" => h.create_container().clone(),
        _ => h.start_container().clone(),
    });
    Ok(hooks::run_all(
        kind,
        list.as_deref().unwrap_or_default(),
        state_json,
    )?)
}

/// startContainer hooks: create has returned and nobody reads the
/// channel, so a failure goes to the container's stderr (as with runc).
fn run_start_hooks(plan: &Plan, state_json: &str) -> Result<(), InitError> {
    let json = hooks::with_status(state_json, "created");
    run_hooks(plan, "startContainer", &json).inspect_err(|e| {
        let _ = writeln!(io::stderr(), "rtctr init: {e}");
    })
}

/// hostname and domainname (in the container's UTS namespace).
fn set_names(spec: &oci_spec::runtime::Spec) -> Result<(), InitError> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(sys(format!("hostname {h:?}: sethostname")))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        crate::sys::process::setdomainname(d)
            .map_err(sys_io(format!("domainname {d:?}: setdomainname")))?;
    }
    Ok(())
}

fn set_oom_score_adj(process: &oci_spec::runtime::Process) -> Result<(), InitError> {
    let Some(adj) = process.oom_score_adj() else {
        return Ok(());
    };
    let file = ProcFile::OwnSelf("oom_score_adj");
    proc_files::write(file, &adj.to_string())
        .map_err(sys_io(format!("write {}", file.path().display())))
}

/// The cwd exists in the image (created if not) before the root changes.
fn make_cwd(process: &oci_spec::runtime::Process, root: BorrowedFd<'_>) -> Result<(), InitError> {
    let cwd = process.cwd();
    resolve::mkdir_all(root, cwd, 0o755)
        .map(drop)
        .map_err(sys_io(format!("process.cwd {}: create", cwd.display())))
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
    let mut byte = [0u8; 1];
    let _ = File::from(fifo).read(&mut byte);
    Ok(())
}
