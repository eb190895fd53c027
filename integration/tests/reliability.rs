//! Defects found by probing rtctr as an attacker or an unlucky user would:
//! each test fails on the code before its fix.

use rtctr_integration::*;
use serde_json::json;

/// `(uid_t)-1` means "unchanged" to setresuid: a container asking for
/// uid 4294967295 ran as root with the config's capabilities.
#[test]
fn uid_minus_one_is_refused_not_run_as_root() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    for (field, value) in [
        ("uid", json!(4294967295u32)),
        ("gid", json!(4294967295u32)),
        ("additionalGids", json!([4294967295u32])),
    ] {
        let mut b = Bundle::new(&["id", "-u"]);
        b.edit(|c| c["process"]["user"][field] = value.clone());
        let out = rt.run_bundle(&b, "uid");
        assert_eq!(out.code, 1, "{field}: {out:?}");
        assert!(
            out.stderr.contains(&format!("process.user.{field}"))
                && out.stderr.contains("is out of range (0-2147483647)"),
            "{field}: {out:?}"
        );
        assert_eq!(out.stdout, "", "{field}: the container ran");
        assert!(rt.ids().is_empty());
    }
    // exec --user takes the same check.
    let b = Bundle::new(&["sleep", "60"]);
    rt.create(&b, "uidx", &[]).ok();
    rt.run(&["start", "uidx"]).ok();
    let out = rt.run(&["exec", "--user", "4294967295", "uidx", "id", "-u"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("user.uid: 4294967295 is out of range"),
        "{out:?}"
    );
    assert_eq!(out.stdout, "");
    rt.run(&["delete", "--force", "uidx"]).ok();
}

/// Annotations of about 64 KiB broke the parent/child channel ("EOF while
/// parsing"), and from about 210 KiB "Message too long"; hooks got their
/// state through a pipe that holds 1 MiB at most. runc takes a 10 MB
/// config.json: so does rtctr, with every hook reading the whole state.
#[test]
fn a_ten_megabyte_config_goes_through_create_hooks_and_state() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    // Without hooks: only the parent/child channel carries the state.
    let mut plain = Bundle::new(&["true"]);
    plain.edit(|c| c["annotations"] = json!({"big": "p".repeat(300 << 10)}));
    let out = rt.run_bundle(&plain, "plain");
    assert_eq!(out.code, 0, "{out:?}");
    let mut b = Bundle::new(&["true"]);
    let count = |name: &str| {
        let out = b.path().join(name);
        json!({"path": "/bin/sh", "args": ["sh", "-c", format!("wc -c > {}", out.display())]})
    };
    let (runtime_hook, container_hook) = (count("runtime.n"), count("container.n"));
    let big = "a".repeat(10 << 20);
    b.edit(|c| {
        c["annotations"] = json!({"big": big, "small": "s"});
        c["hooks"] = json!({
            "createRuntime": [runtime_hook],
            "createContainer": [container_hook],
        });
    });
    let out = rt.create(&b, "big", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let state = rt.state("big").unwrap();
    assert_eq!(
        state["annotations"]["big"].as_str().map(str::len),
        Some(10 << 20)
    );
    for file in ["runtime.n", "container.n"] {
        let n: usize = std::fs::read_to_string(b.path().join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(n > 10 << 20, "{file}: the hook read {n} bytes");
    }
    rt.run(&["start", "big"]).ok();
    rt.wait_status("big", "stopped");
    rt.run(&["delete", "big"]).ok();
}

/// Opens a new FIFO's read end without blocking; a writer may come later.
fn fifo(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::fs::File) {
    let path = dir.join(name);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let reader = std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::OpenOptions::new().read(true),
        rustix::fs::OFlags::NONBLOCK.bits() as i32,
    )
    .open(&path)
    .unwrap();
    (path, reader)
}

/// Waits (up to `secs`) until every writer of the FIFO is gone.
fn hung_up_within(reader: &std::fs::File, secs: i64) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let ts = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let mut fds = [PollFd::new(reader, PollFlags::IN)];
    poll(&mut fds, Some(&ts)).unwrap() > 0 && fds[0].revents().contains(PollFlags::HUP)
}

/// A created container held the descriptors its caller passed to `create`
/// until `start`: a pipe given to create saw no end-of-file. Only stdio and
/// --preserve-fds reach the container now.
#[test]
fn a_created_container_holds_none_of_the_callers_descriptors() {
    use std::io::Read;
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sh", "-c", "echo held >&3"]);
    let (stray, stray_reader) = fifo(b.path(), "stray");
    let (kept, mut kept_reader) = fifo(b.path(), "kept");
    // fd 3 is preserved for the container; fd 5 is only the caller's.
    let err = b.path().join("create.err");
    let script = format!(
        "exec \"$@\" 3>{} 5>{} </dev/null >/dev/null 2>{}",
        kept.display(),
        stray.display(),
        err.display()
    );
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(rtctr_bin())
        .arg("--root")
        .arg(rt.root.path())
        .args(["create", "--preserve-fds", "1", "--bundle"])
        .arg(b.path())
        .arg("fds")
        .status()
        .unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(st.success(), "create: {st}: {stderr}");
    assert!(
        hung_up_within(&stray_reader, 10),
        "the created container still holds fd 5 of its caller"
    );
    rt.run(&["start", "fds"]).ok();
    rt.wait_status("fds", "stopped");
    let mut got = String::new();
    kept_reader.read_to_string(&mut got).unwrap();
    assert_eq!(
        got, "held\n",
        "--preserve-fds 1 kept fd 3 for the container"
    );
    rt.run(&["delete", "fds"]).ok();
}

/// procfs was mounted at wherever the image's `/proc` symlink pointed
/// (CVE-2019-16884 class: procfs on a path LSM rules do not expect).
/// procfs and sysfs now need an ordinary directory, as runc demands.
#[test]
fn procfs_is_never_mounted_through_a_symlink() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    for (what, dest, target) in [
        ("proc to /tmp/x", "proc", "/tmp/x"),
        ("dangling proc", "proc", "/nowhere"),
        ("sys to /tmp/y", "sys", "/tmp/y"),
    ] {
        let b = Bundle::with_own_rootfs(&["true"]);
        let rootfs = b.path().join("rootfs");
        let link = rootfs.join(dest);
        let _ = std::fs::remove_dir_all(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        std::fs::create_dir_all(rootfs.join("tmp/x")).unwrap();
        std::fs::create_dir_all(rootfs.join("tmp/y")).unwrap();
        let out = rt.run_bundle(&b, "plink");
        assert_eq!(out.code, 1, "{what}: {out:?}");
        assert!(
            out.stderr
                .contains("must be mounted on an ordinary directory, not through a symlink"),
            "{what}: {out:?}"
        );
        assert!(rt.ids().is_empty(), "{what}");
        assert!(!host_mounts_mention(&rootfs), "{what}: a mount stayed");
    }
}

/// Answers that named the wrong thing or nothing: a memory limit too low
/// for set-up ("exited during set-up without a message"), a missing bind
/// source (the destination was named), a relative hook path (looked up in
/// $PATH), and ids outside runc's set (which made `list` ambiguous).
#[test]
fn errors_name_what_is_wrong() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "oom",
            json!({"linux": {"resources": {"memory": {"limit": 65536}}}}),
            "OOM-killed during set-up: linux.resources.memory.limit 65536 bytes is too low",
        ),
        (
            "bind",
            json!({"mounts": [{"destination": "/data", "type": "bind", "source": "/no/such/source"}]}),
            "bind source /no/such/source: No such file or directory",
        ),
        (
            "hook",
            json!({"hooks": {"createRuntime": [{"path": "true"}]}}),
            "hooks.createRuntime[0].path: \"true\" is not an absolute path",
        ),
    ];
    for (what, patch, msg) in cases {
        let mut b = Bundle::new(&["true"]);
        b.edit(|c| merge(c, &patch));
        let out = rt.run_bundle(&b, what);
        assert_eq!(out.code, 1, "{what}: {out:?}");
        assert!(out.stderr.contains(msg), "{what}: {out:?}");
        assert!(rt.ids().is_empty(), "{what}");
    }
    let b = Bundle::new(&["true"]);
    for id in ["with space", "tab\tid", "ünï", "a:b"] {
        let out = rt.run_bundle(&b, id);
        assert_eq!(out.code, 1, "{id:?}: {out:?}");
        assert!(
            out.stderr
                .contains("only ASCII letters, digits, '_', '+', '-' and '.' may be used"),
            "{id:?}: {out:?}"
        );
    }
    assert!(rt.ids().is_empty());
}

/// Objects merge key by key; anything else replaces.
fn merge(into: &mut serde_json::Value, patch: &serde_json::Value) {
    match (into, patch) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (into, patch) => *into = patch.clone(),
    }
}

/// The traces a container `id` could leave, whatever `state` says.
fn traces(rt: &Rtctr, bundle: &Bundle, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(rt.root.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == id || name.starts_with(&format!("~{id}.")) {
            found.push(format!("state dir {name}"));
        }
    }
    for dir in expected_cgroup_dirs(id, None) {
        if dir.exists() {
            found.push(format!("cgroup {}", dir.display()));
        }
    }
    // The intermediate and the init are forks of `rtctr create` (same
    // command line); a dying one may take a moment.
    let needle = format!("{} {id}", bundle.path().display());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while process_with_arg(&needle) {
        if std::time::Instant::now() > deadline {
            found.push(format!("process {needle}"));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    found
}

/// SIGKILL of `rtctr create` once `<root>/<id>/` existed but before its
/// state did left a container `state` denied, `create` said existed, and
/// `delete --force` left with its cgroups and, now and then, a live init.
/// Killed at any instant now, a create leaves no trace, or a container
/// that `state` shows and `delete --force` removes completely.
#[test]
fn a_create_killed_at_any_instant_leaves_nothing_or_a_deletable_container() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sleep", "60"]);
    let create = |id: &str| {
        rt.cmd()
            .args(["create", "--bundle"])
            .arg(b.path())
            .arg(id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // Kills spread over one and a half times what a whole create takes here.
    let t = std::time::Instant::now();
    assert!(create("kill-probe").wait().unwrap().success());
    let span = t.elapsed().as_micros() as u64 * 3 / 2;
    rt.run(&["delete", "--force", "kill-probe"]).ok();
    const KILLS: u64 = 60;
    let (mut none, mut whole) = (0, 0);
    for i in 0..KILLS {
        let id = format!("kill-{i:03}");
        let mut child = create(&id);
        std::thread::sleep(std::time::Duration::from_micros(span * i / KILLS));
        child.kill().unwrap();
        child.wait().unwrap();
        if rt.state(&id).is_some() {
            whole += 1;
            let out = rt.run(&["delete", "--force", &id]);
            assert_eq!(out.code, 0, "{id}: {out:?}");
        } else {
            none += 1;
            // Only an inert ~<id>.<pid> may be there (killed between its
            // mkdir and its rename: no cgroup or process exists yet), and
            // delete --force removes it.
            let left = traces(&rt, &b, &id);
            assert!(
                left.iter().all(|t| t.starts_with("state dir ~")),
                "{id}: {left:?}"
            );
            rt.run(&["delete", "--force", &id]).ok();
        }
        let left = traces(&rt, &b, &id);
        assert!(left.is_empty(), "{id}: {left:?}");
    }
    eprintln!("{KILLS} kills over {span} µs: {none} left no container, {whole} a deletable one");
    assert!(
        none > 0 && whole > 0,
        "the kills missed a window: {none} / {whole}"
    );
}

/// Found by the soak: a `start` killed after it wrote the exec fifo left a
/// running container that `state` called "created", that `start` said had
/// no init, and that a plain `delete` killed. The init released, `state`
/// says running; a `start` then finishes the killed one's work (removes
/// the fifo, runs poststart hooks) and succeeds, as the soak expects of a
/// container that `state` showed as created a moment before.
#[test]
fn a_start_killed_after_releasing_the_init_leaves_a_running_container() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let b = Bundle::new(&["sh", "-c", "echo started; exec sleep 3600"]);
    rt.create(&b, "half", &[]).ok();
    assert_eq!(rt.status("half").as_deref(), Some("created"));
    // What a start killed right after its write leaves: the byte written,
    // nothing else done.
    let fifo = rt.root.path().join("half/exec.fifo");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"0"))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Rtctr::output_of(&b, "half") != "started\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the program never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    rt.wait_status("half", "running");
    let out = rt.run(&["start", "half"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!fifo.exists());
    let out = rt.run(&["start", "half"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("it is running"), "{out:?}");
    let out = rt.run(&["delete", "half"]);
    assert_eq!(
        out.code, 1,
        "a plain delete must not kill a running container: {out:?}"
    );
    rt.run(&["delete", "--force", "half"]).ok();
}

/// Found by the soak: under a subreaper that reaps at once (containerd's
/// shim, conmon), an init that failed early was reaped before `create` read
/// its start time, and `create` said "read start time of init: ... /proc/N"
/// instead of the init's own error.
#[test]
fn an_init_reaped_at_once_still_reports_its_own_error() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}))
    });
    let reaper = env!("CARGO_BIN_EXE_reaper");
    for i in 0..40 {
        let out = std::process::Command::new(reaper)
            .arg(rtctr_bin())
            .arg("--root")
            .arg(rt.root.path())
            .args(["create", "--bundle"])
            .arg(b.path())
            .arg(format!("reaped-{i}"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{i}: {stderr}");
        assert!(
            stderr.contains("mounts[7]: mount /x: No such device"),
            "{i}: {stderr}"
        );
    }
    assert!(rt.ids().is_empty());
}
