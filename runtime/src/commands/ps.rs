//! `rtctr ps`: the processes of a container. `--format json` prints the
//! pids of its cgroup; `table` runs the host's `ps` with the given
//! arguments (default `-ef`) and keeps the header and the lines whose PID
//! column is in the cgroup, as runc does.

use std::io::Write;

use clap::Args;

use crate::state::{StateError, Store};

#[derive(Args, Debug, Clone)]
pub struct PsArgs {
    /// table or json.
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// The container id, then arguments for ps(1) (default -ef). Flags
    /// after the id are ps's, as in runc (`ps ID -f` is ps's `-f`).
    #[arg(
        value_name = "ID [PS ARGS]",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

impl PsArgs {
    pub fn id(&self) -> &str {
        &self.args[0]
    }

    pub fn ps_args(&self) -> &[String] {
        &self.args[1..]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PsError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("invalid format {0:?}: use table or json")]
    Format(String),
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

pub fn ps(store: &Store, a: &PsArgs, out: &mut dyn Write) -> Result<(), PsError> {
    let json = match a.format.as_str() {
        "json" => true,
        "table" => false,
        other => return Err(PsError::Format(other.to_string())),
    };
    let id = a.id();
    let pids = {
        let dir = store.open(id)?;
        let state = dir.load()?;
        let cg = state
            .cgroup
            .as_ref()
            .ok_or_else(|| PsError::NoCgroup(id.to_string()))?;
        cg.pids().map_err(|source| PsError::Cgroup {
            id: id.to_string(),
            source,
        })?
    };
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&pids).expect("pids serialize")
        )?;
        return Ok(());
    }
    let args = if a.ps_args().is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args().to_vec()
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

    fn parse(argv: &[&str]) -> PsArgs {
        use clap::Parser;
        let argv = crate::cli::normalize_go_flags(argv.iter().map(Into::into).collect());
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            Some(crate::cli::Command::Ps(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn argv_as_engines_send_it() {
        let a = parse(&["rtctr", "ps", "--format", "table", "c", "-o", "pid,comm"]);
        assert_eq!((a.format.as_str(), a.id()), ("table", "c"));
        assert_eq!(a.ps_args(), ["-o", "pid,comm"]);
        let a = parse(&["rtctr", "ps", "--format", "json", "c"]);
        assert_eq!((a.format.as_str(), a.id()), ("json", "c"));
        assert!(a.ps_args().is_empty());
        let a = parse(&["rtctr", "ps", "-f", "json", "c"]);
        assert_eq!(a.format, "json");
        // After the id, -f is ps's.
        let a = parse(&["rtctr", "ps", "c", "-f"]);
        assert_eq!((a.format.as_str(), a.id()), ("table", "c"));
        assert_eq!(a.ps_args(), ["-f"]);
        let a = parse(&["rtctr", "ps", "-format=json", "c", "-ef"]);
        assert_eq!(a.format, "json");
        assert_eq!(a.ps_args(), ["-ef"]);
    }

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
