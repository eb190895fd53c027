//! cgroup management for rtctr: one interface, with cgroup v1, v2 and hybrid
//! hosts behind it.
//!
//! The runtime uses it in this order:
//! 1. [`Cgroup::resolve`] turns `linux.cgroupsPath` into one directory per
//!    hierarchy (pure: reads /proc/self/mountinfo and /proc/self/cgroup once);
//! 2. [`Cgroup::create`] makes the directories and [`Cgroup::apply`] writes
//!    the resources (also used by `update`);
//! 3. [`Cgroup::add_process`] moves a process in; a runtime's own forked
//!    child enters with [`Cgroup::join_self`] instead, after being born in
//!    the cgroup2 directory ([`Cgroup::unified_dir`], clone3
//!    `CLONE_INTO_CGROUP`) — both without the kernel's global threadgroup
//!    lock, whose write side waits for an RCU grace period (5–13 ms on an
//!    idle host);
//! 4. later commands re-open it from the state file (it is `Serialize`) to
//!    freeze, list pids, read stats, and finally [`Cgroup::destroy`] it.
//!
//! Module map: `detect` (mountinfo, cgroupsPath), `plan` (resources → file
//! writes), `devices` (v1 rules, v2 eBPF program), `sys` (the only unsafe:
//! bpf(2)), `stats` (runc's `events --stats` shape), `ops` (processes,
//! freezer, kill, destroy), `update` (merging `rtctr update`'s input).
//!
//! Device rules: [`Cgroup::apply`] applies `resources.devices` exactly as
//! given. At create, runc appends its default allow-list and the
//! `linux.devices` nodes after the config's rules: build that list with
//! [`devices::create_rules`] and put it in `resources.devices` before
//! calling `apply`, or a typical config's "deny all" also denies /dev/null.

#![deny(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

mod detect;
pub mod devices;
mod fsio;
mod ops;
mod plan;
pub mod stats;
#[allow(unsafe_code)]
mod sys;
pub mod update;

pub use detect::UNIFIED;
pub use fsio::read_kernel_file;
pub use ops::FreezerState;
pub use plan::{blkio_weight_to_io, pids_value, shares_to_weight, swap_to_v2};
pub use stats::Stats;

/// Errors name the file or directory that failed, and the value written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup: writing {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("cgroup: wrote {value:?} to {path} but the kernel kept {got:?}")]
    NotApplied {
        path: PathBuf,
        value: String,
        got: String,
    },
    #[error("cgroup: cannot parse {value:?} in {path}")]
    Parse { path: PathBuf, value: String },
    #[error(
        "cgroup: {setting} is set but the {controller} controller is not available on this host"
    )]
    ControllerMissing { controller: String, setting: String },
    #[error("cgroup: invalid {setting}: {reason}")]
    InvalidValue {
        setting: &'static str,
        reason: String,
    },
    #[error("cgroup: unified[{key:?}] needs cgroup v2, but this host has only cgroup v1")]
    UnifiedOnV1 { key: String },
    #[error("cgroup: invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: PathBuf, reason: &'static str },
    #[error("cgroup: the systemd cgroup driver needs a running systemd ({path} is missing)")]
    SystemdUnavailable { path: PathBuf },
    #[error("cgroup: no cgroup filesystem is mounted (checked /proc/self/mountinfo)")]
    NoCgroupMounts,
    #[error("cgroup: bpf {op} for {path}: {source}")]
    Bpf {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup: {what} in {path} did not finish in time")]
    Timeout { what: &'static str, path: PathBuf },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The cgroup layout of the running host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    V1,
    Hybrid,
    V2,
}

/// Who manages the cgroup. Only cgroupfs exists; `Systemd` is the seam for a
/// D-Bus driver (until then the expanded `slice/unit` path is managed
/// through cgroupfs directly, when systemd is running).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Driver {
    #[default]
    Cgroupfs,
    Systemd {
        slice: String,
        unit: String,
    },
}

/// A container's cgroup: the directory in every hierarchy it lives in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    pub layout: Layout,
    /// (controller list, or [`UNIFIED`] for cgroup2; absolute directory).
    /// v1 keys are the mount's controllers: "cpu", "cpu,cpuacct", "name=systemd".
    pub dirs: Vec<(String, PathBuf)>,
    /// `mount_points[i]` is the mount point of the hierarchy of `dirs[i]`.
    #[serde(default)]
    pub mount_points: Vec<PathBuf>,
    #[serde(default)]
    pub driver: Driver,
}

/// What the runtime needs to give the container a `/sys/fs/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupMount {
    /// Where to mount, relative to the container's /sys/fs/cgroup: "cpu",
    /// "systemd", "unified", or "" for a pure-v2 host (mount on /sys/fs/cgroup).
    pub name: String,
    /// "cgroup" or "cgroup2".
    pub fstype: String,
    /// Mount data: "cpu,cpuacct", "name=systemd"; "" for cgroup2.
    pub options: String,
    /// The container's cgroup directory on the host (for a bind mount).
    pub host_dir: PathBuf,
    /// For co-mounted v1 controllers, the symlinks runc adds next to the
    /// mount ("cpu" and "cpuacct" → "cpu,cpuacct").
    pub symlinks: Vec<String>,
}

const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_CGROUP: &str = "/proc/self/cgroup";
const SYSTEMD_RUNNING: &str = "/run/systemd/system";

fn read_proc(path: &str) -> Result<String> {
    fsio::read_kernel_path(Path::new(path)).map_err(|source| Error::Io {
        path: PathBuf::from(path),
        source,
    })
}

impl Cgroup {
    /// Resolves where the cgroup lives, without creating anything.
    ///
    /// runc semantics: an absolute `cgroups_path` is taken under each
    /// hierarchy's mount point, a relative one under the caller's own cgroup,
    /// and an absent one means the relative path `<id>`. With `systemd`,
    /// the path is `slice:prefix:name` (default `system.slice:rtctr:<id>`).
    pub fn resolve(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<Cgroup> {
        let mountinfo = read_proc(MOUNTINFO)?;
        let own = read_proc(PROC_CGROUP)?;
        Self::resolve_from(&mountinfo, &own, cgroups_path, id, systemd)
    }

    /// [`Cgroup::resolve`] on given /proc texts (no file access unless `systemd`).
    pub fn resolve_from(
        mountinfo: &str,
        proc_cgroup: &str,
        cgroups_path: Option<&Path>,
        id: &str,
        systemd: bool,
    ) -> Result<Cgroup> {
        let mounts = detect::parse_mountinfo(mountinfo);
        let layout = detect::layout_of(&mounts)?;
        let empty = cgroups_path.is_none_or(|p| p.as_os_str().is_empty());
        let (inner, driver) = if systemd {
            if !Path::new(SYSTEMD_RUNNING).exists() {
                return Err(Error::SystemdUnavailable {
                    path: PathBuf::from(SYSTEMD_RUNNING),
                });
            }
            let text = match cgroups_path {
                Some(p) if !empty => p.to_string_lossy().into_owned(),
                _ => format!(":rtctr:{id}"),
            };
            let sp = detect::SystemdPath::parse(&text)?;
            let driver = Driver::Systemd {
                slice: sp.slice.clone(),
                unit: sp.unit(),
            };
            (sp.cgroup_path()?, driver)
        } else {
            let inner = match cgroups_path {
                Some(p) if !empty => detect::check_path(p)?,
                _ => detect::check_path(Path::new(id))?,
            };
            if inner.as_os_str().is_empty() || inner == Path::new("/") {
                return Err(Error::InvalidPath {
                    path: cgroups_path.unwrap_or(Path::new(id)).to_path_buf(),
                    reason: "the container needs its own cgroup, not the root",
                });
            }
            (inner, Driver::Cgroupfs)
        };
        let own = detect::parse_proc_cgroup(proc_cgroup);
        let dirs = detect::dirs_for(&mounts, &own, &inner);
        Ok(Cgroup {
            layout,
            dirs,
            mount_points: mounts.into_iter().map(|m| m.mount_point).collect(),
            driver,
        })
    }

    /// For a rootless container: the part of the cgroup the caller may
    /// make, and the directories it may not. A hierarchy is kept when the
    /// directory, or else its nearest existing ancestor, is writable by the
    /// caller's effective ids (a delegated cgroup2 subtree); v1 hierarchies
    /// and undelegated cgroup2 trees belong to root and are left out.
    pub fn writable_part(&self) -> (Cgroup, Vec<PathBuf>) {
        let mut kept = Cgroup {
            dirs: Vec::new(),
            mount_points: Vec::new(),
            ..self.clone()
        };
        let mut left = Vec::new();
        for (i, (key, dir)) in self.dirs.iter().enumerate() {
            let mp = self.mount_point(i);
            let existing = dir.ancestors().find(|a| a.exists() || *a == mp);
            if existing.is_some_and(sys::may_write) {
                kept.dirs.push((key.clone(), dir.clone()));
                kept.mount_points.push(mp.to_path_buf());
            } else {
                left.push(dir.clone());
            }
        }
        (kept, left)
    }

    /// The cgroup2 directory (pure v2, or the unified tree of a hybrid host).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(k, _)| k == UNIFIED)
            .map(|(_, d)| d.as_path())
    }

    /// The v1 directory of `controller` ("memory", "name=systemd").
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(k, _)| k != UNIFIED && k.split(',').any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    fn mount_point(&self, i: usize) -> &Path {
        self.mount_points
            .get(i)
            .map(|p| p.as_path())
            .unwrap_or(Path::new("/"))
    }

    /// Makes the directory in every hierarchy. v1 cpuset directories get
    /// cpus/mems from their parent; on cgroup2 the available controllers
    /// are enabled in every ancestor's `cgroup.subtree_control`.
    pub fn create(&self) -> Result<()> {
        self.create_dirs(|_| true)
    }

    /// [`Cgroup::create`] in two steps: the cgroup2 directory (on a hybrid
    /// host), for a process to be cloned into, then the v1 hierarchies.
    pub fn create_unified(&self) -> Result<()> {
        self.create_dirs(|key| key == UNIFIED)
    }

    /// The second step: every hierarchy but cgroup2.
    pub fn create_v1(&self) -> Result<()> {
        self.create_dirs(|key| key != UNIFIED)
    }

    fn create_dirs(&self, which: impl Fn(&str) -> bool) -> Result<()> {
        for (i, (key, dir)) in self.dirs.iter().enumerate() {
            if !which(key) {
                continue;
            }
            let mp = self.mount_point(i);
            if key == UNIFIED {
                ops::enable_controllers(mp, dir)?;
            }
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?;
            if key.split(',').any(|c| c == "cpuset") {
                ops::init_cpuset(mp, dir)?;
            }
        }
        Ok(())
    }

    /// Where each controller is, for planning. Reads cgroup.controllers of
    /// the cgroup2 directory.
    fn targets(&self) -> Result<plan::Targets> {
        let mut t = plan::Targets::default();
        for (key, dir) in &self.dirs {
            if key == UNIFIED {
                let ctrls = fsio::read_opt(dir, "cgroup.controllers")?.unwrap_or_default();
                let ctrls = ctrls.split_whitespace().map(String::from).collect();
                t.unified = Some((dir.clone(), ctrls));
            } else {
                t.v1.push((key.clone(), dir.clone()));
            }
        }
        Ok(t)
    }

    /// Writes every resource set in `res` (nothing for unset values), then
    /// the device rules if `res.devices` is present. Also used for `update`.
    pub fn apply(&self, res: &LinuxResources) -> Result<()> {
        let targets = self.targets()?;
        let steps = plan::plan(&targets, res)?;
        plan::execute(&steps)?;
        if let Some(rules) = res.devices() {
            self.apply_devices(rules)?;
        }
        Ok(())
    }

    /// `rtctr update`: writes `res` like [`Cgroup::apply`] but never
    /// touches the device rules (runc's update does not change them).
    /// `res` should be the whole merged set ([`update::merge`]), so that
    /// pairs written together (cpu quota and period, memory and swap) are
    /// consistent.
    pub fn update(&self, res: &LinuxResources) -> Result<()> {
        let mut res = res.clone();
        res.set_devices(None);
        self.apply(&res)
    }

    /// Applies device rules: v1 `devices.deny`/`devices.allow` when the v1
    /// devices controller exists, else an eBPF program on the cgroup2 dir.
    pub fn apply_devices(&self, rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
        if let Some(dir) = self.v1_dir("devices") {
            devices::apply_v1(dir, rules)
        } else if let Some(dir) = self.unified_dir() {
            devices::attach_program(dir, rules)
        } else {
            Err(Error::ControllerMissing {
                controller: "devices".to_string(),
                setting: "devices".to_string(),
            })
        }
    }

    /// Moves `pid` (0 = the caller) into every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        for (_, dir) in &self.dirs {
            ops::add_pid(dir, pid)?;
        }
        Ok(())
    }

    /// Moves the calling process, which must be single-threaded (a fresh
    /// fork), into every hierarchy; `in_unified` says it was born in the
    /// cgroup2 directory already (clone3 `CLONE_INTO_CGROUP`).
    ///
    /// Writing a pid to `cgroup.procs` takes the kernel's global
    /// threadgroup lock for writing, which waits for an RCU grace period
    /// when none is in flight: 5–13 ms on an idle host. Writing `0` to a
    /// v1 `tasks` file moves just the calling thread and skips that lock
    /// (kernel/cgroup/cgroup.c, cgroup_procs_write_start); cgroup2 has no
    /// such file for domain cgroups, hence `CLONE_INTO_CGROUP` there.
    pub fn join_self(&self, in_unified: bool) -> Result<()> {
        self.open_join(in_unified)?.join()
    }

    /// Opens the files [`Join::join`] writes, so that a process can join
    /// after it entered other namespaces (another mount namespace shows
    /// other cgroup files, or none).
    pub fn open_join(&self, in_unified: bool) -> Result<Join> {
        let mut files = Vec::new();
        for (key, dir) in &self.dirs {
            let file = match (key.as_str(), in_unified) {
                (UNIFIED, true) => continue,
                (UNIFIED, false) => "cgroup.procs",
                _ => "tasks",
            };
            let path = dir.join(file);
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|source| Error::Write {
                    path: path.clone(),
                    value: "0".into(),
                    source,
                })?;
            files.push((path, f));
        }
        Ok(Join(files))
    }

    /// Every pid in the cgroup and its descendants.
    pub fn pids(&self) -> Result<Vec<i32>> {
        ops::pids_recursive(self.main_dir())
    }

    /// The directory used to list processes: cgroup2 on pure v2, else the
    /// first of pids/freezer/memory/cpu/any v1 hierarchy.
    fn main_dir(&self) -> &Path {
        if self.layout == Layout::V2 {
            if let Some(d) = self.unified_dir() {
                return d;
            }
        }
        ["pids", "freezer", "memory", "cpu", "name=systemd"]
            .iter()
            .find_map(|c| self.v1_dir(c))
            .or_else(|| self.dirs.first().map(|(_, d)| d.as_path()))
            .unwrap_or(Path::new("/nonexistent"))
    }

    /// Freezes every process (v1 freezer if mounted, else cgroup.freeze)
    /// and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaws the cgroup.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        match (self.v1_dir("freezer"), self.unified_dir()) {
            (Some(d), _) => ops::freeze_v1(d, frozen),
            (None, Some(d)) => ops::freeze_v2(d, frozen),
            (None, None) => Err(Error::ControllerMissing {
                controller: "freezer".to_string(),
                setting: "pause/resume".to_string(),
            }),
        }
    }

    /// The freezer state.
    pub fn state(&self) -> Result<FreezerState> {
        match (self.v1_dir("freezer"), self.unified_dir()) {
            (Some(d), _) => ops::state_v1(d),
            (None, Some(d)) => ops::state_v2(d),
            (None, None) => Ok(FreezerState::Thawed),
        }
    }

    /// Whether the cgroup is paused (frozen, or still freezing).
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(self.state()? != FreezerState::Thawed)
    }

    /// Sends `signal` to every process: `cgroup.kill` for SIGKILL when the
    /// cgroup2 dir has it, else freeze, signal each pid, thaw. An empty
    /// cgroup (the usual case at `delete`) is left alone: nothing in it can
    /// fork, and a v1 freeze and thaw costs the kernel two code patches
    /// (the freezer's static key), about 0.2 ms.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        if signal == libc::SIGKILL {
            if let Some(d) = self.unified_dir() {
                if d.join("cgroup.kill").exists() {
                    fsio::write(d, "cgroup.kill", "1")?;
                    // Tasks frozen by the v1 freezer cannot die until thawed.
                    if self.v1_dir("freezer").is_some() && self.state()? != FreezerState::Thawed {
                        self.thaw()?;
                    }
                    return Ok(());
                }
            }
        }
        if self.pids()?.is_empty() {
            return Ok(());
        }
        let can_freeze = self.v1_dir("freezer").is_some() || self.unified_dir().is_some();
        if can_freeze {
            self.freeze()?;
        }
        let res = self.pids().and_then(|pids| ops::signal_all(&pids, signal));
        if can_freeze {
            self.thaw()?;
        }
        res
    }

    /// Removes the cgroup in every hierarchy (children first); missing
    /// directories are fine. Retries while the kernel still reaps tasks.
    pub fn destroy(&self) -> Result<()> {
        self.remove(false)
    }

    /// [`Cgroup::destroy`], first SIGKILLing whatever is still inside.
    pub fn destroy_killing(&self) -> Result<()> {
        self.remove(true)
    }

    fn remove(&self, kill: bool) -> Result<()> {
        if kill && self.dirs.iter().any(|(_, d)| d.exists()) {
            // The cgroup may be half gone; killing is best effort.
            let _ = self.kill_all(libc::SIGKILL);
        }
        // One budget for all hierarchies: exiting tasks leave every one at once.
        let budget = if kill {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(1)
        };
        let deadline = Instant::now() + budget;
        let mut first_err = None;
        for (_, dir) in &self.dirs {
            if let Err(e) = ops::remove_tree(dir, kill, deadline) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Resource usage, in the shape of runc's `events --stats` data.
    pub fn stats(&self) -> Result<Stats> {
        stats::collect(self)
    }

    /// How many times the OOM killer killed a process in this cgroup
    /// (memory.events `oom_kill` on v2, memory.oom_control on v1).
    pub fn oom_kill_count(&self) -> Result<u64> {
        if let Some(d) = self.v1_dir("memory") {
            return Ok(fsio::read_key(d, "memory.oom_control", "oom_kill")?.unwrap_or(0));
        }
        match self.unified_dir() {
            Some(d) => Ok(fsio::read_key(d, "memory.events", "oom_kill")?.unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// What to mount at the container's /sys/fs/cgroup, one entry per hierarchy.
    pub fn mounts(&self) -> Vec<CgroupMount> {
        self.dirs
            .iter()
            .enumerate()
            .map(|(i, (key, dir))| {
                let mp = self.mount_point(i);
                let unified = key == UNIFIED;
                let name = if unified && self.layout == Layout::V2 {
                    String::new()
                } else {
                    mp.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                let parts: Vec<&str> = key.split(',').collect();
                let symlinks = if !unified && parts.len() > 1 {
                    parts
                        .iter()
                        .filter(|p| **p != name)
                        .map(|p| p.to_string())
                        .collect()
                } else {
                    Vec::new()
                };
                CgroupMount {
                    name,
                    fstype: if unified { "cgroup2" } else { "cgroup" }.to_string(),
                    options: if unified { String::new() } else { key.clone() },
                    host_dir: dir.clone(),
                    symlinks,
                }
            })
            .collect()
    }
}

/// A cgroup's join files, open (see [`Cgroup::open_join`]).
pub struct Join(Vec<(PathBuf, std::fs::File)>);

impl Join {
    /// Moves the calling process (a fresh, single-threaded fork) in: `0`
    /// written to each file ([`ops::retry_einval`], as for any pid).
    pub fn join(self) -> Result<()> {
        for (path, mut f) in self.0 {
            ops::retry_einval(|| {
                io::Write::write_all(&mut f, b"0").map_err(|source| Error::Write {
                    path: path.clone(),
                    value: "0".into(),
                    source,
                })
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
    const V2: &str = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn resolve_default_is_id_under_own_cgroup() {
        let cg = Cgroup::resolve_from(V2, "0::/user.slice/me\n", None, "c1", false).unwrap();
        assert_eq!(cg.layout, Layout::V2);
        assert_eq!(
            cg.dirs,
            vec![(
                UNIFIED.to_string(),
                PathBuf::from("/sys/fs/cgroup/user.slice/me/c1")
            )]
        );
        let cg = Cgroup::resolve_from(V2, "0::/x\n", Some(Path::new("")), "c1", false).unwrap();
        assert_eq!(cg.dirs[0].1, Path::new("/sys/fs/cgroup/x/c1"));
    }

    #[test]
    fn resolve_rejects_escapes_and_root() {
        for p in ["/a/../../x", "../x", "/", "."] {
            let e = Cgroup::resolve_from(V2, "0::/\n", Some(Path::new(p)), "c", false);
            assert!(matches!(e, Err(Error::InvalidPath { .. })), "{p}: {e:?}");
        }
        assert!(Cgroup::resolve_from(V2, "0::/\n", None, "../c", false).is_err());
    }

    #[test]
    fn resolve_systemd_needs_systemd() {
        let r = Cgroup::resolve_from(V2, "0::/\n", Some(Path::new("a.slice:p:n")), "c", true);
        if Path::new(SYSTEMD_RUNNING).exists() {
            let cg = r.unwrap();
            assert_eq!(cg.dirs[0].1, Path::new("/sys/fs/cgroup/a.slice/p-n.scope"));
            assert_eq!(
                cg.driver,
                Driver::Systemd {
                    slice: "a.slice".into(),
                    unit: "p-n.scope".into()
                }
            );
        } else {
            assert!(matches!(r, Err(Error::SystemdUnavailable { .. })), "{r:?}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let cg = Cgroup::resolve_from(HYBRID, "", Some(Path::new("/a")), "c", false).unwrap();
        let json = serde_json::to_string(&cg).unwrap();
        let back: Cgroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back.dirs, cg.dirs);
        assert_eq!(back.mount_points, cg.mount_points);
        assert_eq!(back.layout, Layout::Hybrid);
    }

    #[test]
    fn mounts_for_hybrid_and_v2() {
        let cg = Cgroup::resolve_from(HYBRID, "", Some(Path::new("/a")), "c", false).unwrap();
        let m = cg.mounts();
        assert_eq!(m[0].name, "cpu,cpuacct");
        assert_eq!(m[0].options, "cpu,cpuacct");
        assert_eq!(m[0].symlinks, ["cpu", "cpuacct"]);
        assert_eq!(m[0].host_dir, Path::new("/sys/fs/cgroup/cpu,cpuacct/a"));
        assert_eq!(m[2].name, "systemd");
        assert_eq!(m[2].options, "name=systemd");
        assert_eq!(
            (m[3].name.as_str(), m[3].fstype.as_str()),
            ("unified", "cgroup2")
        );
        let cg = Cgroup::resolve_from(V2, "0::/\n", Some(Path::new("/a")), "c", false).unwrap();
        let m = cg.mounts();
        assert_eq!((m[0].name.as_str(), m[0].fstype.as_str()), ("", "cgroup2"));
    }

    #[test]
    fn v1_dir_lookup() {
        let cg = Cgroup::resolve_from(HYBRID, "", Some(Path::new("/a")), "c", false).unwrap();
        assert_eq!(
            cg.v1_dir("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/a"))
        );
        assert_eq!(cg.v1_dir("pids"), None);
        assert_eq!(
            cg.unified_dir(),
            Some(Path::new("/sys/fs/cgroup/unified/a"))
        );
        assert_eq!(cg.main_dir(), Path::new("/sys/fs/cgroup/memory/a"));
    }
}
