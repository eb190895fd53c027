//! A small synchronous rtnetlink client: rtnetlink's message builders over a blocking
//! `netlink_sys::Socket`, one request at a time, each acknowledged (`NLM_F_ACK`).

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use nix::sched::{setns, CloneFlags};
use rtnetlink::packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::{
    AddressMessageBuilder, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

/// An errno with the kernel's extended-ack message.
#[derive(Debug)]
struct KernelError {
    errno: i32,
    os: io::Error,
    msg: String,
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.os, self.msg)
    }
}

impl std::error::Error for KernelError {}

/// The errno of a netlink error (plain or with an ext-ack message).
pub fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
        .or_else(|| e.get_ref()?.downcast_ref::<KernelError>().map(|k| k.errno))
}

/// The kernel's error, with its extended-ack message when it sent one
/// ("Nexthop has invalid gateway" and the like).
fn nl_error(errno: i32, payload: &[u8]) -> io::Error {
    const NLMSG_HDRLEN: usize = 16;
    const NLMSGERR_ATTR_MSG: u16 = 1;
    let os = io::Error::from_raw_os_error(errno);
    let mut tlvs = payload.get(NLMSG_HDRLEN..).unwrap_or_default();
    while tlvs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([tlvs[0], tlvs[1]]));
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]);
        if len < 4 || len > tlvs.len() {
            break;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let msg = String::from_utf8_lossy(&tlvs[4..len]);
            let msg = msg.trim_end_matches('\0');
            if !msg.is_empty() {
                let kind = os.kind();
                return io::Error::new(
                    kind,
                    KernelError {
                        errno,
                        os,
                        msg: msg.to_string(),
                    },
                );
            }
        }
        tlvs = tlvs.get((len + 3) & !3..).unwrap_or_default();
    }
    os
}

/// A netlink route socket bound in one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

fn is_errno(e: &io::Error, want: i32) -> bool {
    errno(e) == Some(want)
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        sock.set_ext_ack(true)?;
        // Echo only the request's header in errors, so the ext-ack TLVs follow at offset 16.
        sock.set_cap_ack(true)?;
        Ok(Netlink { sock, seq: 0 })
    }

    /// A socket in the network namespace `ns` (a socket stays in the netns it was created
    /// in): the calling thread enters `ns`, creates the socket and returns to its own netns.
    pub fn open_in(ns: &File) -> io::Result<Netlink> {
        let own = File::open("/proc/thread-self/ns/net")?;
        setns(ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        let sock = Netlink::open();
        if let Err(e) = setns(&own, CloneFlags::CLONE_NEWNET) {
            // Staying in the container's netns would misdirect every later host operation.
            panic!("cannot return to the host network namespace: {e}");
        }
        sock
    }

    /// Send one request and collect the replies until its ACK (or DONE).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "zero-length netlink message",
                    ));
                }
                off += (len + 3) & !3;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => Err(nl_error(-code.get(), &e.header)),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// The index of a link, `None` if there is no link of that name.
    pub fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let msg = LinkUnspec::new_with_name(name).build();
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create a bridge (up). Returns false if it already existed.
    pub fn add_bridge(&mut self, name: &str) -> io::Result<bool> {
        let msg = LinkBridge::new(name).up().build();
        match self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL) {
            Ok(_) => Ok(true),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Set a link up, optionally attaching it to a controller (bridge).
    pub fn set_up(&mut self, index: u32, controller: Option<u32>) -> io::Result<()> {
        let mut b = LinkUnspec::new_with_index(index).up();
        if let Some(c) = controller {
            b = b.controller(c);
        }
        self.request(RouteNetlinkMessage::SetLink(b.build()), 0)
            .map(drop)
    }

    /// Add an IPv4 address; an existing identical address is fine.
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let msg = AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(ip, prefix)
            .build();
        match self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if !is_errno(&e, libc::EEXIST) => Err(e),
            _ => Ok(()),
        }
    }

    /// Create a veth pair whose peer is created directly inside the netns `peer_ns`, named
    /// `peer_name` with the MAC `peer_mac`.
    pub fn add_veth_into(
        &mut self,
        name: &str,
        peer_name: &str,
        peer_ns: &File,
        peer_mac: [u8; 6],
    ) -> io::Result<()> {
        let peer: LinkMessage = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer_name.to_string())
            .address(peer_mac.to_vec())
            .build();
        let mut peer = peer;
        peer.attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        let msg = LinkVeth::new(name, peer_name)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// Delete a link by name; a missing link is fine. Returns whether it existed.
    pub fn del_link(&mut self, name: &str) -> io::Result<bool> {
        let msg = LinkUnspec::new_with_name(name).build();
        match self.request(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(_) => Ok(true),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The permanent addresses of global scope of link `index` (IPv4 and
    /// IPv6; not the link-local or temporary ones the kernel makes), with
    /// their prefix lengths: those the runtime-spec says a moved
    /// `netDevices` interface keeps.
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<(IpAddr, u8)>> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewAddress(m) = reply else {
                continue;
            };
            if m.header.index != index || m.header.scope != AddressScope::Universe {
                continue;
            }
            let permanent = m.attributes.iter().any(
                |a| matches!(a, AddressAttribute::Flags(f) if f.contains(AddressFlags::Permanent)),
            ) || m.header.flags.contains(AddressHeaderFlags::Permanent);
            if !permanent {
                continue;
            }
            for attr in &m.attributes {
                if let AddressAttribute::Address(ip) = attr {
                    out.push((*ip, m.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    /// Add an IPv4 or IPv6 address; an existing identical address is fine.
    pub fn add_ip(&mut self, index: u32, ip: IpAddr, prefix: u8) -> io::Result<()> {
        let msg = match ip {
            IpAddr::V4(v4) => return self.add_address(index, v4, prefix),
            IpAddr::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(index)
                .address(v6, prefix)
                .build(),
        };
        match self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if !is_errno(&e, libc::EEXIST) => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves link `index` into the network namespace `ns`, under the same
    /// name (its addresses do not follow: the kernel drops them).
    pub fn move_link(&mut self, index: u32, ns: &File) -> io::Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .setns_by_fd(ns.as_raw_fd())
            .build();
        self.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
    }

    /// Renames link `index` (a name ending in `%d` gets the kernel's first
    /// free number).
    pub fn rename(&mut self, index: u32, name: &str) -> io::Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .name(name.to_string())
            .build();
        self.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
    }

    /// Add the default route via `gateway` on link `index`.
    pub fn add_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> io::Result<()> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_ack_message() {
        let mut p = vec![0u8; 16];
        let msg = b"Nexthop has invalid gateway\0";
        p.extend_from_slice(&((4 + msg.len()) as u16).to_ne_bytes());
        p.extend_from_slice(&1u16.to_ne_bytes());
        p.extend_from_slice(msg);
        let e = nl_error(libc::EINVAL, &p);
        assert!(
            e.to_string().ends_with(": Nexthop has invalid gateway"),
            "{e}"
        );
        assert_eq!(errno(&e), Some(libc::EINVAL));
        assert_eq!(
            nl_error(libc::EEXIST, &[0; 16]).raw_os_error(),
            Some(libc::EEXIST)
        );
    }
}
