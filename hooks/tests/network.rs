//! Kernel tests: bridges, veths, routes and nftables inside throw-away network namespaces.
//! Traffic only flows between addresses created here (10.201.x.0/24, 10.202.x.0/24).

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use rtctr_hooks::network::store::{PortMapping, Proto};
use rtctr_hooks::{NetError, Netns, Networks, Request};

fn ping(out: std::process::Output) -> bool {
    out.status.success()
}

#[test]
fn two_containers_masquerade_dnat_teardown_remove() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let w = World::new(1);
    let nets = &w.nets;
    w.host
        .run(|| nets.create("t1", "10.201.1.0/24", Some("rtb1"), None, true))
        .unwrap();
    let c1 = Ns::new("c1");
    let c2 = PidNs::new();
    let mut r1 = Request::new("ctr-one", Netns::Path(c1.path()));
    r1.network = "t1".into();
    r1.ports = vec![PortMapping {
        host_port: 8080,
        container_port: 80,
        proto: Proto::Tcp,
    }];
    let mut r2 = Request::new("ctr-two", Netns::Pid(c2.pid()));
    r2.network = "t1".into();
    let a1 = w.host.run(|| nets.setup(&r1)).unwrap();
    let a2 = w.host.run(|| nets.setup(&r2)).unwrap();
    assert_eq!(a1.ip, Ipv4Addr::new(10, 201, 1, 2));
    assert_eq!(a2.ip, Ipv4Addr::new(10, 201, 1, 3));
    assert_eq!(a1.gateway, Ipv4Addr::new(10, 201, 1, 1));

    // containers reach each other and the gateway
    assert!(ping(c1.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        &a2.ip.to_string()
    ])));
    assert!(ping(c2.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        &a1.ip.to_string()
    ])));
    assert!(ping(c2.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "10.201.1.1"
    ])));

    // container -> outside: the server sees the host's address (masquerade)
    let listener = w
        .outside
        .run(|| TcpListener::bind((w.outside_ip, 9000)))
        .unwrap();
    let client =
        c1.run(|| TcpStream::connect_timeout(&(w.outside_ip, 9000).into(), Duration::from_secs(2)));
    let client = client.expect("container connects to outside");
    let (_s, peer) = listener.accept().unwrap();
    assert_eq!(
        peer.ip(),
        w.host_ext,
        "outside should see the masqueraded address"
    );
    drop(client);

    // outside -> host_ext:8080 reaches the container's :80 (DNAT)
    let srv = c1
        .run(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 80)))
        .unwrap();
    let mut cl = w
        .outside
        .run(|| TcpStream::connect_timeout(&(w.host_ext, 8080).into(), Duration::from_secs(2)))
        .expect("outside connects to published port");
    let (mut s, peer) = srv.accept().unwrap();
    assert_eq!(peer.ip(), w.outside_ip);
    s.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    cl.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    drop((s, cl));

    // hairpin: the other container reaches the published port through the host address
    let mut cl = c2
        .run_in(|| TcpStream::connect_timeout(&(w.host_ext, 8080).into(), Duration::from_secs(2)))
        .expect("container reaches a published port via the host address");
    let (mut s, peer) = srv.accept().unwrap();
    assert_eq!(
        peer.ip(),
        a1.gateway,
        "hairpin traffic is masqueraded to the gateway"
    );
    s.write_all(b"hp").unwrap();
    cl.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hp");
    drop((s, cl));

    // the host itself reaches the published port (output chain)
    let cl = w
        .host
        .run(|| TcpStream::connect_timeout(&(w.host_ext, 8080).into(), Duration::from_secs(2)))
        .expect("host reaches its own published port");
    let (s, _) = srv.accept().unwrap();
    drop((s, cl, srv));

    // inspect shows both leases; the rules name the container
    let net = w.host.run(|| nets.inspect("t1")).unwrap();
    assert_eq!(net.leases.len(), 2);
    assert!(nft_mentions(&w.host, "ctr=ctr-one"));
    assert!(nft_mentions(&w.host, &a1.ip.to_string()));

    // teardown naming another network leaves the attachment alone
    w.host
        .run(|| nets.teardown("ctr-one", Some("other")))
        .unwrap();
    assert!(ping(c1.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "10.201.1.1"
    ])));

    // teardown: no lease, no veth on the bridge, no rule naming the address; idempotent
    w.host.run(|| nets.teardown("ctr-one", Some("t1"))).unwrap();
    w.host.run(|| nets.teardown("ctr-one", Some("t1"))).unwrap();
    w.host.run(|| nets.teardown("ctr-one", None)).unwrap();
    let net = w.host.run(|| nets.inspect("t1")).unwrap();
    assert_eq!(
        net.leases
            .iter()
            .map(|l| l.container.as_str())
            .collect::<Vec<_>>(),
        ["ctr-two"]
    );
    let ports = w.host.ip(&["-br", "link", "show", "master", "rtb1"]);
    assert!(!ports.contains(&a1.host_veth), "{ports}");
    assert!(ports.contains(&a2.host_veth), "{ports}");
    assert!(!nft_mentions(&w.host, &a1.ip.to_string()));
    assert!(!nft_mentions(&w.host, "ctr-one"));
    assert!(c1.exec(&["ip", "link", "show", "eth0"]).status.code() != Some(0));

    // network rm refuses while ctr-two is attached, then force removes everything
    let e = w.host.run(|| nets.remove("t1", false)).unwrap_err();
    assert!(matches!(e, NetError::InUse { count: 1, .. }), "{e}");
    w.host.run(|| nets.remove("t1", true)).unwrap();
    assert!(w.host.exec(&["ip", "link", "show", "rtb1"]).status.code() != Some(0));
    assert!(
        nft_table(&w.host).is_none(),
        "table should be gone with the last network"
    );
    assert!(w
        .host
        .run(|| nets.list())
        .unwrap()
        .iter()
        .all(|n| n.name != "t1"));
}

#[test]
fn default_network_created_on_first_use() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let w = World::new(2);
    let nets = &w.nets;
    let c = Ns::new("c");
    let a = w
        .host
        .run(|| nets.setup(&Request::new("dflt", Netns::Path(c.path()))))
        .unwrap();
    assert_eq!((a.network.as_str(), a.bridge.as_str()), ("rtctr", "rtctr0"));
    assert_eq!(a.ip, Ipv4Addr::new(10, 89, 0, 2));
    assert!(ping(c.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "10.89.0.1"
    ])));
    // ip_forward was turned on in the (simulated) host netns only
    assert_eq!(
        w.host
            .exec(&["cat", "/proc/sys/net/ipv4/ip_forward"])
            .stdout,
        b"1\n"
    );
    w.host.run(|| nets.teardown("dflt", None)).unwrap();
    // the bridge stays after the last container left
    w.host.ip(&["link", "show", "rtctr0"]);
    w.host.run(|| nets.remove("rtctr", false)).unwrap();
    assert!(nft_table(&w.host).is_none());
}

#[test]
fn parallel_setups_get_distinct_addresses() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let w = World::new(3);
    let nets = &w.nets;
    w.host
        .run(|| nets.create("par", "10.201.3.0/24", Some("rtb3"), None, true))
        .unwrap();
    let ctrs: Vec<Ns> = (0..8).map(|i| Ns::new(&format!("p{i}"))).collect();
    let hostpath = w.host.path();
    let ips: Vec<Ipv4Addr> = std::thread::scope(|s| {
        let hs: Vec<_> = ctrs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let hostpath = &hostpath;
                s.spawn(move || {
                    in_ns(hostpath, || {
                        // a separate Networks value per thread: separate lock file descriptions
                        let nets = Networks::new(nets.dir());
                        let mut r = Request::new(format!("par-{i}"), Netns::Path(c.path()));
                        r.network = "par".into();
                        nets.setup(&r).unwrap().ip
                    })
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = ips.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 8, "{ips:?}");
    let net = w.host.run(|| nets.inspect("par")).unwrap();
    assert_eq!(net.leases.len(), 8);
    for i in 0..8 {
        w.host
            .run(|| nets.teardown(&format!("par-{i}"), None))
            .unwrap();
    }
    assert!(w
        .host
        .ip(&["-br", "link", "show", "master", "rtb3"])
        .trim()
        .is_empty());
    w.host.run(|| nets.remove("par", false)).unwrap();
}

#[test]
fn failed_setups_leave_nothing_behind() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let w = World::new(4);
    let nets = &w.nets;
    w.host
        .run(|| nets.create("f", "10.201.4.0/24", Some("rtb4"), None, true))
        .unwrap();
    let ok = Ns::new("ok");
    let mut r = Request::new("holder", Netns::Path(ok.path()));
    r.network = "f".into();
    r.ports = vec![PortMapping {
        host_port: 8081,
        container_port: 80,
        proto: Proto::Tcp,
    }];
    let held = w.host.run(|| nets.setup(&r)).unwrap();

    let assert_clean = |id: &str| {
        let veth = rtctr_hooks::network::addr::host_veth_name(id);
        assert!(
            w.host.exec(&["ip", "link", "show", &veth]).status.code() != Some(0),
            "veth {veth} left"
        );
        let net = w.host.run(|| nets.inspect("f")).unwrap();
        assert_eq!(net.leases.len(), 1, "lease left: {:?}", net.leases);
        assert!(!nft_mentions(&w.host, id));
    };

    // fixed ip already taken
    let c = Ns::new("bad1");
    let mut r = Request::new("bad-ip", Netns::Path(c.path()));
    r.network = "f".into();
    r.ip = Some(held.ip);
    let e = w.host.run(|| nets.setup(&r)).unwrap_err();
    assert!(e.to_string().contains(&held.ip.to_string()), "{e}");
    assert_clean("bad-ip");

    // host port already published
    let mut r = Request::new("bad-port", Netns::Path(c.path()));
    r.network = "f".into();
    r.ports = vec![PortMapping {
        host_port: 8081,
        container_port: 81,
        proto: Proto::Tcp,
    }];
    let e = w.host.run(|| nets.setup(&r)).unwrap_err();
    assert!(matches!(e, NetError::PortTaken { port: 8081, .. }), "{e}");
    assert_clean("bad-port");

    // not a netns: a regular file, a missing path, and the caller's own netns
    let f = tempfile::NamedTempFile::new().unwrap();
    for p in [
        f.path().to_path_buf(),
        "/run/netns/rtt-does-not-exist".into(),
        w.host.path(),
    ] {
        let mut r = Request::new("bad-ns", Netns::Path(p.clone()));
        r.network = "f".into();
        let e = w.host.run(|| nets.setup(&r)).unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        assert_clean("bad-ns");
    }

    // fails after the veth exists: the container already has a default route
    let c3 = Ns::new("bad3");
    c3.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    c3.ip(&["addr", "add", "10.203.0.2/24", "dev", "d0"]);
    c3.ip(&["link", "set", "d0", "up"]);
    c3.ip(&["link", "set", "d1", "up"]);
    c3.ip(&["route", "add", "default", "via", "10.203.0.1"]);
    let mut r = Request::new("bad-route", Netns::Path(c3.path()));
    r.network = "f".into();
    r.ports = vec![PortMapping {
        host_port: 9999,
        container_port: 99,
        proto: Proto::Udp,
    }];
    let e = w.host.run(|| nets.setup(&r)).unwrap_err();
    assert!(e.to_string().contains("default route"), "{e}");
    assert_clean("bad-route");
    assert!(
        c3.exec(&["ip", "link", "show", "eth0"]).status.code() != Some(0),
        "eth0 left in container"
    );

    // an orphan host veth (a crashed setup of the same id) is replaced
    let orphan = rtctr_hooks::network::addr::host_veth_name("orphan");
    w.host.ip(&[
        "link",
        "add",
        &orphan,
        "type",
        "veth",
        "peer",
        "name",
        "orph-peer",
    ]);
    let c4 = Ns::new("orph");
    let mut r = Request::new("orphan", Netns::Path(c4.path()));
    r.network = "f".into();
    w.host.run(|| nets.setup(&r)).unwrap();
    assert!(ping(c4.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "10.201.4.1"
    ])));
    w.host.run(|| nets.teardown("orphan", None)).unwrap();
    assert_clean("orphan");

    // the container that was set up is untouched
    assert!(ping(ok.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "10.201.4.1"
    ])));
    w.host.run(|| nets.remove("f", true)).unwrap();
}

#[test]
fn hook_binary_setup_teardown() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let w = World::new(5);
    let c = PidNs::new();
    let bin = env!("CARGO_BIN_EXE_rtctr-net-hook");
    let dir = w.nets.dir().to_path_buf();
    let state = |status: &str, pid: bool| {
        let mut v = serde_json::json!({
            "ociVersion": "1.2.0", "id": "hooked", "status": status, "bundle": "/b",
            "annotations": {"rtctr.network.ports": "8082:80"}
        });
        if pid {
            v["pid"] = c.pid().into();
        }
        v.to_string()
    };
    let run = |cmd: &str, input: String| {
        let mut ch = std::process::Command::new("ip")
            .args(["netns", "exec", &w.host.name, bin, cmd])
            .env("RTCTR_NETWORK_DIR", &dir)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        ch.stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        ch.wait_with_output().unwrap()
    };
    let out = run("setup", state("creating", true));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ping(c.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "10.89.0.1"
    ])));
    let net = w.host.run(|| w.nets.inspect("rtctr")).unwrap();
    assert_eq!(net.leases[0].container, "hooked");
    // no rtctr.network annotation: the hook uses the default network, ports still apply
    assert!(nft_mentions(&w.host, "ctr=hooked"));
    let out = run("teardown", state("stopped", false));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(w
        .host
        .run(|| w.nets.inspect("rtctr"))
        .unwrap()
        .leases
        .is_empty());
    let out = run("setup", "{not json".into());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OCI state"));
    let out = run("setup", state("creating", false));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pid"));
    w.host.run(|| w.nets.remove("rtctr", false)).unwrap();
}

#[test]
fn stale_lease_of_a_dead_container_is_reclaimed() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let w = World::new(6);
    let nets = &w.nets;
    w.host
        .run(|| nets.create("st", "10.201.6.0/24", Some("rtb6"), None, true))
        .unwrap();
    let mut r = Request::new("phoenix", Netns::Pid(0));
    r.network = "st".into();
    r.ip = Some(Ipv4Addr::new(10, 201, 6, 50));
    r.ports = vec![PortMapping {
        host_port: 8086,
        container_port: 80,
        proto: Proto::Tcp,
    }];
    let first = PidNs::new();
    r.netns = Netns::Pid(first.pid());
    let a = w.host.run(|| nets.setup(&r)).unwrap();
    // the container dies without teardown: its netns and the veth pair go away
    drop(first);
    for _ in 0..200 {
        if w.host
            .exec(&["ip", "link", "show", &a.host_veth])
            .status
            .code()
            != Some(0)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // same id, same fixed ip, same port: the stale lease is released instead of refusing
    let second = PidNs::new();
    r.netns = Netns::Pid(second.pid());
    let b = w.host.run(|| nets.setup(&r)).unwrap();
    assert_eq!(b.ip, a.ip);
    assert!(ping(second.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "10.201.6.1"
    ])));
    // a live attachment is still refused
    let e = w.host.run(|| nets.setup(&r)).unwrap_err();
    assert!(matches!(e, NetError::AlreadyAttached { .. }), "{e}");
    w.host.run(|| nets.remove("st", true)).unwrap();
    assert!(nft_table(&w.host).is_none());
}

#[test]
fn foreign_forward_drop_is_reported() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let w = World::new(7);
    let nets = &w.nets;
    // what docker does: table ip filter, chain FORWARD, policy drop
    let out = w.host.exec(&[
        "nft",
        "add table ip filter; add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drops = w
        .host
        .run(rtctr_hooks::network::nat::foreign_forward_drops)
        .unwrap();
    assert_eq!(drops, ["ip filter FORWARD"]);
    w.host
        .run(|| nets.create("fd", "10.201.7.0/24", Some("rtb7"), None, true))
        .unwrap();
    let c = Ns::new("c");
    let mut r = Request::new("fwd", Netns::Path(c.path()));
    r.network = "fd".into();
    let a = w.host.run(|| nets.setup(&r)).unwrap();
    assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
    assert!(a.warnings[0].contains("ip filter FORWARD"));
    // and it really drops: the container cannot reach the outside; the gateway works
    assert!(ping(c.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "10.201.7.1"
    ])));
    assert!(!ping(c.exec(&[
        "busybox",
        "ping",
        "-c1",
        "-W1",
        &w.outside_ip.to_string()
    ])));
    w.host.run(|| nets.remove("fd", true)).unwrap();
}

#[test]
fn parallel_hook_processes_get_distinct_addresses() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let w = World::new(8);
    let bin = env!("CARGO_BIN_EXE_rtctr-net-hook");
    let dir = w.nets.dir().to_path_buf();
    let ctrs: Vec<PidNs> = (0..6).map(|_| PidNs::new()).collect();
    // all hook processes start at once, in the host-sim netns
    let children: Vec<_> = ctrs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let st = format!(
                r#"{{"ociVersion":"1.2.0","id":"pp-{i}","status":"creating","pid":{},"bundle":"/b","annotations":{{"rtctr.network.ports":"{}:80"}}}}"#,
                c.pid(),
                9100 + i
            );
            let mut ch = std::process::Command::new("ip")
                .args(["netns", "exec", &w.host.name, bin, "setup"])
                .env("RTCTR_NETWORK_DIR", &dir)
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            ch.stdin.take().unwrap().write_all(st.as_bytes()).unwrap();
            ch
        })
        .collect();
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let net = w.host.run(|| w.nets.inspect("rtctr")).unwrap();
    let mut ips: Vec<Ipv4Addr> = net.leases.iter().map(|l| l.ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 6, "{:?}", net.leases);
    for i in 0..6 {
        assert!(
            nft_mentions(&w.host, &format!("ctr=pp-{i}")),
            "rules of pp-{i}"
        );
    }
    for i in 0..6 {
        w.host
            .run(|| w.nets.teardown(&format!("pp-{i}"), None))
            .unwrap();
    }
    assert!(!nft_mentions(&w.host, "ctr=pp-"));
    w.host.run(|| w.nets.remove("rtctr", false)).unwrap();
}
