//! The standalone `rtctr-net-hook` under another runtime, runc: the
//! bundle asks for `rtctr-net-hook setup` as a createRuntime hook and
//! `rtctr-net-hook teardown` as a poststop hook, with a private
//! RTCTR_NETWORK_DIR. The network (10.204.x.0/24 on a bridge named here)
//! is made with `rtctr network create` and removed by a guard.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rtctr_integration::*;
use serde_json::{json, Value};

fn net_hook_bin() -> PathBuf {
    rtctr_bin().with_file_name("rtctr-net-hook")
}

/// `runc --root <private>`; deletes its container and the network on drop.
struct Runc<'a> {
    root: tempfile::TempDir,
    rt: &'a Rtctr,
    id: &'static str,
    net: String,
}

impl Runc<'_> {
    fn cmd(&self) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(self.root.path());
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        let o = self.cmd().args(args).stdin(Stdio::null()).output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn status(&self) -> Option<String> {
        let o = self.run(&["state", self.id]);
        let v: Value = serde_json::from_str(&o.stdout).ok()?;
        v["status"].as_str().map(str::to_string)
    }
}

impl Drop for Runc<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["delete", "--force", self.id]);
        let _ = self
            .rt
            .cmd()
            .args(["network", "rm", "--force", &self.net])
            .output();
    }
}

fn inspect(rt: &Rtctr, net: &str) -> Value {
    let o = rt.cmd().args(["network", "inspect", net]).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn net_hook_attaches_and_detaches_a_runc_container() {
    let Some(rt) = Rtctr::for_root_test() else {
        return;
    };
    let tag = std::process::id() % 100000;
    let name = format!("rcit{tag}");
    let bridge = format!("rcbr{tag}");
    let subnet = format!("10.204.{}.0/24", tag % 250);
    let prefix = format!("10.204.{}.", tag % 250);
    let runc = Runc {
        root: tempfile::Builder::new()
            .prefix("rtctr-runc-")
            .tempdir()
            .unwrap(),
        rt: &rt,
        id: "rcnet",
        net: name.clone(),
    };
    let o = rt
        .cmd()
        .args([
            "network", "create", &name, "--subnet", &subnet, "--bridge", &bridge,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");

    let mut b = Bundle::with_own_rootfs(&[
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1",
    ]);
    let env = [format!("RTCTR_NETWORK_DIR={}", rt.net_dir.path().display())];
    let hook =
        |verb: &str| json!({"path": net_hook_bin(), "args": ["rtctr-net-hook", verb], "env": env});
    b.edit(|c| {
        c["annotations"] = json!({"rtctr.network": name});
        c["hooks"] = json!({
            "createRuntime": [hook("setup")],
            "poststop": [hook("teardown")],
        });
    });

    // create: the hook has attached the container.
    let out_path = b.path().join("runc.out");
    let err_path = b.path().join("runc.err");
    let st = runc
        .cmd()
        .args(["create", "--bundle"])
        .arg(b.path())
        .arg(runc.id)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "runc create: {}",
        std::fs::read_to_string(&err_path).unwrap()
    );
    let leases = inspect(&rt, &name)["leases"].clone();
    assert_eq!(leases.as_array().unwrap().len(), 1, "{leases}");
    assert_eq!(leases[0]["container"], runc.id);
    let ip = leases[0]["ip"].as_str().unwrap().to_string();
    let veth = leases[0]["veth"].as_str().unwrap().to_string();
    assert!(ip.starts_with(&prefix), "{ip} not in {subnet}");
    assert!(std::path::Path::new("/sys/class/net").join(&veth).exists());

    // start: the container sees that address on eth0.
    runc.run(&["start", runc.id]).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while runc.status().as_deref() != Some("stopped") {
        assert!(Instant::now() < deadline, "container did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let printed = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(
        printed.trim(),
        ip,
        "{}",
        std::fs::read_to_string(&err_path).unwrap()
    );

    // delete: the poststop hook gave everything back.
    runc.run(&["delete", runc.id]).ok();
    let leases = inspect(&rt, &name)["leases"].clone();
    assert!(leases.as_array().unwrap().is_empty(), "{leases}");
    assert!(!std::path::Path::new("/sys/class/net").join(&veth).exists());
}
