//! Device access: cgroup v1 `devices.allow`/`devices.deny`, and for cgroup v2
//! a hand-assembled BPF_PROG_TYPE_CGROUP_DEVICE program.
//!
//! Semantics (runc's): everything is denied, then the rules apply in config
//! order and the last matching rule wins. FIFO (`p`) rules are skipped: the
//! device cgroup does not govern FIFOs.

use std::os::fd::AsFd;
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::sys::{self, Insn};
use crate::{fsio, Error, Result};

/// Access bits, as the kernel's BPF_DEVCG_ACC_*.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device kind of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    All,
    Block,
    Char,
}

/// A checked device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// `None` = any.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    /// Converts an OCI rule; `Ok(None)` for FIFO rules. A missing or
    /// negative major/minor is a wildcard; a missing access is "rwm".
    pub fn from_oci(r: &LinuxDeviceCgroup) -> Result<Option<Rule>> {
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => Kind::All,
            LinuxDeviceType::B => Kind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
            LinuxDeviceType::P => return Ok(None),
        };
        let num = |v: Option<i64>| -> Result<Option<u32>> {
            match v {
                None => Ok(None),
                Some(n) if n < 0 => Ok(None),
                Some(n) => u32::try_from(n).map(Some).map_err(|_| Error::InvalidValue {
                    setting: "devices",
                    reason: format!("device number {n} is out of range"),
                }),
            }
        };
        let mut access = 0;
        let text = r.access().as_deref().unwrap_or("");
        for c in text.chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => {
                    return Err(Error::InvalidValue {
                        setting: "devices.access",
                        reason: format!("{text:?} has {c:?}; only r, w and m are allowed"),
                    })
                }
            };
        }
        if text.is_empty() {
            access = ACC_ALL;
        }
        Ok(Some(Rule {
            allow: r.allow(),
            kind,
            major: num(r.major())?,
            minor: num(r.minor())?,
            access,
        }))
    }

    fn is_wildcard(&self) -> bool {
        self.kind == Kind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }

    /// The v1 `devices.allow`/`deny` lines for this rule. The kernel reads a
    /// leading "a" as "every device" whatever follows, so a typed-all rule
    /// with numbers or partial access becomes a "b" and a "c" line.
    pub fn v1_lines(&self) -> Vec<String> {
        if self.is_wildcard() {
            return vec!["a".to_string()];
        }
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        let kinds: &[char] = match self.kind {
            Kind::All => &['b', 'c'],
            Kind::Block => &['b'],
            Kind::Char => &['c'],
        };
        kinds
            .iter()
            .map(|k| format!("{k} {}:{} {acc}", n(self.major), n(self.minor)))
            .collect()
    }
}

/// Checks and converts a rule list (FIFO rules dropped).
pub fn rules(list: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    Ok(list
        .iter()
        .map(Rule::from_oci)
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect())
}

/// The v1 writes: ("devices.deny", "a") then one write per rule line, in order.
pub fn v1_plan(list: &[LinuxDeviceCgroup]) -> Result<Vec<(&'static str, String)>> {
    let mut out = vec![("devices.deny", "a".to_string())];
    for r in rules(list)? {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.extend(r.v1_lines().into_iter().map(|l| (file, l)));
    }
    Ok(out)
}

/// Applies the rules to a v1 devices cgroup directory. The kernel parses
/// each write(2) to devices.allow/deny as one rule, so each file is opened
/// once and written a rule at a time, in plan order.
pub fn apply_v1(dir: &Path, list: &[LinuxDeviceCgroup]) -> Result<()> {
    let mut allow = fsio::Writer::new(dir, "devices.allow");
    let mut deny = fsio::Writer::new(dir, "devices.deny");
    for (file, line) in v1_plan(list)? {
        let writer = if file == "devices.allow" {
            &mut allow
        } else {
            &mut deny
        };
        writer.write(&line)?;
    }
    Ok(())
}

// eBPF encoding (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// Assembles the device program. `struct bpf_cgroup_dev_ctx` is
/// { u32 access_type (access << 16 | type); u32 major; u32 minor; }.
/// Registers: r2 = type, r3 = access, r4 = major, r5 = minor. Rules are
/// tested last to first and the first match returns, so the last matching
/// rule wins; nothing matching means deny. Code after an unconditional
/// rule would be unreachable (the verifier rejects that), so it stops there.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Jumps hold a placeholder offset; patched once the block length is known.
        let mut block = Vec::new();
        let mut jumps = Vec::new();
        match r.kind {
            Kind::All => {}
            Kind::Block | Kind::Char => {
                let t = if r.kind == Kind::Block {
                    DEV_BLOCK
                } else {
                    DEV_CHAR
                };
                jumps.push(block.len());
                block.push(insn(JNE_K, 2, 0, 0, t));
            }
        }
        if r.access != ACC_ALL {
            // (access & rule) != access: the request asks for more than allowed.
            block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU32_AND_K, 1, 0, 0, i32::from(r.access)));
            jumps.push(block.len());
            block.push(insn(JNE_X, 1, 3, 0, 0));
        }
        for (reg, v) in [(4, r.major), (5, r.minor)] {
            if let Some(v) = v {
                jumps.push(block.len());
                block.push(insn(JNE_K, reg, 0, 0, v as i32));
            }
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for j in &jumps {
            block[*j].off = (len - j - 1) as i16;
        }
        p.extend(block);
        if jumps.is_empty() {
            return p;
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Loads the program for `list` and attaches it to the cgroup2 directory
/// `dir` (BPF_F_ALLOW_MULTI), then detaches the programs that were there
/// before, so an update replaces the policy instead of narrowing it.
pub fn attach_program(dir: &Path, list: &[LinuxDeviceCgroup]) -> Result<()> {
    let insns = program(&rules(list)?);
    let bpf_err = |op: &'static str| {
        move |source| Error::Bpf {
            op,
            path: dir.to_path_buf(),
            source,
        }
    };
    let cg = std::fs::File::open(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let old = sys::query_device_progs(cg.as_fd()).map_err(bpf_err("query"))?;
    let prog = sys::load_device_prog(&insns).map_err(bpf_err("load"))?;
    sys::attach_device_prog(cg.as_fd(), prog.as_fd(), sys::BPF_F_ALLOW_MULTI)
        .map_err(bpf_err("attach"))?;
    for id in old {
        let fd = sys::prog_fd_by_id(id).map_err(bpf_err("get fd"))?;
        sys::detach_device_prog(cg.as_fd(), fd.as_fd()).map_err(bpf_err("detach"))?;
    }
    Ok(())
}

fn dev_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// runc's default allow-list, to append after the config's rules: mknod of
/// anything, and /dev/{null,zero,full,random,urandom,tty,ptmx} and the ptys.
pub fn default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let mut v = vec![
        dev_rule(true, C, None, None, "m"),
        dev_rule(true, B, None, None, "m"),
    ];
    for (maj, min) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)] {
        v.push(dev_rule(true, C, Some(maj), Some(min), "rwm"));
    }
    v.push(dev_rule(true, C, Some(136), None, "rwm"));
    v
}

/// The rule list runc applies at create: the config's
/// `linux.resources.devices`, then [`default_rules`], then an "rwm" allow
/// for every device in `linux.devices` (the nodes the runtime creates).
pub fn create_rules(
    config: Option<&[LinuxDeviceCgroup]>,
    linux_devices: &[LinuxDevice],
) -> Vec<LinuxDeviceCgroup> {
    let mut v: Vec<LinuxDeviceCgroup> = config.map(<[_]>::to_vec).unwrap_or_default();
    v.extend(default_rules());
    for d in linux_devices {
        v.push(dev_rule(
            true,
            d.typ(),
            Some(d.major()),
            Some(d.minor()),
            "rwm",
        ));
    }
    v
}

#[cfg(test)]
mod tests;
