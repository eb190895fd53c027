//! `reaper CMD ARGS...`: runs CMD as a prompt subreaper would (containerd's
//! shim, conmon): every orphan it inherits is reaped the moment it exits.
//! Exits with CMD's status.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(cmd) = args.next() else {
        eprintln!("usage: reaper CMD [ARGS...]");
        return ExitCode::from(2);
    };
    if let Err(e) = rustix::process::set_child_subreaper(rustix::process::Pid::from_raw(1)) {
        eprintln!("reaper: PR_SET_CHILD_SUBREAPER: {e}");
        return ExitCode::from(1);
    }
    let child = match Command::new(cmd).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("reaper: {e}");
            return ExitCode::from(1);
        }
    };
    let (code, _) = rtctr_integration::reap_until(child.id() as i32);
    ExitCode::from(code.clamp(0, 255) as u8)
}
