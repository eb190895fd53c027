//! Setup latency: `make bench`, or `cargo bench -p rtctr-hooks --bench setup` (root).
//! Everything runs inside a throw-away host-sim netns; the container netns are
//! created before the timer starts. Compares the in-process library, the `rtctr-net-hook`
//! binary, and the CNI bridge plugin (`/usr/lib/cni/bridge` + host-local, ipMasq) doing the
//! same job (bridge, veth, address, default route, masquerade); then the cost of an nftables
//! transaction, and of applying a typical rule set (12 rules) to a new table.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rtctr_hooks::{Netns, Networks, Request};

const RUNS: usize = 50;

fn report(what: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what:<34} n={} p50={:.2} ms p90={:.2} ms min={:.2} ms",
        v.len(),
        ms(v[v.len() / 2]),
        ms(v[v.len() * 9 / 10]),
        ms(v[0])
    );
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> std::process::Output {
    let mut ch = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ch.stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    ch.wait_with_output().unwrap()
}

fn main() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    setup_latency();
    nft_cost();
}

fn setup_latency() {
    let host = Ns::new("bench");
    let dir = tempfile::tempdir().unwrap();
    let nets = Networks::new(dir.path());
    host.run(|| nets.create("b", "10.201.9.0/24", Some("rtbb"), None, true))
        .unwrap();
    // Each run drops its first round (warm-up): from then on the bridge
    // exists, as in steady state.
    library_latency(&host, &nets);
    port_latency(&host, &nets);
    hook_latency(&host, &nets, dir.path());
    cni_latency(&host);
}

/// Setup and teardown through the library, in process.
fn library_latency(host: &Ns, nets: &Networks) {
    let ctrs: Vec<Ns> = (0..RUNS + 1).map(|i| Ns::new(&format!("b{i}"))).collect();
    let (mut setup, mut down) = (Vec::new(), Vec::new());
    host.run(|| {
        for (i, c) in ctrs.iter().enumerate() {
            let mut r = Request::new(format!("bench-{i}"), Netns::Path(c.path()));
            r.network = "b".into();
            let t = Instant::now();
            nets.setup(&r).unwrap();
            let s = t.elapsed();
            let t = Instant::now();
            nets.teardown(&r.container, Some("b")).unwrap();
            if i > 0 {
                setup.push(s);
                down.push(t.elapsed());
            }
        }
    });
    report("library setup (in-process)", setup);
    report("library teardown (in-process)", down);
}

/// Setup with one published port: the nftables transaction is part of the cost.
fn port_latency(host: &Ns, nets: &Networks) {
    let pctrs: Vec<Ns> = (0..RUNS + 1).map(|i| Ns::new(&format!("bp{i}"))).collect();
    let mut with_port = Vec::new();
    host.run(|| {
        for (i, c) in pctrs.iter().enumerate() {
            let mut r = Request::new(format!("benchp-{i}"), Netns::Path(c.path()));
            r.network = "b".into();
            r.ports = vec![rtctr_hooks::PortMapping {
                host_port: 18080,
                container_port: 80,
                proto: rtctr_hooks::Proto::Tcp,
            }];
            let t = Instant::now();
            nets.setup(&r).unwrap();
            let s = t.elapsed();
            nets.teardown(&r.container, Some("b")).unwrap();
            if i > 0 {
                with_port.push(s);
            }
        }
    });
    report("library setup, 1 published port", with_port);
}

/// The hook binary as a process (fork+exec included), default network.
fn hook_latency(host: &Ns, nets: &Networks, dir: &std::path::Path) {
    let bin = env!("CARGO_BIN_EXE_rtctr-net-hook");
    let sleepers: Vec<PidNs> = (0..RUNS + 1).map(|_| PidNs::new()).collect();
    let mut hook = Vec::new();
    host.run(|| {
        for (i, p) in sleepers.iter().enumerate() {
            let st = format!(
                r#"{{"ociVersion":"1.2.0","id":"hb-{i}","status":"creating","pid":{},"bundle":"/b"}}"#,
                p.pid()
            );
            let t = Instant::now();
            let out = run_with_stdin(
                Command::new(bin)
                    .arg("setup")
                    .env("RTCTR_NETWORK_DIR", dir),
                &st,
            );
            let e = t.elapsed();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            nets.teardown(&format!("hb-{i}"), None).unwrap();
            if i > 0 {
                hook.push(e);
            }
        }
    });
    report("rtctr-net-hook setup (process)", hook);
}

/// The CNI bridge plugin doing the same job.
fn cni_latency(host: &Ns) {
    let cni = "/usr/lib/cni/bridge";
    if !std::path::Path::new(cni).exists() {
        println!("{cni} not installed; skipping the CNI comparison");
        return;
    }
    let ipam = tempfile::tempdir().unwrap();
    let conf = format!(
        r#"{{"cniVersion":"1.0.0","name":"rtbench","type":"bridge","bridge":"cnib0","isGateway":true,"ipMasq":true,"ipam":{{"type":"host-local","subnet":"10.201.10.0/24","dataDir":"{}"}}}}"#,
        ipam.path().display()
    );
    let cctrs: Vec<Ns> = (0..RUNS + 1).map(|i| Ns::new(&format!("cni{i}"))).collect();
    let mut add = Vec::new();
    host.run(|| {
        for (i, c) in cctrs.iter().enumerate() {
            let env = |cmd: &str| {
                let mut k = Command::new(cni);
                k.env("CNI_COMMAND", cmd)
                    .env("CNI_CONTAINERID", format!("cni-{i}"))
                    .env("CNI_NETNS", c.path())
                    .env("CNI_IFNAME", "eth0")
                    .env("CNI_PATH", "/usr/lib/cni");
                k
            };
            let t = Instant::now();
            let out = run_with_stdin(&mut env("ADD"), &conf);
            let e = t.elapsed();
            assert!(
                out.status.success(),
                "cni ADD: {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let out = run_with_stdin(&mut env("DEL"), &conf);
            assert!(
                out.status.success(),
                "cni DEL: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            if i > 0 {
                add.push(e);
            }
        }
    });
    report("CNI bridge ADD (process)", add);
}

fn nft_cost() {
    use rtctr_hooks::network::nat::{self, ChainName, PlannedRule, RuleKind};
    let host = Ns::new("nft");
    let rule = |i: u16| PlannedRule {
        chain: ChainName::Prerouting,
        kind: RuleKind::Dnat {
            proto: rtctr_hooks::Proto::Tcp,
            host_port: 10000 + i,
            ip: "10.201.9.2".parse().unwrap(),
            port: 80,
        },
        comment: format!("c{i}"),
    };
    host.run(|| {
        let base = vec![PlannedRule {
            chain: ChainName::Forward,
            kind: RuleKind::AcceptIn("x".into()),
            comment: "n".into(),
        }];
        nat::apply(&base).unwrap();
        let (mut full, mut app) = (Vec::new(), Vec::new());
        for i in 0..30 {
            let mut r = base.clone();
            r.push(rule(i));
            let t = Instant::now();
            nat::apply(&r).unwrap();
            full.push(t.elapsed());
            let t = Instant::now();
            nat::append(&[rule(1000 + i)]).unwrap();
            app.push(t.elapsed());
        }
        report("nft flush+re-add", full);
        report("nft append 1 rule", app);
        nat::apply(&[]).unwrap();
        let typical = nat::plan(&[typical_network()]);
        let mut fresh = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            nat::apply(&typical).unwrap();
            fresh.push(t.elapsed());
            nat::apply(&[]).unwrap();
        }
        report(
            &format!("nft apply {} rules, new table", typical.len()),
            fresh,
        );
    });
}

/// A masqueraded network with four containers, each publishing a tcp port.
fn typical_network() -> rtctr_hooks::Network {
    use rtctr_hooks::{Lease, PortMapping, Proto};
    let leases = (0..4u8)
        .map(|i| Lease {
            container: format!("ctr-{i}"),
            ip: std::net::Ipv4Addr::new(10, 201, 9, 2 + i),
            veth: format!("rv{i}"),
            ports: vec![PortMapping {
                host_port: 8080 + u16::from(i),
                container_port: 80,
                proto: Proto::Tcp,
            }],
        })
        .collect();
    rtctr_hooks::Network {
        name: "b".into(),
        subnet: "10.201.9.0/24".parse().unwrap(),
        bridge: "rtbb".into(),
        gateway: "10.201.9.1".parse().unwrap(),
        masquerade: true,
        leases,
    }
}
