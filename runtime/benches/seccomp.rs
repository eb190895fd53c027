//! Seccomp cost with podman's default profile (containers-common's
//! /usr/share/containers/seccomp.json, docker's default capabilities):
//! compile time, and the per-syscall cost with and without the filter in
//! a forked child. Through the public API only (`compile`,
//! `Program::install`). Run with `make bench`, or
//! `cargo bench -p rtctr --bench seccomp` (as root or not: the filter is
//! installed with no_new_privs).

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::LinuxSeccomp;
use rtctr::seccomp::{compile, Program};
use serde_json::{json, Value};

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

/// Turns containers-common's `seccomp.json` into the OCI form, the way
/// podman does before writing config.json: amd64, docker's default caps.
/// (The same conversion as the seccomp unit tests' `podman_profile`.)
fn podman_profile() -> Option<LinuxSeccomp> {
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
    let profile = json!({
        "defaultAction": v["defaultAction"],
        "defaultErrnoRet": v["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    });
    Some(serde_json::from_value(profile).expect("podman profile parses"))
}

/// Runs `f` in a forked child and returns how the child ended. The child
/// exits with `f`'s return value (101 if it panicked).
fn in_child(f: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: the child runs `f` and leaves with `_exit`, never returning
    // into main; the parent only waits for it.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

/// Installs `program` with no_new_privs; false (after printing) on failure.
fn install(program: &Program) -> bool {
    if nix::sys::prctl::set_no_new_privs().is_err() {
        return false;
    }
    match program.install() {
        Ok(_) => true,
        Err(e) => {
            eprintln!("install failed: {e:?}");
            false
        }
    }
}

/// `personality(persona)` as a raw syscall.
fn personality(persona: u64) -> i64 {
    // SAFETY: personality takes an integer; with 0xffffffff it only queries.
    unsafe { libc::syscall(libc::SYS_personality, persona) }
}

/// getppid through syscall(2), so libc cannot answer it itself.
fn raw_getppid() -> i64 {
    // SAFETY: getppid has no arguments.
    unsafe { libc::syscall(libc::SYS_getppid) }
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

fn main() {
    let Some(p) = podman_profile() else { return };
    let runs = 1000u32;
    for _ in 0..20 {
        std::hint::black_box(compile(&p).unwrap());
    }
    let mut best = Duration::MAX;
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
            if filtered && !install(&program) {
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
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "benchmark child: {status:?}"
        );
    }
}
