//! The container lifecycle through the rtctr binary: what the container
//! sees, what `state` says, and what the host holds afterwards.

use rtctr_integration::*;
use serde_json::json;

#[test]
fn run_shows_the_container_view() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "echo pid=$$; echo host=$(hostname); echo uid=$(id -u) gid=$(id -g) groups=$(id -G); echo cwd=$(pwd); echo foo=$FOO; echo home=$HOME",
    ]);
    b.edit(|c| {
        c["hostname"] = json!("box1");
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        c["process"]["cwd"] = json!("/tmp/work");
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 1000]});
    });
    let out = rt.run_bundle(&b, "view").ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "pid=1",
            "host=box1",
            "uid=1000 gid=1000 groups=1000 5",
            "cwd=/tmp/work",
            "foo=bar baz",
            "home=/home/user"
        ],
        "{out:?}"
    );
    // run removed the container when it exited.
    assert!(rt.ids().is_empty());
}

#[test]
fn exit_status_is_the_containers() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sh", "-c", "exit 7"]);
    assert_eq!(rt.run_bundle(&b, "e7").code, 7);
    let b = Bundle::new(&["sh", "-c", "kill -TERM $$; sleep 5"]);
    // pid 1 has no handler for SIGTERM, so that kill does nothing: exit 0.
    assert_eq!(rt.run_bundle(&b, "e0").code, 0);
}

#[test]
fn killed_by_signal_exits_128_plus_n() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sleep", "30"]);
    let mut child = rt
        .cmd()
        .args(["run", "--bundle", b.path().to_str().unwrap(), "sig"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    rt.wait_status("sig", "running");
    rt.run(&["kill", "sig", "KILL"]).ok();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    assert!(rt.ids().is_empty());
}

#[test]
fn create_start_state_kill_delete() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sh", "-c", "echo started; exec sleep 60"]);
    let pid_file = b.path().join("pid");
    rt.create(&b, "life", &["--pid-file", pid_file.to_str().unwrap()])
        .ok();
    let st = rt.state("life").unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], "life");
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(st["bundle"], json!(b.path().canonicalize().unwrap()));
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    assert!(pid_alive(pid));
    // Nothing ran yet.
    assert_eq!(Rtctr::output_of(&b, "life"), "");
    let list = rt.run(&["list", "--format", "json"]).ok();
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list[0]["status"], "created");
    assert_eq!(rt.run(&["list", "-q"]).ok().stdout, "life\n");

    rt.run(&["start", "life"]).ok();
    rt.wait_status("life", "running");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while Rtctr::output_of(&b, "life") != "started\n" {
        assert!(std::time::Instant::now() < deadline, "no output");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let again = rt.run(&["start", "life"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("it is running"), "{again:?}");
    // A running container is not deleted without --force.
    let del = rt.run(&["delete", "life"]);
    assert_eq!(del.code, 1);
    assert!(del.stderr.contains("not stopped"), "{del:?}");

    rt.run(&["kill", "life"]).ok(); // SIGTERM: sleep (pid 1, no handler) ignores it
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(rt.status("life").as_deref(), Some("running"));
    rt.run(&["kill", "life", "SIGKILL"]).ok();
    rt.wait_status("life", "stopped");
    let st = rt.state("life").unwrap();
    assert_eq!(st["pid"], 0);
    let k = rt.run(&["kill", "life", "9"]);
    assert_eq!(k.code, 1, "kill of a stopped container: {k:?}");
    rt.run(&["delete", "life"]).ok();
    assert!(rt.ids().is_empty());
    assert!(rt.state("life").is_none());
    assert!(!pid_alive(pid));
    assert!(!host_mounts_mention(&b.path().canonicalize().unwrap()));
}

#[test]
fn created_container_dies_on_sigterm_and_delete_removes_it() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["true"]);
    rt.create(&b, "c1", &[]).ok();
    let pid = rt.state("c1").unwrap()["pid"].as_i64().unwrap();
    rt.run(&["kill", "c1"]).ok();
    rt.wait_status("c1", "stopped");
    rt.run(&["delete", "c1"]).ok();
    // A created container is deleted without --force, as runc does.
    rt.create(&b, "c2", &[]).ok();
    let pid2 = rt.state("c2").unwrap()["pid"].as_i64().unwrap();
    rt.run(&["delete", "c2"]).ok();
    assert!(!pid_alive(pid) && !pid_alive(pid2));
    assert!(rt.ids().is_empty());
}

#[test]
fn stopped_after_the_process_exits() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["true"]);
    // Unique on the host: the check below reads the container's cgroup.
    let id = format!("short-{}", std::process::id());
    rt.create(&b, &id, &[]).ok();
    let st = rt.state(&id).unwrap();
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    let start = start_time(pid).expect("the created init exists");
    assert!(
        same_process_alive(pid, start),
        "created init {pid} not alive"
    );
    rt.run(&["start", &id]).ok();
    rt.wait_status(&id, "stopped");
    // `state` agrees with the kernel: pid 0, and the init is gone. Its
    // reaper (the host's init, or a subreaper) collects it: no zombie stays.
    let st = rt.state(&id).unwrap();
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(st["pid"], 0, "{st}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while start_time(pid) == Some(start) {
        assert!(
            std::time::Instant::now() < deadline,
            "init {pid} still in /proc 5 s after it exited: {:?}",
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Nothing of it runs on in its cgroup.
    for dir in expected_cgroup_dirs(&id, None) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert_eq!(procs, "", "{} still holds processes", dir.display());
    }
    // kill of a stopped container fails; kill --all succeeds, as runc's does
    // (containerd's shim sends it while cleaning up, and retries on error).
    let k = rt.run(&["kill", &id, "KILL"]);
    assert_eq!(k.code, 1, "{k:?}");
    assert!(k.stderr.contains("not running"), "{k:?}");
    let k = rt.run(&["kill", "--all", &id, "KILL"]);
    assert_eq!(k.code, 0, "{k:?}");
    rt.run(&["delete", &id]).ok();
    assert!(rt.ids().is_empty());
}

#[test]
fn delete_force_kills_a_running_container() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sleep", "60"]);
    rt.create(&b, "forced", &[]).ok();
    rt.run(&["start", "forced"]).ok();
    let pid = rt.state("forced").unwrap()["pid"].as_i64().unwrap();
    rt.run(&["delete", "--force", "forced"]).ok();
    assert!(!pid_alive(pid));
    assert!(rt.ids().is_empty());
    // --force on a missing container succeeds, without it it fails.
    rt.run(&["delete", "--force", "forced"]).ok();
    assert_eq!(rt.run(&["delete", "forced"]).code, 1);
}

#[test]
fn missing_executable_fails_create_and_leaves_nothing() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["no-such-program"]);
    let out = rt.create(&b, "nx", &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("exec: \"no-such-program\": executable file not found in $PATH"),
        "{out:?}"
    );
    assert!(rt.ids().is_empty(), "state left: {:?}", rt.ids());
    assert!(!process_with_arg(&b.path().display().to_string()));
}

#[test]
fn bad_config_names_the_json_path() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["process"]["user"]["uid"] = json!("root"));
    let out = rt.create(&b, "bad", &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("process.user.uid: invalid type"),
        "{out:?}"
    );
    b.edit(|c| {
        c["process"]["user"]["uid"] = json!(0);
        c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "mount"}]);
    });
    let out = rt.create(&b, "bad", &[]);
    assert!(
        out.stderr
            .contains("linux.namespaces[1].type: duplicate namespace"),
        "{out:?}"
    );
    let out = rt.create(&b, "../evil", &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("invalid container id"), "{out:?}");
    assert!(rt.ids().is_empty());
}

#[test]
fn ids_are_unique_even_in_parallel() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["true"]);
    let results: Vec<i32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| rt.create(&b, "same", &[]).code))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|c| **c == 0).count(),
        1,
        "{results:?}"
    );
    let again = rt.create(&b, "same", &[]);
    assert!(again.stderr.contains("already exists"), "{again:?}");
    rt.run(&["delete", "same"]).ok();
}

#[test]
fn json_log_holds_exactly_one_error_object() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["no-such-program"]);
    let log = b.path().join("log.json");
    let out = rt
        .cmd()
        .args([
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "-bundle",
        ])
        .arg(b.path())
        .arg("logged")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    // podman unmarshals the whole file as one object.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"]
        .as_str()
        .unwrap()
        .contains("executable file not found"));
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
}

/// The first line `out` gives within `secs` seconds.
fn first_line(out: &mut std::process::ChildStdout, secs: i64) -> Option<String> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use std::io::Read;
    let mut got = Vec::new();
    while !got.contains(&b'\n') {
        let ts = Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        let mut fds = [PollFd::new(&*out, PollFlags::IN)];
        if poll(&mut fds, Some(&ts)).ok()? == 0 {
            return None;
        }
        let mut buf = [0u8; 256];
        match out.read(&mut buf).ok()? {
            0 => return None,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .map(str::to_string)
}

/// A foreground `run` forwards SIGTERM, SIGINT and SIGHUP to the
/// container and never swallows them: a container that traps each exits
/// with a code naming it (100+N), and that is run's exit status.
#[test]
fn run_forwards_term_int_and_hup_to_the_container() {
    use rustix::process::{kill_process, Pid, Signal};
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&[
        "sh",
        "-c",
        "trap 'exit 115' TERM; trap 'exit 102' INT; trap 'exit 101' HUP; \
         echo ready; while :; do sleep 1 & wait $!; done",
    ]);
    for (sig, code) in [(Signal::TERM, 115), (Signal::INT, 102), (Signal::HUP, 101)] {
        let id = format!("fwd{code}");
        let mut child = rt
            .cmd()
            .args(["run", "--bundle", b.path().to_str().unwrap(), &id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        // Signalled once its traps are set.
        assert_eq!(
            first_line(&mut out, 10).as_deref(),
            Some("ready"),
            "{sig:?}"
        );
        let pid = Pid::from_raw(child.id() as i32).unwrap();
        kill_process(pid, sig).unwrap();
        let mut status = None;
        let exited = wait_for(std::time::Duration::from_secs(10), || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
            panic!("run did not end within 10 s of {sig:?}: the signal was swallowed");
        }
        assert_eq!(status.unwrap().code(), Some(code), "{sig:?}");
        assert!(rt.ids().is_empty(), "{sig:?}: {:?}", rt.ids());
    }
}

/// 64 parallel creates of distinct ids all succeed (and 64 parallel
/// deletes); 16 parallel creates of one id have exactly one winner, which
/// the losers leave intact: created, its init alive in its cgroups,
/// started as any other.
#[test]
fn parallel_creates_distinct_ids_all_succeed_one_id_has_one_intact_winner() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sh", "-c", "echo won"]);
    let ids: Vec<String> = (0..64)
        .map(|i| format!("par{i}-{}", std::process::id()))
        .collect();
    let outs: Vec<Out> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| s.spawn(|| rt.create(&b, id, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<&Out> = outs.iter().filter(|o| o.code != 0).collect();
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    let mut want = ids.clone();
    want.sort();
    assert_eq!(rt.ids(), want);
    let list = rt.run(&["list", "--format", "json"]).ok();
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let created = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "created")
        .count();
    assert_eq!(created, 64, "{list}");
    let outs: Vec<Out> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| s.spawn(|| rt.run(&["delete", id])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(outs.iter().all(|o| o.code == 0), "{outs:?}");
    assert!(rt.ids().is_empty(), "{:?}", rt.ids());

    // One id, 16 at once (their containers' stdout is one file: only the
    // winner's init prints there, once started).
    let id = format!("one-{}", std::process::id());
    let outs: Vec<Out> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|n| {
                let (rt, b, id) = (&rt, &b, &id);
                s.spawn(move || rt.create_with_stderr(b, id, &[], &format!("{id}.{n}.err")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outs.iter().filter(|o| o.code == 0).count(), 1, "{outs:?}");
    for o in outs.iter().filter(|o| o.code != 0) {
        assert!(o.stderr.contains("already exists"), "{o:?}");
    }
    let st = rt.state(&id).unwrap();
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid_alive(pid));
    for dir in expected_cgroup_dirs(&id, None) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l.trim() == pid.to_string()),
            "the winner's init {pid} is not in {}: {procs:?}",
            dir.display()
        );
    }
    rt.run(&["start", &id]).ok();
    rt.wait_status(&id, "stopped");
    assert_eq!(Rtctr::output_of(&b, &id), "won\n");
    rt.run(&["delete", &id]).ok();
    assert!(rt.ids().is_empty());
}
