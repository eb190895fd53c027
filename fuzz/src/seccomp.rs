//! The seccomp compiler's targets and the invariants a compiled program
//! must keep.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::OnceLock;

use arbitrary::{Result as ArbResult, Unstructured};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction};
use rtctr::seccomp::{compile, Program, MAX_INSNS};
use serde_json::{json, Value};

use crate::bpf::{self, AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use crate::{message, Outcome};

/// The `seccomp` target: a `linux.seccomp` object as JSON.
pub fn seccomp(data: &[u8]) {
    check_seccomp_json(data);
}

/// The `seccomp` target, with its outcome.
pub fn check_seccomp_json(data: &[u8]) -> Outcome {
    match serde_json::from_slice::<LinuxSeccomp>(data) {
        Ok(profile) => match check_compile(&profile) {
            Ok(()) => Outcome::Accepted,
            Err(msg) => Outcome::Refused(msg),
        },
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

/// The `seccomp_gen` target: a profile built from the bytes.
pub fn seccomp_gen(data: &[u8]) {
    let Ok(value) = generate(&mut Unstructured::new(data)) else {
        return;
    };
    if std::env::var_os("RTCTR_FUZZ_DEBUG").is_some() {
        eprintln!("{value:#}");
    }
    let profile: LinuxSeccomp =
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value:#}"));
    let _ = check_compile(&profile);
}

/// Compiles `profile`; checks the program if it compiled, the message if
/// not (returned).
pub fn check_compile(profile: &LinuxSeccomp) -> Result<(), String> {
    match compile(profile) {
        Ok(program) => {
            check_program(profile, &program);
            Ok(())
        }
        Err(e) => Err(message(&e)),
    }
}

/// The `SECCOMP_RET_*` value of an action, as the module doc of
/// `rtctr::seccomp` specifies it (independently of its code).
fn ret_of(action: LinuxSeccompAction, errno_ret: Option<u32>) -> u32 {
    let data = errno_ret.unwrap_or(libc::EPERM as u32);
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            libc::SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => libc::SECCOMP_RET_ERRNO | data,
        LinuxSeccompAction::ScmpActTrace => libc::SECCOMP_RET_TRACE | data,
        LinuxSeccompAction::ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
        LinuxSeccompAction::ScmpActLog => libc::SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
    }
}

/// What the profile says for one architecture's syscall numbers.
#[derive(Default)]
struct Expected {
    /// The highest number the profile names (the ENOSYS stub's bound).
    last: Option<u32>,
    /// The first rule without arguments that is not the default action.
    unconditional: BTreeMap<u32, u32>,
    /// Numbers with argument rules: the actions those rules may return,
    /// and argument vectors that make their conditions true.
    with_args: BTreeMap<u32, (BTreeSet<u32>, Vec<[u64; 6]>)>,
}

/// A syscall's number on one architecture.
type NrOf = fn(&str) -> Option<u32>;

fn x86_64_nr(name: &str) -> Option<u32> {
    let sysno = syscalls::x86_64::Sysno::from_str(name).ok()?;
    Some(sysno.id() as u32)
}

fn i386_nr(name: &str) -> Option<u32> {
    let sysno = syscalls::x86::Sysno::from_str(name).ok()?;
    Some(sysno.id() as u32)
}

fn expected(profile: &LinuxSeccomp, default: u32, nr_of: NrOf) -> Expected {
    let mut e = Expected::default();
    for entry in profile.syscalls().as_deref().unwrap_or_default() {
        let ret = ret_of(entry.action(), entry.errno_ret());
        let args = entry.args().as_deref().unwrap_or_default();
        for nr in entry.names().iter().filter_map(|n| nr_of(n)) {
            e.last = e.last.max(Some(nr));
            if ret == default {
                continue; // skipped, as libseccomp refuses and runc skips them
            }
            if args.is_empty() {
                e.unconditional.entry(nr).or_insert(ret);
            } else {
                let (rets, vectors) = e.with_args.entry(nr).or_default();
                rets.insert(ret);
                let mut v = [0u64; 6];
                for a in args {
                    if let Some(slot) = v.get_mut(a.index()) {
                        *slot = a.value_two().unwrap_or(a.value());
                    }
                }
                vectors.push(v);
            }
        }
    }
    e
}

/// The invariants of a program `compile` accepted.
fn check_program(profile: &LinuxSeccomp, program: &Program) {
    let insns = program.instructions();
    assert_eq!(insns.len(), program.instruction_count());
    assert!(
        program.instruction_count() <= MAX_INSNS,
        "{} instructions, more than MAX_INSNS",
        program.instruction_count()
    );
    if let Err(e) = bpf::verify(insns) {
        panic!("the kernel would refuse this program: {e}");
    }
    let entries = profile.syscalls().as_deref().unwrap_or_default();
    let notify = entries
        .iter()
        .any(|e| e.action() == LinuxSeccompAction::ScmpActNotify);
    assert_eq!(program.wants_listener(), notify, "NEW_LISTENER flag");
    if notify {
        assert!(program.listener_path().is_some());
    }

    let default = ret_of(profile.default_action(), profile.default_errno_ret());
    let permissive = matches!(
        profile.default_action(),
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActTrace
    );
    let stub = !permissive && default != libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let arches = profile.architectures().as_deref().unwrap_or_default();
    let mut sections: Vec<(u32, NrOf)> = vec![(AUDIT_ARCH_X86_64, x86_64_nr)];
    if arches.contains(&Arch::ScmpArchX86) {
        sections.push((AUDIT_ARCH_I386, i386_nr));
    }
    let run = |arch, nr, args| bpf::run(insns, arch, nr, args);
    for (arch, nr_of) in sections {
        let e = expected(profile, default, nr_of);
        let top = e.last.unwrap_or(0).saturating_add(3).min(1100);
        for nr in (0..=top).chain([1500, X32_SYSCALL_BIT - 1]) {
            let got = run(arch, nr, [0; 6]);
            let want = if stub && e.last.is_some_and(|last| nr > last) {
                enosys
            } else if let Some(ret) = e.unconditional.get(&nr) {
                *ret
            } else if let Some((rets, vectors)) = e.with_args.get(&nr) {
                for args in vectors.iter().chain(&[[u64::MAX; 6]]) {
                    let got = run(arch, nr, *args);
                    assert!(
                        got == default || rets.contains(&got),
                        "arch {arch:#x} nr {nr} args {args:x?}: {got:#x}, not the default \
                         {default:#x} nor one of the rules' {rets:x?}"
                    );
                }
                continue;
            } else {
                default
            };
            assert_eq!(
                got, want,
                "arch {arch:#x} nr {nr}: {got:#x}, want {want:#x}"
            );
        }
    }
    if arches.contains(&Arch::ScmpArchX32) {
        // x32 numbers are not modelled here: only answers the profile has.
        let mut known: BTreeSet<u32> = entries
            .iter()
            .map(|e| ret_of(e.action(), e.errno_ret()))
            .collect();
        known.extend([default, enosys]);
        for nr in 0..600 {
            let got = run(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | nr, [0; 6]);
            assert!(known.contains(&got), "x32 nr {nr}: {got:#x}");
        }
    }
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    assert_eq!(run(AUDIT_ARCH_AARCH64, 0, [0; 6]), kill, "a foreign arch");
    if !arches.contains(&Arch::ScmpArchX86) {
        assert_eq!(run(AUDIT_ARCH_I386, 1, [0; 6]), kill, "i386 not listed");
    }
    if !arches.contains(&Arch::ScmpArchX32) {
        assert_eq!(
            run(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, [0; 6]),
            kill,
            "x32 not listed"
        );
    }
}

/// Every name the generator picks from: both syscall tables, names that
/// the compiler treats specially, and some that no table has.
fn names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut v: Vec<&'static str> = syscalls::x86_64::Sysno::iter().map(|s| s.name()).collect();
        v.extend(syscalls::x86::Sysno::iter().map(|s| s.name()));
        v.extend([
            "write",
            "sendmsg",
            "",
            "no_such_syscall",
            "SYS_read",
            "read\0",
        ]);
        v.sort_unstable();
        v.dedup();
        v
    })
}

const ACTIONS: [&str; 9] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

const ARCHES: [&str; 4] = [
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
];

const FLAGS: [&str; 4] = [
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// An action, NOTIFY rarely (it needs a listener path and is refused for
/// some syscalls and as the default).
fn action(u: &mut Unstructured) -> ArbResult<&'static str> {
    if u.ratio(1, 16)? {
        return Ok("SCMP_ACT_NOTIFY");
    }
    Ok(ACTIONS[u.choose_index(ACTIONS.len() - 1)?])
}

/// An errno value: mostly none or a plausible one, sometimes anything.
fn errno_ret(u: &mut Unstructured) -> ArbResult<Option<u32>> {
    Ok(match u.int_in_range(0u8..=9)? {
        0..=4 => None,
        5 => Some(*u.choose(&[0u32, 1, 13, 38, 4095, 4096, 65535, 65536, u32::MAX])?),
        _ => Some(u.int_in_range(0..=200)?),
    })
}

/// A 64-bit argument value: boundaries, or anything.
fn arg_value(u: &mut Unstructured) -> ArbResult<u64> {
    Ok(if u.ratio(1, 2)? {
        *u.choose(&[
            0u64,
            1,
            8,
            0xff,
            0x2_0000,
            0x7fff_ffff,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ])?
    } else {
        u.arbitrary()?
    })
}

/// A whole profile as OCI JSON.
pub fn generate(u: &mut Unstructured) -> ArbResult<Value> {
    let default = if u.ratio(1, 32)? {
        "SCMP_ACT_NOTIFY"
    } else {
        action(u)?
    };
    let mut p = json!({ "defaultAction": default });
    if let Some(e) = errno_ret(u)? {
        p["defaultErrnoRet"] = json!(e);
    }
    let mut arches = Vec::new();
    for a in ARCHES {
        if u.ratio(1, 3)? {
            arches.push(a);
        }
    }
    if !arches.is_empty() {
        p["architectures"] = json!(arches);
    }
    let mut flags = Vec::new();
    for f in FLAGS {
        if u.ratio(1, 4)? {
            flags.push(f);
        }
    }
    if !flags.is_empty() {
        p["flags"] = json!(flags);
    }
    if u.ratio(3, 4)? {
        p["listenerPath"] = json!("/run/agent.sock");
    }
    let names = names();
    let mut syscalls = Vec::new();
    let count = u.int_in_range(0..=400)?;
    for _ in 0..count {
        if u.is_empty() {
            break;
        }
        let n = u.int_in_range(1..=8)?;
        let entry_names = (0..n)
            .map(|_| u.choose(names).copied())
            .collect::<ArbResult<Vec<_>>>()?;
        let mut entry = json!({ "names": entry_names, "action": action(u)? });
        if let Some(e) = errno_ret(u)? {
            entry["errnoRet"] = json!(e);
        }
        let nargs = *u.choose(&[0usize, 0, 0, 1, 1, 2, 3, 6])?;
        let mut args = Vec::new();
        for _ in 0..nargs {
            let index = if u.ratio(1, 40)? {
                u.arbitrary::<u8>()? as usize
            } else {
                u.int_in_range(0..=5)?
            };
            let op = *u.choose(&OPS)?;
            let mut arg = json!({"index": index, "value": arg_value(u)?, "op": op});
            if u.ratio(1, 2)? {
                arg["valueTwo"] = json!(arg_value(u)?);
            }
            args.push(arg);
        }
        if !args.is_empty() {
            entry["args"] = json!(args);
        }
        syscalls.push(entry);
    }
    p["syscalls"] = json!(syscalls);
    Ok(p)
}
