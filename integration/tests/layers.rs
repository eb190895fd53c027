//! Images on disk to running containers (issue 12): `rtctr bundle`
//! unpacks an OCI image layout into the layer store, `create` mounts the
//! overlay of its layers, `delete` removes it. The images are made here:
//! layer tars written with the `tar` crate (gzip, zstd and plain), over a
//! busybox rootfs from bundles/mkrootfs.sh.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rtctr_integration::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const MTIME: u64 = 1_600_000_000;

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Clone, Copy)]
enum Comp {
    Plain,
    Gzip,
    Zstd,
}

/// A header with raw name bytes (the tar crate's setters refuse the
/// malicious paths these tests need).
fn header(kind: tar::EntryType, name: &[u8], size: u64, mode: u32, owner: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_mut_bytes()[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(owner);
    h.set_gid(owner);
    h.set_mtime(MTIME);
    h
}

struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }
    fn file(&mut self, name: &str, data: &[u8], mode: u32, owner: u64) -> &mut Self {
        let mut h = header(
            tar::EntryType::Regular,
            name.as_bytes(),
            data.len() as u64,
            mode,
            owner,
        );
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }
    fn dir(&mut self, name: &str, mode: u32, owner: u64) -> &mut Self {
        let mut h = header(tar::EntryType::Directory, name.as_bytes(), 0, mode, owner);
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }
    /// A symlink or hard link entry (`kind`) to `target`, raw.
    fn link(&mut self, kind: tar::EntryType, name: &str, target: &str) -> &mut Self {
        let mut h = header(kind, name.as_bytes(), 0, 0o777, 0);
        h.as_mut_bytes()[157..157 + target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }
    fn tree(&mut self, dir: &Path) -> &mut Self {
        self.0.follow_symlinks(false);
        self.0.append_dir_all(".", dir).unwrap();
        self
    }
    fn bytes(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

fn compress(raw: &[u8], comp: Comp) -> Vec<u8> {
    match comp {
        Comp::Plain => raw.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(raw, 3).unwrap(),
    }
}

/// An OCI image layout written by the test.
struct Image {
    dir: tempfile::TempDir,
    /// Layer blob digests and diff-ids, bottom first.
    blobs: Vec<String>,
    diff_ids: Vec<String>,
}

impl Image {
    fn write(layers: &[(Vec<u8>, Comp)], config: Value, tag: &str) -> Image {
        let dir = tempfile::Builder::new()
            .prefix("rtctr-img-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        let blob = |bytes: &[u8], media: &str| {
            let hex = sha256(bytes);
            std::fs::write(dir.path().join("blobs/sha256").join(&hex), bytes).unwrap();
            json!({"mediaType": media, "digest": format!("sha256:{hex}"), "size": bytes.len()})
        };
        let (mut descs, mut blobs, mut diff_ids) = (vec![], vec![], vec![]);
        for (raw, comp) in layers {
            let media = match comp {
                Comp::Plain => "application/vnd.oci.image.layer.v1.tar",
                Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            };
            let d = blob(&compress(raw, *comp), media);
            blobs.push(d["digest"].as_str().unwrap().to_string());
            diff_ids.push(format!("sha256:{}", sha256(raw)));
            descs.push(d);
        }
        let config = json!({
            "architecture": "amd64", "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = blob(
            &serde_json::to_vec(&config).unwrap(),
            "application/vnd.oci.image.config.v1+json",
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": descs,
        });
        let mut m = blob(
            &serde_json::to_vec(&manifest).unwrap(),
            "application/vnd.oci.image.manifest.v1+json",
        );
        m["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        let index = json!({"schemaVersion": 2, "manifests": [m]});
        std::fs::write(dir.path().join("index.json"), index.to_string()).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Image {
            dir,
            blobs,
            diff_ids,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.path()
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..])
    }
}

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

fn bundle_cmd(store: &Path, image: &str, bundle: &Path) -> Command {
    let mut c = Command::new(rtctr_bin());
    c.arg("--layer-store")
        .arg(store)
        .args(["bundle", "--image", image])
        .arg(bundle)
        .stdin(Stdio::null());
    c
}

fn bundle(store: &Path, image: &str, bundle: &Path) -> Out {
    let o = bundle_cmd(store, image, bundle).output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The overlay mounted on `point`: its super options.
fn overlay_at(point: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| l.split_once(" - "))
        .find(|(pre, post)| pre.split(' ').nth(4) == point.to_str() && post.starts_with("overlay "))
        .map(|(_, post)| post.split(' ').nth(2).unwrap_or("").to_string())
}

fn option<'a>(opts: &'a str, key: &str) -> Option<&'a str> {
    opts.split(',')
        .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
}

fn as_bundle(dir: tempfile::TempDir) -> Bundle {
    let config =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    Bundle { dir, config }
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
    let mut c1 = bundle_cmd(store.path(), &image, b1.path()).spawn().unwrap();
    let mut c2 = bundle_cmd(store.path(), &image, b2.path()).spawn().unwrap();
    assert!(c1.wait().unwrap().success() && c2.wait().unwrap().success());
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

use std::os::unix::fs::MetadataExt;

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
