//! `create`, the runtime side: [`plan`] decides everything that can be
//! decided before anything exists (so a bad config leaves no trace), then
//! [`build`] is the parent recipe, one step a line. What a step will leave
//! behind (cgroup paths, the init's pid and start time, the network) is in
//! `state.json` before the step makes it, so a create that fails, or is
//! killed at any instant, leaves a container that the code of `delete
//! --force` ([`lifecycle::stop`], [`lifecycle::destroy`]) removes
//! completely. The child recipe is [`init::run_init`].

use std::os::fd::BorrowedFd;
use std::path::Path;

use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::init::{self, Enter, Spawned};
use super::plan::{io_err, plan, CreateError, CreateOptions, Plan};
use super::sync::{Msg, SyncError};
use super::{hooks, lifecycle, namespaces, network, pidfd, user_net};
use crate::state::{self, ContainerDir, State, Status, Store};

/// A created container, for `run` to go on with.
pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    /// The init's stdio is a pty (its master went to the console receiver).
    pub terminal: bool,
}

/// Creates a container. `console` is a socket the init sends its
/// terminal master to when there is no --console-socket (`run` proxies
/// the terminal).
pub fn create(
    store: &Store,
    opts: &CreateOptions,
    console: Option<BorrowedFd<'_>>,
) -> Result<Created, CreateError> {
    let plan = plan(opts, console)?;
    let mut state = record(&plan);
    let dir = store.create(&state)?;
    let mut forked = None;
    match build(&dir, &plan, &mut state, &mut forked) {
        Ok(()) => Ok(Created {
            dir,
            state,
            terminal: plan.config.process.as_ref().is_some_and(|p| p.terminal()),
        }),
        Err(e) => {
            let e = explain_silent_death(e, &plan);
            undo(dir, forked);
            Err(e)
        }
    }
}

/// Removes what a failed create made, from its record, as `delete --force`
/// would (each failure is logged; the rest still runs).
pub(super) fn undo(dir: ContainerDir, forked: Option<Pid>) {
    if let Some(pid) = forked {
        pidfd::kill_and_wait(pid.as_raw(), None);
    }
    match dir.load() {
        Ok(state) => {
            lifecycle::stop(&state);
            if let Err(e) = lifecycle::destroy(dir, &state) {
                log::warn!("undo create: {e}");
            }
        }
        Err(e) => {
            log::debug!("undo create: no state to undo from: {e}");
            if let Err(e) = dir.remove() {
                log::warn!("undo create: {e}");
            }
        }
    }
}

/// A child that died without a word was most often killed by the OOM
/// killer under a memory limit too low for set-up: say so (as runc does).
fn explain_silent_death(e: CreateError, plan: &Plan) -> CreateError {
    if !matches!(e, CreateError::Sync(SyncError::Eof)) {
        return e;
    }
    match plan.cgroup.oom_kill_count() {
        Ok(n) if n > 0 => {
            let memory = plan
                .config
                .linux
                .resources()
                .as_ref()
                .and_then(|r| *r.memory());
            let limit = memory.and_then(|m| m.limit());
            let limit = limit.map_or_else(|| "(none)".to_string(), |l| format!("{l} bytes"));
            CreateError::OomDuringSetup { limit }
        }
        _ => e,
    }
}

/// The parent recipe. `forked` is the process it forked until the init's
/// pid is known (the record knows only the init).
fn build(
    dir: &ContainerDir,
    plan: &Plan,
    state: &mut State,
    forked: &mut Option<Pid>,
) -> Result<(), CreateError> {
    mount_overlay(dir, plan)?;
    write_snapshot(dir, plan)?;
    // On v1 and hybrid hosts the cgroup's directories and limits are made
    // while the child makes its namespaces (they take about as long); on
    // v2 the child is cloned into the finished cgroup (CLONE_INTO_CGROUP).
    let after_clone = plan.cgroup.layout != rtctr_cgroups::Layout::V2;
    match after_clone {
        true => plan.cgroup.create_unified()?,
        false => make_cgroup(plan)?,
    }
    let spawned = spawn(dir, plan, after_clone)?;
    *forked = Some(spawned.forked);
    if after_clone {
        plan.cgroup.create_v1()?;
        apply_limits(plan)?;
        spawned.cgroup_ready();
    }
    let (pid, start) = await_init_pid(&spawned, plan)?;
    *forked = None;
    let chan = spawned.child;
    record_init(dir, state, pid, start)?;
    if plan.work_midway() {
        // The network is attached while the init makes its mounts.
        chan.expect(Msg::Entered)?;
        attach_network(dir, plan, state)?;
        chan.expect(Msg::NamespacesReady)?;
        network::move_net_devices(pid, &plan.config.linux)?;
        let creating = run_runtime_hooks(plan, state)?;
        chan.send(&Msg::HooksDone(creating))?;
    }
    let created = state.oci(Status::Created);
    chan.serve_listeners(Some(Msg::Created), |fd| {
        hand_over_listener(plan, pid, fd, &created)
    })?;
    if let Some(p) = &plan.opts.pid_file {
        state::write_pid_file(p, pid)?;
    }
    Ok(())
}

/// The image layers' overlay on the rootfs (already in the record).
fn mount_overlay(dir: &ContainerDir, plan: &Plan) -> Result<(), CreateError> {
    if let Some(o) = &plan.overlay {
        crate::image::overlay::mount(o, &dir.path)?;
    }
    Ok(())
}

/// `<root>/<id>/config.json` (the snapshot later verbs read) and the exec
/// fifo the init waits on until `start`.
fn write_snapshot(dir: &ContainerDir, plan: &Plan) -> Result<(), CreateError> {
    let config = dir.file(state::CONFIG_FILE);
    std::fs::write(&config, &plan.raw).map_err(io_err("write", &config))?;
    let fifo = dir.file(state::EXEC_FIFO);
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
        .map_err(|e| io_err("mkfifo", &fifo)(e.into()))?;
    if plan.ns.new_user {
        // The init is root only inside its user namespace: give the fifo
        // to the host ids its root maps to.
        let root_of = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
            let maps = maps.as_deref().unwrap_or_default();
            maps.iter()
                .find(|m| m.container_id() == 0)
                .map(|m| m.host_id())
        };
        let linux = &plan.config.linux;
        let uid = root_of(linux.uid_mappings()).map(nix::unistd::Uid::from_raw);
        let gid = root_of(linux.gid_mappings()).map(nix::unistd::Gid::from_raw);
        match nix::unistd::chown(&fifo, uid, gid) {
            // A user cannot give a file away; the fifo's mode lets the
            // init open it anyway.
            Err(nix::Error::EPERM) if !nix::unistd::geteuid().is_root() => {
                log::debug!("rootless: fifo {} stays the caller's", fifo.display())
            }
            r => r.map_err(|e| io_err("chown", &fifo)(e.into()))?,
        }
    }
    Ok(())
}

/// The cgroup with `linux.resources`: the config's device rules, then the
/// devices every container gets and its `linux.devices` (as runc does).
///
/// Rootless (`--rootless`), the cgroup holds only the hierarchies the
/// caller may write, and there are no device rules: a user can load no
/// device filter, and can open no device node the host does not already
/// let them (runc ignores the devices controller there too). A limit
/// whose controller was left out is an error, not a silent success.
pub(super) fn make_cgroup(plan: &Plan) -> Result<(), CreateError> {
    plan.cgroup.create()?;
    apply_limits(plan)
}

/// The limits and device rules of [`make_cgroup`], on a cgroup that exists.
fn apply_limits(plan: &Plan) -> Result<(), CreateError> {
    let linux = &plan.config.linux;
    let mut res = linux.resources().clone().unwrap_or_default();
    if plan.opts.rootless_cgroups {
        res.set_devices(None);
        return plan.cgroup.apply(&res).map_err(|e| match e {
            rtctr_cgroups::Error::ControllerMissing {
                controller,
                setting,
            } => CreateError::RootlessLimit {
                uid: nix::unistd::geteuid().as_raw(),
                setting,
                controller,
            },
            e => e.into(),
        });
    }
    res.set_devices(Some(rtctr_cgroups::devices::create_rules(
        res.devices().as_deref(),
        linux.devices().as_deref().unwrap_or_default(),
    )));
    plan.cgroup.apply(&res)?;
    Ok(())
}

/// Forks the process that becomes the container init (see [`init::spawn`]).
fn spawn(
    dir: &ContainerDir,
    plan: &Plan,
    cgroup_after_clone: bool,
) -> Result<Spawned, CreateError> {
    let enter = Enter {
        cgroup: Some(&plan.cgroup),
        cgroup_after_clone,
        ns: &plan.ns,
        lock_fd: Some(dir.lock_fd()),
        sched: plan.process.as_ref().map(|p| p.sched()),
    };
    init::spawn(&enter, |chan| init::run_init(plan, &dir.path, chan))
        .map_err(io_err("fork", Path::new("rtctr")))
}

/// The init's pid and start time; an intermediate may first ask for its
/// user namespace maps.
fn await_init_pid(spawned: &Spawned, plan: &Plan) -> Result<(i32, u64), CreateError> {
    let forked = spawned.forked.as_raw();
    spawned.child_pid(|| {
        namespaces::write_id_maps(forked, &plan.config.linux).map_err(CreateError::from)
    })
}

/// The record of the container, before anything of it exists: its cgroup
/// paths, the network it will join, whether its mounts are in rtctr's
/// namespace; no init yet (pid 0 is never alive).
pub(super) fn record(plan: &Plan) -> State {
    State {
        id: plan.opts.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: plan.bundle.clone(),
        rootfs: plan.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: owner(),
        annotations: plan.config.spec.annotations().clone().unwrap_or_default(),
        cgroup: Some(plan.cgroup.clone()),
        network: plan.network.as_deref().map(network::intent),
        host_mounts: !plan.own_mounts(),
        no_process: plan.config.process.is_none(),
        overlay: plan.overlay.as_ref().map(|o| o.record()),
    }
}

/// The init, with its start time (a later pid of the same number is not
/// it), in the record: from here on `delete --force` finds and kills it.
pub(super) fn record_init(
    dir: &ContainerDir,
    state: &mut State,
    pid: i32,
    start: u64,
) -> Result<(), CreateError> {
    (state.pid, state.pid_start) = (pid, start);
    Ok(dir.save(state)?)
}

fn state_json(state: &State, status: Status) -> Vec<u8> {
    serde_json::to_vec(&state.oci(status)).unwrap_or_default()
}

/// The built-in network, once the init is in the container's netns
/// ([`Msg::Entered`]).
pub(super) fn attach_network(
    dir: &ContainerDir,
    plan: &Plan,
    state: &mut State,
) -> Result<(), CreateError> {
    if plan.network.is_none() {
        return Ok(());
    }
    // Already in the record since the create's first save (`record`): a
    // create killed half-way through still gets its lease and port rules
    // removed by `delete --force`. Rootless, user mode: a helper process,
    // not a lease (see user_net).
    let user_mode = user_net::wanted();
    let hostname = plan.config.spec.hostname().clone();
    let hostname = hostname.unwrap_or_else(|| state.id.clone());
    let attach = match user_mode {
        true => network::attach_user_mode,
        false => network::attach,
    };
    let attached = attach(
        &state.id,
        state.pid,
        &state.annotations,
        &hostname,
        &dir.path,
    )?;
    if let Some(att) = attached {
        state.network = Some(att.record);
        dir.save(state)?;
    }
    Ok(())
}

/// prestart (deprecated) and createRuntime hooks, in the runtime's
/// namespaces, once the container's exist. Returns the state they got.
pub(super) fn run_runtime_hooks(plan: &Plan, state: &State) -> Result<String, CreateError> {
    let json = String::from_utf8(state_json(state, Status::Creating)).unwrap_or_default();
    if let Some(h) = plan.config.spec.hooks() {
        for (kind, list) in [
            ("prestart", h.prestart()),
            ("createRuntime", h.create_runtime()),
        ] {
            hooks::run_all(kind, list.as_deref().unwrap_or_default(), json.as_bytes())?;
        }
    }
    Ok(json)
}

fn hand_over_listener(
    plan: &Plan,
    pid: i32,
    fd: i32,
    state: &state::OciState,
) -> Result<(), CreateError> {
    match plan.process.as_ref().and_then(|p| p.seccomp()) {
        Some(program) => Ok(program.hand_over_listener(pid, fd, state)?),
        None => Ok(()),
    }
}

fn owner() -> String {
    let uid = nix::unistd::getuid().as_raw();
    super::process::passwd_field(uid, 0).unwrap_or_else(|| uid.to_string())
}
