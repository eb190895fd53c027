//! `soak`: rtctr through a long, seeded, random mix of container
//! lifecycles (issue 11), checking after every batch that the host holds
//! nothing of them.
//!
//! ```text
//! soak [--lifecycles N] [--seed S] [--start I] [--batch B]
//!      [--scenario NAME[,NAME...]] [--verbose] [--list]
//! ```
//!
//! Lifecycle `i` draws its scenario and every random choice from its own
//! generator, seeded from (S, i): `soak --seed S --start I --lifecycles 1`
//! replays lifecycle I alone (kill points are fractions of the verb's
//! duration measured on this host, so they land close to, not exactly at,
//! the same instant). Every failure prints that command.
//!
//! Each lifecycle runs one scenario (`--list` prints them): normal runs,
//! exec, pause/resume, OOM kills, containers SIGKILLed, rtctr itself
//! SIGKILLed at a random point of create/start/delete/run/exec or right
//! as `<root>/~<id>.<pid>` or `<root>/<id>` appears, failed creates of
//! every kind, networked containers, signals forwarded by a foreground
//! `run`, quick runs that must never hang, 64 parallel creates of distinct
//! ids and 16 of one id. A killed verb's leftovers are left for the
//! batch's sweep.
//!
//! After every batch (and at the end) every container but the keeper is
//! `delete --force`d and the host is checked for what is left: entries of
//! the state root (`~<id>.<pid>` temporaries too), cgroup directories of
//! every id used (every hierarchy), mounts under the soak's directories,
//! host veths of every id and ports on the soak's bridge, leases of the
//! soak's network, nftables rules naming its containers, zombies whose
//! parent is the soak (or the keeper's rtctr), processes whose command line names the state root
//! or the soak's marker, and live orphans the soak adopted. One
//! long-running foreground `rtctr run` (the keeper) lives through the
//! whole soak: its descriptor count (and the soak's own) must not grow.
//! Prints `N passed, N failed` and the leak counts; exits 1 if anything
//! failed or leaked.
//!
//! The soak is two processes: a subreaper that only reaps (as a container
//! engine's shim does: orphaned container inits and whatever a killed
//! rtctr leaves come to it), and its child, the worker, which does the
//! rest (see [`reaper`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rtctr_integration::*;
use serde_json::{json, Value};

/// Lifecycles when `--lifecycles` is not given (the CI's short form).
const DEFAULT_LIFECYCLES: u64 = 300;
/// Lifecycles between two sweeps and leak checks.
const DEFAULT_BATCH: u64 = 50;
/// How long any rtctr command may take before it counts as hung.
const VERB_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a quick `run` of a container that exits at once may take.
const QUICK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long something being torn down (a killed process, a netns the
/// kernel cleans up in the background) may take to go.
const GRACE: Duration = Duration::from_secs(5);
/// Quick runs per `quick-runs` lifecycle.
const QUICK_RUNS: usize = 10;
/// Parallel creates of distinct ids, and of one id.
const PARALLEL_DISTINCT: usize = 64;
const PARALLEL_SAME: usize = 16;
/// The memory limit of the OOM scenarios, and what their program takes.
const OOM_LIMIT: u64 = 32 << 20;
/// The "lifecycle index" of the calibration and the keeper.
const SETUP: u64 = u64::MAX;

// ---------------------------------------------------------------- options

#[derive(Debug, Clone, PartialEq)]
struct Options {
    lifecycles: u64,
    seed: u64,
    start: u64,
    batch: u64,
    only: Vec<Scenario>,
    verbose: bool,
    list: bool,
}

const USAGE: &str = "usage: soak [--lifecycles N] [--seed S] [--start I] [--batch B] \
                     [--scenario NAME[,NAME...]] [--verbose] [--list]";

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut o = Options {
            lifecycles: DEFAULT_LIFECYCLES,
            seed: default_seed(),
            start: 0,
            batch: DEFAULT_BATCH,
            only: Vec::new(),
            verbose: false,
            list: false,
        };
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
            };
            match flag.as_str() {
                "-n" | "--lifecycles" => o.lifecycles = number(&flag, &value()?)?,
                "--seed" => o.seed = number(&flag, &value()?)?,
                "--start" => o.start = number(&flag, &value()?)?,
                "--batch" => o.batch = number(&flag, &value()?)?.max(1),
                "--scenario" => {
                    for name in value()?.split(',').filter(|n| !n.is_empty()) {
                        let s = Scenario::ALL
                            .iter()
                            .find(|s| s.name() == name)
                            .ok_or_else(|| format!("no scenario {name:?} (see --list)"))?;
                        o.only.push(*s);
                    }
                }
                "-v" | "--verbose" => o.verbose = true,
                "--list" => o.list = true,
                "-h" | "--help" => return Err(USAGE.to_string()),
                _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
            }
        }
        Ok(o)
    }
}

/// A decimal or 0x-hex number.
fn number(flag: &str, v: &str) -> Result<u64, String> {
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.map_err(|e| format!("{flag} {v:?}: {e}"))
}

fn default_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    splitmix(t.as_nanos() as u64 ^ u64::from(std::process::id()))
}

// -------------------------------------------------------------------- rng

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xorshift64*: small, fast, and good enough to pick scenarios.
struct Rng(u64);

impl Rng {
    /// The generator of lifecycle `index` of a soak seeded with `seed`.
    fn for_lifecycle(seed: u64, index: u64) -> Rng {
        let s = splitmix(seed ^ splitmix(index));
        Rng(if s == 0 { 0x2545_f491_4f6c_dd1d } else { s })
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..n (n > 0; the modulo bias is below 2^-40 here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Uniform in [0, 1).
    fn fraction(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

// -------------------------------------------------------------- scenarios

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Scenario {
    Run,
    Lifecycle,
    Exec,
    Pause,
    Oom,
    OomExec,
    KillContainer,
    KillCreate,
    KillCreateWindow,
    KillStart,
    KillDelete,
    KillRun,
    KillExec,
    FailCreate,
    Network,
    Signal,
    QuickRuns,
    ParallelDistinct,
    ParallelSame,
    HostMounts,
    Keeper,
}

impl Scenario {
    const ALL: [Scenario; 21] = [
        Scenario::Run,
        Scenario::Lifecycle,
        Scenario::Exec,
        Scenario::Pause,
        Scenario::Oom,
        Scenario::OomExec,
        Scenario::KillContainer,
        Scenario::KillCreate,
        Scenario::KillCreateWindow,
        Scenario::KillStart,
        Scenario::KillDelete,
        Scenario::KillRun,
        Scenario::KillExec,
        Scenario::FailCreate,
        Scenario::Network,
        Scenario::Signal,
        Scenario::QuickRuns,
        Scenario::ParallelDistinct,
        Scenario::ParallelSame,
        Scenario::HostMounts,
        Scenario::Keeper,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Run => "run",
            Scenario::Lifecycle => "lifecycle",
            Scenario::Exec => "exec",
            Scenario::Pause => "pause",
            Scenario::Oom => "oom",
            Scenario::OomExec => "oom-exec",
            Scenario::KillContainer => "kill-container",
            Scenario::KillCreate => "kill-create",
            Scenario::KillCreateWindow => "kill-create-window",
            Scenario::KillStart => "kill-start",
            Scenario::KillDelete => "kill-delete",
            Scenario::KillRun => "kill-run",
            Scenario::KillExec => "kill-exec",
            Scenario::FailCreate => "fail-create",
            Scenario::Network => "network",
            Scenario::Signal => "signal",
            Scenario::QuickRuns => "quick-runs",
            Scenario::ParallelDistinct => "parallel-distinct",
            Scenario::ParallelSame => "parallel-same",
            Scenario::HostMounts => "host-mounts",
            Scenario::Keeper => "keeper",
        }
    }

    /// Relative frequency, in tenths of a percent.
    fn weight(self) -> u64 {
        match self {
            Scenario::Run => 90,
            Scenario::Lifecycle => 70,
            Scenario::Exec => 55,
            Scenario::Pause => 50,
            Scenario::Oom => 35,
            Scenario::OomExec => 25,
            Scenario::KillContainer => 55,
            Scenario::KillCreate => 80,
            Scenario::KillCreateWindow => 45,
            Scenario::KillStart => 40,
            Scenario::KillDelete => 50,
            Scenario::KillRun => 40,
            Scenario::KillExec => 30,
            Scenario::FailCreate => 120,
            Scenario::Network => 60,
            Scenario::Signal => 50,
            Scenario::QuickRuns => 50,
            Scenario::ParallelDistinct => 12,
            Scenario::ParallelSame => 18,
            Scenario::HostMounts => 25,
            Scenario::Keeper => 25,
        }
    }

    fn about(self) -> &'static str {
        match self {
            Scenario::Run => "foreground `run` (exit code and output checked) or `run -d` then kill and delete",
            Scenario::Lifecycle => "create (--pid-file), state, list, start, output, ps, events --stats, update --memory, kill KILL + delete or delete --force",
            Scenario::Exec => "execs into a running container: output, env, exit code, --user, a missing program, a detached exec",
            Scenario::Pause => "pause, exec refused while paused, then resume + exec or delete --force of the paused container",
            Scenario::Oom => "foreground run of a program allocating past its memory limit: exit 137",
            Scenario::OomExec => "exec of a program allocating past the container's memory limit: exit 137, the container runs on",
            Scenario::KillContainer => "the container's init SIGKILLed (from the host or by `rtctr kill`), then state stopped and delete",
            Scenario::KillCreate => "rtctr create SIGKILLed at a random point of its measured duration (sometimes networked)",
            Scenario::KillCreateWindow => "rtctr create SIGKILLed as <root>/~<id>.<pid> or <root>/<id> appears (inotify)",
            Scenario::KillStart => "rtctr start SIGKILLed at a random point; state must stay consistent",
            Scenario::KillDelete => "rtctr delete --force SIGKILLed at a random point (sometimes networked)",
            Scenario::KillRun => "foreground rtctr run SIGKILLed at a random point (sometimes networked)",
            Scenario::KillExec => "rtctr exec SIGKILLed at a random point; the container runs on",
            Scenario::FailCreate => "a create (or run) that must fail, of one of many kinds, leaving nothing",
            Scenario::Network => "networked run (address checked) or create with a published port: lease, veth, nft rules, all gone after delete",
            Scenario::Signal => "SIGTERM/SIGINT/SIGHUP to a foreground run whose container traps it: exit 100+N",
            Scenario::QuickRuns => "foreground runs of a container that exits at once, each within 10 s",
            Scenario::ParallelDistinct => "64 parallel creates of distinct ids: all succeed; 64 parallel deletes",
            Scenario::ParallelSame => "16 parallel creates of one id: one winner, the losers leave it intact",
            Scenario::HostMounts => "a container without a mount namespace (mounts in the host's): normal, create killed, delete killed; no mount left",
            Scenario::Keeper => "exec, ps, events, pause/resume and update on the long-running keeper container",
        }
    }
}

// ------------------------------------------------------------- processes

/// A finished command.
#[derive(Debug)]
struct Done {
    /// Exit code, if it exited.
    code: Option<i32>,
    /// The signal that killed it, if one did.
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    /// What ran, for messages.
    what: String,
    /// Its stdout file (a created container's output goes there too).
    out: PathBuf,
}

impl Done {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    fn status(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit {c}"),
            (_, Some(s)) => format!("signal {s}"),
            _ => "no status".to_string(),
        }
    }

    fn brief(&self) -> String {
        format!(
            "`{}`: {} after {:?}, stdout {:?}, stderr {:?}",
            self.what,
            self.status(),
            self.elapsed,
            clip(&self.stdout),
            clip(&self.stderr)
        )
    }

    /// Ok when it exited 0.
    fn expect_ok(self) -> Result<Done, String> {
        match self.ok() {
            true => Ok(self),
            false => Err(format!("failed: {}", self.brief())),
        }
    }
}

fn clip(s: &str) -> String {
    let s = s.trim_end();
    match s.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A running command: its pidfd (waits and kills go through it, never
/// through a pid that could be reused) and where its output goes.
struct Proc {
    child: Child,
    pidfd: OwnedFd,
    started: Instant,
    out: PathBuf,
    err: PathBuf,
    what: String,
}

impl Proc {
    fn pid(&self) -> i64 {
        i64::from(self.child.id())
    }

    /// Waits up to `timeout` for the exit; past it the command is hung:
    /// the error holds where it sleeps (wchan, kernel stack, its
    /// children), and it is killed.
    fn wait(mut self, timeout: Duration) -> Result<Done, String> {
        if !wait_readable(self.pidfd.as_fd(), timeout) {
            let evidence = hang_evidence(self.pid());
            let _ = rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::KILL);
            let _ = self.child.wait();
            return Err(format!(
                "HANG: `{}` still running after {timeout:?}; {evidence}",
                self.what
            ));
        }
        let st = self
            .child
            .wait()
            .map_err(|e| format!("wait for `{}`: {e}", self.what))?;
        let elapsed = self.started.elapsed();
        use std::os::unix::process::ExitStatusExt;
        Ok(Done {
            code: st.code(),
            signal: st.signal(),
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
            elapsed,
            what: std::mem::take(&mut self.what),
            out: std::mem::take(&mut self.out),
        })
    }

    /// SIGKILL (through the pidfd), then wait.
    fn kill(self) -> Result<Done, String> {
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::KILL);
        self.wait(VERB_TIMEOUT)
    }

    fn signal(&self, sig: rustix::process::Signal) -> Result<(), String> {
        rustix::process::pidfd_send_signal(&self.pidfd, sig)
            .map_err(|e| format!("signal {sig:?} to `{}`: {e}", self.what))
    }
}

/// A command dropped on an error path is killed and reaped, never left a
/// zombie; one already waited for is untouched.
impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::KILL);
            let _ = self.child.wait();
        }
    }
}

/// The environment variable that marks the worker process.
const WORKER_ENV: &str = "RTCTR_SOAK_WORKER";

/// The soak runs as two processes. The first is a subreaper, as a
/// container engine's shim is, and does nothing but reap: a container init
/// whose `rtctr create` exited is reparented to it, and so is anything a
/// killed rtctr leaves, and it reaps them as soon as they exit (a pid
/// namespace's init is not kept waiting for its processes to be reaped).
/// Its child, the worker, runs the soak and waits for its own commands.
/// Returns the worker's exit code.
fn reaper() -> i32 {
    if let Err(e) = rustix::process::set_child_subreaper(rustix::process::Pid::from_raw(1)) {
        eprintln!("soak: PR_SET_CHILD_SUBREAPER: {e}");
        return 1;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("soak: current_exe: {e}");
            return 1;
        }
    };
    let worker = match Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(WORKER_ENV, "1")
        .spawn()
    {
        Ok(w) => w,
        Err(e) => {
            eprintln!("soak: spawn the worker: {e}");
            return 1;
        }
    };
    let (code, orphans) = reap_until(worker.id() as i32);
    if orphans > 0 {
        eprintln!("soak: the reaper reaped {orphans} orphans");
    }
    code
}

/// The reaper: the worker's parent.
fn reaper_pid() -> i64 {
    rustix::process::getppid().map_or(0, |p| i64::from(p.as_raw_nonzero().get()))
}

/// The reaper's live children but the worker: orphans of rtctr or of
/// containers that are still running.
fn live_orphans() -> Vec<i64> {
    let me = i64::from(std::process::id());
    let reaper = reaper_pid();
    std::fs::read_dir(format!("/proc/{reaper}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i64>>()
        })
        .filter(|p| *p != me && pid_alive(*p))
        .collect()
}

/// Whether `fd` (a pidfd: readable once the process exits; a pipe) becomes
/// readable within `timeout`.
fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Waits until `a` or `b` is readable, or `timeout` passes.
fn wait_either(a: std::os::fd::BorrowedFd<'_>, b: std::os::fd::BorrowedFd<'_>, timeout: Duration) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [
        PollFd::new(&a, PollFlags::IN),
        PollFd::new(&b, PollFlags::IN),
    ];
    let _ = poll(&mut fds, Some(&ts));
}

/// Where a hung process and its children sleep.
fn hang_evidence(pid: i64) -> String {
    let mut s = String::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let wchan = std::fs::read_to_string(format!("/proc/{p}/wchan")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, a)| a.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        let stack = std::fs::read_to_string(format!("/proc/{p}/stack"))
            .unwrap_or_default()
            .lines()
            .take(8)
            .map(|l| l.split_whitespace().nth(1).unwrap_or(l).to_string())
            .collect::<Vec<_>>()
            .join(" < ");
        let _ = write!(
            s,
            "[pid {p} {state} `{}` wchan {wchan} stack {stack}] ",
            cmd.trim()
        );
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        todo.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<i64>().ok()),
        );
    }
    s
}

// ------------------------------------------------------------------ leaks

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Leak {
    State,
    Cgroup,
    Mount,
    Veth,
    Lease,
    Nft,
    Zombie,
    Stray,
    Fd,
}

impl Leak {
    const ALL: [Leak; 9] = [
        Leak::State,
        Leak::Cgroup,
        Leak::Mount,
        Leak::Veth,
        Leak::Lease,
        Leak::Nft,
        Leak::Zombie,
        Leak::Stray,
        Leak::Fd,
    ];

    fn name(self) -> &'static str {
        match self {
            Leak::State => "state",
            Leak::Cgroup => "cgroup",
            Leak::Mount => "mount",
            Leak::Veth => "veth",
            Leak::Lease => "lease",
            Leak::Nft => "nft",
            Leak::Zombie => "zombie",
            Leak::Stray => "stray",
            Leak::Fd => "fd",
        }
    }
}

// ------------------------------------------------------------------ soak

/// What a lifecycle was, for attributing what its ids left.
#[derive(Debug, Clone)]
struct LcInfo {
    index: u64,
    scenario: Scenario,
}

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    /// (index, scenario, why) of every failure.
    failures: Vec<(u64, Scenario, String)>,
    leaks: BTreeMap<Leak, u64>,
    /// (kind, what) of every leak counted, so a leftover is counted once.
    reported: std::collections::HashSet<(Leak, String)>,
    /// scenario -> (runs, failures)
    per_scenario: BTreeMap<Scenario, (u64, u64)>,
}

struct Soak {
    opts: Options,
    rt: Rtctr,
    /// Bundles, output files and private root filesystems.
    work: tempfile::TempDir,
    /// Prefix of every container id (unique on the host: the soak's pid).
    tag: String,
    /// In the command line of the containers' shells: stray processes
    /// are found by it.
    marker: String,
    /// The base config.json: `rtctr spec`, non-interactive, the shared
    /// read-only busybox rootfs.
    base: Value,
    net: String,
    bridge: String,
    /// The soak network's subnet prefix, e.g. "10.206.17.".
    subnet: String,
    /// A rootfs whose /proc is a symlink (a create must refuse it).
    proc_link_rootfs: PathBuf,
    /// A private, writable rootfs for containers without a mount
    /// namespace (used by one container at a time).
    host_rootfs: PathBuf,
    /// Measured durations of the verbs (moving average), for kill points.
    timing: Mutex<HashMap<&'static str, Duration>>,
    seq: AtomicU64,
    quick_runs: AtomicU64,
    keeper_id: String,
    tally: Mutex<Tally>,
    /// Ids used since the last check, with their lifecycle.
    batch_ids: Mutex<Vec<(String, LcInfo)>>,
}

/// One lifecycle: its generator, ids and directory.
struct Lc<'a> {
    soak: &'a Soak,
    info: LcInfo,
    rng: Rng,
    dir: PathBuf,
    n_ids: u32,
}

type R<T = ()> = Result<T, String>;

impl Soak {
    fn new(opts: Options) -> Soak {
        let rt = Rtctr::new();
        let work = tempfile::Builder::new()
            .prefix("rtctr-soak-")
            .tempdir()
            .expect("make the soak's work directory");
        let pid = std::process::id();
        let tag = format!("sk{pid}");
        let b = Bundle::new(&["true"]);
        let mut base = b.config.clone();
        base["root"] = json!({"path": shared_rootfs(), "readonly": true});
        let octet = 100 + pid % 150;
        let proc_link_rootfs = work.path().join("rootfs-proc-link");
        make_rootfs(&proc_link_rootfs);
        let proc_dir = proc_link_rootfs.join("proc");
        std::fs::remove_dir_all(&proc_dir).expect("remove proc");
        std::os::unix::fs::symlink("/tmp/x", &proc_dir).expect("symlink proc");
        std::fs::create_dir_all(proc_link_rootfs.join("tmp/x")).expect("tmp/x");
        let host_rootfs = work.path().join("rootfs-host");
        make_rootfs(&host_rootfs);
        Soak {
            opts,
            rt,
            tag: tag.clone(),
            marker: format!("soak-marker-{pid}"),
            base,
            net: format!("{tag}net"),
            bridge: format!("sk{}", pid % 1_000_000_000),
            subnet: format!("10.206.{octet}."),
            proc_link_rootfs,
            host_rootfs,
            timing: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
            quick_runs: AtomicU64::new(0),
            keeper_id: format!("{tag}-keeper"),
            tally: Mutex::new(Tally::default()),
            batch_ids: Mutex::new(Vec::new()),
            work,
        }
    }

    fn root(&self) -> &Path {
        self.rt.root.path()
    }

    fn log(&self, msg: &str) {
        if self.opts.verbose {
            eprintln!("{msg}");
        }
    }

    /// Spawns `rtctr ARGS` (the soak's root and network dir); its stdout
    /// (and a created container's) goes to a file in `dir`.
    fn spawn(&self, dir: &Path, args: &[&str]) -> R<Proc> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let out = dir.join(format!("{n}.out"));
        let err = dir.join(format!("{n}.err"));
        let file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
        let mut cmd = self.rt.cmd();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(file(&out)?)
            .stderr(file(&err)?);
        self.start(cmd, args, out, err)
    }

    fn start(&self, mut cmd: Command, args: &[&str], out: PathBuf, err: PathBuf) -> R<Proc> {
        let what = format!("rtctr {}", args.join(" "));
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("spawn `{what}`: {e}"))?;
        let pid = rustix::process::Pid::from_raw(child.id() as i32).ok_or("pid 0")?;
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .map_err(|e| format!("pidfd_open: {e}"))?;
        Ok(Proc {
            child,
            pidfd,
            started,
            out,
            err,
            what,
        })
    }

    /// Runs `rtctr ARGS` to its end (a hang is an error).
    fn call(&self, dir: &Path, args: &[&str]) -> R<Done> {
        self.spawn(dir, args)?.wait(VERB_TIMEOUT)
    }

    /// Notes a measured duration of `verb`.
    fn measured(&self, verb: &'static str, d: Duration) {
        let mut t = self.timing.lock().unwrap();
        let e = t.entry(verb).or_insert(d);
        *e = (*e * 4 + d) / 5;
    }

    /// A point within `verb`'s measured duration (`fraction` of it).
    fn kill_point(&self, verb: &'static str, fraction: f64) -> Duration {
        let t = self.timing.lock().unwrap();
        let d = t.get(verb).copied().unwrap_or(Duration::from_millis(20));
        d.mul_f64(fraction)
    }

    /// `state ID`: the status, or None when rtctr does not know the id.
    fn status(&self, dir: &Path, id: &str) -> R<Option<Value>> {
        let d = self.call(dir, &["state", id])?;
        if d.ok() {
            return serde_json::from_str(&d.stdout)
                .map(Some)
                .map_err(|e| format!("state {id}: not JSON ({e}): {}", d.brief()));
        }
        match d.stderr.contains("does not exist") || d.stderr.contains("not found") {
            true => Ok(None),
            false => Err(format!("state {id}: {}", d.brief())),
        }
    }

    /// Waits (polling `state`) until `id`'s status is `want`.
    fn wait_status(&self, dir: &Path, id: &str, want: &str) -> R {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = self.status(dir, id)?;
            let got = st
                .as_ref()
                .and_then(|s| s["status"].as_str().map(str::to_string));
            if got.as_deref() == Some(want) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{id}: status {got:?} after 10 s, wanted {want}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Writes `dir/<name>/config.json`: the base config with `args`, then
    /// `edit`; returns the bundle path.
    fn bundle(
        &self,
        dir: &Path,
        name: &str,
        args: &[&str],
        edit: impl FnOnce(&mut Value),
    ) -> R<PathBuf> {
        let mut c = self.base.clone();
        c["process"]["args"] = json!(args);
        edit(&mut c);
        let b = dir.join(format!("bundle-{name}"));
        std::fs::create_dir_all(&b).map_err(|e| e.to_string())?;
        std::fs::write(
            b.join("config.json"),
            serde_json::to_vec_pretty(&c).unwrap(),
        )
        .map_err(|e| e.to_string())?;
        Ok(b)
    }

    /// A shell script as the container's program, with the marker in its
    /// command line ($0).
    fn sh<'a>(&'a self, script: &'a str) -> [&'a str; 4] {
        ["sh", "-c", script, &self.marker]
    }

    fn networked(&self, c: &mut Value, port: Option<u16>) {
        c["annotations"] = json!({"rtctr.network": self.net});
        if let Some(p) = port {
            c["annotations"]["rtctr.network.ports"] = json!(format!("{p}:80"));
        }
    }

    /// The soak network's leases.
    fn leases(&self) -> Vec<Value> {
        self.rt.leases(&self.net).unwrap_or_default()
    }

    /// What is left on the host of container `id` once GRACE has passed
    /// (or nothing, as soon as nothing is): (kind, what) for every trace.
    fn traces_of(&self, id: &str) -> Vec<(Leak, String)> {
        let mut found = Vec::new();
        wait_for(GRACE, || {
            found = self.traces_now(id, &HostSnapshot::take(self));
            found.is_empty()
        });
        found
    }

    /// The traces of `id` now: its state directory or `~<id>.<pid>`
    /// temporary, cgroup directories, host veth, lease and nft rules.
    fn traces_now(&self, id: &str, host: &HostSnapshot) -> Vec<(Leak, String)> {
        let mut t = Vec::new();
        if !valid_id(id) {
            return t;
        }
        for name in &host.entries {
            if name == id || temp_id(name) == Some(id) {
                t.push((Leak::State, self.root().join(name).display().to_string()));
            }
        }
        for d in expected_cgroup_dirs(id, None) {
            if d.exists() {
                t.push((Leak::Cgroup, d.display().to_string()));
            }
        }
        let veth = host_veth_name(id);
        if link_exists(&veth) {
            t.push((Leak::Veth, format!("veth {veth} of {id}")));
        }
        for l in &host.leases {
            if l["container"] == id {
                t.push((Leak::Lease, format!("lease {l}")));
            }
        }
        let needle = format!("net={} ctr={id}\"", self.net);
        for r in host.rules.iter().filter(|r| r.contains(&needle)) {
            t.push((Leak::Nft, r.clone()));
        }
        t
    }

    // ------------------------------------------------------------ results

    fn record(&self, info: &LcInfo, result: R) {
        let mut t = self.tally.lock().unwrap();
        let e = t.per_scenario.entry(info.scenario).or_default();
        e.0 += 1;
        match result {
            Ok(()) => t.passed += 1,
            Err(why) => {
                e.1 += 1;
                t.failed += 1;
                self.print_failure(info, &why);
                t.failures.push((info.index, info.scenario, why));
            }
        }
    }

    fn print_failure(&self, info: &LcInfo, why: &str) {
        if info.index == SETUP {
            eprintln!("FAIL set-up ({}): {why}", info.scenario.name());
            return;
        }
        eprintln!(
            "FAIL lifecycle {} ({}): {why}\n     replay: soak --seed {:#x} --start {} --lifecycles 1",
            info.index,
            info.scenario.name(),
            self.opts.seed,
            info.index
        );
    }

    /// A leak: counted by kind, once per `key` (what is left); when it is
    /// of a lifecycle's id (`owner`), that lifecycle fails too.
    fn leak(&self, kind: Leak, owner: Option<&LcInfo>, key: &str, context: &str) {
        let mut t = self.tally.lock().unwrap();
        if !t.reported.insert((kind, key.to_string())) {
            return;
        }
        *t.leaks.entry(kind).or_default() += 1;
        let why = format!("LEAK {}: {key} ({context})", kind.name());
        match owner {
            Some(info) => {
                let already = t.failures.iter().any(|(i, _, _)| *i == info.index);
                if !already {
                    t.passed = t.passed.saturating_sub(1);
                    t.failed += 1;
                    t.per_scenario.entry(info.scenario).or_default().1 += 1;
                }
                self.print_failure(info, &why);
                t.failures.push((info.index, info.scenario, why));
            }
            None => eprintln!("{why}"),
        }
    }

    /// A lifecycle that had passed fails after all (its leftovers could
    /// not be deleted).
    fn fail_late(&self, info: &LcInfo, why: &str) {
        let mut t = self.tally.lock().unwrap();
        let already = t.failures.iter().any(|(i, _, _)| *i == info.index);
        if !already {
            t.passed = t.passed.saturating_sub(1);
            t.failed += 1;
            t.per_scenario.entry(info.scenario).or_default().1 += 1;
        }
        self.print_failure(info, why);
        t.failures
            .push((info.index, info.scenario, why.to_string()));
    }
}

/// What the host holds of the soak now: state root entries, the soak
/// network's leases, rtctr's nft rules of the soak network.
struct HostSnapshot {
    entries: Vec<String>,
    leases: Vec<Value>,
    rules: Vec<String>,
}

impl HostSnapshot {
    fn take(soak: &Soak) -> HostSnapshot {
        let mut entries: Vec<String> = std::fs::read_dir(soak.root())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        HostSnapshot {
            entries,
            leases: soak.leases(),
            rules: nft_rules_mentioning(&format!("net={}", soak.net)),
        }
    }
}

/// rtctr's id rule (runc's set), so the checks skip ids rtctr refuses.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
}

/// The id of a `~<id>.<pid>` temporary.
fn temp_id(name: &str) -> Option<&str> {
    name.strip_prefix('~')?.rsplit_once('.').map(|(id, _)| id)
}

// ------------------------------------------------------------- lifecycle

impl Lc<'_> {
    /// A new container id of this lifecycle (noted for the batch check).
    fn id(&mut self) -> String {
        self.n_ids += 1;
        let id = match self.info.index {
            SETUP => format!("{}-setup-{}", self.soak.tag, self.n_ids),
            i => format!("{}-{i}-{}", self.soak.tag, self.n_ids),
        };
        self.note(&id);
        id
    }

    fn note(&self, id: &str) {
        self.soak
            .batch_ids
            .lock()
            .unwrap()
            .push((id.to_string(), self.info.clone()));
    }

    fn call(&self, args: &[&str]) -> R<Done> {
        self.soak.call(&self.dir, args)
    }

    fn ok(&self, args: &[&str]) -> R<Done> {
        self.call(args)?.expect_ok()
    }

    fn spawn(&self, args: &[&str]) -> R<Proc> {
        self.soak.spawn(&self.dir, args)
    }

    fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> R<String> {
        let b = self.soak.bundle(&self.dir, name, args, edit)?;
        Ok(b.display().to_string())
    }

    fn status(&self, id: &str) -> R<Option<String>> {
        Ok(self
            .soak
            .status(&self.dir, id)?
            .and_then(|s| s["status"].as_str().map(str::to_string)))
    }

    fn wait_status(&self, id: &str, want: &str) -> R {
        self.soak.wait_status(&self.dir, id, want)
    }

    /// Nothing of `id` is left (state, cgroups, veth, lease, rules):
    /// each trace is a leak, and fails the lifecycle.
    fn gone(&self, id: &str, after: &str) -> R {
        let t = self.soak.traces_of(id);
        if t.is_empty() {
            return Ok(());
        }
        for (kind, what) in &t {
            self.soak
                .leak(*kind, None, what, &format!("{id} after {after}"));
        }
        Err(format!("{id}: left after {after}: {t:?}"))
    }

    /// create + start of `bundle` as `id`, running.
    fn running(&self, bundle: &str, id: &str) -> R {
        let c = self.ok(&["create", "--bundle", bundle, id])?;
        self.soak.measured("create", c.elapsed);
        let s = self.ok(&["start", id])?;
        self.soak.measured("start", s.elapsed);
        self.wait_status(id, "running")
    }

    fn delete_force(&self, id: &str) -> R {
        let d = self.ok(&["delete", "--force", id])?;
        self.soak.measured("delete", d.elapsed);
        self.gone(id, "delete --force")
    }

    /// Waits for a file in this lifecycle's directory (a container's
    /// output) to hold `want`.
    fn wait_output(&self, path: &Path, want: &str) -> R {
        let mut got = String::new();
        let seen = wait_for(Duration::from_secs(10), || {
            got = std::fs::read_to_string(path).unwrap_or_default();
            got.contains(want)
        });
        match seen {
            true => Ok(()),
            false => Err(format!("{}: {got:?}, wanted {want:?}", path.display())),
        }
    }
}

fn expect(cond: bool, msg: impl FnOnce() -> String) -> R {
    match cond {
        true => Ok(()),
        false => Err(msg()),
    }
}

fn run_lifecycle(lc: &mut Lc<'_>) -> R {
    match lc.info.scenario {
        Scenario::Run => sc_run(lc),
        Scenario::Lifecycle => sc_lifecycle(lc),
        Scenario::Exec => sc_exec(lc),
        Scenario::Pause => sc_pause(lc),
        Scenario::Oom => sc_oom(lc),
        Scenario::OomExec => sc_oom_exec(lc),
        Scenario::KillContainer => sc_kill_container(lc),
        Scenario::KillCreate => sc_kill_create(lc),
        Scenario::KillCreateWindow => sc_kill_create_window(lc),
        Scenario::KillStart => sc_kill_start(lc),
        Scenario::KillDelete => sc_kill_delete(lc),
        Scenario::KillRun => sc_kill_run(lc),
        Scenario::KillExec => sc_kill_exec(lc),
        Scenario::FailCreate => sc_fail_create(lc),
        Scenario::Network => sc_network(lc),
        Scenario::Signal => sc_signal(lc),
        Scenario::QuickRuns => sc_quick_runs(lc),
        Scenario::ParallelDistinct => sc_parallel_distinct(lc),
        Scenario::ParallelSame => sc_parallel_same(lc),
        Scenario::HostMounts => sc_host_mounts(lc),
        Scenario::Keeper => sc_keeper(lc),
    }
}

const SLEEPER: [&str; 2] = ["sleep", "3600"];

fn sc_run(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    if lc.rng.chance(70) {
        let code = lc.rng.below(4);
        let script = format!("echo out-$0; echo err-$0 >&2; exit {code}");
        let b = lc.bundle("run", &lc.soak.sh(&script), |_| {})?;
        let d = lc.call(&["run", "--bundle", &b, &id])?;
        lc.soak.measured("run", d.elapsed);
        let marker = &lc.soak.marker;
        expect(
            d.code == Some(code as i32)
                && d.stdout == format!("out-{marker}\n")
                && d.stderr == format!("err-{marker}\n"),
            || {
                format!(
                    "wanted exit {code} and the container's output: {}",
                    d.brief()
                )
            },
        )?;
        return lc.gone(&id, "run");
    }
    // Detached.
    let b = lc.bundle("run", &SLEEPER, |_| {})?;
    lc.ok(&["run", "-d", "--bundle", &b, &id])?;
    lc.wait_status(&id, "running")?;
    lc.ok(&["kill", &id, "KILL"])?;
    lc.wait_status(&id, "stopped")?;
    lc.ok(&["delete", &id])?;
    lc.gone(&id, "delete")
}

fn sc_lifecycle(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let script = "echo started-$0; exec sleep 3600";
    let b = lc.bundle("life", &lc.soak.sh(script), |_| {})?;
    let pid_file = lc.dir.join("pid");
    let pid_file = pid_file.display().to_string();
    let c = lc.ok(&["create", "--bundle", &b, "--pid-file", &pid_file, &id])?;
    lc.soak.measured("create", c.elapsed);
    let st = lc
        .soak
        .status(&lc.dir, &id)?
        .ok_or("no state after create")?;
    expect(st["status"] == "created", || format!("after create: {st}"))?;
    let pid = st["pid"].as_i64().unwrap_or(0);
    let written = std::fs::read_to_string(&pid_file).unwrap_or_default();
    expect(written == pid.to_string(), || {
        format!("pid file {written:?}, state pid {pid}")
    })?;
    let list = lc.ok(&["list", "-q"])?;
    expect(list.stdout.lines().any(|l| l == id), || {
        format!("{id} not in list: {}", list.brief())
    })?;
    expect(
        std::fs::read_to_string(&c.out)
            .unwrap_or_default()
            .is_empty(),
        || "the created container printed before start".into(),
    )?;
    let s = lc.ok(&["start", &id])?;
    lc.soak.measured("start", s.elapsed);
    lc.wait_output(&c.out, &format!("started-{}", lc.soak.marker))?;
    lc.wait_status(&id, "running")?;
    let ps = lc.ok(&["ps", "--format", "json", &id])?;
    let pids: Vec<i64> =
        serde_json::from_str(&ps.stdout).map_err(|e| format!("ps: {e}: {}", ps.brief()))?;
    expect(pids.contains(&pid), || {
        format!("ps {pids:?} lacks the init {pid}")
    })?;
    let ev = lc.ok(&["events", "--stats", &id])?;
    let ev: Value =
        serde_json::from_str(&ev.stdout).map_err(|e| format!("events: {e}: {}", ev.brief()))?;
    expect(ev["type"] == "stats", || format!("events --stats: {ev}"))?;
    if lc.rng.chance(50) {
        lc.ok(&["update", "--memory", "64m", &id])?;
        let limit = expected_cgroup_dirs(&id, None)
            .into_iter()
            .map(|d| d.join("memory.limit_in_bytes"))
            .find(|f| f.exists())
            .or_else(|| {
                expected_cgroup_dirs(&id, None)
                    .into_iter()
                    .map(|d| d.join("memory.max"))
                    .find(|f| f.exists())
            });
        if let Some(f) = limit {
            let v = std::fs::read_to_string(&f).unwrap_or_default();
            expect(v.trim() == (64u64 << 20).to_string(), || {
                format!("after update --memory 64m, {}: {v:?}", f.display())
            })?;
        }
    }
    if lc.rng.chance(50) {
        lc.ok(&["kill", &id, "KILL"])?;
        lc.wait_status(&id, "stopped")?;
        lc.ok(&["delete", &id])?;
        lc.gone(&id, "delete")
    } else {
        lc.delete_force(&id)
    }
}

fn sc_exec(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let b = lc.bundle("exec", &SLEEPER, |_| {})?;
    lc.running(&b, &id)?;
    let code = lc.rng.below(5);
    let script = format!("echo $0-$FOO; exit {code}");
    let d = lc.call(&["exec", "--env", "FOO=bar", &id, "sh", "-c", &script, "x"])?;
    lc.soak.measured("exec", d.elapsed);
    expect(d.code == Some(code as i32) && d.stdout == "x-bar\n", || {
        format!("exec: wanted exit {code}, x-bar: {}", d.brief())
    })?;
    let d = lc.ok(&["exec", "--user", "1000:1000", &id, "id", "-u"])?;
    expect(d.stdout == "1000\n", || {
        format!("exec --user: {}", d.brief())
    })?;
    let d = lc.call(&["exec", &id, "no-such-program"])?;
    expect(
        !d.ok() && d.stderr.contains("executable file not found"),
        || format!("exec of a missing program: {}", d.brief()),
    )?;
    if lc.rng.chance(50) {
        lc.ok(&["exec", "-d", &id, "sleep", "3600"])?;
        let ps = lc.ok(&["ps", "--format", "json", &id])?;
        let pids: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap_or_default();
        expect(pids.len() >= 2, || format!("after exec -d: {}", ps.brief()))?;
    }
    lc.wait_status(&id, "running")?;
    lc.delete_force(&id)
}

fn sc_pause(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let b = lc.bundle("pause", &SLEEPER, |_| {})?;
    lc.running(&b, &id)?;
    lc.ok(&["pause", &id])?;
    lc.wait_status(&id, "paused")?;
    let d = lc.call(&["exec", &id, "true"])?;
    expect(!d.ok() && d.stderr.contains("paused"), || {
        format!("exec into a paused container: {}", d.brief())
    })?;
    if lc.rng.chance(50) {
        lc.ok(&["resume", &id])?;
        lc.wait_status(&id, "running")?;
        lc.ok(&["exec", &id, "true"])?;
    }
    lc.delete_force(&id)
}

/// A config whose memory limit the OOM program exceeds.
fn memory_limited(c: &mut Value) {
    c["linux"]["resources"]["memory"] = json!({"limit": OOM_LIMIT, "swap": OOM_LIMIT});
}

/// Allocates (and touches) twice the OOM limit.
const HOG: [&str; 5] = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];

fn sc_oom(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let b = lc.bundle("oom", &HOG, memory_limited)?;
    let d = lc.call(&["run", "--bundle", &b, &id])?;
    expect(d.code == Some(137), || {
        format!(
            "a container past its memory limit: wanted exit 137 (OOM kill): {}",
            d.brief()
        )
    })?;
    lc.gone(&id, "run")
}

fn sc_oom_exec(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let b = lc.bundle("oomx", &SLEEPER, memory_limited)?;
    lc.running(&b, &id)?;
    let mut args = vec!["exec", id.as_str()];
    args.extend(HOG);
    let d = lc.call(&args)?;
    expect(d.code == Some(137), || {
        format!("exec past the memory limit: wanted exit 137: {}", d.brief())
    })?;
    lc.wait_status(&id, "running")?;
    lc.ok(&["exec", &id, "true"])?;
    lc.delete_force(&id)
}

/// SIGKILLs the init of `id` from the host: through a pidfd opened while
/// the pid is still the init's (start time checked).
fn kill_init_from_host(lc: &Lc<'_>, id: &str) -> R {
    let st = lc.soak.status(&lc.dir, id)?.ok_or("no state")?;
    let pid = st["pid"].as_i64().unwrap_or(0);
    let record: Value = std::fs::read(lc.soak.root().join(id).join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let start = record["pid_start"].as_u64().unwrap_or(0);
    let p = rustix::process::Pid::from_raw(pid as i32).ok_or("pid 0")?;
    let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("pidfd_open {pid}: {e}"))?;
    expect(start_time(pid) == Some(start), || {
        format!("init {pid} is not the one of {id}")
    })?;
    rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL)
        .map_err(|e| format!("kill {pid}: {e}"))
}

fn sc_kill_container(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let b = lc.bundle("killc", &SLEEPER, |_| {})?;
    match lc.rng.below(3) {
        0 => {
            lc.running(&b, &id)?;
            kill_init_from_host(lc, &id)?;
        }
        1 => {
            lc.running(&b, &id)?;
            let all = lc.rng.chance(50);
            match all {
                true => lc.ok(&["kill", "--all", &id, "9"])?,
                false => lc.ok(&["kill", &id, "KILL"])?,
            };
        }
        _ => {
            // A foreground run whose init is killed: run exits 137 and
            // removes the container.
            let p = lc.spawn(&["run", "--bundle", &b, &id])?;
            lc.wait_status(&id, "running")?;
            kill_init_from_host(lc, &id)?;
            let d = p.wait(VERB_TIMEOUT)?;
            expect(d.code == Some(137), || {
                format!("run of a killed init: {}", d.brief())
            })?;
            return lc.gone(&id, "run");
        }
    }
    lc.wait_status(&id, "stopped")?;
    lc.ok(&["delete", &id])?;
    lc.gone(&id, "delete")
}

/// A published host port of lifecycle `index` (distinct within a batch).
fn port_of(index: u64) -> u16 {
    20000 + (index % 20000) as u16
}

/// For the kill scenarios: a bundle that is sometimes networked, and the
/// name of its create's timing.
fn maybe_networked(lc: &mut Lc<'_>, name: &str, args: &[&str], percent: u64) -> R<(String, bool)> {
    let net = lc.rng.chance(percent);
    let port = (net && lc.rng.chance(50)).then(|| port_of(lc.info.index));
    let soak = lc.soak;
    let b = lc.bundle(name, args, |c| {
        if net {
            soak.networked(c, port)
        }
    })?;
    Ok((b, net))
}

/// After rtctr was killed while working on `id`: `state` answers (the
/// record is never half-written); then either `delete --force` right away
/// must leave nothing (and the id is usable again), or the leftovers wait
/// for the batch's sweep.
fn after_kill(lc: &mut Lc<'_>, id: &str, killed: &Done) -> R {
    let st = lc.soak.status(&lc.dir, id)?;
    if let Some(st) = &st {
        let status = st["status"].as_str().unwrap_or_default();
        expect(
            matches!(
                status,
                "creating" | "created" | "running" | "stopped" | "paused"
            ),
            || format!("state after a killed `{}`: {st}", killed.what),
        )?;
    }
    if lc.rng.chance(60) {
        return Ok(()); // for the sweep
    }
    lc.delete_force(id)?;
    if lc.rng.chance(50) {
        let b = lc.bundle("again", &["true"], |_| {})?;
        lc.ok(&["run", "--bundle", &b, id])?;
        lc.gone(id, "run of a reused id")?;
    }
    Ok(())
}

fn sc_kill_create(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let (b, net) = maybe_networked(lc, "kcreate", &SLEEPER, 35)?;
    let verb = if net { "create-net" } else { "create" };
    let at = lc.soak.kill_point(verb, lc.rng.fraction());
    let p = lc.spawn(&["create", "--bundle", &b, &id])?;
    std::thread::sleep(at.saturating_sub(p.started.elapsed()));
    let d = p.kill()?;
    lc.soak
        .log(&format!("  {id}: create killed at {at:?}: {}", d.status()));
    if d.signal.is_none() && !d.ok() {
        return Err(format!("create failed before the kill: {}", d.brief()));
    }
    after_kill(lc, &id, &d)
}

fn sc_kill_create_window(lc: &mut Lc<'_>) -> R {
    use rustix::fs::inotify;
    let id = lc.id();
    let (b, _) = maybe_networked(lc, "kwindow", &SLEEPER, 25)?;
    // "tmp": as <root>/~<id>.<pid> is made; "placed": as it is renamed
    // to <root>/<id>; "placed+": a moment later.
    let window = lc.rng.pick(&["tmp", "placed", "placed+"]);
    let later = lc.soak.kill_point("create", lc.rng.fraction() / 2.0);
    let ino = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
        .map_err(|e| format!("inotify: {e}"))?;
    inotify::add_watch(
        &ino,
        lc.soak.root(),
        inotify::WatchFlags::CREATE | inotify::WatchFlags::MOVED_TO,
    )
    .map_err(|e| format!("inotify watch: {e}"))?;
    let p = lc.spawn(&["create", "--bundle", &b, &id])?;
    let tmp_prefix = format!("~{id}.");
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut reader = inotify::Reader::new(&ino, &mut buf);
    let deadline = Instant::now() + VERB_TIMEOUT;
    let mut seen = false;
    'watch: while Instant::now() < deadline {
        loop {
            match reader.next() {
                Ok(ev) => {
                    let name = ev.file_name().map(|n| n.to_string_lossy().into_owned());
                    let name = name.unwrap_or_default();
                    let hit = match window {
                        "tmp" => name.starts_with(&tmp_prefix),
                        _ => name == id && ev.events().contains(inotify::ReadFlags::MOVED_TO),
                    };
                    if hit {
                        seen = true;
                        break 'watch;
                    }
                }
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(format!("read inotify: {e}")),
            }
        }
        if wait_readable(p.pidfd.as_fd(), Duration::ZERO) {
            // create ended; what it did is queued (or it never made the
            // directory: an error, below).
            if !wait_readable(ino.as_fd(), Duration::ZERO) {
                break;
            }
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        wait_either(ino.as_fd(), p.pidfd.as_fd(), left);
    }
    if !seen && !wait_readable(p.pidfd.as_fd(), Duration::ZERO) {
        let evidence = hang_evidence(p.pid());
        let _ = p.kill();
        return Err(format!(
            "HANG: create of {id} made no <root>/{id} in {VERB_TIMEOUT:?} (window {window}); {evidence}"
        ));
    }
    if window == "placed+" {
        std::thread::sleep(later);
    }
    let d = p.kill()?;
    lc.soak.log(&format!(
        "  {id}: create killed at window {window} (seen {seen}): {}",
        d.status()
    ));
    expect(seen || d.signal.is_some(), || {
        format!(
            "create ended without making <root>/{id} (window {window}): {}",
            d.brief()
        )
    })?;
    after_kill(lc, &id, &d)
}

fn sc_kill_start(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let b = lc.bundle(
        "kstart",
        &lc.soak.sh("echo started-$0; exec sleep 3600"),
        |_| {},
    )?;
    let c = lc.ok(&["create", "--bundle", &b, &id])?;
    lc.soak.measured("create", c.elapsed);
    let at = lc.soak.kill_point("start", lc.rng.fraction());
    let p = lc.spawn(&["start", &id])?;
    std::thread::sleep(at.saturating_sub(p.started.elapsed()));
    let d = p.kill()?;
    lc.soak
        .log(&format!("  {id}: start killed at {at:?}: {}", d.status()));
    let status = lc.status(&id)?;
    match status.as_deref() {
        Some("created") => {
            // The kill came before the init was released: start again.
            let again = lc.call(&["start", &id])?;
            expect(again.ok(), || {
                format!(
                    "state says created after a start killed at {at:?} ({}), but start fails: {}; container output {:?}",
                    d.status(),
                    again.brief(),
                    std::fs::read_to_string(&c.out).unwrap_or_default()
                )
            })?;
        }
        Some("running") => {}
        other => {
            return Err(format!(
                "status {other:?} after a killed start ({})",
                d.status()
            ))
        }
    }
    lc.wait_output(&c.out, &format!("started-{}", lc.soak.marker))?;
    lc.wait_status(&id, "running")?;
    after_kill(lc, &id, &d)
}

fn sc_kill_delete(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let (b, net) = maybe_networked(lc, "kdelete", &SLEEPER, 35)?;
    lc.running(&b, &id)?;
    let stopped_first = lc.rng.chance(30);
    let args: Vec<&str> = match stopped_first {
        true => {
            lc.ok(&["kill", &id, "KILL"])?;
            lc.wait_status(&id, "stopped")?;
            vec!["delete", &id]
        }
        false => vec!["delete", "--force", &id],
    };
    let verb = if net { "delete-net" } else { "delete" };
    let at = lc.soak.kill_point(verb, lc.rng.fraction());
    let p = lc.spawn(&args)?;
    std::thread::sleep(at.saturating_sub(p.started.elapsed()));
    let d = p.kill()?;
    lc.soak
        .log(&format!("  {id}: delete killed at {at:?}: {}", d.status()));
    if d.signal.is_none() {
        d.expect_ok()?;
        return lc.gone(&id, "delete");
    }
    after_kill(lc, &id, &d)
}

fn sc_kill_run(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let script = "echo hi-$0";
    let args = lc.soak.sh(script);
    let (b, net) = maybe_networked(lc, "krun", &args, 30)?;
    let verb = if net { "run-net" } else { "run" };
    let at = lc.soak.kill_point(verb, lc.rng.fraction());
    let p = lc.spawn(&["run", "--bundle", &b, &id])?;
    std::thread::sleep(at.saturating_sub(p.started.elapsed()));
    let d = p.kill()?;
    lc.soak
        .log(&format!("  {id}: run killed at {at:?}: {}", d.status()));
    if d.signal.is_none() {
        d.expect_ok()?;
        return lc.gone(&id, "run");
    }
    after_kill(lc, &id, &d)
}

fn sc_kill_exec(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let b = lc.bundle("kexec", &SLEEPER, |_| {})?;
    lc.running(&b, &id)?;
    let at = lc.soak.kill_point("exec", lc.rng.fraction());
    let p = lc.spawn(&["exec", &id, "sh", "-c", "echo x", &lc.soak.marker])?;
    std::thread::sleep(at.saturating_sub(p.started.elapsed()));
    let d = p.kill()?;
    lc.soak
        .log(&format!("  {id}: exec killed at {at:?}: {}", d.status()));
    // The container runs on, and takes another exec.
    lc.wait_status(&id, "running")?;
    let again = lc.ok(&["exec", &id, "sh", "-c", "echo again"])?;
    expect(again.stdout == "again\n", || {
        format!("exec after a killed exec: {}", again.brief())
    })?;
    after_kill(lc, &id, &d)
}

/// Every kind of create that must fail.
const FAIL_KINDS: [&str; 30] = [
    "bad-field",
    "dup-ns",
    "missing-rootfs",
    "bind-missing",
    "mount-type",
    "hook-create-runtime",
    "hook-create-container",
    "hook-prestart",
    "hook-missing",
    "hook-timeout",
    "hook-relative",
    "bad-id",
    "uid-max",
    "gid-max",
    "memory-too-low",
    "proc-symlink",
    "missing-exe",
    "bad-json",
    "no-config",
    "bad-ports",
    "unknown-network",
    "ns-path-missing",
    "ns-path-not-ns",
    "cwd-relative",
    "cap-unknown",
    "sysctl-host",
    "sysctl-missing",
    "existing-id",
    "no-args",
    "pids-limit",
];

/// The bundle, id and expected message of a failing create of `kind`.
fn failing(lc: &mut Lc<'_>, kind: &str) -> R<(String, String, &'static str)> {
    let soak = lc.soak;
    let mut id = lc.id();
    let add_mount = |c: &mut Value, m: Value| c["mounts"].as_array_mut().unwrap().push(m);
    let set_ns = |c: &mut Value, path: &str| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(path);
            }
        }
    };
    let t = ["true"];
    let (bundle, want): (String, &'static str) = match kind {
        "bad-field" => (
            lc.bundle(kind, &t, |c| c["process"]["user"]["uid"] = json!("root"))?,
            "process.user.uid: invalid type",
        ),
        "dup-ns" => (
            lc.bundle(kind, &t, |c| {
                c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "mount"}))
            })?,
            "duplicate namespace",
        ),
        "missing-rootfs" => {
            let missing = lc.dir.join("no-rootfs");
            (
                lc.bundle(kind, &t, |c| c["root"]["path"] = json!(missing))?,
                "root.path",
            )
        }
        "bind-missing" => (
            lc.bundle(kind, &t, |c| {
                add_mount(c, json!({"destination": "/data", "type": "bind", "source": "/no/such/source"}))
            })?,
            "bind source /no/such/source",
        ),
        "mount-type" => (
            lc.bundle(kind, &t, |c| {
                add_mount(c, json!({"destination": "/mnt", "type": "nosuchfs", "source": "x"}))
            })?,
            "No such device",
        ),
        "hook-create-runtime" => (
            lc.bundle(kind, &t, |c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}))?,
            "createRuntime hook /bin/false failed",
        ),
        "hook-create-container" => (
            lc.bundle(kind, &t, |c| c["hooks"] = json!({"createContainer": [{"path": "/bin/false"}]}))?,
            "createContainer hook /bin/false failed",
        ),
        "hook-prestart" => (
            lc.bundle(kind, &t, |c| {
                c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]})
            })?,
            "prestart hook /bin/sh failed: exit status: 3",
        ),
        "hook-missing" => (
            lc.bundle(kind, &t, |c| c["hooks"] = json!({"createRuntime": [{"path": "/no/such/hook"}]}))?,
            "cannot run: No such file or directory",
        ),
        "hook-timeout" => (
            lc.bundle(kind, &t, |c| {
                c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]})
            })?,
            "timed out after 1s",
        ),
        "hook-relative" => (
            lc.bundle(kind, &t, |c| c["hooks"] = json!({"createRuntime": [{"path": "true"}]}))?,
            "is not an absolute path",
        ),
        "bad-id" => {
            id = lc.rng.pick(&["../evil", "with space", "a:b", "ünï", "", "tab\tid", ".."]).to_string();
            lc.note(&id);
            (lc.bundle(kind, &t, |_| {})?, "invalid container id")
        }
        "uid-max" => (
            lc.bundle(kind, &t, |c| c["process"]["user"]["uid"] = json!(4294967295u32))?,
            "process.user.uid: 4294967295 is out of range",
        ),
        "gid-max" => {
            let field = lc.rng.pick(&["gid", "additionalGids"]);
            let v = match field {
                "gid" => json!(4294967295u32),
                _ => json!([4294967295u32]),
            };
            (
                lc.bundle(kind, &t, |c| c["process"]["user"][field] = v)?,
                "is out of range (0-2147483647)",
            )
        }
        "memory-too-low" => (
            lc.bundle(kind, &t, |c| c["linux"]["resources"]["memory"] = json!({"limit": 65536}))?,
            "OOM-killed during set-up",
        ),
        "proc-symlink" => (
            lc.bundle(kind, &t, |c| {
                c["root"] = json!({"path": soak.proc_link_rootfs, "readonly": true})
            })?,
            "not through a symlink",
        ),
        "missing-exe" => (
            lc.bundle(kind, &["no-such-program"], |_| {})?,
            "executable file not found in $PATH",
        ),
        "bad-json" => {
            let b = lc.bundle(kind, &t, |_| {})?;
            std::fs::write(Path::new(&b).join("config.json"), "{\"ociVersion\": \"1.0.2\", \"process\": {")
                .map_err(|e| e.to_string())?;
            (b, "EOF while parsing")
        }
        "no-config" => {
            let b = lc.bundle(kind, &t, |_| {})?;
            std::fs::remove_file(Path::new(&b).join("config.json")).map_err(|e| e.to_string())?;
            (b, "config.json: No such file or directory")
        }
        "bad-ports" => (
            lc.bundle(kind, &t, |c| {
                soak.networked(c, None);
                c["annotations"]["rtctr.network.ports"] = json!("80:x");
            })?,
            "rtctr.network.ports",
        ),
        "unknown-network" => (
            lc.bundle(kind, &t, |c| c["annotations"] = json!({"rtctr.network": format!("{}-none", soak.tag)}))?,
            "not found",
        ),
        "ns-path-missing" => (
            lc.bundle(kind, &t, |c| set_ns(c, "/nonexistent/ns"))?,
            "namespace net path /nonexistent/ns",
        ),
        "ns-path-not-ns" => (
            lc.bundle(kind, &t, |c| set_ns(c, "/etc/passwd"))?,
            "not a namespace file",
        ),
        "cwd-relative" => (
            lc.bundle(kind, &t, |c| c["process"]["cwd"] = json!("relative"))?,
            "is not an absolute path",
        ),
        "cap-unknown" => (
            lc.bundle(kind, &t, |c| {
                c["process"]["capabilities"]["bounding"].as_array_mut().unwrap().push(json!("CAP_BOGUS"))
            })?,
            "unknown capability",
        ),
        "sysctl-host" => (
            lc.bundle(kind, &t, |c| c["linux"]["sysctl"] = json!({"vm.swappiness": "10"}))?,
            "not namespaced",
        ),
        "sysctl-missing" => (
            lc.bundle(kind, &t, |c| c["linux"]["sysctl"] = json!({"net.ipv4.no_such_thing": "1"}))?,
            "No such file or directory",
        ),
        "existing-id" => {
            id = soak.keeper_id.clone();
            (lc.bundle(kind, &t, |_| {})?, "already exists")
        }
        "no-args" => (
            lc.bundle(kind, &t, |c| c["process"]["args"] = json!([]))?,
            "must name the program",
        ),
        // The init alone fits a limit of 1; the createContainer hook it
        // forks (in the cgroup, late in set-up) does not.
        "pids-limit" => (
            lc.bundle(kind, &t, |c| {
                c["linux"]["resources"]["pids"] = json!({"limit": 1});
                c["hooks"] = json!({"createContainer": [{"path": "/bin/true"}]});
            })?,
            "Resource temporarily unavailable",
        ),
        other => return Err(format!("no failing kind {other}")),
    };
    Ok((bundle, id, want))
}

fn sc_fail_create(lc: &mut Lc<'_>) -> R {
    let kind = lc.rng.pick(&FAIL_KINDS);
    let (b, id, want) = failing(lc, kind)?;
    let keeper_before = match kind {
        "existing-id" => Some(lc.soak.status(&lc.dir, &id)?.ok_or("no keeper")?),
        _ => None,
    };
    let verb = if lc.rng.chance(30) { "run" } else { "create" };
    let d = lc.call(&[verb, "--bundle", &b, &id])?;
    expect(d.code == Some(1) && d.stderr.contains(want), || {
        format!(
            "{kind}: `{verb}` must fail with exit 1 and {want:?}: {}",
            d.brief()
        )
    })?;
    if let Some(before) = keeper_before {
        // The loser left the keeper as it was.
        let after = lc.soak.status(&lc.dir, &id)?.ok_or("the keeper is gone")?;
        expect(
            after["status"] == "running" && after["pid"] == before["pid"],
            || format!("the keeper after a create of its id: {after} (before {before})"),
        )?;
        return Ok(());
    }
    lc.gone(&id, &format!("a failed {verb} ({kind})"))
}

fn sc_network(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let soak = lc.soak;
    let gateway = format!("default via {}1", soak.subnet);
    if lc.rng.chance(50) {
        let args = soak.sh("ip -4 -o addr show eth0; ip route");
        let b = lc.bundle("net", &args, |c| soak.networked(c, None))?;
        let d = lc.ok(&["run", "--bundle", &b, &id])?;
        soak.measured("run-net", d.elapsed);
        expect(
            d.stdout.contains(&format!("inet {}", soak.subnet)) && d.stdout.contains(&gateway),
            || format!("networked run: {}", d.brief()),
        )?;
        return lc.gone(&id, "networked run");
    }
    let port = port_of(lc.info.index);
    let b = lc.bundle("netport", &SLEEPER, |c| soak.networked(c, Some(port)))?;
    let c = lc.ok(&["create", "--bundle", &b, &id])?;
    soak.measured("create-net", c.elapsed);
    lc.ok(&["start", &id])?;
    let lease = soak
        .leases()
        .into_iter()
        .find(|l| l["container"] == id.as_str())
        .ok_or_else(|| format!("no lease of {id}: {:?}", soak.leases()))?;
    let ip = lease["ip"].as_str().unwrap_or_default().to_string();
    expect(
        ip.starts_with(&soak.subnet) && lease["ports"][0]["host_port"] == port,
        || format!("lease of {id}: {lease}"),
    )?;
    // The leak check finds veths by this name: it must be rtctr's.
    let veth = host_veth_name(&id);
    expect(lease["veth"] == veth.as_str() && link_exists(&veth), || {
        format!("host veth {veth} of {id}: lease {lease}")
    })?;
    let rules = nft_rules_mentioning(&format!("ctr={id}\""));
    expect(
        rules.iter().any(|r| r.contains(&format!("dport {port}"))),
        || format!("no nft rule publishing {port} for {id}: {rules:?}"),
    )?;
    let d = lc.ok(&["exec", &id, "ip", "-4", "-o", "addr", "show", "eth0"])?;
    expect(d.stdout.contains(&format!("inet {ip}/")), || {
        format!("eth0 in {id} lacks its lease {ip}: {}", d.brief())
    })?;
    let d = lc.ok(&["delete", "--force", &id])?;
    soak.measured("delete-net", d.elapsed);
    lc.gone(&id, "delete --force of a networked container")
}

fn sc_signal(lc: &mut Lc<'_>) -> R {
    use rustix::process::Signal;
    let id = lc.id();
    let (sig, code) = lc
        .rng
        .pick(&[(Signal::TERM, 115), (Signal::INT, 102), (Signal::HUP, 101)]);
    let script = "trap 'exit 115' TERM; trap 'exit 102' INT; trap 'exit 101' HUP; \
                  echo ready; while :; do sleep 1 & wait $!; done";
    let b = lc.bundle("signal", &lc.soak.sh(script), |_| {})?;
    let args = ["run", "--bundle", b.as_str(), id.as_str()];
    let err = lc.dir.join("signal.err");
    let mut cmd = lc.soak.rt.cmd();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).map_err(|e| e.to_string())?);
    let mut p = lc.soak.start(cmd, &args, lc.dir.join("signal.out"), err)?;
    let stdout = p.child.stdout.take().ok_or("no stdout")?;
    let line = read_line_within(stdout, Duration::from_secs(10));
    if line.as_deref() != Some("ready") {
        let d = p.kill()?;
        return Err(format!(
            "the trapping container never said ready ({line:?}): {}",
            d.brief()
        ));
    }
    p.signal(sig)?;
    let d = p.wait(Duration::from_secs(10))?;
    expect(d.code == Some(code), || {
        format!(
            "run got {sig:?}: the container's trap exits {code}: {}",
            d.brief()
        )
    })?;
    lc.gone(&id, "a signalled run")
}

/// The first line on `out`, if it comes within `timeout`.
fn read_line_within(mut out: ChildStdout, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while !got.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !wait_readable(out.as_fd(), left) {
            return None;
        }
        let mut buf = [0u8; 256];
        match out.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    text.lines().next().map(str::to_string)
}

fn sc_quick_runs(lc: &mut Lc<'_>) -> R {
    let b = lc.bundle("quick", &["true"], |_| {})?;
    for _ in 0..QUICK_RUNS {
        let id = lc.id();
        let p = lc.spawn(&["run", "--bundle", &b, &id])?;
        let d = p.wait(QUICK_TIMEOUT)?;
        lc.soak.quick_runs.fetch_add(1, Ordering::Relaxed);
        lc.soak.measured("run", d.elapsed);
        d.expect_ok()?;
        lc.gone(&id, "a quick run")?;
    }
    Ok(())
}

fn sc_parallel_distinct(lc: &mut Lc<'_>) -> R {
    let b = lc.bundle("par", &SLEEPER, |_| {})?;
    let ids: Vec<String> = (0..PARALLEL_DISTINCT).map(|_| lc.id()).collect();
    let procs: Vec<Proc> = ids
        .iter()
        .map(|id| lc.spawn(&["create", "--bundle", &b, id]))
        .collect::<R<_>>()?;
    let done: Vec<R<Done>> = procs
        .into_iter()
        .map(|p| p.wait(VERB_TIMEOUT * 2))
        .collect();
    let failed: Vec<String> = done
        .iter()
        .filter_map(|d| match d {
            Ok(d) if d.ok() => None,
            Ok(d) => Some(d.brief()),
            Err(e) => Some(e.clone()),
        })
        .collect();
    expect(failed.is_empty(), || {
        format!(
            "{} of {PARALLEL_DISTINCT} parallel creates failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        )
    })?;
    let list = lc.ok(&["list", "--format", "json"])?;
    let list: Vec<Value> = serde_json::from_str(&list.stdout).map_err(|e| format!("list: {e}"))?;
    for id in &ids {
        expect(
            list.iter()
                .any(|c| c["id"] == id.as_str() && c["status"] == "created"),
            || format!("{id} not listed as created after the parallel creates"),
        )?;
    }
    let procs: Vec<Proc> = ids
        .iter()
        .map(|id| lc.spawn(&["delete", id]))
        .collect::<R<_>>()?;
    for p in procs {
        p.wait(VERB_TIMEOUT * 2)?.expect_ok()?;
    }
    for id in &ids {
        lc.gone(id, "parallel deletes")?;
    }
    Ok(())
}

fn sc_parallel_same(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let b = lc.bundle("same", &lc.soak.sh("echo winner-$0"), |_| {})?;
    let procs: Vec<Proc> = (0..PARALLEL_SAME)
        .map(|_| lc.spawn(&["create", "--bundle", &b, &id]))
        .collect::<R<_>>()?;
    let done: Vec<Done> = procs
        .into_iter()
        .map(|p| p.wait(VERB_TIMEOUT * 2))
        .collect::<R<_>>()?;
    let winners: Vec<&Done> = done.iter().filter(|d| d.ok()).collect();
    expect(winners.len() == 1, || {
        format!(
            "{} winners of {PARALLEL_SAME} creates of one id: {:?}",
            winners.len(),
            done.iter().map(Done::brief).collect::<Vec<_>>()
        )
    })?;
    for d in done.iter().filter(|d| !d.ok()) {
        expect(
            d.code == Some(1) && d.stderr.contains("already exists"),
            || format!("a loser of the same-id creates: {}", d.brief()),
        )?;
    }
    // The winner is intact: created, its init alive, in its cgroups.
    let st = lc
        .soak
        .status(&lc.dir, &id)?
        .ok_or("no state of the winner")?;
    expect(st["status"] == "created", || format!("winner: {st}"))?;
    let pid = st["pid"].as_i64().unwrap_or(0);
    for dir in expected_cgroup_dirs(&id, None) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        expect(procs.lines().any(|l| l.trim() == pid.to_string()), || {
            format!("winner's init {pid} not in {} ({procs:?})", dir.display())
        })?;
    }
    lc.ok(&["start", &id])?;
    lc.wait_status(&id, "stopped")?;
    lc.wait_output(&winners[0].out, &format!("winner-{}", lc.soak.marker))?;
    lc.ok(&["delete", &id])?;
    lc.gone(&id, "delete of the winner")
}

fn sc_host_mounts(lc: &mut Lc<'_>) -> R {
    let id = lc.id();
    let soak = lc.soak;
    let rootfs = soak.host_rootfs.clone();
    let b = lc.bundle("hostmnt", &SLEEPER, |c| {
        c["root"] = json!({"path": rootfs, "readonly": false});
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "mount");
    })?;
    match lc.rng.below(3) {
        0 => {
            let c = lc.ok(&["create", "--bundle", &b, &id])?;
            soak.measured("create-host", c.elapsed);
            expect(!mounts_under(&rootfs).is_empty(), || {
                "a container without a mount namespace has no mounts in the host's".into()
            })?;
            lc.ok(&["start", &id])?;
            lc.wait_status(&id, "running")?;
        }
        1 => {
            let at = soak.kill_point("create-host", lc.rng.fraction());
            let p = lc.spawn(&["create", "--bundle", &b, &id])?;
            std::thread::sleep(at.saturating_sub(p.started.elapsed()));
            let d = p.kill()?;
            lc.soak.log(&format!(
                "  {id}: create (host mounts) killed at {at:?}: {}",
                d.status()
            ));
        }
        _ => {
            lc.running(&b, &id)?;
            let at = soak.kill_point("delete", lc.rng.fraction());
            let p = lc.spawn(&["delete", "--force", &id])?;
            std::thread::sleep(at.saturating_sub(p.started.elapsed()));
            let d = p.kill()?;
            lc.soak.log(&format!(
                "  {id}: delete (host mounts) killed at {at:?}: {}",
                d.status()
            ));
        }
    }
    lc.ok(&["delete", "--force", &id])?;
    let gone = lc.gone(&id, "delete --force");
    let left = mounts_under(&rootfs);
    for m in &left {
        soak.leak(
            Leak::Mount,
            None,
            &m.display().to_string(),
            &format!("{id} after delete --force"),
        );
    }
    // Cleared, so the next container on this rootfs starts clean.
    for m in left.iter().rev() {
        let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
    }
    expect(left.is_empty(), || {
        format!("{id}: mounts left under its rootfs: {left:?}")
    })?;
    gone
}

fn sc_keeper(lc: &mut Lc<'_>) -> R {
    let k = lc.soak.keeper_id.clone();
    let before = lc.soak.status(&lc.dir, &k)?.ok_or("the keeper is gone")?;
    let d = lc.ok(&["exec", &k, "sh", "-c", "echo $0", "kept"])?;
    expect(d.stdout == "kept\n", || {
        format!("exec in the keeper: {}", d.brief())
    })?;
    let ps = lc.ok(&["ps", "--format", "json", &k])?;
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap_or_default();
    expect(pids.contains(&before["pid"].as_i64().unwrap_or(-1)), || {
        format!("ps of the keeper: {}", ps.brief())
    })?;
    lc.ok(&["events", "--stats", &k])?;
    if lc.rng.chance(50) {
        lc.ok(&["pause", &k])?;
        lc.wait_status(&k, "paused")?;
        lc.ok(&["resume", &k])?;
        lc.wait_status(&k, "running")?;
    }
    let limit = 100 + lc.rng.below(100);
    lc.ok(&["update", "--pids-limit", &limit.to_string(), &k])?;
    if let Some(f) = expected_cgroup_dirs(&k, None)
        .into_iter()
        .map(|d| d.join("pids.max"))
        .find(|f| f.exists())
    {
        let v = std::fs::read_to_string(&f).unwrap_or_default();
        expect(v.trim() == limit.to_string(), || {
            format!("{}: {v:?}, wanted {limit}", f.display())
        })?;
    }
    let after = lc.soak.status(&lc.dir, &k)?.ok_or("the keeper is gone")?;
    expect(
        after["status"] == "running" && after["pid"] == before["pid"],
        || format!("the keeper after its lifecycle: {after}"),
    )
}

// ------------------------------------------------------------ the run

/// The long-running foreground `rtctr run`.
struct Keeper {
    proc: Proc,
    _stdout: ChildStdout,
}

impl Soak {
    fn pick(&self, rng: &mut Rng) -> Scenario {
        let pool: Vec<Scenario> = match self.opts.only.is_empty() {
            true => Scenario::ALL.to_vec(),
            false => self.opts.only.clone(),
        };
        let total: u64 = pool.iter().map(|s| s.weight()).sum();
        let mut x = rng.below(total);
        for s in &pool {
            if x < s.weight() {
                return *s;
            }
            x -= s.weight();
        }
        pool[0]
    }

    fn lc_dir(&self, index: u64) -> PathBuf {
        self.work.path().join("lc").join(index.to_string())
    }

    fn lifecycle(&self, index: u64) {
        let mut rng = Rng::for_lifecycle(self.opts.seed, index);
        let scenario = self.pick(&mut rng);
        let info = LcInfo { index, scenario };
        let dir = self.lc_dir(index);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            self.record(&info, Err(format!("{}: {e}", dir.display())));
            return;
        }
        let t = Instant::now();
        let mut lc = Lc {
            soak: self,
            info: info.clone(),
            rng,
            dir,
            n_ids: 0,
        };
        let result = run_lifecycle(&mut lc);
        self.log(&format!(
            "lifecycle {index} {}: {} in {:?}",
            scenario.name(),
            if result.is_ok() { "ok" } else { "FAILED" },
            t.elapsed()
        ));
        self.record(&info, result);
    }

    fn network_up(&self) -> R {
        let subnet = format!("{}0/24", self.subnet);
        let out = self.rt.network(&[
            "create",
            &self.net,
            "--subnet",
            &subnet,
            "--bridge",
            &self.bridge,
        ]);
        expect(out.code == 0, || {
            format!("network create {}: {out:?}", self.net)
        })
    }

    fn keeper_up(&self) -> R<Keeper> {
        let b = self.bundle(
            self.work.path(),
            "keeper",
            &["sh", "-c", "echo ready; exec sleep 100000000"],
            |_| {},
        )?;
        let b = b.display().to_string();
        let args = ["run", "--bundle", b.as_str(), self.keeper_id.as_str()];
        let err = self.work.path().join("keeper.err");
        let mut cmd = self.rt.cmd();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err).map_err(|e| e.to_string())?);
        let mut proc = self.start(cmd, &args, self.work.path().join("keeper.out"), err)?;
        let stdout = proc.child.stdout.take().ok_or("no stdout")?;
        // Read "ready" through a clone, keeping the pipe open.
        let fd = stdout
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| e.to_string())?;
        let line = read_line_within(ChildStdout::from(fd), Duration::from_secs(10));
        expect(line.as_deref() == Some("ready"), || {
            format!("keeper: {line:?}")
        })?;
        Ok(Keeper {
            proc,
            _stdout: stdout,
        })
    }

    /// Measures the verbs whose kill points are fractions of them.
    fn calibrate(&self) -> R {
        let info = LcInfo {
            index: SETUP,
            scenario: Scenario::Lifecycle,
        };
        let dir = self.work.path().join("calibrate");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut lc = Lc {
            soak: self,
            info,
            rng: Rng::for_lifecycle(self.opts.seed, SETUP),
            dir,
            n_ids: 0,
        };
        let sleeper = lc.bundle("sleeper", &SLEEPER, |_| {})?;
        let quick = lc.bundle("quick", &["true"], |_| {})?;
        let net = lc.bundle("net", &SLEEPER, |c| self.networked(c, None))?;
        let netrun = lc.bundle("netrun", &["true"], |c| self.networked(c, None))?;
        let rootfs = self.host_rootfs.clone();
        let host = lc.bundle("host", &SLEEPER, |c| {
            c["root"] = json!({"path": rootfs, "readonly": false});
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "mount");
        })?;
        for _ in 0..3 {
            let id = lc.id();
            lc.running(&sleeper, &id)?;
            let e = lc.ok(&["exec", &id, "true"])?;
            self.measured("exec", e.elapsed);
            lc.delete_force(&id)?;
            let id = lc.id();
            let r = lc.ok(&["run", "--bundle", &quick, &id])?;
            self.measured("run", r.elapsed);
        }
        for _ in 0..2 {
            let id = lc.id();
            let c = lc.ok(&["create", "--bundle", &net, &id])?;
            self.measured("create-net", c.elapsed);
            lc.ok(&["start", &id])?;
            let d = lc.ok(&["delete", "--force", &id])?;
            self.measured("delete-net", d.elapsed);
            let id = lc.id();
            let r = lc.ok(&["run", "--bundle", &netrun, &id])?;
            self.measured("run-net", r.elapsed);
            let id = lc.id();
            let c = lc.ok(&["create", "--bundle", &host, &id])?;
            self.measured("create-host", c.elapsed);
            lc.delete_force(&id)?;
        }
        Ok(())
    }

    /// The sweep and leak check after a batch: every container but the
    /// keeper (all at the end) is `delete --force`d, then the host is
    /// searched for what is left. Returns the leaks found.
    fn check(&self, keeper_pid: Option<i64>) -> u64 {
        let before: u64 = self.tally.lock().unwrap().leaks.values().sum();
        let ids = std::mem::take(&mut *self.batch_ids.lock().unwrap());
        let owner: HashMap<&str, &LcInfo> = ids.iter().map(|(id, i)| (id.as_str(), i)).collect();
        let owner_of = |id: &str| owner.get(id).copied();
        let sweep_dir = self.work.path().join("sweep");
        let _ = std::fs::create_dir_all(&sweep_dir);
        // The sweep.
        let keep = keeper_pid.map(|_| self.keeper_id.as_str());
        let entries = HostSnapshot::take(self).entries;
        let mut swept: Vec<String> = entries
            .iter()
            .map(|n| temp_id(n).unwrap_or(n).to_string())
            .filter(|id| Some(id.as_str()) != keep)
            .collect();
        swept.dedup();
        for id in &swept {
            let why = match self.call(&sweep_dir, &["delete", "--force", id]) {
                Ok(d) if d.ok() => None,
                Ok(d) => Some(format!("sweep: {}", d.brief())),
                Err(e) => Some(format!("sweep: {e}")),
            };
            if let Some(why) = why {
                match owner_of(id) {
                    Some(info) => self.fail_late(info, &why),
                    None => eprintln!("FAIL {why}"),
                }
                self.tally.lock().unwrap().failed += u64::from(owner_of(id).is_none());
            }
        }
        // What is left, once GRACE has passed for what is still going.
        let mut host = HostSnapshot::take(self);
        let left = |h: &HostSnapshot| -> bool {
            h.entries.iter().any(|n| Some(n.as_str()) != keep)
                || !h.leases.is_empty()
                || h.rules.iter().any(|r| r.contains(" ctr="))
                || ids.iter().any(|(id, _)| !self.traces_now(id, h).is_empty())
        };
        if left(&host) {
            wait_for(GRACE, || {
                host = HostSnapshot::take(self);
                !left(&host)
            });
        }
        // Each leftover is counted, then removed where the soak can (so it
        // is not found again, and the host is clean at the end).
        for name in host.entries.iter().filter(|n| Some(n.as_str()) != keep) {
            let id = temp_id(name).unwrap_or(name);
            let path = self.root().join(name);
            self.leak(
                Leak::State,
                owner_of(id),
                &path.display().to_string(),
                "after the sweep",
            );
            let _ = std::fs::remove_dir_all(&path);
        }
        for (id, info) in &ids {
            for (kind, what) in self.traces_now(id, &host) {
                if kind != Leak::State {
                    self.leak(kind, Some(info), &what, "after the sweep");
                }
                if kind == Leak::Cgroup {
                    remove_cgroup(Path::new(&what));
                }
                if kind == Leak::Veth {
                    let _ = Command::new("ip")
                        .args(["link", "del", &host_veth_name(id)])
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        for l in &host.leases {
            let id = l["container"].as_str().unwrap_or_default();
            self.leak(
                Leak::Lease,
                owner_of(id),
                &format!("lease {l}"),
                "after the sweep",
            );
        }
        for r in host.rules.iter().filter(|r| r.contains(" ctr=")) {
            let id = r
                .split(" ctr=")
                .nth(1)
                .unwrap_or_default()
                .trim_end_matches('"');
            self.leak(Leak::Nft, owner_of(id), r, "after the sweep");
        }
        // Ports on the soak's bridge (a veth of an id not checked above).
        let brif = Path::new("/sys/class/net").join(&self.bridge).join("brif");
        for port in std::fs::read_dir(&brif).into_iter().flatten().flatten() {
            let name = port.file_name().to_string_lossy().into_owned();
            let id = ids
                .iter()
                .find(|(id, _)| host_veth_name(id) == name)
                .map(|(_, i)| i);
            self.leak(
                Leak::Veth,
                id,
                &format!("veth {name} on {}", self.bridge),
                "after the sweep",
            );
        }
        // Mounts under the soak's directories and the state root.
        for dir in [self.work.path(), self.root(), shared_rootfs()] {
            let mounts = mounts_under(dir);
            for m in &mounts {
                self.leak(
                    Leak::Mount,
                    None,
                    &m.display().to_string(),
                    "after the sweep",
                );
            }
            for m in mounts.iter().rev() {
                let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
            }
        }
        // Zombies of the soak; processes naming the state root or the
        // soak's marker (but the keeper's rtctr and the soak itself).
        let me = i64::from(std::process::id());
        let mut zombies = Vec::new();
        wait_for(Duration::from_secs(2), || {
            zombies = zombie_children(me);
            zombies.extend(zombie_children(reaper_pid()));
            // The keeper's rtctr is its container's subreaper.
            zombies.extend(keeper_pid.map(zombie_children).unwrap_or_default());
            zombies.is_empty()
        });
        for z in zombies {
            self.leak(
                Leak::Zombie,
                None,
                &format!("zombie {z} ({})", proc_name(z)),
                "a child of the soak (worker or reaper)",
            );
        }
        let strays = || -> Vec<i64> {
            let mut p = pids_with_arg(&self.root().display().to_string());
            p.extend(pids_with_arg(&self.marker));
            // Live orphans, adopted by the reaper.
            p.extend(live_orphans());
            p.retain(|p| *p != me && Some(*p) != keeper_pid);
            p.sort();
            p.dedup();
            p
        };
        let mut stray = Vec::new();
        wait_for(GRACE, || {
            stray = strays();
            stray.is_empty()
        });
        for p in stray {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            let cgroup = std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default();
            let cgroup = cgroup.lines().last().unwrap_or_default().to_string();
            self.leak(
                Leak::Stray,
                None,
                &format!("process {p} `{}`", cmd.trim()),
                &format!("cgroup {cgroup}"),
            );
            if let Some(pid) = rustix::process::Pid::from_raw(p as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        // What the batch's lifecycles wrote.
        let mut indexes: Vec<u64> = ids
            .iter()
            .map(|(_, i)| i.index)
            .filter(|i| *i != SETUP)
            .collect();
        indexes.dedup();
        for i in indexes {
            let _ = std::fs::remove_dir_all(self.lc_dir(i));
        }
        let _ = std::fs::remove_dir_all(&sweep_dir);
        self.tally.lock().unwrap().leaks.values().sum::<u64>() - before
    }

    fn leak_line(&self) -> String {
        let t = self.tally.lock().unwrap();
        Leak::ALL
            .iter()
            .map(|k| format!("{}={}", k.name(), t.leaks.get(k).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The whole soak; the process's exit code.
    fn main(&self) -> i32 {
        let t0 = Instant::now();
        let o = &self.opts;
        println!(
            "soak: {} lifecycles from #{} (seed {:#x}), sweep + leak check every {}; rtctr {}; state root {}; network {} ({}0/24, bridge {})",
            o.lifecycles,
            o.start,
            o.seed,
            o.batch,
            rtctr_bin().display(),
            self.root().display(),
            self.net,
            self.subnet,
            self.bridge
        );
        if let Err(e) = self.network_up() {
            eprintln!("soak: {e}");
            return 1;
        }
        let keeper = match self.keeper_up() {
            Ok(k) => k,
            Err(e) => {
                eprintln!("soak: the keeper container: {e}");
                let _ = self.rt.network(&["rm", "--force", &self.net]);
                return 1;
            }
        };
        let keeper_pid = keeper.proc.pid();
        let calibrated = self.calibrate();
        self.check(Some(keeper_pid));
        let timing: BTreeMap<_, _> = self.timing.lock().unwrap().clone().into_iter().collect();
        println!("measured verbs (kill points are fractions of these): {timing:?}");
        let me = i64::from(std::process::id());
        let fds_soak = fd_count(me).unwrap_or(0);
        let fds_keeper = fd_count(keeper_pid).unwrap_or(0);
        // Without a working create/start/exec/delete/run there is nothing
        // to soak: straight to the end.
        let end = match &calibrated {
            Ok(()) => o.start + o.lifecycles,
            Err(e) => {
                eprintln!("soak: calibration (create/start/exec/delete/run) failed: {e}");
                o.start
            }
        };
        let mut batch_start = o.start;
        let mut batch_t = Instant::now();
        for i in o.start..end {
            self.lifecycle(i);
            if i + 1 - batch_start == o.batch || i + 1 == end {
                let leaks = self.check(Some(keeper_pid));
                let t = self.tally.lock().unwrap();
                println!(
                    "batch {}-{}: {} passed, {} failed so far; {} leaks in this batch; {:.1} s (total {:.0} s); fds: soak {}, keeper rtctr {}",
                    batch_start,
                    i,
                    t.passed,
                    t.failed,
                    leaks,
                    batch_t.elapsed().as_secs_f64(),
                    t0.elapsed().as_secs_f64(),
                    fd_count(me).unwrap_or(0),
                    fd_count(keeper_pid).unwrap_or(0),
                );
                batch_start = i + 1;
                batch_t = Instant::now();
            }
        }
        // The keeper: its rtctr's descriptors, then its end.
        let keeper_fds_end = fd_count(keeper_pid).unwrap_or(0);
        if keeper_fds_end > fds_keeper {
            self.leak(
                Leak::Fd,
                None,
                &format!("keeper rtctr {keeper_pid}: {fds_keeper} fds at the start, {keeper_fds_end} at the end"),
                &fd_list(keeper_pid),
            );
        }
        let dir = self.work.path().join("end");
        let _ = std::fs::create_dir_all(&dir);
        let stop = self.call(&dir, &["kill", &self.keeper_id, "KILL"]);
        match stop.and_then(|_| keeper.proc.wait(VERB_TIMEOUT)) {
            Ok(d) if d.code == Some(137) => {}
            Ok(d) => eprintln!("FAIL the keeper's run after kill KILL: {}", d.brief()),
            Err(e) => eprintln!("FAIL the keeper's end: {e}"),
        }
        self.batch_ids.lock().unwrap().push((
            self.keeper_id.clone(),
            LcInfo {
                index: SETUP,
                scenario: Scenario::Keeper,
            },
        ));
        self.check(None);
        // The network, then nothing of it.
        let rm = self.rt.network(&["rm", "--force", &self.net]);
        if rm.code != 0 {
            eprintln!("FAIL network rm --force {}: {rm:?}", self.net);
        }
        if !wait_for(GRACE, || !link_exists(&self.bridge)) {
            self.leak(
                Leak::Veth,
                None,
                &format!("bridge {}", self.bridge),
                "after network rm",
            );
        }
        for r in nft_rules_mentioning(&format!("net={}", self.net)) {
            self.leak(Leak::Nft, None, &r, "after network rm");
        }
        let fds_soak_end = fd_count(me).unwrap_or(0);
        if fds_soak_end > fds_soak {
            self.leak(
                Leak::Fd,
                None,
                &format!("soak {me}: {fds_soak} fds at the start, {fds_soak_end} at the end"),
                &fd_list(me),
            );
        }
        let _ = std::fs::remove_dir_all(shared_rootfs());
        let code = self.summary(
            t0.elapsed(),
            fds_soak,
            fds_soak_end,
            fds_keeper,
            keeper_fds_end,
        );
        match calibrated {
            Ok(()) => code,
            Err(_) => 1,
        }
    }

    fn summary(
        &self,
        took: Duration,
        soak0: usize,
        soak1: usize,
        keeper0: usize,
        keeper1: usize,
    ) -> i32 {
        let t = self.tally.lock().unwrap();
        println!("\nscenario              runs  failed");
        for (s, (runs, failed)) in &t.per_scenario {
            println!("{:<20} {runs:>5} {failed:>7}", s.name());
        }
        println!(
            "quick runs: {} (each within {QUICK_TIMEOUT:?}); fds: keeper rtctr {keeper0} -> {keeper1}, soak {soak0} -> {soak1}",
            self.quick_runs.load(Ordering::Relaxed)
        );
        let leaks: u64 = t.leaks.values().sum();
        drop(t);
        let t = self.tally.lock().unwrap();
        println!(
            "{} passed, {} failed in {:.0} s (seed {:#x}, lifecycles {}..{})",
            t.passed,
            t.failed,
            took.as_secs_f64(),
            self.opts.seed,
            self.opts.start,
            self.opts.start + self.opts.lifecycles
        );
        drop(t);
        println!("leaks: {}", self.leak_line());
        let t = self.tally.lock().unwrap();
        if !t.failures.is_empty() {
            println!(
                "failed lifecycles (replay: soak --seed {:#x} --start I --lifecycles 1):",
                self.opts.seed
            );
            for (i, s, why) in t.failures.iter().take(50) {
                println!("  {i} {}: {}", s.name(), clip(why));
            }
        }
        i32::from(t.failed > 0 || leaks > 0)
    }
}

fn proc_name(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// What a process's descriptors point at, for an fd leak report.
fn fd_list(pid: i64) -> String {
    let mut l: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!("{}->{}", e.file_name().to_string_lossy(), target.display())
        })
        .collect();
    l.sort();
    l.join(" ")
}

fn main() {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if opts.list {
        for s in Scenario::ALL {
            println!(
                "{:<20} {:>4.1}%  {}",
                s.name(),
                s.weight() as f64 / 10.0,
                s.about()
            );
        }
        return;
    }
    if !require_root(NEEDS_ROOT) {
        return;
    }
    if std::env::var_os(WORKER_ENV).is_none() {
        std::process::exit(reaper());
    }
    // The rtctr built with this binary, unless RTCTR_BIN says otherwise.
    if std::env::var_os("RTCTR_BIN").is_none() {
        if let Some(sibling) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("rtctr")))
            .filter(|p| p.exists())
        {
            std::env::set_var("RTCTR_BIN", sibling);
        }
    }
    let soak = Soak::new(opts);
    let code = soak.main();
    drop(soak);
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lifecycle_draws_the_same_numbers_on_replay() {
        let a: Vec<u64> = {
            let mut r = Rng::for_lifecycle(42, 7);
            (0..5).map(|_| r.next()).collect()
        };
        let mut r = Rng::for_lifecycle(42, 7);
        assert_eq!(a, (0..5).map(|_| r.next()).collect::<Vec<_>>());
        let mut other = Rng::for_lifecycle(42, 8);
        assert_ne!(a[0], other.next());
        let mut r = Rng::for_lifecycle(0, 0);
        for _ in 0..1000 {
            assert!(r.below(7) < 7);
            let f = r.fraction();
            assert!((0.0..1.0).contains(&f));
        }
    }

    #[test]
    fn every_scenario_is_drawn_by_its_weight() {
        let mut counts = HashMap::new();
        let mut r = Rng::for_lifecycle(1, 1);
        let total: u64 = Scenario::ALL.iter().map(|s| s.weight()).sum();
        for _ in 0..total * 200 {
            let mut x = r.below(total);
            for s in Scenario::ALL {
                if x < s.weight() {
                    *counts.entry(s).or_insert(0u64) += 1;
                    break;
                }
                x -= s.weight();
            }
        }
        for s in Scenario::ALL {
            let n = counts.get(&s).copied().unwrap_or(0);
            assert!(n > s.weight() * 150 && n < s.weight() * 250, "{s:?}: {n}");
        }
    }

    #[test]
    fn options() {
        let o = Options::parse(
            [
                "--lifecycles",
                "10",
                "--seed",
                "0x2a",
                "--start=5",
                "--scenario",
                "run,kill-create",
            ]
            .map(String::from),
        )
        .unwrap();
        assert_eq!((o.lifecycles, o.seed, o.start), (10, 42, 5));
        assert_eq!(o.only, [Scenario::Run, Scenario::KillCreate]);
        assert!(Options::parse(["--scenario", "nope"].map(String::from)).is_err());
        assert!(Options::parse(["--bogus"].map(String::from)).is_err());
        let names: std::collections::HashSet<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Scenario::ALL.len());
    }

    #[test]
    fn temporaries_name_their_id() {
        assert_eq!(temp_id("~c1.1234"), Some("c1"));
        assert_eq!(temp_id("~a.b.99"), Some("a.b"));
        assert_eq!(temp_id("c1"), None);
        assert!(valid_id("sk1-2-3") && !valid_id("a:b") && !valid_id(".."));
    }
}
