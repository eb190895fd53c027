//! The OCI hook entry: container state JSON on stdin → setup or teardown.

use std::collections::HashMap;
use std::io::Read;

use serde::Deserialize;

use crate::network::{self, Attachment, Netns, Request};

/// The OCI runtime state passed to hooks on stdin.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Spec version.
    #[serde(default)]
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Status (creating, created, running, stopped).
    #[serde(default)]
    pub status: String,
    /// Container init pid (absent after it exited).
    #[serde(default)]
    pub pid: Option<u32>,
    /// Bundle path.
    #[serde(default)]
    pub bundle: String,
    /// Annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

/// Errors of the hook entry point.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// stdin did not hold a container state.
    #[error("reading OCI state from stdin: {0}")]
    State(#[from] serde_json::Error),
    /// Reading stdin failed.
    #[error("reading stdin: {0}")]
    Stdin(#[from] std::io::Error),
    /// setup needs the container pid.
    #[error("setup: OCI state of container {0:?} has no pid")]
    NoPid(String),
    /// Wrong command line.
    #[error("usage: rtctr-net-hook setup|teardown < state.json")]
    Usage,
    /// The network operation failed.
    #[error(transparent)]
    Net(#[from] crate::NetError),
}

impl State {
    /// Parse a state from a reader.
    pub fn from_reader(r: impl Read) -> Result<State, HookError> {
        let mut s = String::new();
        let mut r = r;
        r.read_to_string(&mut s)?;
        Ok(serde_json::from_str(&s)?)
    }
}

/// `setup`: attach to the network named by the annotations, or the default network.
pub fn hook_setup(state: &State) -> Result<Attachment, HookError> {
    let pid = state
        .pid
        .ok_or_else(|| HookError::NoPid(state.id.clone()))?;
    // The hook is configured explicitly, so no `rtctr.network` means the default network
    // (the ports and ip annotations still apply).
    let mut ann = state.annotations.clone();
    ann.entry(network::request::ANN_NETWORK.to_string())
        .or_insert_with(|| network::DEFAULT_NETWORK.to_string());
    let req = Request::from_annotations(&state.id, pid, &ann)?
        .unwrap_or_else(|| Request::new(&state.id, Netns::Pid(pid)));
    Ok(network::setup(&req)?)
}

/// `teardown`: detach (from the annotated network, or from any).
pub fn hook_teardown(state: &State) -> Result<(), HookError> {
    let net = state
        .annotations
        .get(network::request::ANN_NETWORK)
        .map(String::as_str)
        .filter(|n| !n.trim().is_empty());
    Ok(network::teardown(&state.id, net)?)
}

/// Run the hook: `args` are the command-line arguments after the program name.
pub fn run(args: &[String], stdin: impl Read) -> Result<(), HookError> {
    let action = match args {
        [a] if a == "setup" || a == "teardown" => a.as_str(),
        _ => return Err(HookError::Usage),
    };
    let state = State::from_reader(stdin)?;
    if action == "setup" {
        let att = hook_setup(&state)?;
        log::info!(
            "attached {} to {} as {}",
            att.container,
            att.network,
            att.ip
        );
        Ok(())
    } else {
        hook_teardown(&state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_state() {
        let s = State::from_reader(
            &br#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b","annotations":{"rtctr.network":"n"}}"#[..],
        )
        .unwrap();
        assert_eq!((s.id.as_str(), s.pid), ("c1", Some(42)));
        let s = State::from_reader(
            &br#"{"ociVersion":"1.2.0","id":"c1","status":"stopped","bundle":"/b"}"#[..],
        )
        .unwrap();
        assert_eq!(s.pid, None);
        assert!(State::from_reader(&b"{"[..]).is_err());
        assert!(matches!(hook_setup(&s), Err(HookError::NoPid(_))));
        assert!(matches!(
            run(&["x".into()], &b""[..]),
            Err(HookError::Usage)
        ));
    }
}
