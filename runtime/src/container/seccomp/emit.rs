//! Assembles the BPF program described in the module doc.

use seccompiler::{sock_filter, BpfProgram, SeccompRule};

use super::{precedence, SeccompError, Section, SectionArch, X32_SYSCALL_BIT};

// Classic BPF opcodes (linux/bpf_common.h).
/// BPF_LD | BPF_W | BPF_ABS (the first two are 0).
const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x05 | 0x10;
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

/// One arch's code after `nr` is loaded: a binary search over the arch's
/// [`spans`], ending in each span's code.
fn section_body(section: &Section, default_ret: u32) -> Result<Vec<sock_filter>, SeccompError> {
    Ok(search_tree(&spans(section, default_ret)?))
}

/// What the program does for one span of syscall numbers.
enum Code {
    /// Every number in the span returns this.
    Ret(u32),
    /// One syscall with argument rules: its block returns on every path.
    Block(Vec<sock_filter>),
}

/// The section's numbers cut into spans, each `(first number, code)` and
/// running up to the next span's first number (the last one up to the end
/// of the arch's numbers). Numbers the profile does not name get the
/// default; neighbouring numbers with the same action share a span (podman's
/// 345 x86_64 syscalls are 59 spans); above the highest named number, runc's
/// ENOSYS stub if it is on.
fn spans(section: &Section, default_ret: u32) -> Result<Vec<(u32, Code)>, SeccompError> {
    fn push(out: &mut Vec<(u32, Code)>, first: u32, code: Code) {
        if let (Code::Ret(new), Some((_, Code::Ret(last)))) = (&code, out.last()) {
            if new == last {
                return;
            }
        }
        out.push((first, code));
    }
    let mut out = Vec::new();
    let mut next = section.rules.bit;
    for (nr, rules) in section.rules.iter() {
        if nr > next {
            push(&mut out, next, Code::Ret(default_ret));
        }
        let code = if rules.with_args.is_empty() {
            Code::Ret(rules.unconditional.unwrap_or(default_ret))
        } else {
            Code::Block(syscall_block(rules, default_ret)?)
        };
        push(&mut out, nr, code);
        next = nr + 1;
    }
    match section.last_nr {
        Some(last) => {
            if next <= last {
                push(&mut out, next, Code::Ret(default_ret));
            }
            push(
                &mut out,
                last + 1,
                Code::Ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
            );
        }
        None => push(&mut out, next, Code::Ret(default_ret)),
    }
    Ok(out)
}

/// A binary search over spans sorted by first number (never empty): `jge
/// MID` sends the upper half one way, the lower half the other, down to one
/// span's code. The jump over the lower half is the `jge`'s own offset when
/// it fits in its 8 bits, else a `ja`. Every path returns.
fn search_tree(spans: &[(u32, Code)]) -> Vec<sock_filter> {
    if let [(_, code)] = spans {
        return match code {
            Code::Ret(action) => vec![ret(*action)],
            Code::Block(block) => block.clone(),
        };
    }
    let (lower, upper) = spans.split_at(spans.len() / 2);
    let mid = upper[0].0;
    let (lower, upper) = (search_tree(lower), search_tree(upper));
    let mut out = Vec::with_capacity(lower.len() + upper.len() + 2);
    match u8::try_from(lower.len()) {
        Ok(jt) => out.push(jump(JMP_JGE_K, mid, jt, 0)),
        Err(_) => {
            out.push(jump(JMP_JGE_K, mid, 0, 1));
            out.push(stmt(JMP_JA, to_u32(lower.len())));
        }
    }
    out.extend(lower);
    out.extend(upper);
    out
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
                syscall: rules.name.to_string(),
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
