//! OCI hooks through the runtime: the six kinds run at their lifecycle
//! step, in order, in the right mount namespace, with `args`, only the
//! given `env`, and a `timeout`; failures follow runtime-spec's lifecycle
//! (prestart/createRuntime/createContainer fail `create`, tear the
//! container down and still run poststop; poststart and poststop failures
//! are warnings).
//!
//! Every hook is `<dir>/hook.sh KIND LOG`, which appends
//! `KIND STATUS PID MNTNS` (status and pid from the state JSON on stdin).
//! `<dir>` is bind-mounted at the same path in the container, so the
//! startContainer hook (whose path resolves in the container) finds the
//! script there, and every hook writes to the same host log.

use std::path::{Path, PathBuf};

use rtctr_integration::*;
use serde_json::{json, Value};

const HOOK_SH: &str = r#"#!/bin/sh
s=$(cat)
status=$(echo "$s" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
pid=$(echo "$s" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
echo "$1 $status $pid $(readlink /proc/self/ns/mnt)" >> "$2"
"#;

/// A host dir holding hook.sh and the log, mounted into the container.
struct HookDir {
    dir: tempfile::TempDir,
}

impl HookDir {
    fn new() -> HookDir {
        let dir = tempfile::Builder::new()
            .prefix("rtctr-hookdir-")
            .tempdir()
            .unwrap();
        let script = dir.path().join("hook.sh");
        std::fs::write(&script, HOOK_SH).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        HookDir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn log(&self) -> PathBuf {
        self.path().join("log")
    }

    fn hook(&self, kind: &str) -> Value {
        json!({
            "path": self.path().join("hook.sh"),
            "args": ["hook.sh", kind, self.log()],
        })
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A bundle (own rootfs) with the hook dir bind-mounted at its host path
/// and an explicit cgroup path, so a test can check it is gone.
fn bundle(hd: &HookDir, args: &[&str], cgroup: &str) -> Bundle {
    let mut b = Bundle::with_own_rootfs(args);
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": hd.path(),
            "type": "bind",
            "source": hd.path(),
            "options": ["rbind", "rw"],
        }));
        c["linux"]["cgroupsPath"] = json!(cgroup);
    });
    b
}

fn mnt_ns(pid: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .display()
        .to_string()
}

fn cgroup_name(tag: &str) -> String {
    format!("/rtctr-hooks-it-{}-{tag}", std::process::id())
}

/// No directory named `cgroup` in any hierarchy under /sys/fs/cgroup.
fn cgroup_gone(cgroup: &str) -> bool {
    let rel = cgroup.trim_start_matches('/');
    let top = Path::new("/sys/fs/cgroup");
    if top.join(rel).exists() {
        return false;
    }
    std::fs::read_dir(top)
        .unwrap()
        .flatten()
        .all(|e| !e.path().join(rel).exists())
}

#[test]
fn six_kinds_run_in_order_in_their_namespaces() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let hd = HookDir::new();
    let log = hd.log();
    let log_s = log.to_str().unwrap().to_string();
    // The program waits for poststart, so its line comes after it.
    let prog = format!(
        "i=0; while ! grep -q poststart {log_s} && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; echo program >> {log_s}"
    );
    let cg = cgroup_name("seq");
    let mut b = bundle(&hd, &["sh", "-c", &prog], &cg);
    b.edit(|c| {
        c["hooks"] = json!({
            "prestart": [hd.hook("prestart")],
            "createRuntime": [hd.hook("createRuntime")],
            "createContainer": [hd.hook("createContainer")],
            "startContainer": [hd.hook("startContainer")],
            "poststart": [hd.hook("poststart")],
            "poststop": [hd.hook("poststop")],
        });
    });
    let out = rt.create(&b, "hk", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let pid = rt.state("hk").unwrap()["pid"].as_i64().unwrap().to_string();
    let host_ns = mnt_ns("self");
    let ctr_ns = mnt_ns(&pid);
    assert_ne!(host_ns, ctr_ns);
    assert_eq!(
        hd.lines(),
        vec![
            format!("prestart creating {pid} {host_ns}"),
            format!("createRuntime creating {pid} {host_ns}"),
            format!("createContainer creating {pid} {ctr_ns}"),
        ],
        "after create"
    );
    rt.run(&["start", "hk"]).ok();
    rt.wait_status("hk", "stopped");
    let after_start = hd.lines();
    rt.run(&["delete", "hk"]).ok();
    let lines = hd.lines();
    assert_eq!(lines.len(), 7, "{lines:#?}");
    assert_eq!(lines[..3], after_start[..3]);
    // startContainer runs in the init before its execve; `start` runs
    // poststart once the init has exec'd; the program waits for poststart.
    assert_eq!(
        lines[3..5],
        [
            format!("startContainer created {pid} {ctr_ns}"),
            format!("poststart running {pid} {host_ns}"),
        ],
        "{lines:#?}"
    );
    assert_eq!(lines[5], "program", "{lines:#?}");
    assert_eq!(lines[6], format!("poststop stopped 0 {host_ns}"));
    assert_eq!(after_start.len(), 6, "poststop ran before delete");
    assert!(rt.ids().is_empty());
    assert!(cgroup_gone(&cg));
}

#[test]
fn args_argv0_and_only_the_given_env() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let hd = HookDir::new();
    let out_file = hd.path().join("args");
    // busybox picks its applet from argv0: "sh" proves argv0 is args[0].
    // /proc/$$/environ is the environment the runtime gave the hook.
    let script = format!(
        "echo \"$0|$1|$2|$(tr '\\0' ' ' < /proc/$$/environ)\" > {}",
        out_file.display()
    );
    let mut b = bundle(&hd, &["true"], &cgroup_name("args"));
    b.edit(|c| {
        c["hooks"] = json!({"createRuntime": [{
            "path": "/bin/busybox",
            "args": ["sh", "-c", script, "zero", "one two", "three"],
            "env": ["FOO=bar", "X=1"],
        }]});
    });
    let out = rt.create(&b, "hkargs", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "zero|one two|three|FOO=bar X=1 \n"
    );
    rt.run(&["delete", "--force", "hkargs"]).ok();
}

#[test]
fn timeout_kills_the_hook_and_fails_create_leaving_nothing() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let hd = HookDir::new();
    let cg = cgroup_name("timeout");
    let mut b = bundle(&hd, &["sleep", "97.531"], &cg);
    b.edit(|c| {
        c["hooks"] = json!({
            "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "13.579"], "timeout": 1}],
            "poststop": [hd.hook("poststop")],
        });
    });
    let t = std::time::Instant::now();
    let out = rt.create(&b, "hkto", &[]);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("createRuntime hook /bin/sleep timed out after 1s"),
        "{out:?}"
    );
    assert!(rt.ids().is_empty(), "state dir left: {:?}", rt.ids());
    assert!(!process_with_arg("13.579"), "hook left running");
    assert!(!process_with_arg("97.531"), "container init left running");
    assert!(cgroup_gone(&cg), "cgroup {cg} left");
    assert_eq!(
        hd.lines(),
        vec![format!("poststop stopped 0 {}", mnt_ns("self"))]
    );
}

/// A failing prestart, createRuntime or createContainer hook: create exits
/// 1 naming the hook and its status, nothing is left, and poststop runs.
#[test]
fn failing_create_hooks_fail_create_and_run_poststop() {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let Some(rt) = Rtctr::for_root_test() else {
            return;
        };
        let hd = HookDir::new();
        let cg = cgroup_name(kind);
        let mut b = bundle(&hd, &["sleep", "86.420"], &cg);
        b.edit(|c| {
            c["hooks"] = json!({
                kind: [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}],
                "poststop": [hd.hook("poststop")],
            });
        });
        let out = rt.create(&b, "hkfail", &[]);
        assert_eq!(out.code, 1, "{kind}: {out:?}");
        assert!(
            out.stderr
                .contains(&format!("{kind} hook /bin/sh failed: exit status: 3: nope")),
            "{kind}: {out:?}"
        );
        assert!(rt.ids().is_empty(), "{kind}: state left");
        assert!(!process_with_arg("86.420"), "{kind}: init left");
        assert!(cgroup_gone(&cg), "{kind}: cgroup left");
        assert_eq!(
            hd.lines(),
            vec![format!("poststop stopped 0 {}", mnt_ns("self"))],
            "{kind}"
        );
    }
}

/// startContainer runs in the init after `start` released it (as in
/// runc): `start` has already returned 0, the init reports the failure on
/// the container's stderr and exits without running the program; the
/// container is stopped, and delete runs poststop.
#[test]
fn failing_start_container_hook_stops_the_container() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let hd = HookDir::new();
    let prog = format!("echo program >> {}", hd.log().display());
    let mut b = bundle(&hd, &["sh", "-c", &prog], &cgroup_name("sc"));
    b.edit(|c| {
        c["hooks"] = json!({
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}],
            "poststop": [hd.hook("poststop")],
        });
    });
    let out = rt.create(&b, "hksc", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    rt.run(&["start", "hksc"]).ok();
    rt.wait_status("hksc", "stopped");
    let err = std::fs::read_to_string(b.path().join("hksc.err")).unwrap();
    assert!(
        err.contains("startContainer hook /bin/sh failed: exit status: 4"),
        "{err}"
    );
    rt.run(&["delete", "hksc"]).ok();
    assert_eq!(
        hd.lines(),
        vec![format!("poststop stopped 0 {}", mnt_ns("self"))],
        "the program must not run"
    );
}

#[test]
fn failing_poststart_and_poststop_hooks_only_warn() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let hd = HookDir::new();
    let mut b = bundle(&hd, &["sleep", "60"], &cgroup_name("warn"));
    let fail = json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]});
    b.edit(|c| {
        c["hooks"] = json!({
            "poststart": [fail, hd.hook("poststart")],
            "poststop": [fail, hd.hook("poststop")],
        });
    });
    assert_eq!(rt.create(&b, "hkw", &[]).code, 0);
    let out = rt.run(&["start", "hkw"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("poststart hook /bin/sh failed"),
        "{out:?}"
    );
    assert_eq!(rt.status("hkw").as_deref(), Some("running"));
    rt.run(&["kill", "hkw", "KILL"]).ok();
    rt.wait_status("hkw", "stopped");
    let out = rt.run(&["delete", "hkw"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("poststop hook /bin/sh failed"),
        "{out:?}"
    );
    assert!(rt.ids().is_empty());
    // "the remaining hooks and lifecycle continue": the hook after the
    // failing one still runs.
    let lines = hd.lines();
    assert!(
        lines.iter().any(|l| l.starts_with("poststart running")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("poststop stopped")),
        "{lines:?}"
    );
}
