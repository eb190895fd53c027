//! What `create` decides before anything exists: the config validated,
//! the host paths it names resolved, the namespaces, cgroup, capability
//! sets and seccomp program worked out. A failure here leaves no trace.
//! The parent recipe ([`super::parent`]) and the child recipe
//! ([`super::init`], which reads it in its copy of memory) both work from
//! the [`Plan`].

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;
use rtctr_cgroups::Cgroup;

use super::sync::SyncError;
use super::{hooks, idmap, lsm, namespaces, network, process, rootless, seccomp, terminal};
use crate::image::overlay;
use crate::spec::{self, Config};
use crate::state::{self, StateError};

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
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the container init was OOM-killed during set-up: linux.resources.memory.limit {limit} is too low")]
    OomDuringSetup { limit: String },
    #[error("process.terminal is true: cannot allocate a terminal without --console-socket")]
    TerminalWithoutConsole,
    #[error("--console-socket given but process.terminal is false")]
    ConsoleWithoutTerminal,
    #[error(transparent)]
    Terminal(#[from] terminal::TerminalError),
    #[error(transparent)]
    Process(#[from] process::PlanError),
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Lsm(#[from] lsm::LsmError),
    #[error(transparent)]
    Idmap(#[from] idmap::IdmapError),
    #[error(transparent)]
    Rootless(#[from] rootless::RootlessError),
    #[error("rootless (uid {uid}): linux.resources {setting} cannot be applied: this user can write no {controller} cgroup (cgroup v1 hierarchies belong to root; on cgroup v2, run rtctr in a delegated subtree)")]
    RootlessLimit {
        uid: u32,
        setting: String,
        controller: String,
    },
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
}

pub(super) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> CreateError + 'a {
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
    /// `--rootless` decided ([`rootless::skip_unwritable_cgroups`]): the
    /// cgroup hierarchies the caller cannot write are left out.
    pub rootless_cgroups: bool,
}

/// What `create` decided before anything exists; the parent recipe and
/// the child recipe (which sees it in its copy of memory) both read it.
pub struct Plan<'a> {
    pub opts: &'a CreateOptions,
    pub config: Config,
    /// config.json as read, kept as the container's snapshot.
    pub raw: Vec<u8>,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub ns: namespaces::Plan,
    pub cgroup: Cgroup,
    pub process: Option<process::Plan>,
    /// Idmapped copies of bind sources, for the init to attach.
    pub idmapped: Vec<idmap::Idmapped>,
    /// The caller is not real root (a user, or root in a user namespace).
    pub rootless: bool,
    /// The overlay of image layers to mount on `rootfs` first.
    pub overlay: Option<overlay::Plan>,
    /// The built-in network the annotations ask for.
    pub network: Option<String>,
    /// Where the terminal master goes: a connected --console-socket, or
    /// `run`'s own socket.
    console: Option<Console<'a>>,
}

enum Console<'a> {
    Connected(OwnedFd),
    Given(BorrowedFd<'a>),
}

impl Plan<'_> {
    /// The container has a mount namespace of its own (else it shares
    /// rtctr's and chroots).
    pub fn own_mounts(&self) -> bool {
        self.ns.has(LinuxNamespaceType::Mount)
    }

    pub fn new_cgroupns(&self) -> bool {
        self.ns.creates(LinuxNamespaceType::Cgroup)
    }

    /// rtctr has work while the init makes its mounts: a network to
    /// attach, net devices to move in, hooks to run (the init's own hooks
    /// take their state from rtctr), or, rootless, helpers that need the
    /// init dumpable meanwhile. Without any, the two do not wait for each
    /// other there (`Entered`, `NamespacesReady`, `HooksDone`): each wait
    /// wakes the other's CPU, some 50 µs in a VM.
    pub fn work_midway(&self) -> bool {
        let hooks = self.config.spec.hooks().as_ref().is_some_and(|h| {
            [
                h.prestart(),
                h.create_runtime(),
                h.create_container(),
                h.start_container(),
            ]
            .iter()
            .any(|list| list.as_ref().is_some_and(|l| !l.is_empty()))
        });
        let net_devices = self
            .config
            .linux
            .net_devices()
            .as_ref()
            .is_some_and(|d| !d.is_empty());
        self.network.is_some() || net_devices || hooks || self.rootless
    }

    pub fn console(&self) -> Option<BorrowedFd<'_>> {
        self.console.as_ref().map(|c| match c {
            Console::Connected(fd) => fd.as_fd(),
            Console::Given(fd) => *fd,
        })
    }

    /// None for a config without `process` (created, never started).
    pub fn process_setup(&self) -> Option<process::Setup<'_>> {
        let (process, plan) = self.config.process.as_ref().zip(self.process.as_ref())?;
        Some(process::Setup {
            process,
            plan,
            preserve_fds: self.opts.preserve_fds,
        })
    }
}

/// Everything that can fail before anything exists: the config, the host
/// paths it names, the capability and seccomp programs, the annotations.
pub fn plan<'a>(
    opts: &'a CreateOptions,
    console: Option<BorrowedFd<'a>>,
) -> Result<Plan<'a>, CreateError> {
    state::validate_id(&opts.id)?;
    let bundle = std::fs::canonicalize(&opts.bundle).map_err(io_err("bundle", &opts.bundle))?;
    let (spec, raw) = spec::load(&bundle)?;
    let config = spec::validate(spec)?;
    let rootfs = rootfs_path(&bundle, &config.root_path)?;
    let process = config.process.as_ref();
    let process = process
        .map(|p| process::plan(p, &config.linux))
        .transpose()?;
    let console = console_receiver(opts, &config, console)?;
    rootless::check_namespaces(&config.linux)?;
    let ns = namespaces::plan(&config.linux)?;
    if ns.new_user {
        rootless::check_map_tools(&config.linux)?;
    }
    let cgroups_path = config.linux.cgroups_path().as_deref();
    let mut cgroup = Cgroup::resolve(cgroups_path, &opts.id, opts.systemd_cgroup)?;
    if opts.rootless_cgroups {
        cgroup = writable_cgroup(cgroup);
    }
    let annotations = config.spec.annotations().clone().unwrap_or_default();
    let new_netns = ns.creates(LinuxNamespaceType::Network);
    let network = network::check(&opts.id, &annotations, new_netns)?;
    network::check_net_devices(&config.linux)?;
    lsm::check_mount_label(&config.linux)?;
    let overlay = overlay::plan(&annotations, &rootfs, &opts.id)?;
    let mounts = config.spec.mounts().as_deref().unwrap_or_default();
    let idmapped = idmap::prepare(mounts, &config.linux, &bundle)?;
    Ok(Plan {
        opts,
        config,
        raw,
        bundle,
        rootfs,
        ns,
        cgroup,
        process,
        idmapped,
        rootless: !rootless::is_root() || rootless::in_user_namespace(),
        overlay,
        network,
        console,
    })
}

/// Rootless: only the hierarchies the caller may write; the rest are
/// skipped (as runc does), which a limit in linux.resources then turns
/// into an error when the cgroup is made.
fn writable_cgroup(cgroup: Cgroup) -> Cgroup {
    let (kept, left) = cgroup.writable_part();
    for dir in &left {
        log::debug!(
            "rootless: no cgroup in {}: not writable by this user",
            dir.display()
        );
    }
    kept
}

fn rootfs_path(bundle: &Path, root: &Path) -> Result<PathBuf, CreateError> {
    let path = bundle.join(root);
    let path = std::fs::canonicalize(&path).map_err(io_err("root.path", &path))?;
    if !path.is_dir() {
        return Err(io_err("root.path", &path)(io::Error::from_raw_os_error(
            libc::ENOTDIR,
        )));
    }
    Ok(path)
}

/// The terminal's receiver: --console-socket, connected here (a host
/// path), or `run`'s socket. Refused when it and process.terminal disagree.
fn console_receiver<'a>(
    opts: &CreateOptions,
    config: &Config,
    given: Option<BorrowedFd<'a>>,
) -> Result<Option<Console<'a>>, CreateError> {
    let terminal = config.process.as_ref().is_some_and(|p| p.terminal());
    match (terminal, &opts.console_socket, given) {
        (true, Some(path), _) => Ok(Some(Console::Connected(terminal::connect(path)?))),
        (true, None, Some(fd)) => Ok(Some(Console::Given(fd))),
        (true, None, None) => Err(CreateError::TerminalWithoutConsole),
        (false, Some(_), _) => Err(CreateError::ConsoleWithoutTerminal),
        (false, None, _) => Ok(None),
    }
}
