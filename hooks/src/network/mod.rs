//! Networks, attachment ([`Networks::setup`]) and [`Networks::teardown`].

pub mod addr;
pub mod cli;
pub mod files;
// No unsafe code: nftables rules are encoded by `nft` (our own nf_tables netlink
// messages, no libnftnl/libmnl) and links, addresses and routes by rtnetlink's builders.
pub mod nat;
pub mod netdev;
mod netlink;
mod nft;
pub mod request;
pub mod store;

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};
use addr::{fnv1a, host_veth_name, mac_for, mac_string, valid_ifname, Subnet};
use netlink::Netlink;
pub use request::{Netns, Request};
pub use store::{Lease, Network, PortMapping, Proto, Store};

/// Name of the default network, created on first use.
pub const DEFAULT_NETWORK: &str = "rtctr";
/// Bridge of the default network.
pub const DEFAULT_BRIDGE: &str = "rtctr0";
/// Subnet of the default network (podman uses 10.88.0.0/16).
pub const DEFAULT_SUBNET: &str = "10.89.0.0/16";
/// Interface name of the container end of the veth pair.
pub const CONTAINER_IFNAME: &str = "eth0";

const LOOPBACK_IFINDEX: u32 = 1;

/// The result of attaching a container (the runtime keeps it in its state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Network name.
    pub network: String,
    /// Container id.
    pub container: String,
    /// Container address.
    pub ip: Ipv4Addr,
    /// Prefix length of the subnet.
    pub prefix: u8,
    /// Default gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// MAC of the container's `eth0`.
    pub mac: String,
    /// Host-side veth name.
    pub host_veth: String,
    /// Bridge name.
    pub bridge: String,
    /// Interface name inside the container.
    #[serde(default = "default_ifname")]
    pub ifname: String,
    /// Problems found that may break connectivity (e.g. another table's forward chain with
    /// policy drop); checked when the bridge is created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn default_ifname() -> String {
    CONTAINER_IFNAME.into()
}

/// Networks kept in one state directory.
#[derive(Clone, Debug)]
pub struct Networks {
    dir: PathBuf,
}

/// Networks in the directory from `RTCTR_NETWORK_DIR` or the default directory.
pub fn networks() -> Networks {
    Networks::new(Store::default_dir())
}

/// `network_create` on the default state directory; see [`Networks::create`].
pub fn network_create(
    name: &str,
    subnet: &str,
    bridge: Option<&str>,
    gateway: Option<Ipv4Addr>,
    masquerade: bool,
) -> Result<Network> {
    networks().create(name, subnet, bridge, gateway, masquerade)
}

/// All networks (the default one is created if missing).
pub fn network_list() -> Result<Vec<Network>> {
    networks().list()
}

/// One network with its leases.
pub fn network_inspect(name: &str) -> Result<Network> {
    networks().inspect(name)
}

/// Remove a network; see [`Networks::remove`].
pub fn network_remove(name: &str, force: bool) -> Result<()> {
    networks().remove(name, force)
}

/// Attach a container; see [`Networks::setup`].
pub fn setup(req: &Request) -> Result<Attachment> {
    networks().setup(req)
}

/// Detach a container; see [`Networks::teardown`].
pub fn teardown(container: &str, network: Option<&str>) -> Result<()> {
    networks().teardown(container, network)
}

/// Detach a container whose processes are all gone; see [`Veth::GoesWithNetns`].
pub fn release(container: &str, network: Option<&str>) -> Result<()> {
    networks().release(container, network)
}

/// What a teardown does with the container's host veth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Veth {
    /// Delete it (RTM_DELLINK): the container's network namespace may live on (a CNI DEL, a
    /// hook, a failed setup).
    Delete,
    /// Leave it to the kernel: the container's processes are dead, so its network namespace
    /// is being destroyed, and the kernel unregisters the pair with it, batched, after the
    /// command returns. Deleting it here cost a delete 10–20 ms of RCU grace periods, or
    /// ~1 ms waiting for the RTNL lock the namespace's cleanup holds. Should the namespace be
    /// kept alive from outside (a bind mount of its ns file), the veth stays until it goes.
    GoesWithNetns,
}

fn invalid(what: &'static str, value: impl ToString, reason: impl ToString) -> NetError {
    NetError::Invalid {
        what,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Build a network's configuration without touching anything (pure).
pub fn plan_network(
    name: &str,
    subnet: &str,
    bridge: Option<&str>,
    gateway: Option<Ipv4Addr>,
    masquerade: bool,
    existing: &[Network],
) -> Result<Network> {
    if !valid_name(name) {
        return Err(invalid(
            "network name",
            name,
            "use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit",
        ));
    }
    if existing.iter().any(|n| n.name == name) {
        return Err(NetError::Exists(name.into()));
    }
    let subnet: Subnet = subnet.parse().map_err(|e| invalid("subnet", subnet, e))?;
    if let Some(o) = existing.iter().find(|n| n.subnet.overlaps(&subnet)) {
        return Err(invalid(
            "subnet",
            subnet,
            format!("overlaps network {:?} ({})", o.name, o.subnet),
        ));
    }
    let gateway = gateway.unwrap_or_else(|| Ipv4Addr::from(u32::from(subnet.addr) + 1));
    if !subnet.contains(gateway) || gateway == subnet.addr || gateway == subnet.broadcast() {
        return Err(invalid(
            "gateway",
            gateway,
            format!("not a host address of {subnet}"),
        ));
    }
    let bridge = match bridge {
        Some(b) => b.to_string(),
        None if name == DEFAULT_NETWORK => DEFAULT_BRIDGE.to_string(),
        None if name.len() <= 9 => format!("rtctr-{name}"),
        None => format!("rb{:010x}", fnv1a(name) & 0xff_ffff_ffff),
    };
    if !valid_ifname(&bridge) {
        return Err(invalid(
            "bridge name",
            &bridge,
            "must be 1-15 characters, no '/', ':' or spaces",
        ));
    }
    if let Some(o) = existing.iter().find(|n| n.bridge == bridge) {
        return Err(invalid(
            "bridge name",
            &bridge,
            format!("used by network {:?}", o.name),
        ));
    }
    Ok(Network {
        name: name.into(),
        subnet,
        bridge,
        gateway,
        masquerade,
        leases: vec![],
    })
}

fn open_netns(ns: &Netns) -> Result<(File, PathBuf)> {
    let path = match ns {
        Netns::Path(p) => p.clone(),
        Netns::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
    };
    let err = |source| NetError::Netns {
        path: path.clone(),
        source,
    };
    let f = File::open(&path).map_err(err)?;
    // A container without its own netns (pid in the host's netns) must not get an `eth0`
    // and a default route in the host's namespace.
    let own = std::fs::metadata("/proc/thread-self/ns/net").map_err(err)?;
    let target = f.metadata().map_err(err)?;
    if (own.dev(), own.ino()) == (target.dev(), target.ino()) {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is the caller's own network namespace (does the container have a network namespace?)",
        )));
    }
    Ok((f, path))
}

fn enable_ip_forward() -> Result<()> {
    let p = Path::new("/proc/sys/net/ipv4/ip_forward");
    match std::fs::read(p) {
        Ok(v) if v.first() == Some(&b'1') => Ok(()),
        _ => std::fs::write(p, b"1").map_err(|e| NetError::io("writing", p, e)),
    }
}

/// Bridge exists, has the gateway address and is up; returns its index and whether it was
/// created now.
fn ensure_bridge(nl: &mut Netlink, net: &Network) -> Result<(u32, bool)> {
    let br = &net.bridge;
    let created = nl
        .add_bridge(br)
        .map_err(|e| NetError::netlink("creating bridge", br, e))?;
    let idx = nl
        .link_index(br)
        .map_err(|e| NetError::netlink("looking up", br, e))?
        .ok_or_else(|| {
            NetError::netlink("looking up", br, io::Error::from_raw_os_error(libc::ENODEV))
        })?;
    nl.add_address(idx, net.gateway, net.subnet.prefix)
        .map_err(|e| NetError::netlink("adding gateway address to", br, e))?;
    nl.set_up(idx, None)
        .map_err(|e| NetError::netlink("setting up", br, e))?;
    Ok((idx, created))
}

/// Container side: `eth0` address and up, `lo` up, default route.
fn configure_container(
    ns: &File,
    nspath: &Path,
    ifname: &str,
    ip: Ipv4Addr,
    net: &Network,
) -> Result<()> {
    let obj = |what: &str| format!("{what} in {}", nspath.display());
    let mut nl = Netlink::open_in(ns).map_err(|source| NetError::Netns {
        path: nspath.to_path_buf(),
        source,
    })?;
    let eth = nl
        .link_index(ifname)
        .map_err(|e| NetError::netlink("looking up", obj(ifname), e))?
        .ok_or_else(|| {
            NetError::netlink(
                "looking up",
                obj(ifname),
                io::Error::from_raw_os_error(libc::ENODEV),
            )
        })?;
    nl.add_address(eth, ip, net.subnet.prefix)
        .map_err(|e| NetError::netlink("adding address to", obj(ifname), e))?;
    nl.set_up(eth, None)
        .map_err(|e| NetError::netlink("setting up", obj(ifname), e))?;
    // The loopback device is always ifindex 1 in a network namespace.
    nl.set_up(LOOPBACK_IFINDEX, None)
        .map_err(|e| NetError::netlink("setting up", obj("lo"), e))?;
    nl.add_default_route(eth, net.gateway).map_err(|e| {
        NetError::netlink(
            "adding default route via",
            format!("{} {}", net.gateway, obj(ifname)),
            e,
        )
    })
}

/// Run `undo` after `err`; report both if the undo fails too.
/// Saves a new network (the store locked, `all` the others) and rebuilds
/// the NAT table with it; a failing table takes the network back out.
fn add_network(
    store: &Store,
    mut all: Vec<Network>,
    name: &str,
    subnet: &str,
    bridge: Option<&str>,
    gateway: Option<Ipv4Addr>,
    masquerade: bool,
) -> Result<Network> {
    let net = plan_network(name, subnet, bridge, gateway, masquerade, &all)?;
    store.save(&net)?;
    all.push(net.clone());
    if let Err(e) = nat::apply(&nat::plan(&all)) {
        return Err(rolled_back(e, || {
            store.delete(name).map_err(|e| e.to_string())
        }));
    }
    Ok(net)
}

fn rolled_back(err: NetError, undo: impl FnOnce() -> std::result::Result<(), String>) -> NetError {
    match undo() {
        Ok(()) => err,
        Err(u) => NetError::Rollback {
            failed: Box::new(err),
            undo: u,
        },
    }
}

impl Networks {
    /// Networks kept in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Networks {
        Networks { dir: dir.into() }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> Result<Store> {
        Store::lock(&self.dir)
    }

    fn load_or_default(&self, store: &Store, name: &str) -> Result<Network> {
        if let Some(n) = store.load(name)? {
            return Ok(n);
        }
        if name != DEFAULT_NETWORK {
            return Err(NetError::NotFound(name.into()));
        }
        let net = plan_network(name, DEFAULT_SUBNET, None, None, true, &store.load_all()?)?;
        store.save(&net)?;
        Ok(net)
    }

    /// Create a network: `subnet` in CIDR form; `bridge` defaults to `rtctr-<name>` (or a
    /// hash when too long); `gateway` to the first host address. The bridge is created when
    /// the first container attaches.
    pub fn create(
        &self,
        name: &str,
        subnet: &str,
        bridge: Option<&str>,
        gateway: Option<Ipv4Addr>,
        masquerade: bool,
    ) -> Result<Network> {
        let store = self.lock()?;
        let all = store.load_all()?;
        add_network(&store, all, name, subnet, bridge, gateway, masquerade)
    }

    /// The network `name`, created as [`Networks::create`] would when it does not exist;
    /// an existing one must have the same subnet, bridge, gateway and masquerade setting
    /// (the error names the first that differs). Used by the CNI plugin, whose network
    /// config describes the network on every call.
    pub fn ensure(
        &self,
        name: &str,
        subnet: &str,
        bridge: Option<&str>,
        gateway: Option<Ipv4Addr>,
        masquerade: bool,
    ) -> Result<Network> {
        let store = self.lock()?;
        let all = store.load_all()?;
        let Some(have) = all.iter().find(|n| n.name == name) else {
            return add_network(&store, all, name, subnet, bridge, gateway, masquerade);
        };
        let want = plan_network(name, subnet, bridge, gateway, masquerade, &[])?;
        let differs = |what: &'static str, want: String, have: String| {
            invalid(
                what,
                want,
                format!("network {name:?} exists with {what} {have}"),
            )
        };
        if want.subnet != have.subnet {
            return Err(differs(
                "subnet",
                want.subnet.to_string(),
                have.subnet.to_string(),
            ));
        }
        if bridge.is_some() && want.bridge != have.bridge {
            return Err(differs("bridge name", want.bridge, have.bridge.clone()));
        }
        if want.gateway != have.gateway {
            return Err(differs(
                "gateway",
                want.gateway.to_string(),
                have.gateway.to_string(),
            ));
        }
        if want.masquerade != have.masquerade {
            return Err(differs(
                "masquerade setting",
                want.masquerade.to_string(),
                have.masquerade.to_string(),
            ));
        }
        Ok(have.clone())
    }

    /// Check an attachment made by [`Networks::setup`]: the lease of `container` on
    /// `network`, its host veth, and inside `netns` the interface `ifname` holding the
    /// leased address. Returns the lease.
    pub fn check(
        &self,
        container: &str,
        network: &str,
        netns: &Netns,
        ifname: &str,
    ) -> Result<Lease> {
        let store = self.lock()?;
        let net = store
            .load(network)?
            .ok_or_else(|| NetError::NotFound(network.into()))?;
        let lease = net
            .lease(container)
            .cloned()
            .ok_or_else(|| NetError::NotAttached {
                container: container.into(),
                name: network.into(),
            })?;
        let missing = |op, object: String| {
            NetError::netlink(op, object, io::Error::from_raw_os_error(libc::ENODEV))
        };
        let mut nl =
            Netlink::open().map_err(|e| NetError::netlink("opening socket", "route", e))?;
        nl.link_index(&lease.veth)
            .map_err(|e| NetError::netlink("looking up", &lease.veth, e))?
            .ok_or_else(|| missing("looking up host veth", lease.veth.clone()))?;
        let (ns, nspath) = open_netns(netns)?;
        let obj = format!("{ifname} in {}", nspath.display());
        let mut nl = Netlink::open_in(&ns).map_err(|source| NetError::Netns {
            path: nspath.clone(),
            source,
        })?;
        let idx = nl
            .link_index(ifname)
            .map_err(|e| NetError::netlink("looking up", &obj, e))?
            .ok_or_else(|| missing("looking up", obj.clone()))?;
        let addrs = nl
            .addresses(idx)
            .map_err(|e| NetError::netlink("listing addresses of", &obj, e))?;
        if !addrs.contains(&(std::net::IpAddr::V4(lease.ip), net.subnet.prefix)) {
            return Err(NetError::Address {
                name: network.into(),
                ip: lease.ip,
                reason: format!("leased to {container:?} but not on {obj} (it has {addrs:?})"),
            });
        }
        Ok(lease)
    }

    /// All networks, sorted by name; the default network is created if missing.
    pub fn list(&self) -> Result<Vec<Network>> {
        let store = self.lock()?;
        self.load_or_default(&store, DEFAULT_NETWORK)?;
        store.load_all()
    }

    /// One network, with its leases.
    pub fn inspect(&self, name: &str) -> Result<Network> {
        let store = self.lock()?;
        self.load_or_default(&store, name)
    }

    /// Remove a network: refused while containers are attached unless `force` (their
    /// veths are then deleted). Deletes the bridge and the network's nftables rules (and the
    /// table when no network is left).
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let store = self.lock()?;
        let net = store
            .load(name)?
            .ok_or_else(|| NetError::NotFound(name.into()))?;
        if !net.leases.is_empty() && !force {
            return Err(NetError::InUse {
                name: name.into(),
                count: net.leases.len(),
            });
        }
        let mut nl =
            Netlink::open().map_err(|e| NetError::netlink("opening socket", "route", e))?;
        for l in &net.leases {
            nl.del_link(&l.veth)
                .map_err(|e| NetError::netlink("deleting veth", &l.veth, e))?;
        }
        nl.del_link(&net.bridge)
            .map_err(|e| NetError::netlink("deleting bridge", &net.bridge, e))?;
        store.delete(name)?;
        nat::apply(&nat::plan(&store.load_all()?))
    }

    /// Attach a container to a network: see the crate docs for the steps. On failure
    /// everything done so far (veth, lease, rules) is undone.
    pub fn setup(&self, req: &Request) -> Result<Attachment> {
        let store = self.lock()?;
        self.load_or_default(&store, &req.network)?;
        let mut all = store.load_all()?;
        let rules_before = nat::plan(&all);
        let mut nl =
            Netlink::open().map_err(|e| NetError::netlink("opening socket", "route", e))?;
        let (ni, ip) = allocate(&store, &mut nl, &mut all, req)?;
        let mut net = all[ni].clone();
        let (ns, nspath) = open_netns(&req.netns)?;
        let veth = host_veth_name(&req.container);
        let mac = mac_for(ip);
        let (br, created) = ensure_bridge(&mut nl, &net)?;
        let warnings = if created {
            forward_warnings(&net)
        } else {
            vec![]
        };
        create_veth(&mut nl, &all, &veth, &req.ifname, &ns, &nspath, mac)?;
        let undo_veth = |nl: &mut Netlink| {
            nl.del_link(&veth)
                .map(drop)
                .map_err(|e| format!("deleting veth {veth}: {e}"))
        };
        let attached = (|| {
            let vi = nl
                .link_index(&veth)
                .map_err(|e| NetError::netlink("looking up", &veth, e))?
                .ok_or_else(|| {
                    NetError::netlink(
                        "looking up",
                        &veth,
                        io::Error::from_raw_os_error(libc::ENODEV),
                    )
                })?;
            nl.set_up(vi, Some(br))
                .map_err(|e| NetError::netlink("attaching to bridge and setting up", &veth, e))?;
            configure_container(&ns, &nspath, &req.ifname, ip, &net)?;
            enable_ip_forward()
        })();
        if let Err(e) = attached {
            return Err(rolled_back(e, || undo_veth(&mut nl)));
        }
        net.leases.push(Lease {
            container: req.container.clone(),
            ip,
            veth: veth.clone(),
            ports: req.ports.clone(),
        });
        if let Err(e) = store.save(&net) {
            return Err(rolled_back(e, || undo_veth(&mut nl)));
        }
        all[ni] = net.clone();
        if let Err(e) = nat::sync(&rules_before, &nat::plan(&all)) {
            return Err(rolled_back(e, || {
                net.leases.retain(|l| l.container != req.container);
                let r1 = store.save(&net).map_err(|e| e.to_string());
                r1.and(undo_veth(&mut nl))
            }));
        }
        Ok(Attachment {
            network: net.name.clone(),
            container: req.container.clone(),
            ip,
            prefix: net.subnet.prefix,
            gateway: net.gateway,
            mac: mac_string(mac),
            host_veth: veth,
            bridge: net.bridge.clone(),
            ifname: req.ifname.clone(),
            warnings,
        })
    }

    /// Detach a container: delete its veth (if still there), release its lease, and remove
    /// its DNAT rules. `network: None` looks in every network. Nothing to do is not an error.
    /// The bridge stays (see [`Networks::remove`]).
    pub fn teardown(&self, container: &str, network: Option<&str>) -> Result<()> {
        self.detach(container, network, Veth::Delete)
    }

    /// [`Networks::teardown`] of a container whose processes are all gone: its veth is left
    /// to the kernel ([`Veth::GoesWithNetns`]).
    pub fn release(&self, container: &str, network: Option<&str>) -> Result<()> {
        self.detach(container, network, Veth::GoesWithNetns)
    }

    fn detach(&self, container: &str, network: Option<&str>, veth: Veth) -> Result<()> {
        let store = self.lock()?;
        let mut all = store.load_all()?;
        let rules_before = nat::plan(&all);
        let mut nl =
            Netlink::open().map_err(|e| NetError::netlink("opening socket", "route", e))?;
        let mut changed = Vec::new();
        for (i, net) in all
            .iter_mut()
            .enumerate()
            .filter(|(_, n)| network.is_none_or(|w| w == n.name))
        {
            let Some(lease) = net.lease(container).cloned() else {
                continue;
            };
            if veth == Veth::Delete {
                nl.del_link(&lease.veth)
                    .map_err(|e| NetError::netlink("deleting veth", &lease.veth, e))?;
            }
            net.leases.retain(|l| l.container != container);
            changed.push(i);
        }
        if changed.is_empty() {
            // A crash between creating the veth and saving the lease leaves a veth only;
            // delete it unless a lease (on a network not named here) owns it.
            let name = host_veth_name(container);
            if veth == Veth::Delete && !all.iter().any(|n| n.leases.iter().any(|l| l.veth == name))
            {
                nl.del_link(&name)
                    .map_err(|e| NetError::netlink("deleting veth", &name, e))?;
            }
            return Ok(());
        }
        // Rules first, the lease last: a teardown killed in between still
        // finds the lease next time and removes the rules then (saving the
        // lease first left DNAT rules that nothing would ever remove).
        nat::sync(&rules_before, &nat::plan(&all))?;
        for i in changed {
            store.save(&all[i])?;
        }
        Ok(())
    }
}

/// Check the request against all leases (releasing stale ones in its way) and pick its
/// address; returns the index of its network in `all` and the address.
fn allocate(
    store: &Store,
    nl: &mut Netlink,
    all: &mut [Network],
    req: &Request,
) -> Result<(usize, Ipv4Addr)> {
    let conflicts = |l: &Lease, n: &Network| {
        l.container == req.container
            || (n.name == req.network && Some(l.ip) == req.ip)
            || l.ports.iter().any(|q| {
                req.ports
                    .iter()
                    .any(|p| p.host_port == q.host_port && p.proto == q.proto)
            })
    };
    reclaim_stale(store, nl, all, conflicts)?;
    check_free(all, req)?;
    let ni = all
        .iter()
        .position(|n| n.name == req.network)
        .ok_or_else(|| NetError::NotFound(req.network.clone()))?;
    let ip = match all[ni].allocate(req.ip) {
        Err(NetError::Exhausted { .. }) => {
            reclaim_stale(store, nl, all, |_, n| n.name == req.network)?;
            all[ni].allocate(req.ip)?
        }
        r => r?,
    };
    Ok((ni, ip))
}

/// Warnings about other tables that will drop the bridge's forwarded traffic (best effort:
/// a failed check does not fail the setup).
fn forward_warnings(net: &Network) -> Vec<String> {
    let drops = nat::foreign_forward_drops().unwrap_or_default();
    drops
        .into_iter()
        .map(|c| {
            let w = format!(
                "chain {c} drops forwarded packets by policy; traffic of bridge {} to other \
                 networks will be dropped unless that chain accepts it",
                net.bridge
            );
            log::warn!("{w}");
            w
        })
        .collect()
}

/// Create the veth pair, its peer as `eth0` inside the container netns. A host veth of this
/// name that no lease owns is left over from a crashed setup of the same container id: it is
/// deleted and the creation retried once.
fn create_veth(
    nl: &mut Netlink,
    all: &[Network],
    veth: &str,
    ifname: &str,
    ns: &File,
    nspath: &Path,
    mac: [u8; 6],
) -> Result<()> {
    let err = |e| {
        NetError::netlink(
            "creating veth pair",
            format!("{veth} <-> {ifname} in {}", nspath.display()),
            e,
        )
    };
    match nl.add_veth_into(veth, ifname, ns, mac) {
        Err(e) if netlink::errno(&e) == Some(libc::EEXIST) => {
            let owned = all.iter().any(|n| n.leases.iter().any(|l| l.veth == veth));
            if owned || !nl.del_link(veth).unwrap_or(false) {
                return Err(err(e));
            }
            log::info!("deleted orphan veth {veth}");
            nl.add_veth_into(veth, ifname, ns, mac).map_err(err)
        }
        r => r.map_err(err),
    }
}

/// Release the leases picked by `pick` whose host veth no longer exists: their container
/// died without a teardown and the kernel removed the veth pair with its netns. Only leases
/// in the way of a setup are checked (one netlink round trip each), and all of a network's
/// leases when its pool runs out.
fn reclaim_stale(
    store: &Store,
    nl: &mut Netlink,
    all: &mut [Network],
    pick: impl Fn(&Lease, &Network) -> bool,
) -> Result<()> {
    for n in all.iter_mut() {
        let mut stale = Vec::new();
        for l in n.leases.iter().filter(|l| pick(l, n)) {
            let gone = nl
                .link_index(&l.veth)
                .map_err(|e| NetError::netlink("looking up", &l.veth, e))?
                .is_none();
            if gone {
                stale.push(l.container.clone());
            }
        }
        if !stale.is_empty() {
            log::info!("network {}: releasing stale leases of {stale:?}", n.name);
            n.leases.retain(|l| !stale.contains(&l.container));
            store.save(n)?;
        }
    }
    Ok(())
}

/// The container is not attached anywhere and its host ports are free.
fn check_free(all: &[Network], req: &Request) -> Result<()> {
    if let Some(n) = all.iter().find(|n| n.lease(&req.container).is_some()) {
        return Err(NetError::AlreadyAttached {
            container: req.container.clone(),
            name: n.name.clone(),
        });
    }
    for p in &req.ports {
        for n in all {
            for l in &n.leases {
                if l.ports
                    .iter()
                    .any(|q| q.host_port == p.host_port && q.proto == p.proto)
                {
                    return Err(NetError::PortTaken {
                        port: p.host_port,
                        proto: p.proto.as_str().into(),
                        holder: l.container.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_network_validates() {
        let a = plan_network("web", "10.201.0.0/24", None, None, true, &[]).unwrap();
        assert_eq!(a.bridge, "rtctr-web");
        assert_eq!(a.gateway, Ipv4Addr::new(10, 201, 0, 1));
        let d = plan_network(DEFAULT_NETWORK, DEFAULT_SUBNET, None, None, true, &[]).unwrap();
        assert_eq!(d.bridge, DEFAULT_BRIDGE);
        let long = plan_network(
            "a-very-long-network-name",
            "10.202.0.0/24",
            None,
            None,
            true,
            &[],
        )
        .unwrap();
        assert!(long.bridge.len() <= 15 && long.bridge.starts_with("rb"));
        let existing = [a];
        for (name, subnet, bridge, gw) in [
            ("web", "10.203.0.0/24", None, None),
            ("x", "10.201.0.128/25", None, None),
            ("x", "10.204.0.0/24", Some("rtctr-web"), None),
            ("x", "10.204.0.0/24", Some("much-too-long-bridge"), None),
            ("x", "10.204.0.0/24", None, Some(Ipv4Addr::new(10, 9, 9, 9))),
            (
                "x",
                "10.204.0.0/24",
                None,
                Some(Ipv4Addr::new(10, 204, 0, 255)),
            ),
            ("x", "nonsense", None, None),
            ("bad/name", "10.204.0.0/24", None, None),
            ("", "10.204.0.0/24", None, None),
        ] {
            assert!(
                plan_network(name, subnet, bridge, gw, true, &existing).is_err(),
                "{name} {subnet} {bridge:?} {gw:?}"
            );
        }
    }
}
