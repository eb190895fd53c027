//! The command line, spelled as runc spells it, so engines call rtctr
//! unchanged. Go's flag package also takes long flags with one dash
//! (`-bundle`, `-no-subreaper`); [`normalize_go_flags`] rewrites those
//! before clap sees them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "rtctr",
    about = "An OCI container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for container state (default /run/rtctr, or
    /// $XDG_RUNTIME_DIR/rtctr for a non-root caller).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Write log messages (and the error of a failed command) to FILE.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Log format: text or json (one {"level","msg","time"} object a line).
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (cgroupsPath is slice:prefix:name).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for compatibility (true, false or auto).
    #[arg(long, global = true, value_name = "VALUE", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
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
    Create(CreateArgs),
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
    Run(RunArgs),
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
    /// Run a process in a running container.
    Exec(Box<ExecArgs>),
    /// Print the features this runtime supports (OCI features JSON).
    Features,
    /// Bridge networks of the built-in network hook.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Restore from a checkpoint (not supported yet).
    #[command(disable_help_flag = true)]
    Restore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// Checkpoint a container (not supported yet).
    #[command(disable_help_flag = true)]
    Checkpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// Change a container's resource limits (flags, or -r FILE|-).
    Update(Box<crate::commands::update::UpdateArgs>),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List a container's processes (ps ID [ps args]).
    Ps(crate::commands::ps::PsArgs),
    /// Print a container's stats and OOM events (runc's JSON lines).
    Events(crate::commands::events::EventsArgs),
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

/// Rewrites Go-style `-name` / `-name=v` into `--name` when `name` is a
/// long flag of rtctr or of the subcommand being parsed. Stops at `--`
/// and at the first positional after the subcommand's own flags, so
/// arguments meant for the container are never touched.
pub fn normalize_go_flags(args: Vec<OsString>) -> Vec<OsString> {
    let cmd = Cli::command();
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    if let Some(argv0) = iter.next() {
        out.push(argv0);
    }
    let mut current = cmd.clone();
    let mut in_sub = false;
    let mut skip_value = false;
    let mut done = false;
    for arg in iter {
        if done || skip_value {
            skip_value = false;
            out.push(arg);
            continue;
        }
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            done = true;
            out.push(arg);
            continue;
        }
        if let Some(body) = s
            .strip_prefix('-')
            .filter(|b| !b.starts_with('-') && b.len() > 1)
        {
            let name = body.split('=').next().unwrap_or(body);
            let long = find_long(&current, name).or_else(|| find_long(&cmd, name));
            if let Some(takes_value) = long {
                skip_value = takes_value && !body.contains('=');
                out.push(OsString::from(format!("-{s}")));
                continue;
            }
        }
        if let Some(body) = s.strip_prefix("--") {
            let name = body.split('=').next().unwrap_or(body);
            skip_value = find_long(&current, name).or_else(|| find_long(&cmd, name)) == Some(true)
                && !body.contains('=');
            out.push(arg);
            continue;
        }
        if s.starts_with('-') {
            // short flags: does the last one take a value?
            let last = s.chars().last().unwrap_or('-');
            skip_value = s.len() == 2
                && current
                    .get_arguments()
                    .chain(cmd.get_arguments())
                    .any(|a| a.get_short() == Some(last) && a.get_action().takes_values());
            out.push(arg);
            continue;
        }
        if !in_sub {
            if let Some(sub) = cmd.find_subcommand(s) {
                current = sub.clone();
                in_sub = true;
                out.push(arg);
                continue;
            }
        }
        // A positional of the subcommand: everything after is the container's.
        if in_sub && matches!(current.get_name(), "exec" | "ps") {
            done = true;
        }
        out.push(arg);
    }
    out
}

/// Some(takes_value) when `name` is a long flag of `cmd`.
fn find_long(cmd: &clap::Command, name: &str) -> Option<bool> {
    cmd.get_arguments()
        .find(|a| {
            a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
        })
        .map(|a| a.get_action().takes_values())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_go_flags(args.iter().map(OsString::from).collect())
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
    fn parses_runc_argv() {
        let cli = Cli::try_parse_from(norm(&[
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
        ]))
        .unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        match cli.command.unwrap() {
            Command::Create(a) => {
                assert_eq!(a.preserve_fds, 2);
                assert!(a.no_pivot && a.no_new_keyring);
                assert_eq!(a.id, "c1");
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["rtctr", "kill", "--all", "c1", "9"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Kill { all: true, .. })));
        let cli =
            Cli::try_parse_from(["rtctr", "--rootless=auto", "list", "--format=json"]).unwrap();
        assert_eq!(cli.rootless.as_deref(), Some("auto"));
        Cli::try_parse_from(norm(&[
            "rtctr",
            "restore",
            "--detach",
            "-no-subreaper",
            "c",
        ]))
        .unwrap();
    }
}
