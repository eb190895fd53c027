//! The command line, spelled as runc spells it, so engines call rtctr
//! unchanged: every clap type, and the conversion of flags into the plain
//! option structs the library's verbs take. Go's flag package also takes
//! long flags with one dash (`-bundle`, `-no-subreaper`);
//! [`parse`] rewrites those before clap sees them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use rtctr::commands::checkpoint::{CgroupsMode, CheckpointOptions, CriuFlags};
use rtctr::commands::create::CreateOptions;
use rtctr::commands::events::EventsOptions;
use rtctr::commands::exec::ExecOptions;
use rtctr::commands::ps::PsOptions;
use rtctr::commands::restore::RestoreOptions;
use rtctr::commands::run::RunOptions;
use rtctr::commands::update::UpdateOptions;

/// A flag whose value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("invalid value for --{flag}: {value:?} ({why})")]
    BadValue {
        flag: &'static str,
        value: String,
        why: String,
    },
}

#[derive(Parser, Debug)]
#[command(
    name = "rtctr",
    about = "An OCI container runtime",
    disable_version_flag = true
)]
/// rtctr's own flags (`--root`, `--log`, ...) go before the verb, as
/// runc takes them; given after it they are moved there first
/// ([`normalize_go_flags`]). They are not clap `global` flags: clap would
/// copy all seven into each of the twenty verbs at every start (140 flag
/// clones, a third of the page faults of a `delete`).
pub struct Cli {
    /// Directory for container state (default /run/rtctr, or
    /// $XDG_RUNTIME_DIR/rtctr for a non-root caller).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Write log messages (and the error of a failed command) to FILE.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Log format: text or json (one {"level","msg","time"} object a line).
    #[arg(long = "log-format", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log debug messages.
    #[arg(long)]
    pub debug: bool,
    /// Use systemd for cgroups (cgroupsPath is slice:prefix:name).
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Skip the cgroups the caller cannot write: true, false or auto (yes
    /// for a non-root caller or root in a user namespace), as runc.
    #[arg(long, value_name = "VALUE", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// The layer store of `bundle --image` (default /var/lib/rtctr/layers).
    #[arg(long = "layer-store", value_name = "DIR")]
    pub layer_store: Option<PathBuf>,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(Deferred<CreateArgs>),
    /// Start the process of a created container.
    Start { id: String },
    /// Print the state of a container as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's init.
    Kill {
        /// Send the signal to every process of the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a container and everything it holds.
    Delete {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container, and wait for it.
    Run(Deferred<RunArgs>),
    /// List containers.
    #[command(alias = "ls")]
    List {
        /// table or json.
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Print only ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(short, long, value_name = "DIR")]
        bundle: Option<PathBuf>,
    },
    /// Make a bundle from an OCI image layout (or oci-archive): its
    /// layers unpacked once into the layer store, config.json from the
    /// image config, the rootfs an overlay of the layers at create.
    Bundle {
        /// DIR[:TAG]: the image layout directory (or oci-archive file) and
        /// the image's org.opencontainers.image.ref.name, which may hold `:`
        /// and `/` (podman's `localhost/NAME:TAG`).
        #[arg(long, value_name = "DIR[:TAG]")]
        image: String,
        /// The bundle directory to write (made if missing).
        bundle: PathBuf,
    },
    /// The layer store: list layers and who uses them, prune unused ones.
    #[command(subcommand)]
    Layers(LayersCommand),
    /// Run a process in a running container.
    Exec(Deferred<Box<ExecArgs>>),
    /// Print the features this runtime supports (OCI features JSON).
    Features,
    /// Bridge networks of the built-in network hook.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Restore a container from a checkpoint made by `checkpoint` (CRIU).
    Restore(Deferred<Box<RestoreArgs>>),
    /// Checkpoint a running container with CRIU.
    Checkpoint(Deferred<Box<CheckpointArgs>>),
    /// Change a container's resource limits (flags, or -r FILE|-).
    Update(Deferred<Box<UpdateArgs>>),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List a container's processes (ps ID [ps args]).
    Ps(Deferred<PsArgs>),
    /// Print a container's stats and OOM events (runc's JSON lines).
    Events(Deferred<EventsArgs>),
}

/// A verb's flags, defined to clap only when that verb is the one on the
/// command line (`Command::defer`): each rtctr process runs one verb, and
/// building every verb's flags cost it ~0.1 ms and ~60 page faults.
#[derive(Debug, Clone)]
pub struct Deferred<T>(pub T);

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Deferred<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Deferred)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl<T> std::ops::Deref for Deferred<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// A process.json with the process to run.
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Return once the process runs.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Accepted (not sent yet).
    #[arg(long = "pidfd-socket", value_name = "PATH")]
    pub pidfd_socket: Option<PathBuf>,
    /// Add an environment variable (NAME=value).
    #[arg(short, long, value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// uid[:gid]
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability.
    #[arg(short, long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Exec even into a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Accepted for compatibility.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Accepted for compatibility (no AppArmor here).
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Accepted for compatibility (no SELinux here).
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network: a bridge with NAT for a subnet.
    Create {
        name: String,
        #[arg(long, value_name = "CIDR")]
        subnet: String,
        #[arg(long, value_name = "NAME")]
        bridge: Option<String>,
        #[arg(long, value_name = "IP")]
        gateway: Option<std::net::Ipv4Addr>,
        /// Do not masquerade traffic leaving the subnet.
        #[arg(long = "no-masquerade")]
        no_masquerade: bool,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls,
    /// Show a network and its leases as JSON.
    Inspect { name: String },
    /// Remove a network (refused while containers use it, unless --force).
    #[command(alias = "remove")]
    Rm {
        name: String,
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum LayersCommand {
    /// List the layers: digest, size on disk, images and live containers
    /// using each.
    #[command(alias = "list")]
    Ls {
        /// table or json
        #[arg(short, long, default_value = "table")]
        format: String,
    },
    /// Remove the layers no kept image and no live container uses (and
    /// stale containers' dirs).
    Prune {
        /// Forget every image first: keep only what live containers use.
        #[arg(short, long)]
        all: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// The bundle directory (default: the current directory).
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid to FILE.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// AF_UNIX socket that receives the terminal's master fd.
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Receives a pidfd of the init (accepted; not sent yet).
    #[arg(long = "pidfd-socket", value_name = "PATH")]
    pub pidfd_socket: Option<PathBuf>,
    /// chroot instead of pivot_root (for ramdisk roots).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra descriptors (3..3+N) to the container.
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container has started.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Do not become the subreaper of the container's init.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

impl Cli {
    /// For `create` and `run`: the `--preserve-fds` count.
    pub fn creates_a_container(&self) -> Option<u32> {
        match &self.command {
            Some(Command::Create(a)) => Some(a.preserve_fds),
            Some(Command::Run(a)) => Some(a.create.preserve_fds),
            _ => None,
        }
    }
}

impl CreateArgs {
    pub fn options(&self, systemd_cgroup: bool) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            systemd_cgroup,
            ..Default::default()
        }
    }
}

impl RunArgs {
    pub fn options(&self, systemd_cgroup: bool) -> RunOptions {
        RunOptions {
            create: self.create.options(systemd_cgroup),
            detach: self.detach,
            keep: self.keep,
            no_subreaper: self.no_subreaper,
        }
    }
}

impl ExecArgs {
    pub fn options(&self) -> ExecOptions {
        ExecOptions {
            id: self.id.clone(),
            process: self.process.clone(),
            args: self.command.clone(),
            tty: self.tty,
            detach: self.detach,
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            additional_gids: self.additional_gids.clone(),
            caps: self.cap.clone(),
            no_new_privs: self.no_new_privs,
            preserve_fds: self.preserve_fds,
            ignore_paused: self.ignore_paused,
        }
    }
}

/// The CRIU flags `checkpoint` and `restore` share (runc's).
#[derive(Args, Debug, Clone, Default)]
pub struct CriuArgs {
    /// Directory of the checkpoint images (default: ./checkpoint).
    #[arg(long = "image-path", value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's log (default: the image path).
    #[arg(long = "work-path", value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs.
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks.
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Cgroups mode: soft (default), full, strict or ignore.
    #[arg(long = "manage-cgroups-mode", value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace, but do not restore its properties (network).
    #[arg(long = "empty-ns", value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Deduplicate the images.
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Lazy migration of memory (not supported by rtctr).
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

impl CriuArgs {
    fn flags(&self) -> Result<CriuFlags, CliError> {
        let mode = self
            .manage_cgroups_mode
            .as_deref()
            .filter(|m| !m.is_empty())
            .map(|m| {
                CgroupsMode::parse(m).ok_or_else(|| CliError::BadValue {
                    flag: "manage-cgroups-mode",
                    value: m.to_string(),
                    why: "use soft, full, strict or ignore".into(),
                })
            })
            .transpose()?;
        Ok(CriuFlags {
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: mode,
            empty_ns: self.empty_ns.clone(),
            auto_dedup: self.auto_dedup,
        })
    }

    fn image_path(&self) -> PathBuf {
        self.image_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("checkpoint"))
    }
}

#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Images of a previous (pre-)dump, relative to the image path.
    #[arg(long = "parent-path", value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint.
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Dump the memory only (leaves the container running).
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// Send the pages to a CRIU page server (not supported by rtctr).
    #[arg(long = "page-server", value_name = "ADDR:PORT")]
    pub page_server: Option<String>,
    /// Descriptor for --lazy-pages readiness (not supported by rtctr).
    #[arg(long = "status-fd", value_name = "FD")]
    pub status_fd: Option<i32>,
    pub id: String,
}

impl CheckpointArgs {
    pub fn options(&self) -> Result<CheckpointOptions, CliError> {
        Ok(CheckpointOptions {
            id: self.id.clone(),
            image_path: self.criu.image_path(),
            work_path: self.criu.work_path.clone(),
            parent_path: self.parent_path.clone(),
            leave_running: self.leave_running,
            pre_dump: self.pre_dump,
            lazy_pages: self.criu.lazy_pages,
            page_server: self.page_server.clone(),
            status_fd: self.status_fd,
            flags: self.criu.flags()?,
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// The bundle directory (default: the current directory).
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Return once the container is restored.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the init's pid to FILE.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// AF_UNIX socket that receives the terminal's master fd.
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for compatibility (CRIU restores the mount namespace).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for compatibility.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Do not become the subreaper of the restored init.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Close the TCP connections that were established.
    #[arg(long = "tcp-close")]
    pub tcp_close: bool,
    /// LSM profile for the restored process (not supported by rtctr).
    #[arg(long = "lsm-profile", value_name = "TYPE:LABEL")]
    pub lsm_profile: Option<String>,
    /// LSM mount context (not supported by rtctr).
    #[arg(long = "lsm-mount-context", value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,
    pub id: String,
}

impl RestoreArgs {
    pub fn options(&self, systemd_cgroup: bool) -> Result<RestoreOptions, CliError> {
        Ok(RestoreOptions {
            create: CreateOptions {
                id: self.id.clone(),
                bundle: self.bundle.clone(),
                pid_file: self.pid_file.clone(),
                console_socket: self.console_socket.clone(),
                no_pivot: self.no_pivot,
                no_new_keyring: self.no_new_keyring,
                preserve_fds: 0,
                systemd_cgroup,
                rootless_cgroups: false,
            },
            image_path: self.criu.image_path(),
            work_path: self.criu.work_path.clone(),
            detach: self.detach,
            no_subreaper: self.no_subreaper,
            tcp_close: self.tcp_close,
            lazy_pages: self.criu.lazy_pages,
            lsm_profile: self.lsm_profile.clone(),
            lsm_mount_context: self.lsm_mount_context.clone(),
            flags: self.criu.flags()?,
        })
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    /// A LinuxResources JSON file, or - for stdin; other flags are then ignored.
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<String>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period (microseconds).
    #[arg(long = "cpu-period", value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (microseconds) per period; -1 for none.
    #[arg(long = "cpu-quota", value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS burst (microseconds).
    #[arg(long = "cpu-burst", value_name = "US")]
    pub cpu_burst: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", alias = "cpu-shares", value_name = "N")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period (microseconds).
    #[arg(long = "cpu-rt-period", value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (microseconds).
    #[arg(long = "cpu-rt-runtime", value_name = "US", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to run on ("0-2,4").
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// SCHED_IDLE for the cgroup (0 or 1).
    #[arg(long = "cpu-idle", value_name = "N")]
    pub cpu_idle: Option<i64>,
    /// Kernel memory limit: accepted and ignored, as runc does.
    #[arg(
        long = "kernel-memory",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer limit: accepted and ignored (deprecated).
    #[arg(
        long = "kernel-memory-tcp",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (512m, 1g, -1 for none).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(
        long = "memory-reservation",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids (-1 for none).
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (needs linux.intelRdt).
    #[arg(long = "l3-cache-schema", value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (needs linux.intelRdt).
    #[arg(long = "mem-bw-schema", value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

impl UpdateArgs {
    pub fn options(&self) -> Result<UpdateOptions, CliError> {
        let rdt = [
            ("l3-cache-schema", &self.l3_cache_schema),
            ("mem-bw-schema", &self.mem_bw_schema),
        ];
        Ok(UpdateOptions {
            id: self.id.clone(),
            resources_json: self.resources.clone(),
            flags: from_flags(self)?,
            intel_rdt_flag: rdt.into_iter().find(|(_, v)| v.is_some()).map(|(f, _)| f),
        })
    }
}

/// Byte sizes as docker's `units.RAMInBytes` reads them: a number
/// (fractions allowed) with an optional binary unit k, m, g, t, p, an
/// optional `i` and `b` ("512m", "1.5GiB", "100 kb"); "-1" is unlimited.
fn parse_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    let t = s.strip_suffix(['b', 'B']).unwrap_or(s);
    let t = t.strip_suffix(['i', 'I']).unwrap_or(t);
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            let pow = "kmgtp".find(c).unwrap_or(0) as u32 + 1;
            (&t[..t.len() - 1], 1024f64.powi(pow as i32))
        }
        _ if t.len() < s.len() && !s.ends_with(['b', 'B']) => return Err("bad unit".into()),
        _ => (t, 1.0),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err("not a size like 512m or 1g".into());
    }
    let v: f64 = num.parse().map_err(|_| "not a number".to_string())?;
    let bytes = v * mult;
    if bytes >= i64::MAX as f64 {
        return Err("too large".into());
    }
    Ok(bytes as i64)
}

fn bytes_flag(flag: &'static str, v: &Option<String>) -> Result<Option<i64>, CliError> {
    v.as_deref()
        .map(|s| {
            parse_bytes(s).map_err(|why| CliError::BadValue {
                flag,
                value: s.to_string(),
                why,
            })
        })
        .transpose()
}

/// The resources the flags ask for (unset flags stay `None`).
fn from_flags(a: &UpdateArgs) -> Result<LinuxResources, CliError> {
    let mut res = LinuxResources::default();
    let mut mem = LinuxMemory::default();
    mem.set_limit(bytes_flag("memory", &a.memory)?);
    mem.set_reservation(bytes_flag("memory-reservation", &a.memory_reservation)?);
    mem.set_swap(bytes_flag("memory-swap", &a.memory_swap)?);
    // Checked for syntax, then dropped: runc ignores kernel memory too.
    bytes_flag("kernel-memory", &a.kernel_memory)?;
    bytes_flag("kernel-memory-tcp", &a.kernel_memory_tcp)?;
    for (flag, v) in [
        ("kernel-memory", &a.kernel_memory),
        ("kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if v.is_some() {
            log::warn!("--{flag} is deprecated and ignored (as in runc)");
        }
    }
    if mem != LinuxMemory::default() {
        res.set_memory(Some(mem));
    }
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(a.cpu_share);
    cpu.set_quota(a.cpu_quota);
    cpu.set_period(a.cpu_period);
    cpu.set_burst(a.cpu_burst);
    cpu.set_realtime_period(a.cpu_rt_period);
    cpu.set_realtime_runtime(a.cpu_rt_runtime);
    cpu.set_cpus(a.cpuset_cpus.clone());
    cpu.set_mems(a.cpuset_mems.clone());
    cpu.set_idle(a.cpu_idle);
    if cpu != LinuxCpu::default() {
        res.set_cpu(Some(cpu));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        res.set_block_io(Some(b));
    }
    if let Some(l) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(l);
        res.set_pids(Some(p));
    }
    Ok(res)
}

#[derive(Args, Debug, Clone)]
pub struct PsArgs {
    /// table or json.
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// The container id, then arguments for ps(1) (default -ef). Flags
    /// after the id are ps's, as in runc (`ps ID -f` is ps's `-f`).
    #[arg(
        value_name = "ID [PS ARGS]",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

impl PsArgs {
    pub fn options(&self) -> Result<PsOptions, CliError> {
        let json = match self.format.as_str() {
            "json" => true,
            "table" => false,
            other => {
                return Err(CliError::BadValue {
                    flag: "format",
                    value: other.to_string(),
                    why: "use table or json".into(),
                })
            }
        };
        Ok(PsOptions {
            id: self.args[0].clone(),
            json,
            ps_args: self.args[1..].to_vec(),
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct EventsArgs {
    /// Time between stats lines (Go duration: 5s, 100ms, 1m30s).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub interval: String,
    /// Print the container's stats once and exit.
    #[arg(long)]
    pub stats: bool,
    pub id: String,
}

impl EventsArgs {
    pub fn options(&self) -> Result<EventsOptions, CliError> {
        let bad = |why: &str| CliError::BadValue {
            flag: "interval",
            value: self.interval.clone(),
            why: why.to_string(),
        };
        let interval = parse_go_duration(&self.interval).map_err(bad)?;
        if interval.is_zero() {
            return Err(bad("must be greater than 0"));
        }
        Ok(EventsOptions {
            id: self.id.clone(),
            stats: self.stats,
            interval,
        })
    }
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units
/// ns, us (µs), ms, s, m, h ("1m30s", "1.5s"); a bare "0" is zero.
fn parse_go_duration(s: &str) -> Result<Duration, &'static str> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration");
    }
    if s.starts_with('-') {
        return Err("negative duration");
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or("missing unit")?;
        if n == 0 {
            return Err("expected a number");
        }
        let value: f64 = rest[..n].parse().map_err(|_| "bad number")?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err("unknown unit (use ns, us, ms, s, m, h)"),
        };
        total += value * nanos;
        rest = &rest[u..];
    }
    if total > u64::MAX as f64 {
        return Err("too large");
    }
    Ok(Duration::from_nanos(total as u64))
}

/// The command line as [`Cli`], Go-style flags rewritten first (one
/// clap command for both).
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let mut cmd = Cli::command();
    let args = normalize_go_flags(&cmd, args);
    let mut matches = cmd.try_get_matches_from_mut(args)?;
    <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
        .map_err(|e| e.format(&mut Cli::command()))
}

/// Rewrites Go-style `-name` / `-name=v` into `--name` when `name` is a
/// long flag of rtctr or of the subcommand being parsed, and moves
/// rtctr's own flags given after the verb (go-runc passes `exec ... --log
/// F`) before it. Stops at `--` and at the first positional after the
/// subcommand's own flags, so arguments meant for the container are
/// never touched.
fn normalize_go_flags(cmd: &clap::Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut iter = args.into_iter();
    let mut out: Vec<OsString> = iter.next().into_iter().collect();
    let mut scan = Scan {
        cmd,
        current: None,
        skip_value: false,
        value_is_ours: false,
        done: false,
    };
    // Where the verb is in `out`, and rtctr's flags seen after it.
    let mut verb = None;
    let mut ours = Vec::new();
    for arg in iter {
        let seen = match arg.to_str() {
            Some(s) if !scan.done && !scan.skip_value => scan.next(s),
            _ => scan.value(),
        };
        let arg = seen.text.map(OsString::from).unwrap_or(arg);
        match seen.ours {
            true => ours.push(arg),
            false => out.push(arg),
        }
        if verb.is_none() && scan.current.is_some() {
            verb = Some(out.len() - 1);
        }
    }
    if let Some(at) = verb {
        out.splice(at..at, ours);
    }
    out
}

/// Where [`normalize_go_flags`] is in the command line.
struct Scan<'a> {
    cmd: &'a clap::Command,
    /// The subcommand, once seen.
    current: Option<clap::Command>,
    /// The next argument is the value of the flag just seen.
    skip_value: bool,
    /// ... of one of rtctr's own flags, after the verb.
    value_is_ours: bool,
    /// Past `--` or the subcommand's first positional of exec/ps.
    done: bool,
}

/// One argument as [`Scan`] saw it.
struct Seen {
    /// The argument rewritten (a Go-style long flag), or None to keep it.
    text: Option<String>,
    /// One of rtctr's own flags after the verb, or its value.
    ours: bool,
}

impl Scan<'_> {
    /// Looks at one argument.
    fn next(&mut self, s: &str) -> Seen {
        let keep = Seen {
            text: None,
            ours: false,
        };
        if s == "--" {
            self.done = true;
            return keep;
        }
        let (body, go_style) = match (s.strip_prefix("--"), s.strip_prefix('-')) {
            (Some(body), _) => (body, false),
            (None, Some(body)) if body.len() > 1 => (body, true),
            _ => ("", false),
        };
        if let Some((takes_value, ours)) = self.long(body) {
            let spelled = match ours && !body.contains('=') {
                true => self.with_missing_value(body),
                false => None,
            };
            self.skip_value = takes_value && !body.contains('=') && spelled.is_none();
            self.value_is_ours = ours;
            let text = spelled.or_else(|| go_style.then(|| format!("-{s}")));
            return Seen { text, ours };
        }
        if s.starts_with('-') {
            // Short flags (or an unknown long one): does the last one take a value?
            let last = s.chars().last().unwrap_or('-');
            self.skip_value = s.len() == 2
                && self
                    .arguments()
                    .any(|a| a.get_short() == Some(last) && a.get_action().takes_values());
            self.value_is_ours = false;
            return keep;
        }
        match &self.current {
            // Built, so that a deferred verb's flags are there to look at.
            None => {
                self.current = self.cmd.find_subcommand(s).cloned().map(|mut sub| {
                    sub.build();
                    sub
                })
            }
            // A positional of the subcommand: everything after is the container's.
            Some(sub) => self.done = matches!(sub.get_name(), "exec" | "ps"),
        }
        keep
    }

    /// An argument not looked at: the value of the flag before it, or one
    /// past `--` or the container's command.
    fn value(&mut self) -> Seen {
        let ours = self.skip_value && self.value_is_ours;
        self.skip_value = false;
        Seen { text: None, ours }
    }

    /// Some((takes_value, ours)) when `body` (`name` or `name=value`) names
    /// a long flag of the subcommand or else of rtctr itself; `ours` when
    /// it is rtctr's and comes after the verb.
    fn long(&self, body: &str) -> Option<(bool, bool)> {
        if body.is_empty() {
            return None;
        }
        let name = body.split('=').next().unwrap_or(body);
        if let Some(sub) = self.current.as_ref().and_then(|c| find_long(c, name)) {
            return Some((sub.takes_value, false));
        }
        find_long(self.cmd, name).map(|f| (f.takes_value, self.current.is_some()))
    }

    /// rtctr's own flag `body` (after the verb, so about to be moved before
    /// it) with its value written out when the value is optional and not
    /// given (`--rootless` → `--rootless=true`): before the verb, clap
    /// would take the verb itself as that value.
    fn with_missing_value(&self, body: &str) -> Option<String> {
        let flag = find_long(self.cmd, body)?;
        flag.missing.map(|value| format!("--{body}={value}"))
    }

    fn arguments(&self) -> impl Iterator<Item = &clap::Arg> {
        let sub = self.current.iter().flat_map(|c| c.get_arguments());
        sub.chain(self.cmd.get_arguments())
    }
}

/// A long flag of a clap command, as the Go-flag pass needs to know it.
struct LongFlag {
    takes_value: bool,
    /// The value it takes when given none, if its value is optional. clap
    /// does not say; rtctr's only such flag, `--rootless`, is a switch
    /// whose bare form means `true` (`default_missing_value` above).
    missing: Option<&'static str>,
}

/// The long flag `name` of `cmd`.
fn find_long(cmd: &clap::Command, name: &str) -> Option<LongFlag> {
    let a = cmd.get_arguments().find(|a| {
        a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
    })?;
    let optional = a.get_num_args().is_some_and(|n| n.min_values() == 0);
    Some(LongFlag {
        takes_value: a.get_action().takes_values(),
        missing: optional.then_some("true"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `args` through [`parse`], as `main` takes them.
    fn cli(args: &[&str]) -> Cli {
        parse(args.iter().map(OsString::from).collect()).unwrap()
    }

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_go_flags(&Cli::command(), args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn go_style_flags_become_long_flags() {
        assert_eq!(
            norm(&["rtctr", "create", "-bundle", "/b", "-pid-file=/p", "c1"]),
            ["rtctr", "create", "--bundle", "/b", "--pid-file=/p", "c1"]
        );
        assert_eq!(
            norm(&[
                "rtctr",
                "-root",
                "/r",
                "-log-format=json",
                "run",
                "-no-subreaper",
                "-d",
                "x"
            ]),
            [
                "rtctr",
                "--root",
                "/r",
                "--log-format=json",
                "run",
                "--no-subreaper",
                "-d",
                "x"
            ]
        );
    }

    #[test]
    fn values_and_unknown_words_are_left_alone() {
        // "-b" is a short flag; its value "-x" is not a flag.
        assert_eq!(
            norm(&["rtctr", "create", "-b", "-bundle", "c"]),
            ["rtctr", "create", "-b", "-bundle", "c"]
        );
        assert_eq!(
            norm(&["rtctr", "kill", "c", "-9"]),
            ["rtctr", "kill", "c", "-9"]
        );
    }

    #[test]
    fn rtctrs_own_flags_after_the_verb_move_before_it() {
        assert_eq!(
            norm(&["rtctr", "exec", "--log", "/l", "-d", "-root=/r", "c", "sh", "--log", "x"]),
            [
                "rtctr",
                "--log",
                "/l",
                "--root=/r",
                "exec",
                "-d",
                "c",
                "sh",
                "--log",
                "x"
            ]
        );
        assert_eq!(
            norm(&[
                "rtctr",
                "--debug",
                "delete",
                "-f",
                "-log-format",
                "json",
                "c"
            ]),
            [
                "rtctr",
                "--debug",
                "--log-format",
                "json",
                "delete",
                "-f",
                "c"
            ]
        );
        // A verb's own flag of the same name stays the verb's.
        assert_eq!(
            norm(&["rtctr", "run", "--bundle", "/b", "--", "--root", "c"]),
            ["rtctr", "run", "--bundle", "/b", "--", "--root", "c"]
        );
        // An optional value (`--rootless`) is spelled out: clap would take
        // the verb for it.
        assert_eq!(
            norm(&["rtctr", "spec", "--rootless", "--bundle", "/b"]),
            ["rtctr", "--rootless=true", "spec", "--bundle", "/b"]
        );
        let c = cli(&["rtctr", "spec", "--rootless", "-b", "/b"]);
        assert_eq!(c.rootless.as_deref(), Some("true"));
        assert!(matches!(c.command, Some(Command::Spec { .. })));
        let c = cli(&["rtctr", "delete", "--root", "/run/x", "--force", "c1"]);
        assert_eq!(c.root.as_deref(), Some(std::path::Path::new("/run/x")));
        assert!(matches!(
            c.command,
            Some(Command::Delete { force: true, .. })
        ));
    }

    #[test]
    fn parses_runc_argv() {
        let c = cli(&[
            "rtctr",
            "--root",
            "/run/x",
            "--log",
            "/l.json",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "--no-pivot",
            "--no-new-keyring",
            "--preserve-fds=2",
            "c1",
        ]);
        assert_eq!(c.log_format, LogFormat::Json);
        match c.command.unwrap() {
            Command::Create(a) => {
                assert_eq!(a.preserve_fds, 2);
                assert!(a.no_pivot && a.no_new_keyring);
                assert_eq!(a.id, "c1");
            }
            other => panic!("{other:?}"),
        }
        let c = cli(&["rtctr", "kill", "--all", "c1", "9"]);
        assert!(matches!(c.command, Some(Command::Kill { all: true, .. })));
        let c = cli(&["rtctr", "--rootless=auto", "list", "--format=json"]);
        assert_eq!(c.rootless.as_deref(), Some("auto"));
        match cli(&["rtctr", "restore", "--detach", "-no-subreaper", "c"]).command {
            Some(Command::Restore(a)) => assert!(a.detach && a.no_subreaper),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn byte_sizes_as_docker_reads_them() {
        let m = 1024 * 1024;
        for (s, want) in [
            ("512m", 512 * m),
            ("1g", 1024 * m),
            ("1G", 1024 * m),
            ("1GiB", 1024 * m),
            ("1gb", 1024 * m),
            ("100", 100),
            ("100b", 100),
            ("1.5k", 1536),
            ("2 mb", 2 * m),
            ("-1", -1),
        ] {
            assert_eq!(parse_bytes(s), Ok(want), "{s}");
        }
        for bad in ["", "m", "-2", "1x", "1.2.3k", "abc", "1kk"] {
            assert!(parse_bytes(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn flags_set_only_what_is_given() {
        let a = UpdateArgs {
            memory: Some("64m".into()),
            cpu_share: Some(256),
            pids_limit: Some(-1),
            id: "c".into(),
            ..Default::default()
        };
        let r = serde_json::to_value(a.options().unwrap().flags).unwrap();
        assert_eq!(
            r,
            serde_json::json!({"memory": {"limit": 67108864}, "cpu": {"shares": 256}, "pids": {"limit": -1}})
        );
    }

    fn parse_ps(argv: &[&str]) -> PsOptions {
        match cli(argv).command {
            Some(Command::Ps(a)) => a.options().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ps_argv_as_engines_send_it() {
        let a = parse_ps(&["rtctr", "ps", "--format", "table", "c", "-o", "pid,comm"]);
        assert_eq!((a.json, a.id.as_str()), (false, "c"));
        assert_eq!(a.ps_args, ["-o", "pid,comm"]);
        let a = parse_ps(&["rtctr", "ps", "--format", "json", "c"]);
        assert_eq!((a.json, a.id.as_str()), (true, "c"));
        assert!(a.ps_args.is_empty());
        let a = parse_ps(&["rtctr", "ps", "-f", "json", "c"]);
        assert!(a.json);
        // After the id, -f is ps's.
        let a = parse_ps(&["rtctr", "ps", "c", "-f"]);
        assert_eq!((a.json, a.id.as_str()), (false, "c"));
        assert_eq!(a.ps_args, ["-f"]);
        let a = parse_ps(&["rtctr", "ps", "-format=json", "c", "-ef"]);
        assert!(a.json);
        assert_eq!(a.ps_args, ["-ef"]);
        match cli(&["rtctr", "ps", "-f", "yaml", "c"]).command {
            Some(Command::Ps(a)) => assert!(a.options().is_err()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        for (s, want) in [
            ("5s", ms(5000)),
            ("100ms", ms(100)),
            ("1m", ms(60_000)),
            ("1m30s", ms(90_000)),
            ("1.5s", ms(1500)),
            ("2h", ms(7_200_000)),
            ("10us", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("0", Duration::ZERO),
        ] {
            assert_eq!(parse_go_duration(s), Ok(want), "{s}");
        }
        for bad in ["", "5", "s", "-1s", "5x", "1.2.3s", "ms5"] {
            assert!(parse_go_duration(bad).is_err(), "{bad} accepted");
        }
    }
}
