//! rtctr's networking: named bridge networks with an address pool, veth attachment of
//! containers, NAT (masquerade and published ports) in one nftables table `inet rtctr`.
//!
//! Flow of [`setup`]: lock the state dir → load (or create the default) network → allocate an
//! address → bridge up with the gateway → veth pair, peer created inside the container netns
//! as `eth0` → container side: address, up, `lo` up, default route → `ip_forward=1` → save the
//! lease → update table `inet rtctr` (rules derived from all leases: append when nothing goes
//! away, else rebuild). A failure undoes the earlier steps. See `hooks/README.md`.

#![deny(unsafe_code)]

pub mod cni;
pub mod error;
pub mod hook;
pub mod network;

pub use error::{NetError, Result};
pub use network::*;
