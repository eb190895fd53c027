//! Root filesystem and mounts as the container sees them, and what the
//! host holds afterwards.

use rtctr_integration::*;
use serde_json::json;

fn mounts_line(out: &str, dest: &str) -> Option<String> {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(dest))
        .map(str::to_string)
}

#[test]
fn configured_mounts_land_in_order_with_their_options() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("hello"), "from the host\n").unwrap();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/mounts; cat /data/hello; touch /data/x 2>&1 | head -1; touch /scratch/ok && echo wrote",
    ]);
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                      "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"]}),
        );
        m.push(
            json!({"destination": "/data", "type": "bind", "source": host_dir.path(),
                      "options": ["rbind", "ro", "nosuid"]}),
        );
    });
    let out = rt.run_bundle(&b, "mnt").ok();
    let scratch = mounts_line(&out.stdout, "/scratch").expect("tmpfs mounted");
    assert!(
        scratch.starts_with("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec"),
        "{scratch}"
    );
    assert!(
        scratch.contains("size=1024k") && scratch.contains("mode=700"),
        "{scratch}"
    );
    let data = mounts_line(&out.stdout, "/data").expect("bind mounted");
    assert!(data.contains(" ro,nosuid"), "{data}");
    assert!(out.stdout.contains("from the host\n"));
    assert!(out.stdout.contains("Read-only file system"), "{out:?}");
    assert!(out.stdout.ends_with("wrote\n"));
    // The default mounts of `rtctr spec`, in order, before ours.
    let order: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|d| {
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/scratch",
                "/data",
            ]
            .contains(d)
        })
        .collect();
    assert_eq!(
        order,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/scratch",
            "/data"
        ]
    );
    // Nothing of it is visible on the host, and the host dir is untouched.
    assert!(!host_mounts_mention(host_dir.path()));
    assert_eq!(std::fs::read_dir(host_dir.path()).unwrap().count(), 1);
}

#[test]
fn readonly_root_masked_and_readonly_paths() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&[
        "sh",
        "-c",
        "touch /x 2>/dev/null || echo root-ro; \
         echo 1 > /proc/sys/vm/overcommit_memory 2>/dev/null || echo procsys-ro; \
         wc -c < /proc/keys; ls /sys/firmware | wc -l; \
         grep -c ' /sys/firmware tmpfs ro' /proc/mounts",
    ]);
    // rtctr spec: readonly root, /proc/keys masked (file), /sys/firmware (dir),
    // /proc/sys read-only.
    let out = rt.run_bundle(&b, "masks").ok();
    assert_eq!(out.stdout, "root-ro\nprocsys-ro\n0\n0\n1\n", "{out:?}");
}

#[test]
fn devices_and_dev_symlinks() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "stat -c '%n %F %t:%T %a %u' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/fuse; \
         for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; head -c 4 /dev/zero | wc -c",
    ]);
    b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                        "fileMode": 0o600, "uid": 1000, "gid": 1000}]);
        c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
    });
    let out = rt.run_bundle(&b, "devs").ok();
    assert_eq!(
        out.stdout,
        "/dev/null character special file 1:3 666 0\n\
         /dev/zero character special file 1:5 666 0\n\
         /dev/full character special file 1:7 666 0\n\
         /dev/random character special file 1:8 666 0\n\
         /dev/urandom character special file 1:9 666 0\n\
         /dev/tty character special file 5:0 666 0\n\
         /dev/fuse character special file a:e5 600 1000\n\
         /proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\n4\n",
        "{out:?}"
    );
}

#[test]
fn without_a_mount_namespace_mounts_are_undone_at_delete() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b =
        Bundle::with_own_rootfs(&["sh", "-c", "cat /proc/self/cgroup > /dev/null; echo in"]);
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "uts"}]);
        c["mounts"] = json!([{"destination": "/proc", "type": "proc", "source": "proc"},
                             {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}]);
        c["linux"]["maskedPaths"] = json!([]);
        c["linux"]["readonlyPaths"] = json!([]);
    });
    let rootfs = b.path().join("rootfs").canonicalize().unwrap();
    let out = rt.run_bundle(&b, "nomnt").ok();
    assert_eq!(out.stdout, "in\n");
    assert!(
        !host_mounts_mention(&rootfs),
        "mounts left under {rootfs:?}"
    );
}

/// A rootfs on a shared host mount (as `/` is on a systemd host):
/// pivot_root needs the rootfs's parent mount not shared, and none of the
/// container's mounts may reach the host through it.
#[test]
fn a_rootfs_under_a_shared_host_mount() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sh", "-c", "grep -c . /proc/self/mountinfo"]);
    std::fs::create_dir(b.path().join("shared")).unwrap();
    let shared = b.path().join("shared").canonicalize().unwrap();
    let mount = |args: &[&str]| {
        let st = std::process::Command::new("mount")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "mount {args:?}");
    };
    mount(&["-t", "tmpfs", "tmpfs", shared.to_str().unwrap()]);
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0)
                .status();
        }
    }
    let _unmount = Unmount(&shared);
    mount(&["--make-shared", shared.to_str().unwrap()]);
    make_rootfs(&shared.join("rootfs"));
    b.edit(|c| c["root"] = json!({"path": shared.join("rootfs"), "readonly": true}));
    let out = rt.run_bundle(&b, "shared-parent").ok();
    let mounts: usize = out.stdout.trim().parse().unwrap();
    assert!(mounts > 5, "the container's mounts: {}", out.stdout);
    assert_eq!(
        mounts_under(&shared),
        std::slice::from_ref(&shared),
        "mounts left on the host"
    );
}

#[test]
fn hostname_domainname_sysctl_oom_score_adj() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward; \
         cat /proc/sys/kernel/shmmni; cat /proc/self/oom_score_adj",
    ]);
    b.edit(|c| {
        c["hostname"] = json!("h1");
        c["domainname"] = json!("example.test");
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
        c["process"]["oomScoreAdj"] = json!(123);
    });
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shmmni = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let out = rt.run_bundle(&b, "names").ok();
    assert_eq!(out.stdout, "h1\nexample.test\n1\n1234\n123\n", "{out:?}");
    // Namespaced: the host's values did not move.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shmmni
    );
}
