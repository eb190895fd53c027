//! The state store: `<root>/<id>/` holds `state.json` (written atomically:
//! temp file + rename), the container's config snapshot `config.json`, and
//! the `exec.fifo` that holds a created container's init until `start`.
//!
//! Status is never stored, it is derived: a dead (or reused) init pid is
//! `stopped`; a live init that has not exec'd the program yet (its `comm`
//! is still [`INIT_COMM`]) is `created`; a frozen cgroup is `paused`;
//! otherwise `running`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rtctr_cgroups::Cgroup;
use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid container id {id:?}: {why}")]
    InvalidId { id: String, why: &'static str },
    #[error("container with id {0} already exists")]
    Exists(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt state file {path}: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Container ids name a directory and a cgroup and are printed in a
/// table: runc's set (`^[\w+\-.]+$`: ASCII letters, digits, `_ + - .`), so
/// nothing can escape the directory or make `list` ambiguous.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let bad = |why| {
        Err(StateError::InvalidId {
            id: id.to_string(),
            why,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id == "." || id == ".." {
        return bad("'.' and '..' are not ids");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.');
    if !id.chars().all(allowed) {
        return bad("only ASCII letters, digits, '_', '+', '-' and '.' may be used");
    }
    Ok(())
}

/// The lifecycle status of the OCI state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What rtctr keeps about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// The init process, as seen from the host.
    pub pid: i32,
    /// Its start time (clock ticks since boot), to tell it from a reused pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Option<Cgroup>,
    /// The network attachment made by the built-in hook, if any.
    #[serde(default)]
    pub network: Option<serde_json::Value>,
    /// The container has no mount namespace of its own: its mounts live
    /// in rtctr's and are unmounted at delete.
    #[serde(default)]
    pub host_mounts: bool,
    /// config.json has no `process`: the container can be created, not
    /// started.
    #[serde(default)]
    pub no_process: bool,
    /// The overlay of image layers mounted on the rootfs (a bundle made
    /// by `rtctr bundle`), unmounted at delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<crate::image::overlay::Record>,
}

/// The OCI state document (`rtctr state`), with runc's extra fields.
#[derive(Debug, Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

pub const OCI_VERSION: &str = "1.2.0";

/// The newest runtime-spec whose features this build implements
/// (`features`' ociVersionMax, `--version`'s spec line).
pub const OCI_VERSION_MAX: &str = "1.3.0";

impl State {
    pub fn oci(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }
}

/// The directory holding every container's state.
pub struct Store {
    root: PathBuf,
}

/// One container's directory, locked (flock) for as long as this lives.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    _lock: File,
}

impl Store {
    pub fn new(root: PathBuf) -> Store {
        Store { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes `<root>/<id>` for a new container, holding `state` from the
    /// instant it exists: it is made as `~<id>.<pid>` (no id has a `~`),
    /// locked and filled, then renamed into place without replacing
    /// (renameat2 RENAME_NOREPLACE), so of two parallel creates of one id
    /// exactly one wins, and no `<root>/<id>` is ever without its record.
    pub fn create(&self, state: &State) -> Result<ContainerDir, StateError> {
        let id = state.id.as_str();
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(io_err("create state root", &self.root))?;
        let path = self.root.join(id);
        if path.exists() {
            return Err(StateError::Exists(id.to_string()));
        }
        let tmp = self.root.join(format!("~{id}.{}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o711)
            .create(&tmp)
            .map_err(io_err("create", &tmp))?;
        let dir = ContainerDir {
            id: id.to_string(),
            _lock: lock_dir(&tmp)?,
            path: tmp,
        };
        let placed = dir.save(state).and_then(|()| dir.rename_to(&path));
        match placed {
            Ok(dir) => Ok(dir),
            Err(e) => {
                let tmp = self.root.join(format!("~{id}.{}", std::process::id()));
                if let Err(rm) = fs::remove_dir_all(&tmp) {
                    log::warn!("remove {}: {rm}", tmp.display());
                }
                Err(e)
            }
        }
    }

    /// Removes what a create of `id` killed before its directory was in
    /// place left behind: `~<id>.<pid>` directories whose pid is gone.
    pub fn remove_stale(&self, id: &str) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        let prefix = format!("~{id}.");
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            let pid: i32 = pid.parse().unwrap_or(0);
            if pid > 0 && Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                log::warn!("remove {}: {e}", entry.path().display());
            }
        }
    }

    /// Opens and locks an existing container's directory.
    pub fn open(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        let path = self.root.join(id);
        let lock = match lock_dir(&path) {
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.to_string()))
            }
            other => other?,
        };
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: lock,
        })
    }

    /// Ids of every container directory (sorted).
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(io_err("read", &self.root)(e)),
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                // `~<id>.<pid>`: a create not yet in place.
                if let Some(name) = entry
                    .file_name()
                    .to_str()
                    .filter(|n| validate_id(n).is_ok())
                {
                    ids.push(name.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

fn lock_dir(path: &Path) -> Result<File, StateError> {
    let dir = File::open(path).map_err(io_err("open", path))?;
    rustix::fs::flock(dir.as_fd(), rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_err("lock", path)(e.into()))?;
    Ok(dir)
}

impl ContainerDir {
    /// Moves the (locked) directory to `path`, failing if that exists.
    fn rename_to(self, path: &Path) -> Result<ContainerDir, StateError> {
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &self.path,
            rustix::fs::CWD,
            path,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(ContainerDir {
                path: path.to_path_buf(),
                ..self
            }),
            Err(rustix::io::Errno::EXIST) => Err(StateError::Exists(self.id.clone())),
            Err(e) => Err(io_err("rename into place", path)(e.into())),
        }
    }

    /// The descriptor holding the lock; a forked child must close it, or
    /// the lock lives as long as the child does.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self._lock)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn load(&self) -> Result<State, StateError> {
        let path = self.file(STATE_FILE);
        let raw = match fs::read(&path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(self.id.clone()))
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&raw).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Writes `state.json` atomically: a reader sees the old or the new
    /// file, never a torn one.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let bytes =
            serde_json::to_vec(state).map_err(|e| io_err("serialize", &self.path)(e.into()))?;
        write_atomic(&self.file(STATE_FILE), &bytes)
    }

    /// The config.json snapshot taken at create.
    pub fn config(&self) -> Result<oci_spec::runtime::Spec, crate::spec::SpecError> {
        Ok(crate::spec::load(&self.path)?.0)
    }

    /// The snapshot, parsed only if its bytes contain `word` or a JSON
    /// `\u` escape, which could spell it (None otherwise, or if there is
    /// none). `start` and `delete` look in it for hooks of one kind, which
    /// most configs have none of, and a typed parse is not free on their
    /// hot path (podman's seccomp profile alone is 60 KB).
    pub fn config_naming(
        &self,
        word: &str,
    ) -> Result<Option<oci_spec::runtime::Spec>, crate::spec::SpecError> {
        let file = self.file(CONFIG_FILE);
        let raw = fs::read(&file).unwrap_or_default();
        let may_name = |w: &[u8]| crate::spec::contains(&raw, w);
        if !may_name(word.as_bytes()) && !may_name(b"\\u") {
            return Ok(None);
        }
        crate::spec::parse_file(&file, &raw).map(Some)
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &self.path)(e)),
        }
    }

    /// Derives the status from the kernel (see the module doc).
    pub fn status(&self, state: &State) -> Status {
        let Some(comm) = live_comm(state.pid, state.pid_start) else {
            return Status::Stopped;
        };
        // Not yet exec'd: created while the exec fifo waits for `start`;
        // once a start has consumed it (even a start killed before the
        // execve), running, as runc says (its status is the fifo's).
        if comm == INIT_COMM && self.file(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if let Some(cg) = &state.cgroup {
            if cg.is_frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        Status::Running
    }
}

/// The name (`comm`) the container init carries from its start until it
/// execs the container's program: the kernel's own record of whether the
/// program runs yet.
pub const INIT_COMM: &str = "rtctr-init";

/// Is `pid` alive and still the process that started at `start`
/// (clock ticks after boot)? A zombie counts as dead.
pub fn is_alive(pid: i32, start: u64) -> bool {
    live_comm(pid, start).is_some()
}

/// The `comm` of `pid` if it is alive and the process that started at `start`.
fn live_comm(pid: i32, start: u64) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    let stat = procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .ok()?;
    let live = stat.starttime == start && stat.state != 'Z' && stat.state != 'X';
    live.then_some(stat.comm)
}

/// The start time of `pid` in clock ticks after boot.
pub fn start_time(pid: i32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = rtctr_cgroups::read_kernel_file(File::open(&path)?)?;
    parse_start_time(&text).ok_or_else(|| io::Error::other(format!("{path}: no start time")))
}

/// The start time of `pid` from `proc`, a descriptor of a procfs root
/// (for a process whose own /proc is another pid namespace's).
pub fn start_time_in(proc: std::os::fd::BorrowedFd<'_>, pid: i32) -> io::Result<u64> {
    let path = format!("{pid}/stat");
    let fd = rustix::fs::openat(
        proc,
        &path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let text = rtctr_cgroups::read_kernel_file(File::from(fd))?;
    parse_start_time(&text).ok_or_else(|| io::Error::other(format!("/proc/{path}: no start time")))
}

/// Field 22 of /proc/<pid>/stat, counted after the `(comm)` field, which
/// may hold spaces and parentheses.
fn parse_start_time(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// temp file + rename in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err("rename", path))
}

/// Writes a pid file atomically (engines poll it); a relative path is
/// taken from the current directory.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), StateError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(io_err("cwd for", path))?
            .join(path)
    };
    write_atomic(&abs, pid.to_string().as_bytes())
}

/// The current time as RFC 3339 with nanoseconds, as runc writes `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_start_checked() {
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap();
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
        assert!(!is_alive(0, 0));
    }

    #[test]
    fn start_time_from_a_proc_descriptor() {
        let me = std::process::id() as i32;
        let proc = File::open("/proc").unwrap();
        assert_eq!(
            start_time_in(proc.as_fd(), me).unwrap(),
            start_time(me).unwrap()
        );
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        assert_eq!(parse_start_time(stat), Some(12345));
    }

    #[test]
    fn ids() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\nb",
            "a\u{7f}",
            "with space",
            "ünï",
            "a:b",
            "a*",
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "ctr-1_x.y", "A+B", "0", "...x"] {
            validate_id(good).unwrap();
        }
    }

    fn state(id: &str) -> State {
        State {
            id: id.into(),
            pid: 0,
            pid_start: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            owner: "root".into(),
            annotations: HashMap::new(),
            cgroup: None,
            network: None,
            host_mounts: false,
            no_process: false,
            overlay: None,
        }
    }

    #[test]
    fn create_twice_fails_and_ids_lists() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("root"));
        let a = store.create(&state("a")).unwrap();
        assert_eq!(
            a.load().unwrap().id,
            "a",
            "the record is there from the start"
        );
        drop(a);
        assert!(matches!(
            store.create(&state("a")),
            Err(StateError::Exists(_))
        ));
        store.create(&state("b")).unwrap();
        // A create killed before its rename left this behind.
        std::fs::create_dir(tmp.path().join("root/~c.999999999")).unwrap();
        assert_eq!(store.ids().unwrap(), vec!["a", "b"]);
        store.remove_stale("c");
        assert!(!tmp.path().join("root/~c.999999999").exists());
        assert_eq!(
            std::fs::read_dir(tmp.path().join("root")).unwrap().count(),
            2,
            "no temporary directory stays"
        );
        assert!(matches!(store.open("zz"), Err(StateError::NotFound(_))));
    }

    #[test]
    fn config_naming_parses_only_a_snapshot_that_can_name_the_hooks() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().to_path_buf());
        let dir = store.create(&state("h")).unwrap();
        assert!(
            dir.config_naming("poststop").unwrap().is_none(),
            "no snapshot"
        );
        let write = |json: &str| std::fs::write(dir.file(CONFIG_FILE), json).unwrap();
        let hook = r#"[{"path": "/bin/true"}]"#;
        write(&format!(
            r#"{{"ociVersion": "1.0.2", "hooks": {{"poststart": {hook}}}}}"#
        ));
        assert!(dir.config_naming("poststop").unwrap().is_none());
        let spec = dir.config_naming("poststart").unwrap().unwrap();
        assert_eq!(
            spec.hooks()
                .as_ref()
                .unwrap()
                .poststart()
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        // The key spelled with an escape still names the hooks.
        write(&format!(
            r#"{{"ociVersion": "1.0.2", "hooks": {{"\u0070oststop": {hook}}}}}"#
        ));
        let spec = dir.config_naming("poststop").unwrap().unwrap();
        assert_eq!(
            spec.hooks()
                .as_ref()
                .unwrap()
                .poststop()
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        // A snapshot that names them but does not parse is an error.
        write(r#"{"ociVersion": "1.0.2", "hooks": {"poststop": 1}}"#);
        assert!(dir.config_naming("poststop").is_err());
    }

    #[test]
    fn save_is_atomic_and_loads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().to_path_buf());
        let mut state = state("c");
        let dir = store.create(&state).unwrap();
        (state.pid, state.pid_start) = (1, 2);
        dir.save(&state).unwrap();
        assert!(!dir.file("state.tmp").exists());
        let back = dir.load().unwrap();
        assert_eq!(back.pid_start, 2);
        let json = serde_json::to_value(back.oci(Status::Created)).unwrap();
        assert_eq!(json["status"], "created");
        assert_eq!(json["ociVersion"], OCI_VERSION);
        assert!(json.get("annotations").is_none());
    }
}
