//! A container's cgroup through the rtctr binary: what the kernel's files
//! on the host say after create, `update`, `pause`/`resume`, what `ps` and
//! `events` report, and that `delete` leaves no directory behind.
//!
//! The container's directories are found from `/proc/<init>/cgroup` and
//! the host's mount table, so the same tests run on a hybrid host and in
//! the pure cgroup v2 VM (`make test-cgroupv2`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rtctr_integration::*;
use serde_json::{json, Value};

const MIB: i64 = 1024 * 1024;

/// A container id unique on this host: parallel test runs (other
/// checkouts) share the cgroup tree.
fn uid(name: &str) -> String {
    format!("cg-{name}-{}", std::process::id())
}

/// One hierarchy the process is in: its controllers ("" for cgroup2) and
/// the directory on the host.
#[derive(Debug, Clone)]
struct Dir {
    controllers: Vec<String>,
    path: PathBuf,
}

/// The cgroup directories of `pid`, from /proc/<pid>/cgroup and the
/// cgroup mounts in /proc/self/mountinfo.
fn cgroup_dirs(pid: i64) -> Vec<Dir> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    // (fstype, controllers, mount root, mount point)
    let mut mounts = Vec::new();
    for line in mountinfo.lines() {
        let (pre, post) = line.split_once(" - ").unwrap();
        let pre: Vec<&str> = pre.split_whitespace().collect();
        let post: Vec<&str> = post.split_whitespace().collect();
        if post[0] != "cgroup" && post[0] != "cgroup2" {
            continue;
        }
        let ctrls: Vec<String> = if post[0] == "cgroup2" {
            Vec::new()
        } else {
            post[2]
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
                .filter(|o| {
                    !matches!(
                        *o,
                        "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode"
                    )
                })
                .map(String::from)
                .collect()
        };
        mounts.push((post[0], ctrls, pre[3].to_string(), PathBuf::from(pre[4])));
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let mut want: Vec<String> = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        want.sort();
        let mount = mounts.iter().find(|(fs, c, _, _)| {
            let mut c = c.clone();
            c.sort();
            if want.is_empty() {
                *fs == "cgroup2"
            } else {
                *fs == "cgroup" && c == want
            }
        });
        let Some((_, _, root, mp)) = mount else {
            continue;
        };
        let rel = Path::new(path)
            .strip_prefix(root)
            .unwrap_or(Path::new(path))
            .to_path_buf();
        let rel = rel.strip_prefix("/").unwrap_or(&rel).to_path_buf();
        dirs.push(Dir {
            controllers: want,
            path: mp.join(rel),
        });
    }
    assert!(!dirs.is_empty(), "no cgroup directories for {pid}: {text}");
    dirs
}

/// Where `controller` is: (is cgroup v2, directory).
fn controller_dir(dirs: &[Dir], controller: &str) -> (bool, PathBuf) {
    if let Some(d) = dirs
        .iter()
        .find(|d| d.controllers.iter().any(|c| c == controller))
    {
        return (false, d.path.clone());
    }
    let d = dirs
        .iter()
        .find(|d| d.controllers.is_empty())
        .unwrap_or_else(|| panic!("no {controller} hierarchy and no cgroup2 in {dirs:?}"));
    let avail = std::fs::read_to_string(d.path.join("cgroup.controllers")).unwrap_or_default();
    assert!(
        avail.split_whitespace().any(|c| c == controller),
        "cgroup2 dir {} has no {controller} controller ({avail:?})",
        d.path.display()
    );
    (true, d.path.clone())
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// Reads the file of `controller` that this layout has: (v1 name, v2 name).
fn file(dirs: &[Dir], controller: &str, v1: &str, v2: &str) -> String {
    let (is_v2, dir) = controller_dir(dirs, controller);
    read(&dir, if is_v2 { v2 } else { v1 })
}

fn is_v2(dirs: &[Dir], controller: &str) -> bool {
    controller_dir(dirs, controller).0
}

/// The init's pid from `state`.
fn init_pid(rt: &Rtctr, id: &str) -> i64 {
    rt.state(id).unwrap()["pid"].as_i64().unwrap()
}

/// User CPU time (clock ticks) from /proc/<pid>/stat.
fn utime(pid: i64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    after.split_whitespace().nth(11).unwrap().parse().unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a verb with `input` on its stdin.
fn run_stdin(rt: &Rtctr, args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = rt
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// runc's cpu.shares → cpu.weight (log-scale quadratic), computed here
/// independently of the cgroup crate.
fn weight_of(shares: u64) -> u64 {
    let l = (shares as f64).log2();
    10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil() as u64
}

/// Creates and starts `id` from `b`, returning the init's pid.
fn start(rt: &Rtctr, b: &Bundle, id: &str) -> i64 {
    rt.create(b, id, &[]).ok();
    rt.run(&["start", id]).ok();
    rt.wait_status(id, "running");
    init_pid(rt, id)
}

#[test]
fn the_init_is_in_the_containers_directory_of_every_hierarchy() {
    // The init's ancestor is born in the cgroup2 directory (clone3
    // CLONE_INTO_CGROUP) and joins each v1 hierarchy through `tasks`:
    // every line of /proc/<init>/cgroup, v1 and v2, must name the
    // container's own directory, and the host must list the init there.
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sleep", "60"]);
    let id = uid("join");
    let pid = start(&rt, &b, &id);
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in text.lines() {
        assert!(line.ends_with(&format!("/{id}")), "{line} (of {text})");
    }
    for dir in cgroup_dirs(pid) {
        let procs = read(&dir.path, "cgroup.procs");
        assert!(
            procs.lines().any(|l| l.trim() == pid.to_string()),
            "{} lists {procs:?}, not the init {pid}",
            dir.path.display()
        );
    }
    rt.run(&["delete", "--force", &id]).ok();
}

#[test]
fn config_resources_land_in_the_cgroup_files() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sleep", "60"]);
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 * MIB});
        c["linux"]["resources"]["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"});
        c["linux"]["resources"]["pids"] = json!({"limit": 32});
    });
    let id = uid("conf");
    rt.create(&b, &id, &[]).ok();
    let dirs = cgroup_dirs(init_pid(&rt, &id));
    let mem = file(&dirs, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(mem, (64 * MIB).to_string());
    if is_v2(&dirs, "cpu") {
        assert_eq!(
            file(&dirs, "cpu", "", "cpu.weight"),
            weight_of(512).to_string()
        );
        assert_eq!(file(&dirs, "cpu", "", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(file(&dirs, "cpu", "cpu.shares", ""), "512");
        assert_eq!(file(&dirs, "cpu", "cpu.cfs_quota_us", ""), "50000");
        assert_eq!(file(&dirs, "cpu", "cpu.cfs_period_us", ""), "100000");
    }
    assert_eq!(file(&dirs, "pids", "pids.max", "pids.max"), "32");
    assert_eq!(file(&dirs, "cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
    assert_eq!(file(&dirs, "cpuset", "cpuset.mems", "cpuset.mems"), "0");
    rt.run(&["delete", &id]).ok();
}

#[test]
fn update_changes_the_files_and_merges_with_the_last_update() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sleep", "60"]);
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 * MIB});
        c["linux"]["resources"]["cpu"] = json!({"shares": 512});
        c["linux"]["resources"]["pids"] = json!({"limit": 32});
    });
    let id = uid("upd");
    let pid = start(&rt, &b, &id);
    let dirs = cgroup_dirs(pid);
    let cpu_v2 = is_v2(&dirs, "cpu");
    let mem = || file(&dirs, "memory", "memory.limit_in_bytes", "memory.max");
    let pids = || file(&dirs, "pids", "pids.max", "pids.max");
    let shares = |s: u64| {
        if cpu_v2 {
            (
                file(&dirs, "cpu", "", "cpu.weight"),
                weight_of(s).to_string(),
            )
        } else {
            (file(&dirs, "cpu", "cpu.shares", ""), s.to_string())
        }
    };
    let quota_period = || {
        if cpu_v2 {
            file(&dirs, "cpu", "", "cpu.max")
        } else {
            format!(
                "{} {}",
                file(&dirs, "cpu", "cpu.cfs_quota_us", ""),
                file(&dirs, "cpu", "cpu.cfs_period_us", "")
            )
        }
    };

    // runc's flags, memory with a unit suffix.
    rt.run(&[
        "update",
        "--memory",
        "128m",
        "--cpu-share",
        "256",
        "--cpu-quota",
        "20000",
        "--pids-limit",
        "64",
        &id,
    ])
    .ok();
    assert_eq!(mem(), (128 * MIB).to_string());
    let (got, want) = shares(256);
    assert_eq!(got, want);
    assert_eq!(quota_period(), "20000 100000");
    assert_eq!(pids(), "64");

    // containerd's `update --resources=-`: only what it sets changes; the
    // period joins the quota of the previous update.
    let input = json!({"memory": {"limit": 96 * MIB}, "cpu": {"period": 50000, "shares": 0}});
    let (code, _, err) = run_stdin(&rt, &["update", "--resources=-", &id], &input.to_string());
    assert_eq!(code, 0, "{err}");
    assert_eq!(mem(), (96 * MIB).to_string());
    assert_eq!(quota_period(), "20000 50000");
    let (got, want) = shares(256);
    assert_eq!(got, want);
    assert_eq!(pids(), "64");

    // Unlimited again.
    rt.run(&["update", "--memory", "-1", "--pids-limit", "-1", &id])
        .ok();
    let unlimited = mem();
    assert!(
        unlimited == "max" || unlimited.parse::<u64>().unwrap() > (1 << 60),
        "{unlimited}"
    );
    assert_eq!(pids(), "max");

    // Intel RDT is refused clearly; bad sizes name the flag.
    let rdt = rt.run(&["update", "--l3-cache-schema", "L3:0=f", &id]);
    assert_eq!(rdt.code, 1);
    assert!(rdt.stderr.contains("intelRdt"), "{rdt:?}");
    let bad = rt.run(&["update", "--memory", "12x", &id]);
    assert!(bad.stderr.contains("--memory"), "{bad:?}");

    rt.run(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    let stopped = rt.run(&["update", "--memory", "64m", &id]);
    assert_eq!(stopped.code, 1);
    assert!(stopped.stderr.contains("stopped"), "{stopped:?}");
    rt.run(&["delete", &id]).ok();
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sh", "-c", "while :; do :; done"]);
    let id = uid("pause");
    let pid = start(&rt, &b, &id);
    wait_until("the loop to use CPU", Duration::from_secs(10), || {
        utime(pid) > 0
    });
    rt.run(&["pause", &id]).ok();
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    let dirs = cgroup_dirs(pid);
    let frozen = if dirs
        .iter()
        .any(|d| d.controllers.iter().any(|c| c == "freezer"))
    {
        file(&dirs, "freezer", "freezer.state", "")
    } else {
        let (_, d) = controller_dir(&dirs, "cpu");
        read(&d, "cgroup.freeze")
    };
    assert!(frozen == "FROZEN" || frozen == "1", "{frozen}");
    let before = utime(pid);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(utime(pid), before, "a paused loop still ran");
    let again = rt.run(&["pause", &id]);
    assert_eq!(again.code, 1, "{again:?}");

    rt.run(&["resume", &id]).ok();
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    wait_until("the loop to run again", Duration::from_secs(10), || {
        utime(pid) > before
    });
    let not_paused = rt.run(&["resume", &id]);
    assert_eq!(not_paused.code, 1);
    assert!(not_paused.stderr.contains("not paused"), "{not_paused:?}");

    // A paused container is killed and removed by delete --force.
    rt.run(&["pause", &id]).ok();
    rt.run(&["delete", "--force", &id]).ok();
    assert!(!pid_alive(pid));
    for d in &dirs {
        assert!(!d.path.exists(), "{} left", d.path.display());
    }
}

#[test]
fn ps_lists_the_containers_processes() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sh", "-c", "sleep 60 & exec sleep 61"]);
    let id = uid("ps");
    let pid = start(&rt, &b, &id);
    let mut pids: Vec<i64> = Vec::new();
    wait_until("two processes", Duration::from_secs(10), || {
        let out = rt.run(&["ps", "--format", "json", &id]).ok();
        pids = serde_json::from_str(&out.stdout).unwrap();
        pids.len() == 2
    });
    assert!(pids.contains(&pid), "{pids:?} lacks the init {pid}");

    // containerd's `ps --format table ID <ps args>`.
    let out = rt
        .run(&["ps", "--format", "table", &id, "-o", "pid,args"])
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert_eq!(lines.len(), 3, "{out:?}");
    let init_line = lines
        .iter()
        .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
        .unwrap_or_else(|| panic!("no line for {pid}: {out:?}"));
    assert!(init_line.contains("sleep 61"), "{init_line}");
    // Default ps -ef: header plus the two.
    let out = rt.run(&["ps", &id]).ok();
    assert!(out.stdout.starts_with("UID"), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 3, "{out:?}");
    let bad = rt.run(&["ps", "--format", "yaml", &id]);
    assert_eq!(bad.code, 1);
    rt.run(&["delete", "--force", &id]).ok();
}

#[test]
fn events_stats_have_runcs_shape_and_the_stream_ends_with_the_container() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sleep", "60"]);
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 * MIB});
        c["linux"]["resources"]["pids"] = json!({"limit": 32});
    });
    let id = uid("ev");
    start(&rt, &b, &id);
    let out = rt.run(&["events", "--stats", &id]).ok();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    let ev: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], json!(id));
    let data = &ev["data"];
    assert_eq!(data["memory"]["usage"]["limit"], 64 * MIB, "{data}");
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{data}"
    );
    assert_eq!(data["pids"]["current"], 1, "{data}");
    assert_eq!(data["pids"]["limit"], 32, "{data}");
    for key in ["cpu", "blkio", "hugetlb"] {
        assert!(data.get(key).is_some(), "{key} missing: {data}");
    }
    assert!(data["cpu"]["usage"].get("kernel").is_some(), "{data}");

    // The stream, as go-runc starts it, until the container stops.
    let mut child = rt
        .cmd()
        .args(["events", "--interval=100ms", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        let line = lines.next().unwrap().unwrap();
        let ev: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(ev["type"], "stats", "{line}");
        assert_eq!(ev["id"], json!(id));
    }
    rt.run(&["kill", &id, "KILL"]).ok();
    assert_eq!(wait_child(&mut child, Duration::from_secs(10)), Some(0));
    let stopped = rt.run(&["events", "--stats", &id]);
    assert_eq!(stopped.code, 1, "{stopped:?}");
    assert!(stopped.stderr.contains("not running"), "{stopped:?}");
    rt.run(&["delete", &id]).ok();
}

/// Waits for a child with a timeout (killing it then): its exit code.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_oom_killed_init_is_stopped_and_reported() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["tail", "/dev/zero"]);
    let limit = 32 * MIB;
    let id = uid("oom");
    // memory+swap = memory: no swap to escape to, where the kernel can
    // limit it (v2, or v1 with swap accounting).
    rt.create(&b, &id, &[]).ok();
    let dirs = cgroup_dirs(init_pid(&rt, &id));
    let (v2, mem_dir) = controller_dir(&dirs, "memory");
    rt.run(&["delete", &id]).ok();
    let can_limit_swap = v2 || mem_dir.join("memory.memsw.limit_in_bytes").exists();
    let has_swap = std::fs::read_to_string("/proc/swaps")
        .map(|s| s.lines().count() > 1)
        .unwrap_or(false);
    if !can_limit_swap && has_swap {
        eprintln!("SKIPPED: swap is on and cgroup v1 swap accounting is off: no OOM kill");
        return;
    }
    b.edit(|c| {
        let mut mem = json!({"limit": limit});
        if can_limit_swap {
            mem["swap"] = json!(limit);
        }
        c["linux"]["resources"]["memory"] = mem;
    });
    rt.create(&b, &id, &[]).ok();
    // The stream reads the OOM count before the init starts to allocate.
    let mut events = rt
        .cmd()
        .args(["events", "--interval", "1m", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    rt.run(&["start", &id]).ok();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rt.status(&id).as_deref() != Some("stopped") {
        assert!(Instant::now() < deadline, "not OOM-killed within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(wait_child(&mut events, Duration::from_secs(10)), Some(0));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut events.stdout.take().unwrap(), &mut out).unwrap();
    // runc's line: {"type":"oom","id":ID}, no data.
    let oom = format!("{{\"type\":\"oom\",\"id\":{}}}", json!(id));
    assert!(out.lines().any(|l| l == oom), "no {oom} in {out:?}");
    let kills = if v2 {
        read(&mem_dir, "memory.events")
    } else {
        read(&mem_dir, "memory.oom_control")
    };
    assert!(
        kills
            .lines()
            .any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"),
        "{kills}"
    );
    rt.run(&["delete", &id]).ok();
    assert!(!mem_dir.exists());
}

#[test]
fn delete_leaves_no_cgroup_directory() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    // After SIGKILL.
    let b = Bundle::new(&["sleep", "60"]);
    let id = uid("del-kill");
    let pid = start(&rt, &b, &id);
    let dirs = cgroup_dirs(pid);
    for d in &dirs {
        assert!(d.path.exists(), "{} missing", d.path.display());
        assert!(
            d.path.ends_with(&id),
            "{} is not the container's own",
            d.path.display()
        );
    }
    rt.run(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    rt.run(&["delete", &id]).ok();
    for d in &dirs {
        assert!(!d.path.exists(), "{} left after kill", d.path.display());
    }

    // After the init exited by itself, leaving a child (in its pid
    // namespace the child dies with it).
    let b = Bundle::new(&["sh", "-c", "sleep 60 & sleep 0.2"]);
    let id = uid("del-exit");
    rt.create(&b, &id, &[]).ok();
    let dirs = cgroup_dirs(init_pid(&rt, &id));
    rt.run(&["start", &id]).ok();
    rt.wait_status(&id, "stopped");
    rt.run(&["delete", &id]).ok();
    for d in &dirs {
        assert!(!d.path.exists(), "{} left after exit", d.path.display());
    }
    assert!(rt.ids().is_empty());
}

#[test]
fn device_rules_deny_all_but_the_allowed() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    // Major 60 is reserved for local use: no driver, so an open the
    // device cgroup lets through fails with ENXIO, a denied one with EPERM.
    let script = "echo x > /dev/null && echo null-ok; \
                  head -c1 /dev/zero | wc -c; \
                  mknod /dev/local0 c 60 0 && head -c1 /dev/local0; echo done";
    let mut b = Bundle::new(&["sh", "-c", script]);
    b.edit(|c| {
        c["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ]);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
    });
    let out = rt.run_bundle(&b, &uid("dev-deny")).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    // /dev/zero stays readable: as runc, rtctr appends its default
    // allow-list (null, zero, full, random, urandom, tty, ptmx, pts) after
    // the config's rules.
    assert_eq!(lines, ["null-ok", "1", "done"], "{out:?}");
    assert!(
        out.stderr.contains("/dev/local0: Operation not permitted"),
        "{out:?}"
    );

    // The same node allowed by a rule: the cgroup lets it through.
    b.edit(|c| {
        c["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({"allow": true, "type": "c", "major": 60, "minor": 0, "access": "rwm"}));
    });
    let out = rt.run_bundle(&b, &uid("dev-allow")).ok();
    assert!(
        out.stderr
            .contains("/dev/local0: No such device or address"),
        "{out:?}"
    );
}
