//! `rtctr layers ls|prune`: the layer store's layers, their size and
//! users; removing those no kept image and no live container uses.

use std::io::Write;
use std::path::Path;

use crate::image::{gc, ImageError};

#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("write stdout: {0}")]
    Write(#[from] std::io::Error),
}

pub fn ls(store: &Path, json: bool, out: &mut dyn Write) -> Result<(), LayersError> {
    let layers = gc::list(store)?;
    if json {
        serde_json::to_writer(&mut *out, &layers).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<71}  {:>10}  {:<20}  CONTAINERS",
        "DIGEST", "SIZE", "IMAGES"
    )?;
    for l in &layers {
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(",")
            }
        };
        writeln!(
            out,
            "{:<71}  {:>10}  {:<20}  {}",
            l.digest,
            l.size,
            list(&l.images),
            list(&l.containers)
        )?;
    }
    Ok(())
}

pub fn prune(store: &Path, all: bool, out: &mut dyn Write) -> Result<(), LayersError> {
    let p = gc::prune(store, all)?;
    for id in &p.stale_containers {
        writeln!(out, "removed the dir of stale container {id}")?;
    }
    for name in &p.images {
        writeln!(out, "forgot image {name}")?;
    }
    for d in &p.layers {
        writeln!(out, "removed layer {d}")?;
    }
    writeln!(
        out,
        "{} layers removed, {} bytes freed",
        p.layers.len(),
        p.bytes
    )?;
    Ok(())
}
