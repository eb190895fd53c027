//! `process.capabilities` → a [`CapabilityPlan`] of five bit masks, applied in
//! the order the kernel forces.
//!
//! # Order (in the init process)
//!
//! 1. [`CapabilityPlan::drop_bounding`]: `prctl(PR_CAPBSET_DROP)` for every
//!    capability up to `/proc/sys/kernel/cap_last_cap` that is not in the
//!    bounding set. Needs `CAP_SETPCAP`, so it runs while still root.
//! 2. `prctl(PR_SET_KEEPCAPS, 1)`, then `setgroups`/`setresgid`/`setresuid`
//!    (done by the caller): keepcaps keeps the permitted set across the uid
//!    switch; the effective set is cleared by it.
//! 3. [`CapabilityPlan::apply_after_user_switch`]: one `capset(2)` for
//!    effective, permitted and inheritable, then the ambient set is cleared
//!    and raised cap by cap (`PR_CAP_AMBIENT_RAISE`), which the kernel only
//!    allows for capabilities that are both permitted and inheritable.
//!
//! # Names
//!
//! oci-spec 0.10 parses names leniently in form (`cap_net_raw`, `NET_RAW`)
//! but rejects a name it does not know **while parsing config.json**: the
//! whole config fails with `no variant for CAP_FOO (converted to FOO)`. runc
//! warns and ignores such names instead. To give a clear error that names the
//! set, the spec loader (`crate::spec`) looks at the raw JSON when that
//! parse fails. Names oci-spec knows (0–40) but the running kernel does
//! not (number > `cap_last_cap`) are skipped by [`plan`] with a warning, as
//! runc does.
//!
//! A missing `process.capabilities` (or a missing set) means an empty set,
//! as in runc: the process keeps no capabilities.

use std::collections::BTreeSet;
use std::io;
use std::str::FromStr;

use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use rustix::thread::{self, CapabilitySet, CapabilitySets};

/// Where the kernel publishes its highest capability number.
const CAP_LAST_CAP: &str = "/proc/sys/kernel/cap_last_cap";

/// Errors from planning or applying capabilities.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    #[error("unknown capability {name:?}{}", in_set(.set))]
    UnknownName { name: String, set: Option<String> },
    #[error("reading {CAP_LAST_CAP}")]
    ReadLastCap(#[source] io::Error),
    #[error("{CAP_LAST_CAP} does not hold a number: {content:?}")]
    ParseLastCap { content: String },
    #[error("capability {cap} is in the ambient set but not in the inheritable set; the kernel only raises ambient capabilities that are inheritable and permitted")]
    AmbientNotInheritable { cap: String },
    #[error("capability {cap} is in the ambient set but not in the permitted set; the kernel only raises ambient capabilities that are inheritable and permitted")]
    AmbientNotPermitted { cap: String },
    #[error("capability {cap} is in the effective set but not in the permitted set")]
    EffectiveNotPermitted { cap: String },
    #[error("prctl(PR_CAPBSET_DROP, {cap}) failed")]
    DropBounding {
        cap: String,
        #[source]
        source: io::Error,
    },
    #[error("capset(effective {effective:#x}, permitted {permitted:#x}, inheritable {inheritable:#x}) failed")]
    Capset {
        effective: u64,
        permitted: u64,
        inheritable: u64,
        #[source]
        source: io::Error,
    },
    #[error("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL) failed")]
    ClearAmbient(#[source] io::Error),
    #[error("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, {cap}) failed")]
    RaiseAmbient {
        cap: String,
        #[source]
        source: io::Error,
    },
}

fn in_set(set: &Option<String>) -> String {
    set.as_ref()
        .map(|s| format!(" in process.capabilities.{s}"))
        .unwrap_or_default()
}

/// A set of capabilities as a bit mask (bit n = capability n), the form
/// `/proc/<pid>/status` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CapSet(pub u64);

impl CapSet {
    pub fn contains(self, cap: u8) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    /// The capability numbers in the set, ascending.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0u8..64).filter(move |c| self.contains(*c))
    }

    fn insert(&mut self, cap: u8) {
        self.0 |= 1 << cap;
    }
}

impl std::fmt::LowerHex for CapSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::LowerHex::fmt(&self.0, f)
    }
}

/// What the init process will set, one mask per capability set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapabilityPlan {
    pub bounding: CapSet,
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
    pub ambient: CapSet,
    /// `cap_last_cap` of the kernel the plan was made for.
    pub last_cap: u8,
}

/// The name of a capability number, `CAP_…`, or `cap_<n>` past what the caps crate knows.
pub fn name(cap: u8) -> String {
    caps::all()
        .into_iter()
        .find(|c| c.index() == cap)
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("cap_{cap}"))
}

/// The number of a capability name; accepts `CAP_NET_RAW`, `net_raw`, `NET_RAW`.
pub fn parse_name(name: &str) -> Result<u8, CapError> {
    caps::Capability::from_str(&caps::to_canonical(name))
        .map(|c| c.index())
        .map_err(|_| CapError::UnknownName {
            name: name.to_string(),
            set: None,
        })
}

/// Reads `/proc/sys/kernel/cap_last_cap` (call it before `/proc` changes,
/// e.g. in the runtime or early in init).
pub fn kernel_last_cap() -> Result<u8, CapError> {
    let content = std::fs::File::open(CAP_LAST_CAP)
        .and_then(rtctr_cgroups::read_kernel_file)
        .map_err(CapError::ReadLastCap)?;
    let last: u8 = content
        .trim()
        .parse()
        .map_err(|_| CapError::ParseLastCap { content })?;
    // Capability sets are 64 bits wide.
    Ok(last.min(63))
}

/// Plans the capability sets for the running kernel. Returns the plan and
/// warnings for capabilities the kernel does not know (they are skipped).
pub fn plan(caps: Option<&LinuxCapabilities>) -> Result<(CapabilityPlan, Vec<String>), CapError> {
    plan_for_kernel(caps, kernel_last_cap()?)
}

/// [`plan`] for a kernel whose highest capability is `last_cap`. Pure.
pub fn plan_for_kernel(
    caps: Option<&LinuxCapabilities>,
    last_cap: u8,
) -> Result<(CapabilityPlan, Vec<String>), CapError> {
    let mut unknown = BTreeSet::new();
    let mut mask = |set: Option<&Capabilities>| -> Result<CapSet, CapError> {
        let mut out = CapSet::default();
        for cap in set.into_iter().flatten() {
            let n = parse_name(&cap.to_string())?;
            if n > last_cap {
                unknown.insert(n);
            } else {
                out.insert(n);
            }
        }
        Ok(out)
    };
    let plan = match caps {
        None => CapabilityPlan::default(),
        Some(c) => CapabilityPlan {
            bounding: mask(c.bounding().as_ref())?,
            effective: mask(c.effective().as_ref())?,
            permitted: mask(c.permitted().as_ref())?,
            inheritable: mask(c.inheritable().as_ref())?,
            ambient: mask(c.ambient().as_ref())?,
            last_cap,
        },
    };
    let plan = CapabilityPlan { last_cap, ..plan };
    if let Some(cap) = plan.ambient.iter().find(|c| !plan.inheritable.contains(*c)) {
        return Err(CapError::AmbientNotInheritable { cap: name(cap) });
    }
    if let Some(cap) = plan.ambient.iter().find(|c| !plan.permitted.contains(*c)) {
        return Err(CapError::AmbientNotPermitted { cap: name(cap) });
    }
    if let Some(cap) = plan.effective.iter().find(|c| !plan.permitted.contains(*c)) {
        return Err(CapError::EffectiveNotPermitted { cap: name(cap) });
    }
    let warnings = unknown
        .into_iter()
        .map(|n| {
            format!(
                "capability {} ({n}) is not known to the running kernel (cap_last_cap {last_cap}); skipped",
                name(n)
            )
        })
        .collect();
    Ok((plan, warnings))
}

/// A one-capability set, the form rustix's capability calls take; works for
/// numbers rustix has no name for.
fn one(cap: u8) -> CapabilitySet {
    CapabilitySet::from_bits_retain(1 << cap)
}

impl CapabilityPlan {
    /// Drops every capability not in the bounding set from the bounding set.
    /// Call it before the uid switch (it needs `CAP_SETPCAP`).
    pub fn drop_bounding(&self) -> Result<(), CapError> {
        for cap in 0..=self.last_cap {
            if self.bounding.contains(cap) {
                continue;
            }
            let drop_err = |errno: rustix::io::Errno| CapError::DropBounding {
                cap: name(cap),
                source: errno.into(),
            };
            // Already gone: nothing to do (and no CAP_SETPCAP needed).
            if !thread::capability_is_in_bounding_set(one(cap)).map_err(drop_err)? {
                continue;
            }
            thread::remove_capability_from_bounding_set(one(cap)).map_err(drop_err)?;
        }
        Ok(())
    }

    /// Sets effective, permitted and inheritable in one `capset(2)`, then
    /// replaces the ambient set. Call it after the uid switch (with keepcaps).
    pub fn apply_after_user_switch(&self) -> Result<(), CapError> {
        let sets = CapabilitySets {
            effective: CapabilitySet::from_bits_retain(self.effective.0),
            permitted: CapabilitySet::from_bits_retain(self.permitted.0),
            inheritable: CapabilitySet::from_bits_retain(self.inheritable.0),
        };
        thread::set_capabilities(None, sets).map_err(|errno| CapError::Capset {
            effective: self.effective.0,
            permitted: self.permitted.0,
            inheritable: self.inheritable.0,
            source: errno.into(),
        })?;
        thread::clear_ambient_capability_set().map_err(|e| CapError::ClearAmbient(e.into()))?;
        for cap in self.ambient.iter() {
            thread::configure_capability_in_ambient_set(one(cap), true).map_err(|errno| {
                CapError::RaiseAmbient {
                    cap: name(cap),
                    source: errno.into(),
                }
            })?;
        }
        Ok(())
    }
}

// Forking a child needs unsafe; the module itself has none.
#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use std::panic::AssertUnwindSafe;

    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, setgroups, setresgid, setresuid, ForkResult, Gid, Uid};
    use rtctr_test_support::require_root;
    use serde_json::{json, Value};

    use super::*;

    /// Why these tests need root, for [`require_root`]'s message.
    const NEEDS_ROOT: &str = "changes capability sets and uids in a forked child";

    fn spec_caps(v: Value) -> LinuxCapabilities {
        serde_json::from_value(v).expect("capabilities parse")
    }

    /// Runs `f` in a forked child; the child exits with `f`'s value (101 on panic).
    fn in_child(f: impl FnOnce() -> i32) -> WaitStatus {
        // SAFETY: the child runs `f` and leaves with `_exit`, never returning
        // into the test harness; the parent only waits for it.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
                // SAFETY: ends the child without running the harness's exit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
        }
    }

    /// CapInh, CapPrm, CapEff, CapBnd, CapAmb of this process.
    fn status_masks() -> [u64; 5] {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let get = |key: &str| {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            u64::from_str_radix(line[key.len()..].trim(), 16).unwrap()
        };
        ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"].map(get)
    }

    fn expected(plan: &CapabilityPlan) -> [u64; 5] {
        [
            plan.inheritable.0,
            plan.permitted.0,
            plan.effective.0,
            plan.bounding.0,
            plan.ambient.0,
        ]
    }

    /// Applies `plan` in a child, optionally switching to uid/gid 1000, and
    /// checks /proc/self/status.
    fn apply_in_child(plan: &CapabilityPlan, switch_user: bool) -> WaitStatus {
        in_child(|| {
            if let Err(e) = plan.drop_bounding() {
                eprintln!("{e:?}");
                return 10;
            }
            if switch_user {
                let id = 1000;
                if nix::sys::prctl::set_keepcaps(true).is_err()
                    || setgroups(&[]).is_err()
                    || setresgid(Gid::from_raw(id), Gid::from_raw(id), Gid::from_raw(id)).is_err()
                    || setresuid(Uid::from_raw(id), Uid::from_raw(id), Uid::from_raw(id)).is_err()
                {
                    return 11;
                }
            }
            if let Err(e) = plan.apply_after_user_switch() {
                eprintln!("{e:?}");
                return 12;
            }
            let got = status_masks();
            if got != expected(plan) {
                eprintln!(
                    "Inh Prm Eff Bnd Amb: got {got:x?}, want {:x?}",
                    expected(plan)
                );
                return 13;
            }
            0
        })
    }

    #[test]
    fn plan_and_apply_as_user_1000() {
        if !require_root(NEEDS_ROOT) {
            return;
        }
        let (plan, warnings) = plan(Some(&spec_caps(json!({
            "bounding": ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL"],
            "effective": ["CAP_CHOWN", "CAP_NET_RAW"],
            "inheritable": ["CAP_NET_RAW", "CAP_KILL"],
            "ambient": ["CAP_NET_RAW"]
        }))))
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(plan.ambient, CapSet(1 << 13));
        assert_eq!(plan.effective, CapSet(0x2001));
        let status = apply_in_child(&plan, true);
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    }

    #[test]
    fn plan_and_apply_as_root() {
        if !require_root(NEEDS_ROOT) {
            return;
        }
        let (plan, _) = plan(Some(&spec_caps(json!({
            "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_BPF"],
            "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_AUDIT_WRITE", "CAP_KILL"],
            "inheritable": [],
            "ambient": []
        }))))
        .unwrap();
        let status = apply_in_child(&plan, false);
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
        // No capabilities section at all: everything is dropped.
        let (empty, _) = super::plan(None).unwrap();
        assert_eq!(empty.bounding, CapSet(0));
        let status = apply_in_child(&empty, false);
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    }

    #[test]
    fn caps_unknown_to_the_kernel_are_skipped_with_a_warning() {
        let caps = spec_caps(json!({
            "bounding": ["CAP_CHOWN", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"],
            "permitted": ["CAP_CHOWN", "CAP_BPF"],
            "effective": ["CAP_BPF"]
        }));
        // CAP_PERFMON is 38, CAP_BPF 39, CAP_CHECKPOINT_RESTORE 40.
        let (plan, warnings) = plan_for_kernel(Some(&caps), 38).unwrap();
        assert_eq!(plan.bounding, CapSet(1));
        assert_eq!(plan.permitted, CapSet(1));
        assert_eq!(plan.effective, CapSet(0));
        assert_eq!(plan.last_cap, 38);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("CAP_BPF (39)"), "{warnings:?}");
        assert!(warnings[1].contains("CAP_CHECKPOINT_RESTORE (40)"));
        // The running kernel (cap_last_cap 40 here) knows them all.
        let (_, warnings) = super::plan(Some(&caps)).unwrap();
        assert!(warnings.is_empty() || kernel_last_cap().unwrap() < 40);
    }

    #[test]
    fn inconsistent_sets_are_clear_errors() {
        let err = |v: Value| {
            plan_for_kernel(Some(&spec_caps(v)), 40)
                .unwrap_err()
                .to_string()
        };
        let msg = err(json!({"permitted": ["CAP_NET_RAW"], "ambient": ["CAP_NET_RAW"]}));
        assert!(
            msg.contains("CAP_NET_RAW") && msg.contains("not in the inheritable set"),
            "{msg}"
        );
        let msg = err(json!({"inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]}));
        assert!(
            msg.contains("CAP_KILL") && msg.contains("not in the permitted set"),
            "{msg}"
        );
        let msg = err(json!({"effective": ["CAP_KILL"]}));
        assert!(
            msg.contains("effective") && msg.contains("CAP_KILL"),
            "{msg}"
        );
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("CAP_NET_RAW").unwrap(), 13);
        assert_eq!(parse_name("net_raw").unwrap(), 13);
        assert_eq!(parse_name("NET_ADMIN").unwrap(), 12);
        let msg = parse_name("CAP_FOO").unwrap_err().to_string();
        assert_eq!(msg, "unknown capability \"CAP_FOO\"");
        assert_eq!(name(40), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(name(50), "cap_50");
    }
}
