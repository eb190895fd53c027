//! The image config's `User` (`name`, `uid`, `name:group`, `uid:gid`, ...)
//! resolved against the image's /etc/passwd and /etc/group, as seen
//! through its layers (the topmost layer that has the file, unless a
//! whiteout or an opaque /etc above hides it).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

use super::ImageError;

#[derive(Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// `layers` are the unpacked layer dirs, bottom first.
pub fn resolve(spec: &str, layers: &[PathBuf]) -> Result<User, ImageError> {
    let passwd = read_merged(layers, "etc/passwd");
    let group = read_merged(layers, "etc/group");
    resolve_in(spec, passwd.as_deref(), group.as_deref())
}

/// The file as the merged root shows it, or None. Each layer's copy is
/// opened inside its layer dir, no symlink followed (a symlink there is
/// taken as absent).
fn read_merged(layers: &[PathBuf], rel: &str) -> Option<String> {
    let path = Path::new(rel);
    let parent = path.parent().unwrap_or(Path::new(""));
    for layer in layers.iter().rev() {
        match open_beneath(layer, path, OFlags::RDONLY) {
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd).ok()?;
                return match FileType::from_raw_mode(st.st_mode) {
                    FileType::RegularFile => std::io::read_to_string(std::fs::File::from(fd)).ok(),
                    _ => None, // a whiteout (0:0 char device) or no file
                };
            }
            Err(rustix::io::Errno::NOENT) => {}
            Err(_) => return None,
        }
        if let Ok(dir) = open_beneath(layer, parent, OFlags::RDONLY | OFlags::DIRECTORY) {
            let mut buf = [0u8; 1];
            let opaque = rustix::fs::fgetxattr(&dir, "trusted.overlay.opaque", &mut buf);
            if matches!(opaque, Ok(1) if buf[0] == b'y') {
                return None;
            }
        }
    }
    None
}

fn open_beneath(layer: &Path, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let root = rustix::fs::open(
        layer,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        &root,
        rel,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        how,
    )
}

fn resolve_in(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<User, ImageError> {
    let err = |reason: String| ImageError::User {
        user: spec.to_string(),
        reason,
    };
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users: Vec<Vec<&str>> = entries(passwd);
    let groups: Vec<Vec<&str>> = entries(group);
    let entry = if user.is_empty() {
        users.iter().find(|e| e.get(2) == Some(&"0"))
    } else if let Ok(uid) = user.parse::<u32>() {
        users
            .iter()
            .find(|e| e.get(2).and_then(|v| v.parse().ok()) == Some(uid))
    } else {
        let e = users.iter().find(|e| e[0] == user);
        Some(e.ok_or_else(|| err(format!("no user {user:?} in the image's /etc/passwd")))?)
    };
    let uid = match user.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) if user.is_empty() => 0,
        Err(_) => field(entry, 2).ok_or_else(|| err("a bad /etc/passwd line".into()))?,
    };
    let gid = match grp {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e[0] == g)
                .and_then(|e| field(Some(e), 2))
                .ok_or_else(|| err(format!("no group {g:?} in the image's /etc/group")))?,
        },
        None => field(entry, 3).unwrap_or(0),
    };
    let name = entry.map(|e| e[0]);
    let mut additional_gids: Vec<u32> = match (grp, name) {
        (None, Some(name)) => groups
            .iter()
            .filter(|e| e.get(3).is_some_and(|m| m.split(',').any(|m| m == name)))
            .filter_map(|e| field(Some(e), 2))
            .filter(|g| *g != gid)
            .collect(),
        _ => Vec::new(),
    };
    additional_gids.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

fn entries(file: Option<&str>) -> Vec<Vec<&str>> {
    file.unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
        .collect()
}

fn field(entry: Option<&Vec<&str>>, i: usize) -> Option<u32> {
    entry?.get(i)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n";
    const GROUP: &str = "root:x:0:\nweb:x:34:\nstaff:x:50:www,bob\nwheel:x:10:root\n";

    fn r(spec: &str) -> Result<User, ImageError> {
        resolve_in(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(
            r("").unwrap(),
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![10]
            }
        );
        assert_eq!(
            r("www").unwrap(),
            User {
                uid: 33,
                gid: 34,
                additional_gids: vec![50]
            }
        );
        assert_eq!(
            r("www:staff").unwrap(),
            User {
                uid: 33,
                gid: 50,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("33:7").unwrap(),
            User {
                uid: 33,
                gid: 7,
                additional_gids: vec![]
            }
        );
        // A uid not in passwd: gid 0, as docker does.
        assert_eq!(
            r("1234").unwrap(),
            User {
                uid: 1234,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(r("1234:web").unwrap().gid, 34);
    }

    #[test]
    fn unknown_names_are_refused_by_name() {
        let e = r("nobody").unwrap_err().to_string();
        assert!(e.contains("\"nobody\"") && e.contains("/etc/passwd"), "{e}");
        let e = r("www:nogroup").unwrap_err().to_string();
        assert!(e.contains("\"nogroup\"") && e.contains("/etc/group"), "{e}");
        assert!(resolve_in("www", None, None).is_err());
        assert_eq!(resolve_in("5:6", None, None).unwrap().uid, 5);
    }
}
