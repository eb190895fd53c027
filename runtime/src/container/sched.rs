//! Where and how a container process runs: `process.scheduler`
//! (sched_setattr), `process.ioPriority` (ioprio_set),
//! `process.execCPUAffinity` (sched_setaffinity before and after the cgroup
//! join) and `linux.memoryPolicy` (set_mempolicy). [`plan`] turns the config
//! into the kernel's values and names the field of anything wrong, before
//! anything is forked; the `apply_*` functions only make the syscalls.

use nix::sched::CpuSet;
use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxSchedulerFlag, LinuxSchedulerPolicy,
    MemoryPolicyFlagType, MemoryPolicyModeType, Process,
};

use crate::sys::process::SchedAttr;

#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error("{field}: {msg}")]
    Invalid { field: &'static str, msg: String },
    #[error("{field}: {op}: {source}")]
    Apply {
        field: &'static str,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn invalid(field: &'static str, msg: impl Into<String>) -> SchedError {
    SchedError::Invalid {
        field,
        msg: msg.into(),
    }
}

/// The kernel's form of the settings a process asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sched {
    pub scheduler: Option<SchedAttr>,
    /// `(class << 13) | data`, for ioprio_set.
    pub io_priority: Option<u16>,
    /// Before the cgroup join (set on the parent around its fork).
    pub initial_cpus: Option<CpuSet>,
    /// After the cgroup join.
    pub final_cpus: Option<CpuSet>,
    /// Mode (with flags) and node mask for set_mempolicy.
    pub memory_policy: Option<(i32, Vec<u64>)>,
}

/// Plans the settings of `process`, and `memory_policy` (linux.memoryPolicy).
pub fn plan(
    process: &Process,
    memory_policy: Option<&LinuxMemoryPolicy>,
) -> Result<Sched, SchedError> {
    let affinity = process.exec_cpu_affinity().as_ref();
    let cpus = |field, list: Option<&String>| {
        list.filter(|l| !l.is_empty())
            .map(|l| cpu_set(field, l))
            .transpose()
    };
    Ok(Sched {
        scheduler: process.scheduler().as_ref().map(scheduler).transpose()?,
        io_priority: process.io_priority().map(io_priority).transpose()?,
        initial_cpus: cpus(
            "process.execCPUAffinity.initial",
            affinity.and_then(|a| a.initial().as_ref()),
        )?,
        final_cpus: cpus(
            "process.execCPUAffinity.final",
            affinity.and_then(|a| a.cpu_affinity_final().as_ref()),
        )?,
        memory_policy: memory_policy.map(mempolicy).transpose()?,
    })
}

fn scheduler(s: &oci_spec::runtime::Scheduler) -> Result<SchedAttr, SchedError> {
    use LinuxSchedulerPolicy::*;
    let policy = match s.policy() {
        SchedOther => libc::SCHED_OTHER,
        SchedFifo => libc::SCHED_FIFO,
        SchedRr => libc::SCHED_RR,
        SchedBatch => libc::SCHED_BATCH,
        SchedIdle => libc::SCHED_IDLE,
        SchedDeadline => 6,
        SchedIso => {
            return Err(invalid(
                "process.scheduler.policy",
                "SCHED_ISO is not implemented by Linux",
            ))
        }
    };
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(s.policy(), SchedFifo | SchedRr);
    if realtime && !(1..=99).contains(&priority) || !realtime && priority != 0 {
        return Err(invalid(
            "process.scheduler.priority",
            format!(
                "{priority} is out of range for {:?} (1-99 for FIFO and RR, else 0)",
                s.policy()
            ),
        ));
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(invalid(
            "process.scheduler.nice",
            format!("{nice} is not within -20..19"),
        ));
    }
    let flags = s
        .flags()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .fold(0u64, |f, flag| {
            f | match flag {
                LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
            }
        });
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy as u32,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..SchedAttr::default()
    })
}

fn io_priority(p: oci_spec::runtime::LinuxIOPriority) -> Result<u16, SchedError> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(invalid(
            "process.ioPriority.priority",
            format!("{} is not within 0..7", p.priority()),
        ));
    }
    Ok((class << 13) | p.priority() as u16)
}

/// "0-3,7" → a CPU set (the kernel checks that the CPUs exist).
fn cpu_set(field: &'static str, list: &str) -> Result<CpuSet, SchedError> {
    let mut set = CpuSet::new();
    for cpu in parse_list(field, list)? {
        set.set(cpu)
            .map_err(|_| invalid(field, format!("CPU {cpu} is beyond {}", CpuSet::count())))?;
    }
    Ok(set)
}

/// A kernel-style list of numbers and ranges: "0-3,7".
fn parse_list(field: &'static str, list: &str) -> Result<Vec<usize>, SchedError> {
    let bad = || invalid(field, format!("{list:?} is not a list like 0-3,7"));
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b >= 4096 {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    Ok(out)
}

fn mempolicy(p: &LinuxMemoryPolicy) -> Result<(i32, Vec<u64>), SchedError> {
    use MemoryPolicyModeType::*;
    let mode = match p.mode() {
        MpolDefault => 0,
        MpolPreferred => 1,
        MpolBind => 2,
        MpolInterleave => 3,
        MpolLocal => 4,
        MpolPreferredMany => 5,
        MpolWeightedInterleave => 6,
    };
    let flags = p
        .flags()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .fold(0i32, |f, flag| {
            f | match flag {
                MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
                MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
                MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            }
        });
    let nodes = match p.nodes().as_deref().filter(|n| !n.is_empty()) {
        Some(list) => parse_list("linux.memoryPolicy.nodes", list)?,
        None => Vec::new(),
    };
    let needs_nodes = matches!(
        p.mode(),
        MpolBind | MpolInterleave | MpolPreferredMany | MpolWeightedInterleave
    );
    if needs_nodes && nodes.is_empty()
        || matches!(p.mode(), MpolDefault | MpolLocal) && !nodes.is_empty()
    {
        return Err(invalid(
            "linux.memoryPolicy.nodes",
            format!(
                "{:?} {} nodes",
                p.mode(),
                if needs_nodes { "needs" } else { "takes no" }
            ),
        ));
    }
    let mut mask = vec![0u64; 4096 / 64];
    for n in nodes {
        mask[n / 64] |= 1 << (n % 64);
    }
    Ok((mode | flags, mask))
}

/// In the process itself, before its user switch (realtime classes need
/// the privilege): scheduler, I/O priority, memory policy.
pub fn apply(s: &Sched) -> Result<(), SchedError> {
    let fail = |field, op| move |source| SchedError::Apply { field, op, source };
    if let Some(attr) = &s.scheduler {
        crate::sys::process::sched_setattr(attr)
            .map_err(fail("process.scheduler", "sched_setattr"))?;
    }
    if let Some(prio) = s.io_priority {
        crate::sys::process::ioprio_set(prio).map_err(fail("process.ioPriority", "ioprio_set"))?;
    }
    if let Some((mode, mask)) = &s.memory_policy {
        crate::sys::process::set_mempolicy(*mode, mask)
            .map_err(fail("linux.memoryPolicy", "set_mempolicy"))?;
    }
    Ok(())
}

/// sched_setaffinity for the calling process.
pub fn set_cpus(field: &'static str, cpus: &CpuSet) -> Result<(), SchedError> {
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), cpus).map_err(|e| {
        SchedError::Apply {
            field,
            op: "sched_setaffinity",
            source: e.into(),
        }
    })
}

/// The caller's current CPU affinity (to restore after an `initial` one).
pub fn current_cpus() -> Option<CpuSet> {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()
}

/// Keeps the caller off CPU `rtctr` (where rtctr runs) when its affinity
/// allows another; returns the affinity to restore. The kernel starts a
/// forked child on its parent's CPU and leaves one of the two waiting
/// there, runnable, even with another CPU idle: neither moves within the
/// ~0.4 ms a new network namespace takes to make. A child that steps
/// aside makes its namespaces while rtctr makes the cgroup.
pub fn step_aside(rtctr: usize) -> Option<CpuSet> {
    let own = current_cpus()?;
    let mut elsewhere = own;
    elsewhere.unset(rtctr).ok()?;
    let other = (0..CpuSet::count()).any(|cpu| elsewhere.is_set(cpu).unwrap_or(false));
    if !other {
        return None;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &elsewhere).ok()?;
    Some(own)
}

/// Back on CPU `rtctr` after [`step_aside`], then the affinity `own`
/// again. What the container charges to its memory cgroup from here on
/// (its set-up, then its program) is then charged on the CPU the caller
/// runs on, where `start`'s pipe write wakes the init: the kernel charges
/// a memory cgroup 64 pages at a time per CPU, and an init charging on
/// two CPUs shows 512 KiB in `memory.max_usage_in_bytes` where one shows
/// 256 KiB. rtctr's CPU is only a preference: if it left the caller's
/// cpuset meanwhile, the init stays where it is.
pub fn step_back(rtctr: usize, own: &CpuSet) -> Result<(), SchedError> {
    let mut there = CpuSet::new();
    if there.set(rtctr).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &there);
    }
    set_cpus("the init's own CPU affinity", own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(json: serde_json::Value) -> Process {
        let mut p = serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}});
        p.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        serde_json::from_value(p).unwrap()
    }

    #[test]
    fn stepping_aside_leaves_one_cpu_and_stepping_back_restores_the_affinity() {
        let own = current_cpus().unwrap();
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&c| own.is_set(c).unwrap_or(false))
            .collect();
        let restore = step_aside(cpus[0]);
        if cpus.len() == 1 {
            assert!(restore.is_none(), "nowhere else to go");
            return;
        }
        let now = current_cpus().unwrap();
        step_back(cpus[0], &own).unwrap();
        assert_eq!(current_cpus(), Some(own));
        assert_eq!(restore, Some(own));
        assert!(!now.is_set(cpus[0]).unwrap());
        assert!(cpus[1..].iter().all(|&c| now.is_set(c).unwrap()));
    }

    #[test]
    fn io_priority_and_lists() {
        let p = process(
            serde_json::json!({"ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 7}}),
        );
        assert_eq!(plan(&p, None).unwrap().io_priority, Some((3 << 13) | 7));
        let p =
            process(serde_json::json!({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}}));
        assert_eq!(
            plan(&p, None).unwrap_err().to_string(),
            "process.ioPriority.priority: 8 is not within 0..7"
        );
        assert_eq!(parse_list("f", "0-2,5").unwrap(), [0, 1, 2, 5]);
        for bad in ["", "a", "3-1", "1,", "9999"] {
            assert!(parse_list("f", bad).is_err(), "{bad:?}");
        }
        let p =
            process(serde_json::json!({"execCPUAffinity": {"initial": "0", "final": "0-9999"}}));
        let err = plan(&p, None).unwrap_err().to_string();
        assert!(err.starts_with("process.execCPUAffinity.final: "), "{err}");
    }

    #[test]
    fn schedulers_and_memory_policies() {
        let p = process(serde_json::json!({"scheduler": {"policy": "SCHED_FIFO", "priority": 10}}));
        let attr = plan(&p, None).unwrap().scheduler.unwrap();
        assert_eq!((attr.policy, attr.priority), (libc::SCHED_FIFO as u32, 10));
        let p =
            process(serde_json::json!({"scheduler": {"policy": "SCHED_OTHER", "priority": 10}}));
        assert!(plan(&p, None)
            .unwrap_err()
            .to_string()
            .starts_with("process.scheduler.priority"));
        let p = process(
            serde_json::json!({"scheduler": {"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_RESET_ON_FORK"]}}),
        );
        let attr = plan(&p, None).unwrap().scheduler.unwrap();
        assert_eq!((attr.nice, attr.flags), (5, 1));
        let mp: LinuxMemoryPolicy =
            serde_json::from_value(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0,65", "flags": ["MPOL_F_STATIC_NODES"]})).unwrap();
        let (mode, mask) = plan(&process(serde_json::json!({})), Some(&mp))
            .unwrap()
            .memory_policy
            .unwrap();
        assert_eq!((mode, mask[0], mask[1]), (2 | (1 << 15), 1, 2));
        let mp: LinuxMemoryPolicy =
            serde_json::from_value(serde_json::json!({"mode": "MPOL_INTERLEAVE"})).unwrap();
        assert!(plan(&process(serde_json::json!({})), Some(&mp)).is_err());
    }
}
