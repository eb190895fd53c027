//! `rtctr events`: a container's resource usage as runc prints it, one
//! JSON object a line. `--stats` prints `{"type":"stats","id":..,"data":..}`
//! once; otherwise stats are printed every `--interval` (a Go duration,
//! default 5s), an `{"type":"oom","id":..}` line whenever the OOM killer
//! struck in the cgroup, and the command ends when the container stops.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use rtctr_cgroups::stats::Event;

use crate::state::{StateError, Status, Store};

/// How often the OOM counter and the init are checked between stats.
const POLL: Duration = Duration::from_millis(100);

#[derive(Args, Debug, Clone)]
pub struct EventsArgs {
    /// Time between stats lines (Go duration: 5s, 100ms, 1m30s).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub interval: String,
    /// Print the container's stats once and exit.
    #[arg(long)]
    pub stats: bool,
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("invalid interval {value:?}: {why}")]
    Interval { value: String, why: &'static str },
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

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units
/// ns, us (µs), ms, s, m, h ("1m30s", "1.5s"); a bare "0" is zero.
pub fn parse_go_duration(s: &str) -> Result<Duration, &'static str> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration");
    }
    if s.starts_with('-') {
        return Err("negative duration");
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or("missing unit")?;
        if n == 0 {
            return Err("expected a number");
        }
        let value: f64 = rest[..n].parse().map_err(|_| "bad number")?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err("unknown unit (use ns, us, ms, s, m, h)"),
        };
        total += value * nanos;
        rest = &rest[u..];
    }
    if total > u64::MAX as f64 {
        return Err("too large");
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Writes one event line; false when the reader went away.
fn emit(out: &mut dyn Write, ev: &Event) -> Result<bool, EventsError> {
    let line = serde_json::to_string(ev).expect("event serializes");
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub fn events(store: &Store, a: &EventsArgs, out: &mut dyn Write) -> Result<(), EventsError> {
    let interval = parse_go_duration(&a.interval).map_err(|why| EventsError::Interval {
        value: a.interval.clone(),
        why,
    })?;
    if interval.is_zero() {
        return Err(EventsError::Interval {
            value: a.interval.clone(),
            why: "must be greater than 0",
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        for (s, want) in [
            ("5s", ms(5000)),
            ("100ms", ms(100)),
            ("1m", ms(60_000)),
            ("1m30s", ms(90_000)),
            ("1.5s", ms(1500)),
            ("2h", ms(7_200_000)),
            ("10us", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("0", Duration::ZERO),
        ] {
            assert_eq!(parse_go_duration(s), Ok(want), "{s}");
        }
        for bad in ["", "5", "s", "-1s", "5x", "1.2.3s", "ms5"] {
            assert!(parse_go_duration(bad).is_err(), "{bad} accepted");
        }
    }
}
