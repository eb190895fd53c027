//! `rtctr spec`: write the default config.json into a bundle, as
//! `runc spec` does (never over an existing one); `--rootless` writes
//! runc's rootless variant of it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SpecWriteError {
    #[error("{0} exists: remove it first")]
    Exists(PathBuf),
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn spec(bundle: &Path, rootless: bool) -> Result<(), SpecWriteError> {
    let path = bundle.join("config.json");
    let text = if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        rootless_config(uid, gid)
    } else {
        crate::spec::DEFAULT_CONFIG.to_string()
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    let write = |mut f: std::fs::File| std::io::Write::write_all(&mut f, text.as_bytes());
    match file.and_then(write) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(SpecWriteError::Exists(path))
        }
        Err(source) => Err(SpecWriteError::Write { path, source }),
    }
}

/// The default config made rootless, as runc's `spec --rootless` makes it
/// (`specconv.ToRootless`): a user namespace mapping `uid`/`gid` (the
/// caller's) to 0, no network namespace (the caller cannot make a usable
/// one), `/sys` bind-mounted read-only from the host (a new sysfs needs a
/// network namespace of one's own), no `gid=` mount option (an id the
/// namespace does not map) and no `linux.resources` (a user cannot write
/// the cgroups they live in). Edited as text, so the file keeps the
/// default's layout and order (the test checks the result as JSON).
pub fn rootless_config(uid: u32, gid: u32) -> String {
    let maps = format!(
        "\"uidMappings\": [\n\t\t\t{{\n\t\t\t\t\"containerID\": 0,\n\t\t\t\t\"hostID\": {uid},\n\t\t\t\t\"size\": 1\n\t\t\t}}\n\t\t],\n\t\t\
         \"gidMappings\": [\n\t\t\t{{\n\t\t\t\t\"containerID\": 0,\n\t\t\t\t\"hostID\": {gid},\n\t\t\t\t\"size\": 1\n\t\t\t}}\n\t\t],\n"
    );
    let edits: [(&str, &str); 5] = [
        (
            "\"type\": \"sysfs\",\n\t\t\t\"source\": \"sysfs\",\n\t\t\t\"options\": [\n",
            "\"type\": \"none\",\n\t\t\t\"source\": \"/sys\",\n\t\t\t\"options\": [\n\t\t\t\t\"rbind\",\n",
        ),
        ("\"mode=0620\",\n\t\t\t\t\"gid=5\"\n", "\"mode=0620\"\n"),
        (
            "\"resources\": {\n\t\t\t\"devices\": [\n\t\t\t\t{\n\t\t\t\t\t\"allow\": false,\n\t\t\t\t\t\"access\": \"rwm\"\n\t\t\t\t}\n\t\t\t]\n\t\t},\n",
            &maps,
        ),
        ("\t\t\t{\n\t\t\t\t\"type\": \"network\"\n\t\t\t},\n", ""),
        (
            "\t\t\t\t\"type\": \"cgroup\"\n\t\t\t}\n",
            "\t\t\t\t\"type\": \"cgroup\"\n\t\t\t},\n\t\t\t{\n\t\t\t\t\"type\": \"user\"\n\t\t\t}\n",
        ),
    ];
    let mut text = crate::spec::DEFAULT_CONFIG.to_string();
    for (from, to) in edits {
        debug_assert!(text.contains(from), "the default config has {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn rootless_is_the_default_with_runcs_changes() {
        let mut want = parsed(crate::spec::DEFAULT_CONFIG);
        let got = parsed(&rootless_config(1001, 1002));
        // What runc's ToRootless changes, applied by hand to the default.
        let linux = want["linux"].as_object_mut().unwrap();
        linux.remove("resources");
        let map = |id: u32| json!([{"containerID": 0, "hostID": id, "size": 1}]);
        linux.insert("uidMappings".into(), map(1001));
        linux.insert("gidMappings".into(), map(1002));
        let ns = linux["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "user"}));
        for m in want["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            } else if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
                opts.retain(|o| !o.as_str().unwrap().starts_with("gid="));
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn rootless_config_is_valid() {
        let text = rootless_config(1001, 1001);
        let spec: oci_spec::runtime::Spec = serde_json::from_str(&text).unwrap();
        crate::spec::validate(spec).unwrap();
        assert!(text.starts_with("{\n\t\"ociVersion\""), "{text}");
    }
}
