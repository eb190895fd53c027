//! Unit tests. Filters are only ever installed in forked children, so the
//! test process itself stays unfiltered.

mod bpf;
mod kernel;
mod libseccomp;

use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::LinuxSeccomp;
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
fn rule_with_default_action_is_skipped() {
    let compiled = |syscalls: Value| {
        compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": syscalls}),
        ))
        .unwrap()
    };
    let none = compiled(json!([]));
    let same = compiled(json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]));
    let other =
        compiled(json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}]));
    let getppid = |p: &Program| bpf::run_bpf(p.instructions(), bpf::AUDIT_ARCH_X86_64, 110, [0; 6]);
    assert_eq!(getppid(&none), libc::SECCOMP_RET_ERRNO | 1);
    assert_eq!(getppid(&same), libc::SECCOMP_RET_ERRNO | 1);
    assert_eq!(getppid(&other), libc::SECCOMP_RET_ERRNO | 2);
    // The skipped rule adds no code of its own (only the ENOSYS stub above 110).
    assert!(same.instruction_count() < other.instruction_count());
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
fn too_many_instructions_is_an_error() {
    let rules: Vec<Value> = (0..800u64)
        .map(|v| {
            json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let err = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}),
    ))
    .unwrap_err();
    assert!(
        matches!(err, SeccompError::TooLarge { insns } if insns > MAX_INSNS),
        "{err}"
    );
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
    // MASKED_EQ without valueTwo compares with 0, as runc and libseccomp do.
    compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MASKED_EQ"}]}]})))
    .unwrap();
}
