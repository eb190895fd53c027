//! The [`Rtctr`] guard itself: it finds where rtctr puts a container's
//! cgroup the way rtctr does, and when dropped it reports (and removes)
//! what a container left behind, instead of passing silently.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use rtctr_integration::*;
use serde_json::{json, Value};

/// The cgroup directories a container's state.json records.
fn state_cgroup_dirs(rt: &Rtctr, id: &str) -> BTreeSet<PathBuf> {
    let state: Value =
        serde_json::from_slice(&std::fs::read(rt.root.path().join(id).join("state.json")).unwrap())
            .unwrap();
    state["cgroup"]["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p[1].as_str().unwrap()))
        .collect()
}

#[test]
fn expected_cgroup_dirs_are_where_rtctr_puts_them() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let mut b = Bundle::new(&["sleep", "60"]);
    let id = format!("leak-dirs-{}", std::process::id());
    rt.create(&b, &id, &[]).ok();
    let want: BTreeSet<PathBuf> = expected_cgroup_dirs(&id, None).into_iter().collect();
    assert!(!want.is_empty());
    assert_eq!(state_cgroup_dirs(&rt, &id), want, "default cgroup path");
    rt.run(&["delete", "--force", &id]).ok();

    let path = format!("/rtctr-it-leak-{}/c", std::process::id());
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    rt.create(&b, &id, &[]).ok();
    let want: BTreeSet<PathBuf> = expected_cgroup_dirs(&id, Some(&path)).into_iter().collect();
    assert_eq!(state_cgroup_dirs(&rt, &id), want, "cgroupsPath {path}");
    rt.run(&["delete", "--force", &id]).ok();
    // The parent rtctr made for the absolute path is not rtctr's to remove.
    for d in want {
        let _ = std::fs::remove_dir(d.parent().unwrap());
    }
}

/// A delete that fails half-way (its "cgroup" is a plain directory that
/// cannot be removed) leaves the state directory, the mounts under a
/// rootfs without a mount namespace and the cgroup; a container run to its
/// end leaves a cgroup directory. The guard reports each, and removes what
/// it can.
#[test]
fn the_guard_reports_what_containers_left() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let spare = tempfile::Builder::new()
        .prefix("rtctr-leak-")
        .tempdir()
        .unwrap();

    // A container run to its end, whose cgroup then "stays".
    let b = Bundle::new(&["true"]);
    let made = format!("leak-made-{}", std::process::id());
    rt.run_bundle(&b, &made).ok();
    let made_cg = expected_cgroup_dirs(&made, None).remove(0);
    std::fs::create_dir(&made_cg).unwrap();

    // A container whose delete will fail: state from a real one, edited.
    let real = format!("leak-real-{}", std::process::id());
    let b = Bundle::new(&["true"]);
    rt.create(&b, &real, &[]).ok();
    let mut state: Value = serde_json::from_slice(
        &std::fs::read(rt.root.path().join(&real).join("state.json")).unwrap(),
    )
    .unwrap();
    rt.run(&["delete", &real]).ok();
    let rootfs = spare.path().join("rootfs");
    let mnt = rootfs.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "leak-check"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    let cg = spare.path().join("cgroup");
    std::fs::create_dir(&cg).unwrap();
    std::fs::write(cg.join("keep"), "").unwrap();
    state["id"] = json!("fake");
    state["pid"] = json!(0);
    state["rootfs"] = json!(rootfs);
    state["host_mounts"] = json!(true);
    state["cgroup"]["dirs"] = json!([["unified", cg]]);
    state["cgroup"]["mount_points"] = json!([spare.path()]);
    let fake = rt.root.path().join("fake");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(fake.join("state.json"), state.to_string()).unwrap();

    let root = rt.root.path().to_path_buf();
    let err = std::panic::catch_unwind(AssertUnwindSafe(move || drop(rt)))
        .expect_err("the guard must fail the test");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_else(|| format!("{err:?}"));
    let fake_line = |what: &str| {
        msg.lines()
            .any(|l| l.contains("container \"fake\"") && l.contains(what))
    };
    assert!(fake_line("state directory"), "{msg}");
    assert!(
        fake_line(&format!(
            "mounts left under its rootfs {}",
            rootfs.display()
        )),
        "{msg}"
    );
    assert!(
        fake_line(&format!(
            "cgroup {} left after `delete --force`",
            cg.display()
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "container {made:?}: cgroup {} left after the test",
            made_cg.display()
        )),
        "{msg}"
    );
    assert!(!msg.contains(&real), "{real} left nothing: {msg}");
    // What the guard could remove, it removed.
    assert!(mounts_under(&rootfs).is_empty());
    assert!(!made_cg.exists());
    assert!(!root.exists());
}
