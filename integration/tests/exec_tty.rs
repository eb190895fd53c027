//! `exec` into running containers, and terminals: --console-socket
//! receives the pty master, `run` proxies one itself.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;

use rtctr_integration::*;
use serde_json::json;

fn running(rt: &Rtctr, id: &str) -> Bundle {
    let b = Bundle::new(&["sleep", "60"]);
    rt.create(&b, id, &[]).ok();
    rt.run(&["start", id]).ok();
    b
}

#[test]
fn exec_joins_the_container_and_returns_its_status() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let _b = running(&rt, "ex");
    let out = rt
        .run(&[
            "exec",
            "ex",
            "sh",
            "-c",
            "echo $$ $(hostname); cat /proc/1/cmdline | tr '\\0' ' '",
        ])
        .ok();
    // Same pid namespace (sleep is pid 1) and UTS namespace.
    assert_eq!(out.stdout, "2 rtctr\nsleep 60 ", "{out:?}");
    let out = rt.run(&[
        "exec",
        "--user",
        "1000:1000",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "ex",
        "sh",
        "-c",
        "echo $FOO $(id -u):$(id -g) $(pwd); exit 3",
    ]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "bar 1000:1000 /tmp\n");
    let out = rt.run(&["exec", "ex", "no-such-tool"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("executable file not found"), "{out:?}");
    // The container's capabilities apply (the default set from `rtctr spec`).
    let out = rt
        .run(&["exec", "ex", "grep", "CapEff", "/proc/self/status"])
        .ok();
    assert_eq!(
        out.stdout.split_whitespace().nth(1),
        Some("0000000020000420"),
        "{out:?}"
    );
    let out = rt
        .run(&[
            "exec",
            "--cap",
            "CAP_NET_ADMIN",
            "ex",
            "grep",
            "CapEff",
            "/proc/self/status",
        ])
        .ok();
    assert_eq!(
        out.stdout.split_whitespace().nth(1),
        Some("0000000020001420"),
        "{out:?}"
    );
    // Detached, with a pid file naming a process in the container's cgroup.
    let pid_file = rt.root.path().join("exec.pid");
    // (stdio to /dev/null: the detached process keeps what it inherits.)
    let st = rt
        .cmd()
        .args([
            "exec",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "ex",
            "sleep",
            "30",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(pid_alive(pid));
    let init = rt.state("ex").unwrap()["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap()
    );
    rt.run(&["delete", "--force", "ex"]).ok();
    assert!(!pid_alive(pid), "delete --force leaves no exec'd process");
    let out = rt.run(&["exec", "ex", "true"]);
    assert_eq!(out.code, 1);
}

#[test]
fn exec_with_a_process_file() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = running(&rt, "exp");
    let process = b.path().join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["sh", "-c", "echo $X; ulimit -n"], "env": ["X=from-file", "PATH=/bin"], "cwd": "/",
               "user": {"uid": 0, "gid": 0},
               "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]})
        .to_string(),
    )
    .unwrap();
    let out = rt
        .run(&["exec", "--process", process.to_str().unwrap(), "exp"])
        .ok();
    assert_eq!(out.stdout, "from-file\n256\n");
}

/// Receives one fd over a unix stream (the console socket protocol).
fn recv_fd(sock: &std::os::unix::net::UnixStream) -> OwnedFd {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = [0u8; 64];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        sock.as_fd(),
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::empty(),
    )
    .unwrap();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            return fds.next().unwrap();
        }
    }
    panic!("no fd received");
}

fn read_all(fd: OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // EIO once the container side is closed.
    while let Ok(n) = rustix::io::read(&fd, &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).replace('\r', "")
}

#[test]
fn console_socket_receives_the_pty_master() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sh", "-c", "tty; stty size; ls -l /dev/console | cut -c1"]);
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    });
    let sock_path = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let accept = std::thread::spawn(move || listener.accept().unwrap().0);
    let out = rt.create(
        &b,
        "tty1",
        &["--console-socket", sock_path.to_str().unwrap()],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let master = recv_fd(&accept.join().unwrap());
    rt.run(&["start", "tty1"]).ok();
    let text = read_all(master);
    assert_eq!(text, "/dev/pts/0\n30 100\nc\n", "{text:?}");
    rt.wait_status("tty1", "stopped");
    rt.run(&["delete", "tty1"]).ok();

    // A terminal without a console socket is refused by create.
    let out = rt.create(&b, "tty2", &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--console-socket"), "{out:?}");
    assert!(rt.ids().is_empty());
}

#[test]
fn run_proxies_the_terminal_itself() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sh", "-c", "tty; echo done"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let out = rt.run_bundle(&b, "ttyrun");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.replace('\r', ""), "/dev/pts/0\ndone\n");
    let out = rt.run(&["run", "-d", "--bundle", b.path().to_str().unwrap(), "ttyd"]);
    assert_eq!(
        out.code, 1,
        "detached run with a terminal needs a console socket"
    );
}
