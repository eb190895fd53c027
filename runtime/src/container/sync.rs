//! The socketpair protocol between rtctr (the parent) and the processes it
//! forks (the container init or an exec'd process, and the intermediate
//! that forks it where there is one: see `init::spawn`).
//! Each message is one JSON-encoded [`Msg`] with one meaning, sent as
//! SOCK_SEQPACKET packets of at most [`PACKET`] bytes whose first byte says
//! whether more follow: a message of any size (the state JSON carries the
//! config's annotations) fits the socket's buffer. An intermediate and the
//! process it forks each have a channel of their own (so the second cannot
//! overtake the first's report of its pid; without an intermediate rtctr
//! knows the pid from clone3). The handshake, in order:
//!
//! ```text
//! intermediate → UsernsCreated        parent → MapsWritten     (new user namespace only)
//! parent       → CgroupReady                                   (v1 and hybrid hosts)
//! intermediate → ChildPid{pid,start}                            (then it exits)
//! init         → Entered                                        (parent: attaches the network)*
//! init         → NamespacesReady      parent → HooksDone(state) (createRuntime hooks ran)*
//! init/exec    → SeccompListener(fd)  parent → ListenerTaken   (seccomp notify only)
//! init         → Created                                        (exec: the channel closes at execve)
//! ```
//!
//! \* Only when the parent has work there (`Plan::work_midway`: a network,
//! net devices, hooks, or rootless helpers); otherwise neither side waits.
//!
//! A child's error travels back as [`Msg::Error`], message and errno, so the
//! parent prints it and can tell EPERM from ENOENT.

use std::error::Error as StdError;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    /// intermediate → parent: I unshared a user namespace, write my maps.
    UsernsCreated,
    /// parent → intermediate: uid/gid maps are written.
    MapsWritten,
    /// parent → child: the container's cgroup exists with its limits: join
    /// it (v1 and hybrid hosts, where the parent makes it after the clone).
    CgroupReady,
    /// intermediate → parent: the pid (host view) of the process it forked
    /// into the container's pid namespace, and its start time, read while
    /// nobody but the intermediate can reap it.
    ChildPid { pid: i32, start: u64 },
    /// init → parent: I am in all the container's namespaces and its
    /// cgroup. The parent attaches the network while the init mounts.
    Entered,
    /// init → parent: the container's namespaces and mounts exist; run the
    /// prestart/createRuntime hooks.
    NamespacesReady,
    /// parent → init: those hooks ran; the OCI state JSON for the hooks
    /// the init runs itself.
    HooksDone(String),
    /// child → parent: the seccomp notify listener is this fd of mine.
    SeccompListener(i32),
    /// parent → child: the listener is copied (pidfd_getfd) and handed on.
    ListenerTaken,
    /// init → parent: set-up is complete; waiting on the exec fifo.
    Created,
    /// child → parent: a step failed.
    Error { msg: String, errno: Option<i32> },
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A child's error, as it reported it.
    #[error("{msg}")]
    Child { msg: String, errno: Option<i32> },
    #[error("the container process exited during set-up without a message")]
    Eof,
    #[error("unexpected message {got:?} while waiting for {want}")]
    Unexpected { got: String, want: &'static str },
    #[error("sync socket: {0}")]
    Io(#[from] io::Error),
    /// The start time of a child rtctr forked itself (from /proc).
    #[error("read the start time of the container process: {0}")]
    ChildStart(#[source] io::Error),
}

impl SyncError {
    /// The errno of a child's failed step, where there was one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SyncError::Child { errno, .. } => *errno,
            SyncError::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

/// The largest packet: well inside the default socket buffer.
pub const PACKET: usize = 16 * 1024;
const MORE: u8 = 1;
const LAST: u8 = 0;

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair of channels: (parent end, child end). Both are
/// close-on-exec, so the parent sees the end of the channel once the
/// child has exec'd (or died).
pub fn pair() -> io::Result<(Channel, Channel)> {
    let (a, b) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
        let mut chunks = bytes.chunks(PACKET - 1).peekable();
        // An empty message is still one packet.
        let mut packet = Vec::with_capacity(PACKET);
        loop {
            let chunk = chunks.next().unwrap_or_default();
            packet.clear();
            packet.push(if chunks.peek().is_some() { MORE } else { LAST });
            packet.extend_from_slice(chunk);
            socket::send(self.fd.as_raw_fd(), &packet, MsgFlags::MSG_NOSIGNAL)
                .map_err(io::Error::from)?;
            if packet[0] == LAST {
                return Ok(());
            }
        }
    }

    /// The next message; a child's [`Msg::Error`] becomes [`SyncError::Child`].
    pub fn recv(&self) -> Result<Msg, SyncError> {
        let mut bytes = Vec::new();
        let mut packet = vec![0u8; PACKET];
        loop {
            let n = loop {
                match socket::recv(self.fd.as_raw_fd(), &mut packet, MsgFlags::empty()) {
                    Err(nix::Error::EINTR) => continue,
                    other => break other.map_err(io::Error::from)?,
                }
            };
            if n == 0 {
                return Err(SyncError::Eof);
            }
            bytes.extend_from_slice(&packet[1..n]);
            if packet[0] == LAST {
                break;
            }
        }
        let msg: Msg = serde_json::from_slice(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        match msg {
            Msg::Error { msg, errno } => Err(SyncError::Child { msg, errno }),
            msg => Ok(msg),
        }
    }

    /// Receives and checks that the message is `want`.
    pub fn expect(&self, want: Msg) -> Result<(), SyncError> {
        match self.recv()? {
            got if got == want => Ok(()),
            got => Err(unexpected(got, variant_name(&want))),
        }
    }

    /// The intermediate's report of its child's pid. Before it, a request
    /// for user namespace maps goes to `write_maps` and is acknowledged.
    pub fn await_child_pid<E: From<SyncError>>(
        &self,
        mut write_maps: impl FnMut() -> Result<(), E>,
    ) -> Result<(i32, u64), E> {
        loop {
            match self.recv()? {
                Msg::UsernsCreated => {
                    write_maps()?;
                    self.send(&Msg::MapsWritten)?;
                }
                Msg::ChildPid { pid, start } => return Ok((pid, start)),
                got => return Err(unexpected(got, "ChildPid").into()),
            }
        }
    }

    pub fn expect_hooks_done(&self) -> Result<String, SyncError> {
        match self.recv()? {
            Msg::HooksDone(state) => Ok(state),
            got => Err(unexpected(got, "HooksDone")),
        }
    }

    /// The parent's wait for a child's process set-up: each seccomp
    /// listener it reports goes to `take` and is acknowledged, until
    /// `until` — [`Msg::Created`] from an init, or (None) the end of the
    /// channel, when an exec'd process has reached execve.
    pub fn serve_listeners<E: From<SyncError>>(
        &self,
        until: Option<Msg>,
        mut take: impl FnMut(i32) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            match (self.recv(), &until) {
                (Ok(Msg::SeccompListener(fd)), _) => {
                    take(fd)?;
                    self.send(&Msg::ListenerTaken)?;
                }
                (Ok(got), Some(want)) if &got == want => return Ok(()),
                (Err(SyncError::Eof), None) => return Ok(()),
                (Ok(got), want) => {
                    let want = want.as_ref().map_or("execve", variant_name);
                    return Err(unexpected(got, want).into());
                }
                (Err(e), _) => return Err(e.into()),
            }
        }
    }

    /// Reports a child's error to the parent, with the errno of the first
    /// OS error in its chain (best effort: the parent may be gone).
    pub fn send_error(&self, err: &(dyn StdError + 'static)) {
        let msg = Msg::Error {
            msg: err.to_string(),
            errno: errno_of(err),
        };
        let _ = self.send(&msg);
    }
}

fn unexpected(got: Msg, want: &'static str) -> SyncError {
    SyncError::Unexpected {
        got: format!("{got:?}"),
        want,
    }
}

fn variant_name(msg: &Msg) -> &'static str {
    match msg {
        Msg::UsernsCreated => "UsernsCreated",
        Msg::MapsWritten => "MapsWritten",
        Msg::CgroupReady => "CgroupReady",
        Msg::ChildPid { .. } => "ChildPid",
        Msg::Entered => "Entered",
        Msg::NamespacesReady => "NamespacesReady",
        Msg::HooksDone(_) => "HooksDone",
        Msg::SeccompListener(_) => "SeccompListener",
        Msg::ListenerTaken => "ListenerTaken",
        Msg::Created => "Created",
        Msg::Error { .. } => "Error",
    }
}

/// The errno of the first io or nix error in an error's source chain.
fn errno_of(err: &(dyn StdError + 'static)) -> Option<i32> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(n) = io.raw_os_error() {
                return Some(n);
            }
        }
        if let Some(errno) = e.downcast_ref::<nix::Error>() {
            return Some(*errno as i32);
        }
        if let Some(sync) = e.downcast_ref::<SyncError>() {
            if let Some(n) = sync.errno() {
                return Some(n);
            }
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("mount /proc: {0}")]
    struct MountFailed(#[source] nix::Error);

    #[test]
    fn messages_round_trip_and_errors_surface_with_errno() {
        let (p, c) = pair().unwrap();
        c.send(&Msg::UsernsCreated).unwrap();
        c.send(&Msg::ChildPid { pid: 42, start: 7 }).unwrap();
        let mut maps = 0;
        let pid = p.await_child_pid::<SyncError>(|| {
            maps += 1;
            Ok(())
        });
        assert_eq!((pid.unwrap(), maps), ((42, 7), 1));
        c.expect(Msg::MapsWritten).unwrap();
        c.send(&Msg::Created).unwrap();
        let err = p.expect(Msg::NamespacesReady).unwrap_err().to_string();
        assert_eq!(
            err,
            "unexpected message \"Created\" while waiting for NamespacesReady"
        );
        p.send(&Msg::HooksDone("{}".into())).unwrap();
        assert_eq!(c.expect_hooks_done().unwrap(), "{}");
        c.send_error(&MountFailed(nix::Error::EPERM));
        let err = p.recv().unwrap_err();
        assert_eq!(
            err.to_string(),
            "mount /proc: EPERM: Operation not permitted"
        );
        assert_eq!(err.errno(), Some(libc::EPERM));
        drop(c);
        assert!(matches!(p.recv(), Err(SyncError::Eof)));
    }

    #[test]
    fn a_message_of_any_size_arrives_whole() {
        let (p, c) = pair().unwrap();
        let big = "x".repeat(10 << 20);
        let sender = std::thread::spawn(move || p.send(&Msg::HooksDone(big)).unwrap());
        assert_eq!(c.expect_hooks_done().unwrap().len(), 10 << 20);
        sender.join().unwrap();
        // Exactly one packet's worth, and the smallest message.
        let (p, c) = pair().unwrap();
        let edge = "y".repeat(PACKET - 1 - r#"{"HooksDone":""}"#.len());
        p.send(&Msg::HooksDone(edge.clone())).unwrap();
        p.send(&Msg::Created).unwrap();
        assert_eq!(c.expect_hooks_done().unwrap(), edge);
        c.expect(Msg::Created).unwrap();
    }

    #[test]
    fn listeners_are_served_until_created_or_exec() {
        let (p, c) = pair().unwrap();
        c.send(&Msg::SeccompListener(7)).unwrap();
        c.send(&Msg::Created).unwrap();
        let mut taken = Vec::new();
        p.serve_listeners::<SyncError>(Some(Msg::Created), |fd| {
            taken.push(fd);
            Ok(())
        })
        .unwrap();
        assert_eq!(taken, [7]);
        c.expect(Msg::ListenerTaken).unwrap();
        // An exec'd process: the end of the channel is the success.
        let child = std::thread::spawn(move || {
            c.send(&Msg::SeccompListener(9)).unwrap();
            c.expect(Msg::ListenerTaken).unwrap();
        });
        p.serve_listeners::<SyncError>(None, |fd| {
            taken.push(fd);
            Ok(())
        })
        .unwrap();
        child.join().unwrap();
        assert_eq!(taken, [7, 9]);
    }
}
