//! Test helpers: throw-away network namespaces. Every test works inside its own "host"
//! namespace, so the real host's links, nftables and sysctls are never touched.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use std::net::Ipv4Addr;

use nix::sched::{setns, CloneFlags};
use rtctr_hooks::Networks;

static SEQ: AtomicU32 = AtomicU32::new(0);

pub use rtctr_test_support::require_root;

/// Why these tests need root, for [`require_root`]'s message.
pub const NEEDS_ROOT: &str = "CAP_NET_ADMIN, ip netns";

/// A named network namespace (`ip netns add`), deleted on drop.
pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn new(tag: &str) -> Ns {
        let name = format!(
            "rtt-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst),
            tag
        );
        sh(&["ip", "netns", "add", &name]);
        let ns = Ns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// `ip -n NAME args…`, must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// `ip netns exec NAME args…` (status not checked).
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// Run `f` on a thread inside this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_ns(&self.path(), f)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Run `f` on a thread that entered the netns at `path`.
pub fn in_ns<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(path).expect("open netns");
            setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("netns thread panicked")
    })
}

/// A process sleeping in a fresh netns (unshare -n), killed on drop: a "container" by pid.
pub struct PidNs {
    pub child: Child,
}

impl PidNs {
    pub fn new() -> PidNs {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "300"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let pid = child.id();
        // wait until unshare has exec'd sleep in the new netns
        let host = std::fs::read_link("/proc/self/ns/net").unwrap();
        for _ in 0..200 {
            if let Ok(l) = std::fs::read_link(format!("/proc/{pid}/ns/net")) {
                if l != host {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        PidNs { child }
    }
    /// Run `f` on a thread inside this process's netns.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_ns(Path::new(&format!("/proc/{}/ns/net", self.pid())), f)
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-n"])
            .args(args)
            .output()
            .expect("nsenter")
    }
}

impl Drop for PidNs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a command that must succeed; returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// All strings (keys and values) in a JSON tree.
pub fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            json_strings(x, out)
        }),
        _ => {}
    }
}

/// `nft -j list table inet rtctr` in `host`, parsed; None when there is no table.
pub fn nft_table(host: &Ns) -> Option<serde_json::Value> {
    let out = host.exec(&["nft", "-j", "list", "table", "inet", "rtctr"]);
    if !out.status.success() {
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).expect("nft json"))
}

/// Whether any string in the table (rule expressions, comments) mentions `needle`.
pub fn nft_mentions(host: &Ns, needle: &str) -> bool {
    let Some(v) = nft_table(host) else {
        return false;
    };
    let mut s = Vec::new();
    json_strings(&v, &mut s);
    // addresses appear as JSON strings in nft -j output
    s.iter().any(|x| x.contains(needle))
}

/// Host-sim netns + a state dir + an "outside" netns linked to the host by a veth
/// (host 10.202.N.1 <-> outside 10.202.N.2).
pub struct World {
    pub host: Ns,
    pub outside: Ns,
    pub nets: Networks,
    pub _dir: tempfile::TempDir,
    pub host_ext: Ipv4Addr,
    pub outside_ip: Ipv4Addr,
}

impl World {
    pub fn new(n: u8) -> World {
        let host = Ns::new("host");
        let outside = Ns::new("out");
        host.ip(&[
            "link",
            "add",
            "rto0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &outside.name,
        ]);
        let host_ext = Ipv4Addr::new(10, 202, n, 1);
        let outside_ip = Ipv4Addr::new(10, 202, n, 2);
        host.ip(&["addr", "add", &format!("{host_ext}/24"), "dev", "rto0"]);
        host.ip(&["link", "set", "rto0", "up"]);
        outside.ip(&["addr", "add", &format!("{outside_ip}/24"), "dev", "eth0"]);
        outside.ip(&["link", "set", "eth0", "up"]);
        let dir = tempfile::tempdir().unwrap();
        World {
            host,
            outside,
            nets: Networks::new(dir.path()),
            _dir: dir,
            host_ext,
            outside_ip,
        }
    }
}
