//! What CRIU must be told about a container, at dump and at restore alike:
//! the mounts whose source lies outside it (binds from the host, masked
//! files, device nodes, the cgroup hierarchies bound without a cgroup
//! namespace), the namespaces it joined rather than made, and the
//! options both requests share. The verbs are `commands::checkpoint` and
//! [`super::restore`].

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rtctr_cgroups::Cgroup;

use super::criu::rpc::{CgMode, ExtMountMap, Opts};
use super::devices;

/// CRIU's log level for dump and restore: 4 (debug), as runc uses, so a
/// failure can be read in the log.
pub const LOG_LEVEL: i32 = 4;

/// The key CRIU names the container's joined network namespace by
/// (`--external net[inode]:extRootNetNS` at dump, `inherit_fd` at restore).
pub const NETNS_KEY: &str = "extRootNetNS";

/// The descriptor paths (`/proc/<init>/fd/{0,1,2}`) at dump, in the
/// images directory as runc writes them, so restore can give pipes
/// to the restored init in their place.
pub const DESCRIPTORS: &str = "descriptors.json";

/// The built-in network attachment at dump (the state's record), in the
/// images directory: restore attaches the container again with its address.
pub const NETWORK: &str = "network.json";

/// The files the built-in network binds into the container's /etc, from
/// the state directory.
pub const NETWORK_FILES: [&str; 2] = ["resolv.conf", "hosts"];

/// A container on the built-in network: its network namespace is dumped
/// empty (the veth's peer is on the host's bridge), and its /etc files
/// are external binds from the state directory.
pub fn network_options(o: &mut Opts, state_dir: &Path) -> Vec<External> {
    o.empty_ns = Some(o.empty_ns.unwrap_or(0) | libc::CLONE_NEWNET as u32);
    NETWORK_FILES
        .iter()
        .map(|f| External {
            dest: format!("/etc/{f}"),
            source: state_dir.join(f),
            masked: false,
        })
        .collect()
}

/// `--manage-cgroups-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupsMode {
    Soft,
    Full,
    Strict,
    Ignore,
}

impl CgroupsMode {
    pub fn parse(s: &str) -> Option<CgroupsMode> {
        Some(match s {
            "soft" => CgroupsMode::Soft,
            "full" => CgroupsMode::Full,
            "strict" => CgroupsMode::Strict,
            "ignore" => CgroupsMode::Ignore,
            _ => return None,
        })
    }

    fn rpc(self) -> CgMode {
        match self {
            CgroupsMode::Soft => CgMode::Soft,
            CgroupsMode::Full => CgMode::Full,
            CgroupsMode::Strict => CgMode::Strict,
            CgroupsMode::Ignore => CgMode::Ignore,
        }
    }
}

/// The flags `checkpoint` and `restore` share (runc's).
#[derive(Debug, Default, Clone)]
pub struct CriuFlags {
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<CgroupsMode>,
    /// `--empty-ns`: namespaces made empty at restore (CRIU supports
    /// only the network namespace).
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error("--empty-ns {0:?}: CRIU can only leave the network namespace empty (use network)")]
    EmptyNs(String),
}

impl CriuFlags {
    /// The request options these flags set.
    pub fn apply(&self, opts: &mut Opts) -> Result<(), FlagError> {
        opts.tcp_established = Some(self.tcp_established);
        opts.ext_unix_sk = Some(self.ext_unix_sk);
        opts.shell_job = Some(self.shell_job);
        opts.file_locks = Some(self.file_locks);
        opts.auto_dedup = Some(self.auto_dedup);
        opts.manage_cgroups = Some(true);
        opts.manage_cgroups_mode = self.manage_cgroups_mode.map(|m| m.rpc() as i32);
        let mut empty = 0u32;
        for ns in &self.empty_ns {
            match ns.as_str() {
                "network" | "net" => empty |= libc::CLONE_NEWNET as u32,
                other => return Err(FlagError::EmptyNs(other.to_string())),
            }
        }
        opts.empty_ns = (empty != 0).then_some(empty);
        opts.notify_scripts = Some(true);
        opts.orphan_pts_master = Some(true);
        opts.log_level = Some(LOG_LEVEL);
        Ok(())
    }
}

/// A mount of the container whose source is outside it: CRIU records it
/// by name (its destination) and binds it again from `source` at restore.
#[derive(Debug, Clone, PartialEq)]
pub struct External {
    pub dest: String,
    pub source: PathBuf,
    /// A masked path's /dev/null: only a mount where the path is a file
    /// (masked directories get a tmpfs, which CRIU dumps itself).
    pub masked: bool,
}

/// The container's external mounts, from its config: bind mounts
/// (relative sources are the bundle's), the cgroup hierarchies it gets
/// bound without a cgroup namespace, masked paths and device nodes
/// (bound from the host in a user namespace), as runc lists them.
pub fn external_mounts(spec: &Spec, bundle: &Path, cgroup: Option<&Cgroup>) -> Vec<External> {
    let mut out = Vec::new();
    let ext = |dest: &str, source: PathBuf, masked| External {
        dest: dest.to_string(),
        source,
        masked,
    };
    let cgroupns = has_namespace(spec, LinuxNamespaceType::Cgroup);
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let dest = m.destination().to_string_lossy().into_owned();
        let typ = m.typ().as_deref().unwrap_or("");
        let options = m.options().as_deref().unwrap_or_default();
        let bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        if bind {
            let source = m.source().clone().unwrap_or_default();
            out.push(ext(&dest, bundle.join(source), false));
        } else if typ == "cgroup" && !cgroupns {
            for cm in cgroup.map(Cgroup::mounts).unwrap_or_default() {
                let at = match cm.name.is_empty() {
                    true => dest.clone(),
                    false => format!("{}/{}", dest.trim_end_matches('/'), cm.name),
                };
                out.push(ext(&at, cm.host_dir.clone(), false));
            }
        }
    }
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default()
    {
        out.push(ext(p, PathBuf::from("/dev/null"), true));
    }
    let configured = linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    for node in devices::plan(configured).unwrap_or_default() {
        let path = node.path.to_string_lossy().into_owned();
        out.push(ext(&path, node.path.clone(), false));
    }
    out
}

/// Does the config ask for a namespace of this type (new or joined)?
pub fn has_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    namespace(spec, t).is_some()
}

/// The config's namespace of this type: Some(path) when it is joined.
pub fn namespace(spec: &Spec, t: LinuxNamespaceType) -> Option<Option<PathBuf>> {
    let linux = spec.linux().as_ref()?;
    let list = linux.namespaces().as_deref().unwrap_or_default();
    let ns = list.iter().find(|n| n.typ() == t)?;
    Some(ns.path().clone())
}

/// `ext_mnt` for a dump: each external mount named by its destination.
/// Masked paths count only where the container has a file (`is_dir`
/// answers for a path inside the container).
pub fn dump_ext_mnt(ext: &[External], is_dir: impl Fn(&str) -> Option<bool>) -> Vec<ExtMountMap> {
    ext.iter()
        .filter(|e| !e.masked || is_dir(&e.dest) == Some(false))
        .map(|e| ExtMountMap {
            key: e.dest.clone(),
            val: e.dest.clone(),
        })
        .collect()
}

/// `ext_mnt` for a restore: each name bound from its host source.
pub fn restore_ext_mnt(ext: &[External]) -> Vec<ExtMountMap> {
    ext.iter()
        .map(|e| ExtMountMap {
            key: e.dest.clone(),
            val: e.source.to_string_lossy().into_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn externals_are_binds_masked_files_and_devices() {
        let s = spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "/srv/data"},
                {"destination": "/etc/hosts", "type": "none", "source": "hosts", "options": ["rbind", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
            ],
            "linux": {
                "namespaces": [{"type": "mount"}, {"type": "network", "path": "/run/netns/x"}],
                "maskedPaths": ["/proc/kcore", "/proc/acpi"],
                "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
            }
        }));
        let ext = external_mounts(&s, Path::new("/b"), None);
        let dests: Vec<&str> = ext.iter().map(|e| e.dest.as_str()).collect();
        assert_eq!(
            dests,
            [
                "/data",
                "/etc/hosts",
                "/proc/kcore",
                "/proc/acpi",
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/fuse"
            ]
        );
        assert_eq!(ext[1].source, Path::new("/b/hosts"));
        // /proc/acpi is a directory in the container: a tmpfs, not external.
        let dump = dump_ext_mnt(&ext, |p| Some(p == "/proc/acpi"));
        assert!(dump.iter().all(|m| m.key == m.val && m.key != "/proc/acpi"));
        assert_eq!(dump.len(), ext.len() - 1);
        let restore = restore_ext_mnt(&ext);
        assert_eq!(restore[0].val, "/srv/data");
        assert_eq!(restore[2].val, "/dev/null");
        assert_eq!(
            namespace(&s, LinuxNamespaceType::Network),
            Some(Some(PathBuf::from("/run/netns/x")))
        );
        assert_eq!(namespace(&s, LinuxNamespaceType::Pid), None);
    }

    #[test]
    fn empty_ns_is_network_only() {
        let mut o = Opts::new(3);
        let f = CriuFlags {
            empty_ns: vec!["network".into()],
            ..Default::default()
        };
        f.apply(&mut o).unwrap();
        assert_eq!(o.empty_ns, Some(libc::CLONE_NEWNET as u32));
        let f = CriuFlags {
            empty_ns: vec!["ipc".into()],
            ..Default::default()
        };
        let e = f.apply(&mut o).unwrap_err().to_string();
        assert!(e.contains("\"ipc\""), "{e}");
    }
}
