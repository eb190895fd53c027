//! OCI `linux.seccomp` → one classic-BPF program, installed with raw `seccomp(2)`.
//!
//! # Plan, then apply
//!
//! [`compile`] is pure (no syscalls): it resolves names, checks the profile and
//! assembles a [`Program`]. The init process calls it before it drops
//! privileges, and calls [`Program::install`] as late as possible before
//! `execve`. If the profile uses `SCMP_ACT_NOTIFY`, `install` returns the
//! listener fd; the unfiltered runtime hands it to the agent with
//! [`Program::hand_over_listener`].
//!
//! # How the per-syscall actions are combined
//!
//! seccompiler 0.5 builds filters with a single match action, so an OCI profile
//! would need a stack of filters (one per distinct action). Instead rtctr
//! assembles **one program** and borrows only seccompiler's tested argument
//! comparison code (`SeccompRule` → BPF, which handles 64-bit compares and
//! long jumps). The layout is:
//!
//! ```text
//! ld arch
//! jeq AUDIT_ARCH_X86_64 → x86_64 section
//! jeq AUDIT_ARCH_I386   → i386 section        (only if SCMP_ARCH_X86 is listed)
//! ret KILL_PROCESS                              (any other audit arch)
//! x86_64 section:
//!   ld nr
//!   nr >= 0x40000000? → x32 section if SCMP_ARCH_X32 is listed, else ret KILL_PROCESS
//!   binary search over spans of syscall numbers: jge FIRST_OF_UPPER_HALF → upper half ; lower half
//!   (a `ja` carries the jump when the lower half is longer than 255 insns)
//!   a span is either a run of neighbouring numbers with one action (unnamed numbers: the default;
//!   above the highest named number: ERRNO(ENOSYS), runc's stub, see below) → ret ACTION,
//!   or one syscall with argument rules → {rule ; ret ACTION}* ; ret DEFAULT
//! i386 section: the same, built from the i386 syscall table, 32-bit compares
//! x32 section: the same, x32 numbers (x32 bit set), 32-bit compares
//! ```
//!
//! Most of a profile's allowed syscalls are neighbours, so podman's 345
//! x86_64 syscalls are 59 spans (i386: 414 in 110, x32: 338 in 100): the
//! program is a third of what one compare per syscall needs, and the kernel
//! converts and JIT-compiles it when the init installs it, once per
//! container.
//!
//! A stack of filters was the alternative (crates.md §2: base filter plus
//! one per distinct action, 2023 insns, 0.31 ms). One program is smaller, has
//! no per-filter arch check to repeat, can carry i386 and x32, needs no
//! placeholder patching for NOTIFY (the `RET` value is ours), and only one
//! filter may own a listener anyway.
//!
//! Rules are merged per syscall as libseccomp 2.5.4 does (checked with it):
//! the first rule without arguments is final: it replaces the syscall's
//! argument rules and later rules are ignored; two rules with the same
//! conditions and different actions are an error (libseccomp: `EEXIST`).
//! The argument rules of a syscall are tried ordered by kernel precedence
//! (the most restrictive action first: the answer a stack of one filter per
//! action would give when several rules match); if none matches, the default
//! action applies. This differs from libseccomp only when rules with
//! different actions overlap on different arguments (e.g. `a0 == 1 → ALLOW`,
//! `a1 < 2 → TRAP`, `a2 >= 3 → LOG` and a call matching all three: rtctr
//! TRAP, libseccomp LOG, an artefact of its per-argument decision tree). Every path out of a syscall block returns, so the
//! accumulator being clobbered by argument loads does not matter.
//!
//! The program only loads `arch` and `nr` outside argument rules, so the
//! kernel's constant-action cache (5.11+) can answer always-allowed syscalls
//! without running BPF at all.
//!
//! # Cost (podman's /usr/share/containers/seccomp.json, docker default caps)
//!
//! 630 instructions for x86_64 + i386 + x32 (C libseccomp 2.5.4: 1125;
//! one compare per syscall, as rtctr did before: 2035; seccompiler stacked
//! filters, x86_64 only: 2023), compiled in 0.04 ms (release, mean of 1000;
//! 0.10 ms before, most of it a map keyed by number shifting its nodes).
//! The kernel's conversion and JIT of the program were 0.28 ms of each
//! container's start with 2035 instructions (`perf record -a`, 100
//! lifecycles). Per syscall, best of 5 × 10⁶ calls in a forked child,
//! without → with the filter (2-core VM, ±30 ns): getppid (cached allow)
//! 135 → 165 ns; personality(0xffffffff) (argument rule, BPF runs) 265 → 320
//! ns; syscall 1000 (unlisted → default) 85 → 135 ns. Rerun with `make
//! bench` (`cargo bench -p rtctr --bench seccomp`).
//!
//! # Rules copied from runc / libseccomp
//!
//! * `SCMP_ACT_ERRNO` without `errnoRet` returns `EPERM`; so does
//!   `SCMP_ACT_TRACE` (the value is the ptrace message). `defaultErrnoRet`
//!   applies when `defaultAction` is `SCMP_ACT_ERRNO`.
//! * A rule whose action equals the default action is skipped.
//! * Several conditions on one rule are ANDed; if one argument index appears
//!   more than once, every condition becomes its own rule (ORed), as runc does.
//! * A syscall name unknown to an architecture's table is skipped for that
//!   architecture; names unknown to all are listed in
//!   [`Program::skipped_syscalls`].
//! * `SCMP_ACT_KILL` is `KILL_THREAD`.
//! * runc's ENOSYS stub: unless the default action is ALLOW, LOG, TRACE or
//!   already `ERRNO(ENOSYS)`, a syscall number above the highest one the
//!   profile names (per arch) returns `ENOSYS`, so a libc falls back from a
//!   syscall newer than the profile (`clone3` → `clone`) instead of failing.
//! * `errnoRet` on other actions and `defaultErrnoRet` with a non-ERRNO
//!   default are ignored.
//!
//! # Architectures
//!
//! x86_64 is always included (libseccomp always adds the native arch).
//! `SCMP_ARCH_X86` adds an i386 section with the i386 numbers from the
//! `syscalls` crate; `SCMP_ARCH_X32` adds an x32 section (x86_64 numbers with
//! the x32 bit, except 36 syscalls x32 has at 512–547 and 11 it lacks). As in
//! libseccomp, arguments are compared as 64 bits on x86_64 and as 32 bits on
//! i386 and x32. A test compares the result for podman's profile with C
//! libseccomp 2.5.4 for every number on all three. Any other arch in the list
//! cannot occur on an x86_64 kernel and is ignored. A syscall from an arch
//! that is not listed is killed (`KILL_PROCESS`, like seccompiler; libseccomp
//! uses `KILL_THREAD`).
//!
//! # Flags
//!
//! `LOG`, `SPEC_ALLOW`, `TSYNC` and `WAIT_KILLABLE_RECV` are passed to
//! `seccomp(2)`. `NEW_LISTENER` is added when any action is `NOTIFY`
//! (then `TSYNC` also needs `TSYNC_ESRCH`); `WAIT_KILLABLE_RECV` is dropped
//! when there is no listener, because the kernel rejects it alone.
//!
//! # NOTIFY
//!
//! `listenerPath` must be set when `SCMP_ACT_NOTIFY` is used. NOTIFY is
//! refused as the default action (the init's own syscalls after `install`
//! would block before any agent holds the listener) and for the syscalls in
//! [`NOTIFY_FORBIDDEN`], which init needs to hand the listener over.
//!
//! # Use from the init process
//!
//! `seccomp(2)` needs `no_new_privs` or `CAP_SYS_ADMIN`. With
//! `process.noNewPrivileges: false` and a capability set without
//! `CAP_SYS_ADMIN`, install before the capability drop and user switch, as
//! runc does (then the profile must allow the syscalls init makes
//! afterwards); otherwise install as late as possible:
//!
//! ```text
//! let program = seccomp::compile(spec_seccomp)?;      // early, may fail cleanly
//! ... caps, user switch, no_new_privs ...
//! let listener = program.install()?;                  // as late as possible
//! if let Some(fd) = listener {                        // hand fd to the runtime:
//!     // report fd.as_raw_fd() over the sync channel and wait; the runtime
//!     // calls program.hand_over_listener(pid, n, &state) (pidfd_getfd, then
//!     // sendmsg to listenerPath) and answers; the process closes its copy.
//! }
//! ... wait for start, execve ...
//! ```

mod emit;
// The only unsafe code of this module: seccomp(2) (no safe wrapper exists in
// nix or rustix) and taking ownership of the listener fd it returns.
#[allow(unsafe_code)]
mod kernel;
// Tests fork and make raw syscalls.
#[cfg(test)]
#[allow(unsafe_code)]
mod tests;

use std::io;
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};
use seccompiler::{sock_filter, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};

#[cfg(test)]
use kernel::{send_listener, take_listener};

/// Syscalls that may not use `SCMP_ACT_NOTIFY`: the init process uses them to
/// hand the listener fd to the runtime, i.e. before any agent can answer.
/// (runc forbids `write`; keep this in step with what init calls between
/// `install` and the hand-over.)
pub const NOTIFY_FORBIDDEN: &[&str] = &["write", "sendmsg"];

/// The kernel's limit on instructions in one filter (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// Errors from compiling, installing or handing over a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp is only implemented for x86_64 hosts")]
    UnsupportedHost,
    #[error("seccomp: {action} is not allowed as defaultAction")]
    DefaultActionNotAllowed { action: String },
    #[error("seccomp: errnoRet {value} for {what} is out of range (max {max})")]
    ErrnoOutOfRange { what: String, value: u32, max: u32 },
    #[error("seccomp: argument index {index} for syscall {syscall} is out of range (0..=5)")]
    ArgIndex { syscall: String, index: usize },
    #[error("seccomp: syscall {syscall} has two rules with the same arguments and different actions ({first:#x} and {second:#x})")]
    ConflictingRules {
        syscall: String,
        first: u32,
        second: u32,
    },
    #[error("seccomp: SCMP_ACT_NOTIFY is used but linux.seccomp.listenerPath is not set")]
    NotifyWithoutListener,
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used for syscall {syscall}: the runtime needs it before the agent has the listener")]
    NotifyForbidden { syscall: String },
    #[error("seccomp: building the argument rule for syscall {syscall}")]
    Rule {
        syscall: String,
        #[source]
        source: seccompiler::BackendError,
    },
    #[error("seccomp: the filter has {insns} BPF instructions, the kernel allows {MAX_INSNS}")]
    TooLarge { insns: usize },
    #[error("seccomp(SECCOMP_SET_MODE_FILTER) needs no_new_privs or CAP_SYS_ADMIN")]
    InstallNotPermitted,
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}) failed")]
    Install {
        flags: u64,
        #[source]
        source: io::Error,
    },
    #[error("seccomp: connecting to listener socket {path}")]
    ListenerConnect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("seccomp: sending the listener fd to {path}")]
    ListenerSend {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("seccomp: taking listener fd {fd} from process {pid} (pidfd_getfd)")]
    TakeListener {
        pid: i32,
        fd: i32,
        #[source]
        source: io::Error,
    },
    #[error("seccomp: serializing the container process state")]
    StateJson(#[source] serde_json::Error),
}

/// A compiled seccomp profile, ready for [`Program::install`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    filter: Vec<sock_filter>,
    flags: u64,
    listener_path: Option<PathBuf>,
    listener_metadata: Option<String>,
    skipped: Vec<String>,
}

impl Program {
    /// Number of BPF instructions (at most [`MAX_INSNS`]).
    pub fn instruction_count(&self) -> usize {
        self.filter.len()
    }

    /// The BPF instructions, for debugging and tests.
    pub fn instructions(&self) -> &[sock_filter] {
        &self.filter
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits `install` passes to `seccomp(2)`.
    pub fn flags(&self) -> u64 {
        self.flags
    }

    /// Whether the filter uses `SCMP_ACT_NOTIFY`, so `install` returns a listener fd.
    pub fn wants_listener(&self) -> bool {
        self.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }

    /// `linux.seccomp.listenerPath`, set whenever [`Program::wants_listener`] is true.
    pub fn listener_path(&self) -> Option<&std::path::Path> {
        self.listener_path.as_deref()
    }

    /// `linux.seccomp.listenerMetadata`, passed on to the agent.
    pub fn listener_metadata(&self) -> Option<&str> {
        self.listener_metadata.as_deref()
    }

    /// Syscall names that no requested architecture knows; they were skipped.
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped
    }
}

/// Architectures the program has a section for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SectionArch {
    X86_64,
    I386,
    X32,
}

/// `__X32_SYSCALL_BIT`: x32 calls arrive with AUDIT_ARCH_X86_64 and this bit set.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// x32 syscalls numbered 512 + index (kernel `syscall_64.tbl`, ABI "x32");
/// x32 does not have them at their x86_64 numbers.
const X32_COMPAT: [&str; 36] = [
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];

/// x86_64-only syscalls (ABI "64") that x32 lacks altogether.
const X32_MISSING: [&str; 11] = [
    "uselib",
    "_sysctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "nfsservctl",
    "set_thread_area",
    "get_thread_area",
    "epoll_ctl_old",
    "epoll_wait_old",
    "vserver",
];

/// The x32 number of a syscall name, with the x32 bit set. Every other x32
/// syscall has its x86_64 number (checked against linux-libc-dev 6.1's
/// `asm/unistd_x32.h`; later syscalls are all common).
fn x32_nr(name: &str) -> Option<u32> {
    if let Some(i) = X32_COMPAT.iter().position(|n| *n == name) {
        return Some(X32_SYSCALL_BIT | (512 + i as u32));
    }
    if X32_MISSING.contains(&name) {
        return None;
    }
    let nr = syscalls::x86_64::Sysno::from_str(name).ok()?.id() as u32;
    Some(X32_SYSCALL_BIT | nr)
}

/// One rule with argument conditions: the conditions are ANDed.
#[derive(Clone, Debug)]
struct ArgRule {
    ret: u32,
    conditions: Vec<SeccompCondition>,
}

/// Everything the profile says about one syscall number on one arch.
#[derive(Clone, Debug)]
struct SyscallRules<'a> {
    name: &'a str,
    unconditional: Option<u32>,
    with_args: Vec<ArgRule>,
}

/// Per-arch table: syscall number → rules, one slot per number. Syscall
/// numbers are below 1024; x32's carry the x32 bit, which the index leaves
/// out. (A map keyed by number spent most of `compile` shifting its nodes.)
#[derive(Clone, Debug)]
struct Table<'a> {
    bit: u32,
    slots: Vec<Option<SyscallRules<'a>>>,
}

impl<'a> Table<'a> {
    fn new(bit: u32) -> Self {
        Table {
            bit,
            slots: Vec::new(),
        }
    }

    /// The rules of `nr`, made empty on first use.
    fn entry(&mut self, nr: u32, name: &'a str) -> &mut SyscallRules<'a> {
        let i = (nr & !self.bit) as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        self.slots[i].get_or_insert_with(|| SyscallRules {
            name,
            unconditional: None,
            with_args: Vec::new(),
        })
    }

    /// The numbers with rules, in ascending order.
    fn iter(&self) -> impl Iterator<Item = (u32, &SyscallRules<'a>)> {
        let bit = self.bit;
        self.slots
            .iter()
            .enumerate()
            .filter_map(move |(i, slot)| Some((i as u32 | bit, slot.as_ref()?)))
    }
}

/// One arch's part of the program.
#[derive(Clone, Debug)]
struct Section<'a> {
    arch: SectionArch,
    rules: Table<'a>,
    /// The highest syscall number the profile names; numbers above it get
    /// `ENOSYS` (runc's stub), `None` when the stub is off.
    last_nr: Option<u32>,
}

impl<'a> Section<'a> {
    fn new(arch: SectionArch) -> Self {
        let bit = match arch {
            SectionArch::X32 => X32_SYSCALL_BIT,
            SectionArch::X86_64 | SectionArch::I386 => 0,
        };
        Section {
            arch,
            rules: Table::new(bit),
            last_nr: None,
        }
    }

    /// Adds one name of an OCI entry; false if this arch does not know it.
    fn add(
        &mut self,
        name: &'a str,
        entry: &LinuxSyscall,
        ret: u32,
        skip: bool,
    ) -> Result<bool, SeccompError> {
        // libseccomp compares 64 bits on x86_64 and 32 bits on i386 and x32.
        let resolved = match self.arch {
            SectionArch::X86_64 => syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| (s.id() as u32, SeccompCmpArgLen::Qword)),
            SectionArch::I386 => syscalls::x86::Sysno::from_str(name)
                .ok()
                .map(|s| (s.id() as u32, SeccompCmpArgLen::Dword)),
            SectionArch::X32 => x32_nr(name).map(|nr| (nr, SeccompCmpArgLen::Dword)),
        };
        let Some((nr, len)) = resolved else {
            return Ok(false);
        };
        self.last_nr = self.last_nr.max(Some(nr));
        if !skip {
            let rules = arg_rules(name, entry, len)?;
            add_rule(&mut self.rules, nr, name, ret, rules)?;
        }
        Ok(true)
    }
}

/// runc's rule: unless the default is permissive (or already ENOSYS),
/// syscalls newer than every syscall the profile names return `ENOSYS`, so
/// that libcs fall back (e.g. clone3 → clone) instead of failing on EPERM.
fn wants_enosys_stub(default_ret: u32) -> bool {
    let action = default_ret & libc::SECCOMP_RET_ACTION_FULL;
    let permissive = [
        libc::SECCOMP_RET_ALLOW,
        libc::SECCOMP_RET_LOG,
        libc::SECCOMP_RET_TRACE,
    ]
    .contains(&action);
    !permissive && default_ret != libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
}

/// Kernel precedence of a return value: lower is more restrictive
/// (the kernel compares `ret & SECCOMP_RET_ACTION_FULL` as a signed number).
fn precedence(ret: u32) -> i32 {
    (ret & libc::SECCOMP_RET_ACTION_FULL) as i32
}

/// The `SECCOMP_RET_*` value of an OCI action.
fn action_ret(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: &str,
) -> Result<u32, SeccompError> {
    let data = |max: u32| -> Result<u32, SeccompError> {
        let value = errno_ret.unwrap_or(libc::EPERM as u32);
        if value > max {
            return Err(SeccompError::ErrnoOutOfRange {
                what: what.to_string(),
                value,
                max,
            });
        }
        Ok(value)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            libc::SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        // The kernel caps errno at MAX_ERRNO (4095).
        LinuxSeccompAction::ScmpActErrno => libc::SECCOMP_RET_ERRNO | data(4095)?,
        LinuxSeccompAction::ScmpActTrace => libc::SECCOMP_RET_TRACE | data(0xffff)?,
        LinuxSeccompAction::ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
        LinuxSeccompAction::ScmpActLog => libc::SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
    })
}

/// Compiles an OCI seccomp profile. Pure: makes no syscalls.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program, SeccompError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(SeccompError::UnsupportedHost);
    }
    let default_action = seccomp.default_action();
    if default_action == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::DefaultActionNotAllowed {
            action: default_action.to_string(),
        });
    }
    let default_ret = action_ret(
        default_action,
        seccomp.default_errno_ret(),
        "defaultErrnoRet",
    )?;

    let arches = seccomp.architectures().as_deref().unwrap_or_default();
    let with_i386 = arches.contains(&Arch::ScmpArchX86);

    let mut sections = vec![Section::new(SectionArch::X86_64)];
    if with_i386 {
        sections.push(Section::new(SectionArch::I386));
    }
    if arches.contains(&Arch::ScmpArchX32) {
        sections.push(Section::new(SectionArch::X32));
    }
    let mut skipped = Vec::new();
    let mut notify = false;
    for entry in seccomp.syscalls().as_deref().unwrap_or_default() {
        let ret = action_ret(entry.action(), entry.errno_ret(), "a syscall rule")?;
        // libseccomp refuses these, runc skips them; they still count for
        // the ENOSYS stub below.
        let skip = ret == default_ret;
        if ret == libc::SECCOMP_RET_USER_NOTIF {
            notify = true;
            if let Some(name) = entry
                .names()
                .iter()
                .find(|n| NOTIFY_FORBIDDEN.contains(&n.as_str()))
            {
                return Err(SeccompError::NotifyForbidden {
                    syscall: name.clone(),
                });
            }
        }
        for name in entry.names() {
            let mut known = false;
            for section in &mut sections {
                known |= section.add(name, entry, ret, skip)?;
            }
            if !known && !skipped.contains(name) {
                skipped.push(name.clone());
            }
        }
    }
    if notify && seccomp.listener_path().is_none() {
        return Err(SeccompError::NotifyWithoutListener);
    }
    if !wants_enosys_stub(default_ret) {
        for section in &mut sections {
            section.last_nr = None;
        }
    }

    let filter = emit::program(&sections, default_ret)?;
    if filter.len() > MAX_INSNS {
        return Err(SeccompError::TooLarge {
            insns: filter.len(),
        });
    }
    Ok(Program {
        filter,
        flags: filter_flags(seccomp.flags().as_deref().unwrap_or_default(), notify),
        listener_path: seccomp.listener_path().clone(),
        listener_metadata: seccomp.listener_metadata().clone(),
        skipped,
    })
}

/// The `seccomp(2)` flag bits for the OCI flags.
fn filter_flags(flags: &[LinuxSeccompFilterFlag], notify: bool) -> u64 {
    let mut bits = 0;
    for flag in flags {
        bits |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        };
    }
    if notify {
        bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if bits & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            // TSYNC reports failure as a thread id, which collides with the
            // listener fd; the kernel insists on TSYNC_ESRCH here.
            bits |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    } else {
        bits &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    bits
}

/// The argument rules of one OCI entry (empty: unconditional).
fn arg_rules(
    name: &str,
    entry: &LinuxSyscall,
    len: SeccompCmpArgLen,
) -> Result<Vec<Vec<SeccompCondition>>, SeccompError> {
    let args = entry.args().as_deref().unwrap_or_default();
    let mut conditions = Vec::with_capacity(args.len());
    for arg in args {
        let index = u8::try_from(arg.index())
            .ok()
            .filter(|i| *i <= 5)
            .ok_or_else(|| SeccompError::ArgIndex {
                syscall: name.to_string(),
                index: arg.index(),
            })?;
        let (op, value) = match arg.op() {
            LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
            LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
            LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
            LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
            LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
            LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
            // OCI: (arg & value) == valueTwo; an absent valueTwo is 0, as
            // runc and libseccomp read it (runtime-tools' default profile
            // relies on that for clone).
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                SeccompCmpOp::MaskedEq(arg.value()),
                arg.value_two().unwrap_or(0),
            ),
        };
        let condition = SeccompCondition::new(index, len.clone(), op, value).map_err(|source| {
            SeccompError::Rule {
                syscall: name.to_string(),
                source,
            }
        })?;
        conditions.push((index, condition));
    }
    let mut indexes: Vec<u8> = conditions.iter().map(|(i, _)| *i).collect();
    indexes.sort_unstable();
    let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
    Ok(if conditions.is_empty() {
        Vec::new()
    } else if repeated {
        // runc: a repeated index means OR, so each condition is its own rule.
        conditions.into_iter().map(|(_, c)| vec![c]).collect()
    } else {
        vec![conditions.into_iter().map(|(_, c)| c).collect()]
    })
}

/// Adds one OCI entry's rules for one syscall number to a table, with
/// libseccomp's rules (checked against libseccomp 2.5.4): the first
/// unconditional rule is final (it replaces earlier argument rules, later
/// rules are ignored); the same conditions with another action is an error.
fn add_rule<'a>(
    table: &mut Table<'a>,
    nr: u32,
    name: &'a str,
    ret: u32,
    rules: Vec<Vec<SeccompCondition>>,
) -> Result<(), SeccompError> {
    let slot = table.entry(nr, name);
    if slot.unconditional.is_some() {
        return Ok(());
    }
    if rules.is_empty() {
        slot.unconditional = Some(ret);
        slot.with_args.clear();
        return Ok(());
    }
    for conditions in rules {
        match slot.with_args.iter().find(|r| r.conditions == conditions) {
            Some(same) if same.ret != ret => {
                return Err(SeccompError::ConflictingRules {
                    syscall: name.to_string(),
                    first: same.ret,
                    second: ret,
                })
            }
            Some(_) => {}
            None => slot.with_args.push(ArgRule { ret, conditions }),
        }
    }
    Ok(())
}
