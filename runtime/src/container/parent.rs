//! `rtctr create`: the recipe, top to bottom. Every step that leaves
//! something behind is recorded in [`Undo`], which removes it again if a
//! later step fails.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;
use rtctr_cgroups::Cgroup;

use super::sync::{self, Msg, SyncError};
use crate::container::{hooks, namespaces};
use crate::spec;
use crate::state::{self, ContainerDir, State, StateError, Status, Store};
use crate::sys::process::{fork_into_cgroup, Forked};

use super::init;
pub use init::with_status;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Ns(#[from] namespaces::NsError),
    #[error(transparent)]
    Cgroup(#[from] rtctr_cgroups::Error),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error("{0}")]
    Sync(#[from] SyncError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Caps(#[from] crate::container::capabilities::CapError),
    #[error(transparent)]
    Network(#[from] rtctr_hooks::NetError),
    #[error(transparent)]
    Seccomp(#[from] crate::container::seccomp::SeccompError),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CreateError + 'a {
    move |source| CreateError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
}

/// A created container, for `run` to go on with.
pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    /// The init's stdio is a pty (its master went to the console receiver).
    pub terminal: bool,
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
    fn run(self, dir: ContainerDir, spec: &Spec) {
        if let Some((pid, pidfd)) = self.init {
            crate::commands::kill::kill_and_wait(pid, pidfd.as_ref());
        }
        if let Some((id, net)) = self.network {
            let _ = rtctr_hooks::teardown(&id, Some(&net));
        }
        if let Some(rootfs) = self.host_mounts {
            crate::container::rootfs::unmount_under(&rootfs);
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.destroy_killing();
        }
        let _ = dir.remove();
        let poststop = spec.hooks().as_ref().and_then(|h| h.poststop().clone());
        if let (Some(json), Some(h)) = (self.poststop_state, poststop) {
            hooks::run_all_warn("poststop", &h, &json);
        }
    }
}

pub fn create(store: &Store, opts: &CreateOptions) -> Result<Created, CreateError> {
    create_with(store, opts, None)
}

/// Everything `build` works from.
struct Input<'a> {
    opts: &'a CreateOptions,
    spec: &'a Spec,
    raw: &'a [u8],
    bundle: &'a Path,
    rootfs: &'a Path,
    ns: &'a namespaces::Plan,
    console: Option<init::Console<'a>>,
    caps: &'a crate::container::capabilities::CapabilityPlan,
    seccomp: Option<&'a crate::container::seccomp::Program>,
}

/// `create`, with `console` a socket the init sends its terminal master
/// to when no --console-socket is given (`run` proxies the terminal).
pub fn create_with(
    store: &Store,
    opts: &CreateOptions,
    console: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<Created, CreateError> {
    state::validate_id(&opts.id)?;
    let bundle = std::fs::canonicalize(&opts.bundle).map_err(io_err("bundle", &opts.bundle))?;
    let (spec, raw) = spec::load(&bundle)?;
    spec::validate(&spec)?;
    let rootfs = rootfs_path(&bundle, &spec)?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let console = match (&opts.console_socket, console) {
        (Some(path), _) => Some(init::Console::Path(path)),
        (None, Some(fd)) if terminal => Some(init::Console::Fd(fd)),
        _ => None,
    };
    check_terminal(&spec, console.is_some())?;
    let linux = spec.linux().as_ref().expect("validated");
    let ns = namespaces::plan(linux)?;
    let cgroup = Cgroup::resolve(
        linux.cgroups_path().as_deref(),
        &opts.id,
        opts.systemd_cgroup,
    )?;
    // Pure planning, before anything exists: errors leave nothing behind.
    let proc_ = spec.process().as_ref().expect("validated");
    let (caps, warnings) = crate::container::capabilities::plan(proc_.capabilities().as_ref())?;
    for w in warnings {
        log::warn!("{w}");
    }
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(crate::container::seccomp::compile)
        .transpose()?;
    // Bad network annotations fail here, before anything exists.
    let annotations = spec.annotations().clone().unwrap_or_default();
    rtctr_hooks::Request::from_annotations(&opts.id, 0, &annotations)?;
    let dir = store.create(&opts.id)?;
    let mut undo = Undo::default();
    let input = Input {
        opts,
        spec: &spec,
        raw: &raw,
        bundle: &bundle,
        rootfs: &rootfs,
        ns: &ns,
        console,
        caps: &caps,
        seccomp: seccomp.as_ref(),
    };
    match build(&dir, &input, cgroup, &mut undo) {
        Ok(state) => Ok(Created {
            dir,
            state,
            terminal,
        }),
        Err(e) => {
            undo.run(dir, &spec);
            Err(e)
        }
    }
}

fn build(
    dir: &ContainerDir,
    input: &Input,
    cgroup: Cgroup,
    undo: &mut Undo,
) -> Result<State, CreateError> {
    let Input {
        opts,
        spec,
        raw,
        bundle,
        rootfs,
        ns,
        ..
    } = *input;
    let config = dir.file(state::CONFIG_FILE);
    std::fs::write(&config, raw).map_err(io_err("write", &config))?;
    let fifo = dir.file(state::EXEC_FIFO);
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
        .map_err(|e| io_err("mkfifo", &fifo)(e.into()))?;
    if ns.new_user {
        // The init is root only inside its user namespace: give the fifo
        // to the host ids its root maps to.
        let linux = spec.linux().as_ref().expect("validated");
        let host = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
            maps.as_deref()
                .unwrap_or_default()
                .iter()
                .find(|m| m.container_id() == 0)
                .map(|m| m.host_id())
        };
        nix::unistd::chown(
            &fifo,
            host(linux.uid_mappings()).map(nix::unistd::Uid::from_raw),
            host(linux.gid_mappings()).map(nix::unistd::Gid::from_raw),
        )
        .map_err(|e| io_err("chown", &fifo)(e.into()))?;
    }
    cgroup.create()?;
    undo.cgroup = Some(cgroup.clone());
    let linux = spec.linux().as_ref().expect("validated");
    let mut res = linux.resources().clone().unwrap_or_default();
    // The config's device rules, then the devices every container gets
    // and its linux.devices (as runc does).
    res.set_devices(Some(rtctr_cgroups::devices::create_rules(
        res.devices().as_deref(),
        linux.devices().as_deref().unwrap_or_default(),
    )));
    cgroup.apply(&res)?;
    let (ns_parent, ns_child) = sync::pair().map_err(io_err("socketpair", dir.path.as_path()))?;
    let (parent, child) = sync::pair().map_err(io_err("socketpair", dir.path.as_path()))?;
    let ctx = init::Ctx {
        id: &opts.id,
        spec,
        bundle,
        rootfs,
        ns,
        cgroup: Some(&cgroup),
        fifo,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        ns_chan: &ns_child,
        init_chan: &child,
        lock_fd: dir.lock_fd(),
        console: input.console.clone(),
        caps: input.caps,
        seccomp: input.seccomp,
    };
    // Born in the cgroup2 directory where there is one; v1 is joined from inside.
    let forked = fork_into_cgroup(cgroup.unified_dir());
    let intermediate = match forked.map_err(io_err("fork", Path::new("rtctr")))? {
        (Forked::Child, in_unified) => {
            drop(parent);
            drop(ns_parent);
            init::intermediate(&ctx, in_unified)
        }
        (Forked::Parent(pid), _) => pid,
    };
    drop(child);
    drop(ns_child);
    undo.init = Some((intermediate.as_raw(), None));
    if !ns.has(oci_spec::runtime::LinuxNamespaceType::Mount) {
        undo.host_mounts = Some(rootfs.to_path_buf());
    }
    let pid = receive_init_pid(&ns_parent, intermediate.as_raw(), spec)?;
    let _ = nix::sys::wait::waitpid(intermediate, None);
    undo.init = Some((pid, pidfd_of(pid)));
    let pid_start = crate::container::process::start_time(pid)
        .map_err(io_err("read start time of", Path::new("init")))?;
    let mut state = State {
        id: opts.id.clone(),
        pid,
        pid_start,
        bundle: bundle.to_path_buf(),
        rootfs: rootfs.to_path_buf(),
        created: state::now_rfc3339(),
        owner: owner(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: Some(cgroup),
        network: None,
        started: false,
        host_mounts: !ns.has(oci_spec::runtime::LinuxNamespaceType::Mount),
    };
    undo.poststop_state =
        Some(serde_json::to_vec(&state.oci(Status::Stopped)).expect("state serializes"));
    parent.expect(Msg::RuntimeHooks, "RuntimeHooks")?;
    let state_json = serde_json::to_string(&state.oci(Status::Creating)).expect("state serializes");
    attach_network(dir, spec, &mut state, undo)?;
    run_runtime_hooks(spec, &mut state, &state_json)?;
    parent.send(&Msg::Continue(state_json.clone()))?;
    loop {
        match parent.recv()? {
            Msg::Created => break,
            Msg::SeccompListener(fd) => {
                forward_listener(input.seccomp, pid, fd, &state)?;
                parent.send(&Msg::Continue(String::new()))?;
            }
            got => {
                return Err(SyncError::Unexpected {
                    got: format!("{got:?}"),
                    want: "Created",
                }
                .into())
            }
        }
    }
    dir.save(&state)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(state)
}

/// Copies the init's seccomp listener (pidfd_getfd) and sends it to
/// `listenerPath` with the container process state, as the spec says.
fn forward_listener(
    program: Option<&crate::container::seccomp::Program>,
    pid: i32,
    fd: i32,
    state: &State,
) -> Result<(), CreateError> {
    let Some(path) = program.and_then(|p| p.listener_path()) else {
        return Ok(());
    };
    let listener = crate::container::seccomp::take_listener(pid, fd)?;
    let oci: oci_spec::runtime::State = serde_json::from_value(
        serde_json::to_value(state.oci(Status::Created)).expect("state serializes"),
    )
    .map_err(|e| CreateError::Unsupported(format!("state for the seccomp listener: {e}")))?;
    crate::container::seccomp::send_listener(
        path,
        std::os::fd::AsFd::as_fd(&listener),
        pid,
        &oci,
        program.and_then(|p| p.listener_metadata()),
    )?;
    Ok(())
}

/// Until the init reports its pid, the intermediate may ask for its user
/// namespace maps.
fn receive_init_pid(
    parent: &sync::Channel,
    intermediate: i32,
    spec: &Spec,
) -> Result<i32, CreateError> {
    loop {
        match parent.recv()? {
            Msg::UsernsCreated => {
                namespaces::write_id_maps(intermediate, spec.linux().as_ref().expect("validated"))?;
                parent.send(&Msg::MapsWritten)?;
            }
            Msg::InitPid(pid) => return Ok(pid),
            got => {
                return Err(SyncError::Unexpected {
                    got: format!("{got:?}"),
                    want: "InitPid",
                }
                .into())
            }
        }
    }
}

/// The built-in network hook (annotation `rtctr.network`), at the
/// createRuntime point: the container's netns exists. Writes resolv.conf
/// and hosts into the state directory for the init to bind.
fn attach_network(
    dir: &ContainerDir,
    spec: &Spec,
    state: &mut State,
    undo: &mut Undo,
) -> Result<(), CreateError> {
    let Some(req) =
        rtctr_hooks::Request::from_annotations(&state.id, state.pid as u32, &state.annotations)?
    else {
        return Ok(());
    };
    let att = rtctr_hooks::setup(&req)?;
    undo.network = Some((state.id.clone(), att.network.clone()));
    // The spec is in memory: no second read of the config on this path.
    let hostname = spec.hostname().clone().unwrap_or_else(|| state.id.clone());
    for (name, text) in [
        ("resolv.conf", rtctr_hooks::files::resolv_conf()),
        ("hosts", rtctr_hooks::files::hosts(&hostname, Some(att.ip))),
    ] {
        let path = dir.file(name);
        std::fs::write(&path, text).map_err(io_err("write", &path))?;
    }
    state.network = Some(serde_json::to_value(&att).expect("attachment serializes"));
    Ok(())
}

/// prestart (deprecated) and createRuntime hooks, in the runtime's
/// namespaces, once the container's exist.
fn run_runtime_hooks(spec: &Spec, _state: &mut State, state_json: &str) -> Result<(), CreateError> {
    if let Some(h) = spec.hooks() {
        hooks::run_all(
            "prestart",
            h.prestart().as_deref().unwrap_or_default(),
            state_json.as_bytes(),
        )?;
        hooks::run_all(
            "createRuntime",
            h.create_runtime().as_deref().unwrap_or_default(),
            state_json.as_bytes(),
        )?;
    }
    Ok(())
}

fn rootfs_path(bundle: &Path, spec: &Spec) -> Result<PathBuf, CreateError> {
    let root = spec.root().as_ref().expect("validated").path();
    let path = if root.is_absolute() {
        root.clone()
    } else {
        bundle.join(root)
    };
    let path = std::fs::canonicalize(&path).map_err(io_err("root.path", &path))?;
    if !path.is_dir() {
        return Err(io_err("root.path", &path)(io::Error::from_raw_os_error(
            libc::ENOTDIR,
        )));
    }
    Ok(path)
}

fn check_terminal(spec: &Spec, has_console: bool) -> Result<(), CreateError> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && !has_console {
        return Err(CreateError::Unsupported(
            "process.terminal is true: cannot allocate a terminal without --console-socket".into(),
        ));
    }
    if !terminal && has_console {
        return Err(CreateError::Unsupported(
            "--console-socket given but process.terminal is false".into(),
        ));
    }
    Ok(())
}

fn owner() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// The pid file is written atomically (engines poll it).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), CreateError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(io_err("cwd", path))?
            .join(path)
    };
    state::write_atomic(&abs, pid.to_string().as_bytes()).map_err(CreateError::State)
}

/// The fd of a pidfd for polling.
pub fn pidfd_of(pid: i32) -> Option<OwnedFd> {
    rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid)?,
        rustix::process::PidfdFlags::empty(),
    )
    .ok()
}
