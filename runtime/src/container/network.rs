//! The built-in network (annotation `rtctr.network`, code in `rtctr-hooks`):
//! attached by the parent once the init is in the container's network
//! namespace, while the init makes its mounts, with resolv.conf and hosts
//! written into the state directory; the init binds those over the image's
//! /etc files after the createRuntime hooks.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use crate::container::{resolve, user_net};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Net(#[from] rtctr_hooks::NetError),
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Rootless (user-mode) networking: what cannot be done, and why.
    #[error("{0}")]
    UserMode(String),
    #[error("open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("linux.netDevices.{0}: the host has no network interface {0:?}")]
    NoDevice(String),
    #[error("linux.netDevices.{name}: {source}")]
    Move {
        name: String,
        #[source]
        source: rtctr_hooks::NetError,
    },
    #[error("bind {source_path} on /etc/{name}: {source}")]
    Bind {
        source_path: PathBuf,
        name: &'static str,
        #[source]
        source: io::Error,
    },
}

/// The files the init binds into /etc.
const FILES: [&str; 2] = ["resolv.conf", "hosts"];

/// What [`attach`] made, for the state and for undoing it.
pub struct Attached {
    /// The network's name.
    pub network: String,
    /// The attachment as the state records it.
    pub record: serde_json::Value,
}

/// The network the annotations ask for, if any.
pub fn requested(
    id: &str,
    annotations: &std::collections::HashMap<String, String>,
) -> Result<Option<String>, NetworkError> {
    let req = rtctr_hooks::Request::from_annotations(id, 0, annotations)?;
    Ok(req.map(|r| r.network))
}

/// Checks the annotations before anything exists (a bad one fails create
/// without a trace), and returns the network they ask for.
/// Rootless, also what user-mode networking needs ([`user_net::check`]).
pub fn check(
    id: &str,
    annotations: &std::collections::HashMap<String, String>,
    new_netns: bool,
) -> Result<Option<String>, NetworkError> {
    let req = rtctr_hooks::Request::from_annotations(id, 0, annotations)?;
    if let Some(req) = req.as_ref().filter(|_| user_net::wanted()) {
        user_net::check(req, new_netns)?;
    }
    Ok(req.map(|r| r.network))
}

/// The record of a network before it is attached: its name (and, rootless,
/// that the user-mode helper is starting), so that `delete --force` after
/// a create killed half-way removes the lease and port rules it made.
pub fn intent(name: &str) -> serde_json::Value {
    match user_net::wanted() {
        true => serde_json::json!({ "network": name, "user_mode": "starting" }),
        false => serde_json::json!({ "network": name }),
    }
}

/// Rootless: connects the container in user mode ([`user_net`]).
pub fn attach_user_mode(
    id: &str,
    pid: i32,
    annotations: &std::collections::HashMap<String, String>,
    hostname: &str,
    state_dir: &Path,
) -> Result<Option<Attached>, NetworkError> {
    let Some(req) = rtctr_hooks::Request::from_annotations(id, pid as u32, annotations)? else {
        return Ok(None);
    };
    let record = user_net::attach(&req, pid, hostname, state_dir)?;
    Ok(Some(Attached {
        network: req.network,
        record,
    }))
}

/// Attaches the container (init `pid`) to the network its annotations
/// name, if any, and writes resolv.conf and hosts into `state_dir`.
pub fn attach(
    id: &str,
    pid: i32,
    annotations: &std::collections::HashMap<String, String>,
    hostname: &str,
    state_dir: &Path,
) -> Result<Option<Attached>, NetworkError> {
    let Some(req) = rtctr_hooks::Request::from_annotations(id, pid as u32, annotations)? else {
        return Ok(None);
    };
    let att = rtctr_hooks::setup(&req)?;
    let attached = Attached {
        network: att.network.clone(),
        record: serde_json::to_value(&att).map_err(|e| NetworkError::Write {
            path: state_dir.to_path_buf(),
            source: io::Error::other(e),
        })?,
    };
    let files = [
        rtctr_hooks::files::resolv_conf(),
        rtctr_hooks::files::hosts(hostname, Some(att.ip)),
    ];
    for (name, text) in FILES.iter().zip(files) {
        let path = state_dir.join(name);
        if let Err(source) = std::fs::write(&path, text) {
            detach(id, &attached.network);
            return Err(NetworkError::Write { path, source });
        }
    }
    Ok(Some(attached))
}

/// Removes the container's attachment (lease, veth, port rules); a failure
/// is logged, as cleanup goes on.
pub fn detach(id: &str, network: &str) {
    if let Err(e) = rtctr_hooks::teardown(id, Some(network)) {
        log::warn!("network teardown of {id}: {e}");
    }
}

/// [`detach`] once every process of the container is dead: the kernel
/// removes the veth pair with the container's network namespace.
pub fn release(id: &str, network: &str) {
    if let Err(e) = rtctr_hooks::release(id, Some(network)) {
        log::warn!("network teardown of {id}: {e}");
    }
}

/// `linux.netDevices` as (host name, container-side name) pairs, in name
/// order.
fn net_devices(linux: &oci_spec::runtime::Linux) -> Vec<(&str, &str)> {
    let mut out: Vec<_> = linux
        .net_devices()
        .iter()
        .flatten()
        .map(|(host, d)| (host.as_str(), d.name().as_deref().unwrap_or(host)))
        .collect();
    out.sort();
    out
}

/// Before anything exists: the host has every device `linux.netDevices`
/// names (a move is possible, as the spec asks the runtime to check).
pub fn check_net_devices(linux: &oci_spec::runtime::Linux) -> Result<(), NetworkError> {
    for (host, _) in net_devices(linux) {
        let found = rtctr_hooks::netdev::exists(host).map_err(|source| NetworkError::Move {
            name: host.to_string(),
            source,
        })?;
        if !found {
            return Err(NetworkError::NoDevice(host.to_string()));
        }
    }
    Ok(())
}

/// Moves the `linux.netDevices` interfaces into the network namespace of
/// the init `pid`, renamed, with their addresses, up. Nothing records
/// them: the kernel takes them back (physical) or destroys them (virtual)
/// when the namespace goes.
pub fn move_net_devices(pid: i32, linux: &oci_spec::runtime::Linux) -> Result<(), NetworkError> {
    let devices = net_devices(linux);
    if devices.is_empty() {
        return Ok(());
    }
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let ns = std::fs::File::open(&path).map_err(|source| NetworkError::Open {
        path: path.clone(),
        source,
    })?;
    for (host, name) in devices {
        rtctr_hooks::netdev::move_in(host, name, &ns).map_err(|source| NetworkError::Move {
            name: host.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// In the init: resolv.conf and hosts from the state directory are bound
/// over the image's /etc files when it has none (a read-only image
/// without /etc/resolv.conf is left alone).
pub fn bind_files(state_dir: &Path, root: BorrowedFd<'_>) -> Result<(), NetworkError> {
    for name in FILES {
        let source = state_dir.join(name);
        if !source.exists() {
            continue;
        }
        let dest = Path::new("/etc").join(name);
        if resolve::open_path(root, &dest, false)
            .is_ok_and(|fd| nix::sys::stat::fstat(fd.as_fd()).is_ok_and(|st| st.st_size > 0))
        {
            continue;
        }
        let Ok(target) = resolve::create_file(root, &dest) else {
            log::warn!("no /etc/{name} in the image and it is read-only: not providing one");
            continue;
        };
        nix::mount::mount(
            Some(&source),
            &resolve::fd_path(&target),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| NetworkError::Bind {
            source_path: source.clone(),
            name,
            source: e.into(),
        })?;
    }
    Ok(())
}
