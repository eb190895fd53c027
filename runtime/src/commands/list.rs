//! `rtctr list`: every container with its derived status.

use std::io::Write;

use serde::Serialize;

use crate::state::{StateError, Store, OCI_VERSION};

#[derive(Serialize)]
struct Entry {
    #[serde(rename = "ociVersion")]
    oci_version: &'static str,
    id: String,
    pid: i32,
    status: String,
    bundle: String,
    rootfs: String,
    created: String,
    owner: String,
}

pub fn list(
    store: &Store,
    format_json: bool,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<(), StateError> {
    let mut entries = Vec::new();
    for id in store.ids()? {
        let Ok(dir) = store.open(&id) else { continue };
        let Ok(state) = dir.load() else { continue };
        let status = dir.status(&state);
        let oci = state.oci(status);
        entries.push(Entry {
            oci_version: OCI_VERSION,
            id: state.id.clone(),
            pid: oci.pid,
            status: status.to_string(),
            bundle: state.bundle.display().to_string(),
            rootfs: state.rootfs.display().to_string(),
            created: state.created.clone(),
            owner: state.owner.clone(),
        });
    }
    let io = |source| StateError::Io {
        op: "write",
        path: "stdout".into(),
        source,
    };
    if quiet {
        for e in &entries {
            writeln!(out, "{}", e.id).map_err(io)?;
        }
    } else if format_json {
        serde_json::to_writer(&mut *out, &entries).map_err(|e| io(e.into()))?;
        writeln!(out).map_err(io)?;
    } else {
        out.write_all(table(&entries).as_bytes()).map_err(io)?;
    }
    Ok(())
}

/// runc's table: columns padded to their widest cell, three spaces apart.
fn table(entries: &[Entry]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for e in entries {
        rows.push([
            e.id.clone(),
            e.pid.to_string(),
            e.status.clone(),
            e.bundle.clone(),
            e.created.clone(),
            e.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        text.push_str(line.join("   ").trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_as_runc() {
        let e = Entry {
            oci_version: OCI_VERSION,
            id: "c1".into(),
            pid: 42,
            status: "running".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-12-02T00:00:00Z".into(),
            owner: "root".into(),
        };
        assert_eq!(
            table(&[e]),
            "ID   PID   STATUS    BUNDLE   CREATED                OWNER\n\
             c1   42    running   /b       2026-12-02T00:00:00Z   root\n"
        );
    }
}
