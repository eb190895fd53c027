//! rtctr: an OCI runtime.
