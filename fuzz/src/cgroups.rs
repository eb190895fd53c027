//! What `create` does with a valid config's cgroup settings, without a
//! cgroup: the directories for `linux.cgroupsPath` (from made-up
//! /proc texts), the device rules, and the resource writes planned
//! against fake cgroup directories (their files are absent, so every
//! write fails, or they are symlinks to /dev/null: nothing changes and a
//! run does not depend on the one before).

use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use oci_spec::runtime::Linux;
use rtctr_cgroups::{devices, Cgroup, Driver, Error, Layout, UNIFIED};

use crate::message;

/// A cgroup v2 host and a cgroup v1 host, as /proc/self/mountinfo and
/// /proc/self/cgroup show them.
const HOSTS: [(&str, &str); 2] = [
    (
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
        "0::/user.slice/user-0.slice/session-1.scope\n",
    ),
    (
        "25 24 0:22 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,memory\n\
         26 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct\n\
         27 24 0:24 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,pids\n\
         28 24 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,xattr,name=systemd\n",
        "4:pids:/system.slice/docker.service\n3:cpu,cpuacct:/system.slice\n2:memory:/\n1:name=systemd:/init.scope\n",
    ),
];

/// Controllers the fake v2 directory offers.
const V2_CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids rdma misc\n";

/// The v1 controllers the fake v1 cgroup has, each in the same directory.
const V1_KEYS: [&str; 8] = [
    "cpu,cpuacct",
    "memory",
    "pids",
    "blkio",
    "hugetlb",
    "net_cls,net_prio",
    "cpuset",
    "rdma",
];

/// The fake cgroups: one directory per layout under the temp dir, made
/// once, never written to (files that must exist are /dev/null).
fn fake_cgroups() -> &'static [Cgroup; 2] {
    static CGROUPS: OnceLock<[Cgroup; 2]> = OnceLock::new();
    CGROUPS.get_or_init(|| {
        let base = std::env::temp_dir().join("rtctr-fuzz-cgroups");
        let (v2, v1) = (base.join("v2"), base.join("v1"));
        for dir in [&v2, &v1] {
            std::fs::create_dir_all(dir).expect("make the fake cgroup directories");
        }
        let controllers = v2.join("cgroup.controllers");
        if std::fs::read_to_string(&controllers).ok().as_deref() != Some(V2_CONTROLLERS) {
            std::fs::write(&controllers, V2_CONTROLLERS).expect("write cgroup.controllers");
        }
        // A huge page size the host "has", so hugepageLimits gets planned.
        for (dir, file) in [
            (&v2, "hugetlb.2MB.max"),
            (&v2, "hugetlb.2MB.rsvd.max"),
            (&v1, "hugetlb.2MB.limit_in_bytes"),
        ] {
            let _ = symlink("/dev/null", dir.join(file));
        }
        let cgroup = |layout, dirs: Vec<(String, PathBuf)>| Cgroup {
            layout,
            mount_points: vec![base.clone(); dirs.len()],
            dirs,
            driver: Driver::Cgroupfs,
        };
        [
            cgroup(Layout::V2, vec![(UNIFIED.to_string(), v2.clone())]),
            cgroup(
                Layout::V1,
                V1_KEYS
                    .iter()
                    .map(|k| (k.to_string(), v1.clone()))
                    .collect(),
            ),
        ]
    })
}

/// The cgroup checks of a valid config; refusals are added to `refusals`.
pub fn check(linux: &Linux, refusals: &mut Vec<String>) {
    let cgroups_path = linux.cgroups_path().as_deref();
    for (mountinfo, own) in HOSTS {
        match Cgroup::resolve_from(mountinfo, own, cgroups_path, "fuzz", false) {
            Ok(cg) => {
                assert_eq!(cg.dirs.len(), cg.mount_points.len());
                for ((_, dir), mount) in cg.dirs.iter().zip(&cg.mount_points) {
                    inside(dir, mount, cgroups_path);
                }
            }
            Err(e) => refusals.push(message(&e)),
        }
    }
    let Some(resources) = linux.resources() else {
        return;
    };
    // The rule list `create` applies: the config's, the defaults, the nodes.
    let rules = devices::create_rules(
        resources.devices().as_deref(),
        linux.devices().as_deref().unwrap_or_default(),
    );
    match devices::rules(&rules) {
        Ok(checked) => {
            assert!(devices::program(&checked).len() >= 2);
            devices::v1_plan(&rules).expect("v1_plan refuses what rules accepted");
        }
        Err(e) => refusals.push(message(&e)),
    }
    let mut resources = resources.clone();
    resources.set_devices(None); // applying them loads a BPF program
    for cg in fake_cgroups() {
        match cg.apply(&resources) {
            // The plan was made; writing it failed on the fake directory.
            Ok(()) | Err(Error::Write { .. } | Error::NotApplied { .. }) => {}
            Err(e) => refusals.push(message(&e)),
        }
    }
}

/// A container's cgroup directory is strictly below its hierarchy's
/// mount point, whatever `linux.cgroupsPath` says.
fn inside(dir: &Path, mount: &Path, cgroups_path: Option<&Path>) {
    assert!(
        dir.starts_with(mount)
            && dir != mount
            && !dir.components().any(|c| c == Component::ParentDir),
        "cgroupsPath {cgroups_path:?} gives {} outside (or at) the hierarchy {}",
        dir.display(),
        mount.display()
    );
}
