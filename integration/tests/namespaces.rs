//! Namespaces created and joined by path, user namespaces with maps, time
//! namespace offsets, and process settings (rlimits, umask).

use std::process::Command;

use rtctr_integration::*;
use serde_json::json;

fn ns_inode(path: &str) -> String {
    std::fs::read_link(path)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn new_namespaces_differ_from_the_hosts() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&[
        "sh",
        "-c",
        "for n in cgroup ipc mnt net pid uts; do readlink /proc/self/ns/$n; done",
    ]);
    let out = rt.run_bundle(&b, "ns").ok();
    for (line, n) in out
        .stdout
        .lines()
        .zip(["cgroup", "ipc", "mnt", "net", "pid", "uts"])
    {
        assert_ne!(
            line,
            ns_inode(&format!("/proc/self/ns/{n}")),
            "{n} is the host's"
        );
    }
    // With a cgroup namespace the container's cgroup is its root.
    let b = Bundle::new(&["sh", "-c", "grep -c ':/$' /proc/self/cgroup"]);
    let out = rt.run_bundle(&b, "cgns").ok();
    assert_ne!(out.stdout.trim(), "0");
}

#[test]
fn joins_a_network_namespace_by_path() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let name = format!("rtctr-it-{}", std::process::id());
    let st = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap();
    assert!(st.success());
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _del = Del(name.clone());
    let path = format!("/var/run/netns/{name}");
    let mut b = Bundle::new(&["readlink", "/proc/self/ns/net"]);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network", "path": path}));
    });
    let out = rt.run_bundle(&b, "joined").ok();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    assert_eq!(out.stdout.trim(), format!("net:[{ino}]"));
    // A path of the wrong type is refused before anything is made.
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network", "path": "/proc/self/ns/uts"}));
    });
    let out = rt.run_bundle(&b, "wrong");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is a uts namespace"), "{out:?}");
    assert!(rt.ids().is_empty());
}

/// A container that joins another's pid namespace by path (a pod's shared
/// pid namespace): rtctr enters it for the child it clones, and `exec`
/// into either container lands there too, while rtctr's own children stay
/// in the host's (a hook forked after the clone is not in the container).
#[test]
fn joins_a_pid_namespace_by_path() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let first = Bundle::new(&["sleep", "60"]);
    rt.create(&first, "pidfirst", &[]).ok();
    rt.run(&["start", "pidfirst"]).ok();
    let init = rt.state("pidfirst").unwrap()["pid"].as_i64().unwrap();
    let shared = ns_inode(&format!("/proc/{init}/ns/pid"));
    let hook_out = tempfile::NamedTempFile::new().unwrap();
    let hook_path = hook_out.path().to_str().unwrap().to_owned();
    let mut second = Bundle::new(&["sh", "-c", "readlink /proc/self/ns/pid; cat /proc/1/comm"]);
    second.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
        ns.push(json!({"type": "pid", "path": format!("/proc/{init}/ns/pid")}));
        // Runs in rtctr's namespaces after the clone: must see the host's.
        c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c",
            format!("readlink /proc/self/ns/pid > {hook_path}")]}]});
    });
    let out = rt.run_bundle(&second, "pidsecond").ok();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some(shared.as_str()), "{out:?}");
    assert_eq!(lines.next(), Some("sleep"), "{out:?}");
    let hook = std::fs::read_to_string(hook_out.path()).unwrap();
    assert_eq!(
        hook.trim(),
        ns_inode("/proc/self/ns/pid"),
        "the hook ran in the container's pid namespace"
    );
    // exec joins the init's pid namespace the same way.
    let out = rt
        .run(&[
            "exec",
            "pidfirst",
            "sh",
            "-c",
            "readlink /proc/self/ns/pid; echo $$",
        ])
        .ok();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some(shared.as_str()), "{out:?}");
    assert_ne!(lines.next(), Some("1"), "{out:?}");
    rt.run(&["delete", "--force", "pidfirst"]).ok();
}

/// Adds a user namespace mapping 0-65535 to host 100000-165535 to a bundle
/// with its own rootfs (chowned to the mapped root, as an engine would).
fn in_user_namespace(b: &mut Bundle) {
    let root = b.path().join("rootfs");
    // The image's files belong to the mapped root, as an engine would chown them.
    let st = Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // sysfs cannot be mounted fresh in a user namespace without its netns owner: drop it.
        let m = c["mounts"].as_array_mut().unwrap();
        m.retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
    });
}

/// `idmap` alone: the mount takes the container's user namespace
/// mappings, so a host directory of root is root's inside a container
/// whose root is host uid 100000 (without it: the overflow uid).
#[test]
fn an_idmap_mount_takes_the_containers_user_namespace_mappings() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    if let Some(why) = idmap_unsupported(dir.path()) {
        eprintln!("SKIPPED: no idmapped mount here: {why}");
        return;
    }
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let mut b = Bundle::with_own_rootfs(&["stat", "-c", "%u:%g", "/m/f", "/plain/f"]);
    in_user_namespace(&mut b);
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/m", "type": "bind", "source": dir.path(),
                           "options": ["rbind", "idmap"]}),
        );
        mounts.push(
            json!({"destination": "/plain", "type": "bind", "source": dir.path(),
                           "options": ["rbind"]}),
        );
    });
    let out = rt.run_bundle(&b, "idmap-userns").ok();
    assert_eq!(out.stdout, "0:0\n65534:65534\n", "{out:?}");
}

#[test]
fn user_namespace_with_maps() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::with_own_rootfs(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox",
    ]);
    in_user_namespace(&mut b);
    let out = rt.run_bundle(&b, "userns").ok();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "100000", "65536", "0", "100000", "65536", "0", "0"],
        "{out:?}"
    );
}

/// `name secs nanosecs` lines of a timens_offsets file, by clock name.
fn timens_offsets(text: &str) -> Vec<(String, i64, i64)> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "{text}");
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

fn first_number(text: &str) -> f64 {
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn time_namespace_offsets() {
    check_time_namespace(false);
}

/// With a user namespace too: the offsets were written through a /proc
/// file the intermediate could not open once in the new user namespace
/// (EACCES), as peers' suites found.
#[test]
fn time_namespace_offsets_in_a_user_namespace() {
    check_time_namespace(true);
}

fn check_time_namespace(userns: bool) {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let args = [
        "sh",
        "-c",
        "readlink /proc/self/ns/time; cat /proc/self/timens_offsets; echo; cat /proc/uptime",
    ];
    let mut b = if userns {
        let mut b = Bundle::with_own_rootfs(&args);
        in_user_namespace(&mut b);
        b
    } else {
        Bundle::new(&args)
    };
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0},
                                           "monotonic": {"secs": 86400, "nanosecs": 250}});
    });
    let out = rt.run_bundle(&b, "timens").ok();
    let host_uptime = first_number(&std::fs::read_to_string("/proc/uptime").unwrap());
    let (ns, rest) = out.stdout.split_once('\n').unwrap();
    let (offsets, uptime) = rest.split_once("\n\n").unwrap();
    // A time namespace of its own...
    assert_ne!(ns, ns_inode("/proc/self/ns/time"), "{out:?}");
    // ...whose offsets, as the kernel keeps them, are the configured ones.
    let mut got = timens_offsets(offsets);
    got.sort();
    assert_eq!(
        got,
        [
            ("boottime".to_string(), 864000, 0),
            ("monotonic".to_string(), 86400, 250)
        ],
        "{out:?}"
    );
    // The container's clocks run ahead by them: its uptime is CLOCK_BOOTTIME
    // plus the boottime offset of its namespace (less the host's own, if any).
    let host_boot = timens_offsets(&std::fs::read_to_string("/proc/self/timens_offsets").unwrap())
        .into_iter()
        .find(|o| o.0 == "boottime")
        .map_or(0, |o| o.1);
    let uptime = first_number(uptime);
    assert!(
        (uptime - host_uptime - (864000 - host_boot) as f64).abs() < 60.0,
        "container {uptime}, host {host_uptime}"
    );
}

#[test]
fn rlimits_umask_and_the_missing_cap_sys_resource() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sh", "-c", "ulimit -n; ulimit -Hn; umask"]);
    b.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 300, "hard": 400}]);
        c["process"]["user"]["umask"] = json!(0o27);
    });
    let out = rt.run_bundle(&b, "rlim").ok();
    assert_eq!(out.stdout, "300\n400\n0027\n");
    // Raising a hard limit above rtctr's own needs CAP_SYS_RESOURCE.
    let hard: u64 = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(|v| v.parse().unwrap()))
        .unwrap();
    let has_sys_resource = {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let bnd = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
        let v = u64::from_str_radix(bnd.split_whitespace().nth(1).unwrap(), 16).unwrap();
        v & (1 << 24) != 0
    };
    if has_sys_resource {
        eprintln!("SKIPPED part: this host has CAP_SYS_RESOURCE, the error path cannot be shown");
        return;
    }
    b.edit(|c| {
        c["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": hard + 1000}]);
    });
    let out = rt.run_bundle(&b, "rlimhigh");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("RLIMIT_NOFILE") && out.stderr.contains("CAP_SYS_RESOURCE"),
        "{out:?}"
    );
    assert!(rt.ids().is_empty());
}
