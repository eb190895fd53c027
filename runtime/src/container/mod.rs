//! The steps that build a container and its processes.
//!
//! - [`parent`]: `create`'s runtime side, the parent recipe; [`init`]: the
//!   container side (init, exec'd process, intermediate process); they
//!   talk over [`sync`]. [`tenant`]: the parent half of `exec`.
//! - [`process`]: the one path from "inside the container" to execve,
//!   taken by the init and by `exec`.
//! - [`namespaces`], [`rootfs`], [`mounts`], [`devices`], [`resolve`]
//!   (paths inside the root), [`capabilities`], [`seccomp`], [`lsm`],
//!   [`terminal`], [`hooks`], [`network`], [`proc_files`], [`rootless`]
//!   (what differs for a caller without root), [`user_net`] (its network).
//! - [`lifecycle`] (start, stop, destroy), [`pidfd`] (liveness, signals),
//!   [`supervise`] (a foreground process: signals, reaping, terminal).

pub mod capabilities;
pub mod checkpoint;
pub mod criu;
pub mod devices;
pub mod hooks;
pub mod idmap;
pub mod init;
pub mod lifecycle;
pub mod lsm;
pub mod mounts;
pub mod namespaces;
pub mod network;
pub mod parent;
pub mod pidfd;
pub mod plan;
pub mod proc_files;
pub mod process;
pub mod resolve;
pub mod restore;
pub mod rootfs;
pub mod rootless;
pub mod sched;
pub mod seccomp;
pub mod supervise;
pub mod sync;
pub mod tenant;
pub mod terminal;
pub mod user_net;
