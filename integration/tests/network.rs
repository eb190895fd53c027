//! The built-in network hook through the runtime: containers that opt in
//! with `rtctr.network` get eth0 on the network's bridge, resolv.conf and
//! hosts; delete and failed creates give everything back. Only addresses
//! in the private test subnet below (on a bridge made here) are used.

use rtctr_integration::*;
use serde_json::json;

struct Net<'a> {
    rt: &'a Rtctr,
    name: String,
}

impl Drop for Net<'_> {
    fn drop(&mut self) {
        let _ = self.rt.net(&["rm", "--force", &self.name]);
    }
}

trait NetExt {
    fn net(&self, args: &[&str]) -> Out;
}

impl NetExt for Rtctr {
    fn net(&self, args: &[&str]) -> Out {
        let o = self.cmd().arg("network").args(args).output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

fn networked(net: &str, args: &[&str]) -> Bundle {
    let mut b = Bundle::with_own_rootfs(args);
    b.edit(|c| {
        c["annotations"] = json!({"rtctr.network": net});
        // busybox ping needs a raw socket.
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_NET_RAW"));
        }
    });
    b
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn containers_on_one_network_reach_each_other_and_leave_nothing() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let name = format!("rtit{}", std::process::id() % 100000);
    let bridge = format!("rtbr{}", std::process::id() % 100000);
    rt.net(&[
        "create",
        &name,
        "--subnet",
        "10.203.7.0/24",
        "--bridge",
        &bridge,
    ])
    .ok();
    let _net = Net {
        rt: &rt,
        name: name.clone(),
    };

    let a = networked(&name, &["sleep", "60"]);
    let out = rt.create(&a, "neta", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    rt.run(&["start", "neta"]).ok();
    let inspect: serde_json::Value =
        serde_json::from_str(&rt.net(&["inspect", &name]).ok().stdout).unwrap();
    let leases = inspect["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 1, "{inspect}");
    assert_eq!(leases[0]["container"], "neta");
    let ip_a = leases[0]["ip"].as_str().unwrap().to_string();
    assert!(
        link_exists(&bridge),
        "the first container brings the bridge up"
    );
    assert!(ip_a.starts_with("10.203.7."), "{ip_a}");

    let b = networked(
        &name,
        &[
            "sh",
            "-c",
            &format!(
                "ip -4 -o addr show eth0 | awk '{{print $4}}' | cut -d/ -f1; ip route | grep default; \
                 ping -c1 -W2 {ip_a} >/dev/null && echo reached; cat /etc/hosts | grep -c 10.203.7; \
                 test -s /etc/resolv.conf && echo resolv"
            ),
        ],
    );
    let out = rt.run_bundle(&b, "netb");
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("10.203.7.") && lines[0] != ip_a,
        "{out:?}"
    );
    assert!(lines[1].starts_with("default via 10.203.7.1"), "{out:?}");
    assert_eq!(&lines[2..], ["reached", "1", "resolv"], "{out:?}");

    // run deleted netb: only neta's lease is left; its veth is on the bridge.
    let inspect: serde_json::Value =
        serde_json::from_str(&rt.net(&["inspect", &name]).ok().stdout).unwrap();
    assert_eq!(inspect["leases"].as_array().unwrap().len(), 1, "{inspect}");
    let veth = inspect["leases"][0]["veth"].as_str().unwrap().to_string();
    assert!(link_exists(&veth));
    let rm = rt.net(&["rm", &name]);
    assert_eq!(rm.code, 1, "rm with a lease must be refused: {rm:?}");

    rt.run(&["delete", "--force", "neta"]).ok();
    let inspect: serde_json::Value =
        serde_json::from_str(&rt.net(&["inspect", &name]).ok().stdout).unwrap();
    assert!(
        inspect["leases"].as_array().unwrap().is_empty(),
        "{inspect}"
    );
    // The kernel removes the pair with the container's network namespace,
    // just after delete returns.
    assert!(
        wait_for(std::time::Duration::from_secs(10), || !link_exists(&veth)),
        "{veth} still on the host 10 s after delete"
    );
    let rules = std::process::Command::new("nft")
        .args(["list", "table", "inet", "rtctr"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains(&ip_a),
        "rule for {ip_a} left"
    );

    rt.net(&["rm", &name]).ok();
    assert!(!link_exists(&bridge));
}

#[test]
fn a_failed_create_gives_back_its_lease() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let name = format!("rtif{}", std::process::id() % 100000);
    let bridge = format!("rtbf{}", std::process::id() % 100000);
    rt.net(&[
        "create",
        &name,
        "--subnet",
        "10.203.8.0/24",
        "--bridge",
        &bridge,
    ])
    .ok();
    let _net = Net {
        rt: &rt,
        name: name.clone(),
    };
    let b = networked(&name, &["no-such-program"]);
    let out = rt
        .cmd()
        .args(["create", "--bundle", b.path().to_str().unwrap(), "netfail"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));
    let inspect: serde_json::Value =
        serde_json::from_str(&rt.net(&["inspect", &name]).ok().stdout).unwrap();
    assert!(
        inspect["leases"].as_array().unwrap().is_empty(),
        "{inspect}"
    );
    assert!(rt.ids().is_empty());

    // A bad annotation fails before anything is made.
    let mut bad = Bundle::new(&["true"]);
    bad.edit(|c| c["annotations"] = json!({"rtctr.network": name, "rtctr.network.ports": "80:x"}));
    let out = rt.create(&bad, "badann", &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("rtctr.network.ports"), "{out:?}");
    assert!(rt.ids().is_empty());
}
