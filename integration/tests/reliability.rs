//! Defects found by probing rtctr as an attacker or an unlucky user would:
//! each test fails on the code before its fix.

use rtctr_integration::*;
use serde_json::json;

/// `(uid_t)-1` means "unchanged" to setresuid: a container asking for
/// uid 4294967295 ran as root with the config's capabilities.
#[test]
fn uid_minus_one_is_refused_not_run_as_root() {
    if !require_root() {
        return;
    }
    let rt = Rtctr::new();
    for (field, value) in [
        ("uid", json!(4294967295u32)),
        ("gid", json!(4294967295u32)),
        ("additionalGids", json!([4294967295u32])),
    ] {
        let mut b = Bundle::new(&["id", "-u"]);
        b.edit(|c| c["process"]["user"][field] = value.clone());
        let out = rt.run_bundle(&b, "uid");
        assert_eq!(out.code, 1, "{field}: {out:?}");
        assert!(
            out.stderr.contains(&format!("process.user.{field}"))
                && out.stderr.contains("is out of range (0-2147483647)"),
            "{field}: {out:?}"
        );
        assert_eq!(out.stdout, "", "{field}: the container ran");
        assert!(rt.ids().is_empty());
    }
    // exec --user takes the same check.
    let b = Bundle::new(&["sleep", "60"]);
    rt.create(&b, "uidx", &[]).ok();
    rt.run(&["start", "uidx"]).ok();
    let out = rt.run(&["exec", "--user", "4294967295", "uidx", "id", "-u"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("user.uid: 4294967295 is out of range"),
        "{out:?}"
    );
    assert_eq!(out.stdout, "");
    rt.run(&["delete", "--force", "uidx"]).ok();
}
