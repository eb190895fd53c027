//! Link order of the `rtctr` binary's functions (issue 13, docs/bench.md).
//!
//! A release build of `rtctr` is linked with the toolchain's `rust-lld`, when
//! rustup installed one, which places the functions named in text-order.txt
//! first, in that order: the code that create, start, exec and delete run,
//! as `make text-order` traced it. Unnamed functions follow in the usual
//! order, and names the build no longer has are skipped, so a stale list
//! costs memory, never correctness. `RTCTR_LINK_MAP=FILE` also has lld
//! write its link map there (`make text-order` reads it).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=text-order.txt");
    println!("cargo:rerun-if-env-changed=RTCTR_LINK_MAP");
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    let Some(gcc_ld) = rust_lld_dir() else {
        return;
    };
    let order = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("text-order.txt");
    let mut args = vec![
        "-fuse-ld=lld".to_string(),
        format!("-B{}", gcc_ld.display()),
    ];
    if order.exists() {
        args.push(format!("-Wl,--symbol-ordering-file={}", order.display()));
        args.push("-Wl,--no-warn-symbol-ordering".to_string());
    }
    for arg in args {
        println!("cargo:rustc-link-arg-bin=rtctr={arg}");
    }
    if let Ok(map) = std::env::var("RTCTR_LINK_MAP") {
        println!("cargo:rustc-link-arg-bin=rtctr=-Wl,-Map={map}");
    }
}

/// The directory of rustup's `ld.lld` shim for `cc -fuse-ld=lld`, which runs
/// the toolchain's own `rust-lld` (`<sysroot>/lib/rustlib/<host>/bin/gcc-ld`).
fn rust_lld_dir() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").ok()?;
    let host = std::env::var("HOST").ok()?;
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let dir = PathBuf::from(sysroot.trim()).join(format!("lib/rustlib/{host}/bin/gcc-ld"));
    dir.join("ld.lld").exists().then_some(dir)
}
