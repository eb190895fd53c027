//! `exec` takes the init's path to execve: a `--process` file is checked
//! as config.json's `process` is, and a seccomp notify listener is handed
//! to the agent for an exec'd process as for the init.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use rtctr_integration::*;
use serde_json::{json, Value};

fn running(rt: &Rtctr, b: &Bundle, id: &str) {
    rt.create(b, id, &[]).ok();
    rt.run(&["start", id]).ok();
    rt.wait_status(id, "running");
}

/// pids in the container's cgroup, as `rtctr ps --format json` lists them.
fn pids(rt: &Rtctr, id: &str) -> Vec<i64> {
    let out = rt.run(&["ps", "--format", "json", id]).ok();
    serde_json::from_str(&out.stdout).unwrap()
}

/// A `process` that create refuses is refused by `exec --process` with
/// the same field named, exit status 1, no panic, and no process left.
#[test]
fn a_bad_process_file_fails_as_a_bad_config_does() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sleep", "60"]);
    running(&rt, &b, "vp");
    let before = pids(&rt, "vp");
    let good = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
    // (what, field, its new value or None to leave it out, expected message)
    let cases = [
        (
            "empty args",
            "args",
            Some(json!([])),
            "args: must name the program",
        ),
        ("no args", "args", None, "args: must name the program"),
        (
            "empty program",
            "args",
            Some(json!([""])),
            "args: must name the program",
        ),
        ("no cwd", "cwd", None, "missing field `cwd`"),
        (
            "relative cwd",
            "cwd",
            Some(json!("tmp")),
            "cwd: \"tmp\" is not an absolute path",
        ),
        (
            "bad env",
            "env",
            Some(json!(["X"])),
            "env[0]: \"X\" is not of the form NAME=value",
        ),
        (
            "rlimit",
            "rlimits",
            Some(json!([{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 2}])),
            "rlimits[0]: soft limit 2 is above hard limit 1",
        ),
    ];
    for (what, field, value, msg) in cases {
        let mut process = good.clone();
        match value {
            Some(v) => process[field] = v,
            None => drop(process.as_object_mut().unwrap().remove(field)),
        }
        let file = b.path().join("process.json");
        std::fs::write(&file, process.to_string()).unwrap();
        let out = rt.run(&["exec", "--process", file.to_str().unwrap(), "vp"]);
        assert_eq!(out.code, 1, "{what}: {out:?}");
        assert!(out.stderr.contains(msg), "{what}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{what}: {out:?}");
        assert_eq!(pids(&rt, "vp"), before, "{what}: a process was left");
        // create names the same field, under process.
        let mut bad = Bundle::new(&["true"]);
        bad.edit(|c| {
            let mut p = c["process"].clone();
            for (k, v) in process.as_object().unwrap() {
                p[k] = v.clone();
            }
            for k in ["args", "cwd"] {
                if process.get(k).is_none() {
                    p.as_object_mut().unwrap().remove(k);
                }
            }
            c["process"] = p;
        });
        let out = rt.create(&bad, "vp-create", &[]);
        assert_eq!(out.code, 1, "{what}: create {out:?}");
        assert!(out.stderr.contains(msg), "{what}: create {out:?}");
        assert!(rt.status("vp-create").is_none());
    }
    rt.run(&["delete", "--force", "vp"]).ok();
}

/// A cwd that does not exist in a running container: create makes it for
/// the init (as runc does), but exec does not change the container's
/// filesystem — it fails naming process.cwd, as runc and crun do.
#[test]
fn exec_into_a_missing_cwd_fails_cleanly() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::with_own_rootfs(&["sleep", "60"]);
    b.edit(|c| c["process"]["cwd"] = json!("/made/by/create"));
    running(&rt, &b, "cwd");
    let out = rt.run(&["exec", "cwd", "pwd"]).ok();
    assert_eq!(out.stdout, "/made/by/create\n");
    let before = pids(&rt, "cwd");
    let out = rt.run(&["exec", "--cwd", "/no/such/dir", "cwd", "pwd"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("process.cwd /no/such/dir: resolve: ")
            && out.stderr.contains("No such file or directory"),
        "{out:?}"
    );
    assert_eq!(pids(&rt, "cwd"), before);
    assert!(!b.path().join("rootfs/no").exists(), "exec created the cwd");
    rt.run(&["delete", "--force", "cwd"]).ok();
}

/// Receives one message and its fds over a unix stream.
fn recv_with_fds(sock: &UnixStream) -> (Value, Vec<OwnedFd>) {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = vec![0u8; 65536];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        sock.as_fd(),
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::empty(),
    )
    .unwrap();
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(f) = msg {
            fds.extend(f);
        }
    }
    let text = String::from_utf8_lossy(&buf[..got.bytes]).into_owned();
    let msg = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (msg, fds)
}

/// The next connection, or a panic after `secs` seconds without one.
fn accept_within(listener: &UnixListener, secs: u64) -> UnixStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                return conn;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no listener reached the agent within {secs} s"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn is_seccomp_notify(fd: &OwnedFd) -> bool {
    let link = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(fd)
    ))
    .unwrap();
    link.to_string_lossy().contains("seccomp notify")
}

/// The container's profile notifies on mkdir: the init's listener reaches
/// the agent at create, and an exec'd process's own listener reaches it
/// at exec, with that process's pid (the path exec used to drop).
#[test]
fn exec_hands_its_seccomp_listener_to_the_agent() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sleep", "60"]);
    let sock_path = b.path().join("seccomp.sock");
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_path,
            "listenerMetadata": "meta-exec",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        })
    });
    let listener = UnixListener::bind(&sock_path).unwrap();
    // The agent keeps the init's listener, checks the exec'd process's and
    // lets go of it: its notified mkdir then fails (ENOSYS) instead of waiting.
    let agent = std::thread::spawn(move || {
        let (init_msg, init_fds) = recv_with_fds(&accept_within(&listener, 10));
        let (exec_msg, exec_fds) = recv_with_fds(&accept_within(&listener, 10));
        let notify = exec_fds.len() == 1 && is_seccomp_notify(&exec_fds[0]);
        (init_msg, init_fds, exec_msg, notify)
    });
    running(&rt, &b, "nx");
    let pid_file = b.path().join("exec.pid");
    let out = rt.run(&[
        "exec",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "nx",
        "sh",
        "-c",
        "mkdir /tmp/y; echo rc=$?",
    ]);
    let (init_msg, init_fds, exec_msg, exec_notify) =
        agent.join().expect("the agent got both listeners");
    let init_pid = rt.state("nx").unwrap()["pid"].as_i64().unwrap();
    assert_eq!(init_msg["pid"].as_i64(), Some(init_pid), "{init_msg}");
    let exec_pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(exec_pid, init_pid);
    assert_eq!(exec_msg["pid"].as_i64(), Some(exec_pid), "{exec_msg}");
    assert_eq!(exec_msg["fds"], json!(["seccompFd"]), "{exec_msg}");
    assert_eq!(exec_msg["metadata"], json!("meta-exec"), "{exec_msg}");
    assert_eq!(exec_msg["state"]["id"], json!("nx"), "{exec_msg}");
    assert_eq!(exec_msg["state"]["status"], json!("running"), "{exec_msg}");
    assert!(is_seccomp_notify(&init_fds[0]) && exec_notify);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "rc=1\n", "{out:?}");
    rt.run(&["delete", "--force", "nx"]).ok();
}
