//! Unit tests. Filters are only ever installed in forked children, so the
//! test process itself stays unfiltered.

use std::collections::BTreeMap;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use nix::sys::signal::Signal;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::{LinuxSeccomp, State};
use serde_json::{json, Value};

use super::*;

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// Docker's default capability set, used to resolve the profile's `includes`/`excludes`.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn profile(value: Value) -> LinuxSeccomp {
    serde_json::from_value(value).expect("test profile parses")
}

/// Turns containers-common's `seccomp.json` into the OCI form, the way
/// podman does before writing config.json: amd64, docker's default caps.
pub(super) fn podman_profile() -> Option<LinuxSeccomp> {
    let Ok(raw) = std::fs::read_to_string(PODMAN_PROFILE) else {
        eprintln!("SKIPPED: {PODMAN_PROFILE} is missing (install podman)");
        return None;
    };
    let v: Value = serde_json::from_str(&raw).expect("podman profile is JSON");
    let has = |list: &Value, wanted: &dyn Fn(&str) -> bool| -> Option<bool> {
        list.as_array()
            .map(|l| l.iter().any(|x| wanted(x.as_str().unwrap_or_default())))
    };
    let mut syscalls = Vec::new();
    for s in v["syscalls"].as_array().expect("syscalls array") {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        if has(&inc["arches"], &|a| a == "amd64") == Some(false)
            || has(&exc["arches"], &|a| a == "amd64") == Some(true)
            || has(&exc["caps"], &|c| DEFAULT_CAPS.contains(&c)) == Some(true)
        {
            continue;
        }
        if let Some(caps) = inc["caps"].as_array() {
            if !caps
                .iter()
                .all(|c| DEFAULT_CAPS.contains(&c.as_str().unwrap_or_default()))
            {
                continue;
            }
        }
        let mut entry = json!({"names": s["names"], "action": s["action"]});
        for key in ["errnoRet", "args"] {
            if !s[key].is_null() {
                entry[key] = s[key].clone();
            }
        }
        syscalls.push(entry);
    }
    Some(profile(json!({
        "defaultAction": v["defaultAction"],
        "defaultErrnoRet": v["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    })))
}

/// Runs `f` in a forked child and returns how the child ended. The child
/// exits with `f`'s return value (101 if it panicked).
fn in_child(f: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: the child runs `f` and leaves with `_exit`, never returning
    // into the test harness; the parent only waits for it.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

/// Installs `program` with no_new_privs; returns false (after printing) on failure.
fn install(program: &Program) -> Option<Option<OwnedFd>> {
    nix::sys::prctl::set_no_new_privs().ok()?;
    match program.install() {
        Ok(fd) => Some(fd),
        Err(e) => {
            eprintln!("install failed: {e:?}");
            None
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `personality(persona)` as a raw syscall: its return value or -errno.
fn personality(persona: u64) -> i64 {
    // SAFETY: personality takes an integer; with 0xffffffff it only queries.
    let rc = unsafe { libc::syscall(libc::SYS_personality, persona) };
    if rc < 0 {
        -i64::from(errno())
    } else {
        rc
    }
}

/// getppid through syscall(2): glibc's getppid() does not set errno.
fn raw_getppid() -> i64 {
    // SAFETY: getppid has no arguments.
    unsafe { libc::syscall(libc::SYS_getppid) }
}

fn exited(status: WaitStatus, code: i32) -> bool {
    matches!(status, WaitStatus::Exited(_, c) if c == code)
}

#[test]
fn podman_profile_compiles() {
    let Some(p) = podman_profile() else { return };
    let start = Instant::now();
    let program = compile(&p).expect("podman profile compiles");
    let took = start.elapsed();
    eprintln!(
        "podman profile: {} insns, compiled in {took:?}, skipped {} names",
        program.instruction_count(),
        program.skipped_syscalls().len()
    );
    assert!(program.instruction_count() <= MAX_INSNS);
    assert!(!program.wants_listener());
    // i386-only names such as `socketcall` resolve on the i386 table.
    assert!(!program
        .skipped_syscalls()
        .contains(&"socketcall".to_string()));
}

#[test]
fn podman_profile_in_child() {
    let Some(p) = podman_profile() else { return };
    let program = compile(&p).unwrap();
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        // Allowed.
        // SAFETY: getppid has no arguments and cannot fail.
        if unsafe { libc::getppid() } <= 0 {
            return 11;
        }
        // personality(0xffffffff) (query) is allowed by an argument rule ...
        if personality(0xffff_ffff) < 0 {
            return 12;
        }
        // ... personality(1) is not: default errno 38.
        if personality(1) != -i64::from(libc::ENOSYS) {
            return 13;
        }
        // acct: ERRNO(EPERM) rule (CAP_SYS_PACCT is not a default cap).
        // SAFETY: acct(NULL) only turns accounting off (and is denied here).
        let rc = unsafe { libc::syscall(libc::SYS_acct, std::ptr::null::<libc::c_char>()) };
        if rc != -1 || errno() != libc::EPERM {
            return 14;
        }
        // A number no table knows gets the default action.
        // SAFETY: syscall 1000 does not exist; the filter answers.
        let rc = unsafe { libc::syscall(1000) };
        if rc != -1 || errno() != libc::ENOSYS {
            return 15;
        }
        0
    });
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn errno_rule_and_allowed_syscall() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]
    })))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target =
        std::ffi::CString::new(dir.path().join("d").into_os_string().into_encoded_bytes()).unwrap();
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        // SAFETY: `target` is a valid NUL-terminated path.
        let rc = unsafe { libc::mkdir(target.as_ptr(), 0o755) };
        if rc != -1 || errno() != libc::EPERM {
            return 11;
        }
        // SAFETY: as above.
        let rc = unsafe { libc::rmdir(target.as_ptr()) };
        if rc != -1 || errno() != 18 {
            return 12;
        }
        // SAFETY: getpid cannot fail.
        if unsafe { libc::getpid() } <= 0 {
            return 13;
        }
        0
    });
    assert!(exited(status, 0), "{status:?}");
    assert!(!dir.path().join("d").exists());
}

#[test]
fn default_errno_ret_is_used() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [{"names": ["exit", "exit_group", "getpid", "personality", "kill",
                                "rt_sigreturn", "rt_sigprocmask", "mmap", "munmap", "brk",
                                "write", "futex", "sigaltstack", "madvise", "getrandom"],
                      "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        let rc = raw_getppid();
        if rc != -1 || errno() != libc::ENOSYS {
            return 11;
        }
        0
    });
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn argument_rules() {
    // personality: allowed for 0 and 0xffffffff (two rules, ORed), denied otherwise.
    // mask test on `kill`-free syscall: getpriority(which & 0xf0 == 0x10) → EACCES.
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"},
                      {"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_NE"}]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 240, "valueTwo": 16, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["setpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 2, "value": 5, "op": "SCMP_CMP_GT"}]}
        ]
    })))
    .unwrap();
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        // Repeated index → OR: NE 0 OR NE 0xffffffff matches every value.
        if personality(0xffff_ffff) != -1 || personality(0) != -1 {
            return 11;
        }
        let getprio = |which: u64| {
            // SAFETY: getpriority only reads; invalid `which` gives EINVAL.
            let rc = unsafe { libc::syscall(libc::SYS_getpriority, which, 0) };
            if rc < 0 {
                errno()
            } else {
                0
            }
        };
        if getprio(0x13) != libc::EACCES || getprio(0x113) != libc::EACCES {
            return 12;
        }
        if getprio(0) != 0 || getprio(0x23) != libc::EINVAL {
            return 13;
        }
        let setprio = |which: u64, nice: u64| {
            // SAFETY: lowering our own priority (raising nice) is harmless in the child.
            let rc = unsafe { libc::syscall(libc::SYS_setpriority, which, 0, nice) };
            if rc < 0 {
                errno()
            } else {
                0
            }
        };
        // AND: which == 0 and nice > 5.
        if setprio(0, 6) != 7 || setprio(0, 5) != 0 || setprio(1, 6) == 7 {
            return 14;
        }
        0
    });
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn kill_process_and_trap_raise_sigsys() {
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_KILL"] {
        let program = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": action}]
        })))
        .unwrap();
        let status = in_child(|| {
            if install(&program).is_none() {
                return 10;
            }
            // SAFETY: getppid has no arguments.
            unsafe { libc::getppid() };
            0
        });
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "{action}: {status:?}"
        );
    }
}

#[test]
fn log_and_trace_actions() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"},
                     {"names": ["getuid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]
    })))
    .unwrap();
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        // LOG: the syscall runs (and is logged).
        if raw_getppid() <= 0 {
            return 11;
        }
        // TRACE without a tracer: ENOSYS.
        // SAFETY: getuid has no arguments.
        let rc = unsafe { libc::syscall(libc::SYS_getuid) };
        i32::from(rc != -1 || errno() != libc::ENOSYS)
    });
    assert!(exited(status, 0), "{status:?}");
    let trace = libc::SECCOMP_RET_TRACE | 7;
    assert!(program
        .instructions()
        .iter()
        .any(|i| i.code == 0x06 && i.k == trace));
}

#[test]
fn unknown_names_are_skipped() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall", "getppid"], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap();
    assert_eq!(program.skipped_syscalls(), ["no_such_syscall"]);
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        let rc = raw_getppid();
        i32::from(rc != -1 || errno() != libc::EPERM)
    });
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn rule_with_default_action_is_skipped() {
    let has_jeq =
        |p: &Program, nr: u32| p.instructions().iter().any(|i| i.code == 0x15 && i.k == nr);
    let same = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })))
    .unwrap();
    assert!(!has_jeq(&same, 110));
    let other = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}]
    })))
    .unwrap();
    assert!(has_jeq(&other, 110));
    assert_eq!(other.instruction_count(), same.instruction_count() + 2);
}

#[test]
fn enosys_for_syscalls_newer_than_the_profile() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["exit_group", "exit", "write", "getppid", "rt_sigreturn",
                                "munmap", "brk", "mmap", "rt_sigprocmask", "futex"],
                      "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    let run = |arch, nr| run_bpf(program.instructions(), arch, nr, [0; 6]);
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    // x86_64: the highest named is exit_group (231).
    assert_eq!(run(AUDIT_ARCH_X86_64, 231), libc::SECCOMP_RET_ALLOW);
    assert_eq!(run(AUDIT_ARCH_X86_64, 230), eperm);
    assert_eq!(run(AUDIT_ARCH_X86_64, 232), enosys);
    assert_eq!(run(AUDIT_ARCH_X86_64, 435), enosys); // clone3
                                                     // i386: the highest named is exit_group (252).
    assert_eq!(run(AUDIT_ARCH_I386, 252), libc::SECCOMP_RET_ALLOW);
    assert_eq!(run(AUDIT_ARCH_I386, 253), enosys);
    // No stub when the default already is ENOSYS, or permissive.
    for default in [
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}),
        json!({"defaultAction": "SCMP_ACT_ALLOW"}),
        json!({"defaultAction": "SCMP_ACT_LOG"}),
    ] {
        let mut v = default;
        v["syscalls"] = json!([{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]);
        let p = compile(&profile(v)).unwrap();
        assert!(!p.instructions().iter().any(|i| i.code == 0x25), "{p:?}");
    }
    // In the kernel.
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        // SAFETY: syscall 1000 does not exist; the filter answers.
        let rc = unsafe { libc::syscall(1000) };
        i32::from(rc != -1 || errno() != libc::ENOSYS)
    });
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn rules_merge_like_libseccomp() {
    let merged = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            // first unconditional wins, later ones are ignored
            {"names": ["getppid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getppid"], "action": "SCMP_ACT_TRAP"},
            // an unconditional rule replaces earlier argument rules
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2,
             "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            // argument rules after an unconditional one are ignored
            {"names": ["getuid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getuid"], "action": "SCMP_ACT_TRAP",
             "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"}]}
        ]
    })))
    .unwrap();
    let plain = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getppid", "getpid", "getuid"], "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    assert_eq!(merged, plain);
}

#[test]
fn profile_errors() {
    let err = |v: Value| compile(&profile(v)).unwrap_err().to_string();
    assert!(err(json!({"defaultAction": "SCMP_ACT_NOTIFY"})).contains("defaultAction"));
    assert!(err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}))
    .contains("listenerPath"));
    assert!(err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
        "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]})
    )
    .contains("write"));
    assert!(err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}))
    .contains("index 6"));
    assert!(err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]},
                     {"names": ["mkdir"], "action": "SCMP_ACT_TRAP",
                      "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}]}))
    .contains("mkdir"));
    assert!(
        err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000})).contains("5000")
    );
    assert!(err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MASKED_EQ"}]}]}))
    .contains("valueTwo"));
}

#[test]
fn flags_map_to_kernel_bits() {
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    })))
    .unwrap();
    assert_eq!(
        p.flags(),
        libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            | libc::SECCOMP_FILTER_FLAG_TSYNC
    );
    let status = in_child(|| i32::from(install(&p).is_none()));
    assert!(exited(status, 0), "kernel accepts the flags: {status:?}");

    let n = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    assert_eq!(
        n.flags(),
        libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
            | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
            | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    );
    let status = in_child(|| i32::from(!matches!(install(&n), Some(Some(_)))));
    assert!(
        exited(status, 0),
        "kernel accepts the notify flags: {status:?}"
    );
}

/// i386 `getpid` (nr 20) through `int 0x80`: the return value or -errno.
fn i386_getpid() -> i64 {
    let mut rax: i64 = 20;
    // SAFETY: int 0x80 runs the i386 getpid, which takes no arguments and
    // only writes eax; the kernel saves every other register.
    unsafe {
        std::arch::asm!("int 0x80", inout("rax") rax, options(nostack));
    }
    // The i386 ABI returns a 32-bit value.
    i64::from(rax as i32)
}

#[test]
fn i386_calls_follow_the_architectures_list() {
    if !std::path::Path::new("/proc/sys/fs/binfmt_misc").exists() {
        // Only a hint; IA32 emulation is what matters, checked below.
    }
    let with = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })))
    .unwrap();
    let without = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })))
    .unwrap();
    // Without a filter, int 0x80 works only with CONFIG_IA32_EMULATION.
    let status = in_child(|| i32::from(i386_getpid() <= 0));
    if !exited(status, 0) {
        eprintln!("SKIPPED: no IA32 emulation on this kernel");
        return;
    }
    let status = in_child(|| {
        if install(&with).is_none() {
            return 10;
        }
        i32::from(i386_getpid() != -1)
    });
    assert!(exited(status, 0), "i386 rule applies: {status:?}");
    let status = in_child(|| {
        if install(&without).is_none() {
            return 10;
        }
        i386_getpid();
        0
    });
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "unlisted arch is killed: {status:?}"
    );
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const X32_BIT: u32 = 0x4000_0000;

/// A classic-BPF interpreter for the instructions rtctr and seccompiler emit,
/// run over a `struct seccomp_data`; returns the `SECCOMP_RET_*` value.
fn run_bpf(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            0 => nr,
            4 => arch,
            8 | 12 => 0,
            o => {
                let arg = args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
        }
    };
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let insn = &prog[pc];
        pc += 1;
        let cond = |taken: bool| usize::from(if taken { insn.jt } else { insn.jf });
        match insn.code {
            0x20 => a = word(insn.k),
            0x54 => a &= insn.k,
            0x05 => pc += insn.k as usize,
            0x15 => pc += cond(a == insn.k),
            0x25 => pc += cond(a > insn.k),
            0x35 => pc += cond(a >= insn.k),
            0x06 => return insn.k,
            code => panic!("unexpected BPF opcode {code:#x} at {}", pc - 1),
        }
    }
}

/// For every syscall number on every arch, the program returns what the
/// profile says (checked without the kernel, against a plain reading of the
/// profile: first unconditional rule per syscall, rules equal to the default skipped).
#[test]
fn podman_program_matches_profile_for_every_number() {
    let Some(p) = podman_profile() else { return };
    let program = compile(&p).unwrap();
    let default = action_ret(p.default_action(), p.default_errno_ret(), "").unwrap();
    let reference = |resolve: &dyn Fn(&str) -> Option<u32>| {
        let mut unconditional = BTreeMap::new();
        let mut with_args = std::collections::BTreeSet::new();
        for e in p.syscalls().as_deref().unwrap_or_default() {
            let ret = action_ret(e.action(), e.errno_ret(), "").unwrap();
            if ret == default {
                continue;
            }
            let has_args = !e.args().as_deref().unwrap_or_default().is_empty();
            for nr in e.names().iter().filter_map(|n| resolve(n)) {
                if has_args {
                    with_args.insert(nr);
                } else {
                    unconditional.entry(nr).or_insert(ret);
                }
            }
        }
        (unconditional, with_args)
    };
    let x86_64 = reference(&|n| {
        syscalls::x86_64::Sysno::from_str(n)
            .ok()
            .map(|s| s.id() as u32)
    });
    let i386 = reference(&|n| {
        syscalls::x86::Sysno::from_str(n)
            .ok()
            .map(|s| s.id() as u32)
    });
    let mut checked = 0;
    for (arch, (unconditional, with_args), bit) in [
        (AUDIT_ARCH_X86_64, &x86_64, 0),
        (AUDIT_ARCH_X86_64, &x86_64, X32_BIT),
        (AUDIT_ARCH_I386, &i386, 0),
    ] {
        for nr in 0..1024 {
            if with_args.contains(&nr) && !unconditional.contains_key(&nr) {
                continue;
            }
            let want = unconditional.get(&nr).copied().unwrap_or(default);
            let got = run_bpf(program.instructions(), arch, nr | bit, [0; 6]);
            assert_eq!(got, want, "arch {arch:#x} nr {:#x}", nr | bit);
            checked += 1;
        }
    }
    assert!(checked > 3000);
    let run = |arch, nr, arg0| run_bpf(program.instructions(), arch, nr, [arg0, 0, 0, 0, 0, 0]);
    assert_eq!(
        run(AUDIT_ARCH_AARCH64, 0, 0),
        libc::SECCOMP_RET_KILL_PROCESS
    );
    // personality's argument rules, 64-bit on x86_64 and 32-bit on i386.
    for persona in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(
            run(AUDIT_ARCH_X86_64, 135, persona),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(run(AUDIT_ARCH_I386, 136, persona), libc::SECCOMP_RET_ALLOW);
    }
    for persona in [1, 0x1_0000_0000, 0xffff_ffff_ffff_ffff] {
        assert_eq!(
            run(AUDIT_ARCH_X86_64, 135, persona),
            default,
            "{persona:#x}"
        );
    }
}

#[test]
fn argument_rules_are_tried_most_restrictive_first() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["getpriority"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpriority"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 2, "value": 3, "op": "SCMP_CMP_GE"}]},
            {"names": ["getpriority"], "action": "SCMP_ACT_TRAP",
             "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_LT"}]}
        ]
    })))
    .unwrap();
    let nr = libc::SYS_getpriority as u32;
    let run = |args| run_bpf(program.instructions(), AUDIT_ARCH_X86_64, nr, args);
    assert_eq!(run([1, 5, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
    assert_eq!(run([1, 5, 3, 0, 0, 0]), libc::SECCOMP_RET_LOG);
    assert_eq!(run([1, 1, 3, 0, 0, 0]), libc::SECCOMP_RET_TRAP);
    assert_eq!(run([0, 5, 0, 0, 0, 0]), libc::SECCOMP_RET_ERRNO | 1);
    // 64-bit compares: 2 < 1<<32 is false for LT 2.
    assert_eq!(run([0, 1 << 32, 0, 0, 0, 0]), libc::SECCOMP_RET_ERRNO | 1);
}

/// Receives one message with one fd; returns the payload and the fd.
fn recv_with_fd(sock: RawFd) -> (Vec<u8>, OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!(RawFd);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::empty()).expect("recvmsg");
    let mut fd = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: SCM_RIGHTS gave us a new fd that nothing else owns.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let len = msg.bytes;
    buf.truncate(len);
    (buf, fd.expect("an fd in SCM_RIGHTS"))
}

#[test]
fn notify_listener_is_sent_and_answered() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock_path,
        "listenerMetadata": "hello",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    assert!(program.wants_listener());
    let target =
        std::ffi::CString::new(dir.path().join("d").into_os_string().into_encoded_bytes()).unwrap();

    // SAFETY: the child only runs the closure below and leaves with _exit.
    let child = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let Some(Some(fd)) = install(&program) else {
                    return 10;
                };
                let mut state = State::default();
                state
                    .set_version("1.3.0".into())
                    .set_id("notify-test".into());
                if let Err(e) = send_listener(
                    program.listener_path().unwrap(),
                    fd.as_fd(),
                    nix::unistd::getpid().as_raw(),
                    &state,
                    program.listener_metadata(),
                ) {
                    eprintln!("{e:?}");
                    return 11;
                }
                drop(fd);
                // SAFETY: `target` is a valid NUL-terminated path.
                let rc = unsafe { libc::mkdir(target.as_ptr(), 0o755) };
                i32::from(rc != -1 || errno() != libc::EROFS)
            }))
            .unwrap_or(101);
            // SAFETY: ends the child without running the harness.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };

    let (stream, _) = listener.accept().unwrap();
    let (payload, notify_fd) = recv_with_fd(stream.as_raw_fd());
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(v["fds"], json!(["seccompFd"]));
    assert_eq!(v["metadata"], "hello");
    assert_eq!(v["pid"], child.as_raw());
    assert_eq!(v["state"]["id"], "notify-test");
    assert_eq!(v["ociVersion"], "1.3.0");

    // SAFETY: seccomp_notif is plain old data; all-zero is the required input.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV fills `req`, which has the size the ioctl number encodes.
    let rc = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req as *mut libc::seccomp_notif,
        )
    };
    assert_eq!(rc, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    assert_eq!(req.pid as i32, child.as_raw());
    assert!([libc::SYS_mkdir, libc::SYS_mkdirat].contains(&i64::from(req.data.nr)));
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: -libc::EROFS,
        flags: 0,
    };
    // SAFETY: SEND reads `resp`, which has the size the ioctl number encodes.
    let rc = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    };
    assert_eq!(rc, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    let status = waitpid(child, None).unwrap();
    assert!(exited(status, 0), "{status:?}");
}

/// Nanoseconds per call of `f`, best of 5 runs of `n` calls.
fn ns_per_call(n: u32, f: impl Fn()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}

/// `cargo test --release -p rtctr --lib seccomp::tests::bench -- --ignored --nocapture`
#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn bench_podman_profile() {
    let Some(p) = podman_profile() else { return };
    let runs = 1000u32;
    for _ in 0..20 {
        std::hint::black_box(compile(&p).unwrap());
    }
    let mut best = std::time::Duration::MAX;
    let t = Instant::now();
    for _ in 0..runs {
        let one = Instant::now();
        std::hint::black_box(compile(std::hint::black_box(&p)).unwrap());
        best = best.min(one.elapsed());
    }
    let mean = t.elapsed() / runs;
    let program = compile(&p).unwrap();
    println!(
        "compile: mean {mean:?}, best {best:?} ({runs} runs); {} BPF insns",
        program.instruction_count()
    );
    let calls = 1_000_000;
    // Alternate, so a noisy moment of the machine does not favour one side.
    for filtered in [false, true, false, true, false, true] {
        let program = program.clone();
        let status = in_child(move || {
            if filtered && install(&program).is_none() {
                return 10;
            }
            // Allowed without arguments: the kernel's action cache, no BPF.
            let getppid = ns_per_call(calls, || {
                raw_getppid();
            });
            // Allowed by an argument rule: BPF runs, finds the rule.
            let persona = ns_per_call(calls, || {
                personality(0xffff_ffff);
            });
            // Unknown number: BPF walks the whole x86_64 chain to the default.
            let unknown = ns_per_call(calls, || {
                // SAFETY: syscall 1000 does not exist; ENOSYS either way.
                unsafe { libc::syscall(1000) };
            });
            println!(
                "{}: getppid {getppid:.0} ns, personality(0xffffffff) {persona:.0} ns, syscall(1000) {unknown:.0} ns",
                if filtered { "with filter   " } else { "without filter" }
            );
            0
        });
        assert!(exited(status, 0), "{status:?}");
    }
}
