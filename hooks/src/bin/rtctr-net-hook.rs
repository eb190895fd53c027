//! OCI hook: `rtctr-net-hook setup` (createRuntime/prestart) and `rtctr-net-hook teardown`
//! (poststop), reading the container state JSON on stdin.
//!
//! The network comes from the `rtctr.network` annotation (default network otherwise);
//! state lives in `$RTCTR_NETWORK_DIR` (default `/var/lib/rtctr/networks`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match rtctr_hooks::hook::run(&args, std::io::stdin().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                let s_str = s.to_string();
                if !msg.contains(&s_str) {
                    msg.push_str(&format!(": {s_str}"));
                }
                src = s.source();
            }
            eprintln!("rtctr-net-hook: {msg}");
            ExitCode::FAILURE
        }
    }
}
