//! Differential check against C libseccomp (what runc and crun use), loaded
//! with dlopen when the host has `libseccomp.so.2`; no build dependency.

use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::io::{Read, Seek};
use std::os::fd::AsRawFd;

use seccompiler::sock_filter;

use super::bpf::{run_bpf, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_BIT};
use super::*;

/// `struct scmp_arg_cmp`; `op` uses the same numbers as OCI's operators.
#[repr(C)]
struct ScmpArgCmp {
    arg: c_uint,
    op: c_uint,
    datum_a: u64,
    datum_b: u64,
}

type Ctx = *mut c_void;

/// The libseccomp 2.5 entry points this test needs.
struct Lib {
    init: unsafe extern "C" fn(u32) -> Ctx,
    arch_add: unsafe extern "C" fn(Ctx, u32) -> c_int,
    resolve: unsafe extern "C" fn(*const c_char) -> c_int,
    rule_add_array: unsafe extern "C" fn(Ctx, u32, c_int, c_uint, *const ScmpArgCmp) -> c_int,
    export_bpf: unsafe extern "C" fn(Ctx, c_int) -> c_int,
    release: unsafe extern "C" fn(Ctx),
}

fn load() -> Option<Lib> {
    let name = CString::new("libseccomp.so.2").unwrap();
    // SAFETY: dlopen with a valid C string; the handle is never closed, so
    // the symbols below stay valid for the process.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) };
    if handle.is_null() {
        return None;
    }
    let sym = |s: &str| {
        let s = CString::new(s).unwrap();
        // SAFETY: `handle` is a live dlopen handle and `s` a C string.
        let p = unsafe { libc::dlsym(handle, s.as_ptr()) };
        assert!(!p.is_null(), "libseccomp lacks {s:?}");
        p
    };
    // SAFETY: each symbol has the C signature written in `Lib`
    // (libseccomp 2.5 seccomp.h); fn pointers and data pointers have the
    // same size on Linux.
    unsafe {
        Some(Lib {
            init: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(u32) -> Ctx>(sym(
                "seccomp_init",
            )),
            arch_add: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(Ctx, u32) -> c_int>(
                sym("seccomp_arch_add"),
            ),
            resolve: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*const c_char) -> c_int>(
                sym("seccomp_syscall_resolve_name"),
            ),
            rule_add_array: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(Ctx, u32, c_int, c_uint, *const ScmpArgCmp) -> c_int,
            >(sym("seccomp_rule_add_array")),
            export_bpf: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(Ctx, c_int) -> c_int>(
                sym("seccomp_export_bpf"),
            ),
            release: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(Ctx)>(sym(
                "seccomp_release",
            )),
        })
    }
}

/// Builds the profile with libseccomp the way runc does and exports the BPF.
fn libseccomp_program(lib: &Lib, p: &LinuxSeccomp) -> Vec<sock_filter> {
    let default = action_ret(p.default_action(), p.default_errno_ret(), "").unwrap();
    // SAFETY: seccomp_init takes an action value and returns a new context
    // (NULL on failure); every call below passes that context, released at
    // the end, and pointers that are valid for the call.
    let ctx = unsafe { (lib.init)(default) };
    assert!(!ctx.is_null());
    for arch in [AUDIT_ARCH_I386, AUDIT_ARCH_X86_64 & !0x8000_0000] {
        // SAFETY: see above.
        assert_eq!(unsafe { (lib.arch_add)(ctx, arch) }, 0);
    }
    for entry in p.syscalls().as_deref().unwrap_or_default() {
        let ret = action_ret(entry.action(), entry.errno_ret(), "").unwrap();
        if ret == default {
            continue;
        }
        let args = entry.args().as_deref().unwrap_or_default();
        let cmp: Vec<ScmpArgCmp> = args
            .iter()
            .map(|a| ScmpArgCmp {
                arg: a.index() as c_uint,
                op: a.op() as c_uint,
                datum_a: a.value(),
                datum_b: a.value_two().unwrap_or(0),
            })
            .collect();
        let mut indexes: Vec<_> = args.iter().map(|a| a.index()).collect();
        indexes.sort_unstable();
        let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
        for name in entry.names() {
            let c = CString::new(name.as_str()).unwrap();
            // SAFETY: see above.
            let nr = unsafe { (lib.resolve)(c.as_ptr()) };
            if nr == -1 {
                continue;
            }
            let groups: Vec<&[ScmpArgCmp]> = if repeated {
                cmp.chunks(1).collect()
            } else {
                vec![&cmp[..]]
            };
            for group in groups {
                // SAFETY: see above; `group` outlives the call.
                let rc = unsafe {
                    (lib.rule_add_array)(ctx, ret, nr, group.len() as c_uint, group.as_ptr())
                };
                assert!(rc == 0 || rc == -libc::EEXIST, "{name}: {rc}");
            }
        }
    }
    let file = tempfile::tempfile().unwrap();
    // SAFETY: see above; the fd is open for writing.
    assert_eq!(unsafe { (lib.export_bpf)(ctx, file.as_raw_fd()) }, 0);
    // SAFETY: see above; not used afterwards.
    unsafe { (lib.release)(ctx) };
    let mut file = file;
    file.rewind().unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    bytes
        .chunks_exact(8)
        .map(|b| sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect()
}

/// rtctr and libseccomp give the same answer for podman's profile, for every
/// syscall number on x86_64, i386 and x32 and a set of argument values.
#[test]
fn podman_profile_matches_libseccomp() {
    let Some(lib) = load() else {
        eprintln!("SKIPPED: libseccomp.so.2 is not installed");
        return;
    };
    let Some(p) = podman_profile() else { return };
    let ours = compile(&p).unwrap();
    let theirs = libseccomp_program(&lib, &p);
    let mut values: Vec<u64> = vec![0, 1, u64::MAX, 0xffff_ffff];
    for e in p.syscalls().as_deref().unwrap_or_default() {
        for a in e.args().as_deref().unwrap_or_default() {
            values.extend([
                a.value(),
                a.value().wrapping_add(1),
                a.value_two().unwrap_or(0),
            ]);
        }
    }
    values.sort_unstable();
    values.dedup();
    let mut compared = 0;
    for (arch, bit) in [
        (AUDIT_ARCH_X86_64, 0),
        (AUDIT_ARCH_I386, 0),
        (AUDIT_ARCH_X86_64, X32_BIT),
    ] {
        for nr in 0..600 {
            for v in &values {
                let args = [*v; 6];
                let a = run_bpf(ours.instructions(), arch, nr | bit, args);
                let b = run_bpf(&theirs, arch, nr | bit, args);
                assert_eq!(
                    a,
                    b,
                    "arch {arch:#x} nr {:#x} args {v:#x}: rtctr {a:#x}, libseccomp {b:#x}",
                    nr | bit
                );
                compared += 1;
            }
        }
    }
    eprintln!(
        "libseccomp: {} insns, rtctr {} insns; {compared} cases equal",
        theirs.len(),
        ours.instruction_count()
    );
}
