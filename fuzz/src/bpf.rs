//! Classic BPF as the kernel takes it for seccomp: the checks it makes
//! before accepting a filter, and an interpreter to ask a compiled program
//! what it answers, without installing it.

use seccompiler::sock_filter;

/// `BPF_MAXINSNS`.
pub const MAX_INSNS: usize = 4096;
/// `sizeof(struct seccomp_data)`.
const DATA_SIZE: u32 = 64;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// The opcodes rtctr and seccompiler emit.
const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JGE_K: u16 = 0x35;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// `SECCOMP_RET_*` actions (the upper 16 bits of a return value).
const ACTIONS: [u32; 8] = [
    libc::SECCOMP_RET_KILL_PROCESS,
    libc::SECCOMP_RET_KILL_THREAD,
    libc::SECCOMP_RET_TRAP,
    libc::SECCOMP_RET_ERRNO,
    libc::SECCOMP_RET_USER_NOTIF,
    libc::SECCOMP_RET_TRACE,
    libc::SECCOMP_RET_LOG,
    libc::SECCOMP_RET_ALLOW,
];

/// What the kernel checks before it takes a seccomp filter
/// (`bpf_check_classic` and `seccomp_check_filter`), for the opcodes a
/// compiled program may contain; also that every return is a known action
/// and an errno at most `MAX_ERRNO`. `Err` names the instruction.
pub fn verify(prog: &[sock_filter]) -> Result<(), String> {
    let len = prog.len();
    if len == 0 || len > MAX_INSNS {
        return Err(format!("{len} instructions (1..={MAX_INSNS})"));
    }
    let target = |pc: usize, off: u64| -> Result<(), String> {
        if pc as u64 + 1 + off >= len as u64 {
            return Err(format!(
                "insn {pc}: jump by {off} leaves the program ({len})"
            ));
        }
        Ok(())
    };
    for (pc, insn) in prog.iter().enumerate() {
        match insn.code {
            LD_W_ABS if insn.k >= DATA_SIZE || insn.k % 4 != 0 => {
                return Err(format!("insn {pc}: load at offset {}", insn.k));
            }
            LD_W_ABS | ALU_AND_K => {}
            JMP_JA => target(pc, u64::from(insn.k))?,
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K | JMP_JSET_K => {
                target(pc, u64::from(insn.jt))?;
                target(pc, u64::from(insn.jf))?;
            }
            RET_K => {
                let action = insn.k & libc::SECCOMP_RET_ACTION_FULL;
                if !ACTIONS.contains(&action) {
                    return Err(format!("insn {pc}: unknown action {:#x}", insn.k));
                }
                if action == libc::SECCOMP_RET_ERRNO && insn.k & 0xffff > 4095 {
                    return Err(format!("insn {pc}: errno {} > 4095", insn.k & 0xffff));
                }
            }
            code => return Err(format!("insn {pc}: opcode {code:#x}")),
        }
    }
    if prog[len - 1].code != RET_K {
        return Err("the last instruction is not a return".to_string());
    }
    Ok(())
}

/// Runs a program that passed [`verify`] over one `struct seccomp_data`
/// and returns its `SECCOMP_RET_*` value.
pub fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            0 => nr,
            4 => arch,
            8 | 12 => 0, // instruction pointer
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
            LD_W_ABS => a = word(insn.k),
            ALU_AND_K => a &= insn.k,
            JMP_JA => pc += insn.k as usize,
            JMP_JEQ_K => pc += cond(a == insn.k),
            JMP_JGT_K => pc += cond(a > insn.k),
            JMP_JGE_K => pc += cond(a >= insn.k),
            JMP_JSET_K => pc += cond(a & insn.k != 0),
            RET_K => return insn.k,
            code => unreachable!("opcode {code:#x}: run verify first"),
        }
    }
}
