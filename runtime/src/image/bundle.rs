//! `rtctr bundle`: a bundle from an image, its config.json made from the
//! image config over `rtctr spec`'s defaults (as the OCI image-spec's
//! conversion.md says), its rootfs an empty directory that `create`
//! mounts the overlay of the image's layers on.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::layout::{self, Image};
use super::store::{self, LayerStore};
use super::{io_err, user, ImageError, LAYERS_ANNOTATION, STORE_ANNOTATION};

#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// `DIR[:TAG]`: an OCI image layout directory or an oci-archive tar.
    pub image: String,
    pub bundle: PathBuf,
    pub store: PathBuf,
}

/// What `bundle` did.
#[derive(Debug)]
pub struct Bundled {
    pub layers: usize,
    /// Layers unpacked now (the others were in the store already).
    pub unpacked: usize,
}

/// Label prefixes an image may not set as annotations: they would steer
/// rtctr itself (its network, its layers) or another runtime's handler.
const RESERVED: [&str; 2] = ["rtctr.", "run.oci."];

pub fn bundle(opts: &BundleOptions) -> Result<Bundled, ImageError> {
    let config_path = opts.bundle.join("config.json");
    if config_path.symlink_metadata().is_ok() {
        return Err(ImageError::Exists(config_path));
    }
    let (path, tag) = split_ref(&opts.image);
    let store = LayerStore::open(&opts.store)?;
    let archive = if path.is_file() {
        Some(extract_archive(&store, &path)?)
    } else {
        None
    };
    let dir = archive.as_ref().map_or(path.as_path(), |a| a.0.as_path());
    let result = bundle_from(&store, dir, tag.as_deref(), opts, &config_path);
    drop(archive);
    result
}

fn bundle_from(
    store: &LayerStore,
    dir: &Path,
    tag: Option<&str>,
    opts: &BundleOptions,
    config_path: &Path,
) -> Result<Bundled, ImageError> {
    let image = layout::open(dir, tag)?;
    let unpacked = store.add_image(&image)?;
    let layers = image
        .layers()
        .map(|(_, d)| store.layer_dir(d))
        .collect::<Result<Vec<_>, _>>()?;
    let config = config(&image, &layers, store.root())?;
    let rootfs = opts.bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(io_err("create", &rootfs))?;
    if std::fs::read_dir(&rootfs)
        .map_err(io_err("read", &rootfs))?
        .next()
        .is_some()
    {
        return Err(ImageError::Invalid {
            path: rootfs,
            reason: "is not empty: the image's layers are mounted on it at create".into(),
        });
    }
    let text = serde_json::to_string_pretty(&config).unwrap_or_default();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(config_path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(io_err("write", config_path))?;
    Ok(Bundled {
        layers: layers.len(),
        unpacked,
    })
}

/// `DIR:TAG` → (DIR, TAG); a path that exists as given has no tag. A tag
/// may hold colons and slashes (podman names the image it saves
/// `localhost/NAME:TAG`), and a path may hold colons: the split is at the
/// first colon whose left side is an image (a file, or a directory with an
/// index.json). When none is, at the last colon, unless what follows it
/// holds a slash, so the error names the directory.
pub fn split_ref(image: &str) -> (PathBuf, Option<String>) {
    if Path::new(image).exists() {
        return (PathBuf::from(image), None);
    }
    let existing = image
        .match_indices(':')
        .map(|(i, _)| (&image[..i], &image[i + 1..]))
        .find(|(dir, _)| {
            let p = Path::new(dir);
            !dir.is_empty() && (p.is_file() || p.join("index.json").is_file())
        });
    if let Some((dir, tag)) = existing {
        return (PathBuf::from(dir), Some(tag.to_string()));
    }
    match image.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => {
            (PathBuf::from(dir), Some(tag.to_string()))
        }
        _ => (PathBuf::from(image), None),
    }
}

/// An oci-archive, extracted into the store's tmp dir for as long as the
/// guard lives (plain files: no whiteouts, nothing outside it).
struct Extracted(PathBuf);

impl Drop for Extracted {
    fn drop(&mut self) {
        store::remove_all(&self.0);
    }
}

fn extract_archive(store: &LayerStore, path: &Path) -> Result<Extracted, ImageError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = store
        .root()
        .join("tmp")
        .join(format!("archive-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&dir).map_err(io_err("create", &dir))?;
    let guard = Extracted(dir);
    let file = std::fs::File::open(path).map_err(io_err("open", path))?;
    let name = path.display().to_string();
    super::unpack::unpack(std::io::BufReader::new(file), &guard.0, &name, false)?;
    Ok(guard)
}

/// config.json: `rtctr spec`'s defaults, with the image config's command,
/// environment, working directory, user and labels, no terminal, a
/// writable root, and the layers in annotations.
fn config(image: &Image, layers: &[PathBuf], store: &Path) -> Result<Value, ImageError> {
    let mut spec: Value =
        serde_json::from_str(crate::spec::DEFAULT_CONFIG).unwrap_or_else(|_| json!({}));
    let cfg = image.config.config().clone().unwrap_or_default();
    let config_err = |reason: String| ImageError::Blob {
        digest: image.manifest.config().digest().to_string(),
        reason,
    };
    let args: Vec<String> = cfg
        .entrypoint()
        .iter()
        .chain(cfg.cmd().iter())
        .flatten()
        .cloned()
        .collect();
    if args.is_empty() {
        return Err(config_err(
            "the image config has neither Entrypoint nor Cmd".into(),
        ));
    }
    let user_spec = cfg.user().clone().unwrap_or_default();
    let user = user::resolve(&user_spec, layers)?;
    let cwd = cfg.working_dir().clone().filter(|w| !w.is_empty());
    let cwd = cwd.map_or("/".to_string(), |w| {
        if w.starts_with('/') {
            w
        } else {
            format!("/{w}")
        }
    });
    let p = &mut spec["process"];
    p["terminal"] = json!(false);
    p["args"] = json!(args);
    p["env"] = json!(merge_env(p["env"].as_array(), cfg.env().as_deref()));
    p["cwd"] = json!(cwd);
    p["user"] = json!({ "uid": user.uid, "gid": user.gid });
    if !user.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(user.additional_gids);
    }
    spec["root"] = json!({ "path": "rootfs", "readonly": false });
    let mut ann = serde_json::Map::new();
    for (k, v) in cfg.labels().iter().flatten() {
        if RESERVED.iter().any(|r| k.starts_with(r)) {
            log::warn!("image label {k} is not made an annotation: the prefix is reserved");
            continue;
        }
        ann.insert(k.clone(), json!(v));
    }
    if let Some(sig) = cfg.stop_signal() {
        ann.insert("org.opencontainers.image.stopSignal".into(), json!(sig));
    }
    if let Some(name) = &image.name {
        ann.insert("org.opencontainers.image.ref.name".into(), json!(name));
    }
    let ids: Vec<&str> = image.layers().map(|(_, d)| d.as_str()).collect();
    ann.insert(LAYERS_ANNOTATION.into(), json!(ids.join(",")));
    ann.insert(STORE_ANNOTATION.into(), json!(store.display().to_string()));
    spec["annotations"] = Value::Object(ann);
    Ok(spec)
}

/// The defaults, each overridden by the image's entry of the same name.
fn merge_env(defaults: Option<&Vec<Value>>, image: Option<&[String]>) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let image = image.unwrap_or_default();
    let mut out: Vec<String> = defaults
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .filter(|d| !image.iter().any(|i| key(i) == key(d)))
        .map(str::to_string)
        .collect();
    out.extend(image.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_env_overrides_defaults_by_name() {
        let d = vec![json!("PATH=/bin"), json!("TERM=xterm")];
        let i = ["PATH=/opt/bin:/bin".to_string(), "A=1".to_string()];
        assert_eq!(
            merge_env(Some(&d), Some(&i)),
            ["TERM=xterm", "PATH=/opt/bin:/bin", "A=1"]
        );
    }

    #[test]
    fn split_ref_takes_the_last_colon_unless_the_path_exists() {
        assert_eq!(
            split_ref("/no/such/img:v1"),
            (PathBuf::from("/no/such/img"), Some("v1".into()))
        );
        assert_eq!(
            split_ref("/no/such/img"),
            (PathBuf::from("/no/such/img"), None)
        );
        assert_eq!(split_ref("/tmp"), (PathBuf::from("/tmp"), None));
    }

    #[test]
    fn split_ref_keeps_a_tag_with_colons_and_a_path_with_colons() {
        let tmp = tempfile::tempdir().unwrap();
        let img = tmp.path().join("img");
        let colon = tmp.path().join("a:b");
        // `a` exists but is no image: `a:b` is the image
        std::fs::create_dir(tmp.path().join("a")).unwrap();
        for d in [&img, &colon] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("index.json"), "{}").unwrap();
        }
        let (i, c) = (img.display(), colon.display());
        // podman save's ref name
        assert_eq!(
            split_ref(&format!("{i}:localhost/two:latest")),
            (img.clone(), Some("localhost/two:latest".into()))
        );
        assert_eq!(split_ref(&format!("{i}:v1")), (img, Some("v1".into())));
        assert_eq!(
            split_ref(&format!("{c}:v1")),
            (colon.clone(), Some("v1".into()))
        );
        assert_eq!(split_ref(&format!("{c}")), (colon, None));
    }
}
