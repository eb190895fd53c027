//! The container's /dev: [`plan`] (pure) lists runc's default nodes and
//! `linux.devices`; [`create`] makes them (mknod, or a bind of the host's node
//! in a user namespace); [`symlinks`] adds /dev/fd, /dev/std*, core and ptmx.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, Mode, SFlag};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::container::mounts::{Step, StepExt};
use crate::container::resolve;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("linux.devices[{index}].type: \"a\" is not a device type")]
    AllType { index: usize },
    #[error("linux.devices[{index}].path: {path:?} is not absolute")]
    RelativePath { index: usize, path: PathBuf },
    #[error("device {path}: {op}: {source}")]
    Op {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
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

/// runc's default devices: (path, major, minor), character devices, 0666.
const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The devices every container gets, then `linux.devices`; a configured
/// path replaces a default one.
pub fn plan(configured: &[LinuxDevice]) -> Result<Vec<Node>, DeviceError> {
    let mut nodes: Vec<Node> = DEFAULTS
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
    for (index, d) in configured.iter().enumerate() {
        let node = configured_node(index, d)?;
        nodes.retain(|n| n.path != node.path);
        nodes.push(node);
    }
    Ok(nodes)
}

fn configured_node(index: usize, d: &LinuxDevice) -> Result<Node, DeviceError> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => return Err(DeviceError::AllType { index }),
    };
    if !d.path().is_absolute() {
        return Err(DeviceError::RelativePath {
            index,
            path: d.path().clone(),
        });
    }
    Ok(Node {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Creates the nodes with mknod; where the kernel refuses (in a user
/// namespace), bind-mounts the host's node instead.
pub fn create(root: BorrowedFd<'_>, nodes: &[Node]) -> Result<(), DeviceError> {
    // Nodes mostly share a directory (/dev): it is resolved once for each
    // run of nodes with the same parent, not once per node.
    let mut parent: Option<(&Path, OwnedFd)> = None;
    for n in nodes {
        let err = |(op, source)| DeviceError::Op {
            path: n.path.clone(),
            op,
            source,
        };
        let dir_path = n.path.parent().unwrap_or(Path::new("/"));
        let dir = match parent.take() {
            Some((p, dir)) if p == dir_path => dir,
            _ => resolve::mkdir_all(root, dir_path, 0o755)
                .op("create parent")
                .map_err(err)?,
        };
        create_node(root, dir.as_fd(), n).map_err(err)?;
        parent = Some((dir_path, dir));
    }
    Ok(())
}

/// The node `n` in `dir`, its parent directory.
fn create_node(root: BorrowedFd<'_>, dir: BorrowedFd<'_>, n: &Node) -> Step {
    let name = n
        .path
        .file_name()
        .ok_or(("name", io::Error::from_raw_os_error(libc::EINVAL)))?;
    // Replace whatever the image has there.
    let _ = nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    let mode = Mode::from_bits_truncate(n.mode);
    match nix::sys::stat::mknodat(dir, name, n.kind, mode, makedev(n.major, n.minor)) {
        Ok(()) => set_mode_and_owner(dir, name, n),
        Err(nix::Error::EPERM) => bind_host_node(root, n),
        Err(e) => Err(("mknod", e.into())),
    }
}

/// chmod (mknod applied the umask) and chown, on the node itself.
fn set_mode_and_owner(dir: BorrowedFd<'_>, name: &OsStr, n: &Node) -> Step {
    match nix::sys::stat::fchmodat(
        dir,
        name,
        Mode::from_bits_truncate(n.mode),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    ) {
        Ok(()) | Err(nix::Error::EOPNOTSUPP) => {}
        Err(e) => return Err(("chmod", e.into())),
    }
    nix::unistd::fchownat(
        dir,
        name,
        Some(Uid::from_raw(n.uid)),
        Some(Gid::from_raw(n.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .op("chown")
}

fn bind_host_node(root: BorrowedFd<'_>, n: &Node) -> Step {
    let target = resolve::create_file(root, &n.path).op("create bind target")?;
    mount(
        Some(&n.path),
        &resolve::fd_path(&target),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .op("bind host device")
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
    let dev =
        resolve::mkdir_all(root, Path::new("/dev"), 0o755).map_err(|source| DeviceError::Op {
            path: "/dev".into(),
            op: "open",
            source,
        })?;
    for (target, name) in links {
        if name == "ptmx" {
            let _ =
                nix::unistd::unlinkat(dev.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => {
                return Err(DeviceError::Op {
                    path: Path::new("/dev").join(name),
                    op: "symlink",
                    source: e.into(),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(v: serde_json::Value) -> Vec<LinuxDevice> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_are_runcs_six_char_devices() {
        let nodes = plan(&[]).unwrap();
        let paths: Vec<&Path> = nodes.iter().map(|n| n.path.as_path()).collect();
        assert_eq!(
            paths,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
            .map(Path::new)
        );
        assert!(nodes
            .iter()
            .all(|n| n.kind == SFlag::S_IFCHR && n.mode == 0o666 && (n.uid, n.gid) == (0, 0)));
        assert_eq!((nodes[5].major, nodes[5].minor), (5, 0));
    }

    #[test]
    fn configured_devices_replace_defaults() {
        let d = devices(serde_json::json!([
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 5},
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
            {"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0}
        ]));
        let nodes = plan(&d).unwrap();
        assert_eq!(nodes.len(), 8);
        let nulls: Vec<&Node> = nodes
            .iter()
            .filter(|n| n.path == Path::new("/dev/null"))
            .collect();
        assert_eq!(nulls.len(), 1);
        assert_eq!((nulls[0].mode, nulls[0].uid), (0o600, 5));
        assert!(nodes
            .iter()
            .any(|n| n.path == Path::new("/dev/fuse") && n.major == 10 && n.minor == 229));
        assert_eq!(nodes[7].kind, SFlag::S_IFBLK);
    }

    #[test]
    fn type_a_is_refused_with_its_field() {
        let d = devices(serde_json::json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
            {"path": "/dev/all", "type": "a"}
        ]));
        let err = plan(&d).unwrap_err();
        assert!(matches!(err, DeviceError::AllType { index: 1 }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "linux.devices[1].type: \"a\" is not a device type"
        );
    }

    #[test]
    fn relative_paths_are_refused_with_their_field() {
        let d = devices(serde_json::json!([{"path": "dev/x", "type": "c"}]));
        let err = plan(&d).unwrap_err();
        assert!(matches!(err, DeviceError::RelativePath { index: 0, .. }));
        assert_eq!(
            err.to_string(),
            "linux.devices[0].path: \"dev/x\" is not absolute"
        );
    }
}
