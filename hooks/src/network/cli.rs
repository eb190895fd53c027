//! Output for the runtime's `rtctr network ls|inspect` subcommands.

use std::io::{self, Write};

use super::store::Network;

/// `network ls` as a table: NAME, SUBNET, GATEWAY, BRIDGE, MASQUERADE, CONTAINERS.
pub fn write_table(mut out: impl Write, nets: &[Network]) -> io::Result<()> {
    let rows: Vec<[String; 6]> = nets
        .iter()
        .map(|n| {
            [
                n.name.clone(),
                n.subnet.to_string(),
                n.gateway.to_string(),
                n.bridge.clone(),
                n.masquerade.to_string(),
                n.leases.len().to_string(),
            ]
        })
        .collect();
    let head = [
        "NAME",
        "SUBNET",
        "GATEWAY",
        "BRIDGE",
        "MASQUERADE",
        "CONTAINERS",
    ];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |out: &mut dyn Write, cells: [&str; 6]| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 5 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(&mut out, head)?;
    for r in &rows {
        line(&mut out, [&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]])?;
    }
    Ok(())
}

/// `network inspect` as pretty JSON (one object, with `leases: [{container, ip, ...}]`).
pub fn write_json(mut out: impl Write, net: &Network) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut out, net)?;
    writeln!(out)
}

/// `network ls` on stdout.
pub fn print_list() -> crate::Result<()> {
    let nets = super::network_list()?;
    write_table(io::stdout().lock(), &nets).map_err(|e| crate::NetError::io("writing", "stdout", e))
}

/// `network inspect NAME` on stdout.
pub fn print_inspect(name: &str) -> crate::Result<()> {
    let net = super::network_inspect(name)?;
    write_json(io::stdout().lock(), &net).map_err(|e| crate::NetError::io("writing", "stdout", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_json() {
        let n = Network {
            name: "rtctr".into(),
            subnet: "10.89.0.0/16".parse().unwrap(),
            bridge: "rtctr0".into(),
            gateway: "10.89.0.1".parse().unwrap(),
            masquerade: true,
            leases: vec![],
        };
        let mut b = Vec::new();
        write_table(&mut b, std::slice::from_ref(&n)).unwrap();
        let s = String::from_utf8(b).unwrap();
        assert_eq!(
            s,
            "NAME   SUBNET        GATEWAY    BRIDGE  MASQUERADE  CONTAINERS\nrtctr  10.89.0.0/16  10.89.0.1  rtctr0  true        0\n"
        );
        let mut b = Vec::new();
        write_json(&mut b, &n).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["subnet"], "10.89.0.0/16");
        assert!(v["leases"].as_array().unwrap().is_empty());
    }
}
