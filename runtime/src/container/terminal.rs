//! Terminals: the container side opens a pty from the container's own
//! devpts, makes its peer (got with TIOCGPTPEER, never by path) the
//! controlling terminal and stdio, binds it on /dev/console, and sends
//! the master over the console socket (SCM_RIGHTS), as runc does. The
//! runtime side (`run` without --console-socket) receives the master and
//! copies between it and the caller's terminal.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::socket::{self, UnixAddr};
use nix::sys::stat::Mode;
use oci_spec::runtime::Process;
use rustix::pty::OpenptFlags;

use crate::container::resolve;

#[derive(Debug, thiserror::Error)]
#[error("terminal: {op}: {source}")]
pub struct TerminalError {
    op: String,
    #[source]
    source: io::Error,
}

fn err(op: impl Into<String>) -> impl FnOnce(io::Error) -> TerminalError {
    let op = op.into();
    move |source| TerminalError { op, source }
}

/// A pty opened inside the container.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens `/dev/pts/ptmx` inside `root` (the container's devpts instance)
/// and its peer, sized as `process.consoleSize` says.
pub fn open_in_root(root: BorrowedFd<'_>, process: &Process) -> Result<Pty, TerminalError> {
    let master = resolve::open(
        root,
        Path::new("/dev/pts/ptmx"),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .map_err(err(
        "open /dev/pts/ptmx in the container (is devpts mounted?)",
    ))?;
    rustix::pty::unlockpt(&master).map_err(|e| err("unlockpt")(e.into()))?;
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)
        .map_err(|e| err("TIOCGPTPEER")(e.into()))?;
    set_size(master.as_fd(), process)?;
    Ok(Pty { master, slave })
}

/// `process.consoleSize` on the pty.
fn set_size(fd: BorrowedFd<'_>, process: &Process) -> Result<(), TerminalError> {
    if let Some(size) = process.console_size() {
        let ws = rustix::termios::Winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(fd, ws).map_err(|e| err("set console size")(e.into()))?;
    }
    Ok(())
}

/// Binds the pty peer on `/dev/console` inside the root. The target is
/// created without following a symlink the image may have put there.
pub fn bind_console(root: BorrowedFd<'_>, slave: &OwnedFd) -> Result<(), TerminalError> {
    let dev = resolve::mkdir_all(root, Path::new("/dev"), 0o755).map_err(err("open /dev"))?;
    let _ = nix::unistd::unlinkat(
        dev.as_fd(),
        "console",
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    let f = nix::fcntl::openat(
        dev.as_fd(),
        "console",
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_WRONLY,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| err("create /dev/console")(e.into()))?;
    let target = resolve::fd_path(&f);
    mount(
        Some(&resolve::fd_path(slave)),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| err("bind /dev/console")(e.into()))?;
    Ok(())
}

/// The peer becomes the controlling terminal and stdin/stdout/stderr.
fn make_stdio(slave: &OwnedFd) -> Result<(), TerminalError> {
    rustix::process::ioctl_tiocsctty(slave).map_err(|e| err("TIOCSCTTY")(e.into()))?;
    rustix::stdio::dup2_stdin(slave).map_err(|e| err("dup2 stdin")(e.into()))?;
    rustix::stdio::dup2_stdout(slave).map_err(|e| err("dup2 stdout")(e.into()))?;
    rustix::stdio::dup2_stderr(slave).map_err(|e| err("dup2 stderr")(e.into()))?;
    Ok(())
}

/// Connects to `--console-socket`. The runtime does it before forking
/// (as runc does): the path is a host path, and the child joins the
/// container's mount namespace before it has a terminal to send.
pub fn connect(path: &Path) -> Result<OwnedFd, TerminalError> {
    let sock = socket::socket(
        socket::AddressFamily::Unix,
        socket::SockType::Stream,
        socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| err("socket")(e.into()))?;
    let addr = UnixAddr::new(path)
        .map_err(|e| err(format!("console socket {}", path.display()))(e.into()))?;
    socket::connect(sock.as_raw_fd(), &addr)
        .map_err(|e| err(format!("connect console socket {}", path.display()))(e.into()))?;
    Ok(sock)
}

/// A connected pair for `run` and `exec` without --console-socket: the
/// child sends its pty master on the second, rtctr receives it on the first.
pub fn proxy_pair() -> Result<(OwnedFd, OwnedFd), TerminalError> {
    socket::socketpair(
        socket::AddressFamily::Unix,
        socket::SockType::Stream,
        None,
        socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| err("socketpair")(e.into()))
}

/// The pty's master goes to the console receiver, its peer becomes the
/// controlling terminal and stdin/stdout/stderr.
pub fn hand_over(pty: Pty, receiver: BorrowedFd<'_>) -> Result<(), TerminalError> {
    send_fd(receiver, &pty.master)?;
    drop(pty.master);
    make_stdio(&pty.slave)
}

/// sendmsg with the fd as SCM_RIGHTS and the pty name as data.
pub fn send_fd(sock: BorrowedFd<'_>, fd: &OwnedFd) -> Result<(), TerminalError> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let fds = [fd.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(b"/dev/ptmx")],
        &mut control,
        SendFlags::empty(),
    )
    .map_err(|e| err("send the terminal master")(e.into()))?;
    Ok(())
}

/// Receives one fd sent with [`send_fd`].
pub fn recv_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd, TerminalError> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = [0u8; 256];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| err("receive the terminal master")(e.into()))?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(err("receive the terminal master")(io::Error::other(
        "no descriptor in the message",
    )))
}

/// Puts the caller's terminal in raw mode for the proxy; restores it on drop.
pub struct RawMode {
    fd: OwnedFd,
    saved: rustix::termios::Termios,
}

impl RawMode {
    pub fn enter(fd: BorrowedFd<'_>) -> Option<RawMode> {
        let saved = rustix::termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode {
            fd: fd.try_clone_to_owned().ok()?,
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            &self.fd,
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// Copies the caller's window size onto the pty.
pub fn copy_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(from) {
        let _ = rustix::termios::tcsetwinsize(to, ws);
    }
}

/// Moves bytes from `from` to `to` once `from` is readable; false at EOF.
pub fn pump(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    let n = match rustix::io::read(from, &mut buf) {
        Ok(0) | Err(_) => return false,
        Ok(n) => n,
    };
    let mut rest = &buf[..n];
    while !rest.is_empty() {
        match rustix::io::write(to, rest) {
            Ok(w) => rest = &rest[w..],
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
    true
}
