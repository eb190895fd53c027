//! NAT and forwarding rules in our own table `inet rtctr`.
//!
//! The table is derived from the stored networks and leases: [`plan`] (pure) turns them into
//! rules, [`apply`] replaces all rules of the table in one atomic nftables transaction. A teardown
//! therefore removes exactly the rules of the leaving container, and no rule handles have to
//! be tracked. Other tables (netavark's `ip nat`/`ip filter`, docker's) are never touched.
//! Note: a `drop` in another table's forward base chain still drops our forwarded packets;
//! an `accept` here cannot override it.

use std::ffi::{CStr, CString};
use std::io;
use std::net::Ipv4Addr;
use std::ptr::NonNull;

use nftnl::expr::{Expression, Immediate, InterfaceName, Nat, NatType, Register};
use nftnl::nftnl_sys as sys;
use nftnl::{
    nft_expr, Batch, Chain, ChainType, FinalizedBatch, Hook, MsgType, ProtoFamily, Rule, Table,
};

use super::addr::Subnet;
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
    fn name(self) -> &'static CStr {
        match self {
            ChainName::Postrouting => c"postrouting",
            ChainName::Prerouting => c"prerouting",
            ChainName::Output => c"output",
            ChainName::Forward => c"forward",
        }
    }
    const ALL: [ChainName; 4] = [
        ChainName::Postrouting,
        ChainName::Prerouting,
        ChainName::Output,
        ChainName::Forward,
    ];
}

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
    if s.len() > 127 {
        let mut end = 127;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// `fib daddr type` into register 1 (nftnl has no wrapper for the fib expression).
struct FibDaddrType;

const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
const RTN_LOCAL: u32 = 2;

impl Expression for FibDaddrType {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        // SAFETY: "fib" is a valid NUL-terminated expression name; the call has no other
        // preconditions and returns null only on allocation failure, handled below.
        let raw = unsafe { sys::nftnl_expr_alloc(c"fib".as_ptr()) };
        let Some(expr) = NonNull::new(raw) else {
            std::process::abort();
        };
        for (attr, val) in [
            (sys::NFTNL_EXPR_FIB_DREG, libc::NFT_REG_1 as u32),
            (sys::NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE),
            (sys::NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR),
        ] {
            // SAFETY: `expr` is a live fib expression we just allocated and own; these are
            // u32 attributes of the fib expression.
            unsafe { sys::nftnl_expr_set_u32(expr.as_ptr(), attr as u16, val) };
        }
        expr
    }
}

fn ifname(name: &str) -> InterfaceName {
    InterfaceName::Exact(CString::new(name).unwrap_or_default())
}

fn add_exprs(rule: &mut Rule, kind: &RuleKind) {
    if !matches!(kind, RuleKind::AcceptIn(_) | RuleKind::AcceptOut(_)) {
        rule.add_expr(&nft_expr!(meta nfproto));
        rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV4 as u8));
    }
    match kind {
        RuleKind::Masquerade(s) => {
            rule.add_expr(&nft_expr!(payload ipv4 saddr));
            rule.add_expr(&nft_expr!(bitwise mask s.mask(), xor 0u32));
            rule.add_expr(&nft_expr!(cmp == s.addr));
            rule.add_expr(&nft_expr!(payload ipv4 daddr));
            rule.add_expr(&nft_expr!(bitwise mask s.mask(), xor 0u32));
            rule.add_expr(&nft_expr!(cmp != s.addr));
            rule.add_expr(&nft_expr!(masquerade));
        }
        RuleKind::Dnat {
            proto,
            host_port,
            ip,
            port,
        } => {
            rule.add_expr(&FibDaddrType);
            rule.add_expr(&nft_expr!(cmp == RTN_LOCAL));
            rule.add_expr(&nft_expr!(meta l4proto));
            match proto {
                Proto::Tcp => {
                    rule.add_expr(&nft_expr!(cmp == libc::IPPROTO_TCP as u8));
                    rule.add_expr(&nft_expr!(payload tcp dport));
                }
                Proto::Udp => {
                    rule.add_expr(&nft_expr!(cmp == libc::IPPROTO_UDP as u8));
                    rule.add_expr(&nft_expr!(payload udp dport));
                }
            }
            rule.add_expr(&nft_expr!(cmp == host_port.to_be()));
            rule.add_expr(&Immediate::new(*ip, Register::Reg1));
            rule.add_expr(&Immediate::new(port.to_be(), Register::Reg2));
            rule.add_expr(&Nat {
                nat_type: NatType::DNat,
                family: ProtoFamily::Ipv4,
                ip_register: Register::Reg1,
                port_register: Some(Register::Reg2),
            });
        }
        RuleKind::Hairpin(s, br) => {
            rule.add_expr(&nft_expr!(payload ipv4 saddr));
            rule.add_expr(&nft_expr!(bitwise mask s.mask(), xor 0u32));
            rule.add_expr(&nft_expr!(cmp == s.addr));
            rule.add_expr(&nft_expr!(payload ipv4 daddr));
            rule.add_expr(&nft_expr!(bitwise mask s.mask(), xor 0u32));
            rule.add_expr(&nft_expr!(cmp == s.addr));
            rule.add_expr(&nft_expr!(meta oifname));
            rule.add_expr(&nft_expr!(cmp == ifname(br)));
            rule.add_expr(&nft_expr!(masquerade));
        }
        RuleKind::AcceptIn(br) => {
            rule.add_expr(&nft_expr!(meta iifname));
            rule.add_expr(&nft_expr!(cmp == ifname(br)));
            rule.add_expr(&nft_expr!(verdict accept));
        }
        RuleKind::AcceptOut(br) => {
            rule.add_expr(&nft_expr!(meta oifname));
            rule.add_expr(&nft_expr!(cmp == ifname(br)));
            rule.add_expr(&nft_expr!(verdict accept));
        }
    }
}

/// Make table `inet rtctr` hold exactly `rules`, in one transaction (no rules: delete the
/// table). The table and base chains are kept when they exist and their rules flushed and
/// re-added: re-creating base chains would re-register netfilter hooks, which costs several
/// milliseconds per transaction.
pub fn apply(rules: &[PlannedRule]) -> Result<()> {
    let mut batch = Batch::new();
    let table = Table::new(c"rtctr", ProtoFamily::Inet);
    // NEWTABLE/NEWCHAIN without NLM_F_EXCL are no-ops for existing objects.
    batch.add(&table, MsgType::Add);
    if rules.is_empty() {
        batch.add(&table, MsgType::Del);
        return send(&batch.finalize()).map_err(|source| NetError::Nft {
            op: "deleting",
            source,
        });
    }
    let chains = base_chains(&table);
    for ch in &chains {
        batch.add(ch, MsgType::Add);
        // DELRULE naming only the chain flushes it.
        batch.add(&Rule::new(ch), MsgType::Del);
    }
    add_rules(&mut batch, &chains, rules)?;
    send(&batch.finalize()).map_err(|source| NetError::Nft {
        op: "updating",
        source,
    })
}

/// Append `rules` to the chains of the existing table (no flush).
pub fn append(rules: &[PlannedRule]) -> Result<()> {
    let mut batch = Batch::new();
    let table = Table::new(c"rtctr", ProtoFamily::Inet);
    let chains = base_chains(&table);
    add_rules(&mut batch, &chains, rules)?;
    send(&batch.finalize()).map_err(|source| NetError::Nft {
        op: "appending rules to",
        source,
    })
}

fn base_chains(table: &Table) -> Vec<Chain<'_>> {
    ChainName::ALL
        .iter()
        .map(|c| {
            let mut ch = Chain::new(c.name(), table);
            let (hook, prio, ty) = match c {
                ChainName::Postrouting => (Hook::PostRouting, 100, ChainType::Nat),
                ChainName::Prerouting => (Hook::PreRouting, -100, ChainType::Nat),
                ChainName::Output => (Hook::Out, -100, ChainType::Nat),
                ChainName::Forward => (Hook::Forward, 0, ChainType::Filter),
            };
            ch.set_hook(hook, prio);
            ch.set_type(ty);
            ch
        })
        .collect()
}

fn add_rules(batch: &mut Batch, chains: &[Chain], rules: &[PlannedRule]) -> Result<()> {
    for r in rules {
        let i = ChainName::ALL
            .iter()
            .position(|c| *c == r.chain)
            .unwrap_or(0);
        let mut rule = Rule::new(&chains[i]);
        let comment = CString::new(r.comment.clone()).unwrap_or_default();
        rule.set_comment(&comment).map_err(|e| NetError::Nft {
            op: "building rule comment for",
            source: io::Error::other(e),
        })?;
        add_exprs(&mut rule, &r.kind);
        batch.add(&rule, MsgType::Add);
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
    let socket = mnl::Socket::new(mnl::Bus::Netfilter)?;
    let portid = socket.portid();
    let seq = 1;
    let mut msg = vec![0u8; nftnl::nft_nlmsg_maxsize() as usize];
    // SAFETY: `msg` is a writable buffer of nft_nlmsg_maxsize() bytes, more than a netlink
    // header needs; the returned header pointer is not used.
    unsafe {
        sys::nftnl_nlmsg_build_hdr(
            msg.as_mut_ptr().cast(),
            libc::NFT_MSG_GETCHAIN as u16,
            libc::NFPROTO_UNSPEC as u16,
            (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16,
            seq,
        )
    };
    let len = u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
    socket.send(&msg[..len.min(msg.len())])?;
    let mut found = Vec::new();
    let mut buffer = vec![0; nftnl::nft_nlmsg_maxsize() as usize];
    loop {
        let n = socket.recv_raw(&mut buffer)?;
        if n == 0 {
            break;
        }
        match mnl::cb_run2(&buffer[..n], seq, portid, forward_drop_cb, &mut found)? {
            mnl::CbResult::Stop => break,
            mnl::CbResult::Ok => {}
        }
    }
    Ok(found)
}

fn family_name(f: u32) -> &'static str {
    match f as i32 {
        libc::NFPROTO_IPV4 => "ip",
        libc::NFPROTO_IPV6 => "ip6",
        libc::NFPROTO_INET => "inet",
        libc::NFPROTO_BRIDGE => "bridge",
        libc::NFPROTO_ARP => "arp",
        libc::NFPROTO_NETDEV => "netdev",
        _ => "?",
    }
}

fn forward_drop_cb(header: &libc::nlmsghdr, found: &mut Vec<String>) -> libc::c_int {
    // SAFETY: allocation has no preconditions; null is checked below.
    let chain = unsafe { sys::nftnl_chain_alloc() };
    if chain.is_null() {
        return -1;
    }
    // SAFETY: `header` is a complete netlink message handed to us by mnl_cb_run, `chain` is
    // a live chain object we own; parse only reads the message.
    let parsed = unsafe { sys::nftnl_chain_nlmsg_parse(header, chain) };
    let attr = |a: u32| a as u16;
    // SAFETY: `chain` is live; the getters return 0 / null for unset attributes, and the
    // string pointers stay valid until `nftnl_chain_free` below, after we copied them.
    unsafe {
        let is = |a| sys::nftnl_chain_is_set(chain, attr(a));
        let u = |a| sys::nftnl_chain_get_u32(chain, attr(a));
        let st = |a| {
            let p = sys::nftnl_chain_get_str(chain, attr(a));
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        if parsed >= 0
            && is(sys::NFTNL_CHAIN_HOOKNUM)
            && u(sys::NFTNL_CHAIN_HOOKNUM) == libc::NF_INET_FORWARD as u32
            && is(sys::NFTNL_CHAIN_POLICY)
            && u(sys::NFTNL_CHAIN_POLICY) == libc::NF_DROP as u32
        {
            let family = family_name(u(sys::NFTNL_CHAIN_FAMILY));
            let table = st(sys::NFTNL_CHAIN_TABLE);
            if !(family == "inet" && table == TABLE) {
                found.push(format!("{family} {table} {}", st(sys::NFTNL_CHAIN_NAME)));
            }
        }
        sys::nftnl_chain_free(chain);
    }
    1 // MNL_CB_OK
}

/// Whether a table named `rtctr` exists.
fn table_exists() -> io::Result<bool> {
    let socket = mnl::Socket::new(mnl::Bus::Netfilter)?;
    let portid = socket.portid();
    let seq = 1;
    let msg = nftnl::table::get_tables_nlmsg(seq);
    let len = msg
        .get(..4)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0)
        .min(msg.len());
    socket.send(&msg[..len])?;
    let mut tables = std::collections::HashSet::new();
    let mut buffer = vec![0; nftnl::nft_nlmsg_maxsize() as usize];
    loop {
        let n = socket.recv_raw(&mut buffer)?;
        if n == 0 {
            break;
        }
        match mnl::cb_run2(
            &buffer[..n],
            seq,
            portid,
            nftnl::table::get_tables_cb,
            &mut tables,
        )? {
            mnl::CbResult::Stop => break,
            mnl::CbResult::Ok => {}
        }
    }
    Ok(tables.iter().any(|t| t.as_c_str() == c"rtctr"))
}

fn send(batch: &FinalizedBatch) -> io::Result<()> {
    let socket = mnl::Socket::new(mnl::Bus::Netfilter)?;
    let portid = socket.portid();
    socket.send_all(batch)?;
    let mut buffer = vec![0; nftnl::nft_nlmsg_maxsize() as usize];
    let mut expected = batch.sequence_numbers();
    while !expected.is_empty() {
        for message in socket.recv(&mut buffer[..])? {
            let message = message?;
            let Some(seq) = expected.next() else {
                return Err(io::Error::other("unexpected nftables ACK"));
            };
            mnl::cb_run(message, seq, portid)?;
        }
    }
    Ok(())
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
