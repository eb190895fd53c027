//! The socketpair protocol between rtctr (the parent) and the processes it
//! forks. SOCK_SEQPACKET keeps message boundaries; each message is one
//! JSON-encoded [`Msg`]. Errors in a child travel back as [`Msg::Error`]
//! so the parent can print them.

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
    /// intermediate → parent: the container init's pid (host view).
    InitPid(i32),
    /// init → parent: namespaces and mounts are ready; run the
    /// prestart/createRuntime hooks.
    RuntimeHooks,
    /// parent → init: hooks done, go on; carries the OCI state JSON for
    /// the hooks the init runs itself.
    Continue(String),
    /// init → parent: the seccomp notify listener is this fd of mine.
    SeccompListener(i32),
    /// init → parent: set-up is complete; waiting on the exec fifo.
    Created,
    /// any child → parent: a step failed.
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Child(String),
    #[error("container init exited during set-up without a message")]
    Eof,
    #[error("unexpected message {got:?} while waiting for {want}")]
    Unexpected { got: String, want: &'static str },
    #[error("sync socket: {0}")]
    Io(#[from] io::Error),
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair of channels: (parent end, child end).
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
        let bytes = serde_json::to_vec(msg).expect("sync messages serialize");
        socket::send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)
            .map_err(io::Error::from)?;
        Ok(())
    }

    pub fn recv(&self) -> Result<Msg, SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                other => break other.map_err(io::Error::from)?,
            }
        };
        if n == 0 {
            return Err(SyncError::Eof);
        }
        let msg: Msg = serde_json::from_slice(&buf[..n])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        match msg {
            Msg::Error(text) => Err(SyncError::Child(text)),
            msg => Ok(msg),
        }
    }

    /// Receives and checks that the message is `want`.
    pub fn expect(&self, want: Msg, name: &'static str) -> Result<(), SyncError> {
        let got = self.recv()?;
        if got == want {
            Ok(())
        } else {
            Err(SyncError::Unexpected {
                got: format!("{got:?}"),
                want: name,
            })
        }
    }

    pub fn expect_init_pid(&self) -> Result<i32, SyncError> {
        match self.recv()? {
            Msg::InitPid(pid) => Ok(pid),
            got => Err(SyncError::Unexpected {
                got: format!("{got:?}"),
                want: "InitPid",
            }),
        }
    }

    pub fn expect_continue(&self) -> Result<String, SyncError> {
        match self.recv()? {
            Msg::Continue(state) => Ok(state),
            got => Err(SyncError::Unexpected {
                got: format!("{got:?}"),
                want: "Continue",
            }),
        }
    }

    /// Reports a child's error to the parent (best effort: the parent may
    /// be gone).
    pub fn send_error(&self, err: &dyn std::fmt::Display) {
        let _ = self.send(&Msg::Error(err.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_errors_surface() {
        let (p, c) = pair().unwrap();
        c.send(&Msg::InitPid(42)).unwrap();
        assert_eq!(p.expect_init_pid().unwrap(), 42);
        c.send(&Msg::Created).unwrap();
        assert!(p.expect(Msg::RuntimeHooks, "RuntimeHooks").is_err());
        p.send(&Msg::Continue("{}".into())).unwrap();
        assert_eq!(c.expect_continue().unwrap(), "{}");
        c.send_error(&"mount /proc: EPERM");
        assert_eq!(p.recv().unwrap_err().to_string(), "mount /proc: EPERM");
        drop(c);
        assert!(matches!(p.recv(), Err(SyncError::Eof)));
    }
}
