//! `rtctr ps`: the processes of a container. `--format json` prints the
//! pids of its cgroup; `table` runs the host's `ps` with the given
//! arguments (default `-ef`) and keeps the header and the lines whose PID
//! column is in the cgroup, as runc does.

use std::io::Write;

use crate::state::{StateError, Store};

/// What `ps` shows.
#[derive(Debug, Clone, Default)]
pub struct PsOptions {
    pub id: String,
    /// `--format json`: the pids only.
    pub json: bool,
    /// Arguments for ps(1) (default -ef).
    pub ps_args: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PsError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("container {0} has no cgroup")]
    NoCgroup(String),
    #[error("list the processes of {id}: {source}")]
    Cgroup {
        id: String,
        #[source]
        source: rtctr_cgroups::Error,
    },
    #[error("run ps: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("ps {args}: {output}")]
    Failed { args: String, output: String },
    #[error("couldn't find PID field in ps output")]
    NoPidColumn,
    #[error("unable to parse pid in ps output line {0:?}")]
    BadLine(String),
    #[error("write: {0}")]
    Write(#[from] std::io::Error),
}

pub fn ps(store: &Store, a: &PsOptions, out: &mut dyn Write) -> Result<(), PsError> {
    let id = a.id.as_str();
    let pids = {
        let dir = store.open(id)?;
        let state = dir.load()?;
        match state.cgroup.as_ref() {
            // Rootless without a cgroup: the init's pid namespace.
            Some(cg) if cg.dirs.is_empty() && state.pid > 0 => {
                crate::container::rootless::pids_without_cgroup(state.pid)
            }
            Some(cg) => cg.pids().map_err(|source| PsError::Cgroup {
                id: id.to_string(),
                source,
            })?,
            None => return Err(PsError::NoCgroup(id.to_string())),
        }
    };
    if a.json {
        let list: Vec<String> = pids.iter().map(i32::to_string).collect();
        writeln!(out, "[{}]", list.join(","))?;
        return Ok(());
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let o = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(PsError::Spawn)?;
    if !o.status.success() {
        let mut output = String::from_utf8_lossy(&o.stdout).into_owned();
        output += &String::from_utf8_lossy(&o.stderr);
        return Err(PsError::Failed {
            args: args.join(" "),
            output: output.trim().to_string(),
        });
    }
    let table = filter_table(&String::from_utf8_lossy(&o.stdout), &pids)?;
    out.write_all(table.as_bytes())?;
    Ok(())
}

/// The header of `ps` output and the lines whose PID column is in `pids`.
pub fn filter_table(output: &str, pids: &[i32]) -> Result<String, PsError> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|t| t == "PID")
        .ok_or(PsError::NoPidColumn)?;
    let mut kept = format!("{header}\n");
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let pid: i32 = line
            .split_whitespace()
            .nth(col)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| PsError::BadLine(line.to_string()))?;
        if pids.contains(&pid) {
            kept += line;
            kept.push('\n');
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_container_lines() {
        let out = "UID PID PPID C STIME TTY TIME CMD\n\
                   root 1 0 0 10:00 ? 00:00:01 /sbin/init\n\
                   root 42 1 0 10:00 ? 00:00:00 sleep 60\n\
                   root 43 42 0 10:00 ? 00:00:00 sh -c x\n\n";
        assert_eq!(
            filter_table(out, &[42, 43]).unwrap(),
            "UID PID PPID C STIME TTY TIME CMD\n\
             root 42 1 0 10:00 ? 00:00:00 sleep 60\n\
             root 43 42 0 10:00 ? 00:00:00 sh -c x\n"
        );
        assert_eq!(
            filter_table("  PID COMMAND\n   42 sleep\n  7 x\n", &[42]).unwrap(),
            "  PID COMMAND\n   42 sleep\n"
        );
        assert!(matches!(
            filter_table("USER COMMAND\nroot x\n", &[1]),
            Err(PsError::NoPidColumn)
        ));
        assert!(matches!(
            filter_table("PID CMD\nabc x\n", &[1]),
            Err(PsError::BadLine(_))
        ));
    }
}
