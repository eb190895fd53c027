//! rtctr: an OCI container runtime with runc's command line.
//!
//! Three parts, each a directory:
//! - [`commands`]: the verbs, one file each (`create`, `start`, `exec`, ...).
//!   A verb opens the container's [`state`], checks its status and calls
//!   into `container`; no verb calls another. The clap command line lives in
//!   the binary (`main.rs`, `cli.rs`) and maps flags to the verbs' plain
//!   option structs.
//! - `container`: the steps that build a container. Follow `create`
//!   top-down: `spec` loads and validates `config.json` into a `Config`;
//!   `container::parent` plans (everything that can fail before anything
//!   exists), then runs the parent recipe: state dir, cgroup, clone of the
//!   init into its pid namespace (it enters cgroup and the other
//!   namespaces itself; with a user or time namespace an intermediate
//!   process does and forks it), id maps, network, createRuntime hooks,
//!   "created". The child recipe is
//!   `container::init::run_init`: root filesystem (`rootfs`, `mounts`,
//!   `devices`, paths resolved inside the root by `resolve`), terminal,
//!   hooks, names, sysctls, masked paths, pivot, then `container::process`
//!   — the one path to execve that `exec`'d processes take too — and the
//!   wait on the exec fifo. Parent and children talk over `container::sync`.
//! - `image`: OCI images on disk (`rtctr bundle`): the layout, the layer
//!   store, safe unpacking, and the overlay `create` mounts as the root.
//! - `sys`: the only `unsafe` code, thin syscall wrappers (with
//!   `seccomp::kernel`).
//!
//! [`state`]: `<root>/<id>/` — locked, atomically written state, derived
//! status. [`logging`]: runc-shaped log lines.

#![deny(unsafe_code)]

pub mod commands;
mod container;
mod image;
pub mod logging;
pub mod spec;
pub mod state;
#[allow(unsafe_code)]
mod sys;

/// What differs for a caller without root; `main` decides `--rootless` with it.
pub use container::rootless;
/// The seccomp compiler, public for `runtime/benches`.
pub use container::seccomp;

/// rtctr's version line, in the shape go-runc parses (`<name> version X`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
