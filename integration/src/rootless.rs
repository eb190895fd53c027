//! A dedicated unprivileged user for the rootless tests: made with
//! `useradd` (which gives it /etc/subuid and /etc/subgid ranges), with its
//! own `XDG_RUNTIME_DIR`, and removed with everything it ran when dropped.
//! [`TestUser::rtctr`] runs rtctr as that user through `setpriv`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{rtctr_bin, wait_for, Out};

pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Its XDG_RUNTIME_DIR; rtctr keeps its state in `<this>/rtctr`.
    pub runtime_dir: PathBuf,
}

/// Runs a root command, retrying while another useradd/userdel holds the
/// passwd lock (tests run in parallel).
fn admin(args: &[&str]) -> std::process::Output {
    let mut last = None;
    for _ in 0..50 {
        let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
        if o.status.success() {
            return o;
        }
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        let locked = err.contains("lock") || err.contains("try again");
        last = Some(o);
        if !locked {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last.unwrap()
}

fn id_of(name: &str, flag: &str) -> u32 {
    let o = Command::new("id").arg(flag).arg(name).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

impl TestUser {
    /// A new user `rtrl-<tag>-<pid>`. Needs root.
    pub fn new(tag: &str) -> TestUser {
        let name = format!("rtrl-{tag}-{}", std::process::id());
        let o = admin(&["useradd", "--create-home", "--shell", "/bin/sh", &name]);
        assert!(o.status.success(), "useradd {name}: {o:?}");
        let (uid, gid) = (id_of(&name, "-u"), id_of(&name, "-g"));
        let runtime_dir = std::env::temp_dir().join(format!("rtctr-xdg-{name}"));
        let _ = std::fs::remove_dir_all(&runtime_dir);
        std::fs::create_dir(&runtime_dir).unwrap();
        std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let user = TestUser {
            name,
            uid,
            gid,
            runtime_dir,
        };
        user.give(&user.runtime_dir);
        user
    }

    /// chown -R to the user.
    pub fn give(&self, path: &Path) {
        let owner = format!("{}:{}", self.uid, self.gid);
        let st = Command::new("chown")
            .args(["-R", &owner])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "chown {}", path.display());
    }

    /// Where rtctr keeps this user's containers.
    pub fn state_root(&self) -> PathBuf {
        self.runtime_dir.join("rtctr")
    }

    /// `program` run as the user (setpriv: real and effective ids, the
    /// user's groups), with a clean environment naming its runtime dir.
    pub fn command(&self, program: &Path) -> Command {
        self.command_in(None, program)
    }

    /// [`TestUser::command`], moved first (by root) into the cgroup2
    /// directory `cgroup` when given.
    pub fn command_in(&self, cgroup: Option<&Path>, program: &Path) -> Command {
        let mut c = match cgroup {
            Some(dir) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg("echo $$ > \"$0/cgroup.procs\" && exec setpriv \"$@\"")
                    .arg(dir);
                c
            }
            None => Command::new("setpriv"),
        };
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(program)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", format!("/home/{}", self.name))
            .env("USER", &self.name)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .current_dir("/");
        c
    }

    /// rtctr `args` as the user, its stdio captured.
    pub fn rtctr(&self, args: &[&str]) -> Out {
        self.rtctr_env(&[], args)
    }

    /// [`TestUser::rtctr`] with environment variables set.
    pub fn rtctr_env(&self, env: &[(&str, &str)], args: &[&str]) -> Out {
        let o = self
            .command(&rtctr_bin())
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// `create` as the user, the container's stdout and stderr going to
    /// `<bundle>/<id>.out` and `.err` (so nothing waits for it to close them).
    pub fn create(&self, bundle: &Path, id: &str) -> Out {
        self.create_env(&[], bundle, id)
    }

    /// [`TestUser::create`] with environment variables set.
    pub fn create_env(&self, env: &[(&str, &str)], bundle: &Path, id: &str) -> Out {
        self.create_in(None, env, bundle, id)
    }

    /// [`TestUser::create_env`], run from the cgroup2 directory `cgroup`.
    pub fn create_in(
        &self,
        cgroup: Option<&Path>,
        env: &[(&str, &str)],
        bundle: &Path,
        id: &str,
    ) -> Out {
        let out = std::fs::File::create(bundle.join(format!("{id}.out"))).unwrap();
        let err_path = bundle.join(format!("{id}.err"));
        let err = std::fs::File::create(&err_path).unwrap();
        let st = self
            .command_in(cgroup, &rtctr_bin())
            .envs(env.iter().copied())
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap();
        Out {
            code: st.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// The first range of the user in /etc/subuid (or /etc/subgid): (start, count).
    pub fn subordinate(&self, file: &str) -> (u32, u32) {
        let text = std::fs::read_to_string(file).unwrap();
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() == 3 && f[0] == self.name).then(|| (f[1].parse().ok(), f[2].parse().ok()))
            })
            .find_map(|(s, c)| Some((s?, c?)))
            .unwrap_or_else(|| panic!("no range for {} in {file}", self.name))
    }

    /// Live processes whose real uid is the user's (zombies excluded).
    pub fn processes(&self) -> Vec<i64> {
        let uid = self.uid.to_string();
        let dir = std::fs::read_dir("/proc").unwrap();
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
            .filter(|pid| {
                let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                    return false;
                };
                let field = |k: &str| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
                };
                let zombie = field("State:").is_some_and(|s| s.starts_with('Z'));
                let real =
                    field("Uid:").and_then(|u| u.split_whitespace().next().map(String::from));
                !zombie && real.as_deref() == Some(uid.as_str())
            })
            .collect()
    }

    /// What the user's containers left: state directories, processes.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        if let Ok(d) = std::fs::read_dir(self.state_root()) {
            for e in d.flatten() {
                left.push(format!("state dir {}", e.path().display()));
            }
        }
        if !wait_for(Duration::from_secs(2), || self.processes().is_empty()) {
            left.push(format!(
                "processes of uid {}: {:?}",
                self.uid,
                self.processes()
            ));
        }
        left
    }

    #[track_caller]
    pub fn assert_nothing_left(&self) {
        let left = self.leftovers();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

/// Deletes the user's containers, kills what it still runs, and removes
/// the user, its home and its runtime dir.
impl Drop for TestUser {
    fn drop(&mut self) {
        if let Ok(d) = std::fs::read_dir(self.state_root()) {
            for e in d.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.rtctr(&["delete", "--force", &id]);
            }
        }
        for pid in self.processes() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = wait_for(Duration::from_secs(2), || self.processes().is_empty());
        let o = admin(&["userdel", "--remove", &self.name]);
        if !o.status.success() {
            rtctr_test_support::loud(&format!("userdel {}: {o:?}", self.name));
        }
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
    }
}
