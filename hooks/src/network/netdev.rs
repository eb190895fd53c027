//! `linux.netDevices` (runtime-spec 1.3): a host network interface moved
//! into a container's network namespace, renamed there, with its permanent
//! global addresses, and set up. The kernel drops a link's addresses when
//! it changes namespace, so they are read before and added again after.
//! Nothing moves it back: as the spec says, when the namespace goes the
//! kernel returns physical devices to the initial namespace and destroys
//! virtual ones.

use std::fs::File;
use std::io;
use std::net::IpAddr;

use super::netlink::Netlink;
use crate::error::{NetError, Result};

/// Moves the host link `host` into `ns` as `name` (`%d` in it lets the
/// kernel pick a free number), with its addresses, and sets it up.
pub fn move_in(host: &str, name: &str, ns: &File) -> Result<()> {
    let mut nl = Netlink::open().map_err(|e| NetError::netlink("opening socket", host, e))?;
    let index = index_of(&mut nl, host)?;
    let addresses: Vec<(IpAddr, u8)> = nl
        .addresses(index)
        .map_err(|e| NetError::netlink("listing addresses of", host, e))?;
    nl.move_link(index, ns)
        .map_err(|e| NetError::netlink("moving into the container", host, e))?;
    let mut nl =
        Netlink::open_in(ns).map_err(|e| NetError::netlink("opening socket in", name, e))?;
    let index = index_of(&mut nl, host)?;
    if name != host {
        nl.rename(index, name).map_err(|e| {
            NetError::netlink("renaming in the container", format!("{host} to {name}"), e)
        })?;
    }
    for (ip, prefix) in addresses {
        nl.add_ip(index, ip, prefix).map_err(|e| {
            NetError::netlink("adding an address to", format!("{name} ({ip}/{prefix})"), e)
        })?;
    }
    nl.set_up(index, None)
        .map_err(|e| NetError::netlink("setting up", name, e))
}

/// Whether a link of that name exists in the caller's namespace.
pub fn exists(name: &str) -> Result<bool> {
    let mut nl = Netlink::open().map_err(|e| NetError::netlink("opening socket", name, e))?;
    let index = nl
        .link_index(name)
        .map_err(|e| NetError::netlink("looking up", name, e))?;
    Ok(index.is_some())
}

fn index_of(nl: &mut Netlink, name: &str) -> Result<u32> {
    nl.link_index(name)
        .map_err(|e| NetError::netlink("looking up", name, e))?
        .ok_or_else(|| {
            NetError::netlink(
                "looking up",
                name,
                io::Error::from_raw_os_error(libc::ENODEV),
            )
        })
}
