//! Images on disk to running containers (issue 12): `rtctr bundle`
//! unpacks an OCI image layout into the layer store, `create` mounts the
//! overlay of its layers, `delete` removes it. The images are made here:
//! layer tars written with the `tar` crate (gzip, zstd and plain), over a
//! busybox rootfs from bundles/mkrootfs.sh; and by umoci, skopeo and
//! podman over the same rootfs.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use rtctr_integration::image::*;
use rtctr_integration::*;
use serde_json::{json, Value};

/// The container's script: who and where it is, what it sees, then a write.
const SCRIPT: &str = "echo \"before=$(ls /work | tr '\\n' ' ')\"; \
    echo \"uid=$(id -u) gid=$(id -g) groups=$(id -G)\"; echo \"cwd=$(pwd)\"; echo \"foo=$FOO\"; \
    echo \"data=$(ls /data | tr '\\n' ' ')\"; echo \"opq=$(ls /opq | tr '\\n' ' ')\"; \
    cat /layer3; echo mine > /work/mark && echo wrote";

/// Three layers: a busybox rootfs with an `app` user and /data, /opq
/// (gzip); a whiteout of /data/gone, a new /data/new, an opaque /opq and
/// a /work owned by app (zstd); /layer3 (plain).
fn test_image() -> Image {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("r");
    make_rootfs(&root);
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/work:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\napp:x:1002:\nextra:x:1003:app\n",
    )
    .unwrap();
    for d in ["data", "opq"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    for f in ["data/keep", "data/gone", "opq/old1", "opq/old2"] {
        std::fs::write(root.join(f), f).unwrap();
    }
    let l1 = Tar::new().tree(&root).bytes();
    let l2 = Tar::new()
        .file("data/.wh.gone", b"", 0o644, 0)
        .file("data/new", b"new\n", 0o644, 0)
        .dir("opq", 0o755, 0)
        .file("opq/.wh..wh..opq", b"", 0o644, 0)
        .file("opq/fresh", b"fresh\n", 0o644, 0)
        .dir("work", 0o755, 1001)
        .bytes();
    let l3 = Tar::new()
        .file("./layer3", b"third layer\n", 0o644, 0)
        .bytes();
    let config = json!({
        "User": "app", "Env": ["FOO=bar from the image"], "WorkingDir": "/work",
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": [SCRIPT],
        "Labels": {"com.example.role": "test", "rtctr.network": "not-from-an-image"},
    });
    Image::write(
        &[(l1, Comp::Gzip), (l2, Comp::Zstd), (l3, Comp::Plain)],
        config,
        "v1",
    )
}

#[test]
fn two_containers_of_one_image_share_its_layers_and_not_their_writes() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let img = test_image();
    let store = tempfile::tempdir().unwrap();
    let (b1, b2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let image = format!("{}:v1", img.path().display());
    // Two bundles at once: each layer is unpacked once.
    let spawn = |b: &Path| {
        let mut c = bundle_cmd(store.path(), &image, b);
        c.arg("--debug").stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let (c1, c2) = (spawn(b1.path()), spawn(b2.path()));
    let mut unpacked = 0;
    for c in [c1, c2] {
        let o = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{stderr}");
        let n = stderr
            .split(" layers, ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok());
        unpacked += n.expect("the debug line says how many layers were unpacked");
    }
    assert_eq!(unpacked, 3, "each layer unpacked by one of the two bundles");
    let mut hexes: Vec<String> = img.diff_ids.iter().map(|d| d[7..].to_string()).collect();
    hexes.sort();
    assert_eq!(entries(&store.path().join("sha256")), hexes);
    assert_eq!(entries(&store.path().join("tmp")), Vec::<String>::new());

    let config: Value =
        serde_json::from_slice(&std::fs::read(b1.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["annotations"]["rtctr.image.layers"],
        json!(img.diff_ids.join(","))
    );
    assert_eq!(config["annotations"]["com.example.role"], json!("test"));
    assert!(
        config["annotations"].get("rtctr.network").is_none(),
        "{config}"
    );
    assert_eq!(
        config["process"]["user"],
        json!({"uid": 1001, "gid": 1002, "additionalGids": [1003]})
    );

    let (b1, b2) = (as_bundle(b1), as_bundle(b2));
    rt.create(&b1, "img1", &[]).ok();
    rt.create(&b2, "img2", &[]).ok();
    let o1 = overlay_at(&b1.path().join("rootfs")).expect("overlay on bundle 1's rootfs");
    let o2 = overlay_at(&b2.path().join("rootfs")).expect("overlay on bundle 2's rootfs");
    let lowers: Vec<String> = img
        .diff_ids
        .iter()
        .rev()
        .map(|d| {
            store
                .path()
                .join("sha256")
                .join(&d[7..])
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        option(&o1, "lowerdir"),
        Some(lowers.join(":").as_str()),
        "{o1}"
    );
    assert_eq!(option(&o1, "lowerdir"), option(&o2, "lowerdir"));
    let upper1 = store.path().join("containers/img1/upper");
    assert_eq!(option(&o1, "upperdir"), upper1.to_str());

    rt.run(&["start", "img1"]).ok();
    rt.wait_status("img1", "stopped");
    let out = Rtctr::output_of(&b1, "img1");
    let want = "before=\nuid=1001 gid=1002 groups=1002 1003\ncwd=/work\nfoo=bar from the image\n\
        data=keep new \nopq=fresh \nthird layer\nwrote\n";
    assert_eq!(out, want);
    // The write is in the container's upper dir only.
    assert_eq!(
        std::fs::read_to_string(upper1.join("work/mark")).unwrap(),
        "mine\n"
    );
    for hex in &hexes {
        assert!(!store
            .path()
            .join("sha256")
            .join(hex)
            .join("work/mark")
            .exists());
    }
    // The second container does not see it.
    rt.run(&["start", "img2"]).ok();
    rt.wait_status("img2", "stopped");
    assert_eq!(Rtctr::output_of(&b2, "img2"), want);

    for id in ["img1", "img2"] {
        rt.run(&["delete", id]).ok();
    }
    assert_eq!(overlay_at(&b1.path().join("rootfs")), None);
    assert_eq!(overlay_at(&b2.path().join("rootfs")), None);
    assert_eq!(
        entries(&store.path().join("containers")),
        Vec::<String>::new()
    );
    assert_eq!(
        entries(&store.path().join("sha256")),
        hexes,
        "the layers stay"
    );
    // A third bundle reads no layer: the blobs can go.
    for b in &img.blobs {
        std::fs::remove_file(img.blob_path(b)).unwrap();
    }
    let b3 = tempfile::tempdir().unwrap();
    bundle(store.path(), &image, b3.path()).ok();
}

#[test]
fn an_oci_archive_bundles_like_its_layout() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let img = test_image();
    let archive = tempfile::NamedTempFile::new().unwrap();
    let bytes = Tar::new().tree(img.path()).bytes();
    std::fs::write(archive.path(), bytes).unwrap();
    let store = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    bundle(store.path(), archive.path().to_str().unwrap(), b.path()).ok();
    assert_eq!(entries(&store.path().join("sha256")).len(), 3);
    assert_eq!(entries(&store.path().join("tmp")), Vec::<String>::new());
    let b = as_bundle(b);
    rt.create(&b, "arch", &[]).ok();
    rt.run(&["start", "arch"]).ok();
    rt.wait_status("arch", "stopped");
    assert!(Rtctr::output_of(&b, "arch").contains("opq=fresh \nthird layer\n"));
}

/// Nothing made: no layer, no unpack in progress, no config.json.
#[track_caller]
fn assert_nothing_made(store: &Path, bundle: &Path) {
    assert_eq!(entries(&store.join("sha256")), Vec::<String>::new());
    assert_eq!(entries(&store.join("tmp")), Vec::<String>::new());
    assert!(!bundle.join("config.json").exists());
}

#[test]
fn corrupt_truncated_or_mislabelled_blobs_are_refused_by_digest() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let layer = Tar::new()
        .file("hello", &vec![b'x'; 100_000], 0o644, 0)
        .bytes();
    type Damage = fn(&Image) -> String;
    let cases: [(&str, Comp, Damage); 4] = [
        ("a flipped byte", Comp::Gzip, |img| {
            let p = img.blob_path(&img.blobs[0]);
            let mut b = std::fs::read(&p).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0xff;
            std::fs::write(&p, b).unwrap();
            img.blobs[0].clone()
        }),
        ("a truncated blob", Comp::Zstd, |img| {
            let p = img.blob_path(&img.blobs[0]);
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() / 2]).unwrap();
            img.blobs[0].clone()
        }),
        ("a truncated plain tar", Comp::Plain, |img| {
            let p = img.blob_path(&img.blobs[0]);
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() - 1024]).unwrap();
            img.blobs[0].clone()
        }),
        ("a missing blob", Comp::Gzip, |img| {
            std::fs::remove_file(img.blob_path(&img.blobs[0])).unwrap();
            img.blobs[0].clone()
        }),
    ];
    for (what, comp, damage) in cases {
        let img = Image::write(&[(layer.clone(), comp)], json!({"Cmd": ["true"]}), "t");
        let digest = damage(&img);
        let store = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let out = bundle(store.path(), img.path().to_str().unwrap(), b.path());
        assert_eq!(out.code, 1, "{what}: {out:?}");
        assert!(out.stderr.contains(&digest), "{what}: {}", out.stderr);
        assert_nothing_made(store.path(), b.path());
    }
    // A layer whose content is not its config's diff-id.
    let mut img = Image::write(
        &[(layer.clone(), Comp::Gzip)],
        json!({"Cmd": ["true"]}),
        "t",
    );
    let other = Tar::new().file("other", b"x", 0o644, 0).bytes();
    let blob = compress(&other, Comp::Gzip);
    let hex = sha256(&blob);
    std::fs::write(img.path().join("blobs/sha256").join(&hex), &blob).unwrap();
    let manifest_text = std::fs::read_to_string(img.path().join("index.json")).unwrap();
    let index: Value = serde_json::from_str(&manifest_text).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mpath = img.blob_path(&mdigest);
    let m = std::fs::read_to_string(&mpath).unwrap();
    let m = m.replace(&img.blobs[0], &format!("sha256:{hex}")).replace(
        &format!("\"size\":{}", compress(&layer, Comp::Gzip).len()),
        &format!("\"size\":{}", blob.len()),
    );
    let mhex = sha256(m.as_bytes());
    std::fs::write(img.path().join("blobs/sha256").join(&mhex), &m).unwrap();
    let index = manifest_text
        .replace(&mdigest, &format!("sha256:{mhex}"))
        .replace(
            &format!("\"size\":{}", std::fs::metadata(&mpath).unwrap().len()),
            &format!("\"size\":{}", m.len()),
        );
    std::fs::write(img.path().join("index.json"), index).unwrap();
    img.blobs[0] = format!("sha256:{hex}");
    let store = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let out = bundle(store.path(), img.path().to_str().unwrap(), b.path());
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&img.blobs[0]) && out.stderr.contains("diff-id"),
        "{}",
        out.stderr
    );
    assert_nothing_made(store.path(), b.path());
}

#[test]
fn malicious_layers_are_refused_without_writing_outside_the_store() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let out_dir = outside.path().display().to_string();
    std::fs::write(outside.path().join("victim"), "untouched").unwrap();
    use tar::EntryType::{Link, Symlink};
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "dot-dot",
            "../../../../../../../..".to_string() + &out_dir + "/escape",
            {
                Tar::new()
                    .file(
                        &format!("../../../../../../../..{out_dir}/escape"),
                        b"x",
                        0o644,
                        0,
                    )
                    .bytes()
            },
        ),
        ("absolute", format!("{out_dir}/escape"), {
            Tar::new()
                .file(&format!("{out_dir}/escape"), b"x", 0o644, 0)
                .bytes()
        }),
        ("through a symlink", "ln/escape".into(), {
            Tar::new()
                .link(Symlink, "ln", &out_dir)
                .file("ln/escape", b"x", 0o644, 0)
                .bytes()
        }),
        ("through a relative symlink", "up/escape".into(), {
            Tar::new()
                .link(Symlink, "up", "../../../../../../../..")
                .file("up/escape", b"x", 0o644, 0)
                .bytes()
        }),
        ("hard link out", "hl".into(), {
            Tar::new()
                .link(
                    Link,
                    "hl",
                    &format!("../../../../../../../..{out_dir}/victim"),
                )
                .bytes()
        }),
        ("hard link absolute", "hl".into(), {
            Tar::new()
                .link(Link, "hl", &format!("{out_dir}/victim"))
                .bytes()
        }),
        ("hard link through a symlink", "hl".into(), {
            Tar::new()
                .link(Symlink, "ln", &out_dir)
                .link(Link, "hl", "ln/victim")
                .bytes()
        }),
    ];
    for (what, entry, tar) in cases {
        let img = Image::write(&[(tar, Comp::Gzip)], json!({"Cmd": ["true"]}), "t");
        let store = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let out = bundle(store.path(), img.path().to_str().unwrap(), b.path());
        assert_eq!(out.code, 1, "{what}: {out:?}");
        assert!(
            out.stderr.contains(&img.blobs[0]) && out.stderr.contains(&entry),
            "{what}: {}",
            out.stderr
        );
        assert_nothing_made(store.path(), b.path());
        assert_eq!(entries(outside.path()), ["victim"], "{what}");
        let victim = outside.path().join("victim");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1, "{what}");
    }
}

#[test]
fn a_failing_create_leaves_no_overlay_and_no_upper_dir() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let img = Image::write(
        &[(Tar::new().file("f", b"x", 0o644, 0).bytes(), Comp::Plain)],
        json!({"Cmd": ["/f"]}),
        "t",
    );
    let store = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    bundle(store.path(), img.path().to_str().unwrap(), b.path()).ok();
    let mut b = as_bundle(b);
    // A createRuntime hook that fails: after the overlay is mounted.
    b.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}));
    let out = rt.create(&b, "failing", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(overlay_at(&b.path().join("rootfs")), None);
    assert_eq!(
        entries(&store.path().join("containers")),
        Vec::<String>::new()
    );
    assert_eq!(rt.ids(), Vec::<String>::new());

    // Bad annotations: refused by name before anything is made.
    let good = b.config["annotations"].clone();
    for (key, value) in [
        ("rtctr.image.layers", "sha256:../../../etc"),
        ("rtctr.image.layer-store", "relative/store"),
    ] {
        b.edit(|c| {
            c["hooks"] = json!({});
            c["annotations"][key] = json!(value);
        });
        let out = rt.create(&b, "badann", &[]);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.stderr.contains(key), "{}", out.stderr);
        assert_eq!(overlay_at(&b.path().join("rootfs")), None);
        assert_eq!(rt.ids(), Vec::<String>::new());
        b.edit(|c| c["annotations"] = good.clone());
    }
    // A layer gone from the store: refused by name before anything is made.
    b.edit(|c| c["hooks"] = json!({}));
    let hex = &img.diff_ids[0][7..];
    std::fs::remove_dir_all(store.path().join("sha256").join(hex)).unwrap();
    let out = rt.create(&b, "nolayer", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(&img.diff_ids[0]), "{}", out.stderr);
    assert_eq!(overlay_at(&b.path().join("rootfs")), None);
    assert_eq!(
        entries(&store.path().join("containers")),
        Vec::<String>::new()
    );
    assert_eq!(rt.ids(), Vec::<String>::new());
}

#[test]
fn delete_force_of_a_running_image_container_unmounts_it() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let img = test_image();
    let store = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    bundle(store.path(), img.path().to_str().unwrap(), b.path()).ok();
    let mut b = as_bundle(b);
    b.edit(|c| c["process"]["args"] = json!(["sleep", "100"]));
    rt.create(&b, "running", &[]).ok();
    rt.run(&["start", "running"]).ok();
    rt.wait_status("running", "running");
    assert!(overlay_at(&b.path().join("rootfs")).is_some());
    // root.path is busy: a second container of this bundle is refused.
    let out = rt.create(&b, "second", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("root.path"), "{}", out.stderr);
    rt.run(&["delete", "--force", "running"]).ok();
    assert_eq!(overlay_at(&b.path().join("rootfs")), None);
    assert_eq!(
        entries(&store.path().join("containers")),
        Vec::<String>::new()
    );
}

#[test]
fn owners_modes_xattrs_times_links_and_nodes_are_kept() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    // VFS_CAP_REVISION_2, cap_net_raw (bit 13) permitted.
    let cap: &[u8] = &[
        0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let layer = Tar::new()
        .dir("bin", 0o755, 0)
        .pax(&[
            ("SCHILY.xattr.security.capability", cap),
            ("SCHILY.xattr.user.note", b"kept"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ])
        .file("bin/ping", b"#!/bin/sh\n", 0o4755, 5)
        .link(tar::EntryType::Link, "bin/ping2", "bin/ping")
        .link(tar::EntryType::Symlink, "bin/sh", "busybox")
        .node(tar::EntryType::Char, "dev/null", 1, 3, 0o666)
        .node(tar::EntryType::Fifo, "run/fifo", 0, 0, 0o600)
        .file("dup", b"first", 0o644, 0)
        .file("dup", b"second", 0o600, 0)
        .bytes();
    let img = Image::write(&[(layer, Comp::Zstd)], json!({"Cmd": ["true"]}), "t");
    let store = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    bundle(store.path(), img.path().to_str().unwrap(), b.path()).ok();
    let l = store.path().join("sha256").join(&img.diff_ids[0][7..]);
    let ping = std::fs::symlink_metadata(l.join("bin/ping")).unwrap();
    assert_eq!(
        (ping.uid(), ping.gid(), ping.mode() & 0o7777),
        (5, 5, 0o4755)
    );
    assert_eq!(ping.mtime(), MTIME as i64);
    let ping2 = std::fs::symlink_metadata(l.join("bin/ping2")).unwrap();
    assert_eq!((ping.ino(), ping.nlink()), (ping2.ino(), 2));
    let mut buf = [0u8; 64];
    let n = rustix::fs::getxattr(l.join("bin/ping"), "security.capability", &mut buf).unwrap();
    assert_eq!(&buf[..n], cap);
    let n = rustix::fs::getxattr(l.join("bin/ping"), "user.note", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"kept");
    // overlay's own xattrs are not taken from an image.
    let redirect = rustix::fs::getxattr(l.join("bin/ping"), "trusted.overlay.redirect", &mut buf);
    assert_eq!(redirect, Err(rustix::io::Errno::NODATA));
    assert_eq!(
        std::fs::read_link(l.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let null = std::fs::symlink_metadata(l.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o777),
        (rustix::fs::makedev(1, 3), 0o666)
    );
    assert!(std::fs::symlink_metadata(l.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    // A later entry of the same name replaces the earlier.
    assert_eq!(std::fs::read_to_string(l.join("dup")).unwrap(), "second");
    assert_eq!(
        std::fs::metadata(l.join("dup")).unwrap().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_device_node_the_host_forbids_fails_the_layer() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    // In a user namespace of its own, rtctr may not mknod a block device.
    let layer = Tar::new()
        .node(tar::EntryType::Block, "dev/sda", 8, 0, 0o660)
        .bytes();
    let img = Image::write(&[(layer, Comp::Plain)], json!({"Cmd": ["true"]}), "t");
    let store = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let o = Command::new("unshare")
        .args(["--user", "--map-root-user"])
        .arg(rtctr_bin())
        .arg("--layer-store")
        .arg(store.path())
        .args(["bundle", "--image", img.path().to_str().unwrap()])
        .arg(b.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&img.blobs[0])
            && stderr.contains("\"dev/sda\"")
            && stderr.contains("device node"),
        "{stderr}"
    );
    assert_nothing_made(store.path(), b.path());
}

fn layers_json(store: &Path) -> Vec<Value> {
    let o = Command::new(rtctr_bin())
        .arg("--layer-store")
        .arg(store)
        .args(["layers", "ls", "--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&o.stdout).unwrap()
}

fn prune(store: &Path, all: bool) -> String {
    let mut c = Command::new(rtctr_bin());
    c.arg("--layer-store").arg(store).args(["layers", "prune"]);
    if all {
        c.arg("--all");
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn layers_ls_shows_users_and_prune_keeps_what_is_used() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let img = test_image();
    let other = Image::write(
        &[(
            Tar::new().file("only-here", b"x", 0o644, 0).bytes(),
            Comp::Gzip,
        )],
        json!({"Cmd": ["true"]}),
        "other",
    );
    let store = tempfile::tempdir().unwrap();
    let (b1, b2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    bundle(
        store.path(),
        &format!("{}:v1", img.path().display()),
        b1.path(),
    )
    .ok();
    bundle(
        store.path(),
        &format!("{}:other", other.path().display()),
        b2.path(),
    )
    .ok();
    let b1 = as_bundle(b1);
    rt.create(&b1, "user1", &[]).ok();
    // A container dir whose container is gone (as after a reboot).
    let ghost = store.path().join("containers/ghost");
    std::fs::create_dir_all(ghost.join("upper")).unwrap();
    std::fs::write(
        ghost.join("layers.json"),
        json!({"layers": [img.diff_ids[0]], "state": "/nonexistent/ghost"}).to_string(),
    )
    .unwrap();

    let ls = layers_json(store.path());
    assert_eq!(ls.len(), 4, "{ls:?}");
    for l in &ls {
        let d = l["digest"].as_str().unwrap();
        assert!(l["size"].as_u64().unwrap() > 0, "{l}");
        if img.diff_ids.iter().any(|i| i == d) {
            assert_eq!(l["images"], json!(["v1"]), "{l}");
            assert_eq!(l["containers"], json!(["user1"]), "{l}");
        } else {
            assert_eq!(d, other.diff_ids[0]);
            assert_eq!(
                (&l["images"], &l["containers"]),
                (&json!(["other"]), &json!([]))
            );
        }
    }
    // Kept images keep their layers; the stale dir goes.
    let out = prune(store.path(), false);
    assert!(
        out.contains("stale container ghost") && out.contains("0 layers removed"),
        "{out}"
    );
    assert!(!ghost.exists());
    assert_eq!(layers_json(store.path()).len(), 4);
    // Without the images, only the live container's layers stay.
    let out = prune(store.path(), true);
    assert!(
        out.contains(&format!("removed layer {}", other.diff_ids[0])),
        "{out}"
    );
    let mut left: Vec<String> = entries(&store.path().join("sha256"));
    let mut want: Vec<String> = img.diff_ids.iter().map(|d| d[7..].to_string()).collect();
    left.sort();
    want.sort();
    assert_eq!(left, want);
    rt.run(&["start", "user1"]).ok();
    rt.wait_status("user1", "stopped");
    assert!(Rtctr::output_of(&b1, "user1").ends_with("wrote\n"));
    rt.run(&["delete", "user1"]).ok();
    let out = prune(store.path(), true);
    assert!(out.contains("3 layers removed"), "{out}");
    assert_eq!(entries(&store.path().join("sha256")), Vec::<String>::new());
    assert_eq!(entries(&store.path().join("tmp")), Vec::<String>::new());
}

#[test]
fn an_interrupted_unpack_is_never_taken_for_a_layer() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let big = vec![7u8; 1 << 20];
    let layer = Tar::new()
        .file("a", &big, 0o644, 0)
        .file("b", &big, 0o644, 0)
        .bytes();
    let img = Image::write(
        &[(layer.clone(), Comp::Plain)],
        json!({"Cmd": ["true"]}),
        "t",
    );
    // The blob is a fifo: the test feeds half of it, then kills rtctr.
    let blob = img.blob_path(&img.blobs[0]);
    std::fs::remove_file(&blob).unwrap();
    let fifo = rustix::fs::FileType::Fifo;
    rustix::fs::mknodat(rustix::fs::CWD, &blob, fifo, 0o600.into(), 0).unwrap();
    let store = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut child = bundle_cmd(store.path(), img.path().to_str().unwrap(), b.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut feed = std::fs::OpenOptions::new().write(true).open(&blob).unwrap();
    std::io::Write::write_all(&mut feed, &layer[..layer.len() / 2]).unwrap();
    let partial = store.path().join("tmp").join(&img.diff_ids[0][7..]);
    let started = wait_for(std::time::Duration::from_secs(10), || {
        partial.join("b").exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    drop(feed);
    assert!(started, "the unpack never reached the second file");
    assert!(partial.exists(), "the killed unpack's dir is left in tmp/");
    assert_eq!(entries(&store.path().join("sha256")), Vec::<String>::new());
    // The next bundle removes the leftover and unpacks the whole layer.
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, &layer).unwrap();
    bundle(store.path(), img.path().to_str().unwrap(), b.path()).ok();
    assert_eq!(entries(&store.path().join("tmp")), Vec::<String>::new());
    let dir = store.path().join("sha256").join(&img.diff_ids[0][7..]);
    assert_eq!(std::fs::read(dir.join("b")).unwrap(), big);
}

/// Runs a tool, failing the test with its stderr if it fails.
#[track_caller]
fn tool(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Images as the tools write them: a two-layer image made with umoci (its
/// second layer deletes one file and adds one, so umoci writes the
/// whiteout), copied by skopeo to zstd layers and to an oci-archive.
/// `make deps` installs both.
#[test]
fn images_made_by_umoci_and_skopeo_run() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    if Command::new("umoci").arg("--version").output().is_err()
        || Command::new("skopeo").arg("--version").output().is_err()
    {
        rtctr_test_support::loud("SKIPPED: umoci or skopeo missing (make deps installs them)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = |p: &str| work.path().join(p).display().to_string();
    let (img, unpacked) = (w("img"), w("unpacked"));
    let tagged = format!("{img}:t");
    tool(&["umoci", "init", "--layout", &img]);
    tool(&["umoci", "new", "--image", &tagged]);
    tool(&["umoci", "unpack", "--image", &tagged, &unpacked]);
    let rootfs = work.path().join("unpacked/rootfs");
    make_rootfs(&rootfs);
    std::fs::create_dir(rootfs.join("data")).unwrap();
    std::fs::write(rootfs.join("data/keep"), "keep\n").unwrap();
    std::fs::write(rootfs.join("data/gone"), "gone\n").unwrap();
    tool(&["umoci", "repack", "--image", &tagged, &unpacked]);
    let script = "ls /data; cat /data/new; id -un; pwd; echo $FOO";
    tool(&[
        "umoci",
        "config",
        "--image",
        &tagged,
        "--config.entrypoint",
        "sh",
        "--config.cmd",
        "-c",
        "--config.cmd",
        script,
        "--config.user",
        "user",
        "--config.workingdir",
        "/home/user",
        "--config.env",
        "FOO=from umoci",
    ]);
    std::fs::remove_dir_all(&unpacked).unwrap();
    tool(&["umoci", "unpack", "--image", &tagged, &unpacked]);
    std::fs::remove_file(rootfs.join("data/gone")).unwrap();
    std::fs::write(rootfs.join("data/new"), "new\n").unwrap();
    tool(&["umoci", "repack", "--image", &tagged, &unpacked]);
    let zstd = format!("oci:{}:t", w("zstd"));
    tool(&[
        "skopeo",
        "copy",
        "--dest-compress-format",
        "zstd",
        &format!("oci:{tagged}"),
        &zstd,
    ]);
    let archive = w("image.tar");
    tool(&[
        "skopeo",
        "copy",
        &format!("oci:{tagged}"),
        &format!("oci-archive:{archive}:t"),
    ]);

    let store = tempfile::tempdir().unwrap();
    let want = "keep\nnew\nnew\nuser\n/home/user\nfrom umoci\n";
    for (i, image) in [tagged.clone(), format!("{}:t", w("zstd")), archive]
        .iter()
        .enumerate()
    {
        let b = tempfile::tempdir().unwrap();
        bundle(store.path(), image, b.path()).ok();
        let b = as_bundle(b);
        let id = format!("tool{i}");
        rt.create(&b, &id, &[]).ok();
        rt.run(&["start", &id]).ok();
        rt.wait_status(&id, "stopped");
        assert_eq!(Rtctr::output_of(&b, &id), want, "{image}");
        rt.run(&["delete", &id]).ok();
    }
    // gzip layers (umoci, and the archive of them) once, zstd ones once:
    // the same diff-ids, so two layers in all.
    assert_eq!(entries(&store.path().join("sha256")).len(), 2);
}

/// A private podman: its own storage (vfs, so no mounts), run and tmp
/// dirs, containers.conf and storage.conf (CONTAINERS_CONF and
/// CONTAINERS_STORAGE_CONF: then the only ones it reads) in a temp dir,
/// so the test uses neither the host's podman images nor its settings, and
/// changes nothing of them. Its images are removed at drop.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("rtctr-podman-")
            .tempdir()
            .unwrap();
        // No systemd needed. RUN steps get a low RLIMIT_NOFILE, which a
        // host without CAP_SYS_RESOURCE can always give (docs/engines.md).
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\"]\n\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{d}/run\"\ngraphroot = \"{d}/storage\"\n"
            ),
        )
        .unwrap();
        Podman { dir }
    }

    fn path(&self, p: &str) -> String {
        self.dir.path().join(p).display().to_string()
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        let d = self.dir.path();
        Command::new("timeout")
            .args(["-k", "5", "120", "podman"])
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs podman, failing the test with its stderr if it fails; its stdout.
    #[track_caller]
    fn run(&self, args: &[&str]) -> String {
        let o = self.cmd(args);
        assert!(
            o.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rmi", "--all", "--force"]);
    }
}

/// The media types of the layers of the image tagged `tag` in `layout`.
fn layer_media_types(layout: &str, tag: &str) -> Vec<String> {
    let read = |p: &str| -> Value {
        serde_json::from_slice(&std::fs::read(Path::new(layout).join(p)).unwrap()).unwrap()
    };
    let index = read("index.json");
    let m = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == json!(tag))
        .unwrap_or_else(|| panic!("{layout}: no manifest tagged {tag}: {index}"));
    let digest = m["digest"].as_str().unwrap();
    let manifest = read(&format!("blobs/sha256/{}", &digest[7..]));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

/// The podman image's command (its CMD, run by ENTRYPOINT `sh -c`).
const PODMAN_SCRIPT: &str =
    "ls /data; cat /data/new; id -un; id -u; pwd; echo $FOO; echo before=$(ls); echo mine > mark && echo wrote";

/// Images made by podman, as issue 12 asks: a busybox rootfs `podman
/// import`ed, then `podman build --runtime runc` of a second layer that
/// deletes one file (podman writes the whiteout) and adds one, with ENV,
/// WORKDIR, USER, ENTRYPOINT and CMD; `podman save --format oci-dir`
/// (gzip layers) bundled twice, `--uncompressed`, and `podman push
/// --compression-format zstd` into a layout of two images, picked by
/// podman's ref name (`localhost/NAME:TAG`). `make deps` installs podman.
#[test]
fn images_made_by_podman_run() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    for t in ["podman", "runc"] {
        if Command::new(t).arg("--version").output().is_err() {
            rtctr_test_support::loud(&format!("SKIPPED: {t} missing (make deps installs it)"));
            return;
        }
    }
    let pm = Podman::new();
    let rootfs = pm.dir.path().join("rootfs");
    make_rootfs(&rootfs);
    std::fs::create_dir(rootfs.join("data")).unwrap();
    std::fs::write(rootfs.join("data/keep"), "keep\n").unwrap();
    std::fs::write(rootfs.join("data/gone"), "gone\n").unwrap();
    let base_tar = pm.path("rootfs.tar");
    tool(&["tar", "-C", &pm.path("rootfs"), "-cf", &base_tar, "."]);
    let (base, two) = ("localhost/rtctr-base:latest", "localhost/rtctr-two:latest");
    pm.run(&["import", "-q", &base_tar, base]);
    let ctx = pm.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM {base}\nRUN rm /data/gone && echo new > /data/new\nENV FOO=\"from podman\"\n\
             WORKDIR /home/user\nUSER user\nENTRYPOINT [\"sh\", \"-c\"]\nCMD [\"{PODMAN_SCRIPT}\"]\n"
        ),
    )
    .unwrap();
    let ctx = ctx.to_str().unwrap();
    let build = [
        "build",
        "-q",
        "--runtime",
        "runc",
        "--pull=never",
        "--network",
        "none",
    ];
    pm.run(&[&build[..], &["-t", two, ctx]].concat());
    let diff_ids: Vec<String> = pm
        .run(&[
            "image",
            "inspect",
            "-f",
            "{{range .RootFS.Layers}}{{.}} {{end}}",
            two,
        ])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(diff_ids.len(), 2, "podman made two layers: {diff_ids:?}");
    let (gzip, plain, more) = (pm.path("oci"), pm.path("plain"), pm.path("more"));
    pm.run(&["save", "-q", "--format", "oci-dir", "-o", &gzip, two]);
    pm.run(&[
        "save",
        "-q",
        "--format",
        "oci-dir",
        "--uncompressed",
        "-o",
        &plain,
        two,
    ]);
    pm.run(&["push", "-q", base, &format!("oci:{more}:{base}")]);
    let zstd_tag = "localhost/rtctr-two:zstd";
    pm.run(&[
        "push",
        "-q",
        "--compression-format",
        "zstd",
        two,
        &format!("oci:{more}:{zstd_tag}"),
    ]);
    pm.run(&["rmi", "--all", "--force"]);
    assert_eq!(pm.run(&["images", "-q"]), "");
    for (layout, tag, media) in [
        (&gzip, two, "tar+gzip"),
        (&plain, two, "tar"),
        (&more, zstd_tag, "tar+zstd"),
    ] {
        let want = format!("application/vnd.oci.image.layer.v1.{media}");
        assert_eq!(
            layer_media_types(layout, tag),
            [want.as_str(), &want],
            "{layout}"
        );
    }

    // The gzip layout, bundled twice: two containers.
    let store = tempfile::tempdir().unwrap();
    let (b1, b2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    bundle(store.path(), &gzip, b1.path()).ok();
    bundle(store.path(), &gzip, b2.path()).ok();
    let mut hexes: Vec<String> = diff_ids.iter().map(|d| d[7..].to_string()).collect();
    hexes.sort();
    assert_eq!(
        entries(&store.path().join("sha256")),
        hexes,
        "one directory per layer"
    );
    let (b1, b2) = (as_bundle(b1), as_bundle(b2));
    assert_eq!(
        b1.config["process"]["user"],
        json!({"uid": 1000, "gid": 1000})
    );
    assert_eq!(
        b1.config["annotations"]["org.opencontainers.image.ref.name"],
        json!(two)
    );
    rt.create(&b1, "pm1", &[]).ok();
    rt.create(&b2, "pm2", &[]).ok();
    let want = "keep\nnew\nnew\nuser\n1000\n/home/user\nfrom podman\nbefore=\nwrote\n";
    rt.run(&["start", "pm1"]).ok();
    rt.wait_status("pm1", "stopped");
    assert_eq!(Rtctr::output_of(&b1, "pm1"), want);
    let upper1 = store.path().join("containers/pm1/upper");
    assert_eq!(
        std::fs::read_to_string(upper1.join("home/user/mark")).unwrap(),
        "mine\n"
    );
    // The second container does not see the first one's write.
    rt.run(&["start", "pm2"]).ok();
    rt.wait_status("pm2", "stopped");
    assert_eq!(Rtctr::output_of(&b2, "pm2"), want);
    for (id, b) in [("pm1", &b1), ("pm2", &b2)] {
        rt.run(&["delete", id]).ok();
        assert_eq!(overlay_at(&b.path().join("rootfs")), None);
        assert!(!host_mounts_mention(&b.path().join("rootfs")), "{id}");
    }
    assert!(!host_mounts_mention(store.path()));
    assert_eq!(
        entries(&store.path().join("containers")),
        Vec::<String>::new()
    );

    // Plain layers, and zstd ones picked by podman's ref name among two
    // images: the same diff-ids, so no new layer directory.
    for (i, image) in [plain, format!("{more}:{zstd_tag}")].iter().enumerate() {
        let b = tempfile::tempdir().unwrap();
        bundle(store.path(), image, b.path()).ok();
        let b = as_bundle(b);
        let id = format!("pm-variant{i}");
        rt.create(&b, &id, &[]).ok();
        rt.run(&["start", &id]).ok();
        rt.wait_status(&id, "stopped");
        assert_eq!(Rtctr::output_of(&b, &id), want, "{image}");
        rt.run(&["delete", &id]).ok();
    }
    assert_eq!(entries(&store.path().join("sha256")), hexes);
    assert!(!host_mounts_mention(pm.dir.path()));
}
