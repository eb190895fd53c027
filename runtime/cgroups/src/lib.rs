//! cgroup management for rtctr: one interface, with cgroup v1, v2 and hybrid
//! hosts behind it.
//!
//! The runtime uses it in this order:
//! 1. [`Cgroup::resolve`] turns `linux.cgroupsPath` into one directory per
//!    hierarchy (pure: touches nothing);
//! 2. [`Cgroup::create`] makes the directories and [`Cgroup::apply`] writes
//!    the resources;
//! 3. [`Cgroup::add_process`] moves a process in (0 = the caller);
//! 4. later commands re-open it from the state file (it is `Serialize`) to
//!    freeze, list pids, read stats, and finally [`Cgroup::destroy`] it.
//!
//! STUB: a placeholder with the public API; the real implementation replaces it.

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

/// Errors name the file or directory that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The cgroup layout of the running host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    V1,
    Hybrid,
    V2,
}

/// A container's cgroup: the directory in every hierarchy it lives in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    pub layout: Layout,
    /// (controller list or "unified", absolute directory)
    pub dirs: Vec<(String, PathBuf)>,
}

impl Cgroup {
    /// Resolves where the cgroup lives, without touching anything.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<Cgroup> {
        let _ = (cgroups_path, id, systemd);
        Ok(Cgroup {
            layout: Layout::V1,
            dirs: Vec::new(),
        })
    }
    pub fn create(&self) -> Result<()> {
        Ok(())
    }
    pub fn apply(&self, _res: &LinuxResources) -> Result<()> {
        Ok(())
    }
    pub fn add_process(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(Vec::new())
    }
    pub fn destroy(&self) -> Result<()> {
        Ok(())
    }
    pub fn freeze(&self) -> Result<()> {
        Ok(())
    }
    pub fn thaw(&self) -> Result<()> {
        Ok(())
    }
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(false)
    }
    /// What the container's `/sys/fs/cgroup` mount holds: one entry per
    /// hierarchy (on pure v2 a single entry with an empty `name`).
    pub fn mounts(&self) -> Vec<CgroupMount> {
        Vec::new()
    }
}

/// One hierarchy as the container sees it under `/sys/fs/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Directory name under /sys/fs/cgroup ("cpu", "unified", "systemd"),
    /// empty for a pure v2 host.
    pub name: String,
    /// "cgroup" or "cgroup2".
    pub fstype: String,
    /// Mount data for a fresh mount in a cgroup namespace ("cpu",
    /// "name=systemd", "" for cgroup2).
    pub options: String,
    /// The container's cgroup directory on the host (for a bind mount).
    pub host_dir: PathBuf,
}
