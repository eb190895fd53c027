//! The nftables table as the kernel holds it: a planned rule set with every rule kind is
//! applied inside a throw-away network namespace and listed with `nft`. The expected texts
//! were printed by nft 1.0.6 (Debian 12) for the table written by the nftnl/libnftnl version
//! of `nat.rs`, so they pin the encoding of our own netlink module to the old one.

mod common;

use common::*;
use rtctr_hooks::network::nat::{self, ChainName, PlannedRule, RuleKind};
use rtctr_hooks::network::store::{Lease, Network, PortMapping, Proto};
use rtctr_hooks::NetError;

/// Two networks: one masqueraded with published tcp and udp ports (one container id making
/// a 125-byte comment, the longest libnftnl took), one not masqueraded without leases.
fn networks() -> Vec<Network> {
    let port = |host_port, container_port, proto| PortMapping {
        host_port,
        container_port,
        proto,
    };
    let web = Network {
        name: "web".into(),
        subnet: "10.201.5.0/24".parse().unwrap(),
        bridge: "rtw5".into(),
        gateway: "10.201.5.1".parse().unwrap(),
        masquerade: true,
        leases: vec![
            Lease {
                container: "c1".into(),
                ip: "10.201.5.2".parse().unwrap(),
                veth: "rv1".into(),
                ports: vec![port(8080, 80, Proto::Tcp), port(5353, 53, Proto::Udp)],
            },
            Lease {
                container: "x".repeat(107),
                ip: "10.201.5.3".parse().unwrap(),
                veth: "rv2".into(),
                ports: vec![port(8443, 443, Proto::Tcp)],
            },
        ],
    };
    let iso = Network {
        name: "iso".into(),
        subnet: "10.201.6.0/25".parse().unwrap(),
        bridge: "rti6".into(),
        gateway: "10.201.6.1".parse().unwrap(),
        masquerade: false,
        leases: vec![],
    };
    vec![web, iso]
}

/// `nft ARGS…` in `host`; must succeed.
fn nft(host: &Ns, args: &[&str]) -> String {
    let mut v = vec!["nft"];
    v.extend_from_slice(args);
    let out = host.exec(&v);
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `nftables` array of `nft -j` output without its `metainfo` (nft's version).
fn json_objects(text: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("metainfo").is_none())
        .cloned()
        .collect()
}

#[test]
fn planned_rules_are_listed_as_before() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let host = Ns::new("nft");
    let rules = nat::plan(&networks());
    let kinds = |f: fn(&RuleKind) -> bool| rules.iter().filter(|r| f(&r.kind)).count();
    assert_eq!(kinds(|k| matches!(k, RuleKind::Masquerade(_))), 1);
    assert_eq!(kinds(|k| matches!(k, RuleKind::Hairpin(..))), 2);
    assert_eq!(kinds(|k| matches!(k, RuleKind::Dnat { .. })), 6);
    host.run(|| nat::apply(&rules)).unwrap();
    assert_eq!(
        nft(&host, &["list", "table", "inet", "rtctr"]),
        EXPECTED_TEXT
    );
    assert_eq!(
        json_objects(&nft(&host, &["-j", "list", "table", "inet", "rtctr"])),
        json_objects(EXPECTED_JSON)
    );
    assert_eq!(
        nft(
            &host,
            &["--debug=netlink", "list", "table", "inet", "rtctr"]
        ),
        EXPECTED_NETLINK
    );
    // applying the same rules again keeps the table as it is
    host.run(|| nat::apply(&rules)).unwrap();
    assert_eq!(
        nft(&host, &["list", "table", "inet", "rtctr"]),
        EXPECTED_TEXT
    );
    // no rules: the table is deleted
    host.run(|| nat::apply(&[])).unwrap();
    let out = host.exec(&["nft", "list", "table", "inet", "rtctr"]);
    assert!(!out.status.success(), "the table is still there");
    assert!(!nft(&host, &["list", "tables"]).contains("rtctr"));
}

#[test]
fn append_adds_after_the_existing_rules_and_errors_carry_the_errno() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let host = Ns::new("nft");
    let accept = |br: &str| PlannedRule {
        chain: ChainName::Forward,
        kind: RuleKind::AcceptIn(br.into()),
        comment: format!("rtctr net={br}"),
    };
    // no table: the kernel's ENOENT comes back as the error's errno
    let e = host.run(|| nat::append(&[accept("a")])).unwrap_err();
    let NetError::Nft { source, .. } = &e else {
        panic!("{e}");
    };
    assert_eq!(source.raw_os_error(), Some(libc::ENOENT), "{e}");
    host.run(|| nat::apply(&[accept("a")])).unwrap();
    host.run(|| nat::append(&[accept("b")])).unwrap();
    let text = nft(&host, &["list", "chain", "inet", "rtctr", "forward"]);
    let a = text.find(r#"iifname "a" accept comment "rtctr net=a""#);
    let b = text.find(r#"iifname "b" accept comment "rtctr net=b""#);
    assert!(a.is_some() && b.is_some() && a < b, "{text}");
    host.run(|| nat::apply(&[])).unwrap();
}

#[test]
fn forward_drops_of_other_tables_are_found() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let host = Ns::new("nft");
    host.run(|| nat::apply(&nat::plan(&networks()))).unwrap();
    assert_eq!(host.run(nat::foreign_forward_drops).unwrap(), [""; 0]);
    nft(
        &host,
        &["add table ip filter; \
             add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }; \
             add chain ip filter INPUT { type filter hook input priority 0; policy drop; }; \
             add table inet other; \
             add chain inet other fwdrop { type filter hook forward priority 10; policy drop; }; \
             add chain inet other open { type filter hook forward priority 20; }"],
    );
    let mut drops = host.run(nat::foreign_forward_drops).unwrap();
    drops.sort();
    assert_eq!(drops, ["inet other fwdrop", "ip filter FORWARD"]);
}

#[test]
fn a_comment_too_long_for_nftables_is_cut_to_127_bytes() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    // libnftnl refused comments over 125 bytes, failing the whole setup (nat.rs cut at 127)
    let host = Ns::new("nft");
    let mut nets = networks();
    nets[0].leases[1].container = "y".repeat(200);
    host.run(|| nat::apply(&nat::plan(&nets))).unwrap();
    let text = nft(&host, &["list", "chain", "inet", "rtctr", "prerouting"]);
    let cut = format!(r#"comment "rtctr net=web ctr={}""#, "y".repeat(127 - 18));
    assert!(text.contains(&cut), "{text}");
}

#[test]
fn a_thousand_rules_fit_in_one_transaction() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    // the default socket buffers held the batch and ACKs of about 100 rules (ENOBUFS)
    let host = Ns::new("nft");
    let rules: Vec<PlannedRule> = (0..1000u16)
        .map(|i| PlannedRule {
            chain: ChainName::Prerouting,
            kind: RuleKind::Dnat {
                proto: Proto::Tcp,
                host_port: 10000 + i,
                ip: "10.201.5.2".parse().unwrap(),
                port: 80,
            },
            comment: format!("rtctr net=web ctr=c{i}"),
        })
        .collect();
    host.run(|| nat::apply(&rules)).unwrap();
    let text = nft(&host, &["list", "chain", "inet", "rtctr", "prerouting"]);
    assert_eq!(text.matches(" dnat ip to 10.201.5.2:80 ").count(), 1000);
    assert!(text
        .contains(r#"tcp dport 10999 dnat ip to 10.201.5.2:80 comment "rtctr net=web ctr=c999""#));
}

/// `nft list table inet rtctr`.
const EXPECTED_TEXT: &str = include_str!("data/nft-list.txt");
/// `nft -j list table inet rtctr` (with handles: the rules' order in the transaction).
const EXPECTED_JSON: &str = include_str!("data/nft-list.json");
/// `nft --debug=netlink list table inet rtctr`: registers, lengths, byte order and the
/// comment's TLV as the kernel holds them, then the listing.
const EXPECTED_NETLINK: &str = include_str!("data/nft-netlink.txt");
