//! Resource usage in the shape of the `data` of runc's `events --stats`
//! (runc `types/events.go`): zero numbers marked `omitempty` there are
//! left out here too.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{fsio, Cgroup, Result, UNIFIED};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One line of `runc events`: `{"type":"stats","id":..,"data":{..}}`, or
/// `{"type":"oom","id":..}` when the OOM killer struck.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Event {
    pub fn stats(id: &str, data: Stats) -> Event {
        Event {
            kind: "stats".to_string(),
            id: id.to_string(),
            data: Some(data),
        }
    }

    pub fn oom(id: &str) -> Event {
        Event {
            kind: "oom".to_string(),
            id: id.to_string(),
            data: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(default, rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(default, rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Blkio {
    #[serde(
        default,
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioServicedRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// USER_HZ ticks (cpuacct.stat) to nanoseconds.
const NS_PER_TICK: u64 = 1_000_000_000 / 100;

/// Collects what every hierarchy of `cg` offers.
pub fn collect(cg: &Cgroup) -> Result<Stats> {
    let mut s = Stats::default();
    for (key, dir) in &cg.dirs {
        if !dir.exists() {
            continue;
        }
        if key == UNIFIED {
            v2(dir, &mut s)?;
        } else {
            for c in key.split(',') {
                match c {
                    "cpuacct" => cpuacct_v1(dir, &mut s)?,
                    "cpu" => throttling(dir, "cpu.stat", 1, &mut s)?,
                    "memory" => memory_v1(dir, &mut s)?,
                    "pids" => pids(dir, &mut s)?,
                    "blkio" => blkio_v1(dir, &mut s)?,
                    "hugetlb" => hugetlb(dir, true, &mut s)?,
                    _ => {}
                }
            }
        }
    }
    Ok(s)
}

fn num_list(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn cpuacct_v1(dir: &Path, s: &mut Stats) -> Result<()> {
    let u = &mut s.cpu.usage;
    u.total = fsio::read_u64(dir, "cpuacct.usage")?.unwrap_or(0);
    u.percpu = num_list(&fsio::read_opt(dir, "cpuacct.usage_percpu")?.unwrap_or_default());
    u.percpu_kernel =
        num_list(&fsio::read_opt(dir, "cpuacct.usage_percpu_sys")?.unwrap_or_default());
    u.percpu_user =
        num_list(&fsio::read_opt(dir, "cpuacct.usage_percpu_user")?.unwrap_or_default());
    let stat = fsio::read_opt(dir, "cpuacct.stat")?.unwrap_or_default();
    for (k, v) in fsio::parse_kv(&stat) {
        match k {
            "user" => u.user = v * NS_PER_TICK,
            "system" => u.kernel = v * NS_PER_TICK,
            _ => {}
        }
    }
    Ok(())
}

/// cpu.stat throttling; `scale` turns the file's time unit into ns.
fn throttling(dir: &Path, file: &str, scale: u64, s: &mut Stats) -> Result<()> {
    let text = fsio::read_opt(dir, file)?.unwrap_or_default();
    let t = &mut s.cpu.throttling;
    for (k, v) in fsio::parse_kv(&text) {
        match k {
            "nr_periods" => t.periods = v,
            "nr_throttled" => t.throttled_periods = v,
            "throttled_time" => t.throttled_time = v,
            "throttled_usec" => t.throttled_time = v * scale,
            _ => {}
        }
    }
    Ok(())
}

fn mem_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    let f = |n: &str| fsio::read_u64(dir, &format!("{prefix}.{n}"));
    Ok(MemoryEntry {
        limit: f("limit_in_bytes")?.unwrap_or(0),
        usage: f("usage_in_bytes")?.unwrap_or(0),
        max: f("max_usage_in_bytes")?.unwrap_or(0),
        failcnt: f("failcnt")?.unwrap_or(0),
    })
}

fn memory_v1(dir: &Path, s: &mut Stats) -> Result<()> {
    let m = &mut s.memory;
    m.usage = mem_entry(dir, "memory")?;
    m.swap = mem_entry(dir, "memory.memsw")?;
    m.kernel = mem_entry(dir, "memory.kmem")?;
    m.kernel_tcp = mem_entry(dir, "memory.kmem.tcp")?;
    let stat = fsio::read_opt(dir, "memory.stat")?.unwrap_or_default();
    m.raw = fsio::parse_kv(&stat)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    m.cache = m
        .raw
        .get("total_cache")
        .or(m.raw.get("cache"))
        .copied()
        .unwrap_or(0);
    Ok(())
}

fn pids(dir: &Path, s: &mut Stats) -> Result<()> {
    s.pids.current = fsio::read_u64(dir, "pids.current")?.unwrap_or(0);
    // "max" reads as u64::MAX; runc reports an unlimited limit as 0.
    s.pids.limit = fsio::read_u64(dir, "pids.max")?
        .filter(|v| *v != u64::MAX)
        .unwrap_or(0);
    Ok(())
}

/// Parses "maj:min Op value" lines (v1 blkio files).
fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, v] = f[..] else { return None };
            let (ma, mi) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: op.to_string(),
                value: v.parse().ok()?,
            })
        })
        .collect()
}

fn blkio_v1(dir: &Path, s: &mut Stats) -> Result<()> {
    let pick = |names: &[&str]| -> Result<Vec<BlkioEntry>> {
        for n in names {
            if let Some(t) = fsio::read_opt(dir, n)? {
                let e = blkio_entries(&t);
                if !e.is_empty() {
                    return Ok(e);
                }
            }
        }
        Ok(Vec::new())
    };
    s.blkio.io_service_bytes_recursive = pick(&[
        "blkio.io_service_bytes_recursive",
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes_recursive",
    ])?;
    s.blkio.io_serviced_recursive = pick(&[
        "blkio.io_serviced_recursive",
        "blkio.bfq.io_serviced_recursive",
        "blkio.throttle.io_serviced_recursive",
    ])?;
    Ok(())
}

/// Parses io.stat ("maj:min rbytes=.. wbytes=.. rios=.. wios=..").
fn io_stat(text: &str, s: &mut Stats) {
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((ma, mi)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
}

/// hugetlb.<size>.* files; `v1` picks the file names.
fn hugetlb(dir: &Path, v1: bool, s: &mut Stats) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| crate::Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut sizes: Vec<String> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let suffix = if v1 { ".limit_in_bytes" } else { ".max" };
        if let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(suffix))
        {
            if !size.contains('.') {
                sizes.push(size.to_string());
            }
        }
    }
    for size in sizes {
        let f = |n: &str| fsio::read_u64(dir, &format!("hugetlb.{size}.{n}"));
        let h = if v1 {
            Hugetlb {
                usage: f("usage_in_bytes")?.unwrap_or(0),
                max: f("max_usage_in_bytes")?.unwrap_or(0),
                failcnt: f("failcnt")?.unwrap_or(0),
            }
        } else {
            Hugetlb {
                usage: f("current")?.unwrap_or(0),
                max: 0,
                failcnt: fsio::read_key(dir, &format!("hugetlb.{size}.events"), "max")?
                    .unwrap_or(0),
            }
        };
        s.hugetlb.insert(size, h);
    }
    Ok(())
}

/// Everything the cgroup2 directory has (on hybrid, only what lives there).
fn v2(dir: &Path, s: &mut Stats) -> Result<()> {
    let ctrls = fsio::read_opt(dir, "cgroup.controllers")?.unwrap_or_default();
    let has = |c: &str| ctrls.split_whitespace().any(|x| x == c);
    if dir.join("cpu.stat").exists() && (has("cpu") || s.cpu.usage.total == 0) {
        let text = fsio::read_opt(dir, "cpu.stat")?.unwrap_or_default();
        for (k, v) in fsio::parse_kv(&text) {
            match k {
                "usage_usec" => s.cpu.usage.total = v * 1000,
                "user_usec" => s.cpu.usage.user = v * 1000,
                "system_usec" => s.cpu.usage.kernel = v * 1000,
                _ => {}
            }
        }
        throttling(dir, "cpu.stat", 1000, s)?;
    }
    if has("memory") {
        let m = &mut s.memory;
        let f = |n: &str| fsio::read_u64(dir, n);
        let current = f("memory.current")?.unwrap_or(0);
        m.usage = MemoryEntry {
            limit: f("memory.max")?.unwrap_or(0),
            usage: current,
            max: f("memory.peak")?.unwrap_or(0),
            failcnt: fsio::read_key(dir, "memory.events", "max")?.unwrap_or(0),
        };
        // Like runc, report swap as memory+swap for v1 compatibility.
        let swap_limit = f("memory.swap.max")?.unwrap_or(0);
        m.swap = MemoryEntry {
            limit: swap_limit.saturating_add(m.usage.limit),
            usage: f("memory.swap.current")?.unwrap_or(0) + current,
            max: f("memory.swap.peak")?.unwrap_or(0),
            failcnt: fsio::read_key(dir, "memory.swap.events", "fail")?.unwrap_or(0),
        };
        let stat = fsio::read_opt(dir, "memory.stat")?.unwrap_or_default();
        m.raw = fsio::parse_kv(&stat)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        m.cache = m.raw.get("file").copied().unwrap_or(0);
    }
    if has("pids") {
        pids(dir, s)?;
    }
    if has("io") {
        io_stat(&fsio::read_opt(dir, "io.stat")?.unwrap_or_default(), s);
    }
    if has("hugetlb") {
        hugetlb(dir, false, s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::write;

    #[test]
    fn v1_files_parse() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        write(p.join("cpuacct.usage"), "5000\n").unwrap();
        write(p.join("cpuacct.usage_percpu"), "3000 2000 \n").unwrap();
        write(p.join("cpuacct.stat"), "user 3\nsystem 1\n").unwrap();
        write(
            p.join("cpu.stat"),
            "nr_periods 4\nnr_throttled 2\nthrottled_time 77\n",
        )
        .unwrap();
        write(p.join("memory.usage_in_bytes"), "4096\n").unwrap();
        write(p.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        write(p.join("memory.stat"), "cache 10\ntotal_cache 12\nrss 5\n").unwrap();
        write(p.join("pids.current"), "3\n").unwrap();
        write(p.join("pids.max"), "max\n").unwrap();
        write(
            p.join("blkio.throttle.io_service_bytes_recursive"),
            "254:0 Read 512\n254:0 Write 0\nTotal 512\n",
        )
        .unwrap();
        write(p.join("hugetlb.2MB.limit_in_bytes"), "0\n").unwrap();
        write(p.join("hugetlb.2MB.usage_in_bytes"), "0\n").unwrap();
        write(p.join("hugetlb.2MB.failcnt"), "1\n").unwrap();
        let mut s = Stats::default();
        cpuacct_v1(p, &mut s).unwrap();
        throttling(p, "cpu.stat", 1, &mut s).unwrap();
        memory_v1(p, &mut s).unwrap();
        pids(p, &mut s).unwrap();
        blkio_v1(p, &mut s).unwrap();
        hugetlb(p, true, &mut s).unwrap();
        assert_eq!(s.cpu.usage.total, 5000);
        assert_eq!(s.cpu.usage.percpu, [3000, 2000]);
        assert_eq!(
            (s.cpu.usage.user, s.cpu.usage.kernel),
            (30_000_000, 10_000_000)
        );
        assert_eq!(s.cpu.throttling.throttled_time, 77);
        assert_eq!(s.memory.usage.usage, 4096);
        assert_eq!(s.memory.cache, 12);
        assert_eq!((s.pids.current, s.pids.limit), (3, 0));
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.blkio.io_service_bytes_recursive[0].value, 512);
        assert_eq!(s.hugetlb["2MB"].failcnt, 1);
    }

    #[test]
    fn v2_files_parse() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        write(p.join("cgroup.controllers"), "cpu io memory pids hugetlb\n").unwrap();
        write(p.join("cpu.stat"), "usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_periods 1\nnr_throttled 1\nthrottled_usec 3\n").unwrap();
        write(p.join("memory.current"), "100\n").unwrap();
        write(p.join("memory.max"), "1000\n").unwrap();
        write(
            p.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        )
        .unwrap();
        write(p.join("memory.swap.current"), "5\n").unwrap();
        write(p.join("memory.swap.max"), "max\n").unwrap();
        write(p.join("memory.stat"), "anon 1\nfile 9\n").unwrap();
        write(p.join("pids.current"), "2\n").unwrap();
        write(p.join("pids.max"), "20\n").unwrap();
        write(
            p.join("io.stat"),
            "254:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        )
        .unwrap();
        write(p.join("hugetlb.2MB.max"), "max\n").unwrap();
        write(p.join("hugetlb.2MB.current"), "0\n").unwrap();
        write(p.join("hugetlb.2MB.events"), "max 2\n").unwrap();
        let mut s = Stats::default();
        v2(p, &mut s).unwrap();
        assert_eq!(s.cpu.usage.total, 7000);
        assert_eq!(s.cpu.throttling.throttled_time, 3000);
        assert_eq!(
            s.memory.usage,
            MemoryEntry {
                limit: 1000,
                usage: 100,
                max: 0,
                failcnt: 4
            }
        );
        assert_eq!(s.memory.swap.usage, 105);
        assert_eq!(s.memory.swap.limit, u64::MAX);
        assert_eq!(s.memory.cache, 9);
        assert_eq!((s.pids.current, s.pids.limit), (2, 20));
        assert_eq!(s.blkio.io_service_bytes_recursive[0].op, "Read");
        assert_eq!(s.blkio.io_serviced_recursive.len(), 2);
        assert_eq!(s.hugetlb["2MB"].failcnt, 2);
    }

    #[test]
    fn json_shape_matches_runc() {
        let mut s = Stats::default();
        s.memory.usage.limit = 5;
        s.pids.current = 1;
        let ev = serde_json::to_value(Event::stats("c1", s)).unwrap();
        assert_eq!(ev["type"], "stats");
        assert_eq!(ev["id"], "c1");
        let d = &ev["data"];
        assert_eq!(
            d["memory"]["usage"],
            serde_json::json!({"limit": 5, "failcnt": 0})
        );
        assert_eq!(
            d["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
        assert_eq!(d["cpu"]["throttling"], serde_json::json!({}));
        assert_eq!(d["pids"], serde_json::json!({"current": 1}));
        assert!(d["memory"].get("kernelTCP").is_some());
        assert_eq!(d["hugetlb"], serde_json::json!({}));
        let oom = serde_json::to_string(&Event::oom("c1")).unwrap();
        assert_eq!(oom, r#"{"type":"oom","id":"c1"}"#);
    }
}
