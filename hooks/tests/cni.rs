//! `rtctr-cni` driven as a CNI runtime drives it: the binary run in the (simulated) host's
//! network namespace, the network configuration on stdin, `CNI_*` in the environment,
//! containers as `ip netns add` namespaces. Subnets 10.201.2x.0/24, outside link 10.202.2x.0/24.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_rtctr-cni");

/// Run the plugin in `host` with `CNI_COMMAND=cmd`; `env` adds or overrides variables.
fn cni(host: &Ns, cmd: &str, env: &[(&str, &str)], conf: &Value) -> Output {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &host.name, BIN])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CNI_COMMAND", cmd)
        .env("CNI_PATH", "/opt/cni/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut ch = c.spawn().unwrap();
    ch.stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    ch.wait_with_output().unwrap()
}

fn attach_env<'a>(id: &'a str, ns: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("CNI_CONTAINERID", id),
        ("CNI_NETNS", ns),
        ("CNI_IFNAME", "eth0"),
    ]
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("result JSON")
}

/// A failed call: non-zero exit and the CNI error JSON on stdout.
fn cni_error(out: &Output) -> Value {
    assert!(!out.status.success(), "expected failure");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "error result is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    for k in ["cniVersion", "code", "msg", "details"] {
        assert!(v.get(k).is_some(), "error result lacks {k}: {v}");
    }
    v
}

fn ns_path(ns: &Ns) -> String {
    ns.path().to_string_lossy().into_owned()
}

fn conf(dir: &Path, subnet: &str) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "cnit",
        "type": "rtctr-cni",
        "subnet": subnet,
        "bridge": "rtcnit0",
        "ipMasq": true,
        "stateDir": dir,
        "dns": {"nameservers": ["10.201.21.1"]},
    })
}

#[test]
fn version() {
    let out = Command::new(BIN)
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v = ok_json(&out);
    assert_eq!(
        v["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0"])
    );
}

#[test]
fn add_check_del_with_ports_and_nat() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let w = World::new(21);
    let dir = w.nets.dir().to_path_buf();
    let c1 = Ns::new("c1");
    let c2 = Ns::new("c2");
    let (p1, p2) = (ns_path(&c1), ns_path(&c2));
    let mut base = conf(&dir, "10.201.21.0/24");

    // ADD with a port mapping (the portMappings capability, as runtimeConfig)
    let mut with_ports = base.clone();
    with_ports["runtimeConfig"] =
        json!({"portMappings": [{"hostPort": 8089, "containerPort": 80, "protocol": "tcp"}]});
    let r1 = ok_json(&cni(
        &w.host,
        "ADD",
        &attach_env("pod-one", &p1),
        &with_ports,
    ));
    assert_eq!(r1["cniVersion"], "1.0.0");
    assert_eq!(r1["ips"][0]["address"], "10.201.21.2/24");
    assert_eq!(r1["ips"][0]["gateway"], "10.201.21.1");
    let iface = r1["ips"][0]["interface"].as_u64().unwrap() as usize;
    assert_eq!(r1["interfaces"][iface]["name"], "eth0");
    assert_eq!(r1["interfaces"][iface]["sandbox"], p1.as_str());
    assert_eq!(r1["routes"][0]["dst"], "0.0.0.0/0");
    assert_eq!(r1["dns"]["nameservers"][0], "10.201.21.1");
    let veth1 = r1["interfaces"][1]["name"].as_str().unwrap().to_string();

    // what the container really holds: the address on eth0, the default route
    let addrs = c1.ip(&["-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains("10.201.21.2/24"), "{addrs}");
    let mac = c1.ip(&["-o", "link", "show", "dev", "eth0"]);
    assert!(
        mac.contains(r1["interfaces"][iface]["mac"].as_str().unwrap()),
        "{mac}"
    );
    let routes = c1.ip(&["-4", "route", "show", "default"]);
    assert!(routes.contains("via 10.201.21.1 dev eth0"), "{routes}");

    let r2 = ok_json(&cni(&w.host, "ADD", &attach_env("pod-two", &p2), &base));
    assert_eq!(r2["ips"][0]["address"], "10.201.21.3/24");

    // CHECK with the cached result passes
    let mut checked = with_ports.clone();
    checked["prevResult"] = r1.clone();
    let out = cni(&w.host, "CHECK", &attach_env("pod-one", &p1), &checked);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty());

    // CHECK notices an address taken away inside the netns, and a prevResult naming
    // another address
    let mut checked2 = base.clone();
    checked2["prevResult"] = r2.clone();
    let env2 = attach_env("pod-two", &p2);
    assert!(cni(&w.host, "CHECK", &env2, &checked2).status.success());
    c2.ip(&["addr", "del", "10.201.21.3/24", "dev", "eth0"]);
    let e = cni_error(&cni(&w.host, "CHECK", &env2, &checked2));
    assert!(
        e["details"].as_str().unwrap().contains("10.201.21.3"),
        "{e}"
    );
    c2.ip(&["addr", "add", "10.201.21.3/24", "dev", "eth0"]);
    c2.ip(&["route", "add", "default", "via", "10.201.21.1"]);
    let mut wrong = checked2.clone();
    wrong["prevResult"]["ips"][0]["address"] = "10.201.21.99/24".into();
    let e = cni_error(&cni(&w.host, "CHECK", &env2, &wrong));
    assert!(e["details"].as_str().unwrap().contains("prevResult"), "{e}");

    // pod to pod, pod to gateway
    let ping = |ns: &Ns, ip: &str| {
        ns.exec(&["busybox", "ping", "-c1", "-W2", ip])
            .status
            .success()
    };
    assert!(ping(&c2, "10.201.21.2"));
    assert!(ping(&c1, "10.201.21.1"));

    // pod to outside: masqueraded to the host's address
    let listener = w
        .outside
        .run(|| TcpListener::bind((w.outside_ip, 9001)))
        .unwrap();
    let cl = c1
        .run(|| TcpStream::connect_timeout(&(w.outside_ip, 9001).into(), Duration::from_secs(2)))
        .expect("pod connects to outside");
    let (_s, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip(), w.host_ext);
    drop(cl);

    // outside to the host port reaches the pod's :80
    let srv = c1
        .run(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 80)))
        .unwrap();
    let mut cl = w
        .outside
        .run(|| TcpStream::connect_timeout(&(w.host_ext, 8089).into(), Duration::from_secs(2)))
        .expect("outside reaches the host port");
    let (mut s, peer) = srv.accept().unwrap();
    assert_eq!(peer.ip(), w.outside_ip);
    s.write_all(b"ok").unwrap();
    let mut buf = [0u8; 2];
    cl.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ok");
    drop((s, cl, srv));
    assert!(nft_mentions(&w.host, "ctr=pod-one"));

    // ADD again for the same (container, ifname) is refused and changes nothing
    let e = cni_error(&cni(&w.host, "ADD", &attach_env("pod-one", &p1), &base));
    assert!(
        e["details"].as_str().unwrap().contains("already attached"),
        "{e}"
    );
    assert!(c1
        .ip(&["-4", "-o", "addr", "show", "dev", "eth0"])
        .contains("10.201.21.2/24"));

    // DEL: no veth, no lease, no rule, no eth0 left; a second DEL succeeds too
    for _ in 0..2 {
        let out = cni(&w.host, "DEL", &attach_env("pod-one", &p1), &with_ports);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(!w
        .host
        .exec(&["ip", "link", "show", &veth1])
        .status
        .success());
    assert!(!c1.exec(&["ip", "link", "show", "eth0"]).status.success());
    let net = w.host.run(|| w.nets.inspect("cnit")).unwrap();
    assert!(net.leases.iter().all(|l| l.container != "pod-one"));
    assert!(!nft_mentions(&w.host, "pod-one"));
    assert!(!nft_mentions(&w.host, "10.201.21.2"));

    // CHECK after DEL: container unknown (code 3)
    let e = cni_error(&cni(
        &w.host,
        "CHECK",
        &attach_env("pod-one", &p1),
        &checked,
    ));
    assert_eq!(e["code"], 3, "{e}");

    // DEL without CNI_NETNS and after the netns is gone (best effort, success)
    drop(c2);
    let out = cni(
        &w.host,
        "DEL",
        &[("CNI_CONTAINERID", "pod-two"), ("CNI_IFNAME", "eth0")],
        &base,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let net = w.host.run(|| w.nets.inspect("cnit")).unwrap();
    assert!(net.leases.is_empty(), "{:?}", net.leases);
    assert!(w
        .host
        .ip(&["-br", "link", "show", "master", "rtcnit0"])
        .trim()
        .is_empty());

    // a config that describes the existing network differently is refused by field
    base["subnet"] = "10.201.22.0/24".into();
    let e = cni_error(&cni(&w.host, "ADD", &attach_env("pod-three", &p1), &base));
    assert_eq!(e["code"], 7, "{e}");
    assert!(e["details"].as_str().unwrap().contains("subnet"), "{e}");
    assert!(!c1.exec(&["ip", "link", "show", "eth0"]).status.success());

    w.host.run(|| w.nets.remove("cnit", true)).unwrap();
    assert!(nft_table(&w.host).is_none());
}

type Case<'a> = (Value, Vec<(&'a str, &'a str)>, u64, &'a str);

#[test]
fn bad_input_gives_cni_errors_and_leaves_nothing() {
    if !require_root(NEEDS_ROOT) {
        return;
    }
    let w = World::new(23);
    let dir = w.nets.dir().to_path_buf();
    let c = Ns::new("c");
    let p = ns_path(&c);
    let good = conf(&dir, "10.201.23.0/24");
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let missing_ns = format!("/run/netns/rtt-{}-no-such-ns", std::process::id());
    // (config, environment, expected code, text the error must contain)
    let cases: Vec<Case> = vec![
        (
            without("subnet"),
            attach_env("p", &p).to_vec(),
            7,
            "field subnet",
        ),
        (
            with("subnet", "10.1.2.3".into()),
            attach_env("p", &p).to_vec(),
            7,
            "subnet",
        ),
        (
            with("ipMasq", "yes".into()),
            attach_env("p", &p).to_vec(),
            6,
            "field ipMasq",
        ),
        (
            with("cniVersion", "2.0.0".into()),
            attach_env("p", &p).to_vec(),
            1,
            "cniVersion",
        ),
        (
            with("ipam", json!({"type": "host-local"})),
            attach_env("p", &p).to_vec(),
            2,
            "ipam",
        ),
        (
            with(
                "runtimeConfig",
                json!({"portMappings": [{"hostPort": 1, "containerPort": 2, "protocol": "sctp"}]}),
            ),
            attach_env("p", &p).to_vec(),
            7,
            "portMappings[0]",
        ),
        (
            good.clone(),
            vec![("CNI_CONTAINERID", "p"), ("CNI_IFNAME", "eth0")],
            4,
            "CNI_NETNS",
        ),
        (
            good.clone(),
            vec![
                ("CNI_CONTAINERID", "p"),
                ("CNI_NETNS", &p),
                ("CNI_IFNAME", "bad/name"),
            ],
            4,
            "CNI_IFNAME",
        ),
        (
            good.clone(),
            attach_env("p", &missing_ns).to_vec(),
            3,
            &missing_ns,
        ),
    ];
    for (conf, env, code, needle) in cases {
        let e = cni_error(&cni(&w.host, "ADD", &env, &conf));
        assert_eq!(e["code"], code, "{needle}: {e}");
        let text = format!("{} {}", e["msg"], e["details"]);
        assert!(text.contains(needle), "{needle}: {e}");
        assert!(!c.exec(&["ip", "link", "show", "eth0"]).status.success());
    }
    // nothing left: no lease, no veth on the bridge, no rule naming the container
    if let Ok(net) = w.host.run(|| w.nets.inspect("cnit")) {
        assert!(net.leases.is_empty(), "{:?}", net.leases);
    }
    let veths = w.host.ip(&["-br", "link", "show", "type", "veth"]);
    assert!(!veths.contains("rv"), "{veths}");
    assert!(!nft_mentions(&w.host, "ctr=p"));
    let _ = w.host.run(|| w.nets.remove("cnit", true));
}
