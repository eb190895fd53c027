//! CNI plugin: rtctr's bridge network for containerd's CRI plugin, CRI-O or any libcni
//! runtime. See `rtctr_hooks::cni` and `hooks/README.md`.

use std::io::{Read, Write};
use std::process::ExitCode;

use rtctr_hooks::cni::{self, CniError, Env};

fn main() -> ExitCode {
    let mut stdin = Vec::new();
    let out = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => cni::run(&Env::from_process(), &stdin),
        Err(e) => Err(CniError {
            cni_version: "1.0.0".into(),
            code: cni::code::IO,
            msg: "failed to read network configuration".into(),
            details: format!("reading stdin: {e}"),
        }),
    };
    let mut stdout = std::io::stdout().lock();
    match out {
        Ok(text) => {
            if !text.is_empty() {
                let _ = writeln!(stdout, "{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let json = serde_json::to_string(&e).unwrap_or_else(|_| e.to_string());
            let _ = writeln!(stdout, "{json}");
            eprintln!("rtctr-cni: {e}");
            ExitCode::FAILURE
        }
    }
}
