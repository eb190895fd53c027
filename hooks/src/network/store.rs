//! Persistent network configuration and leases: one JSON file per network under the state
//! directory, all changes made under one `flock` on `<dir>/.lock`, files written atomically.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::addr::Subnet;
use crate::error::{NetError, Result};

/// Default state directory.
pub const DEFAULT_DIR: &str = "/var/lib/rtctr/networks";
/// Environment variable overriding the state directory.
pub const DIR_ENV: &str = "RTCTR_NETWORK_DIR";

/// Transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP
    Tcp,
    /// UDP
    Udp,
}

impl Proto {
    /// "tcp" or "udp".
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A published port: traffic to `host_port` on the host's addresses goes to the container's
/// `container_port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Port on the host.
    pub host_port: u16,
    /// Port in the container.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

/// One container's address on a network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Container id.
    pub container: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Host-side veth name.
    #[serde(default)]
    pub veth: String,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}

/// A network: its configuration and current leases (this is also `inspect`'s output).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Name.
    pub name: String,
    /// Subnet in CIDR form.
    pub subnet: Subnet,
    /// Bridge interface name.
    pub bridge: String,
    /// Gateway address (assigned to the bridge).
    pub gateway: Ipv4Addr,
    /// Whether traffic leaving the subnet is masqueraded.
    pub masquerade: bool,
    /// Attached containers.
    #[serde(default)]
    pub leases: Vec<Lease>,
}

impl Network {
    /// First free address, or the fixed one if it is free and usable.
    pub fn allocate(&self, fixed: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        let taken = |ip: Ipv4Addr| ip == self.gateway || self.leases.iter().any(|l| l.ip == ip);
        if let Some(ip) = fixed {
            let bad = |reason: String| NetError::Address {
                name: self.name.clone(),
                ip,
                reason,
            };
            if !self.subnet.contains(ip) || ip == self.subnet.addr || ip == self.subnet.broadcast()
            {
                return Err(bad(format!("not a host address of {}", self.subnet)));
            }
            if let Some(l) = self.leases.iter().find(|l| l.ip == ip) {
                return Err(bad(format!("leased to container {:?}", l.container)));
            }
            if ip == self.gateway {
                return Err(bad("it is the gateway".into()));
            }
            return Ok(ip);
        }
        self.subnet
            .hosts()
            .find(|ip| !taken(*ip))
            .ok_or_else(|| NetError::Exhausted {
                name: self.name.clone(),
                subnet: self.subnet.to_string(),
            })
    }

    /// The lease of a container, if any.
    pub fn lease(&self, container: &str) -> Option<&Lease> {
        self.leases.iter().find(|l| l.container == container)
    }
}

/// The state directory, locked for the lifetime of this value.
pub struct Store {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl Store {
    /// The directory from `RTCTR_NETWORK_DIR`, or the default.
    pub fn default_dir() -> PathBuf {
        std::env::var_os(DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
    }

    /// Create the directory if needed and take its exclusive lock (blocking).
    pub fn lock(dir: &Path) -> Result<Store> {
        fs::create_dir_all(dir).map_err(|e| NetError::io("creating directory", dir, e))?;
        let path = dir.join(".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| NetError::io("opening lock file", &path, e))?;
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| NetError::io("locking", &path, e.into()))?;
        Ok(Store {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Load one network, `None` if it does not exist.
    pub fn load(&self, name: &str) -> Result<Option<Network>> {
        let path = self.path(name);
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| NetError::ParseState { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(NetError::io("reading", path, e)),
        }
    }

    /// Load every network, sorted by name.
    pub fn load_all(&self) -> Result<Vec<Network>> {
        let rd = fs::read_dir(&self.dir).map_err(|e| NetError::io("listing", &self.dir, e))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| NetError::io("listing", &self.dir, e))?;
            let fname = ent.file_name();
            let Some(name) = fname.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if let Some(n) = self.load(name)? {
                out.push(n);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Write a network atomically (temp file, rename).
    pub fn save(&self, net: &Network) -> Result<()> {
        let path = self.path(&net.name);
        let tmp = self.dir.join(format!(".{}.json.tmp", net.name));
        let data = serde_json::to_vec_pretty(net).expect("network serializes");
        let mut f = File::create(&tmp).map_err(|e| NetError::io("creating", &tmp, e))?;
        // No fsync: it costs milliseconds per setup, and after a crash or reboot the leases
        // are stale anyway (the veths are gone). rename keeps readers from seeing a partial file.
        f.write_all(&data)
            .map_err(|e| NetError::io("writing", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| NetError::io("renaming into", &path, e))
    }

    /// Delete a network's file.
    pub fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(NetError::io("removing", path, e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Network {
        Network {
            name: "t".into(),
            subnet: "10.201.0.0/29".parse().unwrap(),
            bridge: "rtt0".into(),
            gateway: "10.201.0.1".parse().unwrap(),
            masquerade: true,
            leases: vec![],
        }
    }

    #[test]
    fn allocate_skips_gateway_and_leases() {
        let mut n = net();
        assert_eq!(
            n.allocate(None).unwrap(),
            "10.201.0.2".parse::<Ipv4Addr>().unwrap()
        );
        n.leases.push(Lease {
            container: "a".into(),
            ip: "10.201.0.2".parse().unwrap(),
            veth: String::new(),
            ports: vec![],
        });
        assert_eq!(n.allocate(None).unwrap().to_string(), "10.201.0.3");
        assert!(n.allocate(Some("10.201.0.2".parse().unwrap())).is_err());
        assert!(n.allocate(Some("10.201.0.1".parse().unwrap())).is_err());
        assert!(n.allocate(Some("10.201.0.7".parse().unwrap())).is_err());
        assert!(n.allocate(Some("10.9.0.7".parse().unwrap())).is_err());
        assert_eq!(
            n.allocate(Some("10.201.0.6".parse().unwrap()))
                .unwrap()
                .to_string(),
            "10.201.0.6"
        );
        for i in 3..=6 {
            n.leases.push(Lease {
                container: format!("c{i}"),
                ip: Ipv4Addr::new(10, 201, 0, i),
                veth: String::new(),
                ports: vec![],
            });
        }
        assert!(matches!(n.allocate(None), Err(NetError::Exhausted { .. })));
    }

    #[test]
    fn save_load_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::lock(d.path()).unwrap();
        assert!(s.load("t").unwrap().is_none());
        s.save(&net()).unwrap();
        assert_eq!(s.load("t").unwrap().unwrap(), net());
        assert_eq!(s.load_all().unwrap().len(), 1);
        s.delete("t").unwrap();
        s.delete("t").unwrap();
        assert!(s.load_all().unwrap().is_empty());
    }
}
