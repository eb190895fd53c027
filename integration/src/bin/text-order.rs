//! `text-order --binary BIN --map MAP --out FILE -- CMD ARGS...`: lists the
//! functions of BIN that CMD's runs of BIN call, in the order they were first
//! called, as a linker symbol ordering file (`ld.lld --symbol-ordering-file`).
//! MAP is the link map lld wrote for BIN (`-Map`), which names the functions
//! of the stripped binary.
//!
//! The linker places functions in the order of their sections in the object
//! files, so the code one `rtctr create` runs is spread over most of the
//! binary's text. The kernel maps file pages 64 KiB at a time around each
//! fault (`fault_around_bytes`), so a process that calls a few hundred KiB of
//! code ends up with most of the text resident, and pays for mapping it in
//! every forked copy. Linked in the order this tool writes, the called
//! functions sit together at the start of the text (`make text-order`,
//! docs/bench.md).
//!
//! How: CMD (a script that runs BIN's commands) runs under ptrace with every
//! fork, clone and exec followed. When a traced process execs BIN, an int3
//! goes on the first byte of each function that MAP places in `.text`. A process that reaches one stops with
//! SIGTRAP; the tool notes the function, puts its byte back in that process
//! (and so in its threads) and resumes it at the same address. Each function
//! traps at most once per address space, so CMD runs at near full speed.

use nix::sys::ptrace;
use nix::sys::signal::{raise, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, fork, ForkResult, Pid};
use std::collections::{BTreeMap, HashSet};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const INT3: i64 = 0xcc;

struct Opts {
    binary: PathBuf,
    map: PathBuf,
    out: PathBuf,
    cmd: Vec<String>,
}

fn parse_opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let (mut binary, mut map, mut out) = (None, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--binary" => binary = args.next().map(PathBuf::from),
            "--map" => map = args.next().map(PathBuf::from),
            "--out" => out = args.next().map(PathBuf::from),
            "--" => break,
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    let cmd: Vec<String> = args.collect();
    match (binary, map, out) {
        (Some(binary), Some(map), Some(out)) if !cmd.is_empty() => Ok(Opts {
            binary,
            map,
            out,
            cmd,
        }),
        _ => Err("usage: text-order --binary BIN --map MAP --out FILE -- CMD [ARGS...]".into()),
    }
}

/// The functions in the `.text` of an `ld.lld -Map` file, by address, each
/// with the names the linker knows it by. Lines of the map are
/// `VMA LMA Size Align` and then, at three depths of indentation, an output
/// section, an input section (`file:(section)`) or a symbol. Rust functions
/// each have a section of their own, `.text.<mangled name>` (the map shows
/// the symbol demangled); C and assembly functions are named by their symbol.
fn functions(map: &Path) -> Result<BTreeMap<u64, Vec<String>>, String> {
    let text = std::fs::read_to_string(map).map_err(|e| format!("{}: {e}", map.display()))?;
    let funcs = parse_map(&text);
    if funcs.is_empty() {
        return Err(format!("{}: no symbols in .text", map.display()));
    }
    Ok(funcs)
}

fn parse_map(text: &str) -> BTreeMap<u64, Vec<String>> {
    let mut funcs: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut in_text = false;
    for line in text.lines() {
        // Four columns, then the rest of the line as it is indented.
        let mut rest = line;
        let mut cols = [""; 4];
        for col in &mut cols {
            rest = rest.trim_start();
            let end = rest.find(' ').unwrap_or(rest.len());
            (*col, rest) = rest.split_at(end);
        }
        let Ok(vma) = u64::from_str_radix(cols[0], 16) else {
            continue;
        };
        let entry = rest.trim_start();
        let name = match rest.len() - entry.len() {
            1 => {
                in_text = entry == ".text";
                continue;
            }
            9 if in_text => entry
                .rsplit_once(":(.text.")
                .and_then(|(_, s)| s.strip_suffix(')'))
                .map(|s| {
                    ["unlikely.", "hot.", "startup.", "exit."]
                        .iter()
                        .find_map(|p| s.strip_prefix(p))
                        .unwrap_or(s)
                }),
            17 if in_text && !entry.contains([':', ' ']) => Some(entry),
            _ => None,
        };
        if let Some(name) = name {
            let names = funcs.entry(vma).or_default();
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    funcs
}

/// Puts an int3 on the first byte of each function in `pid`'s memory (just
/// exec'd), noting the bytes it replaces in `orig`.
fn arm(
    pid: Pid,
    funcs: &BTreeMap<u64, Vec<String>>,
    orig: &mut BTreeMap<u64, u8>,
) -> Result<(), String> {
    for &addr in funcs.keys() {
        let p = addr as ptrace::AddressType;
        let word = ptrace::read(pid, p).map_err(|e| format!("peek {addr:#x}: {e}"))?;
        orig.insert(addr, word as u8);
        ptrace::write(pid, p, (word & !0xff) | INT3).map_err(|e| format!("poke {addr:#x}: {e}"))?;
    }
    Ok(())
}

/// Handles a SIGTRAP stop: if `pid` stopped just after one of our int3s,
/// restores the function's first byte (unless a thread sharing the memory
/// already did) and rewinds to it. Returns the function's address.
fn hit(
    pid: Pid,
    funcs: &BTreeMap<u64, Vec<String>>,
    orig: &BTreeMap<u64, u8>,
) -> Result<Option<u64>, String> {
    let mut regs = ptrace::getregs(pid).map_err(|e| format!("getregs: {e}"))?;
    let addr = regs.rip.wrapping_sub(1);
    if !funcs.contains_key(&addr) {
        return Ok(None);
    }
    let p = addr as ptrace::AddressType;
    let word = ptrace::read(pid, p).map_err(|e| format!("peek {addr:#x}: {e}"))?;
    if word & 0xff == INT3 {
        let byte = i64::from(orig[&addr]);
        ptrace::write(pid, p, (word & !0xff) | byte).map_err(|e| format!("poke {addr:#x}: {e}"))?;
    }
    regs.rip = addr;
    ptrace::setregs(pid, regs).map_err(|e| format!("setregs: {e}"))?;
    Ok(Some(addr))
}

fn run(opts: &Opts) -> Result<(), String> {
    let binary = opts
        .binary
        .canonicalize()
        .map_err(|e| format!("{}: {e}", opts.binary.display()))?;
    let funcs = functions(&opts.map)?;
    let mut orig = BTreeMap::new();
    let argv: Vec<CString> = opts
        .cmd
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;

    // SAFETY: the child only calls async-signal-safe functions (ptrace,
    // raise, execvp) before exec, or exits.
    let child = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let _ = ptrace::traceme();
            let _ = raise(Signal::SIGSTOP);
            let _ = execvp(&argv[0], &argv);
            std::process::exit(127);
        }
        ForkResult::Parent { child } => child,
    };
    waitpid(child, None).map_err(|e| format!("waitpid: {e}"))?;
    ptrace::setoptions(
        child,
        ptrace::Options::PTRACE_O_TRACEFORK
            | ptrace::Options::PTRACE_O_TRACEVFORK
            | ptrace::Options::PTRACE_O_TRACECLONE
            | ptrace::Options::PTRACE_O_TRACEEXEC
            | ptrace::Options::PTRACE_O_EXITKILL,
    )
    .map_err(|e| format!("PTRACE_SETOPTIONS: {e}"))?;
    ptrace::cont(child, None).map_err(|e| format!("PTRACE_CONT: {e}"))?;

    let mut order: Vec<u64> = Vec::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut status = 0;
    loop {
        let ws = match waitpid(None, Some(WaitPidFlag::__WALL)) {
            Ok(ws) => ws,
            Err(nix::errno::Errno::ECHILD) => break,
            Err(e) => return Err(format!("waitpid: {e}")),
        };
        // A tracee can vanish (SIGKILL) between its stop and our call.
        let resume = |pid: Pid, sig: Option<Signal>| {
            let _ = ptrace::cont(pid, sig);
        };
        match ws {
            WaitStatus::Exited(pid, code) if pid == child => status = code,
            WaitStatus::Signaled(pid, sig, _) if pid == child => status = 128 + sig as i32,
            WaitStatus::PtraceEvent(pid, _, ev)
                if ev == ptrace::Event::PTRACE_EVENT_EXEC as i32 =>
            {
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                if exe == binary {
                    arm(pid, &funcs, &mut orig)?;
                }
                resume(pid, None);
            }
            WaitStatus::PtraceEvent(pid, _, _) => resume(pid, None),
            WaitStatus::Stopped(pid, Signal::SIGTRAP) => {
                if let Some(addr) = hit(pid, &funcs, &orig).unwrap_or(None) {
                    if seen.insert(addr) {
                        order.push(addr);
                    }
                    resume(pid, None);
                } else {
                    resume(pid, Some(Signal::SIGTRAP));
                }
            }
            // New tracees start with a SIGSTOP of ptrace's making.
            WaitStatus::Stopped(pid, Signal::SIGSTOP) => resume(pid, None),
            WaitStatus::Stopped(pid, sig) => resume(pid, Some(sig)),
            _ => {}
        }
    }
    if status != 0 {
        return Err(format!("{}: exit status {status}", opts.cmd.join(" ")));
    }
    let mut text = String::new();
    for addr in &order {
        for name in &funcs[addr] {
            text.push_str(name);
            text.push('\n');
        }
    }
    std::fs::write(&opts.out, text).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    eprintln!(
        "text-order: {} of {} functions called; order in {}",
        order.len(),
        funcs.len(),
        opts.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match parse_opts().and_then(|o| run(&o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("text-order: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_map;

    /// Lines as ld.lld 22 writes them (paths shortened).
    const MAP: &str = "             VMA              LMA     Size Align Out     In      Symbol
          2002c0           2002c0    dd19a    64 .rodata
          203e40           203e40       68     8         rtctr.o:(.rodata._ZN5rtctr4main17h6487df2393105ab9E)
          32c780           32c780   5194f6    16 .text
          32c780           32c780       16     1         crt1.o:(.text)
          32c780           32c780        0     1                 _start
          32c7ee           32c7ee      19d     1         libc.a(__libc_start_main.lo):(.text.__init_libc)
          32c7ee           32c7ee      19d     1                 __init_libc
          32cb91           32cb91       32     1         libc.a(memcpy.lo):(.text)
          32cb91           32cb91        0     1                 memcpy
          32cb91           32cb91        0     1                 __memcpy_fwd
          3549d0           3549d0     4b95    16         rtctr.o:(.text._ZN5rtctr4main17h6487df2393105ab9E)
          3549d0           3549d0     4b95     1                 rtctr::main::h6487df2393105ab9
          359570           359570      1b6    16         rtctr.o:(.text.unlikely._ZN5rtctr5print17h48cafddc8f0330c1E)
          359570           359570      1b6     1                 rtctr::print::h48cafddc8f0330c1
          360000           360000      100    16         rtctr.o:(.text._ZN42_$LT$$RF$T$u20$as$u20$core..fmt..Debug$GT$3fmt17h184bbd1f24c08463E)
          360000           360000      100     1                 <&T as core::fmt::Debug>::fmt::h184bbd1f24c08463
          846790           846790       20     8 .tdata
          846790           846790       20     8         rtctr.o:(.tdata._ZN3std6thread7CURRENT)
          846790           846790        0     1                 std::thread::CURRENT
";

    #[test]
    fn text_functions_by_their_linker_names() {
        let f = parse_map(MAP);
        let names = |a: u64| f[&a].iter().map(String::as_str).collect::<Vec<_>>();
        assert_eq!(names(0x32c780), ["_start"]);
        assert_eq!(names(0x32c7ee), ["__init_libc"]);
        assert_eq!(names(0x32cb91), ["memcpy", "__memcpy_fwd"]);
        // Rust: the mangled name from the section, not the demangled symbol.
        assert_eq!(names(0x3549d0), ["_ZN5rtctr4main17h6487df2393105ab9E"]);
        assert_eq!(names(0x359570), ["_ZN5rtctr5print17h48cafddc8f0330c1E"]);
        assert_eq!(
            names(0x360000),
            ["_ZN42_$LT$$RF$T$u20$as$u20$core..fmt..Debug$GT$3fmt17h184bbd1f24c08463E"]
        );
        // Nothing outside .text.
        assert_eq!(f.len(), 6, "{f:?}");
    }
}
