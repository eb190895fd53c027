//! The steps after `create` that more than one verb takes: releasing a
//! created container's init through its exec fifo (`start`, `run`), and
//! removing every trace of a container (`delete`, `run`).

use std::io::Write;
use std::time::Duration;

use nix::fcntl::OFlag;

use super::{hooks, network, pidfd, user_net};
use crate::state::{ContainerDir, State, StateError, Status, EXEC_FIFO};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot start container {id}: it is {status}")]
    BadStatus { id: String, status: Status },
    #[error("cannot start container {id}: its config.json has no process (the runtime-spec requires one at start)")]
    NoProcess { id: String },
    #[error("cannot start container {id}: its init is gone ({source})")]
    Fifo {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config snapshot: {0}")]
    Config(#[from] crate::spec::SpecError),
}

#[derive(Debug, thiserror::Error)]
pub enum DestroyError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cgroup(#[from] rtctr_cgroups::Error),
}

/// Releases a created container's init (one byte into the exec fifo),
/// then runs the poststart hooks once it has exec'd its program. A start
/// killed after its byte but before it removed the fifo leaves an init
/// that is released (it no longer reads the fifo; it may have exec'd):
/// the next start finishes that one's work and succeeds.
pub fn start(dir: &ContainerDir, state: &State) -> Result<(), StartError> {
    let status = dir.status(state);
    let fifo = dir.file(EXEC_FIFO);
    let released_by_a_killed_start = status == Status::Running && fifo.exists();
    if status != Status::Created && !released_by_a_killed_start {
        return Err(StartError::BadStatus {
            id: state.id.clone(),
            status,
        });
    }
    if state.no_process {
        return Err(StartError::NoProcess {
            id: state.id.clone(),
        });
    }
    let init_exe = exe_id(state.pid);
    if !released_by_a_killed_start {
        match release(dir, &state.id) {
            // No reader, but the init lives: an earlier start released it.
            Err(StartError::Fifo { source, .. })
                if source.raw_os_error() == Some(libc::ENXIO)
                    && crate::state::is_alive(state.pid, state.pid_start) => {}
            other => other?,
        }
    }
    if let Err(e) = std::fs::remove_file(&fifo) {
        log::debug!("remove {}: {e}", fifo.display());
    }
    run_poststart_hooks(dir, state, init_exe)
}

/// Writes to the fifo without blocking: with no reader (the init died)
/// the open fails with ENXIO instead of hanging.
fn release(dir: &ContainerDir, id: &str) -> Result<(), StartError> {
    let fifo = dir.file(EXEC_FIFO);
    let fifo_err = |source: std::io::Error| StartError::Fifo {
        id: id.to_string(),
        source,
    };
    let fd = nix::fcntl::open(
        &fifo,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| fifo_err(e.into()))?;
    std::fs::File::from(fd).write_all(b"0").map_err(fifo_err)
}

/// poststart hooks, "called after the user-specified process is
/// executed": after the init's execve (and its startContainer hooks) or
/// its death.
fn run_poststart_hooks(
    dir: &ContainerDir,
    state: &State,
    init_exe: Option<(u64, u64)>,
) -> Result<(), StartError> {
    let Some(spec) = dir.config_naming("poststart")? else {
        return Ok(());
    };
    let Some(h) = spec.hooks().as_ref().and_then(|h| h.poststart().clone()) else {
        return Ok(());
    };
    if let Some(fd) = pidfd::open_init(state.pid, state.pid_start) {
        while exe_id(state.pid) == init_exe && !pidfd::wait_exit(&fd, Duration::from_millis(1)) {}
    }
    // A failing poststart hook is a warning: the container runs on.
    hooks::run_all_warn("poststart", &h, &state_json(state, Status::Running));
    Ok(())
}

/// (device, inode) of a process's executable: changes at execve.
fn exe_id(pid: i32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((m.dev(), m.ino()))
}

fn state_json(state: &State, status: Status) -> Vec<u8> {
    serde_json::to_vec(&state.oci(status)).unwrap_or_default()
}

/// SIGKILL everything in the container and wait for the init to go.
pub fn stop(state: &State) {
    if let Some(cg) = &state.cgroup {
        // Thaws a paused container first: it cannot die frozen.
        if let Err(e) = cg.kill_all(libc::SIGKILL) {
            log::debug!("kill the processes of {}: {e}", state.id);
        }
    }
    if let Some(fd) = pidfd::open_init(state.pid, state.pid_start) {
        pidfd::kill_and_wait(state.pid, Some(&fd));
    }
}

/// Removes the cgroup, the network attachment, mounts made in rtctr's
/// namespace, an image overlay and its upper dir, and the state directory, then runs the poststop hooks
/// (whose failures are only warnings) if an init ever existed.
pub fn destroy(dir: ContainerDir, state: &State) -> Result<(), DestroyError> {
    let spec = dir.config_naming("poststop").ok().flatten();
    if let Some(cg) = &state.cgroup {
        // Processes the init left behind (no pid namespace) die with it.
        cg.destroy_killing()?;
    }
    match &state.network {
        Some(n) if n.get("user_mode").is_some() => user_net::detach(n, &dir.path),
        Some(n) => {
            if let Some(net) = n["network"].as_str() {
                network::release(&state.id, net);
            }
        }
        None => {}
    }
    if state.host_mounts {
        super::rootfs::unmount_under(&state.rootfs);
    }
    if let Some(o) = &state.overlay {
        crate::image::overlay::unmount(o);
    }
    // A restore killed half-way leaves its rootfs bind: never remove the
    // directory through it (that would empty the rootfs).
    let criu_root = dir.file(super::restore::CRIU_ROOT);
    super::restore::unmount_criu_root(&criu_root);
    if criu_root.exists() {
        return Err(DestroyError::State(StateError::Io {
            op: "unmount",
            path: criu_root,
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        }));
    }
    dir.remove()?;
    let poststop = spec
        .as_ref()
        .and_then(|s| s.hooks().as_ref())
        .filter(|_| state.pid > 0);
    if let Some(h) = poststop.and_then(|h| h.poststop().as_deref()) {
        hooks::run_all_warn("poststop", h, &state_json(state, Status::Stopped));
    }
    Ok(())
}
