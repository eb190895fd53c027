//! Layout detection and `cgroupsPath` resolution.
//!
//! Everything here is pure: it works on the text of `/proc/self/mountinfo`
//! and `/proc/self/cgroup`, so unit tests feed it fixtures.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::{Error, Layout, Result};

/// The key under which the cgroup2 hierarchy is listed in [`crate::Cgroup::dirs`].
pub const UNIFIED: &str = "unified";

/// v1 subsystems the kernel knows (used to tell controllers from mount options).
const V1_SUBSYSTEMS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "io",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// v1: the controllers in mount-option order ("cpu,cpuacct", "name=systemd");
    /// cgroup2: [`UNIFIED`].
    pub key: String,
    pub mount_point: PathBuf,
    /// The cgroup path the mount shows at its mount point (field 4 of mountinfo).
    pub root: PathBuf,
}

impl Mount {
    pub fn is_unified(&self) -> bool {
        self.key == UNIFIED
    }
    #[cfg(test)]
    /// Whether this v1 hierarchy carries `controller` ("memory", "name=systemd").
    pub fn has(&self, controller: &str) -> bool {
        !self.is_unified() && self.key.split(',').any(|c| c == controller)
    }
}

/// Decodes the octal escapes (`\040`) mountinfo uses for blanks in paths.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = std::str::from_utf8(&b[i + 1..i + 4]).ok();
            if let Some(v) = oct.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo into the cgroup hierarchies, first mount of each wins.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let key = match r[0] {
            "cgroup2" => UNIFIED.to_string(),
            "cgroup" => {
                let ctrls: Vec<&str> = r[2]
                    .split(',')
                    .filter(|o| V1_SUBSYSTEMS.contains(o) || o.starts_with("name="))
                    .collect();
                if ctrls.is_empty() {
                    continue;
                }
                ctrls.join(",")
            }
            _ => continue,
        };
        if mounts.iter().any(|m| m.key == key) {
            continue;
        }
        mounts.push(Mount {
            key,
            mount_point: PathBuf::from(unescape(l[4])),
            root: PathBuf::from(unescape(l[3])),
        });
    }
    mounts
}

/// The layout the mounts describe.
pub fn layout_of(mounts: &[Mount]) -> Result<Layout> {
    let v1 = mounts.iter().any(|m| !m.is_unified());
    let v2 = mounts.iter().any(|m| m.is_unified());
    match (v1, v2) {
        (true, true) => Ok(Layout::Hybrid),
        (true, false) => Ok(Layout::V1),
        (false, true) => Ok(Layout::V2),
        (false, false) => Err(Error::NoCgroupMounts),
    }
}

/// Parses `/proc/self/cgroup` into controller list → path ("" for cgroup2).
pub fn parse_proc_cgroup(text: &str) -> HashMap<String, PathBuf> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            map.insert(String::new(), PathBuf::from(path));
        } else {
            for c in ctrls.split(',') {
                map.insert(c.to_string(), PathBuf::from(path));
            }
        }
    }
    map
}

/// The caller's own cgroup directory in `m`, as runc's GetOwnCgroupPath:
/// the path from /proc/self/cgroup, relative to the mount's root.
fn own_dir(m: &Mount, own: &HashMap<String, PathBuf>) -> PathBuf {
    let path = if m.is_unified() {
        own.get("")
    } else {
        m.key.split(',').find_map(|c| own.get(c))
    };
    let Some(path) = path else {
        return m.mount_point.clone();
    };
    match path.strip_prefix(&m.root) {
        Ok(rel) => m.mount_point.join(rel),
        // Outside the mount's root (e.g. "/.." in a cgroup namespace).
        Err(_) => m.mount_point.clone(),
    }
}

/// Checks a cgroupsPath for `..` escapes and returns it cleaned.
pub fn check_path(p: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::InvalidPath {
                    path: p.to_path_buf(),
                    reason: "\"..\" is not allowed",
                })
            }
        }
    }
    Ok(out)
}

/// The container's directory in every hierarchy for an already checked
/// cgroup path: absolute paths go under each mount point, relative ones
/// under the caller's own cgroup (runc's cgroupfs semantics).
pub fn dirs_for(
    mounts: &[Mount],
    own: &HashMap<String, PathBuf>,
    inner: &Path,
) -> Vec<(String, PathBuf)> {
    mounts
        .iter()
        .map(|m| {
            let dir = if inner.is_absolute() {
                let rel = inner.strip_prefix("/").unwrap_or(inner);
                m.mount_point.join(rel)
            } else {
                own_dir(m, own).join(inner)
            };
            (m.key.clone(), dir)
        })
        .collect()
}

/// A systemd `slice:prefix:name` cgroupsPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdPath {
    pub slice: String,
    pub prefix: String,
    pub name: String,
}

impl SystemdPath {
    /// Parses `slice:prefix:name`; an empty slice means `system.slice`.
    pub fn parse(s: &str) -> Result<SystemdPath> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = |reason| Error::InvalidPath {
            path: PathBuf::from(s),
            reason,
        };
        if parts.len() != 3 {
            return Err(bad("systemd cgroupsPath must be \"slice:prefix:name\""));
        }
        if parts.iter().any(|p| p.contains('/')) {
            return Err(bad("systemd cgroupsPath parts must not contain '/'"));
        }
        let slice = if parts[0].is_empty() {
            "system.slice".to_string()
        } else {
            parts[0].to_string()
        };
        if !slice.ends_with(".slice") {
            return Err(bad("systemd slice must end in \".slice\""));
        }
        if parts[2].is_empty() {
            return Err(bad("systemd unit name is empty"));
        }
        Ok(SystemdPath {
            slice,
            prefix: parts[1].to_string(),
            name: parts[2].to_string(),
        })
    }

    /// The unit name: `prefix-name.scope`, or `name` if it is already a slice.
    pub fn unit(&self) -> String {
        if self.name.ends_with(".slice") {
            self.name.clone()
        } else if self.prefix.is_empty() {
            format!("{}.scope", self.name)
        } else {
            format!("{}-{}.scope", self.prefix, self.name)
        }
    }

    /// The cgroup path systemd gives the unit: "a-b.slice" expands to
    /// "/a.slice/a-b.slice".
    pub fn cgroup_path(&self) -> Result<PathBuf> {
        let mut path = PathBuf::from("/");
        if self.slice != "-.slice" {
            let stem = self.slice.trim_end_matches(".slice");
            if stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
                return Err(Error::InvalidPath {
                    path: PathBuf::from(&self.slice),
                    reason: "invalid systemd slice name",
                });
            }
            let mut acc = String::new();
            for part in stem.split('-') {
                if !acc.is_empty() {
                    acc.push('-');
                }
                acc.push_str(part);
                path.push(format!("{acc}.slice"));
            }
        }
        path.push(self.unit());
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
    const V2: &str = "\
25 1 0:23 / / rw - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V1: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 31 0:30 / /mnt/with\\040space rw - cgroup cgroup rw,pids
";

    #[test]
    fn detects_layouts() {
        assert_eq!(layout_of(&parse_mountinfo(HYBRID)).unwrap(), Layout::Hybrid);
        assert_eq!(layout_of(&parse_mountinfo(V2)).unwrap(), Layout::V2);
        assert_eq!(layout_of(&parse_mountinfo(V1)).unwrap(), Layout::V1);
        assert!(matches!(
            layout_of(&parse_mountinfo("1 2 0:1 / / rw - ext4 x rw")),
            Err(Error::NoCgroupMounts)
        ));
    }

    #[test]
    fn mount_keys_and_points() {
        let m = parse_mountinfo(HYBRID);
        let keys: Vec<&str> = m.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["cpu", "cpuacct", "memory", "name=systemd", UNIFIED]);
        let m = parse_mountinfo(V1);
        assert_eq!(m[0].key, "cpu,cpuacct");
        assert!(m[0].has("cpuacct") && !m[0].has("cpuset"));
        assert_eq!(m[1].root, Path::new("/docker/abc"));
        assert_eq!(m[2].mount_point, Path::new("/mnt/with space"));
    }

    #[test]
    fn resolves_absolute_and_relative() {
        let mounts = parse_mountinfo(HYBRID);
        let own =
            parse_proc_cgroup("4:memory:/process_api/x\n1:cpu:/\n9:name=systemd:/user\n0::/u2\n");
        let abs = dirs_for(&mounts, &own, Path::new("/a/b"));
        assert_eq!(abs[2].1, Path::new("/sys/fs/cgroup/memory/a/b"));
        assert_eq!(abs[4].1, Path::new("/sys/fs/cgroup/unified/a/b"));
        let rel = dirs_for(&mounts, &own, Path::new("ctr"));
        assert_eq!(rel[0].1, Path::new("/sys/fs/cgroup/cpu/ctr"));
        assert_eq!(
            rel[2].1,
            Path::new("/sys/fs/cgroup/memory/process_api/x/ctr")
        );
        assert_eq!(rel[3].1, Path::new("/sys/fs/cgroup/systemd/user/ctr"));
        assert_eq!(rel[4].1, Path::new("/sys/fs/cgroup/unified/u2/ctr"));
        // cpuacct is missing from /proc/self/cgroup: the mount point is used.
        assert_eq!(rel[1].1, Path::new("/sys/fs/cgroup/cpuacct/ctr"));
    }

    #[test]
    fn relative_path_honours_mount_root() {
        let mounts = parse_mountinfo(V1);
        let own = parse_proc_cgroup("3:memory:/docker/abc/sub\n2:cpu,cpuacct:/x\n");
        let rel = dirs_for(&mounts, &own, Path::new("c"));
        assert_eq!(rel[0].1, Path::new("/sys/fs/cgroup/cpu,cpuacct/x/c"));
        assert_eq!(rel[1].1, Path::new("/sys/fs/cgroup/memory/sub/c"));
    }

    #[test]
    fn rejects_dotdot() {
        assert!(check_path(Path::new("/a/../../etc")).is_err());
        assert!(check_path(Path::new("../x")).is_err());
        assert_eq!(check_path(Path::new("/a/./b/")).unwrap(), Path::new("/a/b"));
    }

    #[test]
    fn systemd_paths() {
        let p = SystemdPath::parse("machine-foo.slice:rtctr:abc").unwrap();
        assert_eq!(p.unit(), "rtctr-abc.scope");
        assert_eq!(
            p.cgroup_path().unwrap(),
            Path::new("/machine.slice/machine-foo.slice/rtctr-abc.scope")
        );
        let p = SystemdPath::parse(":rtctr:abc").unwrap();
        assert_eq!(
            p.cgroup_path().unwrap(),
            Path::new("/system.slice/rtctr-abc.scope")
        );
        let p = SystemdPath::parse("-.slice::sub.slice").unwrap();
        assert_eq!(p.cgroup_path().unwrap(), Path::new("/sub.slice"));
        assert!(SystemdPath::parse("/a/b").is_err());
        assert!(SystemdPath::parse("foo:rtctr:abc").is_err());
        assert!(SystemdPath::parse("a.slice:p:").is_err());
        assert!(SystemdPath::parse("a--b.slice:p:n")
            .unwrap()
            .cgroup_path()
            .is_err());
    }
}
