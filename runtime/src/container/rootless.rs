//! What changes when rtctr runs without root: whether to treat cgroups
//! as the caller's to skip (`--rootless`, as runc defines it), how the
//! user namespace maps are written (directly for the caller's own ids,
//! else through the setuid `newuidmap`/`newgidmap` of Debian's `uidmap`),
//! and the checks that turn what a user cannot do into a clear error.

use std::fs::File;
use std::io;
use std::process::Command;
use std::sync::OnceLock;

use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("--rootless {0:?}: use true, false or auto")]
    Flag(String),
    #[error("rootless (uid {uid}): linux.namespaces has no user namespace; an unprivileged user can create the other namespaces only inside one of their own (see `rtctr spec --rootless`)")]
    NoUserNamespace { uid: u32 },
    #[error("rootless (uid {uid}): linux.{field} maps more than the caller's own id, which needs {tool} (Debian package uidmap) and a range in /etc/{ranges}: {tool} not found")]
    NoMapTool {
        uid: u32,
        field: &'static str,
        tool: &'static str,
        ranges: &'static str,
    },
    #[error("{tool} {args}: {reason}")]
    MapTool {
        tool: &'static str,
        args: String,
        reason: String,
    },
}

/// The `--rootless` flag: `Some(true|false)`, or `None` for auto.
pub fn parse_flag(value: Option<&str>) -> Result<Option<bool>, RootlessError> {
    match value {
        None | Some("" | "auto") => Ok(None),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
        Some(other) => Err(RootlessError::Flag(other.to_string())),
    }
}

/// Whether cgroups the caller cannot write are skipped, as runc decides
/// it: the flag when given; else yes for a non-root caller, and for root
/// inside a user namespace (rootless podman runs rtctr so), where the
/// cgroup tree is not known to be its own.
pub fn skip_unwritable_cgroups(flag: Option<bool>) -> bool {
    flag.unwrap_or_else(|| !is_root() || in_user_namespace())
}

/// The caller is uid 0 (of whatever user namespace it runs in).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Not in the initial user namespace, whose uid_map maps all 2^32-1 ids.
/// Read once per process (`create` asks several times): rtctr never
/// changes its own user namespace, only its children enter new ones, and
/// they do not ask.
pub fn in_user_namespace() -> bool {
    static IN_USER_NAMESPACE: OnceLock<bool> = OnceLock::new();
    *IN_USER_NAMESPACE.get_or_init(|| {
        match File::open("/proc/self/uid_map").and_then(rtctr_cgroups::read_kernel_file) {
            Ok(text) => !is_initial_map(&text),
            Err(_) => false,
        }
    })
}

fn is_initial_map(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// A non-root caller can make namespaces only under a user namespace.
pub fn check_namespaces(linux: &Linux) -> Result<(), RootlessError> {
    if is_root() {
        return Ok(());
    }
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    if namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User)
    {
        return Ok(());
    }
    Err(RootlessError::NoUserNamespace {
        uid: nix::unistd::geteuid().as_raw(),
    })
}

/// How one id map gets written for a new user namespace.
#[derive(Debug, PartialEq, Eq)]
pub enum MapWriter {
    /// The kernel lets the owner write it: root, or a single mapping of
    /// the caller's own id (for gids, once setgroups is "deny").
    Direct,
    /// Through the setuid helper (`newuidmap` or `newgidmap`), which
    /// checks the ranges in /etc/subuid or /etc/subgid.
    Helper(&'static str),
}

/// Which writer the uid (or gid) maps need for a caller with effective
/// id `own`, who is root or not.
pub fn map_writer(root: bool, own: u32, maps: &[LinuxIdMapping], gid: bool) -> MapWriter {
    let own_only = matches!(maps, [m] if m.host_id() == own && m.size() == 1);
    if root || own_only || maps.is_empty() {
        MapWriter::Direct
    } else if gid {
        MapWriter::Helper("newgidmap")
    } else {
        MapWriter::Helper("newuidmap")
    }
}

/// Checked before anything exists: the helper a mapping needs is there.
pub fn check_map_tools(linux: &Linux) -> Result<(), RootlessError> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let uids = linux.uid_mappings().as_deref().unwrap_or_default();
    let gids = linux.gid_mappings().as_deref().unwrap_or_default();
    for (field, writer, ranges) in [
        (
            "uidMappings",
            map_writer(is_root(), uid, uids, false),
            "subuid",
        ),
        (
            "gidMappings",
            map_writer(is_root(), gid, gids, true),
            "subgid",
        ),
    ] {
        if let MapWriter::Helper(tool) = writer {
            if find_tool(tool).is_none() {
                return Err(RootlessError::NoMapTool {
                    uid,
                    field,
                    tool,
                    ranges,
                });
            }
        }
    }
    Ok(())
}

/// `tool` on $PATH, or in /usr/bin or /usr/sbin.
pub fn find_tool(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into(), "/bin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Runs `newuidmap PID c h s ...` (or newgidmap).
pub fn run_map_tool(
    tool: &'static str,
    pid: i32,
    maps: &[LinuxIdMapping],
) -> Result<(), RootlessError> {
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
    }
    let fail = |reason: String| RootlessError::MapTool {
        tool,
        args: args.join(" "),
        reason,
    };
    let path = find_tool(tool).ok_or_else(|| fail("not found (Debian package uidmap)".into()))?;
    let out = Command::new(path)
        .args(&args)
        .output()
        .map_err(|e: io::Error| fail(e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(fail(format!(
        "{} ({}; the ranges allowed are in /etc/subuid and /etc/subgid)",
        stderr.trim(),
        out.status
    )))
}

/// The processes of a container that has no cgroup (rootless, none
/// writable): those in its init's pid namespace that the caller can see,
/// init first; just the init when it shares rtctr's pid namespace.
pub fn pids_without_cgroup(init: i32) -> Vec<i32> {
    let ns_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(ns) = ns_of(init) else {
        return Vec::new();
    };
    if ns_of(std::process::id() as i32).as_ref() == Some(&ns) {
        return vec![init];
    }
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|p: &i32| *p != init && ns_of(*p).as_ref() == Some(&ns))
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids.insert(0, init);
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(v: serde_json::Value) -> Vec<LinuxIdMapping> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn flag_is_runcs_bool_or_auto() {
        assert_eq!(parse_flag(None).unwrap(), None);
        assert_eq!(parse_flag(Some("auto")).unwrap(), None);
        assert_eq!(parse_flag(Some("true")).unwrap(), Some(true));
        assert_eq!(parse_flag(Some("1")).unwrap(), Some(true));
        assert_eq!(parse_flag(Some("False")).unwrap(), Some(false));
        let err = parse_flag(Some("yes")).unwrap_err().to_string();
        assert_eq!(err, "--rootless \"yes\": use true, false or auto");
        assert!(skip_unwritable_cgroups(Some(true)));
        assert!(!skip_unwritable_cgroups(Some(false)));
    }

    #[test]
    fn initial_user_namespace_map() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1001          1\n"));
    }

    #[test]
    fn own_id_is_written_directly_more_needs_the_helper() {
        let own = maps(serde_json::json!([{"containerID": 0, "hostID": 1001, "size": 1}]));
        let more = maps(serde_json::json!([
            {"containerID": 0, "hostID": 1001, "size": 1},
            {"containerID": 1, "hostID": 100000, "size": 65536}
        ]));
        assert_eq!(map_writer(false, 1001, &own, false), MapWriter::Direct);
        assert_eq!(
            map_writer(false, 1002, &own, true),
            MapWriter::Helper("newgidmap")
        );
        assert_eq!(
            map_writer(false, 1001, &more, false),
            MapWriter::Helper("newuidmap")
        );
        assert_eq!(map_writer(true, 0, &more, false), MapWriter::Direct);
    }
}
