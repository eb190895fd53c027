//! rtctr's network as a CNI plugin (`rtctr-cni`, CNI spec 1.0.0): the same
//! [`Networks::setup`] / [`Networks::teardown`] as the OCI hook, driven by the CNI protocol.
//!
//! The runtime (containerd's CRI plugin, libcni) runs the binary in its own network namespace
//! with `CNI_COMMAND` (`ADD`, `DEL`, `CHECK`, `VERSION`), `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME` in the environment and the network configuration on stdin:
//!
//! ```json
//! {"cniVersion": "1.0.0", "name": "pods", "type": "rtctr-cni",
//!  "subnet": "10.88.0.0/16", "bridge": "rtcni0", "gateway": "10.88.0.1", "ipMasq": true,
//!  "stateDir": "/var/lib/rtctr/networks", "dns": {"nameservers": ["10.88.0.1"]},
//!  "capabilities": {"portMappings": true}}
//! ```
//!
//! `name` is the rtctr network (created on the first ADD from `subnet`, `bridge`, `gateway`,
//! `ipMasq`; later calls must describe it the same way). Port mappings come from
//! `runtimeConfig.portMappings` (the `portMappings` capability). A result or nothing (DEL)
//! goes to stdout with exit 0; an error goes to stdout as `{cniVersion, code, msg, details}`
//! with exit 1.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::network::addr::valid_ifname;
use crate::network::store::{PortMapping, Proto, Store};
use crate::network::{Attachment, Netns, Networks, Request, CONTAINER_IFNAME};
use crate::NetError;

/// The CNI versions this plugin speaks (their results have the same shape here).
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// CNI's well-known error codes (spec section 5, "Error").
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO: u32 = 5;
    /// Failed to decode content.
    pub const DECODE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// rtctr's own: the network operation failed (netlink, nftables, state).
    pub const NETWORK: u32 = 100;
}

/// A CNI error result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CniError {
    /// The protocol version in use.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// One of [`code`].
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer description.
    pub details: String,
}

impl CniError {
    fn new(code: u32, msg: &str, details: impl Into<String>) -> CniError {
        CniError {
            cni_version: "1.0.0".into(),
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {}): {}", self.msg, self.code, self.details)
    }
}

impl std::error::Error for CniError {}

/// One entry of `runtimeConfig.portMappings`. The keys are the CNI conventions' camelCase;
/// containerd 1.6's go-cni sends the Go field names (`HostPort`, ...), which Go plugins read
/// case-insensitively, so both spellings are accepted.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CniPortMapping {
    /// Port on the host.
    #[serde(rename = "hostPort", alias = "HostPort")]
    pub host_port: u16,
    /// Port in the container.
    #[serde(rename = "containerPort", alias = "ContainerPort")]
    pub container_port: u16,
    /// `tcp` (default) or `udp`.
    #[serde(default, alias = "Protocol")]
    pub protocol: Option<String>,
    /// Host address to bind; only empty, `0.0.0.0` (all of the host's addresses) is supported.
    #[serde(default, rename = "hostIP", alias = "HostIP")]
    pub host_ip: Option<String>,
}

/// `runtimeConfig` (the capabilities the runtime filled in).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    /// The `portMappings` capability.
    #[serde(default)]
    pub port_mappings: Vec<CniPortMapping>,
}

/// The request configuration on stdin.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    /// Protocol version selected by the runtime.
    #[serde(default)]
    pub cni_version: String,
    /// Network name (the rtctr network).
    #[serde(default)]
    pub name: String,
    /// Plugin type (the binary's name).
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Subnet in CIDR form (needed by ADD when the network does not exist yet).
    #[serde(default)]
    pub subnet: Option<String>,
    /// Bridge name.
    #[serde(default)]
    pub bridge: Option<String>,
    /// Gateway (the bridge's address).
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// Masquerade traffic leaving the subnet.
    #[serde(default)]
    pub ip_masq: bool,
    /// rtctr's network state directory (default `$RTCTR_NETWORK_DIR` or
    /// `/var/lib/rtctr/networks`).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// DNS settings passed through to the result.
    #[serde(default)]
    pub dns: Option<Value>,
    /// Filled in by the runtime.
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
    /// The previous result (CHECK, DEL, chained ADD).
    #[serde(default)]
    pub prev_result: Option<Value>,
    /// IPAM delegation: not supported (addresses come from the rtctr network's pool).
    #[serde(default)]
    pub ipam: Option<Value>,
}

/// The `CNI_*` environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `CNI_COMMAND`.
    pub command: Option<String>,
    /// `CNI_CONTAINERID`.
    pub container_id: Option<String>,
    /// `CNI_NETNS`.
    pub netns: Option<String>,
    /// `CNI_IFNAME`.
    pub ifname: Option<String>,
}

impl Env {
    /// From a variable lookup (`std::env::var`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Env {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        Env {
            command: get("CNI_COMMAND"),
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
        }
    }

    /// From the process environment.
    pub fn from_process() -> Env {
        Env::from_lookup(|k| std::env::var(k).ok())
    }
}

/// A parsed, checked call.
#[derive(Debug, Clone)]
struct Call {
    conf: NetConf,
    container: String,
    ifname: String,
    netns: Option<String>,
}

/// Run one CNI command: `stdin` is the network configuration. Returns what to print on
/// stdout (empty for DEL).
pub fn run(env: &Env, stdin: &[u8]) -> Result<String, CniError> {
    let command = env.command.as_deref().ok_or_else(|| {
        CniError::new(
            code::INVALID_ENV,
            "missing CNI_COMMAND",
            "CNI_COMMAND is not set",
        )
    })?;
    if command == "VERSION" {
        return Ok(version(stdin));
    }
    let conf = parse_conf(stdin)?;
    let with_version = |mut e: CniError| {
        e.cni_version = conf.cni_version.clone();
        e
    };
    let call = check_call(env, command, conf.clone()).map_err(with_version)?;
    let nets = Networks::new(
        call.conf
            .state_dir
            .clone()
            .unwrap_or_else(Store::default_dir),
    );
    match command {
        "ADD" => add(&nets, &call).map_err(with_version),
        "DEL" => del(&nets, &call)
            .map(|()| String::new())
            .map_err(with_version),
        // check_call lets only ADD, DEL and CHECK through
        _ => check(&nets, &call)
            .map(|()| String::new())
            .map_err(with_version),
    }
}

/// The VERSION result; the input's `cniVersion` (if any) is echoed back.
pub fn version(stdin: &[u8]) -> String {
    let asked = serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| "1.0.0".into());
    json!({"cniVersion": asked, "supportedVersions": SUPPORTED_VERSIONS}).to_string()
}

/// Parse the configuration; a bad value names its field.
pub fn parse_conf(stdin: &[u8]) -> Result<NetConf, CniError> {
    let de = &mut serde_json::Deserializer::from_slice(stdin);
    let conf: NetConf = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let details = if path == "." || path.is_empty() {
            format!("network configuration on stdin: {inner}")
        } else {
            format!("network configuration field {path}: {inner}")
        };
        CniError::new(
            code::DECODE,
            "failed to decode network configuration",
            details,
        )
    })?;
    if !SUPPORTED_VERSIONS.contains(&conf.cni_version.as_str()) {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            "incompatible CNI version",
            format!(
                "cniVersion {:?} is not supported (supported: {})",
                conf.cni_version,
                SUPPORTED_VERSIONS.join(", ")
            ),
        ));
    }
    let bad = |field: &str, reason: String| {
        CniError::new(
            code::INVALID_CONFIG,
            "invalid network configuration",
            format!("field {field}: {reason}"),
        )
    };
    if conf.name.is_empty() {
        return Err(bad("name", "missing or empty".into()));
    }
    if let Some(ipam) = &conf.ipam {
        return Err(CniError::new(
            code::UNSUPPORTED_FIELD,
            "unsupported field in network configuration",
            format!("field ipam={ipam}: rtctr-cni allocates addresses from its own pool (set subnet instead)"),
        ));
    }
    Ok(conf)
}

fn valid_container_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn check_call(env: &Env, command: &str, conf: NetConf) -> Result<Call, CniError> {
    let bad_env = |var: &str, reason: String| {
        CniError::new(
            code::INVALID_ENV,
            "invalid CNI environment",
            format!("{var}: {reason}"),
        )
    };
    if !matches!(command, "ADD" | "DEL" | "CHECK") {
        return Err(bad_env(
            "CNI_COMMAND",
            format!("{command:?} is not one of ADD, DEL, CHECK, VERSION"),
        ));
    }
    let container = env
        .container_id
        .clone()
        .ok_or_else(|| bad_env("CNI_CONTAINERID", "not set".into()))?;
    if !valid_container_id(&container) {
        return Err(bad_env(
            "CNI_CONTAINERID",
            format!("{container:?}: must be alphanumeric, then [A-Za-z0-9_.-]"),
        ));
    }
    let ifname = env
        .ifname
        .clone()
        .ok_or_else(|| bad_env("CNI_IFNAME", "not set".into()))?;
    if !valid_ifname(&ifname) {
        return Err(bad_env(
            "CNI_IFNAME",
            format!("{ifname:?}: must be 1-15 characters, no '/', ':' or spaces"),
        ));
    }
    if command != "DEL" && env.netns.is_none() {
        return Err(bad_env("CNI_NETNS", "not set".into()));
    }
    // One lease per (container, interface): eth0 keeps the plain id, so the lease (and the
    // host veth name) is the same as the OCI hook's for that id.
    let container = if ifname == CONTAINER_IFNAME {
        container
    } else {
        format!("{container}.{ifname}")
    };
    Ok(Call {
        conf,
        container,
        ifname,
        netns: env.netns.clone(),
    })
}

fn ports(maps: &[CniPortMapping]) -> Result<Vec<PortMapping>, CniError> {
    let bad = |i: usize, reason: String| {
        CniError::new(
            code::INVALID_CONFIG,
            "invalid network configuration",
            format!("field runtimeConfig.portMappings[{i}]: {reason}"),
        )
    };
    let mut out: Vec<PortMapping> = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        let proto = match m
            .protocol
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("tcp") => Proto::Tcp,
            Some("udp") => Proto::Udp,
            Some(p) => return Err(bad(i, format!("protocol {p:?}: tcp or udp"))),
        };
        if m.host_port == 0 || m.container_port == 0 {
            return Err(bad(i, "ports must be 1-65535".into()));
        }
        if !matches!(m.host_ip.as_deref(), None | Some("") | Some("0.0.0.0")) {
            return Err(bad(
                i,
                format!(
                    "hostIP {:?}: only all addresses (empty or 0.0.0.0) are supported",
                    m.host_ip.as_deref().unwrap_or_default()
                ),
            ));
        }
        let p = PortMapping {
            host_port: m.host_port,
            container_port: m.container_port,
            proto,
        };
        if out
            .iter()
            .any(|q| q.host_port == p.host_port && q.proto == p.proto)
        {
            // kubelet lists a port twice when a pod declares it for two addresses families.
            continue;
        }
        out.push(p);
    }
    Ok(out)
}

fn net_error(e: NetError) -> CniError {
    let c = match &e {
        NetError::Invalid { .. } | NetError::NotFound(_) => code::INVALID_CONFIG,
        NetError::Netns { .. } => code::UNKNOWN_CONTAINER,
        NetError::Io { .. } | NetError::ParseState { .. } => code::IO,
        _ => code::NETWORK,
    };
    let mut details = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let text = s.to_string();
        if !details.contains(&text) {
            details.push_str(&format!(": {text}"));
        }
        src = s.source();
    }
    let msg = match c {
        code::INVALID_CONFIG => "invalid network configuration",
        code::UNKNOWN_CONTAINER => "container network namespace unusable",
        code::IO => "I/O failure in rtctr's network state",
        _ => "rtctr network operation failed",
    };
    CniError::new(c, msg, details)
}

fn add(nets: &Networks, call: &Call) -> Result<String, CniError> {
    let conf = &call.conf;
    let subnet = conf.subnet.as_deref().ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            "invalid network configuration",
            "field subnet: missing (the network's subnet in CIDR form, e.g. 10.88.0.0/16)",
        )
    })?;
    nets.ensure(
        &conf.name,
        subnet,
        conf.bridge.as_deref(),
        conf.gateway,
        conf.ip_masq,
    )
    .map_err(net_error)?;
    let mut req = Request::new(
        &call.container,
        Netns::Path(PathBuf::from(call.netns.as_deref().unwrap_or_default())),
    );
    req.network = conf.name.clone();
    req.ifname = call.ifname.clone();
    req.ports = ports(&conf.runtime_config.port_mappings)?;
    let att = nets.setup(&req).map_err(net_error)?;
    Ok(result(conf, &att, call.netns.as_deref().unwrap_or_default()).to_string())
}

/// The ADD result for an attachment.
pub fn result(conf: &NetConf, att: &Attachment, netns: &str) -> Value {
    let mut ip = json!({
        "address": format!("{}/{}", att.ip, att.prefix),
        "gateway": att.gateway.to_string(),
        "interface": 2,
    });
    if conf.cni_version.starts_with("0.") {
        ip["version"] = "4".into();
    }
    let mut out = json!({
        "cniVersion": conf.cni_version,
        "interfaces": [
            {"name": att.bridge},
            {"name": att.host_veth},
            {"name": att.ifname, "mac": att.mac, "sandbox": netns},
        ],
        "ips": [ip],
        "routes": [{"dst": "0.0.0.0/0", "gw": att.gateway.to_string()}],
    });
    out["dns"] = conf.dns.clone().unwrap_or_else(|| json!({}));
    out
}

fn del(nets: &Networks, call: &Call) -> Result<(), CniError> {
    nets.teardown(&call.container, Some(&call.conf.name))
        .map_err(net_error)
}

fn check(nets: &Networks, call: &Call) -> Result<(), CniError> {
    let netns = Netns::Path(PathBuf::from(call.netns.as_deref().unwrap_or_default()));
    let lease = nets
        .check(&call.container, &call.conf.name, &netns, &call.ifname)
        .map_err(|e| match e {
            NetError::NotAttached { .. } => CniError::new(
                code::UNKNOWN_CONTAINER,
                "container not attached",
                e.to_string(),
            ),
            e => net_error(e),
        })?;
    // The runtime's cached result must name the address we hold.
    if let Some(prev) = &call.conf.prev_result {
        let ips: Vec<String> = prev
            .get("ips")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|i| i.get("address").and_then(Value::as_str))
                    .map(|a| a.split('/').next().unwrap_or(a).to_string())
                    .collect()
            })
            .unwrap_or_default();
        if !ips.contains(&lease.ip.to_string()) {
            return Err(CniError::new(
                code::NETWORK,
                "prevResult does not match the attachment",
                format!(
                    "container {:?} holds {} on network {:?}; prevResult.ips has {ips:?}",
                    call.container, lease.ip, call.conf.name
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(cmd: &str) -> Env {
        Env {
            command: Some(cmd.into()),
            container_id: Some("c1".into()),
            netns: Some("/run/netns/x".into()),
            ifname: Some("eth0".into()),
        }
    }

    #[test]
    fn version_echoes_and_lists() {
        let v: Value = serde_json::from_str(&version(br#"{"cniVersion":"0.4.0"}"#)).unwrap();
        assert_eq!(v["cniVersion"], "0.4.0");
        assert!(v["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&"1.0.0".into()));
        let out = run(&env("VERSION"), b"").unwrap();
        assert!(out.contains("supportedVersions"));
    }

    #[test]
    fn bad_config_names_the_field() {
        let cases: [(&[u8], u32, &str); 7] = [
            (b"{not json", code::DECODE, "network configuration"),
            (
                br#"{"cniVersion":"1.0.0","name":"n","ipMasq":"yes"}"#,
                code::DECODE,
                "field ipMasq",
            ),
            (
                br#"{"cniVersion":"1.0.0","name":"n","gateway":"10.1"}"#,
                code::DECODE,
                "field gateway",
            ),
            (
                br#"{"cniVersion":"9.9.9","name":"n"}"#,
                code::INCOMPATIBLE_VERSION,
                "cniVersion \"9.9.9\"",
            ),
            (br#"{"cniVersion":"1.0.0"}"#, code::INVALID_CONFIG, "field name"),
            (
                br#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local"}}"#,
                code::UNSUPPORTED_FIELD,
                "field ipam",
            ),
            (
                br#"{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[{"hostPort":"x","containerPort":1}]}}"#,
                code::DECODE,
                "runtimeConfig.portMappings[0].hostPort",
            ),
        ];
        for (input, want, field) in cases {
            let e = parse_conf(input).unwrap_err();
            assert_eq!(e.code, want, "{e}");
            assert!(e.details.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn environment_is_checked_by_name() {
        let conf = br#"{"cniVersion":"1.0.0","name":"n","subnet":"10.201.0.0/24"}"#;
        for (var, value) in [
            ("CNI_CONTAINERID", None),
            ("CNI_CONTAINERID", Some("-bad")),
            ("CNI_IFNAME", None),
            ("CNI_IFNAME", Some("much-too-long-ifname")),
            ("CNI_NETNS", None),
            ("CNI_COMMAND", Some("BOGUS")),
        ] {
            let mut e = env("ADD");
            let slot = match var {
                "CNI_CONTAINERID" => &mut e.container_id,
                "CNI_IFNAME" => &mut e.ifname,
                "CNI_NETNS" => &mut e.netns,
                _ => &mut e.command,
            };
            *slot = value.map(String::from);
            let err = run(&e, conf).unwrap_err();
            assert_eq!(err.code, code::INVALID_ENV, "{var}: {err}");
            assert!(err.details.starts_with(var), "{var}: {err}");
        }
        let err = run(&Env::default(), conf).unwrap_err();
        assert_eq!(err.code, code::INVALID_ENV);
        assert!(err.details.contains("CNI_COMMAND"));
    }

    #[test]
    fn go_cni_port_mapping_keys() {
        let conf = parse_conf(
            br#"{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[{"HostPort":18081,"ContainerPort":80,"Protocol":"tcp","HostIP":""}]}}"#,
        )
        .unwrap();
        let p = ports(&conf.runtime_config.port_mappings).unwrap();
        assert_eq!(
            (p[0].host_port, p[0].container_port, p[0].proto),
            (18081, 80, Proto::Tcp)
        );
    }

    #[test]
    fn port_mappings() {
        let m = |h, c, p: Option<&str>, ip: Option<&str>| CniPortMapping {
            host_port: h,
            container_port: c,
            protocol: p.map(String::from),
            host_ip: ip.map(String::from),
        };
        let p = ports(&[
            m(8080, 80, Some("TCP"), Some("")),
            m(8080, 80, None, Some("0.0.0.0")),
            m(5353, 53, Some("udp"), None),
        ])
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].proto, Proto::Udp);
        for bad in [
            m(1, 2, Some("sctp"), None),
            m(0, 2, None, None),
            m(1, 2, None, Some("127.0.0.1")),
        ] {
            let e = ports(&[bad]).unwrap_err();
            assert!(e.details.contains("portMappings[0]"), "{e}");
        }
    }

    #[test]
    fn result_shape() {
        let conf =
            parse_conf(br#"{"cniVersion":"0.4.0","name":"n","dns":{"nameservers":["10.1.0.1"]}}"#)
                .unwrap();
        let att = Attachment {
            network: "n".into(),
            container: "c".into(),
            ip: "10.201.0.2".parse().unwrap(),
            prefix: 24,
            gateway: "10.201.0.1".parse().unwrap(),
            mac: "0a:58:0a:c9:00:02".into(),
            host_veth: "rv0123456789".into(),
            bridge: "br".into(),
            ifname: "eth0".into(),
            warnings: vec![],
        };
        let r = result(&conf, &att, "/run/netns/x");
        assert_eq!(r["cniVersion"], "0.4.0");
        assert_eq!(r["ips"][0]["address"], "10.201.0.2/24");
        assert_eq!(r["ips"][0]["version"], "4");
        assert_eq!(r["interfaces"][2]["sandbox"], "/run/netns/x");
        assert_eq!(r["routes"][0]["gw"], "10.201.0.1");
        assert_eq!(r["dns"]["nameservers"][0], "10.1.0.1");
    }
}
