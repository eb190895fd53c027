//! `rtctr events`: a container's resource usage as runc prints it, one
//! JSON object a line. `--stats` prints `{"type":"stats","id":..,"data":..}`
//! once; otherwise stats are printed every `--interval` (a Go duration,
//! default 5s), an `{"type":"oom","id":..}` line whenever the OOM killer
//! struck in the cgroup, and the command ends when the container stops.

use std::io::Write;
use std::time::{Duration, Instant};

use rtctr_cgroups::stats::Event;

use crate::state::{StateError, Status, Store};

/// How often the OOM counter and the init are checked between stats.
const POLL: Duration = Duration::from_millis(100);

/// What `events` prints.
#[derive(Debug, Clone)]
pub struct EventsOptions {
    pub id: String,
    /// Print the stats once and exit.
    pub stats: bool,
    /// Time between stats lines (greater than zero).
    pub interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("container with id {0} is not running")]
    NotRunning(String),
    #[error("container {0} has no cgroup")]
    NoCgroup(String),
    #[error("stats of {id}: {source}")]
    Cgroup {
        id: String,
        #[source]
        source: rtctr_cgroups::Error,
    },
    #[error("write: {0}")]
    Write(#[from] std::io::Error),
}

/// Writes one event line; false when the reader went away.
fn emit(out: &mut dyn Write, ev: &Event) -> Result<bool, EventsError> {
    let line = serde_json::to_string(ev).map_err(std::io::Error::other)?;
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub fn events(store: &Store, a: &EventsOptions, out: &mut dyn Write) -> Result<(), EventsError> {
    let interval = a.interval;
    // The directory lock is held only while reading the state: a stream
    // must not block other commands on this container.
    let state = {
        let dir = store.open(&a.id)?;
        let state = dir.load()?;
        if dir.status(&state) == Status::Stopped {
            return Err(EventsError::NotRunning(a.id.clone()));
        }
        state
    };
    let cg = state
        .cgroup
        .clone()
        .ok_or_else(|| EventsError::NoCgroup(a.id.clone()))?;
    let cg_err = |source| EventsError::Cgroup {
        id: a.id.clone(),
        source,
    };
    if a.stats {
        emit(out, &Event::stats(&a.id, cg.stats().map_err(cg_err)?))?;
        return Ok(());
    }
    let Some(pidfd) = crate::container::pidfd::open_init(state.pid, state.pid_start) else {
        return Err(EventsError::NotRunning(a.id.clone()));
    };
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    let mut next_stats = Instant::now() + interval;
    loop {
        let wait = next_stats
            .saturating_duration_since(Instant::now())
            .min(POLL);
        let exited = crate::container::pidfd::wait_exit(&pidfd, wait);
        // Checked before leaving, so an init killed by the OOM killer
        // still reports its oom event.
        let now_ooms = cg.oom_kill_count().unwrap_or(ooms);
        if now_ooms > ooms && !emit(out, &Event::oom(&a.id))? {
            return Ok(());
        }
        ooms = ooms.max(now_ooms);
        if exited {
            return Ok(());
        }
        if Instant::now() >= next_stats {
            next_stats += interval;
            match cg.stats() {
                Ok(s) => {
                    if !emit(out, &Event::stats(&a.id, s))? {
                        return Ok(());
                    }
                }
                // runc logs and goes on; the cgroup may be going away.
                Err(e) => log::warn!("stats of {}: {e}", a.id),
            }
        }
    }
}
