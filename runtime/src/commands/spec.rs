//! `rtctr spec`: write the default config.json into a bundle, as
//! `runc spec` does (never over an existing one).

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

pub fn spec(bundle: &Path) -> Result<(), SpecWriteError> {
    let path = bundle.join("config.json");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    let write = |mut f: std::fs::File| {
        std::io::Write::write_all(&mut f, crate::spec::DEFAULT_CONFIG.as_bytes())
    };
    match file.and_then(write) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(SpecWriteError::Exists(path))
        }
        Err(source) => Err(SpecWriteError::Write { path, source }),
    }
}
