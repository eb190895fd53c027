//! Root integration tests against the host's real cgroups, whatever the
//! layout (v1, hybrid, pure v2). Each test works under its own
//! `/rtctr-test-<pid>-<name>` and leaves nothing behind.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use common::*;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use rtctr_cgroups::{devices, shares_to_weight, Cgroup, Error, FreezerState, Layout};
use serde_json::json;

fn res(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

/// The first real block device's "major:minor", if any.
fn block_device() -> Option<String> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block").ok()?.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    names.iter().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("loop") || name.starts_with("ram") || name.starts_with("zram") {
            return None;
        }
        std::fs::read_to_string(e.path().join("dev"))
            .ok()
            .map(|s| s.trim().to_string())
    })
}

#[test]
fn detects_this_host() {
    let cg = Cgroup::resolve(None, "probe", false).unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v1 = mountinfo.lines().any(|l| l.contains(" - cgroup "));
    let v2 = mountinfo.lines().any(|l| l.contains(" - cgroup2 "));
    let want = match (v1, v2) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::V1,
        _ => Layout::V2,
    };
    assert_eq!(cg.layout, want, "{}", describe(&cg));
    // The default path is the id under the caller's own cgroup.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let unified_own = own.lines().find_map(|l| l.strip_prefix("0::"));
    if let (Some(dir), Some(own)) = (cg.unified_dir(), unified_own) {
        assert!(
            dir.ends_with(Path::new(own.trim_start_matches('/')).join("probe")),
            "{dir:?} vs {own}"
        );
    }
    assert_eq!(cg.dirs.len(), cg.mount_points.len());
}

#[test]
fn create_apply_read_back_destroy() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("apply", "a/b");
    let cg = &t.cg;
    cg.create().unwrap();
    if !require_controllers(
        "create_apply_read_back_destroy",
        cg,
        &[
            ("memory", "memory"),
            ("cpu", "cpu"),
            ("cpuset", "cpuset"),
            ("pids", "pids"),
        ],
    ) {
        return;
    }
    for (k, d) in &cg.dirs {
        assert!(d.is_dir(), "{k}: {d:?} was not created");
    }

    let mut r = json!({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10,
                   "disableOOMKiller": true, "kernel": 1 << 20, "kernelTCP": 1 << 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
    });
    let swap_file = match cg.v1_dir("memory") {
        Some(d) => d.join("memory.memsw.limit_in_bytes"),
        None => cg.unified_dir().unwrap().join("memory.swap.max"),
    };
    if swap_file.exists() {
        r["memory"]["swap"] = json!(128 << 20);
    }
    let weight_file = match cg.v1_dir("blkio") {
        Some(d) => ["blkio.weight", "blkio.bfq.weight"]
            .map(|f| d.join(f))
            .into_iter()
            .find(|p| p.exists()),
        None => cg.unified_dir().and_then(|d| {
            ["io.bfq.weight", "io.weight"]
                .map(|f| d.join(f))
                .into_iter()
                .find(|p| p.exists())
        }),
    };
    if weight_file.is_some() {
        r["blockIO"] = json!({"weight": 500});
    }
    let hugetlb = has_controller(cg, "hugetlb", "hugetlb")
        && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists();
    if hugetlb {
        r["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4 << 20}]);
    }
    let dev = block_device().filter(|_| has_controller(cg, "blkio", "io"));
    if let Some(dev) = &dev {
        if r.get("blockIO").is_none() {
            r["blockIO"] = json!({});
        }
        let (ma, mi) = dev.split_once(':').unwrap();
        r["blockIO"]["throttleReadBpsDevice"] = json!([{"major": ma.parse::<i64>().unwrap(), "minor": mi.parse::<i64>().unwrap(), "rate": 1 << 20}]);
    }
    cg.apply(&res(r)).unwrap();

    let f = |c, v1, v2| read(&kernel_file(cg, c, v1, v2));
    assert_eq!(
        f("memory", "memory.limit_in_bytes", "memory.max"),
        (64 << 20).to_string()
    );
    assert_eq!(
        f("memory", "memory.soft_limit_in_bytes", "memory.low"),
        (32 << 20).to_string()
    );
    assert_eq!(f("pids", "pids.max", "pids.max"), "50");
    assert_eq!(f("cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
    if cg.v1_dir("cpu").is_some() {
        assert_eq!(f("cpu", "cpu.shares", ""), "512");
        assert_eq!(f("cpu", "cpu.cfs_quota_us", ""), "50000");
        assert_eq!(f("cpu", "cpu.cfs_period_us", ""), "100000");
    } else {
        assert_eq!(
            f("cpu", "", "cpu.weight"),
            shares_to_weight(512).to_string()
        );
        assert_eq!(f("cpu", "", "cpu.max"), "50000 100000");
    }
    if cg.v1_dir("memory").is_some() {
        assert_eq!(f("memory", "memory.swappiness", ""), "10");
        assert!(f("memory", "memory.oom_control", "").contains("oom_kill_disable 1"));
    }
    if swap_file.exists() {
        let want = if cg.v1_dir("memory").is_some() {
            128 << 20
        } else {
            64 << 20
        };
        assert_eq!(read(&swap_file), want.to_string());
    }
    assert_eq!(f("cpu", "cpu.cfs_burst_us", "cpu.max.burst"), "1000");
    match &weight_file {
        Some(p) if p.ends_with("io.weight") => assert_eq!(read(p), "default 4950"),
        Some(p) if p.ends_with("io.bfq.weight") => assert_eq!(read(p), "default 500"),
        Some(p) => assert_eq!(read(p), "500"),
        None => loud("NOTE: no blkio/io weight file; blockIO.weight not exercised"),
    }
    if hugetlb {
        let v = f("hugetlb", "hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.max");
        assert_eq!(v, (4 << 20).to_string());
        let rsvd = kernel_file(
            cg,
            "hugetlb",
            "hugetlb.2MB.rsvd.limit_in_bytes",
            "hugetlb.2MB.rsvd.max",
        );
        if rsvd.exists() {
            assert_eq!(read(&rsvd), (4 << 20).to_string());
        }
    } else {
        loud("NOTE: hugetlb not available; hugepageLimits not exercised");
    }
    if let Some(dev) = &dev {
        let v = f("blkio", "blkio.throttle.read_bps_device", "io.max");
        assert!(v.contains(dev) && v.contains("1048576"), "{v}");
    } else {
        loud("NOTE: no block device or io controller; blockIO not exercised");
    }

    // An update that lowers the memory limit, and a value the kernel refuses.
    cg.apply(&res(json!({"memory": {"limit": 48 << 20}})))
        .unwrap();
    assert_eq!(
        f("memory", "memory.limit_in_bytes", "memory.max"),
        (48 << 20).to_string()
    );
    let e = cg
        .apply(&res(json!({"cpu": {"cpus": "4095"}})))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Write { path, value, .. } if path.ends_with("cpuset.cpus") && value == "4095"),
        "{e}"
    );

    cg.destroy().unwrap();
    for (k, d) in &cg.dirs {
        assert!(!d.exists(), "{k}: {d:?} still exists");
    }
    cg.destroy().unwrap(); // idempotent
}

#[test]
fn controller_absent_is_a_clear_error() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("absent", "c");
    t.cg.create().unwrap();
    // net_cls has no cgroup v2 form and is not mounted on most hosts.
    if t.cg.v1_dir("net_cls").is_none() {
        let e =
            t.cg.apply(&res(json!({"network": {"classID": 7}})))
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("net_cls") && e.contains("network.classID"),
            "{e}"
        );
    } else {
        t.cg.apply(&res(json!({"network": {"classID": 7}})))
            .unwrap();
        assert_eq!(
            read(&t.cg.v1_dir("net_cls").unwrap().join("net_cls.classid")),
            "7"
        );
    }
    // Unset values write nothing, even for absent controllers.
    t.cg.apply(&res(
        json!({"network": {}, "rdma": {}, "hugepageLimits": []}),
    ))
    .unwrap();
}

#[test]
fn unified_keys_go_to_the_cgroup2_tree() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("unified", "c");
    let cg = &t.cg;
    cg.create().unwrap();
    let Some(dir) = cg.unified_dir() else {
        let e = cg
            .apply(&res(json!({"unified": {"pids.max": "7"}})))
            .unwrap_err();
        assert!(matches!(e, Error::UnifiedOnV1 { .. }), "{e}");
        return;
    };
    let ctrls = read(&dir.join("cgroup.controllers"));
    let (key, value) = if ctrls.split_whitespace().any(|c| c == "pids") {
        ("pids.max", "7")
    } else if ctrls.split_whitespace().any(|c| c == "hugetlb") {
        ("hugetlb.2MB.max", "2097152")
    } else {
        ("cgroup.max.depth", "3")
    };
    cg.apply(&res(json!({"unified": {key: value}}))).unwrap();
    assert_eq!(read(&dir.join(key)), value);
    assert!(cg
        .apply(&res(json!({"unified": {"nosuch.file": "1"}})))
        .is_err());
}

#[test]
fn processes_freeze_stats_kill_destroy() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("procs", "p/c");
    let cg = &t.cg;
    cg.create().unwrap();
    if !require_controllers(
        "processes_freeze_stats_kill_destroy",
        cg,
        &[("pids", "pids"), ("cpu", "cpu"), ("memory", "memory")],
    ) {
        return;
    }
    cg.apply(&res(json!({"pids": {"limit": 10}}))).unwrap();
    let busy = Parked::spawn("x=$(head -c 100000 /dev/zero | tr '\\0' a); while :; do :; done");
    let pid = busy.pid();
    cg.add_process(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), [pid]);
    for (k, d) in &cg.dirs {
        let procs = read(&d.join("cgroup.procs"));
        assert_eq!(procs, pid.to_string(), "{k}");
    }
    let mut busy = busy;
    busy.child.stdin.take(); // EOF: `read` returns, the loop starts
    sleep(Duration::from_millis(100));

    cg.freeze().unwrap();
    assert_eq!(cg.state().unwrap(), FreezerState::Frozen);
    assert!(cg.is_frozen().unwrap());
    let before = cpu_ticks(pid);
    sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(pid), before, "a frozen task used CPU");
    cg.thaw().unwrap();
    assert_eq!(cg.state().unwrap(), FreezerState::Thawed);
    assert!(!cg.is_frozen().unwrap());
    sleep(Duration::from_millis(300));
    assert!(cpu_ticks(pid) > before, "a thawed busy loop did not run");

    // The `$(head | tr)` helpers may still be exiting (slow under TCG).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cg.pids().unwrap() != [pid] && std::time::Instant::now() < deadline {
        sleep(Duration::from_millis(20));
    }
    let s = cg.stats().unwrap();
    assert!(s.cpu.usage.total > 0, "{s:?}");
    assert!(s.memory.usage.usage > 0, "{s:?}");
    assert_eq!((s.pids.current, s.pids.limit), (1, 10));
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["memory"]["usage"].get("limit").is_some());

    cg.kill_all(libc::SIGKILL).unwrap();
    let status = busy.child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(cg.pids().unwrap().is_empty());
    cg.destroy().unwrap();
    assert!(cg.dirs.iter().all(|(_, d)| !d.exists()));
}

#[test]
fn kill_all_with_other_signals() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("term", "c");
    t.cg.create().unwrap();
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    t.cg.add_process(child.id() as i32).unwrap();
    t.cg.kill_all(libc::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    assert_eq!(t.cg.state().unwrap(), FreezerState::Thawed);
}

#[test]
fn destroy_kills_frozen_processes_and_child_cgroups() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("destroy", "c");
    let cg = &t.cg;
    cg.create().unwrap();
    // Child cgroups in every hierarchy, each holding a process (cgroup2
    // forbids processes in a cgroup whose children have controllers).
    let child = |name: &str| Cgroup {
        dirs: cg
            .dirs
            .iter()
            .map(|(k, d)| (k.clone(), d.join(name)))
            .collect(),
        ..cg.clone()
    };
    let (one, two) = (child("one"), child("two/deeper"));
    one.create().unwrap();
    two.create().unwrap();
    let mut a = Command::new("sleep").arg("1000").spawn().unwrap();
    let mut b = Command::new("sleep").arg("1000").spawn().unwrap();
    one.add_process(a.id() as i32).unwrap();
    two.add_process(b.id() as i32).unwrap();
    assert_eq!(cg.pids().unwrap().len(), 2);
    cg.freeze().unwrap();
    // Plain destroy refuses while processes live (EBUSY after retries).
    assert!(cg.destroy().is_err());
    cg.destroy_killing().unwrap();
    assert_eq!(a.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(b.wait().unwrap().signal(), Some(libc::SIGKILL));
    for (k, d) in &cg.dirs {
        assert!(!d.exists(), "{k}: {d:?} still exists");
    }
}

#[test]
fn oom_kill_is_counted() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("oom", "c");
    let cg = &t.cg;
    cg.create().unwrap();
    if !require_controllers("oom_kill_is_counted", cg, &[("memory", "memory")]) {
        return;
    }
    // memory+swap equal to memory: no swap, so the hog is OOM-killed.
    let limit = 16 << 20;
    let swap_known = match cg.v1_dir("memory") {
        Some(d) => d.join("memory.memsw.limit_in_bytes").exists(),
        None => cg
            .unified_dir()
            .is_some_and(|d| d.join("memory.swap.max").exists()),
    };
    let mem = if swap_known {
        json!({"limit": limit, "swap": limit})
    } else {
        json!({"limit": limit})
    };
    cg.apply(&res(json!({"memory": mem}))).unwrap();
    assert_eq!(cg.oom_kill_count().unwrap(), 0);
    let hog = Parked::spawn("exec tail /dev/zero");
    cg.add_process(hog.pid()).unwrap();
    let (_, status) = hog.release();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the hog was not OOM-killed: {status:?}"
    );
    assert!(cg.oom_kill_count().unwrap() >= 1);
}

fn dev_rules(v: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_value(v).unwrap()
}

const DEV_SCRIPT: &str = "cat /dev/null && echo null-ok; \
    (: > /dev/zero) 2>/dev/null && echo zero-ok || echo zero-denied";

#[test]
fn device_rules_are_enforced() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("devices", "c");
    let cg = &t.cg;
    cg.create().unwrap();
    let mut rules = dev_rules(
        json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]),
    );
    cg.apply_devices(&rules).unwrap();
    if let Some(d) = cg.v1_dir("devices") {
        assert_eq!(read(&d.join("devices.list")), "c 1:3 rwm");
    }
    let p = Parked::spawn(DEV_SCRIPT);
    cg.add_process(p.pid()).unwrap();
    let (out, _) = p.release();
    assert_eq!(out, "null-ok\nzero-denied\n");

    // Update: /dev/zero allowed now.
    rules.extend(devices::default_rules());
    cg.apply(&res(json!({"devices": rules}))).unwrap();
    let p = Parked::spawn(DEV_SCRIPT);
    cg.add_process(p.pid()).unwrap();
    assert_eq!(p.release().0, "null-ok\nzero-ok\n");
}

/// v1: every rule is its own write(2) on one open devices.allow and one
/// devices.deny, so a deny between allows still lands in order.
#[test]
fn many_device_rules_reach_devices_list() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("devices-many", "c");
    let cg = &t.cg;
    cg.create().unwrap();
    let Some(d) = cg.v1_dir("devices") else {
        return;
    };
    let rules = dev_rules(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "b", "major": 8, "access": "r"},
        {"allow": true, "type": "c", "major": 136, "access": "rw"}
    ]));
    cg.apply_devices(&rules).unwrap();
    assert_eq!(
        read(&d.join("devices.list")),
        "c 1:3 rwm\nc 1:7 rwm\nb 8:* r\nc 136:* rw"
    );
    // A rule the kernel refuses is named in the error.
    let bad =
        dev_rules(json!([{"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"}]));
    let child = d.join("child");
    std::fs::create_dir(&child).unwrap();
    let e = devices::apply_v1(&child, &bad).unwrap_err().to_string();
    std::fs::remove_dir(&child).unwrap();
    assert!(e.contains("c 1:9 rwm"), "{e}");
}

/// The cgroup2 eBPF device program, even on a hybrid host (where the
/// devices controller is v1): attached to the container's cgroup2 dir.
#[test]
fn ebpf_device_program_is_enforced_and_replaced() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("ebpf", "c");
    let cg = &t.cg;
    let Some(dir) = cg.unified_dir() else {
        loud("SKIPPED ebpf_device_program_is_enforced_and_replaced: no cgroup2 hierarchy (pure v1 host)");
        return;
    };
    cg.create().unwrap();
    let deny_zero = dev_rules(
        json!([{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 5}]),
    );
    devices::attach_program(dir, &deny_zero).unwrap();
    let p = Parked::spawn(DEV_SCRIPT);
    cg.add_process(p.pid()).unwrap();
    assert_eq!(p.release().0, "null-ok\nzero-denied\n");

    // The second program replaces the first (with BPF_F_ALLOW_MULTI both
    // would run and the old one would still deny /dev/zero).
    let allow_all = dev_rules(json!([{"allow": true, "access": "rwm"}]));
    devices::attach_program(dir, &allow_all).unwrap();
    let p = Parked::spawn(DEV_SCRIPT);
    cg.add_process(p.pid()).unwrap();
    assert_eq!(p.release().0, "null-ok\nzero-ok\n");

    // When bpftool is installed, check that exactly one program is attached.
    let out = Command::new("bpftool")
        .args(["cgroup", "list"])
        .arg(dir)
        .stderr(Stdio::null())
        .output();
    if let Some(out) = out.ok().filter(|o| o.status.success()) {
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.matches("cgroup_device").count(), 1, "{text}");
    }
}

#[test]
fn mounts_describe_every_hierarchy() {
    let cg = Cgroup::resolve(Some(Path::new("/m")), "x", false).unwrap();
    let m = cg.mounts();
    assert_eq!(m.len(), cg.dirs.len());
    for (mount, (key, dir)) in m.iter().zip(&cg.dirs) {
        assert_eq!(&mount.host_dir, dir);
        if key == rtctr_cgroups::UNIFIED {
            assert_eq!(mount.fstype, "cgroup2");
        } else {
            assert_eq!(
                (mount.fstype.as_str(), mount.options.as_str()),
                ("cgroup", key.as_str())
            );
            assert!(!mount.name.is_empty());
        }
    }
}

/// The cgroup2 code paths (cgroup.freeze, cgroup.events, cgroup.kill,
/// cgroup2 stats, destroy) on the host's cgroup2 tree, by viewing the test
/// cgroup as if the host were pure v2. On a pure-v2 host this is the normal
/// path anyway.
#[test]
fn v2_paths_on_the_cgroup2_tree() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("v2", "c");
    let full = &t.cg;
    let Some(i) = full
        .dirs
        .iter()
        .position(|(k, _)| k == rtctr_cgroups::UNIFIED)
    else {
        loud("SKIPPED v2_paths_on_the_cgroup2_tree: no cgroup2 hierarchy (pure v1 host)");
        return;
    };
    let cg = Cgroup {
        layout: Layout::V2,
        dirs: vec![full.dirs[i].clone()],
        mount_points: vec![full.mount_points[i].clone()],
        ..full.clone()
    };
    cg.create().unwrap();
    let dir = cg.unified_dir().unwrap().to_path_buf();
    let ctrls = read(&dir.join("cgroup.controllers"));
    if ctrls.split_whitespace().any(|c| c == "pids") {
        cg.apply(&res(json!({"pids": {"limit": 0}}))).unwrap();
        assert_eq!(read(&dir.join("pids.max")), "1");
        cg.apply(&res(json!({"pids": {"limit": -1}}))).unwrap();
        assert_eq!(read(&dir.join("pids.max")), "max");
    }

    let mut busy = Parked::spawn("while :; do :; done");
    let pid = busy.pid();
    cg.add_process(pid).unwrap();
    busy.child.stdin.take();
    assert_eq!(cg.pids().unwrap(), [pid]);
    sleep(Duration::from_millis(100));
    cg.freeze().unwrap();
    assert_eq!(read(&dir.join("cgroup.freeze")), "1");
    assert!(read(&dir.join("cgroup.events")).contains("frozen 1"));
    assert_eq!(cg.state().unwrap(), FreezerState::Frozen);
    let before = cpu_ticks(pid);
    sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(pid), before, "a frozen task used CPU");
    cg.thaw().unwrap();
    assert_eq!(cg.state().unwrap(), FreezerState::Thawed);
    let s = cg.stats().unwrap();
    assert!(s.cpu.usage.total > 0, "{s:?}");

    // Not SIGKILL: freeze, signal each pid, thaw.
    cg.kill_all(libc::SIGTERM).unwrap();
    assert_eq!(busy.child.wait().unwrap().signal(), Some(libc::SIGTERM));

    // SIGKILL through cgroup.kill, also while frozen.
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    cg.add_process(child.id() as i32).unwrap();
    cg.freeze().unwrap();
    cg.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    cg.thaw().unwrap();
    cg.destroy().unwrap();
    assert!(!dir.exists());
}

/// Realtime bandwidth needs a budget in the parent, so this test's cgroup
/// sits right under the root (which has one). cgroup v2 refuses rt settings.
#[test]
fn realtime_cpu_settings() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let t = TestCg::new("rt", "");
    let cg = &t.cg;
    cg.create().unwrap();
    if !require_controllers("realtime_cpu_settings", cg, &[("cpu", "cpu")]) {
        return;
    }
    let r = res(json!({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 10000}}));
    match cg.v1_dir("cpu") {
        Some(d) if d.join("cpu.rt_runtime_us").exists() => {
            cg.apply(&r).unwrap();
            assert_eq!(read(&d.join("cpu.rt_period_us")), "1000000");
            assert_eq!(read(&d.join("cpu.rt_runtime_us")), "10000");
        }
        Some(_) => loud("NOTE: kernel without CONFIG_RT_GROUP_SCHED; realtime not exercised"),
        None => {
            let e = cg.apply(&r).unwrap_err().to_string();
            assert!(e.contains("realtime"), "{e}");
        }
    }
}

/// Shrinking the period under a capped parent: period-then-quota is refused
/// by the kernel, so the quota must go first (v1; v2 writes cpu.max at once).
#[test]
fn cpu_period_shrink_under_capped_parent() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let parent = TestCg::new("cfs", "");
    parent.cg.create().unwrap();
    if !require_controllers(
        "cpu_period_shrink_under_capped_parent",
        &parent.cg,
        &[("cpu", "cpu")],
    ) {
        return;
    }
    parent
        .cg
        .apply(&res(json!({"cpu": {"quota": 50000, "period": 100000}})))
        .unwrap();
    let child = TestCg::new("cfs", "c");
    let cg = &child.cg;
    cg.create().unwrap();
    cg.apply(&res(json!({"cpu": {"quota": 40000, "period": 100000}})))
        .unwrap();
    cg.apply(&res(json!({"cpu": {"quota": 4000, "period": 10000}})))
        .unwrap();
    let f = |v1, v2| read(&kernel_file(cg, "cpu", v1, v2));
    if cg.v1_dir("cpu").is_some() {
        assert_eq!(
            (f("cpu.cfs_quota_us", ""), f("cpu.cfs_period_us", "")),
            ("4000".into(), "10000".into())
        );
    } else {
        assert_eq!(f("", "cpu.max"), "4000 10000");
    }
}
