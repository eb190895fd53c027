//! `make bench` (issue 12): what image layers cost. Needs root and the
//! release binary (RTCTR_BIN or target/x86_64-unknown-linux-musl/release/rtctr). Prints:
//! - the first and later `rtctr bundle` of one image (later ones read no
//!   layer);
//! - `create` p50/p90 of a plain bundle and of an image bundle (the
//!   overlay mount), interleaved, each followed by `delete`;
//! - the disk used by 100 created containers of one image: the layers
//!   once plus 100 upper dirs, against 100 copies of its rootfs.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rtctr_integration::image::*;
use rtctr_integration::*;
use serde_json::json;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(v: &mut [Duration], p: usize) -> f64 {
    v.sort();
    ms(v[(v.len() - 1) * p / 100])
}

fn du(path: &Path) -> u64 {
    let o = Command::new("du")
        .args(["-s", "--block-size=1"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let rt = Rtctr::new();
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("r");
    make_rootfs(&root);
    let l1 = Tar::new().tree(&root).bytes();
    let l2 = Tar::new().file("etc/motd", b"hi\n", 0o644, 0).bytes();
    let img = Image::write(
        &[(l1, Comp::Gzip), (l2, Comp::Zstd)],
        json!({"Cmd": ["true"]}),
        "bench",
    );
    let image = img.path().to_str().unwrap().to_string();
    let store = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();

    let t = Instant::now();
    bundle(store.path(), &image, &work.path().join("first")).ok();
    println!("bundle, layers unpacked: {:.1} ms", ms(t.elapsed()));
    let mut again = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        bundle(store.path(), &image, &work.path().join(format!("again{i}"))).ok();
        again.push(t.elapsed());
    }
    println!(
        "bundle, layers in the store: p50 {:.1} ms, p90 {:.1} ms (20 runs)",
        pct(&mut again, 50),
        pct(&mut again, 90)
    );

    let plain = Bundle::new(&["true"]);
    let layered = {
        let dir = tempfile::tempdir().unwrap();
        bundle(store.path(), &image, dir.path()).ok();
        as_bundle(dir)
    };
    let (mut tp, mut tl) = (Vec::new(), Vec::new());
    let rounds = 100;
    for i in 0..rounds {
        for (b, times, name) in [(&plain, &mut tp, "p"), (&layered, &mut tl, "l")] {
            let id = format!("bench-{name}{i}");
            let t = Instant::now();
            rt.create(b, &id, &[]).ok();
            times.push(t.elapsed());
            rt.run(&["delete", &id]).ok();
        }
    }
    let (p50p, p50l) = (pct(&mut tp, 50), pct(&mut tl, 50));
    println!(
        "create, plain bundle: p50 {p50p:.2} ms, p90 {:.2} ms; image bundle: p50 {p50l:.2} ms, p90 {:.2} ms; \
         difference of p50s {:.2} ms ({rounds} each, interleaved)",
        pct(&mut tp, 90),
        pct(&mut tl, 90),
        p50l - p50p
    );

    let n = 100;
    let mut bundles = Vec::new();
    for i in 0..n {
        let dir = tempfile::tempdir().unwrap();
        bundle(store.path(), &image, dir.path()).ok();
        let b = as_bundle(dir);
        rt.create(&b, &format!("many{i}"), &[]).ok();
        bundles.push(b);
    }
    let layers = du(&store.path().join("sha256"));
    let uppers = du(&store.path().join("containers"));
    let rootfs = du(&root);
    println!(
        "{n} created containers of one image: layers {} KiB once + {n} container dirs {} KiB \
         ({} KiB each: dirs and layers.json) = {} KiB; {n} copies of its rootfs would be {} KiB",
        layers / 1024,
        uppers / 1024,
        uppers / 1024 / n,
        (layers + uppers) / 1024,
        n * rootfs / 1024
    );
    for i in 0..n {
        rt.run(&["delete", &format!("many{i}")]).ok();
    }
}
