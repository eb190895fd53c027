//! The bundle's `config.json`: loading it with errors that name the JSON
//! path, and the semantic checks oci-spec leaves to the runtime.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, LinuxNamespaceType, Process, Spec};

/// Errors name the file or the JSON path and the problem.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {path}: {msg}")]
    Parse {
        file: PathBuf,
        path: String,
        msg: String,
    },
    #[error("{file}: {path}: {msg}")]
    Invalid {
        file: String,
        path: String,
        msg: String,
    },
}

const CONFIG: &str = "config.json";

fn invalid(path: impl Into<String>, msg: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        file: CONFIG.to_string(),
        path: path.into(),
        msg: msg.into(),
    }
}

/// A config that passed [`validate`]: what a container needs is present,
/// so nothing downstream re-checks or unwraps it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The parsed config, whole.
    pub spec: Spec,
    /// `root.path` as written (relative to the bundle unless absolute).
    pub root_path: PathBuf,
    /// `root.readonly`.
    pub root_readonly: bool,
    /// `spec.process`, checked; a container may be created without one
    /// (it cannot be started then).
    pub process: Option<ValidProcess>,
    /// `spec.linux`, present.
    pub linux: Linux,
}

/// A `process` that passed [`validate_process`]: `args` names a program,
/// `cwd` is absolute, `env` entries are `NAME=value`, rlimits are sane.
#[derive(Debug, Clone)]
pub struct ValidProcess {
    process: Process,
    argv: Vec<String>,
}

impl ValidProcess {
    /// The program and its arguments (never empty).
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The program, as given (looked up in the container's PATH at exec).
    pub fn program(&self) -> &str {
        &self.argv[0]
    }

    pub fn terminal(&self) -> bool {
        self.process.terminal().unwrap_or(false)
    }

    pub fn no_new_privileges(&self) -> bool {
        self.process.no_new_privileges().unwrap_or(false)
    }
}

impl std::ops::Deref for ValidProcess {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}
/// Reads and parses `<bundle>/config.json`. Returns the parsed spec and the
/// raw bytes (kept as the container's config snapshot).
pub fn load(bundle: &Path) -> Result<(Spec, Vec<u8>), SpecError> {
    let file = bundle.join("config.json");
    let raw = fs::read(&file).map_err(|source| SpecError::Read {
        path: file.clone(),
        source,
    })?;
    let spec = parse_file(&file, &raw)?;
    Ok((spec, raw))
}

/// [`parse`] of the bytes of `file`, the error naming it.
pub fn parse_file(file: &Path, raw: &[u8]) -> Result<Spec, SpecError> {
    parse(raw).map_err(|(path, msg)| SpecError::Parse {
        file: file.to_path_buf(),
        path,
        msg,
    })
}

/// Parses config bytes; on error returns (JSON path, message).
pub fn parse(raw: &[u8]) -> Result<Spec, (String, String)> {
    // oci-spec 0.10 spells two scheduler flags differently from the runtime
    // spec; rename them before the typed parse (only when present: cheap).
    if contains(raw, b"SCHED_FLAG_RESET_ON_FORK") || contains(raw, b"SCHED_FLAG_DL_OVERRUN") {
        let mut value: serde_json::Value =
            serde_json::from_slice(raw).map_err(|e| (".".to_string(), e.to_string()))?;
        if let Some(flags) = value
            .pointer_mut("/process/scheduler/flags")
            .and_then(|f| f.as_array_mut())
        {
            for flag in flags {
                let renamed = match flag.as_str() {
                    Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
                    Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
                    _ => continue,
                };
                *flag = serde_json::Value::from(renamed);
            }
        }
        return serde_path_to_error::deserialize(value)
            .map_err(|e| (display_path(&e.path().to_string()), e.inner().to_string()));
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    let spec: Spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = display_path(&e.path().to_string());
        if path.starts_with("process.capabilities") {
            // oci-spec's message for an unknown name is cryptic: name it.
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) {
                if let Some(msg) = unknown_capability(&v) {
                    return (path, msg);
                }
            }
        }
        (path, e.inner().to_string())
    })?;
    de.end().map_err(|e| (".".to_string(), e.to_string()))?;
    Ok(spec)
}

/// The first name under `process.capabilities` that oci-spec does not
/// know, as a message naming its set (oci-spec's own is cryptic).
fn unknown_capability(config: &serde_json::Value) -> Option<String> {
    let sets = config.pointer("/process/capabilities")?.as_object()?;
    for (set, names) in sets {
        for name in names.as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            let canonical = caps::to_canonical(name);
            let known = canonical
                .trim_start_matches("CAP_")
                .parse::<oci_spec::runtime::Capability>()
                .is_ok();
            if !known {
                return Some(format!(
                    "unknown capability {name:?} in process.capabilities.{set}"
                ));
            }
        }
    }
    None
}

fn display_path(p: &str) -> String {
    if p.is_empty() || p == "." {
        "(top level)".to_string()
    } else {
        p.to_string()
    }
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The checks a runtime must make that parsing does not: each error names
/// the offending JSON path. Only the config is looked at, never the host.
pub fn validate(spec: Spec) -> Result<Config, SpecError> {
    let version = spec.version();
    if version.is_empty() {
        return Err(invalid("ociVersion", "missing"));
    }
    if !version.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("unsupported version {version:?} (rtctr implements 1.x)"),
        ));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    if root.path().as_os_str().is_empty() {
        return Err(invalid("root.path", "missing"));
    }
    let (root_path, root_readonly) = (root.path().clone(), root.readonly().unwrap_or(false));
    // Optional until `start` (runtime-spec: "process ... REQUIRED at start").
    let process = spec.process().clone();
    let process = process
        .map(|p| validate_process(p, CONFIG, "process."))
        .transpose()?;
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if !m.destination().is_absolute() {
                return Err(invalid(
                    format!("mounts[{i}].destination"),
                    format!("{:?} is not an absolute path", m.destination()),
                ));
            }
        }
    }
    check_hooks(&spec)?;
    let linux = spec
        .linux()
        .clone()
        .ok_or_else(|| invalid("linux", "missing"))?;
    validate_linux(&spec, &linux)?;
    Ok(Config {
        spec,
        root_path,
        root_readonly,
        process,
        linux,
    })
}

/// Checks a `process`: from config.json (`prefix` "process.") or from
/// `exec --process FILE` (`file` that path, `prefix` ""), so both fail
/// alike, naming the field.
pub fn validate_process(
    process: Process,
    file: &str,
    prefix: &str,
) -> Result<ValidProcess, SpecError> {
    let invalid = |field: String, msg: String| SpecError::Invalid {
        file: file.to_string(),
        path: format!("{prefix}{field}"),
        msg,
    };
    let argv = match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => args.clone(),
        _ => {
            return Err(invalid(
                "args".into(),
                "must name the program to run".into(),
            ))
        }
    };
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "cwd".into(),
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    let env = process.env().as_deref().unwrap_or_default();
    if let Some((i, e)) = env.iter().enumerate().find(|(_, e)| !e.contains('=')) {
        return Err(invalid(
            format!("env[{i}]"),
            format!("{e:?} is not of the form NAME=value"),
        ));
    }
    check_rlimits(process.rlimits().as_deref().unwrap_or_default())
        .map_err(|(field, msg)| invalid(field, msg))?;
    let user = process.user();
    let gids = user.additional_gids().as_deref().unwrap_or_default();
    let ids = [
        ("user.uid".to_string(), user.uid()),
        ("user.gid".to_string(), user.gid()),
    ];
    let extra = gids.iter().enumerate();
    for (field, id) in ids
        .into_iter()
        .chain(extra.map(|(i, g)| (format!("user.additionalGids[{i}]"), *g)))
    {
        check_id(id).map_err(|msg| invalid(field, msg))?;
    }
    Ok(ValidProcess { process, argv })
}

fn validate_linux(spec: &Spec, linux: &Linux) -> Result<(), SpecError> {
    check_namespaces(linux)?;
    check_all_ids(spec, linux)?;
    check_not_implemented(linux)?;
    check_absolute_paths(linux)?;
    let ns = Namespaces(linux.namespaces().as_deref().unwrap_or_default());
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if value.as_deref().is_some_and(|v| !v.is_empty()) && !ns.has(LinuxNamespaceType::Uts) {
            return Err(invalid(
                field,
                format!("cannot set a {field} without a private UTS namespace"),
            ));
        }
    }
    check_id_mappings(linux, &ns)?;
    check_net_devices(linux, &ns)?;
    check_idmapped_mounts(spec, linux, &ns)?;
    if linux.time_offsets().is_some() && !ns.creates(LinuxNamespaceType::Time) {
        return Err(invalid(
            "linux.timeOffsets",
            "time offsets need a new time namespace",
        ));
    }
    for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
        check_sysctl(key, &ns)?;
    }
    for (key, field, value) in [
        ("kernel.hostname", "hostname", spec.hostname()),
        ("kernel.domainname", "domainname", spec.domainname()),
    ] {
        let set = value.as_deref().is_some_and(|v| !v.is_empty());
        if set && linux.sysctl().as_ref().is_some_and(|s| s.contains_key(key)) {
            return Err(invalid(
                format!("linux.sysctl.{key}"),
                format!("conflicts with {field}: set one of them"),
            ));
        }
    }
    let propagation = linux.rootfs_propagation().as_deref().unwrap_or_default();
    const PROPAGATIONS: &[&str] = &[
        "",
        "private",
        "rprivate",
        "slave",
        "rslave",
        "shared",
        "rshared",
        "unbindable",
        "runbindable",
    ];
    if !PROPAGATIONS.contains(&propagation) {
        return Err(invalid(
            "linux.rootfsPropagation",
            format!("unknown propagation {propagation:?}"),
        ));
    }
    Ok(())
}

/// What rtctr does not implement yet is refused, never silently dropped
/// (`features` says the same).
fn check_not_implemented(linux: &Linux) -> Result<(), SpecError> {
    if linux.intel_rdt().is_some() {
        let why = if Path::new("/sys/fs/resctrl/info").exists() {
            "not supported by rtctr yet"
        } else {
            "resctrl is not mounted at /sys/fs/resctrl: Intel RDT is not available on this host"
        };
        return Err(invalid("linux.intelRdt", why));
    }
    Ok(())
}

/// Idmapped mounts: `uidMappings` with `gidMappings`, on bind mounts;
/// `idmap`/`ridmap` alone take the container's user namespace mappings,
/// so it must have some (the spec: else an error).
fn check_idmapped_mounts(spec: &Spec, linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        let options = m.options().as_deref().unwrap_or_default();
        let asked = options.iter().any(|o| o == "idmap" || o == "ridmap");
        let (uid, gid) = (m.uid_mappings().is_some(), m.gid_mappings().is_some());
        if uid != gid {
            let (field, other) = if uid {
                ("uidMappings", "gidMappings")
            } else {
                ("gidMappings", "uidMappings")
            };
            return Err(invalid(
                format!("mounts[{i}].{field}"),
                format!("must be given with {other}"),
            ));
        }
        if !uid && !asked {
            continue;
        }
        let bind = m.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        if !bind {
            return Err(invalid(
                format!("mounts[{i}]"),
                "rtctr makes idmapped mounts of bind mounts only",
            ));
        }
        let container_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        let from_container = ns.creates(LinuxNamespaceType::User) && container_maps;
        if !uid && !from_container {
            return Err(invalid(
                format!("mounts[{i}].options"),
                "idmap without uidMappings and gidMappings needs the container's user namespace mappings",
            ));
        }
    }
    Ok(())
}

/// The container's `linux.namespaces`, asked which it has.
struct Namespaces<'a>(&'a [oci_spec::runtime::LinuxNamespace]);

impl Namespaces<'_> {
    /// New or joined by path.
    fn has(&self, t: LinuxNamespaceType) -> bool {
        self.0.iter().any(|n| n.typ() == t)
    }

    fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.0.iter().any(|n| n.typ() == t && n.path().is_none())
    }
}

/// `linux.netDevices`: interface names the kernel takes (at most 15
/// bytes, no `/`, `:` or whitespace; `%d` allowed in the container-side
/// name), each container-side name once, and a network namespace that is
/// not rtctr's. Whether the host has the devices is checked at create.
fn check_net_devices(linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let Some(devices) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    if !ns.has(LinuxNamespaceType::Network) {
        return Err(invalid(
            "linux.netDevices",
            "moving devices needs a network namespace of the container's own",
        ));
    }
    let mut names = HashSet::new();
    let mut keys: Vec<_> = devices.iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (host, dev) in keys {
        let field = format!("linux.netDevices.{host}");
        check_ifname(host, false).map_err(|why| invalid(&field, why))?;
        let name = dev.name().as_deref().unwrap_or(host);
        check_ifname(name, true).map_err(|why| invalid(format!("{field}.name"), why))?;
        if !name.contains("%d") && !names.insert(name) {
            return Err(invalid(
                format!("{field}.name"),
                format!("{name:?} is given to two devices"),
            ));
        }
    }
    Ok(())
}

/// A network interface name as the kernel's dev_valid_name() takes it.
pub fn check_ifname(name: &str, template: bool) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!("{name:?} is not 1 to 15 bytes long"));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    if name.matches('%').count() > usize::from(template)
        || (name.contains('%') && !name.contains("%d"))
    {
        return Err(format!(
            "{name:?}: only one %d is allowed, in the container-side name"
        ));
    }
    Ok(())
}

/// Each namespace type once; joined ones by absolute path.
fn check_namespaces(linux: &Linux) -> Result<(), SpecError> {
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace {}", ns.typ()),
            ));
        }
        if let Some(p) = ns.path().as_ref().filter(|p| !p.is_absolute()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].path"),
                format!("{p:?} is not an absolute path"),
            ));
        }
    }
    Ok(())
}

fn check_absolute_paths(linux: &Linux) -> Result<(), SpecError> {
    for (field, paths) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        for (i, p) in paths.as_deref().unwrap_or_default().iter().enumerate() {
            if !p.starts_with('/') {
                return Err(invalid(
                    format!("{field}[{i}]"),
                    format!("{p:?} is not an absolute path"),
                ));
            }
        }
    }
    Ok(())
}

/// A new user namespace needs both maps; maps need a user namespace.
fn check_id_mappings(linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let uid = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid = linux.gid_mappings().as_deref().unwrap_or_default();
    if ns.creates(LinuxNamespaceType::User) && (uid.is_empty() || gid.is_empty()) {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if !ns.has(LinuxNamespaceType::User) && uid.len() + gid.len() > 0 {
        return Err(invalid(
            "linux.uidMappings",
            "uid/gid mappings need a user namespace",
        ));
    }
    Ok(())
}

/// A hook's `path` is absolute (the spec: "similar semantics to
/// IEEE Std 1003.1-2008 execv's path", never looked up in $PATH).
fn check_hooks(spec: &Spec) -> Result<(), SpecError> {
    let Some(h) = spec.hooks() else {
        return Ok(());
    };
    let kinds = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.as_deref().unwrap_or_default().iter().enumerate() {
            if !hook.path().is_absolute() {
                return Err(invalid(
                    format!("hooks.{kind}[{i}].path"),
                    format!("{:?} is not an absolute path", hook.path()),
                ));
            }
        }
    }
    Ok(())
}

/// The largest uid or gid a container may name, as in runc: `(uid_t)-1`
/// means "leave unchanged" to setresuid and chown (a container asking
/// for uid 4294967295 would run as root), and ids past 2^31-1 are
/// negative to much of userspace.
pub const MAX_ID: u32 = i32::MAX as u32;

fn check_id(id: u32) -> Result<(), String> {
    match id {
        0..=MAX_ID => Ok(()),
        _ => Err(format!("{id} is out of range (0-{MAX_ID})")),
    }
}

/// An id mapping: the container side within 0-2^31-1, the host side
/// within what the kernel maps (no range reaching `(uid_t)-1`), size >= 1.
fn check_mapping(m: &oci_spec::runtime::LinuxIdMapping) -> Result<(), String> {
    if m.size() == 0 {
        return Err("size 0 maps nothing".into());
    }
    let last = |first: u32| u64::from(first) + u64::from(m.size()) - 1;
    if last(m.container_id()) > u64::from(MAX_ID) {
        return Err(format!(
            "containerID {} with size {} reaches past {MAX_ID}",
            m.container_id(),
            m.size()
        ));
    }
    if last(m.host_id()) >= u64::from(u32::MAX) {
        return Err(format!(
            "hostID {} with size {} reaches {}",
            m.host_id(),
            m.size(),
            u32::MAX
        ));
    }
    Ok(())
}

type Mappings = Option<Vec<oci_spec::runtime::LinuxIdMapping>>;

/// Each mapping of a uid and a gid list, with its field name.
fn mappings<'a>(
    prefix: &str,
    uid: &'a Mappings,
    gid: &'a Mappings,
) -> Vec<(String, &'a oci_spec::runtime::LinuxIdMapping)> {
    let mut all = Vec::new();
    for (name, list) in [("uidMappings", uid), ("gidMappings", gid)] {
        for (i, m) in list.as_deref().unwrap_or_default().iter().enumerate() {
            all.push((format!("{prefix}{name}[{i}]"), m));
        }
    }
    all
}

/// `linux.uidMappings`, `linux.gidMappings`, each mount's idmaps and each
/// device's owner.
fn check_all_ids(spec: &Spec, linux: &Linux) -> Result<(), SpecError> {
    let mut all = mappings("linux.", linux.uid_mappings(), linux.gid_mappings());
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        all.extend(mappings(
            &format!("mounts[{i}]."),
            m.uid_mappings(),
            m.gid_mappings(),
        ));
    }
    for (field, m) in all {
        check_mapping(m).map_err(|msg| invalid(field, msg))?;
    }
    for (i, d) in linux
        .devices()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        for (name, id) in [("uid", d.uid()), ("gid", d.gid())] {
            if let Some(id) = id {
                check_id(id).map_err(|msg| invalid(format!("linux.devices[{i}].{name}"), msg))?;
            }
        }
    }
    Ok(())
}

/// Each rlimit once, soft at most hard: (field, message) on error.
fn check_rlimits(rlimits: &[oci_spec::runtime::PosixRlimit]) -> Result<(), (String, String)> {
    let mut seen = HashSet::new();
    for (i, r) in rlimits.iter().enumerate() {
        if !seen.insert(format!("{:?}", r.typ())) {
            return Err((format!("rlimits[{i}].type"), "duplicate rlimit".into()));
        }
        if r.soft() > r.hard() {
            return Err((
                format!("rlimits[{i}]"),
                format!("soft limit {} is above hard limit {}", r.soft(), r.hard()),
            ));
        }
    }
    Ok(())
}

/// A sysctl may only be set when the namespace it belongs to is the
/// container's own (as runc checks).
fn check_sysctl(key: &str, namespaces: &Namespaces) -> Result<(), SpecError> {
    let path = format!("linux.sysctl.{key}");
    if key.contains("..") || key.starts_with('/') || key.is_empty() {
        return Err(invalid(path, "not a sysctl name"));
    }
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let ns = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else if key.starts_with("user.") {
        LinuxNamespaceType::User
    } else {
        return Err(invalid(
            path,
            "not namespaced: setting it would change the host",
        ));
    };
    if !namespaces.has(ns) {
        return Err(invalid(
            path,
            format!("needs the container's own {ns} namespace"),
        ));
    }
    Ok(())
}

/// The default `config.json` written by `rtctr spec`, as `runc spec` writes it.
pub const DEFAULT_CONFIG: &str = r#"{
	"ociVersion": "1.2.0",
	"process": {
		"terminal": true,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"effective": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"permitted": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "rtctr",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": [
				"nosuid",
				"strictatime",
				"mode=755",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": [
				"nosuid",
				"noexec",
				"newinstance",
				"ptmxmode=0666",
				"mode=0620",
				"gid=5"
			]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"mode=1777",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": [
				"nosuid",
				"noexec",
				"nodev"
			]
		},
		{
			"destination": "/sys",
			"type": "sysfs",
			"source": "sysfs",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"ro"
			]
		},
		{
			"destination": "/sys/fs/cgroup",
			"type": "cgroup",
			"source": "cgroup",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"relatime",
				"ro"
			]
		}
	],
	"linux": {
		"resources": {
			"devices": [
				{
					"allow": false,
					"access": "rwm"
				}
			]
		},
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "network"
			},
			{
				"type": "ipc"
			},
			{
				"type": "uts"
			},
			{
				"type": "mount"
			},
			{
				"type": "cgroup"
			}
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/asound",
			"/proc/kcore",
			"/proc/keys",
			"/proc/latency_stats",
			"/proc/timer_list",
			"/proc/timer_stats",
			"/proc/sched_debug",
			"/sys/firmware",
			"/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger"
		]
	}
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        edit(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    fn check(raw: &[u8]) -> Result<Config, String> {
        let spec = parse(raw).map_err(|(p, m)| format!("{p}: {m}"))?;
        validate(spec).map_err(|e| e.to_string())
    }

    #[test]
    fn default_config_is_valid() {
        let config = check(DEFAULT_CONFIG.as_bytes()).unwrap();
        assert_eq!(config.spec.hostname().as_deref(), Some("rtctr"));
        assert_eq!(
            config.process.as_ref().map(|p| p.argv()),
            Some(&["sh".to_string()][..])
        );
        assert!(config.root_readonly);
        assert_eq!(config.linux.namespaces().as_ref().map(Vec::len), Some(6));
    }

    #[test]
    fn net_devices_need_valid_names_and_a_network_namespace() {
        let ok = with(|v| {
            v["linux"]["netDevices"] = serde_json::json!({"veth9": {"name": "net%d"}, "eth1": {}})
        });
        check(&ok).unwrap();
        for (devices, want) in [
            (
                serde_json::json!({"eth1": {"name": "a/b"}}),
                "linux.netDevices.eth1.name: \"a/b\" is not a valid",
            ),
            (
                serde_json::json!({"averyveryverylongname": {}}),
                "linux.netDevices.averyveryverylongname: \"averyveryverylongname\" is not 1 to 15",
            ),
            (
                serde_json::json!({"eth%d": {}}),
                "linux.netDevices.eth%d: \"eth%d\": only one %d",
            ),
            (
                serde_json::json!({"a": {"name": "n"}, "b": {"name": "n"}}),
                "linux.netDevices.b.name: \"n\" is given to two devices",
            ),
        ] {
            let err = check(&with(|v| v["linux"]["netDevices"] = devices.clone())).unwrap_err();
            assert!(err.contains(want), "{devices}: {err}");
        }
        let no_netns = with(|v| {
            v["linux"]["netDevices"] = serde_json::json!({"eth1": {}});
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "network");
        });
        let err = check(&no_netns).unwrap_err();
        assert!(
            err.contains("linux.netDevices: moving devices needs"),
            "{err}"
        );
    }

    #[test]
    fn parse_error_names_json_path() {
        let raw = with(|v| v["process"]["args"] = "sh".into());
        let err = check(&raw).unwrap_err();
        assert!(err.starts_with("process.args: invalid type"), "{err}");
        let raw = with(|v| v["linux"]["namespaces"][1]["type"] = "netns".into());
        let err = check(&raw).unwrap_err();
        assert!(
            err.starts_with("linux.namespaces[1].type: unknown variant"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_capability_is_named_with_its_set() {
        let raw = with(|v| {
            v["process"]["capabilities"] = serde_json::json!({
                "bounding": ["CAP_CHOWN", "cap_net_raw"], "effective": ["CAP_FOO"]})
        });
        let err = check(&raw).unwrap_err();
        assert_eq!(
            err,
            "process.capabilities.effective[0]: unknown capability \"CAP_FOO\" in process.capabilities.effective"
        );
        let raw =
            with(|v| v["process"]["capabilities"] = serde_json::json!({"bounding": ["net_raw"]}));
        check(&raw).unwrap();
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let mut raw = DEFAULT_CONFIG.as_bytes().to_vec();
        raw.extend_from_slice(b"}");
        assert!(check(&raw).is_err());
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (with(|v| v["ociVersion"] = "2.0.0".into()), "ociVersion"),
            (with(|v| v["process"]["cwd"] = "tmp".into()), "process.cwd"),
            (
                with(|v| v["process"]["args"] = serde_json::json!([])),
                "process.args",
            ),
            (
                with(|v| v["process"]["env"] = serde_json::json!(["X"])),
                "process.env[0]",
            ),
            (
                with(|v| {
                    v["linux"]["namespaces"] = serde_json::json!([{"type":"pid"},{"type":"pid"}])
                }),
                "linux.namespaces[1].type",
            ),
            (
                with(|v| v["linux"]["namespaces"] = serde_json::json!([{"type":"mount"}])),
                "hostname",
            ),
            (
                with(|v| v["mounts"][0]["destination"] = "proc".into()),
                "mounts[0].destination",
            ),
            (
                with(|v| v["linux"]["sysctl"] = serde_json::json!({"kernel.panic": "1"})),
                "linux.sysctl.kernel.panic",
            ),
            (
                with(|v| {
                    v["linux"]["namespaces"] = serde_json::json!([{"type":"user"},{"type":"uts"}])
                }),
                "linux.uidMappings",
            ),
            (
                with(|v| {
                    v["process"]["rlimits"] =
                        serde_json::json!([{"type":"RLIMIT_NOFILE","hard":1,"soft":2}])
                }),
                "process.rlimits[0]",
            ),
        ];
        let more: Vec<(Vec<u8>, &str)> = vec![
            (
                with(|v| v["linux"]["rootfsPropagation"] = "bogus".into()),
                "config.json: linux.rootfsPropagation: unknown propagation \"bogus\"",
            ),
            (
                with(|v| v["linux"]["timeOffsets"] = serde_json::json!({"monotonic": {"secs": 1}})),
                "config.json: linux.timeOffsets: time offsets need a new time namespace",
            ),
            (
                with(|v| {
                    v["domainname"] = "d".into();
                    v["hostname"] = "".into();
                    v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]);
                }),
                "config.json: domainname: cannot set a domainname without a private UTS namespace",
            ),
            (
                with(|v| v["linux"]["namespaces"][0]["path"] = "proc/1/ns/pid".into()),
                "config.json: linux.namespaces[0].path: \"proc/1/ns/pid\" is not an absolute path",
            ),
            (
                with(|v| v["linux"]["maskedPaths"][0] = "proc/kcore".into()),
                "config.json: linux.maskedPaths[0]: \"proc/kcore\" is not an absolute path",
            ),
            (
                with(|v| {
                    v["linux"]["uidMappings"] =
                        serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}])
                }),
                "config.json: linux.uidMappings: uid/gid mappings need a user namespace",
            ),
            (
                with(|v| {
                    v["process"]["rlimits"] = serde_json::json!([
                        {"type": "RLIMIT_NOFILE", "hard": 2, "soft": 1},
                        {"type": "RLIMIT_NOFILE", "hard": 2, "soft": 1}
                    ])
                }),
                "config.json: process.rlimits[1].type: duplicate rlimit",
            ),
            (
                with(|v| v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"})),
                "",
            ),
            (
                with(|v| {
                    v["hooks"] =
                        serde_json::json!({"poststop": [{"path": "/bin/true"}, {"path": "true"}]})
                }),
                "config.json: hooks.poststop[1].path: \"true\" is not an absolute path",
            ),
        ];
        for (raw, field) in cases.into_iter().chain(more) {
            match check(&raw) {
                Err(err) => assert!(
                    !field.is_empty() && err.contains(field),
                    "expected {field:?} in {err}"
                ),
                Ok(_) => assert!(field.is_empty(), "accepted, wanted {field}"),
            }
        }
    }

    #[test]
    fn ids_the_kernel_treats_specially_are_refused() {
        let maps = |field: &str, m: serde_json::Value| {
            with(|v| {
                v["linux"]["namespaces"] =
                    serde_json::json!([{"type": "user"}, {"type": "uts"}, {"type": "mount"}]);
                v["linux"]["uidMappings"] =
                    serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
                v["linux"]["gidMappings"] =
                    serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
                v["linux"][field] = serde_json::json!([m]);
            })
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                with(|v| v["process"]["user"]["uid"] = 4294967295u32.into()),
                "process.user.uid: 4294967295 is out of range",
            ),
            (
                with(|v| v["process"]["user"]["gid"] = 2147483648u32.into()),
                "process.user.gid: 2147483648 is out of range",
            ),
            (
                with(|v| {
                    v["process"]["user"]["additionalGids"] = serde_json::json!([5, 4294967295u32])
                }),
                "process.user.additionalGids[1]: 4294967295 is out of range",
            ),
            (
                maps(
                    "uidMappings",
                    serde_json::json!({"containerID": 2147483647u32, "hostID": 1, "size": 2}),
                ),
                "linux.uidMappings[0]: containerID 2147483647 with size 2 reaches past",
            ),
            (
                maps(
                    "gidMappings",
                    serde_json::json!({"containerID": 0, "hostID": 4294967295u32, "size": 1}),
                ),
                "linux.gidMappings[0]: hostID 4294967295 with size 1 reaches 4294967295",
            ),
            (
                maps(
                    "uidMappings",
                    serde_json::json!({"containerID": 0, "hostID": 0, "size": 0}),
                ),
                "linux.uidMappings[0]: size 0 maps nothing",
            ),
            (
                with(|v| {
                    v["mounts"][0]["uidMappings"] =
                        serde_json::json!([{"containerID": 4294967295u32, "hostID": 0, "size": 1}])
                }),
                "mounts[0].uidMappings[0]: containerID 4294967295",
            ),
            (
                with(|v| {
                    v["linux"]["devices"] = serde_json::json!([
                        {"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "uid": 4294967295u32}
                    ])
                }),
                "linux.devices[0].uid: 4294967295 is out of range",
            ),
        ];
        for (raw, want) in cases {
            let err = check(&raw).unwrap_err();
            assert!(err.contains(want), "expected {want:?} in {err}");
        }
        check(&with(|v| v["process"]["user"]["uid"] = MAX_ID.into())).unwrap();
        check(&maps(
            "uidMappings",
            serde_json::json!({"containerID": 0, "hostID": 100000, "size": 65536}),
        ))
        .unwrap();
    }

    #[test]
    fn an_exec_process_is_checked_like_the_configs() {
        let process: Process = serde_json::from_value(serde_json::json!(
            {"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}}
        ))
        .unwrap();
        let err = validate_process(process, "/tmp/p.json", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/tmp/p.json: args: must name the program to run"
        );
        let process: Process = serde_json::from_value(serde_json::json!(
            {"args": ["sh"], "cwd": "/", "env": ["A=1", "B"], "user": {"uid": 0, "gid": 0}}
        ))
        .unwrap();
        let err = validate_process(process, "p.json", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.json: env[1]: \"B\" is not of the form NAME=value"
        );
    }

    #[test]
    fn spec_scheduler_flag_names_are_accepted() {
        let raw = with(|v| {
            v["process"]["scheduler"] =
                serde_json::json!({"policy":"SCHED_OTHER","flags":["SCHED_FLAG_RESET_ON_FORK"]})
        });
        check(&raw).unwrap();
    }
}
