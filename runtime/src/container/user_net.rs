//! Networking for a rootless container (`rtctr.network` set, caller not
//! root): the built-in bridge needs root, so the container's network
//! namespace is connected in user mode, by pasta (Debian `passt`) or else
//! slirp4netns (Debian `slirp4netns`), both run as the caller, with
//! `rtctr.network.ports` forwarded from the host. The helper's pid is in
//! the state; `delete` stops it.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rtctr_hooks::{PortMapping, Proto, Request};

use super::network::NetworkError;
use super::rootless;

/// Names the one user-mode tool to use (tests use it to try each).
const USER_NET_ENV: &str = "RTCTR_USER_NET";
/// The state directory file pasta writes its pid to.
const PASTA_PID: &str = "pasta.pid";
/// slirp4netns's API socket (port forwarding), in the state directory.
const SLIRP_SOCKET: &str = "slirp4netns.sock";
/// slirp4netns's stderr, in the state directory.
const SLIRP_LOG: &str = "slirp4netns.log";
/// slirp4netns's DNS forwarder, with `--configure`.
const SLIRP_DNS: &str = "10.0.2.3";

/// Which tool connects the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Pasta,
    Slirp4netns,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Pasta => "pasta",
            Tool::Slirp4netns => "slirp4netns",
        }
    }

    /// pasta first (faster, no API socket needed for ports), else
    /// slirp4netns; `RTCTR_USER_NET=pasta|slirp4netns` allows only that one.
    fn find() -> Result<(Tool, PathBuf), NetworkError> {
        let only = std::env::var(USER_NET_ENV).ok();
        for tool in [Tool::Pasta, Tool::Slirp4netns] {
            if only.as_deref().is_some_and(|o| o != tool.name()) {
                continue;
            }
            if let Some(p) = rootless::find_tool(tool.name()) {
                return Ok((tool, p));
            }
        }
        Err(NetworkError::UserMode(
            "rootless: rtctr.network needs pasta (Debian package passt) or slirp4netns \
             (Debian package slirp4netns), and neither is installed; the built-in bridge \
             needs root"
                .to_string(),
        ))
    }
}

/// Networking is user-mode when the caller is not real root.
pub fn wanted() -> bool {
    !rootless::is_root() || rootless::in_user_namespace()
}

/// Checked before anything exists: a tool is there, the config has a
/// network namespace of its own to connect, no fixed address is asked
/// for, and no host port is one an unprivileged user cannot bind.
pub fn check(req: &Request, new_netns: bool) -> Result<(), NetworkError> {
    Tool::find()?;
    if !new_netns {
        return Err(NetworkError::UserMode(
            "rootless: rtctr.network needs a new network namespace in linux.namespaces \
             (`rtctr spec --rootless` has none)"
                .to_string(),
        ));
    }
    if req.ip.is_some() {
        return Err(NetworkError::UserMode(
            "rootless: rtctr.network.ip is not supported in user-mode networking".to_string(),
        ));
    }
    let first = unprivileged_port_start();
    if let Some(p) = req.ports.iter().find(|p| p.host_port < first) {
        return Err(NetworkError::UserMode(format!(
            "rootless: rtctr.network.ports: host port {} is privileged (below \
             net.ipv4.ip_unprivileged_port_start = {first}); a user cannot bind it",
            p.host_port
        )));
    }
    Ok(())
}

fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// Connects the network namespace of `pid` and writes resolv.conf and
/// hosts into `state_dir`. Returns the record for the state.
pub fn attach(
    req: &Request,
    pid: i32,
    hostname: &str,
    state_dir: &Path,
) -> Result<serde_json::Value, NetworkError> {
    let (tool, path) = Tool::find()?;
    let helper = match tool {
        Tool::Pasta => start_pasta(&path, pid, &req.ports, state_dir)?,
        Tool::Slirp4netns => start_slirp(&path, pid, &req.ports, state_dir)?,
    };
    let start = crate::state::start_time(helper).unwrap_or(0);
    let record = serde_json::json!({
        "network": req.network,
        "user_mode": tool.name(),
        "pid": helper,
        "pid_start": start,
    });
    let resolv = match tool {
        Tool::Pasta => rtctr_hooks::files::resolv_conf(),
        Tool::Slirp4netns => format!("nameserver {SLIRP_DNS}\n"),
    };
    let files = [
        ("resolv.conf", resolv),
        ("hosts", rtctr_hooks::files::hosts(hostname, None)),
    ];
    for (name, text) in files {
        let path = state_dir.join(name);
        if let Err(source) = std::fs::write(&path, text) {
            detach(&record, state_dir);
            return Err(NetworkError::Write { path, source });
        }
    }
    Ok(record)
}

/// pasta joins the container's user and network namespaces, configures
/// the interface like the host's, forwards the ports, writes its pid and
/// goes to the background.
fn start_pasta(
    path: &Path,
    pid: i32,
    ports: &[PortMapping],
    state_dir: &Path,
) -> Result<i32, NetworkError> {
    let pid_file = state_dir.join(PASTA_PID);
    let spec = |proto| {
        let list: Vec<String> = ports
            .iter()
            .filter(|p| p.proto == proto)
            .map(|p| format!("{}:{}", p.host_port, p.container_port))
            .collect();
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(",")
        }
    };
    let out = Command::new(path)
        .args(["--config-net", "--quiet", "-T", "none", "-U", "none"])
        .args(["-t", &spec(Proto::Tcp), "-u", &spec(Proto::Udp)])
        .arg("--pid")
        .arg(&pid_file)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| NetworkError::UserMode(format!("run {}: {e}", path.display())))?;
    if !out.status.success() {
        return Err(NetworkError::UserMode(format!(
            "pasta: {} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        )));
    }
    read_pid(&pid_file).ok_or_else(|| {
        NetworkError::UserMode(format!("pasta wrote no pid to {}", pid_file.display()))
    })
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// slirp4netns runs in the foreground: started in its own process group,
/// it reports readiness on a pipe; ports go through its API socket.
fn start_slirp(
    path: &Path,
    pid: i32,
    ports: &[PortMapping],
    state_dir: &Path,
) -> Result<i32, NetworkError> {
    use std::os::unix::process::CommandExt;
    let err = |what: &str, e: &dyn std::fmt::Display| {
        NetworkError::UserMode(format!("slirp4netns: {what}: {e}"))
    };
    let socket = state_dir.join(SLIRP_SOCKET);
    let log_path = state_dir.join(SLIRP_LOG);
    let log = std::fs::File::create(&log_path).map_err(|e| err("create its log", &e))?;
    // Inherited by the child as is (no CLOEXEC); closed here after spawn.
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::empty()).map_err(|e| err("pipe", &e))?;
    nix::fcntl::fcntl(
        ready_r.as_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| err("pipe", &e))?;
    let child = Command::new(path)
        .args(["--configure", "--mtu=65520", "--disable-host-loopback"])
        .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
        .arg("--api-socket")
        .arg(&socket)
        .arg(format!("--userns-path=/proc/{pid}/ns/user"))
        .arg("--netns-type=path")
        .arg(format!("/proc/{pid}/ns/net"))
        .arg("tap0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| err("start", &e))?;
    drop(ready_w);
    let helper = child.id() as i32;
    let ready = wait_readable(&ready_r, Duration::from_secs(10))
        && std::fs::File::from(ready_r)
            .read(&mut [0u8; 1])
            .is_ok_and(|n| n == 1);
    if !ready {
        super::pidfd::kill_and_wait(helper, None);
        let said = std::fs::read_to_string(&log_path).unwrap_or_default();
        let said = said.lines().rev().take(3).collect::<Vec<_>>().join("; ");
        return Err(err(
            "not ready",
            &format!("it exited or did not report within 10 s: {said}"),
        ));
    }
    for p in ports {
        if let Err(e) = add_hostfwd(&socket, p) {
            super::pidfd::kill_and_wait(helper, None);
            return Err(err(&format!("forward port {}", p.host_port), &e));
        }
    }
    Ok(helper)
}

fn wait_readable(fd: &impl AsFd, timeout: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, ms), Ok(n) if n > 0)
}

fn add_hostfwd(socket: &Path, p: &PortMapping) -> std::io::Result<()> {
    let mut s = UnixStream::connect(socket)?;
    let req = serde_json::json!({"execute": "add_hostfwd", "arguments": {
        "proto": p.proto.as_str(), "host_addr": "0.0.0.0",
        "host_port": p.host_port, "guest_port": p.container_port}});
    s.write_all(req.to_string().as_bytes())?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    if reply.contains("\"error\"") || !reply.contains("\"return\"") {
        return Err(std::io::Error::other(reply));
    }
    Ok(())
}

/// Stops the helper of a record ([`attach`]'s, or a create killed before
/// it was written: then pasta's pid file says). Best effort, logged.
pub fn detach(record: &serde_json::Value, state_dir: &Path) {
    let pid = record["pid"].as_i64().map(|p| p as i32);
    let start = record["pid_start"].as_u64();
    let (pid, start) = match (pid, start) {
        (Some(p), Some(s)) => (p, s),
        _ => match read_pid(&state_dir.join(PASTA_PID)) {
            Some(p) => (p, crate::state::start_time(p).unwrap_or(0)),
            None => return,
        },
    };
    match super::pidfd::open_init(pid, start) {
        Some(fd) => {
            if let Err(e) = super::pidfd::send(&fd, libc::SIGTERM) {
                log::warn!("stop the network helper {pid}: {e}");
            } else if !super::pidfd::wait_exit(&fd, Duration::from_secs(5)) {
                let _ = super::pidfd::send(&fd, libc::SIGKILL);
            }
        }
        None => log::debug!("network helper {pid} already gone"),
    }
}
