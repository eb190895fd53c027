//! The crate's error type: every variant names the operation that failed and its object.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Errors of the networking hook.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A file-system operation on the state directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A network's state file does not parse.
    #[error("parsing network state {path}: {source}")]
    ParseState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// No network of that name.
    #[error("network {0:?} not found")]
    NotFound(String),
    /// `network_create` for a name that exists.
    #[error("network {0:?} already exists")]
    Exists(String),
    /// A bad argument to `network_create` (name, subnet, bridge, gateway).
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// A bad `rtctr.network*` annotation.
    #[error("annotation {key}={value:?}: {reason}")]
    Annotation {
        key: String,
        value: String,
        reason: String,
    },
    /// `network_remove` without force while containers are attached.
    #[error("network {name:?} still has {count} attached container(s); use force to remove it")]
    InUse { name: String, count: usize },
    /// The subnet has no free address.
    #[error("no free address left in network {name:?} ({subnet})")]
    Exhausted { name: String, subnet: String },
    /// A fixed address that is taken or unusable.
    #[error("address {ip} cannot be used on network {name:?}: {reason}")]
    Address {
        name: String,
        ip: Ipv4Addr,
        reason: String,
    },
    /// `setup` for a container that already holds a lease.
    #[error("container {container:?} is already attached to network {name:?}")]
    AlreadyAttached { container: String, name: String },
    /// `check` for a container that holds no lease on the network.
    #[error("container {container:?} is not attached to network {name:?}")]
    NotAttached { container: String, name: String },
    /// A host-port is already published by another container.
    #[error("host port {port}/{proto} is already published by container {holder:?}")]
    PortTaken {
        port: u16,
        proto: String,
        holder: String,
    },
    /// Opening or entering the container's network namespace failed.
    #[error("entering network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A netlink request failed.
    #[error("netlink: {op} {object}: {source}")]
    Netlink {
        op: &'static str,
        object: String,
        #[source]
        source: io::Error,
    },
    /// Applying the nftables ruleset failed.
    #[error("nftables: {op} table inet rtctr: {source}")]
    Nft {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// A step failed and undoing earlier steps failed too.
    #[error("{failed} (undo also failed: {undo})")]
    Rollback {
        #[source]
        failed: Box<NetError>,
        undo: String,
    },
}

impl NetError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        NetError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn netlink(op: &'static str, object: impl Into<String>, source: io::Error) -> Self {
        NetError::Netlink {
            op,
            object: object.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = NetError> = std::result::Result<T, E>;
