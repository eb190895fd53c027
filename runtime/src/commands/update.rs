//! `rtctr update`: change a running container's resource limits, from
//! runc's flags or from a `LinuxResources` JSON (`-r FILE`, `-r -` for
//! stdin). The new values are merged into the container's current ones
//! ([`rtctr_cgroups::update::merge`]), written through the cgroup crate
//! (device rules untouched) and kept in `<root>/<id>/resources.json`, so
//! the next update merges into them.

use std::io::Read;

use clap::Args;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::state::{ContainerDir, StateError, Status, Store};

/// The merged resources of the last update (absent: the config's).
pub const RESOURCES_FILE: &str = "resources.json";

#[derive(Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    /// A LinuxResources JSON file, or - for stdin; other flags are then ignored.
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<String>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period (microseconds).
    #[arg(long = "cpu-period", value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (microseconds) per period; -1 for none.
    #[arg(long = "cpu-quota", value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS burst (microseconds).
    #[arg(long = "cpu-burst", value_name = "US")]
    pub cpu_burst: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", alias = "cpu-shares", value_name = "N")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period (microseconds).
    #[arg(long = "cpu-rt-period", value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (microseconds).
    #[arg(long = "cpu-rt-runtime", value_name = "US", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to run on ("0-2,4").
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// SCHED_IDLE for the cgroup (0 or 1).
    #[arg(long = "cpu-idle", value_name = "N")]
    pub cpu_idle: Option<i64>,
    /// Kernel memory limit: accepted and ignored, as runc does.
    #[arg(
        long = "kernel-memory",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer limit: accepted and ignored (deprecated).
    #[arg(
        long = "kernel-memory-tcp",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (512m, 1g, -1 for none).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(
        long = "memory-reservation",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids (-1 for none).
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (needs linux.intelRdt).
    #[arg(long = "l3-cache-schema", value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (needs linux.intelRdt).
    #[arg(long = "mem-bw-schema", value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("container {0} is stopped: nothing to update")]
    Stopped(String),
    #[error("container {0} has no cgroup")]
    NoCgroup(String),
    #[error("invalid value for --{flag}: {value:?} ({why})")]
    BadValue {
        flag: &'static str,
        value: String,
        why: String,
    },
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

/// Byte sizes as docker's `units.RAMInBytes` reads them: a number
/// (fractions allowed) with an optional binary unit k, m, g, t, p, an
/// optional `i` and `b` ("512m", "1.5GiB", "100 kb"); "-1" is unlimited.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    let t = s.strip_suffix(['b', 'B']).unwrap_or(s);
    let t = t.strip_suffix(['i', 'I']).unwrap_or(t);
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            let pow = "kmgtp".find(c).expect("listed") as u32 + 1;
            (&t[..t.len() - 1], 1024f64.powi(pow as i32))
        }
        _ if t.len() < s.len() && !s.ends_with(['b', 'B']) => return Err("bad unit".into()),
        _ => (t, 1.0),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err("not a size like 512m or 1g".into());
    }
    let v: f64 = num.parse().map_err(|_| "not a number".to_string())?;
    let bytes = v * mult;
    if bytes >= i64::MAX as f64 {
        return Err("too large".into());
    }
    Ok(bytes as i64)
}

fn bytes_flag(flag: &'static str, v: &Option<String>) -> Result<Option<i64>, UpdateError> {
    v.as_deref()
        .map(|s| {
            parse_bytes(s).map_err(|why| UpdateError::BadValue {
                flag,
                value: s.to_string(),
                why,
            })
        })
        .transpose()
}

/// The resources the flags ask for (unset flags stay `None`).
pub fn from_flags(a: &UpdateArgs) -> Result<LinuxResources, UpdateError> {
    let mut res = LinuxResources::default();
    let mut mem = LinuxMemory::default();
    mem.set_limit(bytes_flag("memory", &a.memory)?);
    mem.set_reservation(bytes_flag("memory-reservation", &a.memory_reservation)?);
    mem.set_swap(bytes_flag("memory-swap", &a.memory_swap)?);
    // Checked for syntax, then dropped: runc ignores kernel memory too.
    bytes_flag("kernel-memory", &a.kernel_memory)?;
    bytes_flag("kernel-memory-tcp", &a.kernel_memory_tcp)?;
    for (flag, v) in [
        ("kernel-memory", &a.kernel_memory),
        ("kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if v.is_some() {
            log::warn!("--{flag} is deprecated and ignored (as in runc)");
        }
    }
    if mem != LinuxMemory::default() {
        res.set_memory(Some(mem));
    }
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(a.cpu_share);
    cpu.set_quota(a.cpu_quota);
    cpu.set_period(a.cpu_period);
    cpu.set_burst(a.cpu_burst);
    cpu.set_realtime_period(a.cpu_rt_period);
    cpu.set_realtime_runtime(a.cpu_rt_runtime);
    cpu.set_cpus(a.cpuset_cpus.clone());
    cpu.set_mems(a.cpuset_mems.clone());
    cpu.set_idle(a.cpu_idle);
    if cpu != LinuxCpu::default() {
        res.set_cpu(Some(cpu));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        res.set_block_io(Some(b));
    }
    if let Some(l) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(l);
        res.set_pids(Some(p));
    }
    Ok(res)
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

pub fn update(store: &Store, a: &UpdateArgs) -> Result<(), UpdateError> {
    let patch = match &a.resources {
        Some(from) => from_json(from)?,
        None => from_flags(a)?,
    };
    let dir = store.open(&a.id)?;
    let state = dir.load()?;
    if dir.status(&state) == Status::Stopped {
        return Err(UpdateError::Stopped(a.id.clone()));
    }
    let rdt_flag = [
        ("l3-cache-schema", &a.l3_cache_schema),
        ("mem-bw-schema", &a.mem_bw_schema),
    ]
    .into_iter()
    .find(|(_, v)| v.is_some());
    if let Some((flag, _)) = rdt_flag {
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
    let bytes = serde_json::to_vec(&new).expect("resources serialize");
    crate::state::write_atomic(&dir.file(RESOURCES_FILE), &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_as_docker_reads_them() {
        let m = 1024 * 1024;
        for (s, want) in [
            ("512m", 512 * m),
            ("1g", 1024 * m),
            ("1G", 1024 * m),
            ("1GiB", 1024 * m),
            ("1gb", 1024 * m),
            ("100", 100),
            ("100b", 100),
            ("1.5k", 1536),
            ("2 mb", 2 * m),
            ("-1", -1),
        ] {
            assert_eq!(parse_bytes(s), Ok(want), "{s}");
        }
        for bad in ["", "m", "-2", "1x", "1.2.3k", "abc", "1kk"] {
            assert!(parse_bytes(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn flags_set_only_what_is_given() {
        let a = UpdateArgs {
            memory: Some("64m".into()),
            cpu_share: Some(256),
            pids_limit: Some(-1),
            id: "c".into(),
            ..Default::default()
        };
        let r = serde_json::to_value(from_flags(&a).unwrap()).unwrap();
        assert_eq!(
            r,
            serde_json::json!({"memory": {"limit": 67108864}, "cpu": {"shares": 256}, "pids": {"limit": -1}})
        );
    }
}
