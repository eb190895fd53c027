//! Helpers for the root integration tests: a uniquely named test cgroup that
//! is destroyed on drop, and children parked until the test releases them.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rtctr_cgroups::{Cgroup, Layout};

pub use rtctr_test_support::{loud, require_root};

/// Why these tests need root, for [`require_root`]'s message.
pub const NEEDS_ROOT: &str = "creates cgroups";

/// A cgroup at `/rtctr-test-<pid>-<name>/<sub>`; the whole test tree is
/// removed (with its processes killed) when dropped.
pub struct TestCg {
    pub cg: Cgroup,
    top: Cgroup,
}

impl TestCg {
    pub fn new(name: &str, sub: &str) -> TestCg {
        let top_path = format!("/rtctr-test-{}-{name}", std::process::id());
        let top = Cgroup::resolve(Some(Path::new(&top_path)), "x", false).unwrap();
        let cg = Cgroup::resolve(Some(&Path::new(&top_path).join(sub)), "x", false).unwrap();
        TestCg { cg, top }
    }

    pub fn top_dirs(&self) -> Vec<PathBuf> {
        self.top.dirs.iter().map(|(_, d)| d.clone()).collect()
    }
}

impl Drop for TestCg {
    fn drop(&mut self) {
        let _ = self.top.destroy_killing();
    }
}

/// The file for a setting: `v1` in the v1 hierarchy of `ctrl`, else `v2` in
/// the cgroup2 directory.
pub fn kernel_file(cg: &Cgroup, ctrl: &str, v1: &str, v2: &str) -> PathBuf {
    match cg.v1_dir(ctrl) {
        Some(d) => d.join(v1),
        None => cg.unified_dir().expect("a cgroup2 dir").join(v2),
    }
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Whether the controller exists for this cgroup (v1 hierarchy or enabled in cgroup2).
pub fn has_controller(cg: &Cgroup, v1: &str, v2: &str) -> bool {
    if cg.v1_dir(v1).is_some() {
        return true;
    }
    cg.unified_dir()
        .and_then(|d| std::fs::read_to_string(d.join("cgroup.controllers")).ok())
        .is_some_and(|s| s.split_whitespace().any(|c| c == v2))
}

/// True when every (v1 name, cgroup2 name) controller is there; otherwise
/// says loudly that `test` skips.
pub fn require_controllers(test: &str, cg: &Cgroup, ctrls: &[(&str, &str)]) -> bool {
    let missing: Vec<&str> = ctrls
        .iter()
        .filter(|(v1, v2)| !has_controller(cg, v1, v2))
        .map(|c| c.1)
        .collect();
    if !missing.is_empty() {
        loud(&format!(
            "SKIPPED {test}: controllers {missing:?} not available ({})",
            describe(cg)
        ));
        return false;
    }
    true
}

/// A shell that waits for a line on stdin before running `script`, so the
/// test can move it into a cgroup first.
pub struct Parked {
    pub child: Child,
}

impl Parked {
    pub fn spawn(script: &str) -> Parked {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read go; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Parked { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Lets the script run and returns its stdout and exit status.
    pub fn release(mut self) -> (String, std::process::ExitStatus) {
        self.child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let out = self.child.wait_with_output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status,
        )
    }
}

/// The layout name, for messages.
pub fn describe(cg: &Cgroup) -> String {
    let keys: Vec<&str> = cg.dirs.iter().map(|(k, _)| k.as_str()).collect();
    format!("{:?} {keys:?}", cg.layout)
}

pub fn is_v1_only(cg: &Cgroup) -> bool {
    cg.layout == Layout::V1
}

/// utime+stime of `pid` in clock ticks.
pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}
