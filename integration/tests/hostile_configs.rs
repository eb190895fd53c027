//! Issue 11, "hostile input": every config.json of the fuzz corpus
//! (fuzz/corpus/config/, written by fuzz/seeds.py, plus the inputs the
//! fuzzers found) through the real binary, as `rtctr --root TMP create
//! --bundle B ID` as root. An `ok-*` seed is created (exit 0) and deleted;
//! every other one is refused: exit 1, a message on stderr, no panic, and
//! nothing left in the state root. The fuzz targets cover the same parse
//! and validation in the library, without root and far faster.

use std::path::{Path, PathBuf};

use rtctr_integration::*;

fn config_corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_config_is_created_or_refused_with_a_message() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let files = config_corpus();
    assert!(files.len() >= 20, "only {} seeds", files.len());
    let mut wrong = Vec::new();
    let (mut created, mut refused) = (0, 0);
    for (i, file) in files.iter().enumerate() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        // A bundle whose config.json is the seed, byte for byte, and whose
        // "rootfs" is the busybox tree (the seeds' root.path).
        let b = Bundle::new(&["true"]);
        std::fs::write(b.path().join("config.json"), std::fs::read(file).unwrap()).unwrap();
        std::os::unix::fs::symlink(shared_rootfs(), b.path().join("rootfs")).unwrap();
        let id = format!("hostile-{i}");
        let out = rt.create(&b, &id, &[]);
        let want = if name.starts_with("ok-") { 0 } else { 1 };
        let mut problems = Vec::new();
        if out.code != want {
            problems.push(format!("exit {} (want {want})", out.code));
        }
        if out.stderr.contains("panicked") {
            problems.push("panicked".to_string());
        }
        if out.code != 0 && !out.stderr.trim_start().starts_with("rtctr: ") {
            problems.push("no `rtctr: ` message on stderr".to_string());
        }
        if out.code == 0 {
            created += 1;
            let del = rt.run(&["delete", "--force", &id]);
            if del.code != 0 {
                problems.push(format!("delete --force: {del:?}"));
            }
        } else {
            refused += 1;
        }
        if !rt.ids().is_empty() {
            problems.push(format!("left in the state root: {:?}", rt.ids()));
            rt.run(&["delete", "--force", &id]);
        }
        if !problems.is_empty() {
            wrong.push(format!(
                "{name}: {}; stderr: {}",
                problems.join(", "),
                out.stderr.trim()
            ));
        }
    }
    println!("{created} created and deleted, {refused} refused");
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}
