//! The checks behind rtctr's fuzz targets (issue 11, "hostile input").
//!
//! Each target is one function of this crate, called by a libFuzzer binary
//! in `fuzz_targets/` (`cargo fuzz run TARGET`) and by the corpus replay
//! test in `tests/corpus.rs` (plain `cargo test`, any stable toolchain):
//!
//! - [`config`]: `config.json` bytes through `spec::parse` and
//!   `spec::validate`, then what `create` plans from a valid config before
//!   anything exists, as far as it is public: the seccomp program, the
//!   cgroup directories for `linux.cgroupsPath`, the device rules, the
//!   resource writes (planned against fake cgroup directories, where every
//!   write fails or lands in /dev/null), the network annotations.
//! - [`process`]: the `exec --process FILE` path
//!   (`commands::exec::build_process`, which reads the file and runs
//!   `spec::validate_process`).
//! - [`seccomp`]: an OCI `linux.seccomp` object as JSON through
//!   `seccomp::compile`.
//! - [`seccomp_gen`]: the same compiler on profiles built from the fuzzer's
//!   bytes with `arbitrary` (real syscall names, argument rules, every
//!   action): deep paths that JSON mutation rarely reaches.
//!
//! A target panics only when rtctr misbehaves: a panic inside rtctr, an
//! error without a message, or a broken invariant — a seccomp program that
//! is longer than `MAX_INSNS`, that the kernel's checker would refuse, or
//! that answers a syscall otherwise than the profile says; a cgroup
//! directory outside its hierarchy. Nothing is installed or created: the
//! seccomp programs run in a small interpreter ([`bpf`]).

pub mod bpf;
mod cgroups;
pub mod seccomp;

use std::path::PathBuf;

use oci_spec::runtime::Spec;
use rtctr::commands::exec::{build_process, ExecOptions};
use rtctr::spec::{self, SpecError};

pub use seccomp::{seccomp, seccomp_gen};

/// What rtctr made of an input, for the replay test's expectations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by every check the target runs.
    Accepted,
    /// Refused, with this message.
    Refused(String),
}

/// The `config` target.
pub fn config(data: &[u8]) {
    check_config(data);
}

/// The `process` target.
pub fn process(data: &[u8]) {
    check_process(data);
}

/// `config.json` bytes: parse, validate, then the public parts of what
/// `create` plans before anything exists.
pub fn check_config(data: &[u8]) -> Outcome {
    let spec = match spec::parse(data) {
        Ok(spec) => spec,
        Err((path, msg)) => {
            // The path may be blank: an unknown key " " is named " ".
            assert!(
                !path.is_empty() && !msg.trim().is_empty(),
                "parse error without a JSON path or a message: {path:?}: {msg:?}"
            );
            return Outcome::Refused(format!("{path}: {msg}"));
        }
    };
    let config = match spec::validate(spec) {
        Ok(config) => config,
        Err(e) => return Outcome::Refused(spec_message(&e)),
    };
    // What `ValidProcess` promises its users (process is optional at create).
    if let Some(process) = &config.process {
        assert!(!process.argv().is_empty() && !process.program().is_empty());
        assert!(process.cwd().is_absolute(), "{:?}", process.cwd());
    }
    let mut refusals = Vec::new();
    if let Some(profile) = config.linux.seccomp() {
        if let Err(msg) = seccomp::check_compile(profile) {
            refusals.push(msg);
        }
    }
    cgroups::check(&config.linux, &mut refusals);
    // The network annotations, as `create` checks them before it forks.
    let annotations = config.spec.annotations().clone().unwrap_or_default();
    if let Err(e) = rtctr_hooks::Request::from_annotations("fuzz", 0, &annotations) {
        refusals.push(message(&e));
    }
    if refusals.is_empty() {
        Outcome::Accepted
    } else {
        Outcome::Refused(refusals.join("; "))
    }
}

/// `exec --process FILE` with `data` as the file, through the code `exec`
/// runs (`build_process`: read, deserialize, `validate_process`).
pub fn check_process(data: &[u8]) -> Outcome {
    let path = scratch_path("process.json");
    std::fs::write(&path, data).expect("write the scratch process file");
    let opts = ExecOptions {
        process: Some(path.clone()),
        ..ExecOptions::default()
    };
    let result = build_process(&Spec::default(), &opts);
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(p) => {
            assert!(!p.argv().is_empty() && !p.program().is_empty());
            assert!(p.cwd().is_absolute(), "{:?}", p.cwd());
            Outcome::Accepted
        }
        Err(e) => {
            let msg = message(&e);
            // The user must learn which file is wrong.
            assert!(
                msg.contains(&path.display().to_string()),
                "error does not name the file {}: {msg}",
                path.display()
            );
            Outcome::Refused(msg)
        }
    }
}

/// The message of a config error, checked: it names the field.
fn spec_message(e: &SpecError) -> String {
    let named = match e {
        SpecError::Invalid { file, path, msg } => {
            !file.is_empty() && !path.trim().is_empty() && !msg.trim().is_empty()
        }
        SpecError::Parse { path, msg, .. } => !path.trim().is_empty() && !msg.trim().is_empty(),
        SpecError::Read { .. } => true,
    };
    assert!(named, "config error without a field or a message: {e:?}");
    message(e)
}

/// An error's text with its causes, as rtctr prints it; never empty.
pub fn message(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        // As the binary prints it: a cause the text already says is left out.
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    assert!(!text.trim().is_empty(), "error without a message: {e:?}");
    text
}

/// A file name private to this process and thread (the replay test runs
/// targets on several threads; libFuzzer on one).
fn scratch_path(name: &str) -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    std::env::temp_dir().join(format!("rtctr-fuzz-{}-{thread}-{name}", std::process::id()))
}
