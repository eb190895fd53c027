//! `rtctr update`: change a running container's resource limits, from
//! runc's flags or from a `LinuxResources` JSON (`-r FILE`, `-r -` for
//! stdin). The new values are merged into the container's current ones
//! ([`rtctr_cgroups::update::merge`]), written through the cgroup crate
//! (device rules untouched) and kept in `<root>/<id>/resources.json`, so
//! the next update merges into them.

use std::io::Read;

use oci_spec::runtime::LinuxResources;

use crate::state::{ContainerDir, StateError, Status, Store};

/// The merged resources of the last update (absent: the config's).
pub const RESOURCES_FILE: &str = "resources.json";

/// What `update` changes.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    pub id: String,
    /// `-r FILE` or `-r -`: a LinuxResources JSON; the flags are then ignored.
    pub resources_json: Option<String>,
    /// The resources the flags ask for (unset flags stay `None`).
    pub flags: LinuxResources,
    /// An Intel RDT flag given (`l3-cache-schema` or `mem-bw-schema`).
    pub intel_rdt_flag: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("container {0} is stopped: nothing to update")]
    Stopped(String),
    #[error("container {0} has no cgroup (made rootless, where its user could write none)")]
    NoCgroup(String),
    #[error("read resources from {from}: {source}")]
    Read {
        from: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parse resources from {from}: {source}")]
    Parse {
        from: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("--{flag}: {why}")]
    IntelRdt {
        flag: &'static str,
        why: &'static str,
    },
    #[error("load the container's config: {0}")]
    Config(#[from] crate::spec::SpecError),
    #[error("update container {id}: {source}")]
    Cgroup {
        id: String,
        #[source]
        source: rtctr_cgroups::Error,
    },
}

/// The resources from `-r FILE` / `-r -`.
fn from_json(from: &str) -> Result<LinuxResources, UpdateError> {
    let mut raw = Vec::new();
    let read = if from == "-" {
        std::io::stdin().read_to_end(&mut raw)
    } else {
        std::fs::File::open(from).and_then(|mut f| f.read_to_end(&mut raw))
    };
    read.map_err(|source| UpdateError::Read {
        from: from.to_string(),
        source,
    })?;
    serde_json::from_slice(&raw).map_err(|source| UpdateError::Parse {
        from: from.to_string(),
        source,
    })
}

/// The container's resources now: the last update's, else the config's.
fn current(dir: &ContainerDir) -> Result<LinuxResources, UpdateError> {
    let path = dir.file(RESOURCES_FILE);
    match std::fs::read(&path) {
        Ok(raw) => {
            return serde_json::from_slice(&raw).map_err(|source| UpdateError::Parse {
                from: path.display().to_string(),
                source,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(UpdateError::Read {
                from: path.display().to_string(),
                source,
            })
        }
    }
    let spec = dir.config()?;
    let mut res = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    res.set_devices(None);
    Ok(res)
}

fn has_intel_rdt(dir: &ContainerDir) -> bool {
    dir.config()
        .ok()
        .and_then(|s| s.linux().as_ref().map(|l| l.intel_rdt().is_some()))
        .unwrap_or(false)
}

pub fn update(store: &Store, a: &UpdateOptions) -> Result<(), UpdateError> {
    let patch = match &a.resources_json {
        Some(from) => from_json(from)?,
        None => a.flags.clone(),
    };
    let dir = store.open(&a.id)?;
    let state = dir.load()?;
    if dir.status(&state) == Status::Stopped {
        return Err(UpdateError::Stopped(a.id.clone()));
    }
    if let Some(flag) = a.intel_rdt_flag {
        let why = if has_intel_rdt(&dir) {
            "rtctr does not support Intel RDT"
        } else {
            "the container has no linux.intelRdt"
        };
        return Err(UpdateError::IntelRdt { flag, why });
    }
    let cg = state
        .cgroup
        .as_ref()
        .filter(|cg| !cg.dirs.is_empty())
        .ok_or_else(|| UpdateError::NoCgroup(a.id.clone()))?;
    let cg_err = |source| UpdateError::Cgroup {
        id: a.id.clone(),
        source,
    };
    let old = current(&dir)?;
    let new = rtctr_cgroups::update::merge(&old, &patch).map_err(cg_err)?;
    if let Err(e) = cg.update(&new) {
        // As runc: put the old values back (best effort) and report.
        if let Err(back) = cg.update(&old) {
            log::warn!("restoring the old resources of {}: {back}", a.id);
        }
        return Err(cg_err(e));
    }
    let bytes = serde_json::to_vec(&new).map_err(|source| UpdateError::Parse {
        from: "the merged resources".into(),
        source,
    })?;
    crate::state::write_atomic(&dir.file(RESOURCES_FILE), &bytes)?;
    Ok(())
}
