//! rtctr run by an unprivileged user (created and removed by each test,
//! see `rtctr_integration::rootless`): what the container sees (root
//! inside, the user's id outside), the lifecycle verbs, a multi-id mapping
//! through newuidmap, and what a user cannot do failing clearly with
//! nothing left behind.

use std::path::Path;

use rtctr_integration::rootless::TestUser;
use rtctr_integration::*;
use serde_json::{json, Value};

const NEEDS: &str = "it creates a user (useradd) to run rtctr as";

/// A bundle whose config.json is the user's own `rtctr spec --rootless`,
/// running `args` on the shared busybox rootfs, owned by the user.
fn rootless_bundle(user: &TestUser, args: &[&str]) -> Bundle {
    let mut b = Bundle::new(args);
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    user.give(b.path());
    let bundle = b.path().to_str().unwrap();
    user.rtctr(&["spec", "--rootless", "--bundle", bundle]).ok();
    let text = std::fs::read(b.path().join("config.json")).unwrap();
    b.config = serde_json::from_slice(&text).unwrap();
    b.config["process"]["terminal"] = json!(false);
    b.config["process"]["args"] = json!(args);
    b.config["root"]["path"] = json!(shared_rootfs());
    b.save();
    b
}

fn state(user: &TestUser, id: &str) -> Value {
    let out = user.rtctr(&["state", id]).ok();
    serde_json::from_str(&out.stdout).unwrap()
}

#[track_caller]
fn wait_status(user: &TestUser, id: &str, want: &str) {
    let ok = wait_for(std::time::Duration::from_secs(10), || {
        user.rtctr(&["state", id])
            .stdout
            .contains(&format!("\"status\": \"{want}\""))
    });
    assert!(ok, "{id}: never {want}: {:?}", user.rtctr(&["state", id]));
}

/// The real, effective, saved and fs uid of a host process.
fn host_uids(pid: i64) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn spec_rootless_maps_the_callers_ids() {
    if !require_root(NEEDS) {
        return;
    }
    let user = TestUser::new("spec");
    let b = rootless_bundle(&user, &["true"]);
    let c = &b.config;
    let map = |id: u32| json!([{"containerID": 0, "hostID": id, "size": 1}]);
    assert_eq!(c["linux"]["uidMappings"], map(user.uid));
    assert_eq!(c["linux"]["gidMappings"], map(user.gid));
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert!(c["linux"].get("resources").is_none());
    let sys = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert_eq!(
        *sys,
        json!({"destination": "/sys", "type": "none", "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    );
    drop(b);
    user.assert_nothing_left();
}

#[test]
fn lifecycle_as_a_user() {
    if !require_root(NEEDS) {
        return;
    }
    let user = TestUser::new("life");
    let b = rootless_bundle(
        &user,
        &[
            "sh",
            "-c",
            "id -u; id -g; cat /proc/self/uid_map; exec sleep 1000",
        ],
    );
    let bundle = b.path();
    user.create(bundle, "c1").ok();
    assert_eq!(state(&user, "c1")["status"], "created");
    // The state is the user's, under XDG_RUNTIME_DIR.
    assert!(user.state_root().join("c1").join("state.json").exists());
    user.rtctr(&["start", "c1"]).ok();
    wait_status(&user, "c1", "running");
    let pid = state(&user, "c1")["pid"].as_i64().unwrap();
    // Inside: root, mapped onto the user.
    let ok = wait_for(std::time::Duration::from_secs(5), || {
        Rtctr::output_of(&b, "c1").lines().count() >= 3
    });
    assert!(ok, "{:?}", Rtctr::output_of(&b, "c1"));
    let out = Rtctr::output_of(&b, "c1");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let uid = user.uid.to_string();
    assert_eq!(
        lines,
        [vec!["0"], vec!["0"], vec!["0", uid.as_str(), "1"]],
        "{out}"
    );
    // Outside: the user's uid.
    assert_eq!(host_uids(pid), format!("{uid} {uid} {uid} {uid}"));
    // exec joins its namespaces: root again.
    let e = user
        .rtctr(&["exec", "c1", "sh", "-c", "id -u; cat /proc/self/uid_map"])
        .ok();
    let e: Vec<Vec<&str>> = e
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(e, [vec!["0"], vec!["0", uid.as_str(), "1"]]);
    // A second process, outside the init's tree; no cgroup holds them
    // (v1 here), so ps and kill --all find them by pid namespace.
    let st = user
        .command(&rtctr_bin())
        .args(["exec", "-d", "c1", "sleep", "999"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let ps = user.rtctr(&["ps", "--format", "json", "c1"]).ok();
    let pids: Vec<i64> = serde_json::from_str(ps.stdout.trim()).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_eq!(pids[0], pid);
    let other = pids[1];
    let pause = user.rtctr(&["pause", "c1"]);
    assert_eq!(pause.code, 1, "{pause:?}");
    assert!(pause.stderr.contains("no cgroup to freeze"), "{pause:?}");
    user.rtctr(&["kill", "--all", "c1", "KILL"]).ok();
    wait_status(&user, "c1", "stopped");
    assert!(wait_for(std::time::Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{other}")).exists()
            || std::fs::read_to_string(format!("/proc/{other}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    }));
    user.rtctr(&["delete", "c1"]).ok();
    assert!(user.rtctr(&["state", "c1"]).code != 0);
    user.assert_nothing_left();
}

#[test]
fn run_as_a_user_returns_the_exit_status() {
    if !require_root(NEEDS) {
        return;
    }
    let user = TestUser::new("run");
    // /sys is the host's, read-only; the device nodes (a user cannot
    // mknod) are the host's, bind-mounted, and work.
    let script = "ls /sys/class >/dev/null && ! touch /sys/x 2>/dev/null && [ -c /dev/null ] \
        && [ \"$(head -c 3 /dev/zero | wc -c)\" = 3 ] && exit 3";
    let b = rootless_bundle(&user, &["sh", "-c", script]);
    let out = user.rtctr(&["run", "--bundle", b.path().to_str().unwrap(), "r1"]);
    assert_eq!(out.code, 3, "{out:?}");
    user.assert_nothing_left();
}

#[test]
fn multi_id_mapping_through_newuidmap() {
    if !require_root(NEEDS) {
        return;
    }
    if !Path::new("/usr/bin/newuidmap").exists() {
        rtctr_test_support::loud("SKIPPED: newuidmap missing (apt-get install uidmap)");
        return;
    }
    let user = TestUser::new("map");
    let (sub_u, n_u) = user.subordinate("/etc/subuid");
    let (sub_g, n_g) = user.subordinate("/etc/subgid");
    let mut b = rootless_bundle(
        &user,
        &["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/f; chown 1000:1000 /tmp/f; stat -c '%u %g' /tmp/f"],
    );
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": user.uid, "size": 1},
            {"containerID": 1, "hostID": sub_u, "size": n_u}
        ]);
        c["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": user.gid, "size": 1},
            {"containerID": 1, "hostID": sub_g, "size": n_g}
        ]);
        // chown to an id of the subordinate range needs CAP_CHOWN there.
        for set in ["bounding", "effective", "permitted"] {
            let caps = c["process"]["capabilities"][set].as_array_mut().unwrap();
            caps.push(json!("CAP_CHOWN"));
        }
        c["mounts"].as_array_mut().unwrap().push(json!(
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
        ));
    });
    let out = user.rtctr(&["run", "--bundle", b.path().to_str().unwrap(), "m1"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<Vec<String>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    let row = |a: u32, b: u32, c: u32| vec![a.to_string(), b.to_string(), c.to_string()];
    assert_eq!(
        lines,
        [
            row(0, user.uid, 1),
            row(1, sub_u, n_u),
            row(0, user.gid, 1),
            row(1, sub_g, n_g),
            vec!["1000".to_string(), "1000".to_string()],
        ],
        "{out:?}"
    );
    user.assert_nothing_left();
}

/// A failed create as the user: exit status 1, `stderr` holding `want`,
/// and nothing of the container left.
#[track_caller]
fn refused(user: &TestUser, bundle: &Path, id: &str, want: &[&str]) {
    let out = user.create(bundle, id);
    assert_eq!(out.code, 1, "{out:?}");
    for w in want {
        assert!(out.stderr.contains(w), "{w:?} not in {:?}", out.stderr);
    }
    assert!(user.rtctr(&["state", id]).code != 0);
    user.assert_nothing_left();
}

#[test]
fn resource_limits_without_a_writable_cgroup_are_refused() {
    if !require_root(NEEDS) {
        return;
    }
    let user = TestUser::new("lim");
    let mut b = rootless_bundle(&user, &["true"]);
    b.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 10}}));
    let cgroup_dirs = expected_cgroup_dirs("l1", None);
    refused(&user, b.path(), "l1", &["rootless", "pids", "cgroup"]);
    for d in cgroup_dirs {
        assert!(!d.exists(), "{} made", d.display());
    }
    // With --rootless=false rtctr tries the cgroup and names the denial.
    let out = user.rtctr(&[
        "--rootless=false",
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "l2",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    user.assert_nothing_left();
}

#[test]
fn a_config_without_a_user_namespace_is_refused() {
    if !require_root(NEEDS) {
        return;
    }
    let user = TestUser::new("nous");
    let mut b = rootless_bundle(&user, &["true"]);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "user");
        let linux = c["linux"].as_object_mut().unwrap();
        linux.remove("uidMappings");
        linux.remove("gidMappings");
    });
    refused(&user, b.path(), "n1", &["no user namespace"]);
}

#[test]
fn joining_a_root_owned_namespace_is_refused() {
    if !require_root(NEEDS) {
        return;
    }
    let user = TestUser::new("join");
    // A network namespace of root's, which the user may open but not join.
    let name = format!("rtrl-join-{}", std::process::id());
    let netns = NetnsGuard::add(&name);
    let mut b = rootless_bundle(&user, &["true"]);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "network", "path": netns.path}));
    });
    refused(
        &user,
        b.path(),
        "j1",
        &[&netns.path, "owned by a user namespace"],
    );
    // One it may not even open.
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.pop();
        ns.push(json!({"type": "network", "path": "/proc/1/ns/net"}));
    });
    refused(
        &user,
        b.path(),
        "j2",
        &["/proc/1/ns/net", "Permission denied"],
    );
}

/// `ip netns add NAME`, deleted on drop.
struct NetnsGuard {
    name: String,
    path: String,
}

impl NetnsGuard {
    fn add(name: &str) -> NetnsGuard {
        let st = std::process::Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        NetnsGuard {
            name: name.to_string(),
            path: format!("/run/netns/{name}"),
        }
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A bundle serving `hello-<tag>` over HTTP on port 80 of its own network
/// namespace, attached with `rtctr.network`, host port `port` published.
fn web_bundle(user: &TestUser, tag: &str, port: u16) -> Bundle {
    let script = format!(
        "mkdir -p /dev/shm/www && echo hello-{tag} > /dev/shm/www/index.html && exec httpd -f -p 80 -h /dev/shm/www"
    );
    let mut b = rootless_bundle(user, &["sh", "-c", &script]);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "network"}));
        c["annotations"] = json!({
            "rtctr.network": "default",
            "rtctr.network.ports": format!("{port}:80/tcp"),
        });
    });
    b
}

/// GET / from 127.0.0.1:port, retried for a few seconds (the server
/// starts after `start`).
fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut body = None;
    wait_for(std::time::Duration::from_secs(10), || {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let found = text.contains("200 OK");
        body = Some(text);
        found
    });
    body
}

fn has_default_route() -> bool {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    routes
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
}

/// A free host port above 1024 (the kernel picks it).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn user_mode_network_publishes_ports() {
    if !require_root(NEEDS) {
        return;
    }
    let user = TestUser::new("net");
    let mut installed = 0;
    for tool in ["pasta", "slirp4netns"] {
        if !Path::new("/usr/bin").join(tool).exists() {
            rtctr_test_support::loud(&format!("NOTE: {tool} not installed; not tried"));
            continue;
        }
        installed += 1;
        // The cgroup v2 VM has only lo and no tun module.
        if tool == "pasta" && !has_default_route() {
            // pasta copies the host's routed interface.
            rtctr_test_support::loud("SKIPPED: no default route: pasta not tried");
            continue;
        }
        if tool == "slirp4netns" && std::fs::File::open("/dev/net/tun").is_err() {
            rtctr_test_support::loud("SKIPPED: no /dev/net/tun: slirp4netns not tried");
            continue;
        }
        let port = free_port();
        let b = web_bundle(&user, tool, port);
        let env = [("RTCTR_USER_NET", tool)];
        let id = format!("w-{tool}");
        user.create_env(&env, b.path(), &id).ok();
        let st = state(&user, &id);
        let record = std::fs::read(user.state_root().join(&id).join("state.json")).unwrap();
        let record: Value = serde_json::from_slice(&record).unwrap();
        assert_eq!(record["network"]["user_mode"], tool, "{st}");
        let helper = record["network"]["pid"].as_i64().unwrap();
        assert_eq!(
            host_uids(helper).split(' ').next(),
            Some(user.uid.to_string().as_str())
        );
        user.rtctr(&["start", &id]).ok();
        let body = http_get(port).unwrap_or_default();
        assert!(body.contains(&format!("hello-{tool}")), "{tool}: {body:?}");
        user.rtctr(&["delete", "--force", &id]).ok();
        // The helper is stopped with the container.
        user.assert_nothing_left();
    }
    assert!(
        installed > 0,
        "neither pasta nor slirp4netns is installed (apt-get install passt)"
    );
}

#[test]
fn user_mode_network_refusals() {
    if !require_root(NEEDS) {
        return;
    }
    let user = TestUser::new("nonet");
    // No tool (only a nonexistent one allowed): the error names the packages.
    let b = web_bundle(&user, "x", free_port());
    let out = user.create_env(&[("RTCTR_USER_NET", "none")], b.path(), "n1");
    assert_eq!(out.code, 1, "{out:?}");
    for w in [
        "pasta (Debian package passt)",
        "slirp4netns (Debian package slirp4netns)",
    ] {
        assert!(out.stderr.contains(w), "{w:?} not in {:?}", out.stderr);
    }
    user.assert_nothing_left();
    // A privileged host port.
    let mut b = web_bundle(&user, "x", 80);
    refused(&user, b.path(), "n2", &["host port 80 is privileged"]);
    // No network namespace of its own to connect.
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        c["annotations"] = json!({"rtctr.network": "default"});
    });
    refused(&user, b.path(), "n3", &["needs a new network namespace"]);
}

/// The cgroup2 mount point: /sys/fs/cgroup (pure v2) or its `unified`
/// tree (hybrid).
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split_whitespace().next() == Some("cgroup2"))
            .then(|| pre.split_whitespace().nth(4).map(std::path::PathBuf::from))?
    })
}

/// A cgroup2 subtree delegated to a user, as systemd's Delegate=yes
/// makes one: the directory and its cgroup.procs, cgroup.threads and
/// cgroup.subtree_control are the user's; `caller` is a leaf for the
/// user's processes (a cgroup with processes cannot enable controllers
/// for its children). Removed on drop.
struct Delegated {
    dir: std::path::PathBuf,
}

impl Delegated {
    fn new(user: &TestUser, mount: &Path, controller: &str) -> Delegated {
        // The controller reaches the delegated directory (root's part).
        let _ = std::fs::write(
            mount.join("cgroup.subtree_control"),
            format!("+{controller}"),
        );
        let dir = mount.join(format!("rtrl-deleg-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir(dir.join("caller")).unwrap();
        let d = Delegated { dir };
        for f in [
            "",
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.subtree_control",
        ] {
            let p = d.dir.join(f);
            std::os::unix::fs::chown(&p, Some(user.uid), Some(user.gid)).unwrap();
        }
        user.give(&d.dir.join("caller"));
        d
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in [self.dir.join("caller"), self.dir.clone()] {
            let _ = wait_for(std::time::Duration::from_secs(5), || {
                std::fs::remove_dir(&d).is_ok() || !d.exists()
            });
        }
    }
}

#[test]
fn a_delegated_cgroup2_subtree_is_used() {
    if !require_root(NEEDS) {
        return;
    }
    let Some(mount) = cgroup2_mount() else {
        rtctr_test_support::loud("SKIPPED: no cgroup2 mounted");
        return;
    };
    let ctrls = std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
    // A controller on cgroup2 on every layout this runs on: pids on pure
    // v2, hugetlb on this host's hybrid tree.
    let (controller, setting, file, value) = if ctrls.split_whitespace().any(|c| c == "pids") {
        ("pids", json!({"pids": {"limit": 42}}), "pids.max", "42")
    } else if ctrls.split_whitespace().any(|c| c == "hugetlb")
        && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
    {
        let lim = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
        ("hugetlb", lim, "hugetlb.2MB.max", "4194304")
    } else {
        rtctr_test_support::loud(&format!(
            "SKIPPED: cgroup2 has neither pids nor hugetlb ({ctrls:?})"
        ));
        return;
    };
    let user = TestUser::new("deleg");
    let deleg = Delegated::new(&user, &mount, controller);
    let name = deleg.dir.file_name().unwrap().to_str().unwrap().to_string();
    let mut b = rootless_bundle(&user, &["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("/{name}/c1"));
        c["linux"]["resources"] = setting;
    });
    let out = user.create_in(Some(&deleg.dir.join("caller")), &[], b.path(), "d1");
    assert_eq!(out.code, 0, "{out:?}");
    let pid = state(&user, "d1")["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.lines().any(|l| l == format!("0::/{name}/c1")), "{own}");
    let cg = deleg.dir.join("c1");
    assert_eq!(
        std::fs::read_to_string(cg.join(file)).unwrap().trim(),
        value
    );
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&cg).unwrap());
    assert_eq!(owner, user.uid, "made by the user");
    user.rtctr(&["delete", "--force", "d1"]).ok();
    assert!(!cg.exists(), "{} left", cg.display());
    user.assert_nothing_left();
}
