//! The two steps that touch the kernel: `seccomp(2)` and the listener hand-over.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{ContainerProcessState, State, SECCOMP_FD_NAME};

use super::{Program, SeccompError};

impl Program {
    /// Installs the filter on the calling thread (all threads with `TSYNC`)
    /// with `seccomp(SECCOMP_SET_MODE_FILTER, flags)`.
    ///
    /// Needs `no_new_privs` or `CAP_SYS_ADMIN`. Returns the notify listener fd
    /// when the profile uses `SCMP_ACT_NOTIFY`.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let filter = self.instructions();
        let prog = libc::sock_fprog {
            // compile() keeps the length at or below MAX_INSNS (4096).
            len: u16::try_from(filter.len()).unwrap_or(u16::MAX),
            // seccompiler::sock_filter is #[repr(C)] with the same fields as
            // libc::sock_filter; the kernel only reads through this pointer.
            filter: filter.as_ptr().cast::<libc::sock_filter>().cast_mut(),
        };
        // SAFETY: `prog` points at `filter`, which outlives the call; the
        // kernel copies the program before returning and writes nothing.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags(),
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            let source = io::Error::last_os_error();
            if source.raw_os_error() == Some(libc::EACCES) {
                return Err(SeccompError::InstallNotPermitted);
            }
            return Err(SeccompError::Install {
                flags: self.flags(),
                source,
            });
        }
        if !self.wants_listener() {
            if rc > 0 {
                // TSYNC without TSYNC_ESRCH reports the thread that could not
                // be synchronized as a positive return value.
                return Err(SeccompError::Install {
                    flags: self.flags(),
                    source: io::Error::other(format!(
                        "TSYNC: thread {rc} could not be synchronized"
                    )),
                });
            }
            return Ok(None);
        }
        let fd = i32::try_from(rc).map_err(|_| SeccompError::Install {
            flags: self.flags(),
            source: io::Error::other("listener fd out of range"),
        })?;
        // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns a
        // new fd that nothing else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

/// Sends the seccomp listener fd to the agent at `listener_path`, as the
/// runtime-spec asks: one message whose payload is the JSON
/// `ContainerProcessState` (`fds: ["seccompFd"]`, `pid`, `metadata`, `state`)
/// and whose `SCM_RIGHTS` carries `fd`.
///
/// `pid` is the container process as seen by the runtime; `state` is the
/// container's state (`status` "creating" during create). Call it from the
/// runtime side, not from the filtered init.
pub(crate) fn send_listener(
    listener_path: &Path,
    fd: BorrowedFd<'_>,
    pid: i32,
    state: &State,
    metadata: Option<&str>,
) -> Result<(), SeccompError> {
    let mut process_state = ContainerProcessState::default();
    process_state
        .set_version(state.version().clone())
        .set_fds(vec![SECCOMP_FD_NAME.to_string()])
        .set_pid(pid)
        .set_metadata(metadata.map(str::to_string))
        .set_state(state.clone());
    let json = serde_json::to_vec(&process_state).map_err(SeccompError::StateJson)?;

    let stream =
        UnixStream::connect(listener_path).map_err(|source| SeccompError::ListenerConnect {
            path: listener_path.to_path_buf(),
            source,
        })?;
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(&json)];
    let sent = sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).map_err(
        |errno| SeccompError::ListenerSend {
            path: listener_path.to_path_buf(),
            source: io::Error::from(errno),
        },
    )?;
    // A stream may take a large state (annotations) in parts: the fd went
    // with the first, the rest follows on the same connection.
    std::io::Write::write_all(&mut &stream, &json[sent..]).map_err(|source| {
        SeccompError::ListenerSend {
            path: listener_path.to_path_buf(),
            source,
        }
    })
}

impl Program {
    /// The runtime's half of `SCMP_ACT_NOTIFY`: copies listener `fd` out of
    /// process `pid` (which reported its number) and sends it to
    /// `listenerPath` with the container's state, as the spec says.
    pub fn hand_over_listener(
        &self,
        pid: i32,
        fd: i32,
        state: &impl serde::Serialize,
    ) -> Result<(), SeccompError> {
        let Some(path) = self.listener_path() else {
            return Ok(());
        };
        let listener = take_listener(pid, fd)?;
        let state: State = serde_json::to_value(state)
            .and_then(serde_json::from_value)
            .map_err(SeccompError::StateJson)?;
        send_listener(
            path,
            std::os::fd::AsFd::as_fd(&listener),
            pid,
            &state,
            self.listener_metadata(),
        )
    }
}

/// Takes a copy of the listener fd `fd` from process `pid` (the container
/// init) with `pidfd_open` + `pidfd_getfd` (Linux 5.6), so the init only has
/// to report the fd *number* over the sync channel. Needs ptrace access to
/// `pid` (the runtime, as its parent with the same or more privileges, has it).
pub(crate) fn take_listener(pid: i32, fd: i32) -> Result<OwnedFd, SeccompError> {
    let err = |source: rustix::io::Errno| SeccompError::TakeListener {
        pid,
        fd,
        source: source.into(),
    };
    let target = rustix::process::Pid::from_raw(pid).ok_or(SeccompError::TakeListener {
        pid,
        fd,
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    let pidfd =
        rustix::process::pidfd_open(target, rustix::process::PidfdFlags::empty()).map_err(err)?;
    rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty()).map_err(err)
}
