//! Operations on one cgroup directory: creating parents, moving and listing
//! processes, freezing, signalling, removing. Each takes the directory it
//! acts on.

use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{fsio, sys, Error, Result};

/// How long freeze/thaw may take before we give up.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// The freezer state, as `runc pause`/`resume` and `state` need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    Thawed,
    Freezing,
    Frozen,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directories from the mount point down to `dir`'s parent.
fn ancestors(mount_point: &Path, dir: &Path) -> Vec<PathBuf> {
    let Ok(rel) = dir.strip_prefix(mount_point) else {
        return Vec::new();
    };
    let mut out = vec![mount_point.to_path_buf()];
    let mut cur = mount_point.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(c);
        out.push(cur.clone());
    }
    out
}

/// cgroup2: makes `dir`'s ancestors and enables in each of them every
/// controller it has, so `dir` gets them. Controllers the kernel refuses
/// (e.g. a parent with processes) are skipped; `apply` then reports the
/// missing controller if the config needs it.
pub fn enable_controllers(mount_point: &Path, dir: &Path) -> Result<()> {
    for level in ancestors(mount_point, dir) {
        if !level.exists() {
            std::fs::create_dir(&level).or_else(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(io_err(&level)(e)),
            })?;
        }
        let avail = fsio::read(&level, "cgroup.controllers")?;
        let enabled = fsio::read(&level, "cgroup.subtree_control")?;
        let missing: Vec<String> = avail
            .split_whitespace()
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .map(|c| format!("+{c}"))
            .collect();
        if missing.is_empty() {
            continue;
        }
        if fsio::write(&level, "cgroup.subtree_control", &missing.join(" ")).is_err() {
            for m in &missing {
                let _ = fsio::write(&level, "cgroup.subtree_control", m);
            }
        }
    }
    Ok(())
}

/// v1 cpuset: a new cgroup starts with empty cpus/mems and refuses tasks;
/// copy them from the parent at every level below the mount point.
pub fn init_cpuset(mount_point: &Path, dir: &Path) -> Result<()> {
    let mut levels = ancestors(mount_point, dir);
    levels.push(dir.to_path_buf());
    for pair in levels.windows(2) {
        let (parent, child) = (&pair[0], &pair[1]);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fsio::read(child, file)?.trim().is_empty() {
                let v = fsio::read(parent, file)?;
                fsio::write(child, file, v.trim())?;
            }
        }
    }
    Ok(())
}

/// Writes `pid` to cgroup.procs; EINVAL (a task still being forked) is retried.
pub fn add_pid(dir: &Path, pid: i32) -> Result<()> {
    retry_einval(|| fsio::write(dir, "cgroup.procs", &pid.to_string()))
}

/// Runs a cgroup file write, again (5 times at most, 30 ms apart) while it
/// fails with EINVAL: a task being forked cannot be moved yet.
pub fn retry_einval(mut write: impl FnMut() -> Result<()>) -> Result<()> {
    let mut tries = 0;
    loop {
        match write() {
            Err(Error::Write { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) && tries < 5 =>
            {
                tries += 1;
                sleep(Duration::from_millis(30));
            }
            r => return r,
        }
    }
}

/// Every pid in `dir` and below; a missing `dir` has none.
pub fn pids_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Some(procs) = fsio::read_opt(&d, "cgroup.procs")? else {
            continue;
        };
        pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        for entry in std::fs::read_dir(&d).map_err(io_err(&d))? {
            let entry = entry.map_err(io_err(&d))?;
            if entry.file_type().map_err(io_err(&d))?.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Polls `check` with a growing sleep until it is true or the timeout passes.
fn poll(mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    let start = Instant::now();
    let mut nap = Duration::from_micros(100);
    loop {
        if check()? {
            return Ok(true);
        }
        if start.elapsed() > FREEZE_TIMEOUT {
            return Ok(false);
        }
        sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

pub fn state_v1(dir: &Path) -> Result<FreezerState> {
    let s = fsio::read(dir, "freezer.state")?;
    match s.trim() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => Ok(FreezerState::Frozen),
        other => Err(Error::Parse {
            path: dir.join("freezer.state"),
            value: other.to_string(),
        }),
    }
}

pub fn state_v2(dir: &Path) -> Result<FreezerState> {
    let want = fsio::read_opt(dir, "cgroup.freeze")?.is_some_and(|s| s.trim() == "1");
    let frozen = fsio::read_key(dir, "cgroup.events", "frozen")? == Some(1);
    Ok(match (want, frozen) {
        (_, true) => FreezerState::Frozen,
        (true, false) => FreezerState::Freezing,
        (false, false) => FreezerState::Thawed,
    })
}

/// v1: writes FROZEN (again, while FREEZING) until the state reads FROZEN.
pub fn freeze_v1(dir: &Path, frozen: bool) -> Result<()> {
    let (value, want) = if frozen {
        ("FROZEN", FreezerState::Frozen)
    } else {
        ("THAWED", FreezerState::Thawed)
    };
    let done = poll(|| {
        fsio::write(dir, "freezer.state", value)?;
        Ok(state_v1(dir)? == want)
    })?;
    if done {
        return Ok(());
    }
    if frozen {
        let _ = fsio::write(dir, "freezer.state", "THAWED");
    }
    Err(Error::Timeout {
        what: if frozen { "freezing" } else { "thawing" },
        path: dir.to_path_buf(),
    })
}

/// v2: writes cgroup.freeze and waits for cgroup.events to agree.
pub fn freeze_v2(dir: &Path, frozen: bool) -> Result<()> {
    fsio::write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let want = if frozen { Some(1) } else { Some(0) };
    if poll(|| Ok(fsio::read_key(dir, "cgroup.events", "frozen")? == want))? {
        return Ok(());
    }
    if frozen {
        let _ = fsio::write(dir, "cgroup.freeze", "0");
    }
    Err(Error::Timeout {
        what: if frozen { "freezing" } else { "thawing" },
        path: dir.to_path_buf(),
    })
}

/// Signals every pid; pids that are already gone are fine.
pub fn signal_all(pids: &[i32], signal: i32) -> Result<()> {
    for &pid in pids {
        match sys::kill(pid, signal) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(source) => {
                return Err(Error::Io {
                    path: PathBuf::from(format!("/proc/{pid}")),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Removes `dir` and its child cgroups, depth first. EBUSY (tasks still
/// exiting) is retried with a short backoff until `deadline`; with `kill`,
/// what is left is SIGKILLed (after thawing) between tries. A missing
/// directory is fine.
///
/// The rmdir is tried first: a cgroup usually has no child cgroups, and
/// its files go with it. Only when it fails with EBUSY (a child cgroup,
/// or tasks still inside) or ENOTEMPTY (a plain directory, in tests) is
/// the directory listed, once, and the children removed before retrying.
pub fn remove_tree(dir: &Path, kill: bool, deadline: Instant) -> Result<()> {
    let mut children_removed = false;
    let mut nap = Duration::from_millis(1);
    loop {
        let err = match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => e,
        };
        match err.raw_os_error() {
            Some(libc::EBUSY | libc::ENOTEMPTY) if !children_removed => {
                remove_children(dir, kill, deadline)?;
                children_removed = true;
            }
            Some(libc::EBUSY) if Instant::now() < deadline => {
                if kill {
                    unfreeze(dir);
                    let pids = fsio::read_opt(dir, "cgroup.procs")?.unwrap_or_default();
                    let pids: Vec<i32> = pids.lines().filter_map(|l| l.parse().ok()).collect();
                    signal_all(&pids, libc::SIGKILL)?;
                }
                sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(50));
            }
            _ => return Err(io_err(dir)(err)),
        }
    }
}

/// [`remove_tree`] on each subdirectory of `dir`; a missing `dir` has none.
fn remove_children(dir: &Path, kill: bool, deadline: Instant) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        if entry.file_type().map_err(io_err(dir))?.is_dir() {
            remove_tree(&entry.path(), kill, deadline)?;
        }
    }
    Ok(())
}

/// Best-effort thaw so SIGKILLed tasks can exit (v1 frozen tasks cannot).
fn unfreeze(dir: &Path) {
    if let Ok(Some(s)) = fsio::read_opt(dir, "freezer.state") {
        if s.trim() != "THAWED" {
            let _ = fsio::write(dir, "freezer.state", "THAWED");
        }
    }
    if let Ok(Some(s)) = fsio::read_opt(dir, "cgroup.freeze") {
        if s.trim() == "1" {
            let _ = fsio::write(dir, "cgroup.freeze", "0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_stop_above_dir() {
        let a = ancestors(Path::new("/m"), Path::new("/m/a/b/c"));
        assert_eq!(a, [Path::new("/m"), Path::new("/m/a"), Path::new("/m/a/b")]);
        assert_eq!(
            ancestors(Path::new("/m"), Path::new("/m/c")),
            [Path::new("/m")]
        );
        assert!(ancestors(Path::new("/m"), Path::new("/x/c")).is_empty());
    }

    #[test]
    fn cpuset_copied_from_parent_when_empty() {
        let d = tempfile::tempdir().unwrap();
        let mp = d.path();
        let dir = mp.join("a/b");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(mp.join("cpuset.cpus"), "0-3\n").unwrap();
        std::fs::write(mp.join("cpuset.mems"), "0\n").unwrap();
        std::fs::write(mp.join("a/cpuset.cpus"), "\n").unwrap();
        std::fs::write(mp.join("a/cpuset.mems"), "0\n").unwrap();
        std::fs::write(dir.join("cpuset.cpus"), "").unwrap();
        std::fs::write(dir.join("cpuset.mems"), "").unwrap();
        init_cpuset(mp, &dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(mp.join("a/cpuset.cpus")).unwrap(),
            "0-3"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("cpuset.cpus")).unwrap(),
            "0-3"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("cpuset.mems")).unwrap(),
            "0"
        );
        // The non-empty value at "a" was left alone (still has its newline).
        assert_eq!(
            std::fs::read_to_string(mp.join("a/cpuset.mems")).unwrap(),
            "0\n"
        );
    }

    #[test]
    fn enables_missing_controllers_in_ancestors() {
        let d = tempfile::tempdir().unwrap();
        let mp = d.path();
        std::fs::write(mp.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(mp.join("cgroup.subtree_control"), "memory\n").unwrap();
        std::fs::create_dir(mp.join("a")).unwrap();
        std::fs::write(mp.join("a/cgroup.controllers"), "memory\n").unwrap();
        std::fs::write(mp.join("a/cgroup.subtree_control"), "memory\n").unwrap();
        enable_controllers(mp, &mp.join("a/c")).unwrap();
        assert_eq!(
            std::fs::read_to_string(mp.join("cgroup.subtree_control")).unwrap(),
            "+cpu +pids"
        );
        assert_eq!(
            std::fs::read_to_string(mp.join("a/cgroup.subtree_control")).unwrap(),
            "memory\n"
        );
    }

    #[test]
    fn freezer_states_parse() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("freezer.state"), "FREEZING\n").unwrap();
        assert_eq!(state_v1(d.path()).unwrap(), FreezerState::Freezing);
        std::fs::write(d.path().join("cgroup.freeze"), "1\n").unwrap();
        std::fs::write(d.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert_eq!(state_v2(d.path()).unwrap(), FreezerState::Freezing);
        std::fs::write(d.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert_eq!(state_v2(d.path()).unwrap(), FreezerState::Frozen);
    }

    #[test]
    fn pids_are_collected_recursively() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub/deeper")).unwrap();
        std::fs::write(d.path().join("cgroup.procs"), "10\n3\n").unwrap();
        std::fs::write(d.path().join("sub/cgroup.procs"), "7\n").unwrap();
        std::fs::write(d.path().join("sub/deeper/cgroup.procs"), "3\n").unwrap();
        assert_eq!(pids_recursive(d.path()).unwrap(), [3, 7, 10]);
        assert!(pids_recursive(&d.path().join("missing"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn remove_tree_is_depth_first_and_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("top");
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::fs::create_dir_all(top.join("c")).unwrap();
        remove_tree(&top, false, Instant::now()).unwrap();
        assert!(!top.exists());
        remove_tree(&top, false, Instant::now()).unwrap();
    }
}
