//! Reading and writing cgroup files, with the path (and value) in every error.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `value` to `dir/file` in a single write(2), without creating it.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let res = OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| Error::Write {
        path,
        value: value.to_string(),
        source,
    })
}

/// `dir/file` opened once (at the first value) for several writes, each a
/// single write(2): for files that take one value per write, such as v1
/// `devices.allow`, instead of an open per value.
pub struct Writer {
    path: PathBuf,
    file: Option<File>,
}

impl Writer {
    pub fn new(dir: &Path, file: &str) -> Writer {
        Writer {
            path: dir.join(file),
            file: None,
        }
    }

    /// Writes `value`; an error (opening or writing) names the file and value.
    pub fn write(&mut self, value: &str) -> Result<()> {
        let res = match &mut self.file {
            Some(f) => f.write_all(value.as_bytes()),
            None => OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|mut f| {
                    f.write_all(value.as_bytes())?;
                    self.file = Some(f);
                    Ok(())
                }),
        };
        res.map_err(|source| Error::Write {
            path: self.path.clone(),
            value: value.to_string(),
            source,
        })
    }
}

/// Reads all of `file`, a /proc, /sys or cgroup file, as text. Such files
/// report size 0, so std's `read_to_string` fstats them, then reads 32
/// bytes and doubles (/proc/self/mountinfo took 8 reads). A 4 KiB buffer,
/// doubled only when full, takes most in one read(2) and the read that
/// returns 0.
pub fn read_kernel_file(mut file: File) -> io::Result<String> {
    let mut buf = vec![0; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(2 * len, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// [`read_kernel_file`] of `path`.
pub fn read_kernel_path(path: &Path) -> io::Result<String> {
    read_kernel_file(File::open(path)?)
}

/// Reads `dir/file` as text.
pub fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    read_kernel_path(&path).map_err(|source| Error::Io { path, source })
}

/// Reads `dir/file`, `None` if it does not exist.
pub fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match read_kernel_path(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io { path, source }),
    }
}

/// Parses a single number; "max" reads as `u64::MAX`.
pub fn parse_u64(dir: &Path, file: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| Error::Parse {
        path: dir.join(file),
        value: t.to_string(),
    })
}

/// Reads a single-number file; a missing file reads as `None`.
pub fn read_u64(dir: &Path, file: &str) -> Result<Option<u64>> {
    match read_opt(dir, file)? {
        Some(t) => parse_u64(dir, file, &t).map(Some),
        None => Ok(None),
    }
}

/// Parses "key value" lines (memory.stat, cpu.stat, memory.events).
pub fn parse_kv(text: &str) -> Vec<(&str, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k, v))
        })
        .collect()
}

/// The value of `key` in a flat-keyed file, `None` if the file or key is absent.
pub fn read_key(dir: &Path, file: &str, key: &str) -> Result<Option<u64>> {
    Ok(read_opt(dir, file)?.and_then(|t| {
        parse_kv(&t)
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_names_file_and_value() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "").unwrap();
        write(d.path(), "a", "42").unwrap();
        assert_eq!(read(d.path(), "a").unwrap(), "42");
        let e = write(d.path(), "missing", "7").unwrap_err().to_string();
        assert!(e.contains("missing") && e.contains("\"7\""), "{e}");
    }

    #[test]
    fn writer_opens_once_and_names_the_value() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "").unwrap();
        let mut w = Writer::new(d.path(), "a");
        w.write("1 ").unwrap();
        // Later values go to the file already open, not to a new lookup.
        std::fs::rename(d.path().join("a"), d.path().join("b")).unwrap();
        w.write("2").unwrap();
        assert_eq!(read(d.path(), "b").unwrap(), "1 2");
        let e = Writer::new(d.path(), "missing").write("7").unwrap_err();
        let e = e.to_string();
        assert!(e.contains("missing") && e.contains("\"7\""), "{e}");
    }

    #[test]
    fn kernel_files_are_read_whole() {
        let d = tempfile::tempdir().unwrap();
        // Longer than the first buffer: it grows.
        let long: String = (0..3000).map(|i| format!("{i}\n")).collect();
        std::fs::write(d.path().join("long"), &long).unwrap();
        assert_eq!(read(d.path(), "long").unwrap(), long);
        std::fs::write(d.path().join("empty"), "").unwrap();
        assert_eq!(read(d.path(), "empty").unwrap(), "");
        let mountinfo = read_kernel_path(Path::new("/proc/self/mountinfo")).unwrap();
        assert!(mountinfo.lines().count() > 1, "{mountinfo}");
        std::fs::write(d.path().join("bad"), [0xff, 0xfe]).unwrap();
        assert!(read(d.path(), "bad").is_err());
    }

    #[test]
    fn numbers_and_keys() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("n"), "max\n").unwrap();
        std::fs::write(d.path().join("kv"), "a 1\nb 22\n").unwrap();
        assert_eq!(read_u64(d.path(), "n").unwrap(), Some(u64::MAX));
        assert_eq!(read_u64(d.path(), "none").unwrap(), None);
        assert_eq!(read_key(d.path(), "kv", "b").unwrap(), Some(22));
        assert_eq!(read_key(d.path(), "kv", "c").unwrap(), None);
        assert!(parse_u64(d.path(), "n", "x1").is_err());
    }
}
