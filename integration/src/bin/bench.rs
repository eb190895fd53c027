//! `make bench` (issue 13): rtctr against runc, crun and youki (each when
//! installed) on one busybox bundle, in one paired run.
//!
//! Every scenario runs in rounds; each round measures every runtime once,
//! in an order that rotates from round to round, so drift on a shared host
//! hits all runtimes alike. The whole run happens inside a private mount
//! namespace with /sys/fs/cgroup/unified unmounted (crun refuses the hybrid
//! layout otherwise); each runtime has its own `--root`.
//!
//! ```text
//! bench [--rounds N] [--throughput-count N] [--throughput-rounds N] [--out DIR]
//! ```
//!
//! It prints medians, p10/p90 and rtctr/peer ratios, and writes DIR/bench.md
//! (the table), DIR/ratios.dat and DIR/ratios.png (gnuplot, when installed).
//! It is a measurement, not a test: it never fails on a time.

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rtctr_integration::{make_rootfs, rtctr_bin};
use serde_json::{json, Value};

/// Set in the re-executed bench, which runs in its own mount namespace.
const IN_NS: &str = "RTCTR_BENCH_IN_NS";
const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";
const CNI_PLUGINS: &str = "/usr/lib/cni";
/// Private test networks: rtctr's built-in one and the CNI bridge's.
const RTCTR_NET: (&str, &str, &str) = ("rtbench", "10.204.250.0/24", "rtbench0");
const CNI_NET: (&str, &str) = ("10.204.251.0/24", "cnibench0");

struct Opts {
    rounds: usize,
    warmup: usize,
    throughput_count: usize,
    throughput_rounds: usize,
    out: PathBuf,
    /// Other rtctr builds measured beside it (`--compare NAME=PATH`), e.g.
    /// the previous commit's, so a change is judged in one paired run.
    compare: Vec<(String, PathBuf)>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        rounds: 30,
        warmup: 3,
        throughput_count: 200,
        throughput_rounds: 3,
        out: PathBuf::from("target/bench"),
        compare: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| -> String {
            args.next()
                .unwrap_or_else(|| die(&format!("{name} needs a value")))
        };
        let num = |s: String, name: &str| -> usize {
            s.parse()
                .unwrap_or_else(|_| die(&format!("{name}: not a number: {s:?}")))
        };
        match a.as_str() {
            "--rounds" => o.rounds = num(val("--rounds"), "--rounds"),
            "--warmup" => o.warmup = num(val("--warmup"), "--warmup"),
            "--throughput-count" => {
                o.throughput_count = num(val("--throughput-count"), "--throughput-count")
            }
            "--throughput-rounds" => {
                o.throughput_rounds = num(val("--throughput-rounds"), "--throughput-rounds")
            }
            "--out" => o.out = PathBuf::from(val("--out")),
            "--compare" => {
                let v = val("--compare");
                match v.split_once('=') {
                    Some((name, path)) if name.starts_with("rtctr-") && name.len() > 6 => {
                        o.compare.push((name.to_owned(), PathBuf::from(path)))
                    }
                    _ => die(&format!("--compare wants rtctr-NAME=PATH, not {v:?}")),
                }
            }
            _ => die(&format!("unknown argument {a:?}")),
        }
    }
    if o.rounds == 0 || o.throughput_rounds == 0 || o.throughput_count == 0 {
        die("--rounds, --throughput-count and --throughput-rounds must be at least 1");
    }
    o
}

fn die(msg: &str) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(1);
}

/// One runtime under test, with its own state root.
struct Runtime {
    name: String,
    bin: PathBuf,
    root: PathBuf,
    /// Where its commands' stderr goes (read back when one fails).
    errlog: PathBuf,
}

impl Runtime {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// Runs a verb to completion; its stdout is discarded (containers
    /// inherit it), its stderr kept for the error message.
    fn run(&self, args: &[&str]) -> Result<(), String> {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
        let err = File::create(&self.errlog).map_err(|e| e.to_string())?;
        let st = self
            .cmd(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        if st.success() {
            Ok(())
        } else {
            let msg = std::fs::read_to_string(&self.errlog).unwrap_or_default();
            Err(format!(
                "{} {}: {st}: {}",
                self.name,
                args.join(" "),
                msg.trim()
            ))
        }
    }

    /// Times one verb, in milliseconds.
    fn timed(&self, args: &[&str], env: &[(&str, &str)]) -> Result<f64, String> {
        let t = Instant::now();
        self.run_env(args, env)?;
        Ok(ms(t.elapsed()))
    }

    /// `delete --force`, ignoring "does not exist" (runc and crun `run`
    /// remove the container themselves when it exits).
    fn force_delete(&self, id: &str) -> f64 {
        let t = Instant::now();
        let _ = self.run(&["delete", "--force", id]);
        ms(t.elapsed())
    }

    fn status(&self, id: &str) -> Option<String> {
        let out = self
            .cmd(&["state", id])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v["status"].as_str().map(str::to_owned)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The runtimes found: rtctr first, then runc, crun, youki on PATH.
fn find_runtimes(work: &Path, compare: &[(String, PathBuf)]) -> Vec<Runtime> {
    let mut found = vec![("rtctr".to_owned(), rtctr_bin())];
    found.extend(compare.iter().cloned());
    for name in ["runc", "crun", "youki"] {
        match which(name) {
            Some(p) => found.push((name.to_owned(), p)),
            None => eprintln!("bench: {name} not installed, skipped"),
        }
    }
    found
        .into_iter()
        .map(|(name, bin)| {
            let root = work.join(format!("root-{name}"));
            std::fs::create_dir_all(&root).expect("state root");
            Runtime {
                errlog: work.join(format!("stderr-{name}")),
                name,
                bin,
                root,
            }
        })
        .collect()
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/local/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Writes a bundle directory `dir` with the config `config`.
fn write_bundle(dir: &Path, config: &Value) -> PathBuf {
    std::fs::create_dir_all(dir).expect("bundle dir");
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(config).unwrap(),
    )
    .expect("config.json");
    dir.to_owned()
}

/// The base config: `rtctr spec`'s defaults, non-interactive, ociVersion
/// 1.0.2 (crun 1.8 refuses 1.2.0), root = the shared read-only rootfs.
fn base_config(work: &Path, rootfs: &Path, args: &[&str]) -> Value {
    let dir = work.join("spec");
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new(rtctr_bin())
        .args(["spec", "--bundle"])
        .arg(&dir)
        .status()
        .expect("rtctr spec");
    assert!(st.success(), "rtctr spec failed");
    let mut c: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap())
        .expect("spec config");
    c["ociVersion"] = json!("1.0.2");
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = json!(args);
    c["root"] = json!({"path": rootfs, "readonly": true});
    c
}

/// Docker's default capability set, used to resolve the profile's `includes`/`excludes`.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// containers-common's seccomp.json in the OCI form, the way podman writes
/// it into config.json: amd64, docker's default caps (the same conversion
/// as runtime/benches/seccomp.rs).
fn podman_seccomp() -> Option<Value> {
    let raw = std::fs::read_to_string(PODMAN_PROFILE).ok()?;
    let v: Value = serde_json::from_str(&raw).ok()?;
    let has = |list: &Value, wanted: &dyn Fn(&str) -> bool| -> Option<bool> {
        list.as_array()
            .map(|l| l.iter().any(|x| wanted(x.as_str().unwrap_or_default())))
    };
    let mut syscalls = Vec::new();
    for s in v["syscalls"].as_array()? {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        if has(&inc["arches"], &|a| a == "amd64") == Some(false)
            || has(&exc["arches"], &|a| a == "amd64") == Some(true)
            || has(&exc["caps"], &|c| DEFAULT_CAPS.contains(&c)) == Some(true)
            || has(&inc["caps"], &|c| !DEFAULT_CAPS.contains(&c)) == Some(true)
        {
            continue;
        }
        let mut entry = json!({"names": s["names"], "action": s["action"]});
        for key in ["errnoRet", "args"] {
            if !s[key].is_null() {
                entry[key] = s[key].clone();
            }
        }
        syscalls.push(entry);
    }
    Some(json!({
        "defaultAction": v["defaultAction"],
        "defaultErrnoRet": v["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    }))
}

/// The CNI bridge plugin wired as OCI hooks the way a user would: a
/// createRuntime hook pins the container's netns and calls `bridge` ADD, a
/// poststop hook calls DEL on the pinned netns and unpins it.
fn write_cni_hook(work: &Path) -> (PathBuf, PathBuf) {
    let (subnet, bridge) = CNI_NET;
    let conf = work.join("cni-bench.conf");
    let conf_json = json!({
        "cniVersion": "0.4.0",
        "name": "cnibench",
        "type": "bridge",
        "bridge": bridge,
        "isGateway": true,
        "ipMasq": true,
        "ipam": {
            "type": "host-local",
            "subnet": subnet,
            "dataDir": work.join("cni-ipam"),
        },
    });
    std::fs::write(&conf, serde_json::to_vec_pretty(&conf_json).unwrap()).unwrap();
    let pins = work.join("netns");
    std::fs::create_dir_all(&pins).unwrap();
    let script = work.join("cni-hook.sh");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
# OCI hook: cni-hook.sh add (createRuntime) | del (poststop); OCI state on stdin.
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
state=$(cat)
id=$(printf '%s' "$state" | jq -r .id)
pin={pins}/$id
export CNI_PATH={plugins} CNI_IFNAME=eth0 CNI_CONTAINERID=$id CNI_NETNS=$pin
case $1 in
add)
    pid=$(printf '%s' "$state" | jq -r .pid)
    touch "$pin"
    mount --bind /proc/$pid/ns/net "$pin"
    CNI_COMMAND=ADD {plugins}/bridge < {conf} > /dev/null ;;
del)
    CNI_COMMAND=DEL {plugins}/bridge < {conf} > /dev/null
    umount "$pin"
    rm -f "$pin" ;;
esac
"#,
            pins = pins.display(),
            plugins = CNI_PLUGINS,
            conf = conf.display()
        ),
    )
    .unwrap();
    (script, pins)
}

/// Samples of one measure, per runtime (None: it failed or does not apply).
struct Row {
    name: String,
    unit: &'static str,
    /// Per runtime, in the order of `runtimes`.
    samples: Vec<Option<Vec<f64>>>,
}

/// p10, median, p90 (nearest rank).
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    (at(0.1), at(0.5), at(0.9))
}

/// Runs `warmup` untimed and `rounds` timed rounds of `f` over `rts`, the
/// order rotating each round. `f` returns one value per measure in
/// `names`; a runtime whose call fails is dropped from the scenario (the
/// error is printed).
fn paired(
    rts: &[Runtime],
    names: &[&str],
    unit: &'static str,
    warmup: usize,
    rounds: usize,
    mut f: impl FnMut(&Runtime, usize) -> Result<Vec<f64>, String>,
) -> Vec<Row> {
    let n = rts.len();
    let mut samples: Vec<Option<Vec<Vec<f64>>>> = (0..n).map(|_| Some(Vec::new())).collect();
    for round in 0..warmup + rounds {
        for k in 0..n {
            let i = (k + round) % n;
            if samples[i].is_none() {
                continue;
            }
            match f(&rts[i], round) {
                Ok(v) if round >= warmup => samples[i].as_mut().unwrap().push(v),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("bench: {}: {}: {e}", names[0], rts[i].name);
                    samples[i] = None;
                }
            }
        }
    }
    names
        .iter()
        .enumerate()
        .map(|(m, name)| Row {
            name: (*name).to_owned(),
            unit,
            samples: samples
                .iter()
                .map(|s| s.as_ref().map(|v| v.iter().map(|x| x[m]).collect()))
                .collect(),
        })
        .collect()
}

/// `run` + `delete` of the bundle, in ms.
fn lifecycle(rt: &Runtime, bundle: &Path, id: &str, env: &[(&str, &str)]) -> Result<f64, String> {
    let b = bundle.to_str().unwrap();
    let t = Instant::now();
    let r = rt.run_env(&["run", "--bundle", b, id], env);
    rt.force_delete(id);
    r.map(|_| ms(t.elapsed()))
}

/// Waits (untimed) until the container has stopped, at most 5 s.
fn wait_stopped(rt: &Runtime, id: &str) {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        match rt.status(id).as_deref() {
            Some("stopped") | None => return,
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// 200 (count) containers created, started and deleted by 8 threads; seconds.
fn throughput(rt: &Runtime, bundle: &Path, round: usize, count: usize) -> Result<f64, String> {
    let next = AtomicUsize::new(0);
    let b = bundle.to_str().unwrap();
    let t = Instant::now();
    let errors: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut errs = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return errs;
                        }
                        let id = format!("tp{round}-{i}");
                        // Each thread has its own stderr file.
                        let r = Command::new(&rt.bin)
                            .arg("--root")
                            .arg(&rt.root)
                            .args(["create", "--bundle", b, &id])
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status();
                        let ok = matches!(r, Ok(st) if st.success());
                        let started = ok
                            && rt
                                .cmd(&["start", &id])
                                .stdout(Stdio::null())
                                .stderr(Stdio::null())
                                .status()
                                .is_ok_and(|s| s.success());
                        let _ = rt
                            .cmd(&["delete", "--force", &id])
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status();
                        if !started {
                            errs.push(format!("{id}: create or start failed"));
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    if let Some(e) = errors.first() {
        return Err(format!("{} failures, first {e}", errors.len()));
    }
    Ok(t.elapsed().as_secs_f64())
}

/// The v1 memory cgroup of a container whose cgroupsPath is `/path`.
fn memory_peak_kib(cgroup: &str) -> Option<f64> {
    let p = Path::new("/sys/fs/cgroup/memory")
        .join(cgroup.trim_start_matches('/'))
        .join("memory.max_usage_in_bytes");
    let s = std::fs::read_to_string(p).ok()?;
    s.trim().parse::<f64>().ok().map(|b| b / 1024.0)
}

/// Peak RSS of `create` (GNU time, KiB) and the peak memory charged to the
/// container's cgroup by create + start of `true` (KiB).
fn memory(rt: &Runtime, base: &Value, work: &Path, round: usize) -> Result<Vec<f64>, String> {
    let id = format!("mem{round}");
    let cg = format!("/rtctr-bench-{}-{round}", rt.name);
    let mut c = base.clone();
    c["linux"]["cgroupsPath"] = json!(cg);
    let bundle = write_bundle(&work.join(format!("bundle-mem-{}", rt.name)), &c);
    let tfile = work.join("time-out");
    let err = File::create(&rt.errlog).map_err(|e| e.to_string())?;
    let st = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&tfile)
        .arg(&rt.bin)
        .arg("--root")
        .arg(&rt.root)
        .args(["create", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .status()
        .map_err(|e| format!("/usr/bin/time: {e}"))?;
    if !st.success() {
        rt.force_delete(&id);
        let msg = std::fs::read_to_string(&rt.errlog).unwrap_or_default();
        return Err(format!("create: {st}: {}", msg.trim()));
    }
    let rss = std::fs::read_to_string(&tfile)
        .ok()
        .and_then(|s| s.lines().last()?.trim().parse::<f64>().ok());
    let r = rt.run(&["start", &id]);
    wait_stopped(rt, &id);
    let charged = memory_peak_kib(&cg);
    rt.force_delete(&id);
    r?;
    match (rss, charged) {
        (Some(a), Some(b)) => Ok(vec![a, b]),
        _ => Err(format!(
            "no figure: rss {rss:?}, cgroup {cg} charged {charged:?}"
        )),
    }
}

fn main() {
    let opts = parse_opts();
    if std::env::var_os(IN_NS).is_none() {
        // Re-executed inside a private mount namespace (util-linux unshare
        // makes its mounts private), where /sys/fs/cgroup/unified can go.
        let exe = std::env::current_exe().expect("current exe");
        let err = Command::new("unshare")
            .arg("--mount")
            .arg("--")
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(IN_NS, "1")
            .exec();
        die(&format!("exec unshare: {err}"));
    }
    if Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        if let Err(e) = rustix::mount::unmount(
            "/sys/fs/cgroup/unified",
            rustix::mount::UnmountFlags::DETACH,
        ) {
            die(&format!("umount /sys/fs/cgroup/unified: {e}"));
        }
    }
    let work = tempfile::Builder::new()
        .prefix("rtctr-bench-")
        .tempdir()
        .expect("work dir");
    let work = work.path();
    // Everything the runtimes write (state roots, bundles, network state)
    // on a tmpfs, as /run is on a systemd host. This VM's /tmp and /run
    // are on ext4 without a journal, whose inode allocator slows down with
    // recent file churn (a create + rename of a small file: 224 µs there
    // after a test run, 23 µs on tmpfs), and by how much depends on what
    // ran before. The mount is private to the bench's namespace.
    if let Err(e) = rustix::mount::mount(
        "tmpfs",
        work,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        c"mode=0755",
    ) {
        die(&format!("mount a tmpfs on {}: {e}", work.display()));
    }
    let rootfs = work.join("rootfs");
    make_rootfs(&rootfs);
    let rts = find_runtimes(work, &opts.compare);
    let names: Vec<&str> = rts.iter().map(|r| r.name.as_str()).collect();
    println!(
        "bench: {} rounds (+{} warm-up), runtimes: {}",
        opts.rounds,
        opts.warmup,
        names.join(", ")
    );

    let base = base_config(work, &rootfs, &["true"]);
    let plain = write_bundle(&work.join("bundle-true"), &base);
    let mut rows: Vec<Row> = Vec::new();
    let (w, n) = (opts.warmup, opts.rounds);

    // 1. Lifecycle, with the floor (the namespaces alone) measured alongside.
    eprintln!("bench: lifecycle");
    rows.extend(paired(
        &rts,
        &["lifecycle: run + delete of `true`"],
        "ms",
        w,
        n,
        |rt, i| lifecycle(rt, &plain, &format!("lc{i}"), &[]).map(|x| vec![x]),
    ));
    let floor: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let _ = Command::new("unshare")
                .args([
                    "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup", "true",
                ])
                .status();
            ms(t.elapsed())
        })
        .collect();

    // 2. create alone, start alone.
    eprintln!("bench: create, start");
    rows.extend(paired(&rts, &["create", "start"], "ms", w, n, |rt, i| {
        let id = format!("cs{i}");
        let c = rt.timed(&["create", "--bundle", plain.to_str().unwrap(), &id], &[]);
        let s = c
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|_| rt.timed(&["start", &id], &[]));
        rt.force_delete(&id);
        Ok(vec![c?, s?])
    }));

    // 3. exec of `true` into a running container.
    eprintln!("bench: exec");
    let sleeper = {
        let mut c = base.clone();
        c["process"]["args"] = json!(["sleep", "1000000"]);
        write_bundle(&work.join("bundle-sleep"), &c)
    };
    let running: Vec<bool> = rts
        .iter()
        .map(|rt| {
            rt.run(&[
                "create",
                "--bundle",
                sleeper.to_str().unwrap(),
                "exec-target",
            ])
            .and_then(|_| rt.run(&["start", "exec-target"]))
            .map_err(|e| eprintln!("bench: exec: {e}"))
            .is_ok()
        })
        .collect();
    rows.extend(paired(&rts, &["exec of `true`"], "ms", w, n, |rt, _| {
        let idx = rts.iter().position(|r| r.name == rt.name).unwrap();
        if !running[idx] {
            return Err("no running container".into());
        }
        rt.timed(&["exec", "exec-target", "true"], &[])
            .map(|x| vec![x])
    }));
    for rt in &rts {
        rt.force_delete("exec-target");
    }

    // 4. Throughput.
    eprintln!("bench: throughput");
    let tp_name = format!(
        "throughput: {} containers create+start+delete, 8 in flight",
        opts.throughput_count
    );
    rows.extend(paired(
        &rts,
        &[tp_name.as_str()],
        "s",
        0,
        opts.throughput_rounds,
        |rt, i| throughput(rt, &plain, i, opts.throughput_count).map(|x| vec![x]),
    ));

    // 5. Network: rtctr's built-in network, and the CNI bridge plugin as hooks.
    eprintln!("bench: network");
    let netdir = work.join("rtctr-networks");
    let netenv = [("RTCTR_NETWORK_DIR", netdir.to_str().unwrap())];
    let rtctr = &rts[0];
    let (name, subnet, bridge) = RTCTR_NET;
    let net_ok = rtctr
        .run_env(
            &[
                "network", "create", name, "--subnet", subnet, "--bridge", bridge,
            ],
            &netenv,
        )
        .map_err(|e| eprintln!("bench: network: {e}"))
        .is_ok();
    let builtin = {
        let mut c = base.clone();
        c["annotations"]["rtctr.network"] = json!(name);
        write_bundle(&work.join("bundle-net"), &c)
    };
    let (hook, _pins) = write_cni_hook(work);
    let cni = {
        let mut c = base.clone();
        let h = |arg: &str| json!([{"path": "/bin/sh", "args": ["sh", hook, arg]}]);
        c["hooks"] = json!({"createRuntime": h("add"), "poststop": h("del")});
        write_bundle(&work.join("bundle-cni"), &c)
    };
    let cni_ok = Path::new(CNI_PLUGINS).join("bridge").exists() && which("jq").is_some();
    if !cni_ok {
        eprintln!("bench: CNI bridge plugin or jq missing (apt-get install containernetworking-plugins jq)");
    }
    rows.extend(paired(
        &rts,
        &[
            "lifecycle, built-in network (rtctr only)",
            "lifecycle, CNI bridge plugin as hooks",
            "_plain lifecycle, paired with the network rows",
        ],
        "ms",
        w,
        n,
        |rt, i| {
            let builtin_ms = if rt.name.starts_with("rtctr") && net_ok {
                lifecycle(rt, &builtin, &format!("net{i}"), &netenv)?
            } else {
                f64::NAN
            };
            let cni_ms = if cni_ok {
                lifecycle(rt, &cni, &format!("cni{i}"), &[])?
            } else {
                f64::NAN
            };
            let plain_ms = lifecycle(rt, &plain, &format!("np{i}"), &[])?;
            Ok(vec![builtin_ms, cni_ms, plain_ms])
        },
    ));
    if net_ok {
        let _ = rtctr.run_env(&["network", "rm", "--force", name], &netenv);
    }
    let _ = Command::new("ip")
        .args(["link", "del", CNI_NET.1])
        .stderr(Stdio::null())
        .status();

    // 6. podman's default seccomp profile.
    eprintln!("bench: seccomp");
    match podman_seccomp() {
        Some(profile) => {
            let mut c = base.clone();
            c["linux"]["seccomp"] = profile;
            let b = write_bundle(&work.join("bundle-seccomp"), &c);
            rows.extend(paired(
                &rts,
                &[
                    "lifecycle with podman's seccomp profile",
                    "_plain lifecycle, paired with the seccomp row",
                ],
                "ms",
                w,
                n,
                |rt, i| {
                    let with = lifecycle(rt, &b, &format!("sc{i}"), &[])?;
                    let without = lifecycle(rt, &plain, &format!("sp{i}"), &[])?;
                    Ok(vec![with, without])
                },
            ));
        }
        None => eprintln!("bench: {PODMAN_PROFILE} missing (apt-get install golang-github-containers-common), skipped"),
    }

    // 7. Memory.
    eprintln!("bench: memory");
    rows.extend(paired(
        &rts,
        &[
            "peak RSS of `create` (GNU time)",
            "memory charged to the container's cgroup (v1 max_usage)",
        ],
        "KiB",
        1,
        n.min(10),
        |rt, i| memory(rt, &base, work, i),
    ));
    let sizes: Vec<f64> = rts
        .iter()
        .map(|rt| {
            std::fs::metadata(&rt.bin)
                .map(|m| m.len() as f64 / 1024.0)
                .unwrap_or(f64::NAN)
        })
        .collect();
    rows.push(Row {
        name: "binary size (stripped as shipped)".into(),
        unit: "KiB",
        samples: sizes.iter().map(|&s| Some(vec![s])).collect(),
    });

    // Leftovers: any container that a failure left behind.
    for rt in &rts {
        if let Ok(entries) = std::fs::read_dir(&rt.root) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    rt.force_delete(&e.file_name().to_string_lossy());
                }
            }
        }
    }

    report(&opts, &rts, &rows, &floor);
    if let Err(e) = rustix::mount::unmount(work, rustix::mount::UnmountFlags::DETACH) {
        eprintln!("bench: umount {}: {e}", work.display());
    }
}

fn fmt_val(x: f64, unit: &str) -> String {
    if x.is_nan() {
        return "—".into();
    }
    match unit {
        "ms" => format!("{x:.1} ms"),
        "s" => format!("{x:.2} s"),
        _ => format!("{x:.0} KiB"),
    }
}

/// Prints the table, writes bench.md, ratios.dat and ratios.png.
fn report(opts: &Opts, rts: &[Runtime], rows: &[Row], floor: &[f64]) {
    let peers = &rts[1..];
    let mut md = String::new();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let _ = writeln!(
        md,
        "{date}, host {}, {cpus} CPUs, kernel {}, load average at the end {}; {} rounds (+{} warm-up), \
         throughput {} round(s). Median [p10–p90]; ratio = rtctr median / peer median (< 1: rtctr better).\n",
        host.trim(),
        kernel.trim(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        opts.rounds,
        opts.warmup,
        opts.throughput_rounds,
    );
    let mut header = "| measure |".to_owned();
    let mut sep = "|---|".to_owned();
    for rt in rts {
        let _ = write!(header, " {} |", rt.name);
        sep.push_str("---|");
    }
    for p in peers {
        let _ = write!(header, " rtctr/{} |", p.name);
        sep.push_str("---|");
    }
    let _ = writeln!(md, "{header}\n{sep}");
    let mut dat = String::from("scenario");
    for p in peers {
        let _ = write!(dat, " rtctr/{}", p.name);
    }
    dat.push('\n');
    // Rows named `_...` are baselines for the "adds" lines, not shown.
    for row in rows.iter().filter(|r| !r.name.starts_with('_')) {
        let medians: Vec<Option<f64>> = row
            .samples
            .iter()
            .map(|s| {
                s.as_ref()
                    .filter(|v| !v.is_empty() && !v.iter().any(|x| x.is_nan()))
                    .map(|v| spread(v).1)
            })
            .collect();
        let mut line = format!("| {} |", row.name);
        for s in &row.samples {
            match s
                .as_ref()
                .filter(|v| !v.is_empty() && !v.iter().any(|x| x.is_nan()))
            {
                Some(v) if v.len() > 1 => {
                    let (lo, mid, hi) = spread(v);
                    let _ = write!(
                        line,
                        " {} [{}–{}] |",
                        fmt_val(mid, row.unit),
                        fmt_num(lo, row.unit),
                        fmt_num(hi, row.unit)
                    );
                }
                Some(v) => {
                    let _ = write!(line, " {} |", fmt_val(v[0], row.unit));
                }
                None => line.push_str(" — |"),
            }
        }
        // The built-in network row compares rtctr's built-in against the
        // peers' CNI hook.
        let ours = medians[0];
        let peer_row = if row.name.starts_with("lifecycle, built-in") {
            rows.iter()
                .find(|r| r.name.starts_with("lifecycle, CNI"))
                .map(|r| {
                    r.samples
                        .iter()
                        .map(|s| s.as_ref().filter(|v| !v.is_empty()).map(|v| spread(v).1))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        } else {
            medians.clone()
        };
        let mut short = row
            .name
            .split([':', ',', '('])
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        if row.name.contains("CNI") {
            short = "CNI hook".into();
        } else if row.name.contains("built-in") {
            short = "built-in net vs CNI".into();
        } else if row.name.contains("seccomp") {
            short = "seccomp".into();
        } else if row.name.contains("RSS") {
            short = "peak RSS".into();
        } else if row.name.contains("cgroup") {
            short = "cgroup memory".into();
        } else if row.name.contains("size") {
            short = "binary size".into();
        }
        let _ = write!(dat, "\"{short}\"");
        for i in 1..rts.len() {
            let r = match (ours, peer_row.get(i).copied().flatten()) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            };
            match r {
                Some(r) => {
                    let _ = write!(line, " {r:.2} |");
                    let _ = write!(dat, " {r:.3}");
                }
                None => {
                    line.push_str(" — |");
                    dat.push_str(" NaN");
                }
            }
        }
        dat.push('\n');
        let _ = writeln!(md, "{line}");
    }
    // What the network and seccomp add to the lifecycle: per round, the
    // variant minus the plain lifecycle measured right after it (paired),
    // then the median and p10/p90 of those differences.
    let samples_of = |prefix: &str, i: usize| -> Option<&Vec<f64>> {
        rows.iter()
            .find(|r| r.name.starts_with(prefix))?
            .samples
            .get(i)?
            .as_ref()
            .filter(|v| !v.is_empty() && !v.iter().any(|x| x.is_nan()))
    };
    md.push('\n');
    for (label, prefix, base) in [
        (
            "built-in network",
            "lifecycle, built-in",
            "_plain lifecycle, paired with the network",
        ),
        (
            "CNI bridge hooks",
            "lifecycle, CNI",
            "_plain lifecycle, paired with the network",
        ),
        (
            "podman's seccomp profile",
            "lifecycle with podman",
            "_plain lifecycle, paired with the seccomp",
        ),
    ] {
        let mut line = format!("- {label} adds to a lifecycle (paired per round):");
        for (i, rt) in rts.iter().enumerate() {
            if let (Some(with), Some(plain)) = (samples_of(prefix, i), samples_of(base, i)) {
                let diffs: Vec<f64> = with.iter().zip(plain).map(|(a, b)| a - b).collect();
                let (lo, mid, hi) = spread(&diffs);
                let _ = write!(line, " {} {mid:+.1} ms [{lo:+.1}…{hi:+.1}];", rt.name);
            }
        }
        let _ = writeln!(md, "{}", line.trim_end_matches(';'));
    }
    let (lo, mid, hi) = spread(floor);
    let _ = writeln!(
        md,
        "\nFloor (`unshare --fork --pid --mount --uts --ipc --net --cgroup true`): {mid:.1} ms [{lo:.1}–{hi:.1}]."
    );
    println!("\n{md}");
    if let Err(e) = std::fs::create_dir_all(&opts.out) {
        die(&format!("{}: {e}", opts.out.display()));
    }
    let md_path = opts.out.join("bench.md");
    let dat_path = opts.out.join("ratios.dat");
    std::fs::write(&md_path, &md).expect("write bench.md");
    std::fs::write(&dat_path, &dat).expect("write ratios.dat");
    println!("bench: wrote {}", md_path.display());
    plot(&opts.out, &dat_path, peers.len());
}

fn fmt_num(x: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{x:.1}"),
        "s" => format!("{x:.2}"),
        _ => format!("{x:.0}"),
    }
}

/// ratios.png: rtctr/peer per scenario, one bar per peer (gnuplot).
fn plot(out: &Path, dat: &Path, peers: usize) {
    if which("gnuplot").is_none() || peers == 0 {
        eprintln!("bench: gnuplot not installed (apt-get install gnuplot-nox): no chart");
        return;
    }
    let png = out.join("ratios.png");
    let mut script = format!(
        "set terminal pngcairo size 1100,500 noenhanced\n\
         set output '{}'\n\
         set title 'rtctr / peer (median ratio, log scale; below 1: rtctr faster or smaller)'\n\
         set style data histograms\n\
         set style histogram clustered gap 1\n\
         set style fill solid 0.8 border -1\n\
         set xtics rotate by -30\n\
         set logscale y\n\
         set yrange [0.05:20]\n\
         set grid ytics\n\
         set key top left autotitle columnheader\n\
         set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2\n\
         plot ",
        png.display()
    );
    for p in 0..peers {
        if p > 0 {
            script.push_str(", ");
        }
        let _ = write!(
            script,
            "'{}' using {}{}",
            dat.display(),
            p + 2,
            if p == 0 { ":xtic(1)" } else { "" }
        );
    }
    script.push('\n');
    let st = Command::new("gnuplot")
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait()
        });
    match st {
        Ok(s) if s.success() => println!("bench: wrote {}", png.display()),
        other => eprintln!("bench: gnuplot failed: {other:?}"),
    }
}
