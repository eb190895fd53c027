//! `restore`, the runtime side: the container is planned from its bundle
//! as `create` plans it ([`super::plan`]), recorded and given its cgroup
//! by the same steps ([`super::parent`]), then CRIU rebuilds its
//! processes, namespaces and mounts from the images. What `create`'s child
//! recipe does (rootfs, mounts, pivot) comes back from the images instead;
//! CRIU is told where the external pieces are now: the rootfs, bind
//! sources, /dev/null for masked files, the cgroup, joined namespaces and
//! the caller's pipes in place of the dumped init's. A restore that fails
//! is undone as a failed create is, from the record.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::LinuxNamespaceType;

use super::checkpoint::{self as ckpt, CriuFlags, FlagError};
use super::criu::rpc::{CgroupRoot, ExtMountMap, InheritFd, Notify, Opts, ReqType};
use super::criu::{self, CriuError, NotifyError};
use super::plan::{io_err, plan, CreateError, CreateOptions, Plan};
use super::{network, parent, terminal};
use crate::state::{self, ContainerDir, State, Store};

#[derive(Debug, Default, Clone)]
pub struct RestoreOptions {
    pub create: CreateOptions,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub detach: bool,
    pub no_subreaper: bool,
    pub tcp_close: bool,
    pub lazy_pages: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
    pub flags: CriuFlags,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Criu(#[from] CriuError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Flags(#[from] FlagError),
    #[error("{0} is not supported by rtctr")]
    Unsupported(&'static str),
    #[error("--image-path {path}: {source}")]
    Images {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    NetworkRecord { path: PathBuf, why: String },
    #[error("criu restored no process")]
    NoPid,
}

/// A restored container, for the verb to go on with (wait or detach).
pub struct Restored {
    pub dir: ContainerDir,
    pub state: State,
}

/// The name of the rootfs bind CRIU restores onto, in the state directory.
pub const CRIU_ROOT: &str = "criu-root";

pub fn restore(store: &Store, opts: &RestoreOptions) -> Result<Restored, RestoreError> {
    refuse_unsupported(opts)?;
    let images = criu::open_dir(&opts.image_path).map_err(|source| RestoreError::Images {
        path: opts.image_path.clone(),
        source,
    })?;
    let plan = plan(&opts.create, None)?;
    let mut state = parent::record(&plan);
    keep_address(&mut state, &opts.image_path)?;
    let dir = store.create(&state)?;
    match build(&dir, &plan, opts, &images, &mut state) {
        Ok(()) => Ok(Restored { dir, state }),
        Err(e) => {
            parent::undo(dir, None);
            Err(e)
        }
    }
}

fn refuse_unsupported(opts: &RestoreOptions) -> Result<(), RestoreError> {
    let refused = [
        (opts.lazy_pages, "--lazy-pages"),
        (opts.lsm_profile.is_some(), "--lsm-profile"),
        (opts.lsm_mount_context.is_some(), "--lsm-mount-context"),
    ];
    match refused.into_iter().find(|(given, _)| *given) {
        Some((_, flag)) => Err(RestoreError::Unsupported(flag)),
        None => Ok(()),
    }
}

/// The restore recipe.
fn build(
    dir: &ContainerDir,
    plan: &Plan,
    opts: &RestoreOptions,
    images: &OwnedFd,
    state: &mut State,
) -> Result<(), RestoreError> {
    let config = dir.file(state::CONFIG_FILE);
    std::fs::write(&config, &plan.raw).map_err(io_err("write", &config))?;
    parent::make_cgroup(plan)?;
    let root = RootBind::mount(&plan.rootfs, &dir.file(CRIU_ROOT))?;
    let work_path = opts.work_path.as_deref().unwrap_or(&opts.image_path);
    std::fs::create_dir_all(work_path).map_err(io_err("create", work_path))?;
    let work = criu::open_dir(work_path).map_err(io_err("open", work_path))?;
    let mut o = Opts::new(images.as_raw_fd());
    o.work_dir_fd = Some(work.as_raw_fd());
    o.log_file = Some("restore.log".into());
    opts.flags.apply(&mut o)?;
    o.rst_sibling = Some(true);
    o.evasive_devices = Some(true);
    o.tcp_close = Some(opts.tcp_close);
    o.root = Some(root.path.to_string_lossy().into_owned());
    let ext = ckpt::external_mounts(&plan.config.spec, &plan.bundle, Some(&plan.cgroup));
    o.ext_mnt = ckpt::restore_ext_mnt(&ext);
    if let Some(ip) = state.annotations.get(ANN_IP).filter(|_| networked(state)) {
        // Bound into /etc before CRIU restores the mounts; the network
        // is attached (and they are written again) at setup-namespaces.
        let ip = ip.parse().ok();
        let hostname = plan.config.spec.hostname().clone();
        let hostname = hostname.unwrap_or_else(|| state.id.clone());
        let texts = [
            rtctr_hooks::files::resolv_conf(),
            rtctr_hooks::files::hosts(&hostname, ip),
        ];
        for (name, text) in ckpt::NETWORK_FILES.iter().zip(texts) {
            let path = dir.file(name);
            std::fs::write(&path, text).map_err(io_err("write", &path))?;
        }
        let ext = ckpt::network_options(&mut o, &dir.path);
        o.ext_mnt.extend(ckpt::restore_ext_mnt(&ext));
    }
    make_mountpoints(&plan.rootfs, &o.ext_mnt)?;
    let inherit = inherit_fds(plan, &opts.image_path, &mut o)?;
    let req = criu::Request {
        kind: ReqType::Restore,
        opts: o,
        work_dir: Some(work_path),
        inherit,
    };
    let resp = criu::call(
        req,
        |pid, o| enter_cgroup(plan, pid, o),
        |n, fd| on_notify(dir, plan, state, n, fd),
    );
    drop(root);
    let pid = resp?.restore.map(|r| r.pid).ok_or(RestoreError::NoPid)?;
    if state.pid != pid {
        record_pid(dir, state, pid)?;
    }
    if let Some(p) = &plan.opts.pid_file {
        state::write_pid_file(p, pid).map_err(CreateError::from)?;
    }
    Ok(())
}

/// CRIU binds each external mount on its mount point in the rootfs: a
/// rootfs other than the dumped one (`podman container restore --import`
/// makes a fresh one) may lack those the dumped init made, as runc's
/// prepareCriuRestoreMounts finds. Made inside the rootfs (resolved in
/// it), a directory or a file as the source is; mount points under
/// /proc, /sys and /dev are CRIU's own mounts, left alone.
fn make_mountpoints(rootfs: &Path, ext: &[ExtMountMap]) -> Result<(), CreateError> {
    let root = File::open(rootfs).map_err(io_err("open", rootfs))?;
    for m in ext {
        let dest = Path::new(&m.key);
        let under_kernel_fs = ["/proc", "/sys", "/dev"]
            .iter()
            .any(|p| dest.starts_with(p));
        if under_kernel_fs || super::resolve::open_path(root.as_fd(), dest, true).is_ok() {
            continue;
        }
        let made = match std::fs::metadata(&m.val).map(|md| md.is_dir()) {
            Ok(true) => super::resolve::mkdir_all(root.as_fd(), dest, 0o755),
            _ => super::resolve::create_file(root.as_fd(), dest),
        };
        made.map_err(io_err("create the mount point", dest))?;
    }
    Ok(())
}

/// The descriptors CRIU gives the restored tree in place of what was
/// outside it: the caller's stdio for the init's pipes (runc's
/// `descriptors.json`), and a joined network namespace.
fn inherit_fds(plan: &Plan, images: &Path, o: &mut Opts) -> Result<Vec<OwnedFd>, RestoreError> {
    let mut keep = Vec::new();
    let mut add = |key: String, fd: OwnedFd| {
        o.inherit_fd.push(InheritFd {
            key,
            fd: fd.as_raw_fd(),
        });
        keep.push(fd);
    };
    let path = images.join(ckpt::DESCRIPTORS);
    let raw = std::fs::read(&path).unwrap_or_default();
    let fds: Vec<String> = serde_json::from_slice(&raw).unwrap_or_default();
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    for (desc, ours) in fds.iter().zip(stdio) {
        if desc.starts_with("pipe:") {
            let fd = criu::inheritable(ours).map_err(io_err("dup stdio", Path::new(desc)))?;
            add(desc.clone(), fd);
        }
    }
    let netns = ckpt::namespace(&plan.config.spec, LinuxNamespaceType::Network);
    if let Some(Some(path)) = netns {
        let file = File::open(&path).map_err(io_err("network namespace", &path))?;
        let fd = criu::inheritable(file.as_fd()).map_err(io_err("dup", &path))?;
        add(ckpt::NETNS_KEY.to_string(), fd);
    }
    Ok(keep)
}

/// criu itself goes into the container's cgroup (as runc does: what CRIU
/// does not place goes where criu is), and the restored tasks' cgroups are
/// rooted there.
fn enter_cgroup(plan: &Plan, criu_pid: i32, o: &mut Opts) -> Result<(), NotifyError> {
    plan.cgroup.add_process(criu_pid)?;
    let text = std::fs::read_to_string(format!("/proc/{criu_pid}/cgroup"))?;
    o.cg_root = cg_roots(&text);
    Ok(())
}

/// `cg_root`s from a /proc/PID/cgroup text: one per v1 hierarchy (by its
/// controllers), and cgroup2's without a controller.
fn cg_roots(text: &str) -> Vec<CgroupRoot> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            let ctrl = ctrl.strip_prefix("name=").unwrap_or(ctrl);
            Some(CgroupRoot {
                ctrl: (!ctrl.is_empty()).then(|| ctrl.to_string()),
                path: path.to_string(),
            })
        })
        .collect()
}

/// CRIU's restore points: the restored init exists (its pid in the
/// record from here on, so a failure kills it), its namespaces are up
/// (the prestart and createRuntime hooks run), its terminal master
/// comes back (to --console-socket).
fn on_notify(
    dir: &ContainerDir,
    plan: &Plan,
    state: &mut State,
    n: &Notify,
    fd: Option<OwnedFd>,
) -> Result<(), NotifyError> {
    match n.script.as_deref().unwrap_or("") {
        "setup-namespaces" => {
            if let Some(pid) = n.pid.filter(|p| *p > 0) {
                record_pid(dir, state, pid)?;
            }
            parent::attach_network(dir, plan, state)?;
            parent::run_runtime_hooks(plan, state)?;
        }
        "post-restore" => {
            if let Some(pid) = n.pid.filter(|p| *p > 0 && *p != state.pid) {
                record_pid(dir, state, pid)?;
            }
        }
        "orphan-pts-master" => {
            let master = fd.ok_or("no terminal master sent with orphan-pts-master")?;
            match plan.console() {
                Some(sock) => terminal::send_fd(sock, &master)?,
                None => return Err("the container has a terminal: use --console-socket".into()),
            }
        }
        _ => {}
    }
    Ok(())
}

/// The annotation the built-in network takes a fixed address from.
const ANN_IP: &str = "rtctr.network.ip";

fn networked(state: &State) -> bool {
    network::requested(&state.id, &state.annotations).is_ok_and(|n| n.is_some())
}

/// A container dumped on the built-in network comes back with the address
/// it had (from the images' record): as if its bundle had asked for it.
fn keep_address(state: &mut State, images: &Path) -> Result<(), RestoreError> {
    let path = images.join(ckpt::NETWORK);
    if !networked(state) || !path.exists() || state.annotations.contains_key(ANN_IP) {
        return Ok(());
    }
    let bad = |why: String| RestoreError::NetworkRecord {
        path: path.clone(),
        why,
    };
    let raw = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
    let record: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
    let ip = record["ip"]
        .as_str()
        .ok_or_else(|| bad("no \"ip\"".into()))?;
    state.annotations.insert(ANN_IP.to_string(), ip.to_string());
    Ok(())
}

fn record_pid(dir: &ContainerDir, state: &mut State, pid: i32) -> Result<(), CreateError> {
    let start = state::start_time(pid).map_err(io_err("start time of", Path::new("pid")))?;
    parent::record_init(dir, state, pid, start)
}

/// The rootfs bound (recursively) at `<state dir>/criu-root`: CRIU wants
/// the restored root to be a mount point. Unmounted when dropped; a
/// container directory is only ever removed by code that unmounts it
/// first ([`super::lifecycle::destroy`]).
struct RootBind {
    path: PathBuf,
}

impl RootBind {
    fn mount(rootfs: &Path, at: &Path) -> Result<RootBind, CreateError> {
        std::fs::create_dir(at).map_err(io_err("create", at))?;
        let rec = MsFlags::MS_BIND | MsFlags::MS_REC;
        mount(Some(rootfs), at, None::<&str>, rec, None::<&str>)
            .map_err(|e| io_err("bind the rootfs on", at)(e.into()))?;
        Ok(RootBind {
            path: at.to_path_buf(),
        })
    }
}

impl Drop for RootBind {
    fn drop(&mut self) {
        unmount_criu_root(&self.path);
    }
}

/// Lazily unmounts and removes a restore's rootfs bind, if there is one.
pub fn unmount_criu_root(path: &Path) {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => log::warn!("unmount {}: {e}", path.display()),
    }
    if let Err(e) = std::fs::remove_dir(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::warn!("remove {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_roots_from_proc() {
        let roots = cg_roots("0::/rtctr/c1\n");
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].ctrl, None);
        assert_eq!(roots[0].path, "/rtctr/c1");
        let roots = cg_roots("4:cpu,cpuacct:/rtctr/c1\n1:name=systemd:/x\n0::/\n");
        assert_eq!(roots[0].ctrl.as_deref(), Some("cpu,cpuacct"));
        assert_eq!(roots[1].ctrl.as_deref(), Some("systemd"));
        assert_eq!(roots[2].ctrl, None);
    }
}
