//! `create`, the runtime side: [`plan`] decides everything that can be
//! decided before anything exists (so a bad config leaves no trace), then
//! [`build`] is the parent recipe, one step a line. Every step that leaves
//! something behind is recorded in [`Undo`], which removes it again if a
//! later step fails. The child recipe is [`init::run_init`].

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;
use nix::unistd::Pid;
use rtctr_cgroups::Cgroup;

use super::init::{self, Enter};
use super::plan::{io_err, plan, CreateError, CreateOptions, Plan};
use super::sync::{Channel, Msg, SyncError};
use super::{hooks, namespaces, network, pidfd};
use crate::spec::Config;
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
    let dir = store.create(&opts.id)?;
    let mut undo = Undo::default();
    match build(&dir, &plan, &mut undo) {
        Ok(state) => Ok(Created {
            dir,
            state,
            terminal: plan.config.process.terminal(),
        }),
        Err(e) => {
            let e = explain_silent_death(e, &plan);
            undo.run(dir, &plan.config);
            Err(e)
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

/// The parent recipe.
fn build(dir: &ContainerDir, plan: &Plan, undo: &mut Undo) -> Result<State, CreateError> {
    write_snapshot(dir, plan)?;
    make_cgroup(plan, undo)?;
    let (intermediate, chan) = spawn(dir, plan, undo)?;
    let pid = await_init_pid(&chan, intermediate, plan, undo)?;
    let mut state = record(plan, pid)?;
    undo.poststop_state = Some(state_json(&state, Status::Stopped));
    chan.expect(Msg::NamespacesReady)?;
    attach_network(dir, plan, &mut state, undo)?;
    let creating = run_runtime_hooks(plan, &state)?;
    chan.send(&Msg::HooksDone(creating))?;
    let created = state.oci(Status::Created);
    chan.serve_listeners(Some(Msg::Created), |fd| {
        hand_over_listener(plan, pid, fd, &created)
    })?;
    dir.save(&state)?;
    if let Some(p) = &plan.opts.pid_file {
        state::write_pid_file(p, pid)?;
    }
    Ok(state)
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
        nix::unistd::chown(&fifo, uid, gid).map_err(|e| io_err("chown", &fifo)(e.into()))?;
    }
    Ok(())
}

/// The cgroup with `linux.resources`: the config's device rules, then the
/// devices every container gets and its `linux.devices` (as runc does).
fn make_cgroup(plan: &Plan, undo: &mut Undo) -> Result<(), CreateError> {
    plan.cgroup.create()?;
    undo.cgroup = Some(plan.cgroup.clone());
    let linux = &plan.config.linux;
    let mut res = linux.resources().clone().unwrap_or_default();
    res.set_devices(Some(rtctr_cgroups::devices::create_rules(
        res.devices().as_deref(),
        linux.devices().as_deref().unwrap_or_default(),
    )));
    plan.cgroup.apply(&res)?;
    Ok(())
}

/// Forks the intermediate process, whose child becomes the container init.
fn spawn(dir: &ContainerDir, plan: &Plan, undo: &mut Undo) -> Result<(Pid, Channel), CreateError> {
    let enter = Enter {
        cgroup: Some(&plan.cgroup),
        ns: &plan.ns,
        lock_fd: Some(dir.lock_fd()),
    };
    let (pid, chan) = init::spawn(&enter, |chan| init::run_init(plan, &dir.path, chan))
        .map_err(io_err("fork", Path::new("rtctr")))?;
    undo.init = Some((pid.as_raw(), None));
    if !plan.own_mounts() {
        undo.host_mounts = Some(plan.rootfs.clone());
    }
    Ok((pid, chan))
}

/// Until the intermediate reports the init's pid, it may ask for its user
/// namespace maps; then it exits and is reaped.
fn await_init_pid(
    chan: &Channel,
    intermediate: Pid,
    plan: &Plan,
    undo: &mut Undo,
) -> Result<i32, CreateError> {
    let pid = chan.await_child_pid(|| {
        namespaces::write_id_maps(intermediate.as_raw(), &plan.config.linux)
            .map_err(CreateError::from)
    })?;
    let _ = nix::sys::wait::waitpid(intermediate, None);
    undo.init = Some((pid, pidfd::open(pid)));
    Ok(pid)
}

/// The state `create` will save, with the init's start time.
fn record(plan: &Plan, pid: i32) -> Result<State, CreateError> {
    let pid_start =
        state::start_time(pid).map_err(io_err("read start time of", Path::new("init")))?;
    Ok(State {
        id: plan.opts.id.clone(),
        pid,
        pid_start,
        bundle: plan.bundle.clone(),
        rootfs: plan.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: owner(),
        annotations: plan.config.spec.annotations().clone().unwrap_or_default(),
        cgroup: Some(plan.cgroup.clone()),
        network: None,
        started: false,
        host_mounts: !plan.own_mounts(),
    })
}

fn state_json(state: &State, status: Status) -> Vec<u8> {
    serde_json::to_vec(&state.oci(status)).unwrap_or_default()
}

/// The built-in network hook, at the createRuntime point: the container's
/// netns exists.
fn attach_network(
    dir: &ContainerDir,
    plan: &Plan,
    state: &mut State,
    undo: &mut Undo,
) -> Result<(), CreateError> {
    let hostname = plan.config.spec.hostname().clone();
    let hostname = hostname.unwrap_or_else(|| state.id.clone());
    let attached = network::attach(
        &state.id,
        state.pid,
        &state.annotations,
        &hostname,
        &dir.path,
    )?;
    if let Some(att) = attached {
        undo.network = Some((state.id.clone(), att.network));
        state.network = Some(att.record);
    }
    Ok(())
}

/// prestart (deprecated) and createRuntime hooks, in the runtime's
/// namespaces, once the container's exist. Returns the state they got.
fn run_runtime_hooks(plan: &Plan, state: &State) -> Result<String, CreateError> {
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
    match plan.process.seccomp() {
        Some(program) => Ok(program.hand_over_listener(pid, fd, state)?),
        None => Ok(()),
    }
}

fn owner() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// What create has made so far, undone in reverse on failure.
#[derive(Default)]
struct Undo {
    init: Option<(i32, Option<OwnedFd>)>,
    cgroup: Option<Cgroup>,
    /// Mounts made in rtctr's own namespace (no mount namespace).
    host_mounts: Option<PathBuf>,
    /// (container id, network) attached by the built-in network hook.
    network: Option<(String, String)>,
    /// The stopped state, set once the init exists: a failed create then
    /// runs the poststop hooks (runtime-spec lifecycle: a failing prestart,
    /// createRuntime or createContainer hook continues at "destroy", then
    /// poststop).
    poststop_state: Option<Vec<u8>>,
}

impl Undo {
    /// Best effort: each failure is logged and the rest still runs.
    fn run(self, dir: ContainerDir, config: &Config) {
        if let Some((pid, pidfd)) = self.init {
            pidfd::kill_and_wait(pid, pidfd.as_ref());
        }
        if let Some((id, net)) = self.network {
            network::detach(&id, &net);
        }
        if let Some(rootfs) = self.host_mounts {
            super::rootfs::unmount_under(&rootfs);
        }
        if let Some(cg) = self.cgroup {
            if let Err(e) = cg.destroy_killing() {
                log::warn!("undo create: remove cgroup: {e}");
            }
        }
        if let Err(e) = dir.remove() {
            log::warn!("undo create: {e}");
        }
        let poststop = config
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone());
        if let (Some(json), Some(h)) = (self.poststop_state, poststop) {
            hooks::run_all_warn("poststop", &h, &json);
        }
    }
}
