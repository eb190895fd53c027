//! The steps that build a container and its processes.

pub mod capabilities;
pub mod devices;
pub mod hooks;
pub mod init;
pub mod lsm;
pub mod mounts;
pub mod namespaces;
pub mod parent;
pub mod proc_files;
pub mod process;
pub mod resolve;
pub mod rootfs;
pub mod seccomp;
pub mod sync;
pub mod terminal;
