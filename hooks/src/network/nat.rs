//! NAT and forwarding rules in our own table `inet rtctr`.
//!
//! The table is derived from the stored networks and leases: [`plan`] (pure) turns them into
//! rules, [`apply`] replaces all rules of the table in one atomic nftables transaction. A teardown
//! therefore removes exactly the rules of the leaving container, and no rule handles have to
//! be tracked. Other tables (netavark's `ip nat`/`ip filter`, docker's) are never touched.
//! Note: a `drop` in another table's forward base chain still drops our forwarded packets;
//! an `accept` here cannot override it.

use std::io;
use std::net::Ipv4Addr;

use super::addr::Subnet;
use super::nft::{BaseChain, Batch, CmpOp, Expr, COMMENT_MAX};
use super::store::{Network, Proto};
use crate::error::{NetError, Result};

/// Name of our table (family inet).
pub const TABLE: &str = "rtctr";

/// Our base chains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainName {
    /// nat, hook postrouting, priority srcnat (100).
    Postrouting,
    /// nat, hook prerouting, priority dstnat (-100).
    Prerouting,
    /// nat, hook output, priority dstnat (-100): published ports from the host itself.
    Output,
    /// filter, hook forward, priority filter (0).
    Forward,
}

impl ChainName {
    fn name(self) -> &'static str {
        self.base().name
    }

    /// Hook, priority and type of the chain.
    fn base(self) -> BaseChain<'static> {
        let (name, hook, priority, kind) = match self {
            ChainName::Postrouting => ("postrouting", libc::NF_INET_POST_ROUTING, 100, "nat"),
            ChainName::Prerouting => ("prerouting", libc::NF_INET_PRE_ROUTING, -100, "nat"),
            ChainName::Output => ("output", libc::NF_INET_LOCAL_OUT, -100, "nat"),
            ChainName::Forward => ("forward", libc::NF_INET_FORWARD, 0, "filter"),
        };
        BaseChain {
            name,
            hook,
            priority,
            kind,
        }
    }

    const ALL: [ChainName; 4] = [
        ChainName::Postrouting,
        ChainName::Prerouting,
        ChainName::Output,
        ChainName::Forward,
    ];
}

/// Our table's family.
const FAMILY: i32 = libc::NFPROTO_INET;

/// What a rule does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// `ip saddr S ip daddr != S masquerade`
    Masquerade(Subnet),
    /// `fib daddr type local <proto> dport P dnat ip to IP:PORT`
    Dnat {
        proto: Proto,
        host_port: u16,
        ip: Ipv4Addr,
        port: u16,
    },
    /// `iifname BR accept`
    AcceptIn(String),
    /// `oifname BR accept`
    AcceptOut(String),
    /// `ip saddr S ip daddr S oifname BR masquerade`: a container reaching a published port
    /// of a container on the same bridge through a host address (hairpin). Traffic between
    /// containers on one bridge is switched, not routed, so only DNATed packets match.
    /// (`iifname` cannot be used: it is unset in postrouting.)
    Hairpin(Subnet, String),
}

/// One planned rule; the comment names its network and, for DNAT, its container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRule {
    /// Chain it goes in.
    pub chain: ChainName,
    /// The rule.
    pub kind: RuleKind,
    /// `rtctr net=<name>` or `rtctr net=<name> ctr=<id>`.
    pub comment: String,
}

/// The rules for a set of networks (empty means: no table).
pub fn plan(nets: &[Network]) -> Vec<PlannedRule> {
    let mut rules = Vec::new();
    for n in nets {
        let c = comment(format!("rtctr net={}", n.name));
        if n.masquerade {
            rules.push(PlannedRule {
                chain: ChainName::Postrouting,
                kind: RuleKind::Masquerade(n.subnet),
                comment: c.clone(),
            });
        }
        rules.push(PlannedRule {
            chain: ChainName::Postrouting,
            kind: RuleKind::Hairpin(n.subnet, n.bridge.clone()),
            comment: c.clone(),
        });
        for kind in [
            RuleKind::AcceptIn(n.bridge.clone()),
            RuleKind::AcceptOut(n.bridge.clone()),
        ] {
            rules.push(PlannedRule {
                chain: ChainName::Forward,
                kind,
                comment: c.clone(),
            });
        }
        for l in &n.leases {
            for p in &l.ports {
                for chain in [ChainName::Prerouting, ChainName::Output] {
                    rules.push(PlannedRule {
                        chain,
                        kind: RuleKind::Dnat {
                            proto: p.proto,
                            host_port: p.host_port,
                            ip: l.ip,
                            port: p.container_port,
                        },
                        comment: comment(format!("{c} ctr={}", l.container)),
                    });
                }
            }
        }
    }
    rules
}

/// nftables comments hold at most 128 bytes with the NUL: cut longer ones on a char boundary
/// (they only inform; the rules themselves are derived from the stored leases).
fn comment(mut s: String) -> String {
    if s.len() > COMMENT_MAX {
        let mut end = COMMENT_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// `RTN_LOCAL` of linux/rtnetlink.h: a local address (what `fib daddr type` yields).
const RTN_LOCAL: u32 = 2;

/// `meta KEY == DATA`.
fn meta_is(key: i32, data: &[u8]) -> [Expr; 2] {
    [Expr::Meta(key), Expr::Cmp(CmpOp::Eq, data.to_vec())]
}

/// An interface name as nft compares it: the name and its NUL.
fn ifname(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

/// `ip saddr|daddr & MASK OP ADDR` (offset 12: saddr, 16: daddr).
fn ip_in(offset: u32, s: &Subnet, op: CmpOp) -> [Expr; 3] {
    [
        Expr::Payload {
            base: libc::NFT_PAYLOAD_NETWORK_HEADER,
            offset,
            len: 4,
        },
        Expr::Bitwise {
            mask: s.mask().octets().to_vec(),
            xor: vec![0; 4],
        },
        Expr::Cmp(op, s.addr.octets().to_vec()),
    ]
}

/// `fib daddr type local <proto> dport P dnat ip to IP:PORT`
fn dnat(proto: Proto, host_port: u16, ip: Ipv4Addr, port: u16) -> Vec<Expr> {
    let l4 = match proto {
        Proto::Tcp => libc::IPPROTO_TCP as u8,
        Proto::Udp => libc::IPPROTO_UDP as u8,
    };
    let mut e = vec![
        Expr::FibDaddrType,
        Expr::Cmp(CmpOp::Eq, RTN_LOCAL.to_ne_bytes().to_vec()),
    ];
    e.extend(meta_is(libc::NFT_META_L4PROTO, &[l4]));
    e.extend([
        // the destination port, at offset 2 of both the tcp and the udp header
        Expr::Payload {
            base: libc::NFT_PAYLOAD_TRANSPORT_HEADER,
            offset: 2,
            len: 2,
        },
        Expr::Cmp(CmpOp::Eq, host_port.to_be_bytes().to_vec()),
        Expr::Immediate {
            reg: libc::NFT_REG_1,
            data: ip.octets().to_vec(),
        },
        Expr::Immediate {
            reg: libc::NFT_REG_2,
            data: port.to_be_bytes().to_vec(),
        },
        Expr::Dnat {
            addr_reg: libc::NFT_REG_1,
            proto_reg: libc::NFT_REG_2,
        },
    ]);
    e
}

/// The expressions of a rule (IPv4-only rules first match `meta nfproto ipv4`).
fn exprs(kind: &RuleKind) -> Vec<Expr> {
    let mut e = Vec::new();
    if !matches!(kind, RuleKind::AcceptIn(_) | RuleKind::AcceptOut(_)) {
        e.extend(meta_is(libc::NFT_META_NFPROTO, &[libc::NFPROTO_IPV4 as u8]));
    }
    match kind {
        RuleKind::Masquerade(s) => {
            e.extend(ip_in(12, s, CmpOp::Eq));
            e.extend(ip_in(16, s, CmpOp::Neq));
            e.push(Expr::Masquerade);
        }
        RuleKind::Dnat {
            proto,
            host_port,
            ip,
            port,
        } => e.extend(dnat(*proto, *host_port, *ip, *port)),
        RuleKind::Hairpin(s, br) => {
            e.extend(ip_in(12, s, CmpOp::Eq));
            e.extend(ip_in(16, s, CmpOp::Eq));
            e.extend(meta_is(libc::NFT_META_OIFNAME, &ifname(br)));
            e.push(Expr::Masquerade);
        }
        RuleKind::AcceptIn(br) => {
            e.extend(meta_is(libc::NFT_META_IIFNAME, &ifname(br)));
            e.push(Expr::Accept);
        }
        RuleKind::AcceptOut(br) => {
            e.extend(meta_is(libc::NFT_META_OIFNAME, &ifname(br)));
            e.push(Expr::Accept);
        }
    }
    e
}

/// Make table `inet rtctr` hold exactly `rules`, in one transaction (no rules: delete the
/// table). The table and base chains are kept when they exist and their rules flushed and
/// re-added: re-creating base chains would re-register netfilter hooks, which costs several
/// milliseconds per transaction.
pub fn apply(rules: &[PlannedRule]) -> Result<()> {
    let mut batch = Batch::new();
    // NEWTABLE/NEWCHAIN without NLM_F_EXCL are no-ops for existing objects.
    batch.add_table(FAMILY, TABLE);
    if rules.is_empty() {
        batch.del_table(FAMILY, TABLE);
        return batch.send().map_err(|source| NetError::Nft {
            op: "deleting",
            source,
        });
    }
    for ch in ChainName::ALL {
        batch.add_chain(FAMILY, TABLE, &ch.base());
        batch.flush_chain(FAMILY, TABLE, ch.name());
    }
    add_rules(&mut batch, rules)?;
    batch.send().map_err(|source| NetError::Nft {
        op: "updating",
        source,
    })
}

/// Append `rules` to the chains of the existing table (no flush).
pub fn append(rules: &[PlannedRule]) -> Result<()> {
    let mut batch = Batch::new();
    add_rules(&mut batch, rules)?;
    batch.send().map_err(|source| NetError::Nft {
        op: "appending rules to",
        source,
    })
}

fn add_rules(batch: &mut Batch, rules: &[PlannedRule]) -> Result<()> {
    for r in rules {
        batch
            .add_rule(FAMILY, (TABLE, r.chain.name()), &exprs(&r.kind), &r.comment)
            .map_err(|source| NetError::Nft {
                op: "building rule comment for",
                source,
            })?;
    }
    Ok(())
}

/// Bring the table from `before` to `after` cheaply. Deleting rules costs an RCU grace
/// period (8-16 ms on the test VM), appending costs ~0.2 ms: so when no rule goes away and
/// the table exists, only the new rules are appended (nothing at all for a container without
/// published ports); otherwise the table is rebuilt with [`apply`].
pub fn sync(before: &[PlannedRule], after: &[PlannedRule]) -> Result<()> {
    if after.is_empty() && before.is_empty() {
        return Ok(());
    }
    let removes = before.iter().any(|r| !after.contains(r));
    if !removes && !after.is_empty() {
        let exists = table_exists().map_err(|source| NetError::Nft {
            op: "looking up",
            source,
        })?;
        if exists {
            let added: Vec<PlannedRule> = after
                .iter()
                .filter(|r| !before.contains(r))
                .cloned()
                .collect();
            // A failed append (chains missing) falls back to a full rebuild.
            if added.is_empty() || append(&added).is_ok() {
                return Ok(());
            }
        }
    }
    apply(after)
}

/// Base chains of *other* tables hooked at `forward` whose policy is `drop`, as
/// "family table chain" (e.g. docker's `ip filter FORWARD`). They drop our forwarded packets
/// whatever our table accepts; we do not touch them, we report them. (A `drop` rule in an
/// accepting chain has the same effect but is not detected.)
pub fn foreign_forward_drops() -> Result<Vec<String>> {
    dump_forward_drops().map_err(|source| NetError::Nft {
        op: "listing chains beside",
        source,
    })
}

fn dump_forward_drops() -> io::Result<Vec<String>> {
    let mut found = Vec::new();
    for c in super::nft::chains()? {
        let family = family_name(c.family);
        if c.hook == Some(libc::NF_INET_FORWARD as u32)
            && c.policy == Some(libc::NF_DROP as u32)
            && !(family == "inet" && c.table == TABLE)
        {
            found.push(format!("{family} {} {}", c.table, c.name));
        }
    }
    Ok(found)
}

fn family_name(f: u8) -> &'static str {
    match i32::from(f) {
        libc::NFPROTO_IPV4 => "ip",
        libc::NFPROTO_IPV6 => "ip6",
        libc::NFPROTO_INET => "inet",
        libc::NFPROTO_BRIDGE => "bridge",
        libc::NFPROTO_ARP => "arp",
        libc::NFPROTO_NETDEV => "netdev",
        _ => "?",
    }
}

/// Whether a table named `rtctr` exists (in any family).
fn table_exists() -> io::Result<bool> {
    Ok(super::nft::table_names()?.iter().any(|t| t == TABLE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::store::{Lease, PortMapping};

    #[test]
    fn plan_names_containers() {
        let n = Network {
            name: "t".into(),
            subnet: "10.201.0.0/24".parse().unwrap(),
            bridge: "rtt0".into(),
            gateway: "10.201.0.1".parse().unwrap(),
            masquerade: true,
            leases: vec![Lease {
                container: "c1".into(),
                ip: "10.201.0.2".parse().unwrap(),
                veth: "rv1".into(),
                ports: vec![PortMapping {
                    host_port: 8080,
                    container_port: 80,
                    proto: Proto::Tcp,
                }],
            }],
        };
        let p = plan(&[n]);
        assert_eq!(p.len(), 6);
        assert_eq!(
            p.iter()
                .filter(|r| r.comment == "rtctr net=t ctr=c1")
                .count(),
            2
        );
        assert!(plan(&[]).is_empty());
        assert_eq!(comment("é".repeat(100)).len(), 126);
    }
}
