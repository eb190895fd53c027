//! Helpers shared by the test suites of the workspace: the runtime's unit
//! tests, `rtctr-cgroups` and `rtctr-hooks` integration tests, and
//! `rtctr-integration`.
//!
//! This crate is only ever a `[dev-dependencies]` entry (or a dependency of
//! the unpublished `rtctr-integration`): nothing shipped links it.

#![deny(unsafe_code)]

use std::io::Write as _;

/// What a test that needs root does, given who runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootCheck {
    /// Root: run the test.
    Run,
    /// Not root, outside CI: skip, saying so loudly.
    Skip,
    /// Not root under CI: fail, since CI runs as root and a skipped test
    /// would hide a failure.
    Fail,
}

/// The decision of [`require_root`]: `euid` is the effective uid (`None`
/// when it cannot be read), `ci` whether the `CI` variable is set.
pub fn decide(euid: Option<u32>, ci: bool) -> RootCheck {
    match (euid, ci) {
        (Some(0), _) => RootCheck::Run,
        (_, false) => RootCheck::Skip,
        (_, true) => RootCheck::Fail,
    }
}

/// The effective uid, from the second field of `Uid:` in /proc/self/status.
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Writes a line to stderr past libtest's output capture, so a skip shows
/// without `--nocapture`.
pub fn loud(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// The running test's name (libtest names each test's thread after it).
fn test_name() -> String {
    match std::thread::current().name() {
        Some(n) if n != "main" => n.to_string(),
        _ => "this test".to_string(),
    }
}

/// For a test that needs root: true when it may run. Otherwise, with the
/// `CI` environment variable set it panics (CI runs as root, so a skip
/// there would hide a failure); without it, it prints a loud
/// `SKIPPED: <test> needs root (<why>)` and returns false.
///
/// ```text
/// if !require_root("creates cgroups") {
///     return;
/// }
/// ```
#[track_caller]
pub fn require_root(why: &str) -> bool {
    let euid = effective_uid();
    let who = euid.map_or_else(|| "unknown euid".to_string(), |u| format!("euid {u}"));
    match decide(euid, std::env::var_os("CI").is_some()) {
        RootCheck::Run => true,
        RootCheck::Skip => {
            loud(&format!(
                "SKIPPED: {} needs root ({why}); running as {who}",
                test_name()
            ));
            false
        }
        RootCheck::Fail => panic!(
            "{} needs root ({why}) but runs as {who} with CI set: CI must run the tests \
             as root, a skipped test would hide a failure",
            test_name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_runs_everywhere() {
        assert_eq!(decide(Some(0), false), RootCheck::Run);
        assert_eq!(decide(Some(0), true), RootCheck::Run);
    }

    #[test]
    fn non_root_skips_outside_ci_and_fails_in_ci() {
        assert_eq!(decide(Some(1000), false), RootCheck::Skip);
        assert_eq!(decide(Some(1000), true), RootCheck::Fail);
        assert_eq!(decide(None, false), RootCheck::Skip);
        assert_eq!(decide(None, true), RootCheck::Fail);
    }

    #[test]
    fn reads_the_effective_uid() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(status.contains("Uid:"));
        assert!(effective_uid().is_some());
    }
}
