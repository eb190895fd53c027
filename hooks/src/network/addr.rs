//! IPv4 subnets, deterministic interface names and MAC addresses.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 network in CIDR form, with the host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length, 8..=30.
    pub prefix: u8,
}

impl Subnet {
    /// The netmask.
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(
            u32::MAX
                .checked_shl(32 - u32::from(self.prefix))
                .unwrap_or(0),
        )
    }

    /// Whether `ip` lies in the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & u32::from(self.mask()) == u32::from(self.addr)
    }

    /// Whether two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !u32::from(self.mask()))
    }

    /// The usable host addresses, first to last (network and broadcast excluded).
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.addr) + 1..u32::from(self.broadcast())).map(Ipv4Addr::from)
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| "expected CIDR form a.b.c.d/len".to_string())?;
        let addr: Ipv4Addr = a.parse().map_err(|e| format!("address: {e}"))?;
        let prefix: u8 = p.parse().map_err(|e| format!("prefix length: {e}"))?;
        if !(8..=30).contains(&prefix) {
            return Err("prefix length must be between 8 and 30".into());
        }
        let net = Subnet { addr, prefix };
        let masked = Ipv4Addr::from(u32::from(addr) & u32::from(net.mask()));
        Ok(Subnet {
            addr: masked,
            prefix,
        })
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// 64-bit FNV-1a: stable across builds and platforms (std's hasher is not).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The host-side veth name of a container: `rv` + 10 hex digits (12 chars, within IFNAMSIZ).
pub fn host_veth_name(container: &str) -> String {
    format!("rv{:010x}", fnv1a(container) & 0xff_ffff_ffff)
}

/// A locally administered unicast MAC derived from the address (as CNI's bridge plugin does).
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x0a, 0x58, o[0], o[1], o[2], o[3]]
}

/// `aa:bb:..` form of a MAC.
pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Validate an interface name (1..=15 bytes, no '/', no whitespace, not "." or "..").
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_parse_and_hosts() {
        let s: Subnet = "10.89.3.7/16".parse().unwrap();
        assert_eq!(s.to_string(), "10.89.0.0/16");
        assert!(s.contains("10.89.255.1".parse().unwrap()));
        assert!(!s.contains("10.90.0.1".parse().unwrap()));
        let s: Subnet = "10.201.1.0/30".parse().unwrap();
        let h: Vec<_> = s.hosts().collect();
        assert_eq!(
            h,
            [
                "10.201.1.1".parse::<Ipv4Addr>().unwrap(),
                "10.201.1.2".parse().unwrap()
            ]
        );
        assert!("10.0.0.0/31".parse::<Subnet>().is_err());
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        let a: Subnet = "10.0.0.0/8".parse().unwrap();
        assert!(a.overlaps(&"10.89.0.0/16".parse().unwrap()));
    }

    #[test]
    fn veth_name_is_short_and_stable() {
        let n = host_veth_name("my-container-with-a-very-long-id-0123456789abcdef");
        assert_eq!(n.len(), 12);
        assert_eq!(
            n,
            host_veth_name("my-container-with-a-very-long-id-0123456789abcdef")
        );
        assert_ne!(n, host_veth_name("other"));
        assert_eq!(
            mac_string(mac_for("10.1.2.3".parse().unwrap())),
            "0a:58:0a:01:02:03"
        );
    }
}
