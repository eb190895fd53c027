//! Filters installed in forked children: what the container process sees.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use nix::sys::signal::Signal;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::State;
use serde_json::{json, Value};
use std::panic::AssertUnwindSafe;

use super::*;

#[test]
fn podman_profile_in_child() {
    let Some(p) = podman_profile() else { return };
    let program = compile(&p).unwrap();
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        // Allowed.
        // SAFETY: getppid has no arguments and cannot fail.
        if unsafe { libc::getppid() } <= 0 {
            return 11;
        }
        // personality(0xffffffff) (query) is allowed by an argument rule ...
        if personality(0xffff_ffff) < 0 {
            return 12;
        }
        // ... personality(1) is not: default errno 38.
        if personality(1) != -i64::from(libc::ENOSYS) {
            return 13;
        }
        // acct: ERRNO(EPERM) rule (CAP_SYS_PACCT is not a default cap).
        // SAFETY: acct(NULL) only turns accounting off (and is denied here).
        let rc = unsafe { libc::syscall(libc::SYS_acct, std::ptr::null::<libc::c_char>()) };
        if rc != -1 || errno() != libc::EPERM {
            return 14;
        }
        // A number no table knows gets the default action.
        // SAFETY: syscall 1000 does not exist; the filter answers.
        let rc = unsafe { libc::syscall(1000) };
        if rc != -1 || errno() != libc::ENOSYS {
            return 15;
        }
        0
    });
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn errno_rule_and_allowed_syscall() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]
    })))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target =
        std::ffi::CString::new(dir.path().join("d").into_os_string().into_encoded_bytes()).unwrap();
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        // SAFETY: `target` is a valid NUL-terminated path.
        let rc = unsafe { libc::mkdir(target.as_ptr(), 0o755) };
        if rc != -1 || errno() != libc::EPERM {
            return 11;
        }
        // SAFETY: as above.
        let rc = unsafe { libc::rmdir(target.as_ptr()) };
        if rc != -1 || errno() != 18 {
            return 12;
        }
        // SAFETY: getpid cannot fail.
        if unsafe { libc::getpid() } <= 0 {
            return 13;
        }
        0
    });
    assert!(exited(status, 0), "{status:?}");
    assert!(!dir.path().join("d").exists());
}

#[test]
fn default_errno_ret_is_used() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [{"names": ["exit", "exit_group", "getpid", "personality", "kill",
                                "rt_sigreturn", "rt_sigprocmask", "mmap", "munmap", "brk",
                                "write", "futex", "sigaltstack", "madvise", "getrandom"],
                      "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        let rc = raw_getppid();
        if rc != -1 || errno() != libc::ENOSYS {
            return 11;
        }
        0
    });
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn argument_rules() {
    // personality: allowed for 0 and 0xffffffff (two rules, ORed), denied otherwise.
    // mask test on `kill`-free syscall: getpriority(which & 0xf0 == 0x10) → EACCES.
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"},
                      {"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_NE"}]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 240, "valueTwo": 16, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["setpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 2, "value": 5, "op": "SCMP_CMP_GT"}]}
        ]
    })))
    .unwrap();
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        // Repeated index → OR: NE 0 OR NE 0xffffffff matches every value.
        if personality(0xffff_ffff) != -1 || personality(0) != -1 {
            return 11;
        }
        let getprio = |which: u64| {
            // SAFETY: getpriority only reads; invalid `which` gives EINVAL.
            let rc = unsafe { libc::syscall(libc::SYS_getpriority, which, 0) };
            if rc < 0 {
                errno()
            } else {
                0
            }
        };
        if getprio(0x13) != libc::EACCES || getprio(0x113) != libc::EACCES {
            return 12;
        }
        if getprio(0) != 0 || getprio(0x23) != libc::EINVAL {
            return 13;
        }
        let setprio = |which: u64, nice: u64| {
            // SAFETY: lowering our own priority (raising nice) is harmless in the child.
            let rc = unsafe { libc::syscall(libc::SYS_setpriority, which, 0, nice) };
            if rc < 0 {
                errno()
            } else {
                0
            }
        };
        // AND: which == 0 and nice > 5.
        if setprio(0, 6) != 7 || setprio(0, 5) != 0 || setprio(1, 6) == 7 {
            return 14;
        }
        0
    });
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn kill_process_and_trap_raise_sigsys() {
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_KILL"] {
        let program = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": action}]
        })))
        .unwrap();
        let status = in_child(|| {
            if install(&program).is_none() {
                return 10;
            }
            // SAFETY: getppid has no arguments.
            unsafe { libc::getppid() };
            0
        });
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "{action}: {status:?}"
        );
    }
}

#[test]
fn log_and_trace_actions() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"},
                     {"names": ["getuid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]
    })))
    .unwrap();
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        // LOG: the syscall runs (and is logged).
        if raw_getppid() <= 0 {
            return 11;
        }
        // TRACE without a tracer: ENOSYS.
        // SAFETY: getuid has no arguments.
        let rc = unsafe { libc::syscall(libc::SYS_getuid) };
        i32::from(rc != -1 || errno() != libc::ENOSYS)
    });
    assert!(exited(status, 0), "{status:?}");
    let trace = libc::SECCOMP_RET_TRACE | 7;
    assert!(program
        .instructions()
        .iter()
        .any(|i| i.code == 0x06 && i.k == trace));
}

#[test]
fn install_without_no_new_privs_or_cap_sys_admin_is_a_clear_error() {
    let program = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    let status = in_child(|| {
        // Drop CAP_SYS_ADMIN from the effective set; no_new_privs stays off.
        if caps::drop(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_ADMIN,
        )
        .is_err()
        {
            return 10;
        }
        match program.install() {
            Err(SeccompError::InstallNotPermitted) => 0,
            other => {
                eprintln!("{other:?}");
                11
            }
        }
    });
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn unknown_names_are_skipped() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall", "getppid"], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap();
    assert_eq!(program.skipped_syscalls(), ["no_such_syscall"]);
    let status = in_child(|| {
        if install(&program).is_none() {
            return 10;
        }
        let rc = raw_getppid();
        i32::from(rc != -1 || errno() != libc::EPERM)
    });
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn flags_map_to_kernel_bits() {
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    })))
    .unwrap();
    assert_eq!(
        p.flags(),
        libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            | libc::SECCOMP_FILTER_FLAG_TSYNC
    );
    let status = in_child(|| i32::from(install(&p).is_none()));
    assert!(exited(status, 0), "kernel accepts the flags: {status:?}");

    let n = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    assert_eq!(
        n.flags(),
        libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
            | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
            | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    );
    let status = in_child(|| i32::from(!matches!(install(&n), Some(Some(_)))));
    assert!(
        exited(status, 0),
        "kernel accepts the notify flags: {status:?}"
    );
}

/// i386 `getpid` (nr 20) through `int 0x80`: the return value or -errno.
fn i386_getpid() -> i64 {
    let mut rax: i64 = 20;
    // SAFETY: int 0x80 runs the i386 getpid, which takes no arguments and
    // only writes eax; the kernel saves every other register.
    unsafe {
        std::arch::asm!("int 0x80", inout("rax") rax, options(nostack));
    }
    // The i386 ABI returns a 32-bit value.
    i64::from(rax as i32)
}

#[test]
fn i386_calls_follow_the_architectures_list() {
    if !std::path::Path::new("/proc/sys/fs/binfmt_misc").exists() {
        // Only a hint; IA32 emulation is what matters, checked below.
    }
    let with = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })))
    .unwrap();
    let without = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })))
    .unwrap();
    // Without a filter, int 0x80 works only with CONFIG_IA32_EMULATION.
    let status = in_child(|| i32::from(i386_getpid() <= 0));
    if !exited(status, 0) {
        eprintln!("SKIPPED: no IA32 emulation on this kernel");
        return;
    }
    let status = in_child(|| {
        if install(&with).is_none() {
            return 10;
        }
        i32::from(i386_getpid() != -1)
    });
    assert!(exited(status, 0), "i386 rule applies: {status:?}");
    let status = in_child(|| {
        if install(&without).is_none() {
            return 10;
        }
        i386_getpid();
        0
    });
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "unlisted arch is killed: {status:?}"
    );
}

/// Receives one message with one fd; returns the payload and the fd.
fn recv_with_fd(sock: RawFd) -> (Vec<u8>, OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!(RawFd);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::empty()).expect("recvmsg");
    let mut fd = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: SCM_RIGHTS gave us a new fd that nothing else owns.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let len = msg.bytes;
    buf.truncate(len);
    (buf, fd.expect("an fd in SCM_RIGHTS"))
}

/// Receives one notification on `notify_fd` from `pid` and answers it with
/// `error` (a negative errno); returns the syscall number.
fn answer_one(notify_fd: &OwnedFd, pid: i32, error: i32) -> i64 {
    // SAFETY: seccomp_notif is plain old data; all-zero is the required input.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV fills `req`, which has the size the ioctl number encodes.
    let rc = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req as *mut libc::seccomp_notif,
        )
    };
    assert_eq!(rc, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    assert_eq!(req.pid as i32, pid);
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error,
        flags: 0,
    };
    // SAFETY: SEND reads `resp`, which has the size the ioctl number encodes.
    let rc = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    };
    assert_eq!(rc, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    i64::from(req.data.nr)
}

#[test]
fn listener_taken_with_pidfd_getfd() {
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/unused",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target =
        std::ffi::CString::new(dir.path().join("d").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: the child only runs the closure below and leaves with _exit.
    let child = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let Some(Some(fd)) = install(&program) else {
                    return 10;
                };
                // Report only the number, as init would over its sync channel.
                if nix::unistd::write(&write_end, &fd.as_raw_fd().to_ne_bytes()).is_err() {
                    return 11;
                }
                // SAFETY: `target` is a valid NUL-terminated path.
                let rc = unsafe { libc::mkdir(target.as_ptr(), 0o755) };
                i32::from(rc != -1 || errno() != libc::EPERM)
            }))
            .unwrap_or(101);
            // SAFETY: ends the child without running the harness.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(write_end);
    let mut number = [0u8; 4];
    nix::unistd::read(&read_end, &mut number).unwrap();
    let notify_fd = take_listener(child.as_raw(), i32::from_ne_bytes(number)).unwrap();
    let nr = answer_one(&notify_fd, child.as_raw(), -libc::EPERM);
    assert!([libc::SYS_mkdir, libc::SYS_mkdirat].contains(&nr));
    let status = waitpid(child, None).unwrap();
    assert!(exited(status, 0), "{status:?}");
}

#[test]
fn notify_listener_is_sent_and_answered() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let program = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock_path,
        "listenerMetadata": "hello",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    assert!(program.wants_listener());
    let target =
        std::ffi::CString::new(dir.path().join("d").into_os_string().into_encoded_bytes()).unwrap();

    // SAFETY: the child only runs the closure below and leaves with _exit.
    let child = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let Some(Some(fd)) = install(&program) else {
                    return 10;
                };
                let mut state = State::default();
                state
                    .set_version("1.3.0".into())
                    .set_id("notify-test".into());
                if let Err(e) = send_listener(
                    program.listener_path().unwrap(),
                    fd.as_fd(),
                    nix::unistd::getpid().as_raw(),
                    &state,
                    program.listener_metadata(),
                ) {
                    eprintln!("{e:?}");
                    return 11;
                }
                drop(fd);
                // SAFETY: `target` is a valid NUL-terminated path.
                let rc = unsafe { libc::mkdir(target.as_ptr(), 0o755) };
                i32::from(rc != -1 || errno() != libc::EROFS)
            }))
            .unwrap_or(101);
            // SAFETY: ends the child without running the harness.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };

    let (stream, _) = listener.accept().unwrap();
    let (payload, notify_fd) = recv_with_fd(stream.as_raw_fd());
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(v["fds"], json!(["seccompFd"]));
    assert_eq!(v["metadata"], "hello");
    assert_eq!(v["pid"], child.as_raw());
    assert_eq!(v["state"]["id"], "notify-test");
    assert_eq!(v["ociVersion"], "1.3.0");

    let nr = answer_one(&notify_fd, child.as_raw(), -libc::EROFS);
    assert!([libc::SYS_mkdir, libc::SYS_mkdirat].contains(&nr));
    let status = waitpid(child, None).unwrap();
    assert!(exited(status, 0), "{status:?}");
}
