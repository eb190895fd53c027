//! A small nf_tables client: the netlink messages of `linux/netfilter/nf_tables.h` that
//! [`super::nat`] needs, encoded here and exchanged over a `NETLINK_NETFILTER` socket
//! (netlink-sys). No C library is involved, so the binaries link neither libnftnl nor libmnl.
//!
//! Encoding, as the kernel (and libnftnl) does it: netlink headers and attribute headers in
//! host byte order; numeric nf_tables attributes (registers, keys, offsets, lengths, hook
//! numbers, priorities, verdicts) as big-endian u32; compared, masked and immediate data as
//! raw bytes, in the order they have in the packet or register.

use std::io;

use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

// Attribute numbers from linux/netfilter/nf_tables.h (libc defines the NFT_MSG_* message
// types and NFT_* values, not these). Each enum starts with an UNSPEC = 0.

/// `enum nft_list_attributes`
const NFTA_LIST_ELEM: u16 = 1;
/// `enum nft_hook_attributes`
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
/// `enum nft_table_attributes`
const NFTA_TABLE_NAME: u16 = 1;
/// `enum nft_chain_attributes`
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
/// `enum nft_rule_attributes`
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
/// `enum nft_data_attributes`
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
/// `enum nft_verdict_attributes`
const NFTA_VERDICT_CODE: u16 = 1;
/// `enum nft_expr_attributes`
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
/// `enum nft_immediate_attributes`
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
/// `enum nft_bitwise_attributes`
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
/// `enum nft_cmp_attributes`
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
/// `enum nft_payload_attributes`
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
/// `enum nft_meta_attributes`
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
/// `enum nft_nat_attributes`
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
/// `enum nft_fib_attributes`
const NFTA_FIB_DREG: u16 = 1;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
/// `enum nft_fib_result`: the route type of the address (`RTN_*`).
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
/// `enum nft_fib_flags`: look up the destination address.
const NFTA_FIB_F_DADDR: u32 = 1 << 1;

/// libnftnl's user data TLV type for a rule comment (libnftnl/udata.h), which nft shows as
/// `comment "…"`.
const NFTNL_UDATA_RULE_COMMENT: u8 = 0;
/// nft accepts comments of up to 128 bytes without the NUL; ours are at most 127.
pub const COMMENT_MAX: usize = 127;

const NLMSG_HDRLEN: usize = 16;
/// `struct nfgenmsg`: family, version, resource id.
const NFGENMSG_LEN: usize = 4;

/// A comparison of register 1 with data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Neq,
}

/// One expression of a rule: the few rtctr's rules use. Loads go to register 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `meta load KEY => reg 1` (`NFT_META_*`).
    Meta(i32),
    /// `cmp OP reg 1 DATA`.
    Cmp(CmpOp, Vec<u8>),
    /// `payload load LEN @ BASE + OFFSET => reg 1` (`NFT_PAYLOAD_*_HEADER`).
    Payload { base: i32, offset: u32, len: u32 },
    /// `bitwise reg 1 = (reg 1 & MASK) ^ XOR`.
    Bitwise { mask: Vec<u8>, xor: Vec<u8> },
    /// `fib daddr type => reg 1`: the route type (`RTN_*`, host order) of the destination.
    FibDaddrType,
    /// `immediate reg REG DATA`.
    Immediate { reg: i32, data: Vec<u8> },
    /// `nat dnat ip addr_min reg ADDR proto_min reg PROTO`.
    Dnat { addr_reg: i32, proto_reg: i32 },
    /// `masq`.
    Masquerade,
    /// `immediate reg 0 accept`: the verdict.
    Accept,
}

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Meta(_) => "meta",
            Expr::Cmp(..) => "cmp",
            Expr::Payload { .. } => "payload",
            Expr::Bitwise { .. } => "bitwise",
            Expr::FibDaddrType => "fib",
            Expr::Immediate { .. } | Expr::Accept => "immediate",
            Expr::Dnat { .. } => "nat",
            Expr::Masquerade => "masq",
        }
    }
}

/// A base chain: attached to a netfilter hook.
#[derive(Clone, Copy, Debug)]
pub struct BaseChain<'a> {
    /// Chain name.
    pub name: &'a str,
    /// `NF_INET_*` hook number.
    pub hook: i32,
    /// Hook priority (lower runs first).
    pub priority: i32,
    /// `nat` or `filter`.
    pub kind: &'a str,
}

/// Appends `nlmsghdr` and `nfgenmsg`; returns where the message starts ([`finish_msg`]
/// writes its length).
fn start_msg(buf: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(&(flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id 0: the kernel
    buf.push(family);
    buf.push(libc::NFNETLINK_V0 as u8);
    buf.extend_from_slice(&res_id.to_be_bytes());
    start
}

fn finish_msg(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// Appends attribute `ty` holding the concatenation of `parts`, padded to 4 bytes.
fn put(buf: &mut Vec<u8>, ty: u16, parts: &[&[u8]]) {
    let len = 4 + parts.iter().map(|p| p.len()).sum::<usize>();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    for p in parts {
        buf.extend_from_slice(p);
    }
    buf.resize(buf.len() + (4 - len % 4) % 4, 0);
}

/// A u32 attribute in network byte order, as nf_tables reads them (`ntohl(nla_get_be32)`).
fn put_u32(buf: &mut Vec<u8>, ty: u16, value: u32) {
    put(buf, ty, &[&value.to_be_bytes()]);
}

/// A NUL-terminated string attribute.
fn put_str(buf: &mut Vec<u8>, ty: u16, s: &str) {
    put(buf, ty, &[s.as_bytes(), &[0]]);
}

/// Opens a nested attribute; [`end_nest`] writes its length.
fn start_nest(buf: &mut Vec<u8>, ty: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u16.to_ne_bytes());
    buf.extend_from_slice(&(ty | libc::NLA_F_NESTED as u16).to_ne_bytes());
    start
}

fn end_nest(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

/// `ty` holding `NFTA_DATA_VALUE` with `data`.
fn put_data(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let nest = start_nest(buf, ty);
    put(buf, NFTA_DATA_VALUE, &[data]);
    end_nest(buf, nest);
}

fn reg(r: i32) -> u32 {
    r as u32
}

/// The attributes inside `NFTA_EXPR_DATA` of one expression.
fn put_expr_data(buf: &mut Vec<u8>, expr: &Expr) {
    let reg1 = reg(libc::NFT_REG_1);
    match expr {
        Expr::Meta(key) => {
            put_u32(buf, NFTA_META_DREG, reg1);
            put_u32(buf, NFTA_META_KEY, *key as u32);
        }
        Expr::Cmp(op, data) => {
            let op = match op {
                CmpOp::Eq => libc::NFT_CMP_EQ,
                CmpOp::Neq => libc::NFT_CMP_NEQ,
            };
            put_u32(buf, NFTA_CMP_SREG, reg1);
            put_u32(buf, NFTA_CMP_OP, op as u32);
            put_data(buf, NFTA_CMP_DATA, data);
        }
        Expr::Payload { base, offset, len } => {
            put_u32(buf, NFTA_PAYLOAD_DREG, reg1);
            put_u32(buf, NFTA_PAYLOAD_BASE, *base as u32);
            put_u32(buf, NFTA_PAYLOAD_OFFSET, *offset);
            put_u32(buf, NFTA_PAYLOAD_LEN, *len);
        }
        Expr::Bitwise { mask, xor } => {
            put_u32(buf, NFTA_BITWISE_SREG, reg1);
            put_u32(buf, NFTA_BITWISE_DREG, reg1);
            put_u32(buf, NFTA_BITWISE_LEN, mask.len() as u32);
            put_data(buf, NFTA_BITWISE_MASK, mask);
            put_data(buf, NFTA_BITWISE_XOR, xor);
        }
        Expr::FibDaddrType => {
            put_u32(buf, NFTA_FIB_DREG, reg1);
            put_u32(buf, NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
            put_u32(buf, NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
        }
        Expr::Immediate { reg: r, data } => {
            put_u32(buf, NFTA_IMMEDIATE_DREG, reg(*r));
            put_data(buf, NFTA_IMMEDIATE_DATA, data);
        }
        Expr::Accept => put_accept(buf),
        Expr::Dnat {
            addr_reg,
            proto_reg,
        } => {
            put_u32(buf, NFTA_NAT_TYPE, libc::NFT_NAT_DNAT as u32);
            put_u32(buf, NFTA_NAT_FAMILY, libc::NFPROTO_IPV4 as u32);
            put_u32(buf, NFTA_NAT_REG_ADDR_MIN, reg(*addr_reg));
            put_u32(buf, NFTA_NAT_REG_PROTO_MIN, reg(*proto_reg));
        }
        Expr::Masquerade => {}
    }
}

/// The verdict register loaded with `accept`.
fn put_accept(buf: &mut Vec<u8>) {
    put_u32(buf, NFTA_IMMEDIATE_DREG, reg(libc::NFT_REG_VERDICT));
    let data = start_nest(buf, NFTA_IMMEDIATE_DATA);
    let verdict = start_nest(buf, NFTA_DATA_VERDICT);
    put_u32(buf, NFTA_VERDICT_CODE, libc::NF_ACCEPT as u32);
    end_nest(buf, verdict);
    end_nest(buf, data);
}

/// One `NFTA_LIST_ELEM` of `NFTA_RULE_EXPRESSIONS`: the expression's name and data.
fn put_expr(buf: &mut Vec<u8>, expr: &Expr) {
    let elem = start_nest(buf, NFTA_LIST_ELEM);
    put_str(buf, NFTA_EXPR_NAME, expr.name());
    let data = start_nest(buf, NFTA_EXPR_DATA);
    put_expr_data(buf, expr);
    end_nest(buf, data);
    end_nest(buf, elem);
}

/// `NFTA_RULE_USERDATA` in libnftnl's TLV form, which nft reads back as the comment: type,
/// length with the NUL, the text, NUL. A comment with a NUL inside is left empty.
fn comment_tlv(comment: &str) -> io::Result<Vec<u8>> {
    if comment.len() > COMMENT_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("rule comment longer than {COMMENT_MAX} bytes"),
        ));
    }
    let text = if comment.contains('\0') { "" } else { comment };
    let mut tlv = vec![NFTNL_UDATA_RULE_COMMENT, text.len() as u8 + 1];
    tlv.extend_from_slice(text.as_bytes());
    tlv.push(0);
    Ok(tlv)
}

/// One nf_tables transaction: `NFNL_MSG_BATCH_BEGIN`, the messages, `NFNL_MSG_BATCH_END`,
/// sent in one datagram; the kernel applies all of it or nothing. Every message asks for
/// an ACK (`NLM_F_ACK`), and [`Batch::send`] reads one per message.
pub struct Batch {
    buf: Vec<u8>,
    seq: u32,
    acks: Vec<u32>,
}

impl Batch {
    /// An empty transaction (its begin message written).
    pub fn new() -> Batch {
        let mut b = Batch {
            buf: Vec::with_capacity(4096),
            seq: 0,
            acks: Vec::new(),
        };
        b.control(libc::NFNL_MSG_BATCH_BEGIN);
        b
    }

    /// `NFNL_MSG_BATCH_BEGIN`/`_END`, naming the nf_tables subsystem. Kernels before 6.10
    /// ignore their `NLM_F_ACK` and newer ones ACK them, so their ACKs are not waited for.
    fn control(&mut self, ty: i32) {
        self.seq += 1;
        let subsys = libc::NFNL_SUBSYS_NFTABLES as u16;
        let flags = libc::NLM_F_ACK as u16;
        let start = start_msg(&mut self.buf, ty as u16, flags, self.seq, 0, subsys);
        finish_msg(&mut self.buf, start);
    }

    /// Starts nf_tables message `NFT_MSG_*` `ty` for `family`; the caller appends its
    /// attributes and calls [`finish_msg`].
    fn message(&mut self, ty: i32, flags: i32, family: i32) -> usize {
        self.seq += 1;
        self.acks.push(self.seq);
        let ty = ((libc::NFNL_SUBSYS_NFTABLES << 8) | ty) as u16;
        let flags = (flags | libc::NLM_F_ACK) as u16;
        start_msg(&mut self.buf, ty, flags, self.seq, family as u8, 0)
    }

    /// `NFT_MSG_NEWTABLE` (without `NLM_F_EXCL`: an existing table is kept as it is).
    pub fn add_table(&mut self, family: i32, table: &str) {
        let m = self.message(libc::NFT_MSG_NEWTABLE, 0, family);
        put_str(&mut self.buf, NFTA_TABLE_NAME, table);
        finish_msg(&mut self.buf, m);
    }

    /// `NFT_MSG_DELTABLE`: the table with its chains and rules.
    pub fn del_table(&mut self, family: i32, table: &str) {
        let m = self.message(libc::NFT_MSG_DELTABLE, 0, family);
        put_str(&mut self.buf, NFTA_TABLE_NAME, table);
        finish_msg(&mut self.buf, m);
    }

    /// `NFT_MSG_NEWCHAIN` of a base chain (an existing chain is kept as it is).
    pub fn add_chain(&mut self, family: i32, table: &str, chain: &BaseChain) {
        let m = self.message(libc::NFT_MSG_NEWCHAIN, libc::NLM_F_CREATE, family);
        let buf = &mut self.buf;
        put_str(buf, NFTA_CHAIN_TABLE, table);
        put_str(buf, NFTA_CHAIN_NAME, chain.name);
        let hook = start_nest(buf, NFTA_CHAIN_HOOK);
        put_u32(buf, NFTA_HOOK_HOOKNUM, chain.hook as u32);
        put_u32(buf, NFTA_HOOK_PRIORITY, chain.priority as u32);
        end_nest(buf, hook);
        put_str(buf, NFTA_CHAIN_TYPE, chain.kind);
        finish_msg(buf, m);
    }

    /// `NFT_MSG_DELRULE` naming only the chain: deletes all its rules.
    pub fn flush_chain(&mut self, family: i32, table: &str, chain: &str) {
        let m = self.message(libc::NFT_MSG_DELRULE, 0, family);
        put_str(&mut self.buf, NFTA_RULE_TABLE, table);
        put_str(&mut self.buf, NFTA_RULE_CHAIN, chain);
        finish_msg(&mut self.buf, m);
    }

    /// `NFT_MSG_NEWRULE`: appends a rule of `exprs` with `comment` (at most
    /// [`COMMENT_MAX`] bytes) to the end of the chain.
    pub fn add_rule(
        &mut self,
        family: i32,
        (table, chain): (&str, &str),
        exprs: &[Expr],
        comment: &str,
    ) -> io::Result<()> {
        let userdata = comment_tlv(comment)?;
        let flags = libc::NLM_F_CREATE | libc::NLM_F_APPEND | libc::NLM_F_EXCL;
        let m = self.message(libc::NFT_MSG_NEWRULE, flags, family);
        let buf = &mut self.buf;
        put_str(buf, NFTA_RULE_TABLE, table);
        put_str(buf, NFTA_RULE_CHAIN, chain);
        let list = start_nest(buf, NFTA_RULE_EXPRESSIONS);
        for e in exprs {
            put_expr(buf, e);
        }
        end_nest(buf, list);
        put(buf, NFTA_RULE_USERDATA, &[&userdata]);
        finish_msg(buf, m);
        Ok(())
    }

    /// Ends the transaction, sends it and reads the ACK of every message; the first error
    /// the kernel reports is returned with its errno.
    pub fn send(mut self) -> io::Result<()> {
        self.control(libc::NFNL_MSG_BATCH_END);
        let sock = open()?;
        make_room(&sock, self.buf.len(), self.acks.len());
        sock.send(&self.buf, 0)?;
        let mut pending = self.acks;
        while !pending.is_empty() {
            let (data, _) = sock.recv_from_full()?;
            for m in messages(&data)? {
                if m.ty == libc::NLMSG_ERROR as u16 {
                    kernel_result(m.payload)?;
                    pending.retain(|s| *s != m.seq);
                }
            }
        }
        Ok(())
    }
}

/// A `NETLINK_NETFILTER` socket with an automatic port id, talking to the kernel.
fn open() -> io::Result<Socket> {
    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    Ok(sock)
}

/// Receive-buffer room one ACK takes (its skb's truesize, rounded up generously).
const ACK_ROOM: usize = 2048;

/// Buffers large enough for a batch of `len` bytes and its `acks` ACKs: the kernel refuses
/// a datagram larger than the send buffer (`EMSGSIZE`) and drops ACKs that do not fit the
/// receive buffer (`ENOBUFS`); the defaults (208 KiB) held about 100 rules' ACKs. As nft
/// does, a buffer too small is raised with `SO_SNDBUFFORCE`/`SO_RCVBUFFORCE`. Those need
/// `CAP_NET_ADMIN` in the initial user namespace; without it the plain options raise them up
/// to `wmem_max`/`rmem_max`, and a batch that still does not fit fails as before.
fn make_room(sock: &Socket, len: usize, acks: usize) {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    // getsockopt reports what the kernel checks: twice the value set
    let send = len + 64;
    if getsockopt(sock, sockopt::SndBuf).is_ok_and(|have| have < send) {
        let forced = setsockopt(sock, sockopt::SndBufForce, &send);
        let _ = forced.or_else(|_| setsockopt(sock, sockopt::SndBuf, &send));
    }
    let recv = acks.saturating_add(2).saturating_mul(ACK_ROOM);
    if getsockopt(sock, sockopt::RcvBuf).is_ok_and(|have| have < recv) {
        let forced = setsockopt(sock, sockopt::RcvBufForce, &recv);
        let _ = forced.or_else(|_| setsockopt(sock, sockopt::RcvBuf, &recv));
    }
}

/// One netlink message of a datagram.
struct Message<'a> {
    ty: u16,
    seq: u32,
    /// What follows the netlink header.
    payload: &'a [u8],
}

/// The messages of a datagram from the kernel.
fn messages(mut data: &[u8]) -> io::Result<Vec<Message<'_>>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "truncated netlink message");
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if !(NLMSG_HDRLEN..=data.len()).contains(&len) {
            return Err(bad());
        }
        out.push(Message {
            ty: u16::from_ne_bytes([data[4], data[5]]),
            seq: u32::from_ne_bytes([data[8], data[9], data[10], data[11]]),
            payload: &data[NLMSG_HDRLEN..len],
        });
        data = data.get((len + 3) & !3..).unwrap_or_default();
    }
    Ok(out)
}

/// The error code of an `NLMSG_ERROR` message: `Ok` for an ACK, the errno otherwise.
fn kernel_result(payload: &[u8]) -> io::Result<()> {
    let code = payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short netlink error"))?;
    match code {
        0 => Ok(()),
        c => Err(io::Error::from_raw_os_error(-c)),
    }
}

/// The attributes in `data` as (type without flags, value).
fn attributes(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([data[0], data[1]]));
        if len < 4 || len > data.len() {
            break;
        }
        let ty = u16::from_ne_bytes([data[2], data[3]]) & !(libc::NLA_F_NESTED as u16);
        out.push((ty, &data[4..len]));
        data = data.get((len + 3) & !3..).unwrap_or_default();
    }
    out
}

fn attr_str(value: &[u8]) -> String {
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

fn attr_u32(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.get(..4)?.try_into().ok()?))
}

/// Dumps all objects of nf_tables message type `ty` (`NFT_MSG_GET*`, every family);
/// returns each reply's family and attributes.
fn dump(ty: i32) -> io::Result<Vec<(u8, Vec<u8>)>> {
    let sock = open()?;
    let seq = 1;
    let mut buf = Vec::with_capacity(NLMSG_HDRLEN + NFGENMSG_LEN);
    let flags = (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16;
    let ty = ((libc::NFNL_SUBSYS_NFTABLES << 8) | ty) as u16;
    let m = start_msg(&mut buf, ty, flags, seq, libc::NFPROTO_UNSPEC as u8, 0);
    finish_msg(&mut buf, m);
    sock.send(&buf, 0)?;
    let mut out = Vec::new();
    loop {
        let (data, _) = sock.recv_from_full()?;
        for m in messages(&data)? {
            if m.seq != seq {
                continue;
            }
            match i32::from(m.ty) {
                libc::NLMSG_DONE => return Ok(out),
                libc::NLMSG_ERROR => kernel_result(m.payload)?,
                _ if m.payload.len() >= NFGENMSG_LEN => {
                    out.push((m.payload[0], m.payload[NFGENMSG_LEN..].to_vec()))
                }
                _ => {}
            }
        }
    }
}

/// The names of all tables, of every family: an `NFT_MSG_GETTABLE` dump.
pub fn table_names() -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for (_, attrs) in dump(libc::NFT_MSG_GETTABLE)? {
        for (ty, value) in attributes(&attrs) {
            if ty == NFTA_TABLE_NAME {
                names.push(attr_str(value));
            }
        }
    }
    Ok(names)
}

/// A chain as the kernel lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainInfo {
    /// `NFPROTO_*` family of its table.
    pub family: u8,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub name: String,
    /// Hook number, for a base chain.
    pub hook: Option<u32>,
    /// Policy (`NF_ACCEPT`, `NF_DROP`), for a base chain.
    pub policy: Option<u32>,
}

/// All chains of all tables: an `NFT_MSG_GETCHAIN` dump.
pub fn chains() -> io::Result<Vec<ChainInfo>> {
    let mut out = Vec::new();
    for (family, attrs) in dump(libc::NFT_MSG_GETCHAIN)? {
        let mut c = ChainInfo {
            family,
            ..ChainInfo::default()
        };
        for (ty, value) in attributes(&attrs) {
            match ty {
                NFTA_CHAIN_TABLE => c.table = attr_str(value),
                NFTA_CHAIN_NAME => c.name = attr_str(value),
                NFTA_CHAIN_POLICY => c.policy = attr_u32(value),
                NFTA_CHAIN_HOOK => {
                    c.hook = attributes(value)
                        .into_iter()
                        .find(|(t, _)| *t == NFTA_HOOK_HOOKNUM)
                        .and_then(|(_, v)| attr_u32(v));
                }
                _ => {}
            }
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested() {
        let mut buf = Vec::new();
        let n = start_nest(&mut buf, NFTA_CHAIN_HOOK);
        put_u32(&mut buf, NFTA_HOOK_PRIORITY, -100i32 as u32);
        put_str(&mut buf, NFTA_CHAIN_TYPE, "nat");
        end_nest(&mut buf, n);
        assert_eq!(buf.len(), 4 + 8 + 8);
        assert_eq!(&buf[..4], &[20, 0, 4, 0x80]);
        assert_eq!(&buf[8..12], &(-100i32).to_be_bytes());
        assert_eq!(&buf[16..20], b"nat\0");
        let outer = attributes(&buf);
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].0, NFTA_CHAIN_HOOK);
        let inner = attributes(outer[0].1);
        assert_eq!(attr_u32(inner[0].1), Some(-100i32 as u32));
        assert_eq!(attr_str(inner[1].1), "nat");
    }

    #[test]
    fn comment_is_libnftnl_tlv() {
        assert_eq!(comment_tlv("ab").unwrap(), [0, 3, b'a', b'b', 0]);
        assert_eq!(comment_tlv("a\0b").unwrap(), [0, 1, 0]);
        assert_eq!(comment_tlv(&"x".repeat(127)).unwrap().len(), 130);
        assert!(comment_tlv(&"x".repeat(128)).is_err());
    }

    #[test]
    fn batch_frames_messages() {
        let mut b = Batch::new();
        b.add_table(libc::NFPROTO_INET, "rtctr");
        b.control(libc::NFNL_MSG_BATCH_END);
        let msgs = messages(&b.buf).unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].ty, libc::NFNL_MSG_BATCH_BEGIN as u16);
        assert_eq!(&msgs[0].payload[2..4], &10u16.to_be_bytes());
        assert_eq!(msgs[1].ty, (10 << 8) as u16);
        assert_eq!(msgs[1].payload[0], libc::NFPROTO_INET as u8);
        assert_eq!(b.acks, [msgs[1].seq]);
        assert_eq!(msgs[2].ty, libc::NFNL_MSG_BATCH_END as u16);
    }
}
