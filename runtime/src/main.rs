//! The `rtctr` binary: parse the command line, run one verb, report its
//! error once (stderr, and the `--log` file), exit 1 on failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod cli;

// musl's allocator returns freed pages to the kernel at once and faults
// them back in; dlmalloc keeps them for the next allocation.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

use anyhow::{bail, Context, Result};
use cli::{Cli, Command, LogFormat};
use rtctr::state::Store;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            if e.use_stderr() {
                // Engines read the reason from the --log file, not stderr.
                log_parse_error(&e.to_string());
            }
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Some(preserve_fds) = cli.creates_a_container() {
        if let Err(e) = rtctr::commands::create::close_inherited_fds(preserve_fds) {
            eprintln!("rtctr: close inherited descriptors: {e}");
            return ExitCode::from(1);
        }
    }
    let json = cli.log_format == LogFormat::Json;
    if let Err(e) = rtctr::logging::Logger::init(cli.log.as_deref(), json, cli.debug) {
        eprintln!("rtctr: cannot open log file: {e}");
        return ExitCode::from(1);
    }
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = error_text(&e);
            if let Some(path) = &cli.log {
                let line = rtctr::logging::format_line(json, log::Level::Error, &msg);
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                {
                    let _ = writeln!(f, "{line}");
                }
            }
            eprintln!("rtctr: {msg}");
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, each cause only if the message above does
/// not already say it.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

/// A command line clap refused still gets its error into `--log FILE`
/// (found by hand: the parse failed, so the flags are not known yet).
fn log_parse_error(msg: &str) {
    let args: Vec<String> = std::env::args().collect();
    let mut log = None;
    let mut json = false;
    for (i, a) in args.iter().enumerate() {
        let a = a.trim_start_matches('-');
        if let Some(v) = a.strip_prefix("log=") {
            log = Some(v.to_string());
        } else if a == "log" {
            log = args.get(i + 1).cloned();
        } else if a == "log-format=json"
            || (a == "log-format" && args.get(i + 1).map(String::as_str) == Some("json"))
        {
            json = true;
        }
    }
    if let Some(path) = log {
        let first = msg
            .lines()
            .next()
            .unwrap_or(msg)
            .trim_start_matches("error: ");
        let line = rtctr::logging::format_line(json, log::Level::Error, first);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Writes to stdout; a closed pipe is an error, not a panic.
fn print(text: &str) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{text}").context("write stdout")
}

/// runc's rule: real root uses /run/rtctr; a user, or root in a user
/// namespace (rootless podman's conmon) unless $USER is root, uses
/// $XDG_RUNTIME_DIR/rtctr.
fn default_root() -> PathBuf {
    let root = nix::unistd::geteuid().is_root();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let user_is_root = std::env::var_os("USER").is_some_and(|u| u == "root");
    match xdg {
        Some(dir) if !root || (rtctr::rootless::in_user_namespace() && !user_is_root) => {
            PathBuf::from(dir).join("rtctr")
        }
        _ if root => PathBuf::from("/run/rtctr"),
        _ => PathBuf::from(format!("/tmp/rtctr-{}", nix::unistd::geteuid())),
    }
}

fn network(cmd: &cli::NetworkCommand) -> Result<()> {
    use cli::NetworkCommand::*;
    match cmd {
        Create {
            name,
            subnet,
            bridge,
            gateway,
            no_masquerade,
        } => {
            rtctr_hooks::network_create(name, subnet, bridge.as_deref(), *gateway, !no_masquerade)?;
        }
        Ls => rtctr_hooks::cli::print_list()?,
        Inspect { name } => rtctr_hooks::cli::print_inspect(name)?,
        Rm { name, force } => rtctr_hooks::network_remove(name, *force)?,
    }
    Ok(())
}

fn layers(cli: &Cli, cmd: &cli::LayersCommand) -> Result<()> {
    let store = cli.layer_store.clone();
    let store = store.unwrap_or_else(|| rtctr::commands::bundle::DEFAULT_STORE.into());
    let out = &mut std::io::stdout().lock();
    match cmd {
        cli::LayersCommand::Ls { format } => {
            let json = match format.as_str() {
                "json" => true,
                "table" => false,
                other => bail!("invalid format {other:?}: use table or json"),
            };
            rtctr::commands::layers::ls(&store, json, out)?
        }
        cli::LayersCommand::Prune { all } => rtctr::commands::layers::prune(&store, *all, out)?,
    }
    Ok(())
}

/// `--version`, or the help when no verb is given.
fn version_or_help(cli: &Cli) -> Result<u8> {
    if cli.version {
        let spec = rtctr::state::OCI_VERSION_MAX;
        print(&format!("rtctr version {}\nspec: {spec}", rtctr::VERSION))?;
    } else {
        use clap::CommandFactory;
        Cli::command().print_help()?;
    }
    Ok(0)
}

/// `--rootless` for create and run: skip the cgroups the caller cannot write.
fn rootless_cgroups(cli: &Cli) -> Result<bool> {
    let flag = rtctr::rootless::parse_flag(cli.rootless.as_deref())?;
    Ok(rtctr::rootless::skip_unwritable_cgroups(flag))
}

/// One verb, one function.
fn dispatch(cli: &Cli) -> Result<u8> {
    let Some(command) = cli.command.as_ref().filter(|_| !cli.version) else {
        return version_or_help(cli);
    };
    let store = Store::new(cli.root.clone().unwrap_or_else(default_root));
    match command {
        Command::Create(a) => {
            let mut opts = a.options(cli.systemd_cgroup);
            opts.rootless_cgroups = rootless_cgroups(cli)?;
            rtctr::commands::create::create(&store, &opts)?;
        }
        Command::Start { id } => rtctr::commands::start::start(&store, id)?,
        Command::State { id } => print(&rtctr::commands::state::state(&store, id)?)?,
        Command::Kill { all, id, signal } => {
            rtctr::commands::kill::kill(&store, id, signal.as_deref().unwrap_or("SIGTERM"), *all)?
        }
        Command::Delete { force, id } => rtctr::commands::delete::delete(&store, id, *force)?,
        Command::Run(a) => {
            let mut opts = a.options(cli.systemd_cgroup);
            opts.create.rootless_cgroups = rootless_cgroups(cli)?;
            let code = rtctr::commands::run::run(&store, &opts)?;
            return Ok(code.clamp(0, 255) as u8);
        }
        Command::List { format, quiet } => {
            let json = match format.as_str() {
                "json" => true,
                "table" => false,
                other => bail!("invalid format {other:?}: use table or json"),
            };
            rtctr::commands::list::list(&store, json, *quiet, &mut std::io::stdout().lock())?;
        }
        Command::Spec { bundle, .. } => {
            // runc's `spec --rootless` (here the global flag, given after the verb).
            let rootless = rtctr::rootless::parse_flag(cli.rootless.as_deref())? == Some(true);
            rtctr::commands::spec::spec(bundle.as_deref().unwrap_or(Path::new(".")), rootless)?
        }
        Command::Network(n) => network(n)?,
        Command::Layers(l) => layers(cli, l)?,
        Command::Bundle { image, bundle } => {
            let store = cli.layer_store.clone();
            let opts = rtctr::commands::bundle::BundleOptions {
                image: image.clone(),
                bundle: bundle.clone(),
                store: store.unwrap_or_else(|| rtctr::commands::bundle::DEFAULT_STORE.into()),
            };
            rtctr::commands::bundle::bundle(&opts)?;
        }
        Command::Exec(a) => {
            let code = rtctr::commands::exec::exec(&store, &a.options())?;
            return Ok(code.clamp(0, 255) as u8);
        }
        Command::Features => print(&serde_json::to_string_pretty(
            &rtctr::commands::features::features(),
        )?)?,
        Command::Restore(a) => {
            let mut opts = a.options(cli.systemd_cgroup)?;
            opts.create.rootless_cgroups = rootless_cgroups(cli)?;
            let code = rtctr::commands::restore::restore(&store, &opts)?;
            return Ok(code.clamp(0, 255) as u8);
        }
        Command::Checkpoint(a) => rtctr::commands::checkpoint::checkpoint(&store, &a.options()?)?,
        Command::Update(a) => rtctr::commands::update::update(&store, &a.options()?)?,
        Command::Pause { id } => rtctr::commands::pause::pause(&store, id)?,
        Command::Resume { id } => rtctr::commands::pause::resume(&store, id)?,
        Command::Ps(a) => {
            rtctr::commands::ps::ps(&store, &a.options()?, &mut std::io::stdout().lock())?
        }
        Command::Events(a) => {
            rtctr::commands::events::events(&store, &a.options()?, &mut std::io::stdout().lock())?
        }
    }
    Ok(0)
}
