use std::fs;

use serde_json::json;

use super::*;

fn res(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

/// A tempdir per controller; `v2` puts everything in one cgroup2 dir.
struct Fx {
    _tmp: tempfile::TempDir,
    t: Targets,
}

fn v1(files: &[&str]) -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Targets::default();
    for c in [
        "cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "net_cls", "net_prio", "rdma",
    ] {
        let d = tmp.path().join(c);
        fs::create_dir(&d).unwrap();
        t.v1.push((c.to_string(), d));
    }
    for f in files {
        let (c, name) = f.split_once('/').unwrap();
        fs::write(tmp.path().join(c).join(name), "").unwrap();
    }
    Fx { _tmp: tmp, t }
}

fn v2(ctrls: &[&str], files: &[&str]) -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    for f in files {
        fs::write(tmp.path().join(f), "").unwrap();
    }
    let t = Targets {
        v1: Vec::new(),
        unified: Some((
            tmp.path().to_path_buf(),
            ctrls.iter().map(|s| s.to_string()).collect(),
        )),
    };
    Fx { _tmp: tmp, t }
}

/// The plan as "controller-dir-name/file=value" strings.
fn show(plan: &[Write]) -> Vec<String> {
    plan.iter()
        .map(|w| {
            let d = w.dir.file_name().unwrap().to_string_lossy();
            let d = if d.starts_with(".tmp") {
                "v2".into()
            } else {
                d
            };
            format!("{d}/{}={}", w.file, w.value)
        })
        .collect()
}

fn run(fx: &Fx, r: serde_json::Value) -> Result<Vec<String>> {
    plan(&fx.t, &res(r)).map(|p| show(&p))
}

#[test]
fn conversions_match_runc() {
    assert_eq!(shares_to_weight(0), 0);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 100);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(512), 59);
    assert_eq!(shares_to_weight(100), 17);
    assert_eq!(blkio_weight_to_io(10), 1);
    assert_eq!(blkio_weight_to_io(1000), 10_000);
    assert_eq!(blkio_weight_to_io(500), 4950);
    assert_eq!(pids_value(-1), "max");
    assert_eq!(pids_value(0), "1");
    assert_eq!(pids_value(64), "64");
    assert_eq!(swap_to_v2(0, 0).unwrap(), None);
    assert_eq!(swap_to_v2(0, -1).unwrap(), Some(-1));
    assert_eq!(swap_to_v2(-1, 100).unwrap(), Some(-1));
    assert_eq!(swap_to_v2(300, 100).unwrap(), Some(200));
    assert!(swap_to_v2(50, 100).is_err());
    assert!(swap_to_v2(300, 0).is_err());
    assert!(swap_to_v2(300, -1).is_err());
}

#[test]
fn empty_resources_write_nothing() {
    let fx = v1(&[]);
    assert!(run(&fx, json!({})).unwrap().is_empty());
    let r = json!({"memory": {}, "cpu": {}, "blockIO": {}, "hugepageLimits": [], "network": {}});
    assert!(run(&fx, r.clone()).unwrap().is_empty());
    let fx = v2(&[], &[]);
    assert!(run(&fx, r).unwrap().is_empty());
}

#[test]
fn memory_v1_orders_swap_and_limit() {
    let fx = v1(&["memory/memory.memsw.limit_in_bytes"]);
    fs::write(fx.t.v1[2].1.join("memory.memsw.limit_in_bytes"), "0\n").unwrap();
    // Current memsw is below the new value: memsw first.
    let p = run(
        &fx,
        json!({"memory": {"limit": 1000, "swap": 2000, "reservation": 500,
        "swappiness": 10, "disableOOMKiller": true, "kernel": 5, "kernelTCP": 6}}),
    )
    .unwrap();
    assert_eq!(
        p,
        [
            "memory/memory.memsw.limit_in_bytes=2000",
            "memory/memory.limit_in_bytes=1000",
            "memory/memory.soft_limit_in_bytes=500",
            "memory/memory.swappiness=10",
            "memory/memory.oom_control=1",
        ]
    );
    // Shrinking: memory first.
    fs::write(fx.t.v1[2].1.join("memory.memsw.limit_in_bytes"), "9999\n").unwrap();
    let p = run(&fx, json!({"memory": {"limit": 1000, "swap": 2000}})).unwrap();
    assert_eq!(
        p,
        [
            "memory/memory.limit_in_bytes=1000",
            "memory/memory.memsw.limit_in_bytes=2000"
        ]
    );
    // Unlimited memory implies unlimited swap.
    let p = run(&fx, json!({"memory": {"limit": -1}})).unwrap();
    assert_eq!(
        p,
        [
            "memory/memory.memsw.limit_in_bytes=-1",
            "memory/memory.limit_in_bytes=-1"
        ]
    );
}

#[test]
fn memory_errors_are_clear() {
    let fx = v1(&["memory/memory.memsw.limit_in_bytes"]);
    let e = run(&fx, json!({"memory": {"limit": 1000, "swap": 10}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("memory.swap") && e.contains("below"), "{e}");
    let e = run(&fx, json!({"memory": {"swappiness": 101}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("swappiness"), "{e}");
    let fx = v1(&[]);
    let e = run(&fx, json!({"memory": {"limit": 1000, "swap": 2000}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("memsw"), "{e}");
    // Unlimited swap without swap accounting is no error.
    assert_eq!(
        run(&fx, json!({"memory": {"limit": 1000, "swap": -1}})).unwrap(),
        ["memory/memory.limit_in_bytes=1000"]
    );
}

#[test]
fn memory_v2_converts_swap() {
    let fx = v2(&["memory"], &["memory.swap.max"]);
    let p = run(&fx, json!({"memory": {"limit": 1000, "swap": 3000, "reservation": 100, "swappiness": 5, "disableOOMKiller": true}})).unwrap();
    assert_eq!(
        p,
        [
            "v2/memory.swap.max=2000",
            "v2/memory.max=1000",
            "v2/memory.low=100"
        ]
    );
    let p = run(&fx, json!({"memory": {"limit": -1}})).unwrap();
    assert_eq!(p, ["v2/memory.swap.max=max", "v2/memory.max=max"]);
    // No swap accounting: unlimited swap is skipped, a real limit fails on write.
    let fx = v2(&["memory"], &[]);
    assert_eq!(
        run(&fx, json!({"memory": {"limit": -1}})).unwrap(),
        ["v2/memory.max=max"]
    );
}

#[test]
fn memory_v2_check_before_update() {
    let fx = v2(&["memory"], &["memory.swap.max"]);
    fs::write(
        fx.t.unified.as_ref().unwrap().0.join("memory.current"),
        "5000\n",
    )
    .unwrap();
    let e = run(
        &fx,
        json!({"memory": {"limit": 1000, "checkBeforeUpdate": true}}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("current usage 5000"), "{e}");
    assert!(run(
        &fx,
        json!({"memory": {"limit": 9000, "checkBeforeUpdate": true}})
    )
    .is_ok());
}

#[test]
fn cpu_v1_files() {
    let fx = v1(&[]);
    let p = plan(
        &fx.t,
        &res(
            json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
        "realtimeRuntime": 900, "realtimePeriod": 1000, "cpus": "0-1", "mems": "0", "idle": 1}}),
        ),
    )
    .unwrap();
    assert!(p[0].verify, "cpu.shares is read back");
    assert_eq!(
        show(&p),
        [
            "cpu/cpu.shares=512",
            "cpu/cpu.cfs_period_us=100000",
            "cpu/cpu.cfs_quota_us=50000",
            "cpu/cpu.cfs_burst_us=1000",
            "cpu/cpu.rt_period_us=1000",
            "cpu/cpu.rt_runtime_us=900",
            "cpu/cpu.idle=1",
            "cpuset/cpuset.cpus=0-1",
            "cpuset/cpuset.mems=0",
        ]
    );
    let e = run(
        &fx,
        json!({"cpu": {"realtimeRuntime": 2000, "realtimePeriod": 1000}}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("exceeds"), "{e}");
    assert_eq!(
        run(&fx, json!({"cpu": {"quota": -1}})).unwrap(),
        ["cpu/cpu.cfs_quota_us=-1"]
    );
}

#[test]
fn cpu_v2_files() {
    let fx = v2(&["cpu", "cpuset"], &[]);
    let p = run(&fx, json!({"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10, "idle": 0, "cpus": "1"}})).unwrap();
    assert_eq!(
        p,
        [
            "v2/cpu.weight=100",
            "v2/cpu.max=50000 100000",
            "v2/cpu.max.burst=10",
            "v2/cpu.idle=0",
            "v2/cpuset.cpus=1"
        ]
    );
    assert_eq!(
        run(&fx, json!({"cpu": {"quota": -1, "period": 1000}})).unwrap(),
        ["v2/cpu.max=max 1000"]
    );
    assert_eq!(
        run(&fx, json!({"cpu": {"quota": 5000}})).unwrap(),
        ["v2/cpu.max=5000"]
    );
    let e = run(&fx, json!({"cpu": {"realtimeRuntime": 10}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("realtime"), "{e}");
    let fx = v2(&["memory"], &[]);
    let e = run(&fx, json!({"cpu": {"shares": 10}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cpu controller"), "{e}");
}

#[test]
fn pids_both_versions() {
    let fx = v1(&[]);
    assert_eq!(
        run(&fx, json!({"pids": {"limit": 0}})).unwrap(),
        ["pids/pids.max=1"]
    );
    let fx = v2(&["pids"], &[]);
    assert_eq!(
        run(&fx, json!({"pids": {"limit": -1}})).unwrap(),
        ["v2/pids.max=max"]
    );
    let fx = v2(&[], &[]);
    let e = run(&fx, json!({"pids": {"limit": 5}}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pids controller") && e.contains("pids.limit"),
        "{e}"
    );
}

#[test]
fn blkio_v1_cfq_and_bfq() {
    let r = json!({"blockIO": {"weight": 300, "leafWeight": 200,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 400, "leafWeight": 100}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 1, "rate": 2000}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 2, "rate": 30}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 3, "rate": 40}]}});
    let fx = v1(&["blkio/blkio.weight"]);
    assert_eq!(
        run(&fx, r.clone()).unwrap(),
        [
            "blkio/blkio.weight=300",
            "blkio/blkio.leaf_weight=200",
            "blkio/blkio.weight_device=8:0 400",
            "blkio/blkio.leaf_weight_device=8:0 100",
            "blkio/blkio.throttle.read_bps_device=8:0 1000",
            "blkio/blkio.throttle.write_bps_device=8:1 2000",
            "blkio/blkio.throttle.read_iops_device=8:2 30",
            "blkio/blkio.throttle.write_iops_device=8:3 40",
        ]
    );
    let fx = v1(&["blkio/blkio.bfq.weight"]);
    let p = run(&fx, json!({"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 400}]}})).unwrap();
    assert_eq!(
        p,
        [
            "blkio/blkio.bfq.weight=300",
            "blkio/blkio.bfq.weight_device=8:0 400"
        ]
    );
}

#[test]
fn io_v2_weight_and_max() {
    let r = json!({"blockIO": {"weight": 500, "leafWeight": 10,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 7}]}});
    let fx = v2(&["io"], &[]);
    assert_eq!(
        run(&fx, r.clone()).unwrap(),
        [
            "v2/io.weight=default 4950",
            "v2/io.weight=8:0 10000",
            "v2/io.max=8:0 rbps=1000",
            "v2/io.max=8:0 wiops=7"
        ]
    );
    let fx = v2(&["io"], &["io.bfq.weight"]);
    let p = run(&fx, r).unwrap();
    assert_eq!(
        &p[..2],
        ["v2/io.bfq.weight=500", "v2/io.bfq.weight=8:0 1000"]
    );
}

#[test]
fn hugetlb_files() {
    let fx = v1(&["hugetlb/hugetlb.2MB.limit_in_bytes"]);
    let p = run(
        &fx,
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
    )
    .unwrap();
    assert_eq!(p, ["hugetlb/hugetlb.2MB.limit_in_bytes=4194304"]);
    let e = run(
        &fx,
        json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("3MB") && e.contains("hugetlb.3MB.limit_in_bytes"),
        "{e}"
    );
    let fx = v2(&["hugetlb"], &["hugetlb.1GB.max"]);
    let p = run(
        &fx,
        json!({"hugepageLimits": [{"pageSize": "1GB", "limit": -1}]}),
    )
    .unwrap();
    assert_eq!(p, ["v2/hugetlb.1GB.max=max"]);
    let fx = v2(&["hugetlb"], &["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max"]);
    let p = run(
        &fx,
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}),
    )
    .unwrap();
    assert_eq!(
        p,
        [
            "v2/hugetlb.2MB.rsvd.max=2097152",
            "v2/hugetlb.2MB.max=2097152"
        ]
    );
}

#[test]
fn network_needs_v1_hierarchies() {
    let fx = v1(&[]);
    let p = run(&fx, json!({"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}, {"name": "lo", "priority": 1}]}})).unwrap();
    assert_eq!(
        p,
        [
            "net_cls/net_cls.classid=1048577",
            "net_prio/net_prio.ifpriomap=eth0 5",
            "net_prio/net_prio.ifpriomap=lo 1"
        ]
    );
    let fx = v2(&["cpu"], &[]);
    let e = run(&fx, json!({"network": {"classID": 1}}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("net_cls") && e.contains("network.classID"),
        "{e}"
    );
}

#[test]
fn rdma_lines() {
    let fx = v2(&["rdma"], &[]);
    let p = run(&fx, json!({"rdma": {"mlx5_1": {"hcaHandles": 3}, "mlx4_0": {"hcaHandles": 2, "hcaObjects": 2000}, "x": {}}})).unwrap();
    assert_eq!(
        p,
        [
            "v2/rdma.max=mlx4_0 hca_handle=2 hca_object=2000",
            "v2/rdma.max=mlx5_1 hca_handle=3"
        ]
    );
}

#[test]
fn unified_keys() {
    let fx = v2(&["memory"], &[]);
    let p = run(
        &fx,
        json!({"unified": {"memory.high": "5000", "cgroup.max.depth": "3"}}),
    )
    .unwrap();
    assert_eq!(p, ["v2/cgroup.max.depth=3", "v2/memory.high=5000"]);
    let e = run(&fx, json!({"unified": {"io.max": "x"}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("io") && e.contains("io.max"), "{e}");
    for bad in ["../x.y", "memory", ".x"] {
        assert!(run(&fx, json!({"unified": {bad: "1"}})).is_err(), "{bad}");
    }
    let fx = v1(&[]);
    let e = run(&fx, json!({"unified": {"memory.high": "1"}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("memory.high") && e.contains("v1"), "{e}");
}

#[test]
fn hybrid_routes_by_controller() {
    // v1 memory plus a unified tree holding only hugetlb.
    let mut fx = v1(&["hugetlb/hugetlb.2MB.max"]);
    let uni =
        fx.t.v1
            .iter()
            .find(|(c, _)| c == "hugetlb")
            .unwrap()
            .1
            .clone();
    fx.t.v1.retain(|(c, _)| c != "hugetlb");
    fx.t.unified = Some((uni, vec!["hugetlb".to_string()]));
    let p = run(
        &fx,
        json!({"memory": {"limit": 4096}, "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
        "unified": {"hugetlb.2MB.max": "0"}}),
    )
    .unwrap();
    assert_eq!(
        p,
        [
            "memory/memory.limit_in_bytes=4096",
            "hugetlb/hugetlb.2MB.max=0",
            "hugetlb/hugetlb.2MB.max=0"
        ]
    );
    let e = run(&fx, json!({"unified": {"memory.high": "1"}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("memory controller"), "{e}");
}

#[test]
fn execute_writes_and_verifies() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("cpu.shares"), "").unwrap();
    let mut steps = vec![Write {
        dir: d.path().to_path_buf(),
        file: "cpu.shares".into(),
        value: "512".into(),
        verify: true,
    }];
    execute(&steps).unwrap();
    assert_eq!(
        fs::read_to_string(d.path().join("cpu.shares")).unwrap(),
        "512"
    );
    steps[0].file = "nope".into();
    let e = execute(&steps).unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("\"512\""), "{e}");
}
