//! rtctr: an OCI container runtime with runc's command line.
//!
//! Follow a container from `create` to `exec` top-down:
//! - [`cli`]: the command line; `main.rs` dispatches one verb to one function.
//! - [`spec`]: `config.json` parsed (errors name the JSON path) and checked.
//! - [`state`]: `<root>/<id>/` — locked, atomically written state, derived status.
//! - [`create`]: the recipe. It forks an intermediate process that joins and
//!   unshares [`namespaces`] and forks the container init, which builds the
//!   root filesystem ([`rootfs`], [`mounts`], [`devices`], with paths
//!   resolved inside the root by [`resolve`]), sets up the [`process`], and
//!   waits on the exec fifo. Parent and children talk over [`create::sync`].
//! - [`start`], [`kill`], [`delete`], [`run`], [`list`]: the other verbs.
//! - [`update`], [`pause`] (and resume), [`ps`], [`events`]: the verbs that
//!   work on a container's cgroup through `rtctr-cgroups`.
//! - [`hooks`]: OCI hooks. [`logging`]: runc-shaped log lines.
//! - [`capabilities`] and [`seccomp`] (OCI profile → one BPF program).
//! - `sys` (and `seccomp::kernel`): the only `unsafe` code, thin syscall wrappers.

#![deny(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod container;
pub mod logging;
pub mod spec;
pub mod state;
#[allow(unsafe_code)]
mod sys;

/// rtctr's version line, in the shape go-runc parses (`<name> version X`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
