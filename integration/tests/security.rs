//! Issue 4: what the container's security settings look like from inside,
//! and the known runtime escapes (runc's CVEs) tried against rtctr: each
//! escape test makes the attack and checks the container stayed inside and
//! the host kept its files.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;

use rtctr_integration::*;
use serde_json::{json, Value};

/// The mask of a list of capability names (numbers from linux/capability.h).
fn cap_mask(names: &[&str]) -> u64 {
    const ORDER: [&str; 41] = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    names
        .iter()
        .map(|n| {
            let bare = n.strip_prefix("CAP_").unwrap_or(n);
            let i = ORDER.iter().position(|o| *o == bare).expect(n);
            1u64 << i
        })
        .fold(0, |a, b| a | b)
}

/// `Name:\tvalue` lines of a /proc/<pid>/status dump, as (name, value).
fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .trim()
        .to_string()
}

fn cap_field(status: &str, name: &str) -> u64 {
    u64::from_str_radix(&status_field(status, name), 16).unwrap()
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn capabilities_are_the_configured_sets() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    // The default `rtctr spec` set, as root: every set but ambient is it.
    let b = Bundle::new(&["cat", "/proc/self/status"]);
    let caps = &b.config["process"]["capabilities"];
    let want = cap_mask(&names(&caps["bounding"]));
    assert_eq!(want, 0x2000_0420, "AUDIT_WRITE, KILL, NET_BIND_SERVICE");
    let st = rt.run_bundle(&b, "capdef").ok().stdout;
    assert_eq!(cap_field(&st, "CapBnd"), want, "{st}");
    assert_eq!(cap_field(&st, "CapEff"), want, "{st}");
    assert_eq!(cap_field(&st, "CapPrm"), want, "{st}");
    assert_eq!(cap_field(&st, "CapAmb"), 0, "{st}");

    // A non-root user keeps exactly the ambient set across execve.
    let mut b = Bundle::new(&["cat", "/proc/self/status"]);
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "effective": ["CAP_KILL", "CAP_NET_RAW"],
            "permitted": ["CAP_KILL", "CAP_NET_RAW"],
            "inheritable": ["CAP_NET_RAW"],
            "ambient": ["CAP_NET_RAW"],
        });
    });
    let st = rt.run_bundle(&b, "capamb").ok().stdout;
    let raw = cap_mask(&["CAP_NET_RAW"]);
    assert_eq!(
        cap_field(&st, "CapBnd"),
        cap_mask(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]),
        "{st}"
    );
    assert_eq!(cap_field(&st, "CapInh"), raw, "{st}");
    assert_eq!(cap_field(&st, "CapAmb"), raw, "{st}");
    assert_eq!(cap_field(&st, "CapPrm"), raw, "{st}");
    assert_eq!(cap_field(&st, "CapEff"), raw, "{st}");

    // An unknown name fails create, names the capability, leaves nothing.
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_TEST"]));
    let out = rt.create(&b, "capbad", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("CAP_TEST"), "{out:?}");
    assert!(rt.ids().is_empty());
    assert!(!process_with_arg("capbad"));
}

fn deny_mkdir(action: &str) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action, "errnoRet": 1}]
    })
}

#[test]
fn no_new_privileges_and_seccomp_mode_are_visible() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = Bundle::new(&["cat", "/proc/self/status"]);
        b.edit(|c| c["process"]["noNewPrivileges"] = json!(nnp));
        let st = rt.run_bundle(&b, "nnp").ok().stdout;
        assert_eq!(status_field(&st, "NoNewPrivs"), want, "{st}");
        assert_eq!(status_field(&st, "Seccomp"), "0", "no profile: {st}");
    }
    for nnp in [true, false] {
        let mut b = Bundle::new(&["cat", "/proc/self/status"]);
        b.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["linux"]["seccomp"] = deny_mkdir("SCMP_ACT_ERRNO");
        });
        let st = rt.run_bundle(&b, "sc").ok().stdout;
        assert_eq!(status_field(&st, "Seccomp"), "2", "{st}");
        assert_eq!(status_field(&st, "Seccomp_filters"), "1", "{st}");
    }
}

#[test]
fn seccomp_podman_default_profile_runs_ordinary_programs() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let path = Path::new("/usr/share/containers/seccomp.json");
    if !path.exists() {
        eprintln!(
            "SKIPPED: {} is missing (apt-get install podman or golang-github-containers-common)",
            path.display()
        );
        if std::env::var_os("CI").is_some() {
            panic!("CI installs podman's seccomp profile");
        }
        return;
    }
    let profile: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "ls / >/dev/null && echo ls-ok; sh -c 'echo sub-ok'; grep ^Seccomp: /proc/self/status",
    ]);
    b.edit(|c| c["linux"]["seccomp"] = profile);
    let out = rt.run_bundle(&b, "podman").ok();
    assert_eq!(out.stdout, "ls-ok\nsub-ok\nSeccomp:\t2\n", "{out:?}");
}

#[test]
fn seccomp_actions_errno_args_and_kill() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    // ERRNO with errnoRet 1 (EPERM).
    let mut b = Bundle::new(&["sh", "-c", "mkdir /tmp/x; echo rc=$?"]);
    b.edit(|c| c["linux"]["seccomp"] = deny_mkdir("SCMP_ACT_ERRNO"));
    let out = rt.run_bundle(&b, "errno").ok();
    assert_eq!(out.stdout, "rc=1\n", "{out:?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");

    // A rule without errnoRet returns EPERM; defaultErrnoRet is only the
    // defaultAction's errno (runc's and libseccomp's reading).
    b.edit(|c| {
        c["linux"]["seccomp"]["defaultErrnoRet"] = json!(13);
        c["linux"]["seccomp"]["syscalls"][0]
            .as_object_mut()
            .unwrap()
            .remove("errnoRet");
    });
    let out = rt.run_bundle(&b, "deferrno").ok();
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
    // errnoRet 13 (EACCES) on the rule.
    b.edit(|c| c["linux"]["seccomp"]["syscalls"][0]["errnoRet"] = json!(13));
    let out = rt.run_bundle(&b, "errno13").ok();
    assert!(out.stderr.contains("Permission denied"), "{out:?}");

    // An argument filter: kill(pid, 9) refused, kill(pid, 0) and
    // kill(pid, 15) allowed.
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "sleep 30 & p=$!; kill -0 $p && echo zero-ok; kill -9 $p || echo nine-refused; kill -15 $p && echo term-ok",
    ]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]
            }]
        })
    });
    let out = rt.run_bundle(&b, "args").ok();
    assert_eq!(out.stdout, "zero-ok\nnine-refused\nterm-ok\n", "{out:?}");

    // KILL_PROCESS: SIGSYS, so `run` exits 128 + 31.
    let mut b = Bundle::new(&["mkdir", "/tmp/x"]);
    b.edit(|c| c["linux"]["seccomp"] = deny_mkdir("SCMP_ACT_KILL_PROCESS"));
    let out = rt.run_bundle(&b, "killproc");
    assert_eq!(out.code, 159, "{out:?}");
    assert!(rt.ids().is_empty());
}

/// Receives one message and its fds over a unix stream.
fn recv_with_fds(sock: &UnixStream) -> (String, Vec<OwnedFd>) {
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
    (String::from_utf8_lossy(&buf[..got.bytes]).into_owned(), fds)
}

#[test]
fn seccomp_notify_sends_the_listener_fd() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sh", "-c", "mkdir /tmp/x; echo rc=$?"]);
    let sock_path = b.path().join("seccomp.sock");
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_path,
            "listenerMetadata": "meta-1",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        })
    });
    let listener = UnixListener::bind(&sock_path).unwrap();
    let accept = std::thread::spawn(move || recv_with_fds(&listener.accept().unwrap().0));
    let out = rt.create(&b, "notify", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let (msg, fds) = accept.join().unwrap();
    let msg: Value = serde_json::from_str(&msg).unwrap_or_else(|e| panic!("{e}: {msg}"));
    let pid = rt.state("notify").unwrap()["pid"].as_i64().unwrap();
    assert_eq!(msg["pid"].as_i64(), Some(pid), "{msg}");
    assert_eq!(msg["fds"], json!(["seccompFd"]), "{msg}");
    assert_eq!(msg["metadata"], json!("meta-1"), "{msg}");
    assert_eq!(msg["state"]["id"], json!("notify"), "{msg}");
    assert_eq!(fds.len(), 1);
    let link = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fds[0])
    ))
    .unwrap();
    assert!(
        link.to_string_lossy().contains("seccomp notify"),
        "{link:?}"
    );
    // With the listener gone, the notified call fails (ENOSYS), nothing hangs.
    drop(fds);
    rt.run(&["start", "notify"]).ok();
    rt.wait_status("notify", "stopped");
    assert_eq!(Rtctr::output_of(&b, "notify"), "rc=1\n");
    rt.run(&["delete", "notify"]).ok();
}

#[test]
fn masked_and_readonly_paths() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "echo keys=$(wc -c </proc/keys) dev=$(stat -c %F,%t:%T /proc/keys); \
         echo fw=$(ls -A /sys/firmware | wc -l); \
         grep ' /sys/firmware ' /proc/self/mountinfo | grep -q 'ro.* - tmpfs' && echo fw-ro-tmpfs; \
         touch /sys/firmware/x; \
         echo 1 >/proc/sys/kernel/domainname; \
         echo fds=$(ls /proc/self/fd)",
    ]);
    b.edit(|c| {
        // /proc/keys rather than /proc/kcore: not every kernel has kcore.
        c["linux"]["maskedPaths"] = json!(["/proc/keys", "/sys/firmware", "/proc/nonexistent"]);
        c["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    });
    // A host fd open in rtctr's caller does not reach the container.
    let out = Command::new("sh")
        .arg("-c")
        .arg("exec 5</ 6</etc/hostname; exec \"$@\"")
        .arg("sh")
        .arg(rtctr_bin())
        .arg("--root")
        .arg(rt.root.path())
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg("masked")
        .env("RTCTR_NETWORK_DIR", rt.net_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout, "keys=0 dev=character special file,1:3\nfw=0\nfw-ro-tmpfs\nfds=0 1 2 3\n",
        "{stderr}"
    );
    assert!(
        stderr.contains("touch: /sys/firmware/x: Read-only file system"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/proc/sys/kernel/domainname: Read-only file system"),
        "{stderr}"
    );
}

#[test]
fn preserve_fds_passes_fds_3_and_4() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sh", "-c", "cat <&3; cat <&4; echo fds=$(ls /proc/self/fd)"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "file-a\n").unwrap();
    std::fs::write(dir.path().join("b"), "file-b\n").unwrap();
    // Two files open without CLOEXEC as fds 3 and 4 of rtctr (the shell
    // sets them up, so the test process's own fds are not touched), and
    // fd 5 that is not passed.
    let out = Command::new("sh")
        .arg("-c")
        .arg("exec 3<\"$1\"/a 4<\"$1\"/b 5<\"$1\"/a; shift; exec \"$@\"")
        .arg("sh")
        .arg(dir.path())
        .arg(rtctr_bin())
        .arg("--root")
        .arg(rt.root.path())
        .args(["run", "--preserve-fds", "2", "--bundle"])
        .arg(b.path())
        .arg("pfds")
        .env("RTCTR_NETWORK_DIR", rt.net_dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "file-a\nfile-b\nfds=0 1 2 3 4 5\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CVE-2021-30465 class: a mount destination through a symlink that points
/// at a host path.
#[test]
fn escape_symlinked_mount_target_stays_in_rootfs() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let host = tempfile::Builder::new()
        .prefix("rtctr-host-target-")
        .tempdir()
        .unwrap();
    std::fs::write(host.path().join("keep"), "host file\n").unwrap();
    let mut b = Bundle::with_own_rootfs(&["sh", "-c", "grep -c ' tmpfs ' /proc/self/mountinfo >/dev/null; grep ' /mnt/evil/x \\| /tmp/[^ ]*/x ' /proc/self/mountinfo | cut -d' ' -f5,9"]);
    let rootfs = b.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("mnt")).unwrap();
    symlink(host.path(), rootfs.join("mnt/evil")).unwrap();
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/mnt/evil/x", "type": "tmpfs", "source": "tmpfs"}));
    });
    let out = rt.run_bundle(&b, "symmnt").ok();
    // Inside, the tmpfs is at the symlink's target resolved in the root.
    let inside = format!("{}/x tmpfs\n", host.path().display());
    assert_eq!(out.stdout, inside, "{out:?}");
    // On the host: the target dir is as it was, and nothing is mounted there.
    let entries: Vec<_> = std::fs::read_dir(host.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["keep"]);
    assert!(!host_mounts_mention(host.path()));
    // The directory was made inside the rootfs instead.
    let in_root = rootfs
        .join(host.path().strip_prefix("/").unwrap())
        .join("x");
    assert!(in_root.is_dir(), "{in_root:?}");
}

/// CVE-2025-31133: /dev/null in the container's own /dev (no tmpfs) is a
/// symlink to a host file, or a plain file: masking must not bind it.
#[test]
fn escape_dev_null_swap_does_not_redirect_masks() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let host = tempfile::Builder::new()
        .prefix("rtctr-host-secret-")
        .tempdir()
        .unwrap();
    let secret = host.path().join("secret");
    std::fs::write(&secret, "host secret\n").unwrap();
    for (n, make) in ["symlink", "file"].iter().enumerate() {
        let mut b = Bundle::with_own_rootfs(&[
            "sh",
            "-c",
            "echo keys=$(cat /proc/keys | wc -c) $(stat -c %F,%t:%T /proc/keys)",
        ]);
        let null = b.path().join("rootfs/dev/null");
        let _ = std::fs::remove_file(&null);
        if *make == "symlink" {
            symlink(&secret, &null).unwrap();
        } else {
            std::fs::write(&null, "fake null\n").unwrap();
        }
        b.edit(|c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
            c["linux"]["maskedPaths"] = json!(["/proc/keys"]);
            c["linux"].as_object_mut().unwrap().remove("devices");
        });
        let id = format!("null{n}");
        let out = rt.run_bundle(&b, &id);
        if out.code == 0 {
            assert_eq!(
                out.stdout.lines().next(),
                Some("keys=0 character special file,1:3"),
                "{make}: {out:?}"
            );
        } else {
            assert!(
                out.stderr.contains("null"),
                "{make}: a clear error: {out:?}"
            );
        }
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host secret\n");
        assert!(!host_mounts_mention(&secret));
        assert!(rt.ids().is_empty());
    }
}

/// CVE-2025-52565: the rootfs's /dev/console is a symlink to a host file;
/// the pty is bound over the container's console, never over the target.
#[test]
fn escape_dev_console_symlink_leaves_host_file() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let host = tempfile::Builder::new()
        .prefix("rtctr-host-console-")
        .tempdir()
        .unwrap();
    let target = host.path().join("target");
    std::fs::write(&target, "host file\n").unwrap();
    let mut b = Bundle::with_own_rootfs(&[
        "sh",
        "-c",
        "ls -l /dev/console | cut -c1; echo pwned >/dev/console",
    ]);
    let console = b.path().join("rootfs/dev/console");
    let _ = std::fs::remove_file(&console);
    symlink(&target, &console).unwrap();
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != json!("/dev"));
    });
    let sock_path = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let accept = std::thread::spawn(move || recv_with_fds(&listener.accept().unwrap().0));
    let out = rt.create(
        &b,
        "console",
        &["--console-socket", sock_path.to_str().unwrap()],
    );
    if out.code == 0 {
        let (_, mut fds) = accept.join().unwrap();
        let master = fds.pop().unwrap();
        rt.run(&["start", "console"]).ok();
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = rustix::io::read(&master, &mut buf) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&text).replace('\r', "");
        assert!(text.starts_with("c\n"), "the console is the pty: {text:?}");
        rt.wait_status("console", "stopped");
        rt.run(&["delete", "console"]).ok();
    } else {
        assert!(out.stderr.contains("console"), "a clear error: {out:?}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "host file\n");
    assert!(!host_mounts_mention(&target));
    assert!(rt.ids().is_empty());
}

fn sha256(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// CVE-2019-5736 class: processes in the container look for rtctr (as it
/// joins with `exec`) through /proc/<pid>/exe and try to open it for
/// writing, or at all.
#[test]
fn escape_proc_exe_cannot_reach_the_rtctr_binary() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let bin = rtctr_bin();
    let before = sha256(&bin);
    // Until told to stop (after 10 execs joined, however slow the host:
    // the cgroup v2 VM emulates its CPU): every process's exe the
    // container can open is reported with its target; a write open is
    // reported as W.
    let b = Bundle::new(&[
        "sh",
        "-c",
        "n=0; \
         while [ ! -e /dev/shm/stop ]; do \
           for e in /proc/[0-9]*/exe; do \
             (exec 3>>$e) 2>/dev/null && echo W $e $(readlink $e); \
             (exec 3<$e) 2>/dev/null && echo R $(readlink $e); \
           done; n=$((n+1)); \
         done; echo loops=$n",
    ]);
    let out = rt.create(&b, "exe", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    rt.run(&["start", "exe"]).ok();
    let mut execs = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while execs < 10 && std::time::Instant::now() < deadline {
        if rt.run(&["exec", "exe", "true"]).code == 0 {
            execs += 1;
        }
    }
    rt.run(&["exec", "exe", "touch", "/dev/shm/stop"]).ok();
    rt.wait_status("exe", "stopped");
    let text = Rtctr::output_of(&b, "exe");
    rt.run(&["delete", "exe"]).ok();
    assert_eq!(execs, 10, "only {execs} execs joined: {text}");
    assert!(text.contains("loops="), "{text}");
    for line in text.lines().filter(|l| !l.starts_with("loops=")) {
        assert!(
            line.starts_with("R /bin/busybox") || line == "R",
            "the container reached a non-container binary: {line:?}\n{text}"
        );
    }
    assert_eq!(sha256(&bin), before);
}

/// CVE-2024-21626 class: a cwd through a leaked fd path.
#[test]
fn escape_cwd_through_proc_self_fd_fails() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    for fd in 3..10 {
        let mut b = Bundle::new(&["sh", "-c", "pwd; ls"]);
        b.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}")));
        let id = format!("cwd{fd}");
        // fds 7..9 are host directories open in rtctr's caller.
        let out = Command::new("sh")
            .arg("-c")
            .arg("exec 7</ 8</etc 9</tmp; exec \"$@\"")
            .arg("sh")
            .arg(rtctr_bin())
            .arg("--root")
            .arg(rt.root.path())
            .args(["run", "--bundle"])
            .arg(b.path())
            .arg(&id)
            .env("RTCTR_NETWORK_DIR", rt.net_dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "fd {fd}: {stdout} {stderr}");
        assert!(stderr.contains("process.cwd"), "fd {fd}: {stderr}");
        assert!(rt.ids().is_empty());
    }
    // Same through exec into a running container.
    let b = Bundle::new(&["sleep", "30"]);
    assert_eq!(rt.create(&b, "cwdexec", &[]).code, 0);
    rt.run(&["start", "cwdexec"]).ok();
    for fd in 3..12 {
        let cwd = format!("/proc/self/fd/{fd}");
        let out = Command::new("sh")
            .arg("-c")
            .arg("exec 7</ 8</etc 9</tmp; exec \"$@\"")
            .arg("sh")
            .arg(rtctr_bin())
            .arg("--root")
            .arg(rt.root.path())
            .args([
                "exec",
                "--cwd",
                &cwd,
                "cwdexec",
                "sh",
                "-c",
                "readlink /proc/self/cwd",
            ])
            .env("RTCTR_NETWORK_DIR", rt.net_dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // fds 7..9 are host directories: following them would put the
        // process's cwd on the host (`/`, `/etc`, `/tmp` of the host).
        assert_ne!(
            out.status.code(),
            Some(0),
            "exec cwd {cwd}: {stdout} {stderr}"
        );
        assert!(stderr.contains("process.cwd"), "exec cwd {cwd}: {stderr}");
    }
    rt.run(&["delete", "--force", "cwdexec"]).ok();

    // A seccomp profile that refuses openat2 (older profiles do), installed
    // before the cwd is set when noNewPrivileges is false: the fallback
    // chdir is checked with getcwd instead.
    let mut b = Bundle::new(&["sleep", "30"]);
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["openat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    assert_eq!(rt.create(&b, "cwdsc", &[]).code, 0);
    rt.run(&["start", "cwdsc"]).ok();
    let out = Command::new("sh")
        .arg("-c")
        .arg("exec 7</; exec \"$@\"")
        .arg("sh")
        .arg(rtctr_bin())
        .arg("--root")
        .arg(rt.root.path())
        .args([
            "exec",
            "--cwd",
            "/proc/self/fd/7",
            "cwdsc",
            "readlink",
            "/proc/self/cwd",
        ])
        .env("RTCTR_NETWORK_DIR", rt.net_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("outside the container root"), "{stderr}");
    // An ordinary cwd still works on that path.
    let out = rt.run(&["exec", "--cwd", "/tmp", "cwdsc", "pwd"]).ok();
    assert_eq!(out.stdout, "/tmp\n");
    rt.run(&["delete", "--force", "cwdsc"]).ok();
}

/// CVE-2025-52881 class: sysctl and oom_score_adj writes land in the
/// container's namespaces and process, not the host's.
#[test]
fn escape_procfs_writes_stay_in_the_container() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_adj = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    let want = if host_fwd.trim() == "1" { "0" } else { "1" };
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj; sleep 30",
    ]);
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": want});
        c["process"]["oomScoreAdj"] = json!(123);
    });
    assert_eq!(rt.create(&b, "procw", &[]).code, 0);
    let pid = rt.state("procw").unwrap()["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap(),
        "123\n"
    );
    rt.run(&["start", "procw"]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Rtctr::output_of(&b, "procw").lines().count() < 2 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(Rtctr::output_of(&b, "procw"), format!("{want}\n123\n"));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        std::fs::read_to_string("/proc/self/oom_score_adj").unwrap(),
        host_adj
    );
    rt.run(&["delete", "--force", "procw"]).ok();
}

/// CVE-2025-52881 itself: a file bound over a /proc path in the runtime's
/// mount namespace (as a racing container with shared mounts could do)
/// must not catch the write meant for the container: rtctr writes through
/// its own procfs instance, where nothing is mounted.
#[test]
fn escape_procfs_write_ignores_a_file_bound_over_proc() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    // A UTS sysctl: its /proc file is one for all namespaces (net and ipc
    // sysctls get per-namespace files, which a host bind would not cover).
    let key = "/proc/sys/kernel/domainname";
    let decoy = rt.root.path().join("decoy");
    std::fs::write(&decoy, "decoy\n").unwrap();
    let mut b = Bundle::new(&["cat", key]);
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({"kernel.domainname": "inside.example"});
    });
    // rtctr runs in a private mount namespace where the decoy covers the
    // sysctl file (the host's mounts are not touched).
    let script = format!(
        "mount --bind {decoy} {key} && exec \"$@\"",
        decoy = decoy.display()
    );
    let bundle = b.path().to_str().unwrap().to_string();
    let root = rt.root.path().to_str().unwrap().to_string();
    let bin = rtctr_bin();
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
        .arg(&bin)
        .args(["--root", &root, "run", "--bundle", &bundle, "procbind"])
        .env("RTCTR_NETWORK_DIR", rt.root.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout} {stderr}");
    assert_eq!(
        stdout, "inside.example\n",
        "the container's sysctl; stderr: {stderr}"
    );
    assert_eq!(std::fs::read_to_string(&decoy).unwrap(), "decoy\n");
}

/// `process.apparmorProfile`: the container process runs confined by the
/// profile (set on exec by the init, through rtctr's own procfs). Needs a
/// kernel with AppArmor: the cgroup v2 VM of `make test-cgroupv2` boots
/// Debian's kernel, which has it; this host does not, so here it is skipped.
#[test]
fn apparmor_profile_confines_the_process() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let enabled =
        std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"));
    if !enabled || !Path::new("/sys/kernel/security/apparmor/.replace").exists() {
        eprintln!("SKIPPED: AppArmor is not enabled on this host");
        return;
    }
    let name = format!("rtctr-test-{}", std::process::id());
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/self/attr/current; echo x > /dev/shm/f && echo wrote || echo refused",
    ]);
    let file = b.path().join("apparmor.profile");
    std::fs::write(
        &file,
        format!(
            "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n\
             file,\n capability,\n network,\n mount,\n umount,\n signal,\n ptrace,\n unix,\n\
             deny /dev/shm/** w,\n}}\n"
        ),
    )
    .unwrap();
    let parser = |op: &str| {
        let o = Command::new("apparmor_parser")
            .args([op, "--skip-cache"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(o.status.success(), "apparmor_parser {op}: {o:?}");
    };
    parser("--replace");
    b.edit(|c| c["process"]["apparmorProfile"] = json!(name));
    let out = rt.run_bundle(&b, "aa");
    let stdout = out.stdout.clone();
    // Unloaded before asserting, so a failure leaves no profile behind.
    b.edit(|c| c["process"]["apparmorProfile"] = json!("rtctr-no-such-profile"));
    let missing = rt.create(&b, "aa-missing", &[]);
    parser("--remove");
    assert_eq!(stdout, format!("{name} (enforce)\nrefused\n"), "{out:?}");
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("process.apparmorProfile \"rtctr-no-such-profile\""),
        "{missing:?}"
    );
    assert!(rt.ids().is_empty(), "left behind: {:?}", rt.ids());
}

#[test]
fn lsm_labels_without_the_lsm_fail_create() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    for (key, fs) in [
        ("apparmorProfile", "/sys/kernel/security/apparmor"),
        ("selinuxLabel", "/sys/fs/selinux"),
    ] {
        let mut b = Bundle::new(&["true"]);
        b.edit(|c| c["process"][key] = json!("some-label"));
        let out = rt.create(&b, "lsm", &[]);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.stderr.contains(&format!("process.{key}")), "{out:?}");
        if !Path::new(fs).exists() {
            assert!(out.stderr.contains("not enabled on this host"), "{out:?}");
        }
        assert!(rt.ids().is_empty());
        assert!(!process_with_arg(" lsm"));
    }
}
