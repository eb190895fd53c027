//! Device nodes in the container's /dev: the defaults every container gets,
//! `linux.devices`, the /dev symlinks and /dev/ptmx.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, Mode, SFlag};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::container::resolve;

#[derive(Debug, thiserror::Error)]
#[error("device {path}: {op}: {source}")]
pub struct DeviceError {
    path: PathBuf,
    op: &'static str,
    #[source]
    source: io::Error,
}

/// One node to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (runc's list), then `linux.devices`;
/// a configured path replaces a default one.
pub fn plan(configured: &[LinuxDevice]) -> Result<Vec<Node>, String> {
    let mut nodes: Vec<Node> = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, major, minor)| Node {
        path: p.into(),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect();
    for (i, d) in configured.iter().enumerate() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(format!(
                    "linux.devices[{i}].type: \"a\" is not a device type"
                ))
            }
        };
        if !d.path().is_absolute() {
            return Err(format!(
                "linux.devices[{i}].path: {:?} is not absolute",
                d.path()
            ));
        }
        let node = Node {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        nodes.retain(|n| n.path != node.path);
        nodes.push(node);
    }
    Ok(nodes)
}

/// Creates the nodes with mknod; where the kernel refuses (in a user
/// namespace), bind-mounts the host's node instead.
pub fn create(root: BorrowedFd<'_>, nodes: &[Node]) -> Result<(), DeviceError> {
    for n in nodes {
        let err = |op| {
            let path = n.path.clone();
            move |source: io::Error| DeviceError { path, op, source }
        };
        let parent = n.path.parent().unwrap_or(Path::new("/"));
        let dir = resolve::mkdir_all(root, parent, 0o755).map_err(err("create parent"))?;
        let name = n
            .path
            .file_name()
            .ok_or_else(|| err("name")(io::Error::from_raw_os_error(libc::EINVAL)))?;
        // Replace whatever the image has there.
        let _ = nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        let dev = makedev(n.major, n.minor);
        match nix::sys::stat::mknodat(
            dir.as_fd(),
            name,
            n.kind,
            Mode::from_bits_truncate(n.mode),
            dev,
        ) {
            Ok(()) => {
                nix::sys::stat::fchmodat(
                    dir.as_fd(),
                    name,
                    Mode::from_bits_truncate(n.mode),
                    nix::sys::stat::FchmodatFlags::NoFollowSymlink,
                )
                .or_else(|e| {
                    if e == nix::Error::EOPNOTSUPP {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| err("chmod")(e.into()))?;
                nix::unistd::fchownat(
                    dir.as_fd(),
                    name,
                    Some(Uid::from_raw(n.uid)),
                    Some(Gid::from_raw(n.gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| err("chown")(e.into()))?;
            }
            Err(nix::Error::EPERM) => {
                let target =
                    resolve::create_file(root, &n.path).map_err(err("create bind target"))?;
                mount(
                    Some(&n.path),
                    &resolve::fd_path(&target),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| err("bind host device")(e.into()))?;
            }
            Err(e) => return Err(err("mknod")(e.into())),
        }
    }
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core and /dev/ptmx -> pts/ptmx.
pub fn symlinks(root: BorrowedFd<'_>) -> Result<(), DeviceError> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    let dev = resolve::mkdir_all(root, Path::new("/dev"), 0o755).map_err(|source| DeviceError {
        path: "/dev".into(),
        op: "open",
        source,
    })?;
    for (target, name) in links {
        let err = |op| {
            move |source: nix::Error| DeviceError {
                path: Path::new("/dev").join(name),
                op,
                source: source.into(),
            }
        };
        if name == "ptmx" {
            let _ =
                nix::unistd::unlinkat(dev.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(err("symlink")(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_devices_replace_defaults() {
        let d: Vec<LinuxDevice> = serde_json::from_value(serde_json::json!([
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 5},
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
        ]))
        .unwrap();
        let nodes = plan(&d).unwrap();
        assert_eq!(nodes.len(), 7);
        let null = nodes
            .iter()
            .find(|n| n.path == Path::new("/dev/null"))
            .unwrap();
        assert_eq!((null.mode, null.uid), (0o600, 5));
        assert!(nodes
            .iter()
            .any(|n| n.path == Path::new("/dev/fuse") && n.major == 10));
    }

    #[test]
    fn bad_devices_are_named() {
        let d: Vec<LinuxDevice> =
            serde_json::from_value(serde_json::json!([{"path": "dev/x", "type": "c"}])).unwrap();
        assert!(plan(&d).unwrap_err().starts_with("linux.devices[0].path"));
    }
}
