//! `rtctr start`: release a created container's init through its exec
//! fifo, then run the poststart hooks.

use std::io::Write;

use nix::fcntl::OFlag;

use crate::state::{ContainerDir, State, StateError, Status, Store, EXEC_FIFO};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot start container {id}: it is {status}")]
    BadStatus { id: String, status: Status },
    #[error("cannot start container {id}: its init is gone ({source})")]
    Fifo {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config snapshot: {0}")]
    Config(#[from] crate::spec::SpecError),
}

pub fn start(store: &Store, id: &str) -> Result<(), StartError> {
    let dir = store.open(id)?;
    let mut state = dir.load()?;
    start_loaded(&dir, &mut state)
}

/// `start` for a container already loaded (also used by `run`).
pub fn start_loaded(dir: &ContainerDir, state: &mut State) -> Result<(), StartError> {
    let status = dir.status(state);
    if status != Status::Created {
        return Err(StartError::BadStatus {
            id: state.id.clone(),
            status,
        });
    }
    let fifo = dir.file(EXEC_FIFO);
    let fifo_err = |source: std::io::Error| StartError::Fifo {
        id: state.id.clone(),
        source,
    };
    // Non-blocking: with no reader (the init died) this fails with ENXIO
    // instead of hanging.
    let fd = nix::fcntl::open(
        &fifo,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| fifo_err(e.into()))?;
    let init_exe = exe_id(state.pid);
    std::fs::File::from(fd).write_all(b"0").map_err(fifo_err)?;
    let _ = std::fs::remove_file(&fifo);
    state.started = true;
    dir.save(state)?;
    // Parse the config snapshot only when it can hold poststart hooks:
    // `start` is on the hot path and most configs have none.
    let raw = std::fs::read(dir.file(crate::state::CONFIG_FILE)).unwrap_or_default();
    if !raw.windows(b"poststart".len()).any(|w| w == b"poststart") {
        return Ok(());
    }
    let spec = load_snapshot(dir)?;
    if let Some(h) = spec.hooks().as_ref().and_then(|h| h.poststart().as_deref()) {
        // "called after the user-specified process is executed": wait for
        // the init's execve (after its startContainer hooks) or its death.
        if let Some(pidfd) = crate::commands::kill::init_pidfd(state.pid, state.pid_start) {
            while exe_id(state.pid) == init_exe
                && !crate::commands::kill::wait_exit(&pidfd, std::time::Duration::from_millis(1))
            {
            }
        }
        let json = serde_json::to_vec(&state.oci(Status::Running)).expect("state serializes");
        // A failing poststart hook is a warning: the container runs on.
        crate::container::hooks::run_all_warn("poststart", h, &json);
    }
    Ok(())
}

/// (device, inode) of a process's executable: changes at execve.
fn exe_id(pid: i32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((m.dev(), m.ino()))
}

/// The config.json snapshot taken at create.
pub fn load_snapshot(
    dir: &ContainerDir,
) -> Result<oci_spec::runtime::Spec, crate::spec::SpecError> {
    Ok(crate::spec::load(&dir.path)?.0)
}
