//! Turns `LinuxResources` into an ordered list of file writes (the plan),
//! then writes them. Planning reads nothing but a few files in the target
//! directories (to pick between file names), so tests run it on tempdirs.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxResources,
};

use crate::{fsio, Error, Result};

/// Which kernel interface a controller speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where each controller lives for one cgroup.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// v1 hierarchies: (controller list as in `Cgroup::dirs`, directory).
    pub v1: Vec<(String, PathBuf)>,
    /// The cgroup2 directory and the controllers enabled in it.
    pub unified: Option<(PathBuf, Vec<String>)>,
}

impl Targets {
    /// The directory handling `v1` (v1 name) or `v2` (cgroup2 name).
    pub fn find(&self, v1: &str, v2: &str) -> Option<(Version, &Path)> {
        for (key, dir) in &self.v1 {
            if key.split(',').any(|c| c == v1) {
                return Some((Version::V1, dir));
            }
        }
        match &self.unified {
            Some((dir, ctrls)) if ctrls.iter().any(|c| c == v2) => Some((Version::V2, dir)),
            _ => None,
        }
    }

    fn need(&self, v1: &str, v2: &str, setting: &str) -> Result<(Version, &Path)> {
        self.find(v1, v2).ok_or_else(|| Error::ControllerMissing {
            controller: v1.to_string(),
            setting: setting.to_string(),
        })
    }
}

/// One write of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub dir: PathBuf,
    pub file: String,
    pub value: String,
    /// Read the file back and fail if the kernel kept another value
    /// (cpu.shares is silently clamped).
    pub verify: bool,
}

fn w(out: &mut Vec<Write>, dir: &Path, file: &str, value: impl ToString) {
    out.push(Write {
        dir: dir.to_path_buf(),
        file: file.to_string(),
        value: value.to_string(),
        verify: false,
    });
}

/// "-1" (or any negative) is "max" in v2 files.
fn v2_num(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// The whole plan, in the order it must be written.
pub fn plan(t: &Targets, res: &LinuxResources) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    if let Some(cpu) = res.cpu() {
        plan_cpu(t, cpu, &mut out)?;
    }
    if let Some(mem) = res.memory() {
        plan_memory(t, mem, &mut out)?;
    }
    if let Some(pids) = res.pids() {
        let (_, dir) = t.need("pids", "pids", "pids.limit")?;
        w(&mut out, dir, "pids.max", pids_value(pids.limit()));
    }
    if let Some(bio) = res.block_io() {
        plan_blkio(t, bio, &mut out)?;
    }
    if let Some(h) = res.hugepage_limits() {
        plan_hugetlb(t, h, &mut out)?;
    }
    if let Some(net) = res.network() {
        plan_network(t, net, &mut out)?;
    }
    if let Some(rdma) = res.rdma() {
        let mut devs: Vec<_> = rdma.iter().collect();
        devs.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, r) in devs {
            let mut v = dev.to_string();
            if let Some(h) = r.hca_handles() {
                v += &format!(" hca_handle={h}");
            }
            if let Some(o) = r.hca_objects() {
                v += &format!(" hca_object={o}");
            }
            if v.len() > dev.len() {
                let (_, dir) = t.need("rdma", "rdma", "rdma")?;
                w(&mut out, dir, "rdma.max", v);
            }
        }
    }
    if let Some(u) = res.unified() {
        plan_unified(t, u, &mut out)?;
    }
    Ok(out)
}

/// runc ≥ 1.4: a negative limit is "max", 0 is written as 1 (the kernel
/// and systemd treat both as "no new processes"), otherwise the value.
pub fn pids_value(limit: i64) -> String {
    match limit {
        l if l < 0 => "max".to_string(),
        0 => "1".to_string(),
        l => l.to_string(),
    }
}

/// runc's current (quadratic, log-scale) cpu.shares → cpu.weight mapping:
/// 2 → 1, 1024 → 100, 262144 → 10000; 0 means unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// runc's blkio weight [10, 1000] → io.weight [1, 10000]; 0 means unset.
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// OCI `memory.swap` is memory+swap; cgroup v2 `memory.swap.max` is swap
/// alone. Same rules as runc's ConvertMemorySwapToCgroupV2Value; `None`
/// means leave the file alone.
pub fn swap_to_v2(swap: i64, memory: i64) -> Result<Option<i64>> {
    let bad = |m: String| {
        Err(Error::InvalidValue {
            setting: "memory.swap",
            reason: m,
        })
    };
    match (swap, memory) {
        (0, -1) => Ok(Some(-1)),
        (0, _) => Ok(None),
        (-1, _) => Ok(Some(-1)),
        (_, 0) | (_, -1) => bad("a swap limit needs a memory limit".to_string()),
        (_, m) if m < 0 => bad(format!("invalid memory limit {m}")),
        (s, m) if s < m => bad(format!("memory+swap {s} is below the memory limit {m}")),
        (s, m) => Ok(Some(s - m)),
    }
}

fn plan_cpu(t: &Targets, cpu: &LinuxCpu, out: &mut Vec<Write>) -> Result<()> {
    let has_cpu = cpu.shares().is_some()
        || cpu.quota().is_some()
        || cpu.period().is_some()
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || cpu.realtime_runtime().is_some()
        || cpu.realtime_period().is_some();
    if has_cpu {
        let (ver, dir) = t.need("cpu", "cpu", "cpu")?;
        match ver {
            Version::V1 => cpu_v1(dir, cpu, out)?,
            Version::V2 => cpu_v2(dir, cpu, out)?,
        }
    }
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        let (_, dir) = t.need("cpuset", "cpuset", "cpu.cpus")?;
        w(out, dir, "cpuset.cpus", cpus);
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        let (_, dir) = t.need("cpuset", "cpuset", "cpu.mems")?;
        w(out, dir, "cpuset.mems", mems);
    }
    Ok(())
}

fn cpu_v1(dir: &Path, cpu: &LinuxCpu, out: &mut Vec<Write>) -> Result<()> {
    if let Some(s) = cpu.shares().filter(|s| *s != 0) {
        w(out, dir, "cpu.shares", s);
        out.last_mut().expect("just pushed").verify = true;
    }
    if let Some(p) = cpu.period().filter(|p| *p != 0) {
        w(out, dir, "cpu.cfs_period_us", p);
    }
    if let Some(q) = cpu.quota().filter(|q| *q != 0) {
        w(out, dir, "cpu.cfs_quota_us", q);
    }
    if let Some(b) = cpu.burst() {
        w(out, dir, "cpu.cfs_burst_us", b);
    }
    if let (Some(rt), Some(p)) = (cpu.realtime_runtime(), cpu.realtime_period()) {
        if p != 0 && rt > 0 && rt as u64 > p {
            return Err(Error::InvalidValue {
                setting: "cpu.realtimeRuntime",
                reason: format!("runtime {rt} exceeds period {p}"),
            });
        }
    }
    if let Some(p) = cpu.realtime_period().filter(|p| *p != 0) {
        w(out, dir, "cpu.rt_period_us", p);
    }
    if let Some(rt) = cpu.realtime_runtime().filter(|r| *r != 0) {
        w(out, dir, "cpu.rt_runtime_us", rt);
    }
    if let Some(i) = cpu.idle() {
        w(out, dir, "cpu.idle", i);
    }
    Ok(())
}

fn cpu_v2(dir: &Path, cpu: &LinuxCpu, out: &mut Vec<Write>) -> Result<()> {
    if cpu.realtime_runtime().is_some_and(|r| r != 0)
        || cpu.realtime_period().is_some_and(|p| p != 0)
    {
        return Err(Error::InvalidValue {
            setting: "cpu.realtimeRuntime/realtimePeriod",
            reason: "realtime scheduling is not supported on cgroup v2".to_string(),
        });
    }
    if let Some(s) = cpu.shares().filter(|s| *s != 0) {
        w(out, dir, "cpu.weight", shares_to_weight(s));
    }
    let quota = cpu.quota().unwrap_or(0);
    let period = cpu.period().unwrap_or(0);
    if quota != 0 || period != 0 {
        let mut v = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        if period != 0 {
            v += &format!(" {period}");
        }
        w(out, dir, "cpu.max", v);
    }
    if let Some(b) = cpu.burst() {
        w(out, dir, "cpu.max.burst", b);
    }
    if let Some(i) = cpu.idle() {
        w(out, dir, "cpu.idle", i);
    }
    Ok(())
}

fn plan_memory(t: &Targets, m: &LinuxMemory, out: &mut Vec<Write>) -> Result<()> {
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::InvalidValue {
                setting: "memory.swappiness",
                reason: format!("{s} is above 100"),
            });
        }
    }
    // kernel and kernelTCP are deprecated and ignored, as runc does.
    let any = m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true);
    if !any {
        return Ok(());
    }
    let (ver, dir) = t.need("memory", "memory", "memory")?;
    match ver {
        Version::V1 => memory_v1(dir, m, out),
        Version::V2 => memory_v2(dir, m, out),
    }
}

fn memory_v1(dir: &Path, m: &LinuxMemory, out: &mut Vec<Write>) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    let memsw = "memory.memsw.limit_in_bytes";
    let has_memsw = dir.join(memsw).exists();
    if limit == -1 && swap == 0 && has_memsw {
        swap = -1;
    }
    if limit > 0 && swap > 0 && swap < limit {
        return Err(Error::InvalidValue {
            setting: "memory.swap",
            reason: format!("memory+swap {swap} is below the memory limit {limit}"),
        });
    }
    if swap != 0 && !has_memsw && swap != -1 {
        return Err(Error::ControllerMissing {
            controller: "memory swap accounting (memory.memsw.limit_in_bytes)".to_string(),
            setting: "memory.swap".to_string(),
        });
    }
    let swap = if has_memsw { swap } else { 0 };
    if limit != 0 && swap != 0 {
        // memsw must stay >= limit at every step: raise memsw first when it grows.
        let cur = fsio::read_u64(dir, memsw)?.unwrap_or(0);
        if swap == -1 || (cur as i128) < i128::from(swap) {
            w(out, dir, memsw, swap);
            w(out, dir, "memory.limit_in_bytes", limit);
        } else {
            w(out, dir, "memory.limit_in_bytes", limit);
            w(out, dir, memsw, swap);
        }
    } else {
        if limit != 0 {
            w(out, dir, "memory.limit_in_bytes", limit);
        }
        if swap != 0 {
            w(out, dir, memsw, swap);
        }
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        w(out, dir, "memory.soft_limit_in_bytes", r);
    }
    if let Some(s) = m.swappiness() {
        w(out, dir, "memory.swappiness", s);
    }
    if m.disable_oom_killer() == Some(true) {
        w(out, dir, "memory.oom_control", 1);
    }
    Ok(())
}

fn memory_v2(dir: &Path, m: &LinuxMemory, out: &mut Vec<Write>) -> Result<()> {
    // swappiness and disableOOMKiller have no cgroup v2 file; runc ignores them too.
    let limit = m.limit().unwrap_or(0);
    if m.check_before_update() == Some(true) && limit > 0 {
        if let Some(cur) = fsio::read_u64(dir, "memory.current")? {
            if cur > limit as u64 {
                return Err(Error::InvalidValue {
                    setting: "memory.limit",
                    reason: format!("{limit} is below the current usage {cur}"),
                });
            }
        }
    }
    if let Some(swap) = swap_to_v2(m.swap().unwrap_or(0), limit)? {
        let file = "memory.swap.max";
        if swap != -1 || dir.join(file).exists() {
            w(out, dir, file, v2_num(swap));
        }
    }
    if limit != 0 {
        w(out, dir, "memory.max", v2_num(limit));
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        w(out, dir, "memory.low", v2_num(r));
    }
    Ok(())
}

fn has_items<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

fn plan_blkio(t: &Targets, b: &LinuxBlockIo, out: &mut Vec<Write>) -> Result<()> {
    let any = b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || has_items(b.weight_device())
        || has_items(b.throttle_read_bps_device())
        || has_items(b.throttle_write_bps_device())
        || has_items(b.throttle_read_iops_device())
        || has_items(b.throttle_write_iops_device());
    if !any {
        return Ok(());
    }
    let (ver, dir) = t.need("blkio", "io", "blockIO")?;
    match ver {
        Version::V1 => blkio_v1(dir, b, out),
        Version::V2 => io_v2(dir, b, out),
    }
    Ok(())
}

fn blkio_v1(dir: &Path, b: &LinuxBlockIo, out: &mut Vec<Write>) {
    // CFQ's files are gone since Linux 5.0; BFQ's take the same values.
    let bfq = !dir.join("blkio.weight").exists() && dir.join("blkio.bfq.weight").exists();
    let (weight, weight_dev) = if bfq {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    if let Some(v) = b.weight().filter(|v| *v != 0) {
        w(out, dir, weight, v);
    }
    if let Some(v) = b.leaf_weight().filter(|v| *v != 0) {
        w(out, dir, "blkio.leaf_weight", v);
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(v) = d.weight() {
            w(
                out,
                dir,
                weight_dev,
                format!("{}:{} {v}", d.major(), d.minor()),
            );
        }
        if let Some(v) = d.leaf_weight() {
            w(
                out,
                dir,
                "blkio.leaf_weight_device",
                format!("{}:{} {v}", d.major(), d.minor()),
            );
        }
    }
    let throttles = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ];
    for (list, file) in throttles {
        for d in list.iter().flatten() {
            w(
                out,
                dir,
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            );
        }
    }
}

fn io_v2(dir: &Path, b: &LinuxBlockIo, out: &mut Vec<Write>) {
    // leafWeight has no v2 equivalent and is ignored, as in runc.
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(v) = b.weight().filter(|v| *v != 0) {
        if bfq {
            w(out, dir, "io.bfq.weight", v);
        } else {
            w(
                out,
                dir,
                "io.weight",
                format!("default {}", blkio_weight_to_io(v)),
            );
        }
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(v) = d.weight() {
            if bfq {
                w(
                    out,
                    dir,
                    "io.bfq.weight",
                    format!("{}:{} {v}", d.major(), d.minor()),
                );
            } else {
                let v = blkio_weight_to_io(v);
                w(
                    out,
                    dir,
                    "io.weight",
                    format!("{}:{} {v}", d.major(), d.minor()),
                );
            }
        }
    }
    let throttles = [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ];
    for (list, key) in throttles {
        for d in list.iter().flatten() {
            w(
                out,
                dir,
                "io.max",
                format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
            );
        }
    }
}

fn plan_hugetlb(t: &Targets, limits: &[LinuxHugepageLimit], out: &mut Vec<Write>) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    let (ver, dir) = t.need("hugetlb", "hugetlb", "hugepageLimits")?;
    for l in limits {
        let size = l.page_size();
        let (file, rsvd) = match ver {
            Version::V1 => (
                format!("hugetlb.{size}.limit_in_bytes"),
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
            ),
            Version::V2 => (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
            ),
        };
        if size.contains('/') || !dir.join(&file).exists() {
            return Err(Error::InvalidValue {
                setting: "hugepageLimits.pageSize",
                reason: format!("page size {size:?} is not supported here ({file} is missing)"),
            });
        }
        let v = match ver {
            Version::V1 => l.limit().to_string(),
            Version::V2 => v2_num(l.limit()),
        };
        // As runc: the reservation limit (Linux 5.7+) follows the usage limit.
        if dir.join(&rsvd).exists() {
            w(out, dir, &rsvd, &v);
        }
        w(out, dir, &file, v);
    }
    Ok(())
}

fn plan_network(t: &Targets, n: &LinuxNetwork, out: &mut Vec<Write>) -> Result<()> {
    if let Some(id) = n.class_id() {
        let (_, dir) = t.need("net_cls", "net_cls", "network.classID")?;
        w(out, dir, "net_cls.classid", id);
    }
    for p in n.priorities().iter().flatten() {
        let (_, dir) = t.need("net_prio", "net_prio", "network.priorities")?;
        w(
            out,
            dir,
            "net_prio.ifpriomap",
            format!("{} {}", p.name(), p.priority()),
        );
    }
    Ok(())
}

fn plan_unified(
    t: &Targets,
    u: &std::collections::HashMap<String, String>,
    out: &mut Vec<Write>,
) -> Result<()> {
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for key in keys {
        let Some((dir, ctrls)) = &t.unified else {
            return Err(Error::UnifiedOnV1 { key: key.clone() });
        };
        if key.contains('/') || key.starts_with('.') || !key.contains('.') {
            return Err(Error::InvalidValue {
                setting: "unified",
                reason: format!("{key:?} is not a cgroup file name"),
            });
        }
        let ctrl = key.split('.').next().unwrap_or_default();
        if ctrl != "cgroup" && !ctrls.iter().any(|c| c == ctrl) {
            return Err(Error::ControllerMissing {
                controller: ctrl.to_string(),
                setting: format!("unified[{key:?}]"),
            });
        }
        w(out, dir, key, &u[key]);
    }
    Ok(())
}

/// Writes the plan in order; errors name the file and the value.
pub fn execute(plan: &[Write]) -> Result<()> {
    let mut i = 0;
    while i < plan.len() {
        let step = &plan[i];
        i += 1;
        if let Err(e) = fsio::write(&step.dir, &step.file, &step.value) {
            // As runc: a new period can be refused (EINVAL) against the old
            // quota and the parent's bandwidth; then write the quota first.
            let quota_next = plan.get(i).filter(|n| {
                step.file == "cpu.cfs_period_us"
                    && n.file == "cpu.cfs_quota_us"
                    && n.dir == step.dir
            });
            match (quota_next, &e) {
                (Some(q), Error::Write { source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) =>
                {
                    fsio::write(&q.dir, &q.file, &q.value)?;
                    fsio::write(&step.dir, &step.file, &step.value)?;
                    i += 1;
                    continue;
                }
                _ => return Err(e),
            }
        }
        if step.verify {
            let got = fsio::read(&step.dir, &step.file)?;
            if got.trim() != step.value {
                return Err(Error::NotApplied {
                    path: step.dir.join(&step.file),
                    value: step.value.clone(),
                    got: got.trim().to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
