//! `/etc/resolv.conf` and `/etc/hosts` contents for containers (the runtime writes them in its
//! state dir and binds them when the rootfs lacks them).

use std::net::Ipv4Addr;

/// Public resolvers used when the host has no usable (non-loopback) nameserver.
pub const FALLBACK_NAMESERVERS: [&str; 2] = ["1.1.1.1", "8.8.8.8"];

/// A resolv.conf from the host's `/etc/resolv.conf`.
pub fn resolv_conf() -> String {
    resolv_conf_from(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
}

/// A resolv.conf from `host`'s content: its `nameserver`, `search` and `options` lines,
/// without loopback nameservers (127.x, ::1: unreachable from the container's netns, e.g.
/// systemd-resolved's 127.0.0.53). Falls back to public resolvers if none is left.
pub fn resolv_conf_from(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let Some(addr) = words.next() else { continue };
                if addr.starts_with("127.") || addr == "::1" {
                    continue;
                }
                servers += 1;
                out.push_str(&format!("nameserver {addr}\n"));
            }
            Some("search") | Some("options") | Some("domain") => {
                out.push_str(line.trim());
                out.push('\n');
            }
            _ => {}
        }
    }
    if servers == 0 {
        for s in FALLBACK_NAMESERVERS {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    out
}

/// An /etc/hosts with localhost entries and the container's own name.
pub fn hosts(hostname: &str, ip: Option<Ipv4Addr>) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if !hostname.is_empty() {
        match ip {
            Some(ip) => s.push_str(&format!("{ip}\t{hostname}\n")),
            None => s.push_str(&format!("127.0.1.1\t{hostname}\n")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_skips_loopback() {
        let r = resolv_conf_from(
            "# x\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch a.example\noptions edns0\n",
        );
        assert_eq!(r, "nameserver 192.0.2.1\nsearch a.example\noptions edns0\n");
        assert_eq!(
            resolv_conf_from("nameserver 127.0.0.53\n"),
            "nameserver 1.1.1.1\nnameserver 8.8.8.8\n"
        );
    }

    #[test]
    fn hosts_has_name() {
        let h = hosts("web", Some(Ipv4Addr::new(10, 89, 0, 2)));
        assert!(h.contains("10.89.0.2\tweb\n") && h.starts_with("127.0.0.1\tlocalhost"));
    }
}
