//! `checkpoint` / `restore` through CRIU. Where CRIU cannot run (the
//! development host: its kernel fails `criu check`) both verbs must fail
//! naming CRIU's own error and leave nothing; where it runs (the cgroup v2
//! VM, `make test-cgroupv2`) a counting loop is checkpointed and restored
//! and must go on counting from where it was, in the same container.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use rtctr_integration::*;

/// Does `criu check` pass here?
fn criu_usable() -> Option<bool> {
    let st = Command::new("criu")
        .arg("check")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    Some(st.success())
}

const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done";

/// The lines a container writes to its stdout pipe, read in a thread.
struct Lines {
    rx: Receiver<String>,
}

impl Lines {
    /// The next line, or None at EOF / after `timeout`.
    fn text(&self, timeout: Duration) -> Option<String> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next number, or None at EOF / after `timeout`.
    fn next(&self, timeout: Duration) -> Option<u64> {
        let line = self.rx.recv_timeout(timeout).ok()?;
        Some(line.trim().parse().expect("the counter prints numbers"))
    }

    /// Reads until `n` or more is printed; returns it.
    #[track_caller]
    fn until_at_least(&self, n: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(v) if v >= n => return v,
                Some(_) => {}
                None => panic!("the counter stopped before {n}"),
            }
        }
    }

    /// Every number until the pipe closes (the process is gone); the last.
    #[track_caller]
    fn drain(&self) -> Option<u64> {
        let mut last = None;
        loop {
            match self.rx.recv_timeout(Duration::from_secs(30)) {
                Ok(l) => last = Some(l.trim().parse().unwrap()),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return last,
                Err(e) => panic!("the old stdout pipe stayed open: {e}"),
            }
        }
    }
}

/// Starts a verb with the container's stdio on pipes (CRIU restores
/// pipes, not host files); the container's stdout lines are read in a
/// thread. stdin stays open (the container holds its read end).
fn spawn(rt: &Rtctr, args: &[&str]) -> (Child, Lines) {
    spawn_with(rt, args, Stdio::piped())
}

fn spawn_with(rt: &Rtctr, args: &[&str], stdin: Stdio) -> (Child, Lines) {
    let mut child: Child = rt
        .cmd()
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::mem::forget(child.stdin.take());
    (child, Lines { rx })
}

/// What rtctr wrote to stderr so far (the container holds the pipe too:
/// read what is there, not to EOF).
fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    if let Some(e) = child.stderr.take() {
        rustix::fs::fcntl_setfl(&e, rustix::fs::OFlags::NONBLOCK).unwrap();
        let mut buf = [0u8; 4096];
        while let Ok(n) = rustix::io::read(&e, &mut buf) {
            if n == 0 {
                break;
            }
            err.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    err
}

/// Runs a detached verb (`run -d`, `restore -d`) with the container's
/// stdio on pipes; returns its exit status, its stderr and the
/// container's stdout lines.
fn detached(rt: &Rtctr, args: &[&str]) -> (i32, String, Lines) {
    let (mut child, lines) = spawn(rt, args);
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), stderr_of(&mut child), lines)
}

/// A bundle on a rootfs of its own holding busybox and the few applets
/// the counter and the checks use: the shared busybox rootfs with all its
/// applet links takes most of a minute to build in the VM.
fn counter_bundle() -> Bundle {
    let dir = tempfile::Builder::new()
        .prefix("rtctr-bundle-")
        .tempdir()
        .unwrap();
    let root = dir.path().join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in ["sh", "sleep", "cat", "hostname", "[", "readlink", "nc"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let st = Command::new(rtctr_bin())
        .args(["spec", "--bundle"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let raw = std::fs::read(dir.path().join("config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    config["process"]["terminal"] = serde_json::json!(false);
    config["process"]["args"] = serde_json::json!(["sh", "-c", COUNTER]);
    config["root"]["path"] = serde_json::json!("rootfs");
    let mut b = Bundle { dir, config };
    b.save();
    b
}

fn run_counter(rt: &Rtctr, b: &Bundle, id: &str) -> Lines {
    rt.record(id, b.path());
    let bundle = b.path().to_str().unwrap();
    let (code, err, lines) = detached(rt, &["run", "-d", "--bundle", bundle, id]);
    assert_eq!(code, 0, "run -d: {err}");
    lines
}

fn restore(rt: &Rtctr, b: &Bundle, images: &Path, id: &str) -> (i32, String, Lines) {
    rt.record(id, b.path());
    let args = [
        "restore",
        "-d",
        "--image-path",
        images.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        id,
    ];
    detached(rt, &args)
}

#[test]
fn features_say_whether_criu_runs() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let out = rt.run(&["features"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let said = doc["annotations"]["org.opencontainers.runc.checkpoint.enabled"].clone();
    let want = criu_usable().unwrap_or(false).to_string();
    assert_eq!(said, serde_json::json!(want));
}

#[test]
fn refused_naming_criu_error_where_criu_cannot_run() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    if criu_usable() != Some(false) {
        eprintln!("SKIPPED: CRIU runs here (or is not installed): nothing to refuse");
        return;
    }
    let b = counter_bundle();
    let lines = run_counter(&rt, &b, "ck-host");
    lines.until_at_least(2);
    let images = b.path().join("img");
    let out = rt.run(&[
        "checkpoint",
        "--image-path",
        images.to_str().unwrap(),
        "ck-host",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("criu dump failed: Error (criu/")
            && out
                .stderr
                .contains(&format!("(log: {}/dump.log)", images.display())),
        "{out:?}"
    );
    // A failed dump leaves the container as it was: running, counting.
    assert_eq!(rt.status("ck-host").as_deref(), Some("running"));
    let v = lines.until_at_least(1);
    lines.until_at_least(v + 2);

    let (code, err, _) = restore(&rt, &b, &images, "ck-host-r");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("criu restore failed: Error (criu/"), "{err}");
    assert_eq!(rt.ids(), ["ck-host"], "a failed restore leaves no state");
    for d in expected_cgroup_dirs("ck-host-r", None) {
        assert!(!d.exists(), "a failed restore left cgroup {}", d.display());
    }
    assert!(!host_mounts_mention(&rt.root.path().join("ck-host-r")));
}

#[test]
fn restore_without_images_is_refused_and_leaves_nothing() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = counter_bundle();
    let missing = b.path().join("no-such-images");
    let (code, err, _) = restore(&rt, &b, &missing, "ck-none");
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("--image-path {}", missing.display())),
        "{err}"
    );
    assert!(rt.ids().is_empty());
    let out = rt.run(&["checkpoint", "--lazy-pages", "ck-none"]);
    assert!(
        out.stderr.contains("--lazy-pages is not supported"),
        "{out:?}"
    );
    let out = rt.run(&["checkpoint", "--empty-ns", "ipc", "ck-none"]);
    assert_eq!(out.code, 1);
}

/// Where CRIU runs, or None (after a loud skip).
fn criu_test() -> Option<Rtctr> {
    let rt = Rtctr::for_root_test()?;
    if criu_usable() != Some(true) {
        eprintln!("SKIPPED: `criu check` fails here (run in the cgroup v2 VM)");
        return None;
    }
    Some(rt)
}

#[test]
fn counter_continues_after_checkpoint_and_restore() {
    let Some(rt) = criu_test() else {
        return;
    };
    let b = counter_bundle();
    let id = "ck-count";
    let lines = run_counter(&rt, &b, id);
    lines.until_at_least(5);
    let images = b.path().join("img");
    let img = images.to_str().unwrap();
    rt.run(&["checkpoint", "--image-path", img, id]).ok();
    // The dump ends the container: its pipe closes, its id is free.
    let last = lines.drain().expect("counted before the dump");
    assert!(rt.ids().is_empty(), "{:?}", rt.ids());

    let (code, err, lines) = restore(&rt, &b, &images, id);
    assert_eq!(code, 0, "restore: {err}");
    let first = lines
        .next(Duration::from_secs(30))
        .expect("counts after restore");
    // Not a new shell counting from 1: the same one, where it stopped
    // (lines buffered in the old pipe at the dump may come again).
    assert!(
        first > 1 && first <= last + 1,
        "first after restore {first}, last before {last}"
    );
    let mut prev = first;
    for _ in 0..3 {
        let v = lines.next(Duration::from_secs(30)).unwrap();
        assert_eq!(v, prev + 1);
        prev = v;
    }
    let state = rt.state(id).unwrap();
    assert_eq!(state["status"], "running");
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid_alive(pid));
    let out = rt.run(&[
        "exec",
        id,
        "sh",
        "-c",
        "echo in-$(hostname); cat /proc/1/cmdline",
    ]);
    let out = out.ok();
    assert!(out.stdout.starts_with("in-"), "{out:?}");
    assert!(out.stdout.contains("i=$((i+1))"), "{out:?}");

    rt.run(&["pause", id]).ok();
    assert_eq!(rt.status(id).as_deref(), Some("paused"));
    rt.run(&["resume", id]).ok();
    let v = lines.until_at_least(prev + 1);
    lines.until_at_least(v + 2);

    rt.run(&["kill", id, "KILL"]).ok();
    rt.wait_status(id, "stopped");
    rt.run(&["delete", id]).ok();
    assert!(rt.ids().is_empty());
    assert!(!pid_alive(pid));
    for d in expected_cgroup_dirs(id, None) {
        assert!(!d.exists(), "cgroup {} left", d.display());
    }
}

#[test]
fn pre_dump_then_dump_leaving_it_running() {
    let Some(rt) = criu_test() else {
        return;
    };
    // In the host's network namespace: CRIU dumps and restores a
    // container's own one through iptables-save/restore, 10 s a time
    // under the VM's emulation (the test above covers that).
    let mut b = counter_bundle();
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
    });
    let id = "ck-pre";
    // stdin is the host's /dev/null, as engines give a detached container:
    // the init reopens the container's own, which CRIU can dump.
    rt.record(id, b.path());
    let bundle = b.path().to_str().unwrap();
    let (mut child, lines) = spawn_with(&rt, &["run", "-d", "--bundle", bundle, id], Stdio::null());
    assert!(child.wait().unwrap().success(), "{}", stderr_of(&mut child));
    lines.until_at_least(3);
    let pre = b.path().join("pre");
    let img = b.path().join("img");
    rt.run(&[
        "checkpoint",
        "--pre-dump",
        "--image-path",
        pre.to_str().unwrap(),
        id,
    ])
    .ok();
    let names: Vec<String> = std::fs::read_dir(&pre)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("pages-")),
        "no memory pages in the pre-dump: {names:?}"
    );
    rt.run(&[
        "checkpoint",
        "--leave-running",
        "--parent-path",
        "../pre",
        "--image-path",
        img.to_str().unwrap(),
        id,
    ])
    .ok();
    assert!(img.join("parent").exists(), "the dump links its pre-dump");
    // Still running, still counting, in the same process.
    assert_eq!(rt.status(id).as_deref(), Some("running"));
    let v = lines.until_at_least(1);
    let at_delete = lines.until_at_least(v + 2);
    rt.run(&["delete", "--force", id]).ok();
    let last = lines.drain().unwrap_or(at_delete);

    let (code, err, lines) = restore(&rt, &b, &img, id);
    assert_eq!(code, 0, "restore: {err}");
    let first = lines
        .next(Duration::from_secs(30))
        .expect("counts after restore");
    // The dump holds a number it had printed (the reader may lag behind
    // it, so the numbers read after the checkpoint prove no later one):
    // the restored counter goes on from there, at most one past the last
    // number before the delete.
    assert!(
        first > 1 && first <= last + 1,
        "restored from the dump taken before {last}: got {first}"
    );
    assert_eq!(rt.status(id).as_deref(), Some("running"));
    rt.run(&["delete", "--force", id]).ok();
}

/// A pod's container joins its sandbox's network namespace by path: CRIU
/// must leave it out of the images and put the restored container back
/// into it. Restored in the foreground, rtctr waits and exits with the
/// container's status, then removes it.
#[test]
fn joined_netns_restored_in_the_foreground() {
    let Some(rt) = criu_test() else {
        return;
    };
    let name = format!("rtctr-ck-{}", std::process::id());
    let st = Command::new("ip").args(["netns", "add", &name]).status();
    assert!(st.unwrap().success());
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _del = Del(name.clone());
    let path = format!("/var/run/netns/{name}");
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    let mut b = counter_bundle();
    let stop = b.path().join("rootfs/stop");
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(serde_json::json!({"type": "network", "path": path}));
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "i=0; while [ ! -e /stop ]; do i=$((i+1)); echo $i; sleep 0.1; done; exit 7"
        ]);
    });
    let id = "ck-netns";
    let lines = run_counter(&rt, &b, id);
    lines.until_at_least(3);
    let img = b.path().join("img");
    rt.run(&["checkpoint", "--image-path", img.to_str().unwrap(), id])
        .ok();
    let last = lines.drain().unwrap();

    rt.record(id, b.path());
    let args = [
        "restore",
        "--image-path",
        img.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        id,
    ];
    let (mut child, lines) = spawn(&rt, &args);
    let first = lines.next(Duration::from_secs(60));
    let first =
        first.unwrap_or_else(|| panic!("no count after restore: {}", stderr_of(&mut child)));
    assert!(first > 1 && first <= last + 1, "{first} after {last}");
    let out = rt.run(&["exec", id, "readlink", "/proc/self/ns/net"]).ok();
    assert_eq!(out.stdout.trim(), format!("net:[{ino}]"));
    std::fs::write(&stop, "").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{}", stderr_of(&mut child));
    assert!(
        rt.ids().is_empty(),
        "the foreground restore removes the container"
    );
}

/// Accepts one connection on a console socket and returns the terminal
/// master sent over it, as a [`Lines`] reader.
fn console(path: &Path) -> std::thread::JoinHandle<Lines> {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let sock = listener.accept().unwrap().0;
        let mut buf = [0u8; 64];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        rustix::net::recvmsg(
            &sock,
            &mut [std::io::IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::empty(),
        )
        .unwrap();
        let master = control
            .drain()
            .find_map(|m| match m {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .expect("a terminal master");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            // EIO once the container side is gone.
            let lines = BufReader::new(std::fs::File::from(master)).lines();
            for line in lines.map_while(Result::ok) {
                let line = line.trim().to_string();
                if !line.is_empty() && tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx }
    })
}

/// A container on a terminal: CRIU restores its pty and sends the new
/// master (orphan-pts-master), which goes to restore's --console-socket.
#[test]
fn terminal_master_goes_to_the_console_socket() {
    let Some(rt) = criu_test() else {
        return;
    };
    let mut b = counter_bundle();
    b.edit(|c| {
        c["process"]["terminal"] = serde_json::json!(true);
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
    });
    let id = "ck-tty";
    let sock = b.path().join("console1.sock");
    let got = console(&sock);
    rt.record(id, b.path());
    let bundle = b.path().to_str().unwrap();
    let console_arg = sock.to_str().unwrap();
    let args = [
        "run",
        "-d",
        "--console-socket",
        console_arg,
        "--bundle",
        bundle,
        id,
    ];
    rt.run(&args).ok();
    let lines = got.join().unwrap();
    let before = lines.until_at_least(3);
    let img = b.path().join("img");
    rt.run(&["checkpoint", "--image-path", img.to_str().unwrap(), id])
        .ok();
    assert!(rt.ids().is_empty());

    let sock = b.path().join("console2.sock");
    let got = console(&sock);
    rt.record(id, b.path());
    let args = [
        "restore",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        "--image-path",
        img.to_str().unwrap(),
        "--bundle",
        bundle,
        id,
    ];
    rt.run(&args).ok();
    let lines = got.join().unwrap();
    let first = lines
        .next(Duration::from_secs(60))
        .expect("counts on the new terminal");
    assert!(first > before, "{first} after {before}: a new shell?");
    assert_eq!(rt.status(id).as_deref(), Some("running"));
    rt.run(&["delete", "--force", id]).ok();
}

/// A server on the built-in network with a client connected from the
/// host: `--leave-running` leaves its veth and lease alone; after a full
/// checkpoint (lease and veth released) and a restore with
/// `--tcp-established`, it is back at its address and the same TCP
/// connection goes on.
#[test]
fn tcp_connection_survives_on_the_built_in_network() {
    let Some(rt) = criu_test() else {
        return;
    };
    let name = format!("rtck{}", std::process::id() % 100000);
    let bridge = format!("rtckbr{}", std::process::id() % 100000);
    let subnet = "10.213.77.0/24";
    let net = |args: &[&str]| {
        let o = rt.cmd().arg("network").args(args).output().unwrap();
        assert!(o.status.success(), "network {args:?}: {o:?}");
    };
    net(&["create", &name, "--subnet", subnet, "--bridge", &bridge]);
    struct Rm<'a>(&'a Rtctr, String);
    impl Drop for Rm<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .cmd()
                .args(["network", "rm", "--force", &self.1])
                .status();
        }
    }
    let _rm = Rm(&rt, name.clone());
    let mut b = counter_bundle();
    b.edit(|c| {
        c["annotations"] = serde_json::json!({ "rtctr.network": name });
        // nc prints what the client sends on the container's stdout.
        c["process"]["args"] = serde_json::json!(["nc", "-l", "-p", "9000"]);
    });
    let id = "ck-tcp";
    let lines = run_counter(&rt, &b, id);
    let lease = rt.leases(&name).unwrap();
    assert_eq!(lease.len(), 1);
    let ip = lease[0]["ip"].as_str().unwrap().to_string();
    let addr: std::net::SocketAddr = format!("{ip}:9000").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => panic!("connect {addr}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let mut say = |word: &str| {
        use std::io::Write;
        conn.write_all(format!("{word}\n").as_bytes()).unwrap();
    };
    let wait = Duration::from_secs(30);
    say("one");
    assert_eq!(lines.text(wait).as_deref(), Some("one"));

    let img = b.path().join("img");
    let images = img.to_str().unwrap();
    let pre = b.path().join("kept");
    rt.run(&[
        "checkpoint",
        "--leave-running",
        "--tcp-established",
        "--image-path",
        pre.to_str().unwrap(),
        id,
    ])
    .ok();
    assert_eq!(rt.status(id).as_deref(), Some("running"));
    assert!(
        link_exists(&host_veth_name(id)),
        "veth gone after --leave-running"
    );
    assert_eq!(
        rt.leases(&name).unwrap().len(),
        1,
        "lease gone after --leave-running"
    );
    say("two");
    assert_eq!(lines.text(wait).as_deref(), Some("two"));

    rt.run(&[
        "checkpoint",
        "--tcp-established",
        "--image-path",
        images,
        id,
    ])
    .ok();
    assert!(
        lines.text(wait).is_none(),
        "the dumped server's stdout closes"
    );
    assert!(rt.leases(&name).unwrap().is_empty());
    assert!(veth_goes(id), "the veth outlives the container");

    rt.record(id, b.path());
    let bundle = b.path().to_str().unwrap();
    let args = [
        "restore",
        "-d",
        "--tcp-established",
        "--image-path",
        images,
        "--bundle",
        bundle,
        id,
    ];
    let (code, err, lines) = detached(&rt, &args);
    assert_eq!(code, 0, "restore: {err}");
    let lease = rt.leases(&name).unwrap();
    assert_eq!(lease.len(), 1);
    assert_eq!(lease[0]["ip"], ip.as_str(), "restored at its address");
    assert!(link_exists(&host_veth_name(id)));
    say("three");
    assert_eq!(
        lines.text(wait).as_deref(),
        Some("three"),
        "same connection"
    );
    rt.run(&["delete", "--force", id]).ok();
    assert!(rt.leases(&name).unwrap().is_empty());
    assert!(veth_goes(id), "the veth outlives the container");
}

/// The container's host veth disappears: the kernel removes it with the
/// container's network namespace, just after `delete` returns.
fn veth_goes(id: &str) -> bool {
    wait_for(std::time::Duration::from_secs(10), || {
        !link_exists(&host_veth_name(id))
    })
}
