//! The only place with `unsafe`: thin wrappers over syscalls that nix and
//! rustix do not cover safely. Each wrapper is named after its syscall.

pub mod mount;
pub mod net;
pub mod process;
