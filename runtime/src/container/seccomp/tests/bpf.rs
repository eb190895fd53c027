//! Checks of the emitted BPF without the kernel, through a small interpreter.

use std::collections::BTreeMap;
use std::str::FromStr;

use seccompiler::sock_filter;
use serde_json::json;

use super::*;

pub(super) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub(super) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub(super) const X32_BIT: u32 = 0x4000_0000;

/// A classic-BPF interpreter for the instructions rtctr and seccompiler emit,
/// run over a `struct seccomp_data`; returns the `SECCOMP_RET_*` value.
pub(super) fn run_bpf(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
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
            0x45 => pc += cond(a & insn.k != 0),
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
    let x32 = reference(&x32_nr);
    let mut checked = 0;
    for (arch, (unconditional, with_args), bit) in [
        (AUDIT_ARCH_X86_64, &x86_64, 0),
        (AUDIT_ARCH_X86_64, &x32, X32_BIT),
        (AUDIT_ARCH_I386, &i386, 0),
    ] {
        for nr in (0..1024).map(|n| n | bit) {
            if with_args.contains(&nr) && !unconditional.contains_key(&nr) {
                continue;
            }
            let want = unconditional.get(&nr).copied().unwrap_or(default);
            let got = run_bpf(program.instructions(), arch, nr, [0; 6]);
            assert_eq!(got, want, "arch {arch:#x} nr {nr:#x}");
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
        let prof = profile(v);
        let p = compile(&prof).unwrap();
        let default = action_ret(prof.default_action(), prof.default_errno_ret(), "").unwrap();
        // clone3 (435) is above the highest named syscall (getppid, 110).
        assert_eq!(
            run_bpf(p.instructions(), AUDIT_ARCH_X86_64, 435, [0; 6]),
            default
        );
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
