//! Helpers for tests that run real containers through the rtctr binary.
//!
//! Each test gets its own state root (`--root` in a temp dir), so tests run
//! in parallel without seeing each other, and a [`Rtctr`] guard that, when
//! dropped, force-deletes whatever the test left and checks that nothing
//! stayed behind.
//!
//! A test starts with
//!
//! ```text
//! let Some(rt) = Rtctr::for_root_test() else { return };
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use rtctr_test_support::require_root;
use serde_json::{json, Value};

/// Why the container tests need root, for [`require_root`]'s message.
pub const NEEDS_ROOT: &str = "it runs containers: namespaces, mounts, cgroups";

/// The binary under test: $RTCTR_BIN, else target/release/rtctr, else
/// target/debug/rtctr.
pub fn rtctr_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RTCTR_BIN") {
        return PathBuf::from(p);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("rtctr");
        if p.exists() {
            return p;
        }
    }
    panic!("no rtctr binary: run `cargo build --release` or set RTCTR_BIN");
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

/// Runs rtctr with a private state root; cleans up on drop.
pub struct Rtctr {
    pub root: tempfile::TempDir,
    /// The built-in network hook's state (RTCTR_NETWORK_DIR).
    pub net_dir: tempfile::TempDir,
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
                .prefix("rtctr-root-")
                .tempdir()
                .unwrap(),
            net_dir: tempfile::Builder::new()
                .prefix("rtctr-net-")
                .tempdir()
                .unwrap(),
        }
    }

    /// The start of every container test: `None` (after a loud SKIPPED)
    /// when not root, a panic when not root under CI (see
    /// [`require_root`]), else a fresh [`Rtctr`].
    #[track_caller]
    pub fn for_root_test() -> Option<Rtctr> {
        require_root(NEEDS_ROOT).then(Rtctr::new)
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
        let out = std::fs::File::create(b.path().join(format!("{id}.out"))).unwrap();
        let err_path = b.path().join(format!("{id}.err"));
        let err = std::fs::File::create(&err_path).unwrap();
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

impl Drop for Rtctr {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.run(&["delete", "--force", &id]);
        }
    }
}

/// Is any process alive whose command line mentions `needle`?
pub fn process_with_arg(needle: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
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
