//! Assembles the BPF program described in the module doc.

use seccompiler::{sock_filter, BpfProgram, SeccompRule};

use super::{precedence, SeccompError, Section, SectionArch};

// Classic BPF opcodes (linux/bpf_common.h).
/// BPF_LD | BPF_W | BPF_ABS (the first two are 0).
const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x05 | 0x10;
const JMP_JGT_K: u16 = 0x05 | 0x20;
const JMP_JGE_K: u16 = 0x05 | 0x30;
const ALU_AND_K: u16 = 0x04 | 0x50;
const RET_K: u16 = 0x06;

// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
/// `__X32_SYSCALL_BIT`.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn ret(k: u32) -> sock_filter {
    stmt(RET_K, k)
}

/// Builds the whole program: arch dispatch, then one section per arch.
pub(super) fn program(
    sections: &[Section],
    default_ret: u32,
    with_x32: bool,
) -> Result<Vec<sock_filter>, SeccompError> {
    let bodies = sections
        .iter()
        .map(|s| section(s, default_ret, with_x32))
        .collect::<Result<Vec<_>, _>>()?;

    // Dispatch: per arch `jeq ARCH, 0, 1 ; ja <section>`, then the kill.
    let dispatch_len = 1 + 2 * sections.len() + 1;
    let mut out = Vec::with_capacity(dispatch_len + bodies.iter().map(Vec::len).sum::<usize>());
    out.push(stmt(LD_W_ABS, DATA_ARCH));
    let mut target = dispatch_len;
    for (section, body) in sections.iter().zip(&bodies) {
        let audit = match section.arch {
            SectionArch::X86_64 => AUDIT_ARCH_X86_64,
            SectionArch::I386 => AUDIT_ARCH_I386,
        };
        out.push(jump(JMP_JEQ_K, audit, 0, 1));
        let here = out.len() + 1;
        out.push(stmt(JMP_JA, to_u32(target - here)));
        target += body.len();
    }
    out.push(ret(libc::SECCOMP_RET_KILL_PROCESS));
    for mut body in bodies {
        out.append(&mut body);
    }
    Ok(out)
}

/// One arch section: load nr, x32 guard, ENOSYS stub, the search tree.
fn section(
    section: &Section,
    default_ret: u32,
    with_x32: bool,
) -> Result<Vec<sock_filter>, SeccompError> {
    let mut out = vec![stmt(LD_W_ABS, DATA_NR)];
    if section.arch == SectionArch::X86_64 {
        out.push(jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1));
        out.push(if with_x32 {
            stmt(ALU_AND_K, !X32_SYSCALL_BIT)
        } else {
            ret(libc::SECCOMP_RET_KILL_PROCESS)
        });
    }
    if let Some(last) = section.last_nr {
        out.push(jump(JMP_JGT_K, last, 0, 1));
        out.push(ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    }
    let blocks = section
        .rules
        .iter()
        .map(|(nr, rules)| syscall_code(*nr, rules, default_ret))
        .collect::<Result<Vec<_>, _>>()?;
    search_tree(&mut out, &blocks, default_ret);
    Ok(out)
}

/// Syscalls per leaf of the search tree, tested one after another.
const LEAF: usize = 8;

/// The code for one syscall number: `(nr, code)`, where `code` returns when
/// the number matches and falls through (accumulator intact) when not.
type SyscallCode = (u32, Vec<sock_filter>);

/// A binary search over the sorted syscall numbers, with short linear leaves:
/// `jge mid ; ja upper ; lower… ; upper…`. Every leaf ends with the default,
/// so each subtree returns on every path.
fn search_tree(out: &mut Vec<sock_filter>, blocks: &[SyscallCode], default_ret: u32) {
    if blocks.len() <= LEAF {
        for (_, code) in blocks {
            out.extend_from_slice(code);
        }
        out.push(ret(default_ret));
        return;
    }
    let (lower, upper) = blocks.split_at(blocks.len() / 2);
    out.push(jump(JMP_JGE_K, upper[0].0, 0, 1));
    let ja = out.len();
    out.push(stmt(JMP_JA, 0));
    search_tree(out, lower, default_ret);
    // Patch the jump over the lower half, now that its length is known.
    out[ja].k = to_u32(out.len() - ja - 1);
    search_tree(out, upper, default_ret);
}

/// One syscall's code, see [`SyscallCode`].
fn syscall_code(
    nr: u32,
    rules: &super::SyscallRules,
    default_ret: u32,
) -> Result<SyscallCode, SeccompError> {
    if rules.with_args.is_empty() {
        let action = rules.unconditional.unwrap_or(default_ret);
        return Ok((nr, vec![jump(JMP_JEQ_K, nr, 0, 1), ret(action)]));
    }
    let block = syscall_block(rules, default_ret)?;
    let mut out = Vec::with_capacity(block.len() + 2);
    out.push(jump(JMP_JEQ_K, nr, 1, 0));
    out.push(stmt(JMP_JA, to_u32(block.len())));
    out.extend(block);
    Ok((nr, out))
}

/// The block for a syscall with argument rules; every path returns.
fn syscall_block(
    rules: &super::SyscallRules,
    default_ret: u32,
) -> Result<Vec<sock_filter>, SeccompError> {
    let fallback = rules.unconditional.unwrap_or(default_ret);
    let mut ordered: Vec<_> = rules
        .with_args
        .iter()
        .filter(|r| r.ret != fallback)
        .collect();
    // Most restrictive first; stable, so profile order breaks ties.
    ordered.sort_by_key(|r| precedence(r.ret));
    let mut out = Vec::new();
    for rule in ordered {
        let rule_bpf: BpfProgram = SeccompRule::new(rule.conditions.clone())
            .map_err(|source| SeccompError::Rule {
                syscall: rules.name.clone(),
                source,
            })?
            .into();
        // seccompiler's rule jumps past the one instruction that follows it
        // when a condition fails.
        out.extend(rule_bpf);
        out.push(ret(rule.ret));
    }
    out.push(ret(fallback));
    Ok(out)
}

/// Jump offsets: the program is at most a few thousand instructions.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
