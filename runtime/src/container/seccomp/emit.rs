//! Assembles the BPF program described in the module doc.

use seccompiler::{sock_filter, BpfProgram, SeccompRule};

use super::{precedence, SeccompError, Section, SectionArch, X32_SYSCALL_BIT};

// Classic BPF opcodes (linux/bpf_common.h).
/// BPF_LD | BPF_W | BPF_ABS (the first two are 0).
const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x05 | 0x10;
const JMP_JGT_K: u16 = 0x05 | 0x20;
const JMP_JGE_K: u16 = 0x05 | 0x30;
const RET_K: u16 = 0x06;

// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

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
) -> Result<Vec<sock_filter>, SeccompError> {
    let body = |arch| {
        sections
            .iter()
            .find(|s| s.arch == arch)
            .map(|s| section_body(s, default_ret))
            .transpose()
    };
    let x86_64 = body(SectionArch::X86_64)?.unwrap_or_else(|| vec![ret(default_ret)]);
    let i386 = body(SectionArch::I386)?;
    let x32 = body(SectionArch::X32)?;

    let mut out = vec![stmt(LD_W_ABS, DATA_ARCH)];
    out.push(jump(JMP_JEQ_K, AUDIT_ARCH_X86_64, 0, 1));
    let to_x86_64 = placeholder_ja(&mut out);
    let to_i386 = i386.as_ref().map(|_| {
        out.push(jump(JMP_JEQ_K, AUDIT_ARCH_I386, 0, 1));
        placeholder_ja(&mut out)
    });
    out.push(ret(libc::SECCOMP_RET_KILL_PROCESS));

    patch_ja(&mut out, to_x86_64);
    out.push(stmt(LD_W_ABS, DATA_NR));
    out.push(jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1));
    let to_x32 = match x32 {
        Some(_) => Some(placeholder_ja(&mut out)),
        None => {
            out.push(ret(libc::SECCOMP_RET_KILL_PROCESS));
            None
        }
    };
    out.extend(x86_64);
    if let (Some(ja), Some(body)) = (to_i386, i386) {
        patch_ja(&mut out, ja);
        out.push(stmt(LD_W_ABS, DATA_NR));
        out.extend(body);
    }
    // The accumulator still holds nr here.
    if let (Some(ja), Some(body)) = (to_x32, x32) {
        patch_ja(&mut out, ja);
        out.extend(body);
    }
    Ok(out)
}

/// Pushes a `ja` to be patched by [`patch_ja`]; returns its index.
fn placeholder_ja(out: &mut Vec<sock_filter>) -> usize {
    out.push(stmt(JMP_JA, 0));
    out.len() - 1
}

/// Points the `ja` at `index` to the next instruction to be pushed.
fn patch_ja(out: &mut [sock_filter], index: usize) {
    out[index].k = to_u32(out.len() - index - 1);
}

/// One arch's code after `nr` is loaded: the ENOSYS stub, the search tree.
fn section_body(section: &Section, default_ret: u32) -> Result<Vec<sock_filter>, SeccompError> {
    let mut out = Vec::new();
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

/// The code for one syscall number.
enum SyscallCode {
    /// No argument rules: one action for the number.
    Simple { nr: u32, action: u32 },
    /// `jeq nr ; ja skip ; block`: returns when the number matches, falls
    /// through (accumulator intact) when not.
    Block { nr: u32, code: Vec<sock_filter> },
}

impl SyscallCode {
    fn nr(&self) -> u32 {
        match self {
            SyscallCode::Simple { nr, .. } | SyscallCode::Block { nr, .. } => *nr,
        }
    }
}

/// A binary search over the sorted syscall numbers, with short linear leaves:
/// `jge mid ; ja upper ; lower… ; upper…`. Every leaf ends with the default,
/// so each subtree returns on every path.
fn search_tree(out: &mut Vec<sock_filter>, blocks: &[SyscallCode], default_ret: u32) {
    if blocks.len() <= LEAF {
        leaf(out, blocks, default_ret);
        return;
    }
    let (lower, upper) = blocks.split_at(blocks.len() / 2);
    out.push(jump(JMP_JGE_K, upper[0].nr(), 0, 1));
    let ja = placeholder_ja(out);
    search_tree(out, lower, default_ret);
    patch_ja(out, ja);
    search_tree(out, upper, default_ret);
}

/// A leaf. If every syscall in it is simple, each is one `jeq nr` that
/// jumps to a `ret` shared by all syscalls with that action:
/// `jeq a ; jeq b ; … ; ret DEFAULT ; ret ACTION1 ; ret ACTION2 …`.
/// Otherwise simple syscalls are `jeq nr ; ret ACTION`.
fn leaf(out: &mut Vec<sock_filter>, blocks: &[SyscallCode], default_ret: u32) {
    let simple: Option<Vec<(u32, u32)>> = blocks
        .iter()
        .map(|b| match b {
            SyscallCode::Simple { nr, action } => Some((*nr, *action)),
            SyscallCode::Block { .. } => None,
        })
        .collect();
    let Some(simple) = simple else {
        for block in blocks {
            match block {
                SyscallCode::Simple { nr, action } => {
                    out.push(jump(JMP_JEQ_K, *nr, 0, 1));
                    out.push(ret(*action));
                }
                SyscallCode::Block { code, .. } => out.extend_from_slice(code),
            }
        }
        out.push(ret(default_ret));
        return;
    };
    let mut actions: Vec<u32> = Vec::with_capacity(simple.len());
    for (_, action) in &simple {
        if !actions.contains(action) {
            actions.push(*action);
        }
    }
    // Index of the first shared `ret`, after the compares and the default.
    let first_ret = out.len() + simple.len() + 1;
    for (nr, action) in &simple {
        let slot = actions.iter().position(|a| a == action).unwrap_or(0);
        // At most LEAF compares + 1 + LEAF rets away: fits in a u8.
        let jt = first_ret + slot - out.len() - 1;
        out.push(jump(JMP_JEQ_K, *nr, u8::try_from(jt).unwrap_or(u8::MAX), 0));
    }
    out.push(ret(default_ret));
    out.extend(actions.into_iter().map(ret));
}

/// One syscall's code, see [`SyscallCode`].
fn syscall_code(
    nr: u32,
    rules: &super::SyscallRules,
    default_ret: u32,
) -> Result<SyscallCode, SeccompError> {
    if rules.with_args.is_empty() {
        let action = rules.unconditional.unwrap_or(default_ret);
        return Ok(SyscallCode::Simple { nr, action });
    }
    let block = syscall_block(rules, default_ret)?;
    let mut code = Vec::with_capacity(block.len() + 2);
    code.push(jump(JMP_JEQ_K, nr, 1, 0));
    code.push(stmt(JMP_JA, to_u32(block.len())));
    code.extend(block);
    Ok(SyscallCode::Block { nr, code })
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
