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

/// A failed label write, naming the config field.
#[derive(Debug, thiserror::Error)]
#[error("{field} {label:?}: writing {path}: {source}")]
pub struct LsmError {
    pub field: &'static str,
    pub label: String,
    pub path: String,
    #[source]
    pub source: io::Error,
}

/// Sets the labels the next execve applies. Spec validation has already
/// refused a label whose LSM is not active.
pub fn set_exec_labels(proc_: &Process) -> Result<(), LsmError> {
    let (apparmor, selinux) = requested(proc_);
    if apparmor.is_none() && selinux.is_none() {
        return Ok(());
    }
    let fail = |field, label: &str, path: &dyn std::fmt::Display| {
        let (label, path) = (label.to_string(), path.to_string());
        move |source| LsmError {
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
