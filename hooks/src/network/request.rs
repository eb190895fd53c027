//! What to attach: [`Request`], built by the runtime or from OCI annotations.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::store::{PortMapping, Proto};
use super::DEFAULT_NETWORK;
use crate::error::{NetError, Result};

/// Annotation naming the network (opt-in for the in-process hook).
pub const ANN_NETWORK: &str = "rtctr.network";
/// Annotation listing published ports, `8080:80/tcp,5353:53/udp`.
pub const ANN_PORTS: &str = "rtctr.network.ports";
/// Annotation with a fixed address.
pub const ANN_IP: &str = "rtctr.network.ip";

/// The container's network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Netns {
    /// `/proc/<pid>/ns/net`.
    Pid(u32),
    /// A netns file, e.g. `/run/netns/x` or a bind mount.
    Path(PathBuf),
}

/// A request to attach one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Container id.
    pub container: String,
    /// Its network namespace.
    pub netns: Netns,
    /// Network name.
    pub network: String,
    /// Published ports.
    pub ports: Vec<PortMapping>,
    /// Fixed address (must be in the subnet and free).
    pub ip: Option<Ipv4Addr>,
    /// Name of the interface inside the container (`eth0`; CNI's `CNI_IFNAME`).
    pub ifname: String,
}

impl Request {
    /// A request for the default network, no ports, any address.
    pub fn new(container: impl Into<String>, netns: Netns) -> Request {
        Request {
            container: container.into(),
            netns,
            network: DEFAULT_NETWORK.into(),
            ports: vec![],
            ip: None,
            ifname: super::CONTAINER_IFNAME.into(),
        }
    }

    /// Read `rtctr.network`, `rtctr.network.ports` and `rtctr.network.ip`. `Ok(None)` when
    /// `rtctr.network` is absent (networking is opt-in). Bad values give an error naming the
    /// annotation and the value.
    pub fn from_annotations(
        id: &str,
        pid: u32,
        annotations: &HashMap<String, String>,
    ) -> Result<Option<Request>> {
        let Some(network) = annotations.get(ANN_NETWORK) else {
            return Ok(None);
        };
        let bad = |key: &str, value: &str, reason: String| NetError::Annotation {
            key: key.into(),
            value: value.into(),
            reason,
        };
        let network = network.trim();
        let network = if network.is_empty() {
            DEFAULT_NETWORK
        } else {
            network
        };
        let mut req = Request::new(id, Netns::Pid(pid));
        req.network = network.into();
        if let Some(v) = annotations.get(ANN_PORTS) {
            req.ports = parse_ports(v).map_err(|r| bad(ANN_PORTS, v, r))?;
        }
        if let Some(v) = annotations.get(ANN_IP) {
            let ip = v
                .trim()
                .parse()
                .map_err(|e| bad(ANN_IP, v, format!("not an IPv4 address: {e}")))?;
            req.ip = Some(ip);
        }
        Ok(Some(req))
    }
}

/// Parse `8080:80/tcp,5353:53/udp` (protocol defaults to tcp; `8080` alone means `8080:8080`).
pub fn parse_ports(s: &str) -> std::result::Result<Vec<PortMapping>, String> {
    let mut out: Vec<PortMapping> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (ports, proto) = match item.split_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some((_, other)) => {
                return Err(format!("{item:?}: unknown protocol {other:?} (tcp or udp)"))
            }
            None => (item, Proto::Tcp),
        };
        let port = |p: &str| -> std::result::Result<u16, String> {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => Err(format!("{item:?}: {p:?} is not a port (1-65535)")),
                Ok(n) => Ok(n),
            }
        };
        let (h, c) = match ports.split_once(':') {
            Some((h, c)) => (port(h)?, port(c)?),
            None => (port(ports)?, port(ports)?),
        };
        if out.iter().any(|m| m.host_port == h && m.proto == proto) {
            return Err(format!(
                "{item:?}: host port {h}/{} listed twice",
                proto.as_str()
            ));
        }
        out.push(PortMapping {
            host_port: h,
            container_port: c,
            proto,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn annotations() {
        assert_eq!(Request::from_annotations("c", 1, &ann(&[])).unwrap(), None);
        let r = Request::from_annotations(
            "c",
            7,
            &ann(&[
                (ANN_NETWORK, "web"),
                (ANN_PORTS, "8080:80/tcp, 5353:53/udp,9000"),
                (ANN_IP, "10.89.0.9"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.network, "web");
        assert_eq!(r.netns, Netns::Pid(7));
        assert_eq!(r.ip, Some(Ipv4Addr::new(10, 89, 0, 9)));
        assert_eq!(r.ports.len(), 3);
        assert_eq!(r.ports[1].proto, Proto::Udp);
        assert_eq!(
            (r.ports[2].host_port, r.ports[2].container_port),
            (9000, 9000)
        );
        for (k, v) in [
            (ANN_PORTS, "80:x"),
            (ANN_PORTS, "1:2/sctp"),
            (ANN_PORTS, "0:1"),
            (ANN_PORTS, "1:2,1:3"),
            (ANN_IP, "10.1"),
        ] {
            let e = Request::from_annotations("c", 1, &ann(&[(ANN_NETWORK, "n"), (k, v)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(k) && e.contains(v), "{e}");
        }
    }
}
