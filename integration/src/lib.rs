//! Helpers for tests that run real containers through the rtctr binary.
//!
//! Each test gets its own state root (`--root` in a temp dir), so tests run
//! in parallel without seeing each other, and a [`Rtctr`] guard that, when
//! dropped, force-deletes whatever the test left and checks that nothing
//! stayed behind (see [`Rtctr`]'s `Drop`).
//!
//! A test starts with
//!
//! ```text
//! let Some(rt) = Rtctr::for_root_test() else { return };
//! ```

pub mod image;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use rtctr_test_support::require_root;
use serde_json::{json, Value};

pub mod rootless;

/// Why the container tests need root, for [`require_root`]'s message.
pub const NEEDS_ROOT: &str = "it runs containers: namespaces, mounts, cgroups";

/// The binary under test: $RTCTR_BIN, else the static build `make build`
/// makes (target/<arch>-unknown-linux-musl/release/rtctr, or -gnu where
/// musl's std is not to be had), else target/release/rtctr, else
/// target/debug/rtctr.
pub fn rtctr_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RTCTR_BIN") {
        return PathBuf::from(p);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let arch = std::env::consts::ARCH;
    let musl = format!("{arch}-unknown-linux-musl/release");
    let gnu = format!("{arch}-unknown-linux-gnu/release");
    for dir in [musl.as_str(), gnu.as_str(), "release", "debug"] {
        let p = target.join(dir).join("rtctr");
        if p.exists() {
            return p;
        }
    }
    panic!("no rtctr binary: run `make build` or set RTCTR_BIN");
}

/// A busybox root filesystem built once per test binary (read-only for
/// containers: bundles point at it).
pub fn shared_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rtctr-it-rootfs-{}", std::process::id()));
        make_rootfs(&dir);
        dir
    })
}

/// Builds a busybox rootfs at `dir` with bundles/mkrootfs.sh.
pub fn make_rootfs(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles/mkrootfs.sh");
    let st = Command::new("sh")
        .arg(script)
        .arg(dir)
        .status()
        .expect("run mkrootfs.sh");
    assert!(st.success(), "mkrootfs.sh failed");
}

/// A bundle in a temp dir: config.json from `rtctr spec`, made
/// non-interactive, with `args`.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("rtctr-bundle-")
            .tempdir()
            .unwrap();
        let st = Command::new(rtctr_bin())
            .arg("spec")
            .arg("--bundle")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        config["root"]["path"] = json!(shared_rootfs());
        let mut b = Bundle { dir, config };
        b.save();
        b
    }

    /// A bundle with a private, writable copy of the rootfs.
    pub fn with_own_rootfs(args: &[&str]) -> Bundle {
        let mut b = Bundle::new(args);
        let root = b.path().join("rootfs");
        make_rootfs(&root);
        b.config["root"] = json!({"path": "rootfs", "readonly": false});
        b.save();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Edits the config and writes it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.save();
        self
    }

    pub fn save(&mut self) {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
}

/// Runs rtctr with a private state root; cleans up on drop, and checks
/// that the containers left nothing behind (see the `Drop` impl).
pub struct Rtctr {
    pub root: tempfile::TempDir,
    /// The built-in network hook's state (RTCTR_NETWORK_DIR).
    pub net_dir: tempfile::TempDir,
    /// The cgroup directories of the containers made through
    /// [`Rtctr::create`], [`Rtctr::run_bundle`] and [`Rtctr::run`]
    /// (`create`/`run`), checked at drop.
    made: Mutex<Vec<MadeCgroup>>,
}

/// A cgroup directory a container of this test would get.
struct MadeCgroup {
    id: String,
    dir: PathBuf,
    /// Its inode if it already existed before the container was made (then
    /// it is not this test's to remove).
    before: Option<u64>,
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self
    }
}

impl Default for Rtctr {
    fn default() -> Self {
        Self::new()
    }
}

impl Rtctr {
    pub fn new() -> Rtctr {
        Rtctr {
            root: tempfile::Builder::new()
                .prefix(STATE_ROOT_PREFIX)
                .tempdir()
                .unwrap(),
            net_dir: tempfile::Builder::new()
                .prefix("rtctr-net-")
                .tempdir()
                .unwrap(),
            made: Mutex::new(Vec::new()),
        }
    }

    /// The start of every container test: `None` (after a loud SKIPPED)
    /// when not root, a panic when not root under CI (see
    /// [`require_root`]), else a fresh [`Rtctr`].
    #[track_caller]
    pub fn for_root_test() -> Option<Rtctr> {
        require_root(NEEDS_ROOT).then(Rtctr::new)
    }

    /// Notes the cgroup directories container `id` (made from `bundle`)
    /// will get, before the verb that makes it runs.
    pub fn record(&self, id: &str, bundle: &Path) {
        if id.is_empty() || id == "." || id == ".." || id.contains('/') {
            return; // rtctr refuses the id: nothing is made
        }
        let dirs = expected_cgroup_dirs(id, bundle_cgroups_path(bundle).as_deref());
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        for dir in dirs {
            // The first note of a directory holds what was there before
            // the test made anything in it.
            if made.iter().all(|m| m.dir != dir) {
                let before = inode(&dir);
                made.push(MadeCgroup {
                    id: id.to_string(),
                    dir,
                    before,
                });
            }
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(rtctr_bin());
        c.arg("--root").arg(self.root.path());
        // Network leases and configs are private to the test too.
        c.env("RTCTR_NETWORK_DIR", self.net_dir.path());
        c
    }

    /// Runs a verb; the container's stdio (for create/run) goes to the
    /// captured pipes, so callers must not leave a created container holding
    /// them: `create` uses [`Rtctr::create`].
    pub fn run(&self, args: &[&str]) -> Out {
        if let (Some(&("run" | "create" | "restore")), Some(id)) = (args.first(), args.last()) {
            let bundle = bundle_arg(args).unwrap_or_else(|| PathBuf::from("."));
            self.record(id, &bundle);
        }
        let o = self.cmd().args(args).stdin(Stdio::null()).output().unwrap();
        Out::from(o)
    }

    /// `run --bundle B ID` in the foreground, capturing the container's output.
    pub fn run_bundle(&self, b: &Bundle, id: &str) -> Out {
        self.run(&["run", "--bundle", b.path().to_str().unwrap(), id])
    }

    /// `create`, with the container's stdio sent to files in the bundle
    /// (so the caller does not wait for the container to close them).
    pub fn create(&self, b: &Bundle, id: &str, extra: &[&str]) -> Out {
        self.create_with_stderr(b, id, extra, &format!("{id}.err"))
    }

    /// [`Rtctr::create`] with stderr (rtctr's, then the container's) in the
    /// bundle's file `err_name`: parallel creates of one id each need their
    /// own, or one's `File::create` empties what another wrote.
    pub fn create_with_stderr(&self, b: &Bundle, id: &str, extra: &[&str], err_name: &str) -> Out {
        let out = std::fs::File::create(b.path().join(format!("{id}.out"))).unwrap();
        let err_path = b.path().join(err_name);
        let err = std::fs::File::create(&err_path).unwrap();
        self.record(id, b.path());
        let status = self
            .cmd()
            .arg("create")
            .arg("--bundle")
            .arg(b.path())
            .args(extra)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap();
        Out {
            code: status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// What the container printed so far (after [`Rtctr::create`]).
    pub fn output_of(b: &Bundle, id: &str) -> String {
        std::fs::read_to_string(b.path().join(format!("{id}.out"))).unwrap_or_default()
    }

    pub fn state(&self, id: &str) -> Option<Value> {
        let o = self.run(&["state", id]);
        (o.code == 0).then(|| serde_json::from_str(&o.stdout).expect("state is JSON"))
    }

    pub fn status(&self, id: &str) -> Option<String> {
        self.state(id)
            .map(|s| s["status"].as_str().unwrap().to_string())
    }

    /// Polls `state` until the status is `want` (10 s at most).
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.status(id);
            if got.as_deref() == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: status {got:?}, wanted {want}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `rtctr network ARGS`, with this test's network state dir.
    pub fn network(&self, args: &[&str]) -> Out {
        let o = self
            .cmd()
            .arg("network")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Out::from(o)
    }

    /// The leases of network `name` (`network inspect`): objects with
    /// `container`, `ip`, `veth`, `ports`; `None` if inspect fails.
    pub fn leases(&self, name: &str) -> Option<Vec<Value>> {
        let out = self.network(&["inspect", name]);
        if out.code != 0 {
            return None;
        }
        let v: Value = serde_json::from_str(&out.stdout).ok()?;
        v["leases"].as_array().cloned()
    }

    /// Ids in the state root.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.root.path())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

/// The prefix of every test's state root in the temp dir.
const STATE_ROOT_PREFIX: &str = "rtctr-root-";

/// How long a leftover may take to go (a process being reaped, another
/// test run's container with the same id being deleted).
const GRACE: Duration = Duration::from_secs(2);

/// A container directory found in the state root at drop, as its
/// state.json described it before `delete --force`.
struct Leftover {
    id: String,
    dir: PathBuf,
    /// Why state.json could not be read, if it could not.
    unreadable: Option<String>,
    /// The init (pid, start time in clock ticks since boot), unless 0.
    init: Option<(i64, u64)>,
    bundle: String,
    /// The rootfs, when the container's mounts were made in rtctr's (and
    /// so this test's) mount namespace.
    host_rootfs: Option<PathBuf>,
    /// The cgroup directories that existed before the delete, with inodes.
    cgroups: Vec<(PathBuf, u64)>,
}

impl Leftover {
    fn read(id: &str, dir: &Path) -> Leftover {
        let mut l = Leftover {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            unreadable: None,
            init: None,
            bundle: String::new(),
            host_rootfs: None,
            cgroups: Vec::new(),
        };
        let state: Value = match std::fs::read(dir.join("state.json"))
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                l.unreadable = Some(e);
                return l;
            }
        };
        let pid = state["pid"].as_i64().unwrap_or(0);
        if pid > 0 {
            l.init = Some((pid, state["pid_start"].as_u64().unwrap_or(0)));
        }
        l.bundle = state["bundle"].as_str().unwrap_or_default().to_string();
        if state["host_mounts"].as_bool() == Some(true) {
            l.host_rootfs = state["rootfs"].as_str().map(PathBuf::from);
        }
        for pair in state["cgroup"]["dirs"].as_array().into_iter().flatten() {
            let Some(d) = pair.get(1).and_then(Value::as_str).map(PathBuf::from) else {
                continue;
            };
            if let Some(ino) = inode(&d) {
                l.cgroups.push((d, ino));
            }
        }
        l
    }

    /// After `delete --force`: what is still there (each problem once),
    /// removing what it safely can.
    fn check(&self, delete: &Out, problems: &mut Vec<String>) {
        let what = format!("container {:?} (bundle {:?})", self.id, self.bundle);
        if let Some(e) = &self.unreadable {
            problems.push(format!("{what}: state.json unreadable before delete: {e}"));
        }
        if self.dir.exists() {
            problems.push(format!(
                "{what}: state directory {} left after `delete --force` ({delete:?})",
                self.dir.display()
            ));
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if let Some((pid, start)) = self.init {
            if !wait_for(GRACE, || !same_process_alive(pid, start)) {
                problems.push(format!(
                    "{what}: init {pid} (start {start}) still alive after `delete --force`"
                ));
                kill(pid);
            }
        }
        if let Some(rootfs) = &self.host_rootfs {
            let left = mounts_under(rootfs);
            if !left.is_empty() {
                problems.push(format!(
                    "{what}: mounts left under its rootfs {}: {left:?}",
                    rootfs.display()
                ));
                for m in left.iter().rev() {
                    let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
                }
            }
        }
        for (d, ino) in &self.cgroups {
            // Another inode is a directory made since (another run's
            // container of the same name), not this one.
            if inode(d) == Some(*ino) {
                problems.push(format!(
                    "{what}: cgroup {} left after `delete --force`",
                    d.display()
                ));
                remove_cgroup(d);
            }
        }
    }
}

impl Rtctr {
    /// The container directories in the state root.
    fn container_dirs(&self) -> Vec<(String, PathBuf)> {
        let mut dirs: Vec<(String, PathBuf)> = std::fs::read_dir(self.root.path())
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        dirs
    }

    /// Cgroup directories of containers this test made that are still
    /// there (removing them). A directory that existed before the test made
    /// its container, or that another test run's live container (same id,
    /// other state root) holds, is not this test's leftover.
    fn check_made_cgroups(&self, problems: &mut Vec<String>) {
        let made = std::mem::take(&mut *self.made.lock().unwrap_or_else(|e| e.into_inner()));
        for m in made {
            let Some(ino) = inode(&m.dir) else {
                continue;
            };
            if m.before == Some(ino) {
                rtctr_test_support::loud(&format!(
                    "NOTE: cgroup {} was there before container {:?} was made; not checked",
                    m.dir.display(),
                    m.id
                ));
                continue;
            }
            let mut foreign = false;
            let gone = wait_for(GRACE, || {
                foreign = self.held_by_another_root(&m.dir);
                foreign || inode(&m.dir) != Some(ino)
            });
            if foreign {
                rtctr_test_support::loud(&format!(
                    "NOTE: cgroup {} belongs to a container of another state root; not checked",
                    m.dir.display()
                ));
            } else if !gone {
                problems.push(format!(
                    "container {:?}: cgroup {} left after the test",
                    m.id,
                    m.dir.display()
                ));
                remove_cgroup(&m.dir);
            }
        }
    }

    /// Whether a container in another test's state root (in the temp dir)
    /// records `dir` as its cgroup.
    fn held_by_another_root(&self, dir: &Path) -> bool {
        let Ok(roots) = std::fs::read_dir(std::env::temp_dir()) else {
            return false;
        };
        roots
            .flatten()
            .filter(|r| {
                r.file_name()
                    .to_string_lossy()
                    .starts_with(STATE_ROOT_PREFIX)
            })
            .filter(|r| r.path() != self.root.path())
            .filter_map(|r| std::fs::read_dir(r.path()).ok())
            .flat_map(|ctrs| ctrs.flatten())
            .filter_map(|c| std::fs::read(c.path().join("state.json")).ok())
            .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
            .any(|st| {
                st["cgroup"]["dirs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p.get(1).and_then(Value::as_str) == dir.to_str())
            })
    }
}

/// At drop, every container still in the state root is force-deleted;
/// from what its state.json said before, the guard then checks that its
/// state directory, its cgroup directories and its init are gone, and
/// (when it had no mount namespace of its own) that nothing is mounted
/// under its rootfs. It also checks that no cgroup directory of a container
/// the test made through the helpers (`create`, `run_bundle`, `run` with
/// `run`/`create`) is left: `<hierarchy>/<our cgroup>/<id>` in every
/// hierarchy, or the bundle's `linux.cgroupsPath`.
///
/// What is found left is removed, and fails the test, unless the test is
/// already panicking (then it is only printed: a second panic would abort).
impl Drop for Rtctr {
    fn drop(&mut self) {
        let mut problems = Vec::new();
        for (id, dir) in self.container_dirs() {
            let left = Leftover::read(&id, &dir);
            let delete = self.run(&["delete", "--force", &id]);
            left.check(&delete, &mut problems);
        }
        self.check_made_cgroups(&mut problems);
        if problems.is_empty() {
            return;
        }
        let text = format!(
            "left behind in state root {}:\n  {}",
            self.root.path().display(),
            problems.join("\n  ")
        );
        if std::thread::panicking() {
            rtctr_test_support::loud(&format!("(while panicking) {text}"));
        } else {
            panic!("{text}");
        }
    }
}

/// Polls `done` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn inode(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.ino())
}

/// Fields of /proc/<pid>/stat after the command: (state, starttime).
fn proc_stat(pid: i64) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // `after` starts at field 3 (state); starttime is field 22.
    Some((after.first()?.to_string(), after.get(19)?.parse().ok()?))
}

/// The start time of `pid` (field 22 of /proc/<pid>/stat: clock ticks
/// since boot), while /proc has it (a zombie too).
pub fn start_time(pid: i64) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// Whether `pid` is a live (not zombie) process that started at `start`
/// (clock ticks since boot): the same process, not a reused pid.
pub fn same_process_alive(pid: i64, start: u64) -> bool {
    proc_stat(pid).is_some_and(|(st, s)| s == start && st != "Z" && st != "X")
}

fn kill(pid: i64) {
    if let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// Kills what is in a leftover cgroup directory and removes it.
pub fn remove_cgroup(dir: &Path) {
    let pids: Vec<i64> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    pids.iter().for_each(|p| kill(*p));
    let wait = if pids.is_empty() {
        Duration::ZERO
    } else {
        GRACE
    };
    wait_for(wait, || std::fs::remove_dir(dir).is_ok() || !dir.exists());
}

/// Decodes mountinfo's octal escapes (`\040` for a blank).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// (root, mount point, fstype, super options) of every line of
/// /proc/self/mountinfo.
fn mountinfo() -> Vec<(PathBuf, PathBuf, String, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some((
                PathBuf::from(unescape(pre.get(3)?)),
                PathBuf::from(unescape(pre.get(4)?)),
                post.first()?.to_string(),
                post.get(2).unwrap_or(&"").to_string(),
            ))
        })
        .collect()
}

/// Mount points in this mount namespace at or under `dir`, outermost first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .map(|(_, mp, _, _)| mp)
        .filter(|mp| mp.starts_with(dir))
        .collect()
}

/// `linux.cgroupsPath` of the bundle's config.json, if set.
fn bundle_cgroups_path(bundle: &Path) -> Option<String> {
    let config: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
    config["linux"]["cgroupsPath"]
        .as_str()
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// The `--bundle` (`-b`, `-bundle`, `--bundle=`) argument of a verb.
fn bundle_arg(args: &[&str]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if matches!(*a, "--bundle" | "-bundle" | "-b") {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--bundle=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// Where rtctr puts the cgroup of container `id` made with `cgroups_path`
/// (the bundle's `linux.cgroupsPath`), found here independently of
/// rtctr-cgroups: in every cgroup hierarchy mounted here, an absolute path
/// under the mount point; a relative one (the default is `<id>`) under the
/// caller's own cgroup from /proc/self/cgroup. A systemd `slice:prefix:name`
/// path gives nothing.
pub fn expected_cgroup_dirs(id: &str, cgroups_path: Option<&str>) -> Vec<PathBuf> {
    let inner = cgroups_path.unwrap_or(id);
    if inner.contains(':') || inner.split('/').any(|c| c == "..") {
        return Vec::new();
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    // (controllers, path); cgroup2's controller list is empty.
    let own: Vec<(Vec<&str>, &str)> = own
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            let ctrls = ctrls.split(',').filter(|c| !c.is_empty()).collect();
            Some((ctrls, path))
        })
        .collect();
    let mut seen = HashSet::new();
    let mut dirs = Vec::new();
    for (root, mp, fstype, opts) in mountinfo() {
        let own_path = match fstype.as_str() {
            "cgroup2" => own.iter().find(|(c, _)| c.is_empty()).map(|(_, p)| *p),
            "cgroup" => {
                let opts: Vec<&str> = opts.split(',').collect();
                own.iter()
                    .find(|(c, _)| !c.is_empty() && c.iter().any(|c| opts.contains(c)))
                    .map(|(_, p)| *p)
            }
            _ => continue,
        };
        let base = if inner.starts_with('/') {
            mp.clone()
        } else {
            match own_path.map(|p| Path::new(p).strip_prefix(&root)) {
                Some(Ok(rel)) => mp.join(rel),
                _ => mp.clone(),
            }
        };
        let dir = base.join(inner.trim_start_matches('/'));
        if seen.insert(dir.clone()) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Is any process alive whose command line mentions `needle`?
pub fn process_with_arg(needle: &str) -> bool {
    !pids_with_arg(needle).is_empty()
}

/// The pids in /proc (processes, not threads).
fn pids() -> Vec<i64> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Processes whose command line mentions `needle` (zombies have none).
pub fn pids_with_arg(needle: &str) -> Vec<i64> {
    pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Children of `ppid` that are zombies (exited, not reaped).
pub fn zombie_children(ppid: i64) -> Vec<i64> {
    pids()
        .into_iter()
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command: state, ppid.
            let mut after = stat
                .rsplit_once(')')
                .map_or("", |(_, a)| a)
                .split_whitespace();
            let state = after.next();
            let parent = after.next().and_then(|p| p.parse::<i64>().ok());
            state == Some("Z") && parent == Some(ppid)
        })
        .collect()
}

/// How many descriptors `pid` has open.
pub fn fd_count(pid: i64) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

/// The host end of the veth pair rtctr's network makes for container
/// `id`: `rv` + 10 hex digits of FNV-1a(id) (hooks/src/network/addr.rs).
pub fn host_veth_name(id: &str) -> String {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("rv{:010x}", h & 0xff_ffff_ffff)
}

/// Whether the network interface `name` exists (in this netns).
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Lines of `nft list ruleset` that contain `needle` (every rule of
/// rtctr's table carries a comment `rtctr net=<name>` or
/// `rtctr net=<name> ctr=<id>`). Empty when nft is missing.
pub fn nft_rules_mentioning(needle: &str) -> Vec<String> {
    Command::new("nft")
        .args(["list", "ruleset"])
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains(needle))
                .map(|l| l.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Is a pid alive (not a zombie)?
pub fn pid_alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        })
        .unwrap_or(false)
}

/// The host's mount table mentions `path`?
pub fn host_mounts_mention(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(path.to_str().unwrap())
}

/// As a subreaper (a container engine's shim is one), reaps every child as
/// soon as it exits until `child` does: returns its exit code (128+N for
/// signal N) and how many other processes were reaped.
pub fn reap_until(child: i32) -> (i32, u64) {
    use rustix::process::{wait, WaitOptions};
    let mut orphans = 0u64;
    loop {
        match wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get() == child => {
                let code = match (status.exit_status(), status.terminating_signal()) {
                    (Some(code), _) => code,
                    (None, Some(sig)) => 128 + sig,
                    _ => 1,
                };
                return (code, orphans);
            }
            Ok(_) => orphans += 1,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                eprintln!("waitpid: {e}");
                return (1, orphans);
            }
        }
    }
}

/// Why `dir` cannot be the source of an idmapped mount here, if it cannot:
/// the cgroup v2 VM's /tmp is an overlayfs, which its kernel does not
/// idmap (the host's ext4 /tmp can be).
pub fn idmap_unsupported(dir: &Path) -> Option<&'static str> {
    const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
    let st = rustix::fs::statfs(dir).ok()?;
    (st.f_type as i64 == OVERLAYFS_SUPER_MAGIC).then_some("its source is on overlayfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_process_alive_tells_a_live_process_from_a_dead_or_reused_pid() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = i64::from(child.id());
        let (_, start) = proc_stat(pid).unwrap();
        assert!(same_process_alive(pid, start));
        assert!(!same_process_alive(pid, start + 1), "another start time");
        kill(pid);
        // A zombie (not reaped yet) is not alive.
        assert!(wait_for(GRACE, || !same_process_alive(pid, start)));
        assert!(proc_stat(pid).is_some_and(|(st, _)| st == "Z"));
        child.wait().unwrap();
        assert!(!same_process_alive(pid, start));
    }

    #[test]
    fn bundle_arg_forms() {
        assert_eq!(
            bundle_arg(&["run", "-d", "--bundle", "/b", "id"]),
            Some(PathBuf::from("/b"))
        );
        assert_eq!(bundle_arg(&["create", "-b", "/c", "id"]), Some("/c".into()));
        assert_eq!(bundle_arg(&["run", "--bundle=/e", "id"]), Some("/e".into()));
        assert_eq!(bundle_arg(&["run", "id"]), None);
    }

    #[test]
    fn host_veth_name_is_the_hooks_name() {
        // FNV-1a 64 of "abc" is 0xe71fa2190541574b.
        assert_eq!(host_veth_name("abc"), "rv190541574b");
        assert_eq!(host_veth_name("a-long-container-id").len(), 12);
    }

    #[test]
    fn zombies_and_descriptors_of_a_process() {
        let me = i64::from(std::process::id());
        assert!(fd_count(me).is_some_and(|n| n >= 3));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        assert!(wait_for(GRACE, || zombie_children(me).contains(&pid)));
        child.wait().unwrap();
        assert!(!zombie_children(me).contains(&pid));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/a\\040b\\011c"), "/a b\tc");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
