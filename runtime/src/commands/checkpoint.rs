//! `rtctr checkpoint`: dump a running container with CRIU into
//! `--image-path`, as runc does. Without `--leave-running` (or with
//! `--pre-dump`, which only copies memory) the container is gone
//! afterwards and its id free for `restore`.

pub use crate::container::checkpoint::{CgroupsMode, CriuFlags};

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;

use crate::container::checkpoint::{self as ckpt, FlagError};
use crate::container::criu::rpc::{Opts, ReqType};
use crate::container::criu::{self, CriuError};
use crate::container::lifecycle::{self, DestroyError};
use crate::spec::SpecError;
use crate::state::{State, StateError, Status, Store};

#[derive(Debug, Default, Clone)]
pub struct CheckpointOptions {
    pub id: String,
    pub image_path: PathBuf,
    /// Where CRIU writes its log (default: the images directory).
    pub work_path: Option<PathBuf>,
    /// A pre-dump's images, relative to the images directory.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
    pub lazy_pages: bool,
    pub page_server: Option<String>,
    pub status_fd: Option<i32>,
    pub flags: CriuFlags,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot checkpoint container {id}: it is {status}")]
    BadStatus { id: String, status: Status },
    #[error("{0} is not supported by rtctr")]
    Unsupported(&'static str),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Flags(#[from] FlagError),
    #[error(transparent)]
    Criu(#[from] CriuError),
    #[error("config snapshot: {0}")]
    Config(#[from] SpecError),
    #[error("remove the checkpointed container: {0}")]
    Destroy(#[from] DestroyError),
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> CheckpointError + 'a {
    move |source| CheckpointError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

pub fn checkpoint(store: &Store, opts: &CheckpointOptions) -> Result<(), CheckpointError> {
    refuse_unsupported(opts)?;
    let dir = store.open(&opts.id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    if !matches!(status, Status::Running | Status::Paused) {
        return Err(CheckpointError::BadStatus {
            id: opts.id.clone(),
            status,
        });
    }
    let images = make_dir(&opts.image_path)?;
    let work_path = opts.work_path.as_deref().unwrap_or(&opts.image_path);
    let work = make_dir(work_path)?;
    write_descriptors(&opts.image_path, state.pid)?;
    if let Some(net) = &state.network {
        let path = opts.image_path.join(ckpt::NETWORK);
        let json = serde_json::to_vec(net).unwrap_or_default();
        std::fs::write(&path, json).map_err(io_err("write", &path))?;
    }
    let mut o = Opts::new(images.as_raw_fd());
    o.work_dir_fd = Some(work.as_raw_fd());
    o.log_file = Some(
        if opts.pre_dump {
            "pre-dump.log"
        } else {
            "dump.log"
        }
        .into(),
    );
    dump_options(&dir.config()?, &state, opts, &mut o)?;
    if state.network.is_some() {
        let ext = ckpt::network_options(&mut o, &dir.path);
        o.ext_mnt.extend(ckpt::dump_ext_mnt(&ext, |_| None));
    }
    let kind = if opts.pre_dump {
        ReqType::PreDump
    } else {
        ReqType::Dump
    };
    let req = criu::Request {
        kind,
        opts: o,
        work_dir: Some(work_path),
        inherit: Vec::new(),
    };
    criu::call(req, |_, _| Ok(()), |_, _| Ok(()))?;
    if !opts.leave_running && !opts.pre_dump {
        // CRIU killed the processes; the rest goes as `delete` would.
        lifecycle::stop(&state);
        lifecycle::destroy(dir, &state)?;
    }
    Ok(())
}

/// What rtctr does not do (yet): said before anything is touched.
fn refuse_unsupported(opts: &CheckpointOptions) -> Result<(), CheckpointError> {
    let refused = [
        (opts.lazy_pages, "--lazy-pages"),
        (opts.page_server.is_some(), "--page-server"),
        (opts.status_fd.is_some(), "--status-fd"),
    ];
    match refused.into_iter().find(|(given, _)| *given) {
        Some((_, flag)) => Err(CheckpointError::Unsupported(flag)),
        None => Ok(()),
    }
}

/// The dump options for this container: what it is, what of it is
/// outside it, how it is frozen.
fn dump_options(
    spec: &oci_spec::runtime::Spec,
    state: &State,
    opts: &CheckpointOptions,
    o: &mut Opts,
) -> Result<(), CheckpointError> {
    opts.flags.apply(o)?;
    o.pid = Some(state.pid);
    o.root = Some(state.rootfs.to_string_lossy().into_owned());
    o.leave_running = Some(opts.leave_running || opts.pre_dump);
    if let Some(cg) = &state.cgroup {
        let freezer = cg.unified_dir().or_else(|| cg.v1_dir("freezer"));
        o.freeze_cgroup = freezer.map(|p| p.to_string_lossy().into_owned());
    }
    let ext = ckpt::external_mounts(spec, &state.bundle, state.cgroup.as_ref());
    let in_root = |p: &str| {
        let path = format!("/proc/{}/root/{}", state.pid, p.trim_start_matches('/'));
        std::fs::metadata(path).ok().map(|m| m.is_dir())
    };
    o.ext_mnt = ckpt::dump_ext_mnt(&ext, in_root);
    if let Some(Some(path)) = ckpt::namespace(spec, LinuxNamespaceType::Network) {
        let ino = std::fs::metadata(&path)
            .map_err(io_err("network namespace", &path))?
            .ino();
        o.external.push(format!("net[{ino}]:{}", ckpt::NETNS_KEY));
    }
    if let Some(parent) = &opts.parent_path {
        o.parent_img = Some(parent.to_string_lossy().into_owned());
    }
    o.track_mem = Some(opts.pre_dump || opts.parent_path.is_some());
    Ok(())
}

/// Makes (0700, with parents) and opens a directory for CRIU.
fn make_dir(path: &Path) -> Result<std::os::fd::OwnedFd, CheckpointError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_err("create", path))?;
    criu::open_dir(path).map_err(io_err("open", path))
}

/// `descriptors.json`: what the init's stdio is (`pipe:[123]`,
/// `/dev/null`, ...), for restore to hand it new pipes in their place.
fn write_descriptors(images: &Path, pid: i32) -> Result<(), CheckpointError> {
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "/dev/null".into())
        })
        .collect();
    let path = images.join(ckpt::DESCRIPTORS);
    let json = serde_json::to_vec(&fds).unwrap_or_default();
    std::fs::write(&path, json).map_err(io_err("write", &path))
}
