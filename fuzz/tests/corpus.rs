//! Replays every file of fuzz/corpus/<target>/ through its target, on any
//! stable toolchain and without libFuzzer: no input may crash a target,
//! `ok-*` seeds must be accepted, and `bad-*` seeds of the targets that
//! see the whole path (`process`, `seccomp`) must be refused. (`config`'s
//! `bad-*` seeds may fail only later, in `rtctr create`:
//! integration/tests/hostile_configs.rs runs them through the binary.)

use std::path::{Path, PathBuf};

use rtctr_fuzz::{check_config, check_process, seccomp, Outcome};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Runs `check` on every seed of `target` and checks the naming rule.
fn replay(target: &str, check: fn(&[u8]) -> Outcome, bad_are_refused: bool) {
    let mut counts = [0usize; 2];
    for (name, data) in corpus(target) {
        let outcome = check(&data);
        match &outcome {
            Outcome::Accepted => counts[0] += 1,
            Outcome::Refused(_) => counts[1] += 1,
        }
        if name.starts_with("ok-") {
            assert_eq!(outcome, Outcome::Accepted, "{target}/{name}");
        }
        if name.starts_with("bad-") && bad_are_refused {
            assert!(
                matches!(outcome, Outcome::Refused(_)),
                "{target}/{name} was accepted"
            );
        }
    }
    println!("{target}: {} accepted, {} refused", counts[0], counts[1]);
}

#[test]
fn config_corpus() {
    replay("config", check_config, false);
}

#[test]
fn process_corpus() {
    replay("process", check_process, true);
}

#[test]
fn seccomp_corpus() {
    replay("seccomp", seccomp::check_seccomp_json, true);
}

#[test]
fn seccomp_gen_corpus() {
    replay(
        "seccomp_gen",
        |data| {
            rtctr_fuzz::seccomp_gen(data);
            Outcome::Accepted
        },
        false,
    );
}

/// The config seeds that rtctr refuses before `create` touches anything
/// say which field is wrong.
#[test]
fn config_refusals_name_the_field() {
    for (name, want) in [
        ("bad-oci-version-2.json", "ociVersion"),
        ("bad-cwd-relative.json", "process.cwd"),
        ("bad-uid-max.json", "process.user.uid"),
        ("bad-cap-unknown.json", "CAP_TEST"),
        ("bad-namespace-duplicate.json", "linux.namespaces[6].type"),
        ("bad-sysctl-host.json", "linux.sysctl.kernel.panic"),
        ("bad-args-not-array.json", "process.args"),
        ("bad-seccomp-too-large.json", "BPF instructions"),
        ("bad-cgroups-path-dotdot.json", "cgroupsPath"),
        ("bad-swappiness-above-100.json", "swappiness"),
        ("bad-device-access-x.json", "devices.access"),
        ("bad-unified-key-escape.json", "not a cgroup file name"),
    ] {
        let (_, data) = corpus("config")
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no seed {name}"));
        match check_config(&data) {
            Outcome::Refused(msg) => assert!(msg.contains(want), "{name}: {msg}"),
            Outcome::Accepted => panic!("{name} accepted"),
        }
    }
}
