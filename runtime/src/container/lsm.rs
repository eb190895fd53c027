//! AppArmor and SELinux labels for the container process
//! (`process.apparmorProfile`, `process.selinuxLabel`).
//!
//! Both are "on exec" labels: the init writes the label to its own
//! `/proc/thread-self/attr/.../exec` and the kernel applies it at the
//! execve of the container process. The write goes through rtctr's own
//! procfs handle ([`crate::container::proc_files`]), never the container's /proc
//! (CVE-2025-52881), and happens before the user switch: once the init is
//! non-dumpable its /proc files belong to root.

use std::io;
use std::path::Path;

use oci_spec::runtime::Process;

use crate::container::proc_files::{Proc, ProcFile};

/// Where the kernel says AppArmor is active ("Y"), as runc checks.
pub const APPARMOR_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
/// selinuxfs: mounted only when SELinux is active.
pub const SELINUX_FS: &str = "/sys/fs/selinux";

pub fn apparmor_enabled() -> bool {
    std::fs::read(APPARMOR_ENABLED).is_ok_and(|v| v.starts_with(b"Y"))
}

pub fn selinux_enabled() -> bool {
    Path::new(SELINUX_FS).join("enforce").exists()
}

/// The labels a process asks for (empty strings mean none).
pub fn requested(proc_: &Process) -> (Option<&str>, Option<&str>) {
    (
        proc_
            .apparmor_profile()
            .as_deref()
            .filter(|p| !p.is_empty()),
        proc_.selinux_label().as_deref().filter(|l| !l.is_empty()),
    )
}

/// A label that cannot be applied, naming the config field.
#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("{field} {label:?}: {lsm} is not enabled on this host ({evidence})")]
    NotEnabled {
        field: &'static str,
        label: String,
        lsm: &'static str,
        evidence: &'static str,
    },
    #[error("{field} {label:?}: writing {path}: {source}")]
    Write {
        field: &'static str,
        label: String,
        path: String,
        #[source]
        source: io::Error,
    },
}

/// A label for an LSM the host does not run would be silently dropped and
/// the process would run unconfined: refuse it. The host is asked only
/// when a label is set (no sysfs read on every create).
pub fn check_enabled(proc_: &Process) -> Result<(), LsmError> {
    let (apparmor, selinux) = requested(proc_);
    let checks = [
        (
            apparmor,
            "process.apparmorProfile",
            apparmor_enabled as fn() -> bool,
            "AppArmor",
            APPARMOR_ENABLED,
        ),
        (
            selinux,
            "process.selinuxLabel",
            selinux_enabled,
            "SELinux",
            SELINUX_FS,
        ),
    ];
    for (label, field, enabled, lsm, evidence) in checks {
        if let Some(label) = label {
            if !enabled() {
                return Err(LsmError::NotEnabled {
                    field,
                    label: label.to_string(),
                    lsm,
                    evidence,
                });
            }
        }
    }
    Ok(())
}

/// `linux.mountLabel` is applied only where SELinux runs: refuse it
/// elsewhere rather than mount without it.
pub fn check_mount_label(linux: &oci_spec::runtime::Linux) -> Result<(), LsmError> {
    match linux.mount_label().as_deref().filter(|l| !l.is_empty()) {
        Some(label) if !selinux_enabled() => Err(LsmError::NotEnabled {
            field: "linux.mountLabel",
            label: label.to_string(),
            lsm: "SELinux",
            evidence: SELINUX_FS,
        }),
        _ => Ok(()),
    }
}

/// Sets the labels the next execve applies. [`check_enabled`] has already
/// refused a label whose LSM is not active.
pub fn set_exec_labels(proc_: &Process) -> Result<(), LsmError> {
    let (apparmor, selinux) = requested(proc_);
    if apparmor.is_none() && selinux.is_none() {
        return Ok(());
    }
    let fail = |field, label: &str, path: &dyn std::fmt::Display| {
        let (label, path) = (label.to_string(), path.to_string());
        move |source| LsmError::Write {
            field,
            label,
            path,
            source,
        }
    };
    let (field, label) = match (apparmor, selinux) {
        (Some(p), _) => ("process.apparmorProfile", p),
        (None, l) => ("process.selinuxLabel", l.unwrap_or_default()),
    };
    let proc_fs = Proc::open().map_err(fail(field, label, &"a private procfs"))?;
    if let Some(profile) = apparmor {
        // attr/apparmor/exec since Linux 5.8 (LSM stacking); attr/exec before.
        let file = if proc_fs.exists(ProcFile::ThreadSelf("attr/apparmor")) {
            ProcFile::ThreadSelf("attr/apparmor/exec")
        } else {
            ProcFile::ThreadSelf("attr/exec")
        };
        proc_fs
            .write(file, &format!("exec {profile}"))
            .map_err(fail(
                "process.apparmorProfile",
                profile,
                &file.path().display(),
            ))?;
    }
    if let Some(label) = selinux {
        let file = ProcFile::ThreadSelf("attr/exec");
        proc_fs.write(file, label).map_err(fail(
            "process.selinuxLabel",
            label,
            &file.path().display(),
        ))?;
    }
    Ok(())
}
