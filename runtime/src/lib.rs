//! rtctr: an OCI runtime.

pub mod capabilities;
pub mod seccomp;
