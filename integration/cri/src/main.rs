//! Plays kubelet against containerd's CRI plugin (CRI v1 over its unix socket), with rtctr
//! as the pod's runtime handler. Run by `integration/engines/cri.sh`, which starts the
//! containerd, imports the images and writes the CNI config.
//!
//! ```text
//! cri-kubelet steps --socket S --handler rtctr --image IMG --outside-ns PATH \
//!     --outside-ip A --node-ip B --host-port N --subnet-prefix 10.204.90.
//! cri-kubelet bench --socket S --image IMG --handlers rtctr,runc --runs N
//! ```
//!
//! `steps` prints `PASS|FAIL <step>: <detail>` per step and `N passed, N failed`, and exits 1
//! if a step failed. `bench` prints the time from RunPodSandbox to a started container, per
//! handler (median and range over N pods, handlers interleaved).

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use nix::sched::{setns, CloneFlags};
use serde_json::Value;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

type Client = RuntimeServiceClient<Channel>;
type StepResult = Result<String, String>;

fn args() -> (String, HashMap<String, String>) {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let mut opts = HashMap::new();
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        opts.insert(k.trim_start_matches("--").to_string(), v);
    }
    (mode, opts)
}

async fn connect(socket: String) -> Result<Client, String> {
    // kubelet's default runtime request timeout is 2 minutes; a hung call fails its step
    let channel = Endpoint::try_from("http://[::]:50051")
        .map_err(|e| e.to_string())?
        .timeout(Duration::from_secs(60))
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    Ok(RuntimeServiceClient::new(channel))
}

fn status_msg(e: tonic::Status) -> String {
    format!("{:?}: {}", e.code(), e.message())
}

/// The pod: one sandbox config, kept for CreateContainer.
fn pod_config(name: &str, uid: &str, ports: Vec<PortMapping>) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: "rtctr-test".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        port_mappings: ports,
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/rtctr-cri/{uid}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(name: &str, image: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    }
}

/// The web container writes its page after it starts: wait for it (5 s at most).
const WAIT_WWW_AND_CAT: &str = "for i in $(seq 50); do [ -s /www/index.html ] && break; sleep 0.1; done; hostname; cat /www/index.html";

/// An HTTP GET with nc (busybox-static's wget crashed in some of these containers); the
/// address and port follow.
const HTTP_GET: &str = r"printf 'GET / HTTP/1.0\r\n\r\n' | nc";

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 1; done";

struct Steps {
    passed: u32,
    failed: u32,
}

impl Steps {
    async fn run(&mut self, name: &str, f: impl Future<Output = StepResult>) -> bool {
        let (mark, detail, ok) = match f.await {
            Ok(d) => ("PASS", d, true),
            Err(d) => ("FAIL", d, false),
        };
        let detail: String = detail.replace('\n', " ").chars().take(600).collect();
        println!("{mark} {name}: {detail}");
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        ok
    }
}

async fn exec(c: &mut Client, id: &str, cmd: &[&str]) -> Result<(i32, String, String), String> {
    let r = c
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        })
        .await
        .map_err(status_msg)?
        .into_inner();
    Ok((
        r.exit_code,
        String::from_utf8_lossy(&r.stdout).trim().to_string(),
        String::from_utf8_lossy(&r.stderr).trim().to_string(),
    ))
}

async fn run_pod(c: &mut Client, handler: &str, cfg: &PodSandboxConfig) -> Result<String, String> {
    Ok(c.run_pod_sandbox(RunPodSandboxRequest {
        config: Some(cfg.clone()),
        runtime_handler: handler.into(),
    })
    .await
    .map_err(status_msg)?
    .into_inner()
    .pod_sandbox_id)
}

async fn start_container(
    c: &mut Client,
    pod: &str,
    cfg: &PodSandboxConfig,
    ccfg: ContainerConfig,
) -> Result<String, String> {
    let id = c
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(ccfg),
            sandbox_config: Some(cfg.clone()),
        })
        .await
        .map_err(|e| format!("CreateContainer: {}", status_msg(e)))?
        .into_inner()
        .container_id;
    c.start_container(StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .map_err(|e| format!("StartContainer: {}", status_msg(e)))?;
    Ok(id)
}

async fn container_state(c: &mut Client, id: &str) -> Result<(ContainerState, Value), String> {
    let r = c
        .container_status(ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        })
        .await
        .map_err(status_msg)?
        .into_inner();
    let st = r.status.ok_or("no status")?;
    let info = r
        .info
        .get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    Ok((
        ContainerState::try_from(st.state).unwrap_or(ContainerState::ContainerUnknown),
        info,
    ))
}

async fn pod_status(c: &mut Client, id: &str) -> Result<(PodSandboxStatus, Value), String> {
    let r = c
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        })
        .await
        .map_err(status_msg)?
        .into_inner();
    let info = r
        .info
        .get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    Ok((r.status.ok_or("no status")?, info))
}

async fn stop_remove_pod(c: &mut Client, id: &str) -> Result<(), String> {
    c.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .map_err(|e| format!("StopPodSandbox: {}", status_msg(e)))?;
    c.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .map_err(|e| format!("RemovePodSandbox: {}", status_msg(e)))?;
    Ok(())
}

/// Run `f` on a thread inside the network namespace at `path`.
fn in_netns<T: Send>(path: &str, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(path).map_err(|e| format!("open {path}: {e}"))?;
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {path}: {e}"))?;
            Ok(f())
        })
        .join()
        .map_err(|_| "netns thread panicked".to_string())?
    })
}

/// The host's memory limit for a container, read from its cgroup (v1 memory or v2).
fn memory_limit(pid: u64) -> Result<String, String> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
    for line in cg.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if ctrl.split(',').any(|c| c == "memory") {
            let p = format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes");
            return std::fs::read_to_string(&p)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("{p}: {e}"));
        }
    }
    let path = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no memory cgroup")?;
    let p = format!("/sys/fs/cgroup{path}/memory.max");
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{p}: {e}"))
}

struct Opts {
    handler: String,
    image: String,
    outside_ns: String,
    outside_ip: Ipv4Addr,
    node_ip: Ipv4Addr,
    host_port: u16,
    subnet_prefix: String,
}

async fn steps(mut c: Client, o: Opts) -> ExitCode {
    let mut s = Steps {
        passed: 0,
        failed: 0,
    };
    let h = o.handler.as_str();
    s.run("Version", async {
        let v = c
            .version(VersionRequest {
                version: "v1".into(),
            })
            .await
            .map_err(status_msg)?
            .into_inner();
        let d = format!(
            "{} {} CRI {}",
            v.runtime_name, v.runtime_version, v.runtime_api_version
        );
        if v.runtime_api_version == "v1" {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;

    // pod A: two containers, a published port
    let cfg_a = pod_config(
        "pod-a",
        "uid-a",
        vec![PortMapping {
            protocol: Protocol::Tcp as i32,
            container_port: 80,
            host_port: i32::from(o.host_port),
            host_ip: String::new(),
        }],
    );
    let cfg_b = pod_config("pod-b", "uid-b", vec![]);
    let mut pod_a = String::new();
    let mut pod_b = String::new();
    let mut ip_a = String::new();
    s.run("RunPodSandbox (runtime_handler rtctr)", async {
        pod_a = run_pod(&mut c, h, &cfg_a).await?;
        let (st, info) = pod_status(&mut c, &pod_a).await?;
        ip_a = st.network.map(|n| n.ip).unwrap_or_default();
        let handler = info["runtimeHandler"].as_str().unwrap_or("?").to_string();
        let d = format!(
            "{} state {:?}, ip {ip_a}, handler {handler}",
            &pod_a[..12.min(pod_a.len())],
            PodSandboxState::try_from(st.state)
        );
        if st.state == PodSandboxState::SandboxReady as i32
            && ip_a.starts_with(&o.subnet_prefix)
            && handler == h
        {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;

    let web = "mkdir -p /www; echo served-by-$(hostname) >/www/index.html; httpd -p 80 -h /www; "
        .to_string()
        + LOOP;
    let mut c1 = String::new();
    let mut c2 = String::new();
    s.run("CreateContainer + StartContainer", async {
        c1 = start_container(
            &mut c,
            &pod_a,
            &cfg_a,
            container_config("web", &o.image, &web),
        )
        .await?;
        let (st, info) = container_state(&mut c, &c1).await?;
        let d = format!(
            "web {:?}, pid {}, runtime {}",
            st, info["pid"], info["runtimeType"]
        );
        if st == ContainerState::ContainerRunning {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    s.run("ExecSync", async {
        let (code, out, err) = exec(&mut c, &c1, &["sh", "-c", WAIT_WWW_AND_CAT]).await?;
        let (code3, _, _) = exec(&mut c, &c1, &["sh", "-c", "exit 3"]).await?;
        let d = format!("exit {code}, out '{out}' err '{err}'; exit 3 -> {code3}");
        if code == 0 && out == "pod-a\nserved-by-pod-a" && code3 == 3 {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    s.run("ContainerStatus", async {
        let r = c
            .container_status(ContainerStatusRequest {
                container_id: c1.clone(),
                verbose: false,
            })
            .await
            .map_err(status_msg)?
            .into_inner();
        let st = r.status.ok_or("no status")?;
        let d = format!(
            "state {:?}, started_at {}, image {}",
            ContainerState::try_from(st.state),
            st.started_at,
            st.image.map(|i| i.image).unwrap_or_default()
        );
        if st.state == ContainerState::ContainerRunning as i32 && st.started_at > 0 {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    s.run(
        "second container shares the pod's network, IPC, UTS and pid namespaces",
        async {
            c2 = start_container(
                &mut c,
                &pod_a,
                &cfg_a,
                container_config("side", &o.image, LOOP),
            )
            .await?;
            let ns = "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done";
            let (_, n1, e1) = exec(&mut c, &c1, &["sh", "-c", ns]).await?;
            let (_, n2, e2) = exec(&mut c, &c2, &["sh", "-c", ns]).await?;
            let l1: Vec<&str> = n1.lines().collect();
            let l2: Vec<&str> = n2.lines().collect();
            // the web server of the first container, over the shared loopback
            let (code, page, err) = exec(
                &mut c,
                &c2,
                &["sh", "-c", &format!("{HTTP_GET} 127.0.0.1 80 | tail -n 1")],
            )
            .await?;
            // the sandbox (pause) process's namespaces, read on the host
            let (_, info) = pod_status(&mut c, &pod_a).await?;
            let spid = info["pid"].as_u64().unwrap_or(0);
            let link = |k: &str| {
                std::fs::read_link(format!("/proc/{spid}/ns/{k}"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let (snet, sipc, spid_ns) = (link("net"), link("ipc"), link("pid"));
            // each container's init, read on the host: the pod config leaves
            // namespace_options at their zero value, pid mode POD, so the pause process
            // is pid 1 of a pid namespace the containers share
            let (_, i1) = container_state(&mut c, &c1).await?;
            let (_, i2) = container_state(&mut c, &c2).await?;
            let pidns = |info: &Value| {
                std::fs::read_link(format!("/proc/{}/ns/pid", info["pid"]))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let (p1, p2) = (pidns(&i1), pidns(&i2));
            let d = format!(
                "web {l1:?} {e1}, side {l2:?} {e2}, sandbox {snet} {sipc} {spid_ns}; init pid ns {p1} {p2}; side got '{page}' ({code} {err})"
            );
            let shared = l1.len() == 4
                && l1 == l2
                && l1[0] == snet
                && l1[1] == sipc
                && l1[3] == spid_ns
                && p1 == spid_ns
                && p2 == spid_ns
                && page == "served-by-pod-a";
            if shared {
                Ok(d)
            } else {
                Err(d)
            }
        },
    )
    .await;
    s.run("ListContainers", async {
        let r = c
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    pod_sandbox_id: pod_a.clone(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(status_msg)?
            .into_inner();
        let mut names: Vec<String> = r
            .containers
            .iter()
            .filter(|x| x.state == ContainerState::ContainerRunning as i32)
            .map(|x| {
                x.metadata
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default()
            })
            .collect();
        names.sort();
        let d = format!("running in pod-a: {names:?}");
        if names == ["side", "web"] {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    s.run("ContainerStats", async {
        let r = c
            .container_stats(ContainerStatsRequest {
                container_id: c1.clone(),
            })
            .await
            .map_err(status_msg)?
            .into_inner();
        let st = r.stats.ok_or("no stats")?;
        let mem = st
            .memory
            .and_then(|m| m.working_set_bytes)
            .map(|v| v.value)
            .unwrap_or(0);
        let cpu = st
            .cpu
            .and_then(|m| m.usage_core_nano_seconds)
            .map(|v| v.value)
            .unwrap_or(0);
        let d = format!("working set {mem} B, cpu {cpu} ns");
        if mem > 0 && cpu > 0 {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    s.run("UpdateContainerResources", async {
        let want: i64 = 64 << 20;
        c.update_container_resources(UpdateContainerResourcesRequest {
            container_id: c1.clone(),
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: want,
                cpu_shares: 512,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map_err(status_msg)?;
        let (_, info) = container_state(&mut c, &c1).await?;
        let pid = info["pid"].as_u64().ok_or("no pid in the status info")?;
        let lim = memory_limit(pid)?;
        let d = format!("cgroup memory limit {lim}");
        if lim == want.to_string() {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;

    // networking through rtctr-cni
    s.run("pod-to-pod traffic", async {
        pod_b = run_pod(&mut c, h, &cfg_b).await?;
        let cb = start_container(
            &mut c,
            &pod_b,
            &cfg_b,
            container_config("client", &o.image, LOOP),
        )
        .await?;
        let (code, page, err) = exec(
            &mut c,
            &cb,
            &["sh", "-c", &format!("{HTTP_GET} {ip_a} 80 | tail -n 1")],
        )
        .await?;
        let (pcode, _, _) = exec(&mut c, &cb, &["ping", "-c1", "-W2", &ip_a]).await?;
        let d = format!("pod-b -> {ip_a}:80 got '{page}' ({code} {err}); ping {pcode}");
        if page == "served-by-pod-a" && pcode == 0 {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    s.run("pod to an outside host through NAT", async {
        // the outside host's server: accepts one connection, reads it to the end, closes
        let (tx, rx) = std::sync::mpsc::channel();
        let ns = o.outside_ns.clone();
        let bind = (o.outside_ip, 9100);
        let server = std::thread::spawn(move || {
            in_netns(&ns, || -> Result<(SocketAddr, String), String> {
                let l = TcpListener::bind(bind).map_err(|e| format!("listen: {e}"))?;
                let _ = tx.send(());
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                let deadline = Instant::now() + Duration::from_secs(15);
                let (mut conn, peer) = loop {
                    match l.accept() {
                        Ok(c) => break c,
                        Err(_) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        Err(e) => return Err(format!("no connection: {e}")),
                    }
                };
                conn.set_nonblocking(false).map_err(|e| e.to_string())?;
                conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut buf = [0u8; 64];
                let n = conn.read(&mut buf).unwrap_or(0);
                Ok((peer, String::from_utf8_lossy(&buf[..n]).trim().to_string()))
            })?
        });
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| "the outside server did not start".to_string())?;
        let (code, _, err) = exec(
            &mut c,
            &c1,
            &[
                "sh",
                "-c",
                &format!("echo hello-out | nc {} 9100", o.outside_ip),
            ],
        )
        .await?;
        let (peer, got) = server
            .join()
            .map_err(|_| "server thread panicked".to_string())??;
        let d = format!("outside saw {peer} send '{got}' (nc {code} {err})");
        if peer.ip() == o.node_ip && got == "hello-out" {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    s.run("host port to a pod", async {
        let addr = SocketAddr::from((o.node_ip, o.host_port));
        let got = in_netns(&o.outside_ns, || -> Result<String, String> {
            let mut t = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                .map_err(|e| format!("connect {addr}: {e}"))?;
            t.set_read_timeout(Some(Duration::from_secs(5))).ok();
            t.write_all(b"GET / HTTP/1.0\r\n\r\n")
                .map_err(|e| e.to_string())?;
            let mut s = String::new();
            t.read_to_string(&mut s).map_err(|e| e.to_string())?;
            Ok(s)
        })??;
        let body = got.lines().last().unwrap_or_default().to_string();
        let d = format!("outside -> {addr} got '{body}'");
        if body == "served-by-pod-a" {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;

    s.run("StopContainer", async {
        for id in [&c1, &c2] {
            c.stop_container(StopContainerRequest {
                container_id: id.to_string(),
                timeout: 10,
            })
            .await
            .map_err(status_msg)?;
        }
        let r = c
            .container_status(ContainerStatusRequest {
                container_id: c1.clone(),
                verbose: false,
            })
            .await
            .map_err(status_msg)?
            .into_inner();
        let st = r.status.ok_or("no status")?;
        let d = format!(
            "web {:?} exit code {}",
            ContainerState::try_from(st.state),
            st.exit_code
        );
        if st.state == ContainerState::ContainerExited as i32 && st.exit_code == 0 {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    s.run("RemoveContainer", async {
        for id in [&c1, &c2] {
            c.remove_container(RemoveContainerRequest {
                container_id: id.to_string(),
            })
            .await
            .map_err(status_msg)?;
        }
        let left = c
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    pod_sandbox_id: pod_a.clone(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(status_msg)?
            .into_inner()
            .containers
            .len();
        let d = format!("{left} containers left in pod-a");
        if left == 0 {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    s.run("StopPodSandbox + RemovePodSandbox", async {
        for id in [&pod_a, &pod_b] {
            if !id.is_empty() {
                stop_remove_pod(&mut c, id).await?;
            }
        }
        let left = c
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await
            .map_err(status_msg)?
            .into_inner()
            .items
            .len();
        let all = c
            .list_containers(ListContainersRequest { filter: None })
            .await
            .map_err(status_msg)?
            .into_inner()
            .containers
            .len();
        let d = format!("{left} pods, {all} containers left");
        if left == 0 && all == 0 {
            Ok(d)
        } else {
            Err(d)
        }
    })
    .await;
    println!("{} passed, {} failed", s.passed, s.failed);
    if s.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Time from RunPodSandbox to a running container, per handler, interleaved.
async fn bench(mut c: Client, image: &str, handlers: &[String], runs: usize) -> ExitCode {
    let mut times: HashMap<String, Vec<f64>> = HashMap::new();
    for i in 0..runs {
        for h in handlers {
            let uid = format!("bench-{h}-{i}");
            let cfg = pod_config(&uid, &uid, vec![]);
            let t0 = Instant::now();
            let r = async {
                let pod = run_pod(&mut c, h, &cfg).await?;
                let started =
                    start_container(&mut c, &pod, &cfg, container_config("b", image, LOOP)).await;
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                let id = started?;
                c.stop_container(StopContainerRequest {
                    container_id: id.clone(),
                    timeout: 0,
                })
                .await
                .map_err(status_msg)?;
                stop_remove_pod(&mut c, &pod).await?;
                Ok::<f64, String>(ms)
            }
            .await;
            match r {
                Ok(ms) => times.entry(h.clone()).or_default().push(ms),
                Err(e) => {
                    println!("bench {h} run {i}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    for h in handlers {
        let mut v = times.remove(h).unwrap_or_default();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            continue;
        }
        println!(
            "pod start (RunPodSandbox + CreateContainer + StartContainer) with handler {h}: median {:.0} ms, min {:.0}, max {:.0} ({} pods)",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1],
            v.len()
        );
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let (mode, o) = args();
    let get = |k: &str| o.get(k).cloned().unwrap_or_default();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cri-kubelet: tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let c = match connect(get("socket")).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cri-kubelet: {e}");
                return ExitCode::FAILURE;
            }
        };
        match mode.as_str() {
            "steps" => {
                let ip = |k: &str| get(k).parse::<Ipv4Addr>().unwrap_or(Ipv4Addr::UNSPECIFIED);
                let opts = Opts {
                    handler: get("handler"),
                    image: get("image"),
                    outside_ns: get("outside-ns"),
                    outside_ip: ip("outside-ip"),
                    node_ip: ip("node-ip"),
                    host_port: get("host-port").parse().unwrap_or(18081),
                    subnet_prefix: get("subnet-prefix"),
                };
                steps(c, opts).await
            }
            "bench" => {
                let handlers: Vec<String> = get("handlers").split(',').map(String::from).collect();
                bench(
                    c,
                    &get("image"),
                    &handlers,
                    get("runs").parse().unwrap_or(10),
                )
                .await
            }
            _ => {
                eprintln!("usage: cri-kubelet steps|bench --socket S ...");
                ExitCode::from(2)
            }
        }
    })
}
