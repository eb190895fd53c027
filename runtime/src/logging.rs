//! Log lines as runc writes them: text, or one JSON object a line
//! (`{"level":"error","msg":"…","time":"RFC 3339"}`) — the shape
//! containerd's shim and podman read back after a failure.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

pub struct Logger {
    file: Option<Mutex<File>>,
    json: bool,
    level: LevelFilter,
}

impl Logger {
    /// Installs the logger. Without `--log`, messages go to stderr.
    pub fn init(path: Option<&Path>, json: bool, debug: bool) -> std::io::Result<()> {
        let file = match path {
            Some(p) => Some(Mutex::new(
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
            None => None,
        };
        let level = if debug {
            LevelFilter::Debug
        } else {
            LevelFilter::Warn
        };
        let logger = Box::new(Logger { file, json, level });
        log::set_max_level(level);
        let _ = log::set_logger(Box::leak(logger));
        Ok(())
    }
}

/// One formatted line (without the newline).
pub fn format_line(json: bool, level: Level, msg: &str) -> String {
    let level = level.as_str().to_ascii_lowercase();
    let level = if level == "warn" {
        "warning".to_string()
    } else {
        level
    };
    let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    if json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}")
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(self.json, record.level(), &record.args().to_string());
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = writeln!(f, "{line}");
                }
            }
            None => eprintln!("{line}"),
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_runc_keys() {
        let line = format_line(true, Level::Error, "boom \"x\"");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        humantime::parse_rfc3339(v["time"].as_str().unwrap()).unwrap();
    }
}
