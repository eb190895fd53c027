//! CRIU through its RPC interface, as runc and crun drive it: rtctr starts
//! `criu swrk <fd>` with one end of a SOCK_SEQPACKET socketpair, sends one
//! `criu_req` ([`rpc`]) and reads `criu_resp` messages until the answer to
//! its request, acknowledging each notification (`setup-namespaces`,
//! `post-restore`, `orphan-pts-master`, ...) on the way. CRIU opens the
//! images and work directories through `/proc/<rtctr>/fd/<n>`, so rtctr
//! keeps them open for the request's length.
//!
//! The `rust-criu` crate (0.6, MIT) does the same, but has no pre-dump
//! request, takes notification callbacks as plain `fn` pointers (no state:
//! restore must record the pid it is told about) and drops CRIU's error
//! message; the dozen messages needed are declared in [`rpc`] with prost.

pub mod rpc;

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use prost::Message;
use rpc::{Notify, Opts, Req, ReqType, Resp};

/// The CRIU binary (looked up in PATH, as runc does).
const CRIU: &str = "criu";

/// Largest message CRIU sends (its responses are a few hundred bytes).
const MAX_MSG: usize = 64 * 1024;

/// What a notification handler can fail with.
pub type NotifyError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error("cannot run {CRIU} (is CRIU installed?): {0}")]
    Spawn(#[source] io::Error),
    #[error("criu {action}: {what}: {source}")]
    Io {
        action: &'static str,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("criu {0}: malformed response: {1}")]
    Decode(&'static str, #[source] prost::DecodeError),
    /// CRIU answered that the request failed (or died before answering).
    #[error("criu {action} failed: {reason}{log}")]
    Failed {
        action: &'static str,
        /// CRIU's own words: its error message, the Error lines of its
        /// log, or what it printed before it died.
        reason: String,
        /// ` (log: PATH)`, or empty.
        log: String,
    },
    #[error("criu {action}: unexpected response {got} (wanted {want})")]
    Unexpected {
        action: &'static str,
        got: i32,
        want: i32,
    },
    #[error("criu {action}: at {script:?}: {source}")]
    Notify {
        action: &'static str,
        script: String,
        #[source]
        source: NotifyError,
    },
}

/// One request to CRIU.
pub struct Request<'a> {
    pub kind: ReqType,
    pub opts: Opts,
    /// The directory CRIU writes its log (`opts.log_file`) and stderr to,
    /// quoted in errors.
    pub work_dir: Option<&'a Path>,
    /// Descriptors criu inherits at the same numbers (for `inherit_fd`).
    pub inherit: Vec<OwnedFd>,
}

impl ReqType {
    fn action(self) -> &'static str {
        match self {
            ReqType::Dump => "dump",
            ReqType::PreDump => "pre-dump",
            ReqType::Restore => "restore",
            ReqType::Check => "check",
            ReqType::Version => "version",
            ReqType::Empty | ReqType::Notify => "request",
        }
    }
}

/// A running `criu swrk`.
struct Swrk {
    sock: OwnedFd,
    child: Child,
    action: &'static str,
}

/// Sends `req` and serves its notifications until CRIU answers it.
/// `on_spawn` runs once criu's pid is known, before the request is sent
/// (restore moves criu into the container's cgroup there); `on_notify`
/// gets each notification and the descriptor sent with it.
pub fn call(
    mut req: Request<'_>,
    on_spawn: impl FnOnce(i32, &mut Opts) -> Result<(), NotifyError>,
    mut on_notify: impl FnMut(&Notify, Option<OwnedFd>) -> Result<(), NotifyError>,
) -> Result<Resp, CriuError> {
    let action = req.kind.action();
    let stderr = req
        .work_dir
        .map(|d| d.join(format!("criu-{action}.stderr")));
    let mut swrk = Swrk::spawn(action, stderr.as_deref(), std::mem::take(&mut req.inherit))?;
    let pid = swrk.child.id() as i32;
    if let Err(source) = on_spawn(pid, &mut req.opts) {
        swrk.kill();
        return Err(CriuError::Notify {
            action,
            script: "start".into(),
            source,
        });
    }
    let log = req
        .work_dir
        .zip(req.opts.log_file.as_deref())
        .map(|(d, f)| d.join(f));
    let msg = Req {
        r#type: req.kind as i32,
        opts: Some(req.opts),
        notify_success: None,
    };
    let result = swrk.serve(&msg, &mut on_notify);
    let failed = |reason: Option<String>| CriuError::Failed {
        action,
        reason: reason_of(reason, log.as_deref(), stderr.as_deref()),
        log: log
            .as_deref()
            .map(|p| format!(" (log: {})", p.display()))
            .unwrap_or_default(),
    };
    let outcome = match result {
        Ok(resp) if resp.success => Ok(resp),
        Ok(resp) => Err(failed(resp_reason(&resp))),
        Err(Served::Eof) => Err(failed(None)),
        Err(Served::Error(e)) => Err(e),
    };
    swrk.finish();
    if outcome.is_ok() {
        if let Some(p) = &stderr {
            let _ = std::fs::remove_file(p);
        }
    }
    outcome
}

/// Why [`Swrk::serve`] stopped without an answer.
enum Served {
    /// CRIU closed the socket (it died, or refused the request).
    Eof,
    Error(CriuError),
}

impl Swrk {
    fn spawn(
        action: &'static str,
        stderr: Option<&Path>,
        inherit: Vec<OwnedFd>,
    ) -> Result<Swrk, CriuError> {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let io_err = |what| {
            move |e: io::Error| CriuError::Io {
                action,
                what,
                source: e,
            }
        };
        let (ours, theirs) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| io_err("socketpair")(e.into()))?;
        // dup() clears close-on-exec: criu gets this one, at this number.
        let theirs = rustix::io::dup(&theirs).map_err(|e| io_err("dup")(e.into()))?;
        let err_out = match stderr {
            Some(p) => Stdio::from(File::create(p).map_err(io_err("create stderr file"))?),
            None => Stdio::null(),
        };
        let child = Command::new(CRIU)
            .arg("swrk")
            .arg(theirs.as_raw_fd().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_out)
            .spawn()
            .map_err(CriuError::Spawn)?;
        drop(inherit);
        Ok(Swrk {
            sock: ours,
            child,
            action,
        })
    }

    /// Sends the request, then reads until its answer, acking notifications.
    fn serve(
        &mut self,
        req: &Req,
        on_notify: &mut impl FnMut(&Notify, Option<OwnedFd>) -> Result<(), NotifyError>,
    ) -> Result<Resp, Served> {
        self.send(req).map_err(Served::Error)?;
        let mut failed_at: Option<(String, NotifyError)> = None;
        loop {
            let (resp, fd) = match self.recv() {
                Ok(Some(got)) => got,
                Ok(None) => {
                    return Err(match failed_at {
                        Some((script, source)) => Served::Error(self.notify_err(script, source)),
                        None => Served::Eof,
                    })
                }
                Err(e) => return Err(Served::Error(e)),
            };
            if resp.r#type != ReqType::Notify as i32 || !resp.success {
                if let Some((script, source)) = failed_at {
                    return Err(Served::Error(self.notify_err(script, source)));
                }
                if resp.success && resp.r#type != req.r#type {
                    return Err(Served::Error(CriuError::Unexpected {
                        action: self.action,
                        got: resp.r#type,
                        want: req.r#type,
                    }));
                }
                return Ok(resp);
            }
            let notify = resp.notify.unwrap_or_default();
            let script = notify.script.clone().unwrap_or_default();
            log::debug!("criu {}: notify {script} pid {:?}", self.action, notify.pid);
            let ok = match on_notify(&notify, fd) {
                Ok(()) => true,
                Err(e) => {
                    failed_at.get_or_insert((script, e));
                    false
                }
            };
            let ack = Req {
                r#type: ReqType::Notify as i32,
                opts: None,
                notify_success: Some(ok),
            };
            self.send(&ack).map_err(Served::Error)?;
        }
    }

    fn notify_err(&self, script: String, source: NotifyError) -> CriuError {
        CriuError::Notify {
            action: self.action,
            script,
            source,
        }
    }

    fn send(&self, req: &Req) -> Result<(), CriuError> {
        rustix::net::send(
            &self.sock,
            &req.encode_to_vec(),
            rustix::net::SendFlags::empty(),
        )
        .map_err(|e| CriuError::Io {
            action: self.action,
            what: "send request",
            source: e.into(),
        })?;
        Ok(())
    }

    /// One response and the descriptor that came with it; None at EOF.
    fn recv(&self) -> Result<Option<(Resp, Option<OwnedFd>)>, CriuError> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
        let mut buf = vec![0u8; MAX_MSG];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let io_err = |what, source| CriuError::Io {
            action: self.action,
            what,
            source,
        };
        let got = rustix::net::recvmsg(
            &self.sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        );
        let got = match got {
            Ok(got) => got,
            // criu died: a seqpacket peer gone reads as EOF or ECONNRESET.
            Err(rustix::io::Errno::CONNRESET) => return Ok(None),
            Err(e) => return Err(io_err("receive", e.into())),
        };
        let mut fd = None;
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
                fd = fds.next();
            }
        }
        if got.bytes == 0 {
            return Ok(None);
        }
        if got.flags.contains(ReturnFlags::TRUNC) {
            let e = io::Error::other(format!("message longer than {MAX_MSG} bytes"));
            return Err(io_err("receive", e));
        }
        let resp =
            Resp::decode(&buf[..got.bytes]).map_err(|e| CriuError::Decode(self.action, e))?;
        Ok(Some((resp, fd)))
    }

    fn kill(&mut self) {
        if let Err(e) = self.child.kill() {
            log::debug!("kill criu: {e}");
        }
        self.finish();
    }

    /// Closes the socket (criu swrk exits once its client is gone) and reaps criu.
    fn finish(self: &mut Swrk) {
        let _ = rustix::net::shutdown(&self.sock, rustix::net::Shutdown::Both);
        if let Err(e) = self.child.wait() {
            log::debug!("wait for criu: {e}");
        }
    }
}

/// CRIU's own reason for a failed response.
fn resp_reason(resp: &Resp) -> Option<String> {
    match (&resp.cr_errmsg, resp.cr_errno) {
        (Some(m), _) if !m.is_empty() => Some(m.trim_end().to_string()),
        (_, Some(n)) if n != 0 => Some(io::Error::from_raw_os_error(n).to_string()),
        _ => None,
    }
}

/// The best account of a failure: CRIU's message, else the first Error
/// lines of its log, else what it printed on stderr.
fn reason_of(given: Option<String>, log: Option<&Path>, stderr: Option<&Path>) -> String {
    let from_file = |p: Option<&Path>| {
        let text = std::fs::read_to_string(p?).ok()?;
        let errors = error_lines(&text);
        (!errors.is_empty()).then_some(errors)
    };
    given
        .or_else(|| from_file(log))
        .or_else(|| from_file(stderr))
        .unwrap_or_else(|| "no error message from criu".to_string())
}

/// The first three `Error (file:line): message` lines of a CRIU log,
/// without their timestamps, joined with "; ".
pub fn error_lines(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.find("Error (").map(|i| l[i..].trim()))
        .take(3)
        .collect();
    lines.join("; ")
}

/// Opens a directory for CRIU to reach through `/proc/<rtctr>/fd/<n>`.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let file = File::open(path)?;
    if !file.metadata()?.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    Ok(file.into())
}

/// A descriptor criu inherits at the number it has here: a dup of `fd`
/// (dup clears close-on-exec).
pub fn inheritable(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::io::dup(fd)?)
}

/// Is CRIU usable here? A `check` request (CRIU's `criu check`): on hosts
/// where CRIU cannot start (an unsupported kernel) it fails. CRIU writes
/// its log into the images directory: a private temporary one.
pub fn usable() -> bool {
    let dir = std::env::temp_dir().join(format!("rtctr-criu-check.{}", std::process::id()));
    if let Err(e) = std::fs::create_dir(&dir) {
        log::debug!("criu check: create {}: {e}", dir.display());
        return false;
    }
    let ok = open_dir(&dir).is_ok_and(|fd| {
        let mut opts = Opts::new(fd.as_raw_fd());
        opts.log_file = Some("check.log".into());
        let req = Request {
            kind: ReqType::Check,
            opts,
            work_dir: Some(&dir),
            inherit: Vec::new(),
        };
        match call(req, |_, _| Ok(()), |_, _| Ok(())) {
            Ok(_) => true,
            Err(e) => {
                log::debug!("{e}");
                false
            }
        }
    });
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        log::debug!("remove {}: {e}", dir.display());
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_keep_criu_words_without_timestamps() {
        let log = "(00.000010) Version: 3.17.1\n\
                   (00.001) Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n\
                   (00.002) Warn (x): y\n\
                   Error (criu/crtools.c:260): Could not initialize kernel features detection.\n";
        assert_eq!(
            error_lines(log),
            "Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable; \
             Error (criu/crtools.c:260): Could not initialize kernel features detection."
        );
        assert_eq!(error_lines("(0.1) all fine\n"), "");
    }
}
