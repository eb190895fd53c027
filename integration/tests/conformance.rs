//! Behaviours the spec or the peers' test suites expect, each checked from
//! inside the container or on the host.

use rtctr_integration::*;
use serde_json::json;

fn running(rt: &Rtctr, b: &Bundle, id: &str) {
    rt.create(b, id, &[]).ok();
    rt.run(&["start", id]).ok();
    rt.wait_status(id, "running");
}

/// A new network namespace starts with `lo` down; runc and crun bring it
/// up, and programs expect 127.0.0.1 to work.
#[test]
fn the_loopback_is_up_in_a_new_network_namespace() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&[
        "sh",
        "-c",
        "cat /sys/class/net/lo/flags; timeout 20 nc -l -p 7777 & \
         for i in $(seq 500); do echo over-lo | nc 127.0.0.1 7777 && break; usleep 20000; done; wait",
    ]);
    let out = rt.run_bundle(&b, "lo").ok();
    assert_eq!(out.stdout, "0x9\nover-lo\n", "{out:?}");
}

/// An exec'd process leads a session (and process group) of its own in the
/// container's pid namespace, as the init does: with a process group
/// outside the namespace, getpgrp() returned 0.
#[test]
fn an_exec_is_a_session_leader() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sleep", "60"]);
    running(&rt, &b, "sess");
    let out = rt
        .run(&[
            "exec",
            "sess",
            "sh",
            "-c",
            "echo $$ $(cut -d' ' -f5,6 /proc/$$/stat)",
        ])
        .ok();
    let f: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(f.len(), 3, "{out:?}");
    assert!(
        f[0] != "0" && f[1] == f[0] && f[2] == f[0],
        "pid pgrp sid: {out:?}"
    );
    rt.run(&["delete", "--force", "sess"]).ok();
}

/// `exec --env NAME=value` replaces the container's NAME, as runc does
/// (it was appended, and getenv found the config's value first).
#[test]
fn exec_env_replaces_the_containers_value() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sleep", "60"]);
    b.edit(|c| c["process"]["env"] = json!(["PATH=/bin", "FOO=from-config"]));
    running(&rt, &b, "envr");
    // The exec'd program's own environment, not a shell's rebuilt one.
    let out = rt
        .run(&[
            "exec",
            "--env",
            "FOO=from-flag",
            "--env",
            "BAR=new",
            "envr",
            "cat",
            "/proc/self/environ",
        ])
        .ok();
    let env: Vec<&str> = out.stdout.split('\0').filter(|e| !e.is_empty()).collect();
    let foo: Vec<&&str> = env.iter().filter(|e| e.starts_with("FOO=")).collect();
    assert_eq!(foo, [&"FOO=from-flag"], "{env:?}");
    assert!(env.contains(&"BAR=new"), "{env:?}");
    rt.run(&["delete", "--force", "envr"]).ok();
}

/// A hook without `env` inherits rtctr's environment (runc and crun do;
/// hooks in the wild need PATH); with `env` it gets exactly that.
#[test]
fn a_hook_without_env_inherits_the_runtimes() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["true"]);
    let (inherit, given) = (b.path().join("inherit"), b.path().join("given"));
    let script =
        |out: &std::path::Path| format!("echo \"[$PATH][$RTCTR_HOOK_TEST]\" > {}", out.display());
    b.edit(|c| {
        c["hooks"] = json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", script(&inherit)]},
            {"path": "/bin/sh", "args": ["sh", "-c", script(&given)], "env": ["RTCTR_HOOK_TEST=given"]}
        ]})
    });
    let out = rt
        .cmd()
        .env("PATH", "/usr/bin:/bin:/rtctr-test-marker")
        .env("RTCTR_HOOK_TEST", "inherited")
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg("henv")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(
        read(&inherit),
        "[/usr/bin:/bin:/rtctr-test-marker][inherited]\n"
    );
    assert!(read(&given).ends_with("[given]\n"), "{}", read(&given));
    assert!(!read(&given).contains("rtctr-test-marker"));
}

/// `delete --force` of a container whose cgroup someone froze from outside
/// failed with EBUSY: it thaws, kills and removes it.
#[test]
fn delete_force_removes_a_container_frozen_from_outside() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sleep", "60"]);
    running(&rt, &b, "frozen");
    let dirs = expected_cgroup_dirs("frozen", None);
    let freezer = dirs
        .iter()
        .find(|d| d.join("freezer.state").exists() || d.join("cgroup.freeze").exists())
        .expect("a freezer");
    if freezer.join("freezer.state").exists() {
        std::fs::write(freezer.join("freezer.state"), "FROZEN").unwrap();
    } else {
        std::fs::write(freezer.join("cgroup.freeze"), "1").unwrap();
    }
    rt.wait_status("frozen", "paused");
    let out = rt.run(&["delete", "--force", "frozen"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(dirs.iter().all(|d| !d.exists()), "a cgroup stayed");
}

/// `process` is optional at create and required at start (runtime-spec;
/// runc refuses the create): create succeeds, start fails naming it.
#[test]
fn a_config_without_process_is_created_but_not_started() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| drop(c.as_object_mut().unwrap().remove("process")));
    let out = rt.create(&b, "noproc", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(rt.status("noproc").as_deref(), Some("created"));
    let out = rt.run(&["start", "noproc"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("has no process"), "{out:?}");
    assert_eq!(rt.status("noproc").as_deref(), Some("created"));
    rt.run(&["delete", "noproc"]).ok();
    assert!(rt.ids().is_empty());
}

/// runtime-spec 1.2/1.3 process settings, read back from inside:
/// `process.scheduler` (policy and nice in /proc/self/stat),
/// `process.ioPriority` (ionice), `process.execCPUAffinity.final`
/// (taskset) and `linux.memoryPolicy` (numa_maps), for the init and for
/// an exec'd process alike.
#[test]
fn scheduler_io_priority_affinity_and_memory_policy_apply() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let script = "cut -d' ' -f19,41 /proc/$$/stat; ionice -p $$; taskset -p $$ | sed 's/.*: //'; \
                  grep -m1 -o 'bind:0' /proc/$$/numa_maps";
    let mut b = Bundle::new(&["sh", "-c", &format!("{script}; exec sleep 60")]);
    b.edit(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        c["process"]["execCPUAffinity"] = json!({"final": "1"});
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    });
    let want = "5 3\nidle\n2\nbind:0\n";
    running(&rt, &b, "sched");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Rtctr::output_of(&b, "sched") != want {
        assert!(
            std::time::Instant::now() < deadline,
            "init: {:?}",
            Rtctr::output_of(&b, "sched")
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = rt.run(&["exec", "sched", "sh", "-c", script]).ok();
    assert_eq!(out.stdout, want, "exec");
    rt.run(&["delete", "--force", "sched"]).ok();
    // Wrong values are refused before anything exists, naming the field.
    b.edit(|c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9}));
    let out = rt.create(&b, "sched-bad", &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("process.ioPriority.priority: 9 is not within 0..7"),
        "{out:?}"
    );
}

/// Once `start` returns the container is running, even before its init
/// has exec'd the program: `state` says so, and `delete` without --force
/// refuses it (state said "created" for a moment, and delete removed it,
/// as runtime-tools' `delete` file found).
#[test]
fn a_started_container_is_running_as_soon_as_start_returns() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sleep", "60"]);
    for i in 0..20 {
        let id = format!("k1-{i}");
        rt.create(&b, &id, &[]).ok();
        rt.run(&["start", &id]).ok();
        assert_eq!(rt.status(&id).as_deref(), Some("running"), "round {i}");
        let out = rt.run(&["delete", &id]);
        assert_eq!(out.code, 1, "round {i}: {out:?}");
        rt.run(&["delete", "--force", &id]).ok();
    }
    assert!(rt.ids().is_empty());
}

/// `linux.rootfsPropagation` is the propagation of the container's `/`,
/// read from its mountinfo (optional fields): `shared` was lost to the
/// private parent mount, and `unbindable` made the rootfs bind fail.
#[test]
fn rootfs_propagation_is_that_of_the_containers_root() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let script = r#"awk '$5 == "/" { f = ""; for (i = 7; $i != "-"; i++) f = f " " $i; print f }' /proc/self/mountinfo"#;
    // (`slave` is left out: a slave of a private host mount is private.)
    for (propagation, has, lacks) in [
        ("shared", "shared:", "unbindable"),
        ("rshared", "shared:", "unbindable"),
        ("unbindable", "unbindable", "shared:"),
        ("private", "", "master:"),
    ] {
        let mut b = Bundle::new(&["sh", "-c", script]);
        b.edit(|c| c["linux"]["rootfsPropagation"] = json!(propagation));
        let out = rt.run_bundle(&b, "prop").ok();
        let fields = out.stdout.trim();
        assert!(fields.contains(has), "{propagation}: {fields:?}");
        assert!(!fields.contains(lacks), "{propagation}: {fields:?}");
        if propagation == "private" {
            assert!(!fields.contains("shared:"), "{propagation}: {fields:?}");
        }
    }
    assert!(rt.ids().is_empty());
}

/// An idmapped bind mount (`uidMappings`/`gidMappings`), without a user
/// namespace in the container: a host directory of root's, mapped 0 to
/// 1000:1001, is the own of the container's user 1000, and what it
/// creates there is root's on the host.
#[test]
fn an_idmapped_mount_shows_host_ids_through_its_mappings() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    if let Some(why) = idmap_unsupported(dir.path()) {
        eprintln!("SKIPPED: no idmapped mount here: {why}");
        return;
    }
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let script = "id -u; stat -c %u:%g /m /m/f; touch /m/new && stat -c %u:%g /m/new";
    let mut b = Bundle::new(&["sh", "-c", script]);
    let map = |host| json!([{"containerID": 0, "hostID": host, "size": 1}]);
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001});
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/m", "type": "bind", "source": dir.path(), "options": ["rbind", "idmap"],
            "uidMappings": map(1000), "gidMappings": map(1001)
        }))
    });
    let out = rt.run_bundle(&b, "idmap").ok();
    assert_eq!(
        out.stdout, "1000\n1000:1001\n1000:1001\n1000:1001\n",
        "{out:?}"
    );
    use std::os::unix::fs::MetadataExt;
    let new = std::fs::metadata(dir.path().join("new")).unwrap();
    assert_eq!((new.uid(), new.gid()), (0, 0));
    assert!(mounts_under(dir.path()).is_empty());
    // Wrong ones are refused before anything exists, naming the field.
    for (mount, want) in [
        (
            json!({"destination": "/m", "type": "bind", "source": dir.path(), "options": ["rbind", "idmap"]}),
            "mounts[7].options: idmap without uidMappings and gidMappings needs the container's user namespace mappings",
        ),
        (
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "uidMappings": map(1), "gidMappings": map(1)}),
            "mounts[7]: rtctr makes idmapped mounts of bind mounts only",
        ),
        (
            json!({"destination": "/m", "type": "bind", "source": dir.path(), "options": ["rbind"], "uidMappings": map(1)}),
            "mounts[7].uidMappings: must be given with gidMappings",
        ),
    ] {
        let mut b = Bundle::new(&["true"]);
        b.edit(|c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            assert_eq!(mounts.len(), 7, "the default config's mounts");
            mounts.push(mount.clone())
        });
        let out = rt.run_bundle(&b, "idmap-bad");
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.stderr.contains(want), "{want}: {out:?}");
    }
    assert!(rt.ids().is_empty());
}

/// A veth pair on the host, deleted (if still there) when dropped.
struct VethPair(&'static str, &'static str);

impl VethPair {
    fn new(a: &'static str, b: &'static str) -> VethPair {
        let ip = |args: &[&str]| {
            let st = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        VethPair(a, b)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for name in [self.0, self.1] {
            if link_exists(name) {
                std::process::Command::new("ip")
                    .args(["link", "del", name])
                    .status()
                    .ok();
            }
        }
    }
}

/// `linux.netDevices` (runtime-spec 1.3): a host interface (one end of a
/// veth pair: this kernel has no dummy links) moves into the container
/// under its new name, with its permanent global address, and up; the
/// host no longer has it. When the container goes, its namespace goes, and
/// the kernel destroys the virtual device with its peer (a physical one
/// would come back), as the spec describes: nothing of it is left.
#[test]
fn a_net_device_moves_into_the_container_renamed_with_its_address() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let pair = VethPair::new("rtnd-host0", "rtnd-peer0");
    let ip = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap()
    };
    assert!(ip(&["addr", "add", "10.231.77.2/24", "dev", pair.0]).success());
    let script =
        "ip -4 -o addr show dev net1 | awk '{print $2, $4}'; cat /sys/class/net/net1/flags; \
                  ls /sys/class/net | grep -c rtnd; exec sleep 60";
    let mut b = Bundle::new(&["sh", "-c", script]);
    b.edit(|c| c["linux"]["netDevices"] = json!({pair.0: {"name": "net1"}}));
    running(&rt, &b, "netdev");
    assert!(
        wait_for(std::time::Duration::from_secs(10), || Rtctr::output_of(
            &b, "netdev"
        )
        .lines()
        .count()
            >= 3),
        "{:?}",
        Rtctr::output_of(&b, "netdev")
    );
    let out = Rtctr::output_of(&b, "netdev");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "net1 10.231.77.2/24", "{out:?}");
    let flags = u32::from_str_radix(lines[1].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "IFF_UP: {out:?}");
    assert_eq!(lines[2], "0", "the old name is gone inside: {out:?}");
    assert!(!link_exists(pair.0), "the host still has {}", pair.0);
    assert!(link_exists(pair.1));
    rt.run(&["delete", "--force", "netdev"]).ok();
    assert!(
        wait_for(std::time::Duration::from_secs(10), || !link_exists(pair.1)),
        "the veth pair outlived the container's namespace"
    );
    // A device the host does not have: refused before anything exists.
    b.edit(|c| c["linux"]["netDevices"] = json!({"rtnd-none0": {}}));
    let out = rt.create(&b, "netdev-bad", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("linux.netDevices.rtnd-none0: the host has no network interface"),
        "{out:?}"
    );
    // A name the container already has.
    let pair = VethPair::new("rtnd-host1", "rtnd-peer1");
    b.edit(|c| c["linux"]["netDevices"] = json!({pair.0: {"name": "lo"}}));
    let out = rt.create(&b, "netdev-bad", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("linux.netDevices.rtnd-host1: netlink: renaming in the container rtnd-host1 to lo: File exists"),
        "{out:?}"
    );
    assert!(rt.ids().is_empty());
}

/// What rtctr does not implement, or cannot on this host, is refused with
/// the field named, never dropped: intelRdt (with why on this host),
/// mountLabel without SELinux.
#[test]
fn unimplemented_features_are_refused_by_name() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    // linux.mountLabel is applied where SELinux runs; elsewhere it would be
    // dropped: refused. (Applied, it is the `context=` of new filesystems:
    // a unit test of the mount plan checks that.)
    if !std::path::Path::new("/sys/fs/selinux").exists() {
        let mut b = Bundle::new(&["true"]);
        b.edit(|c| c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0"));
        let out = rt.run_bundle(&b, "unimpl");
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.contains(
                "linux.mountLabel \"system_u:object_r:container_file_t:s0\": SELinux is not enabled on this host"
            ),
            "{out:?}"
        );
    }
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["linux"]["intelRdt"] = json!({"closID": "c1"}));
    let out = rt.run_bundle(&b, "unimpl");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("linux.intelRdt: "), "{out:?}");
    assert!(rt.ids().is_empty());
}
