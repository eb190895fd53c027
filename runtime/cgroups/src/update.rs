//! `update`: merging a partial `LinuxResources` into the container's
//! current ones, the way `runc update` reads its input.
//!
//! runc's cgroup drivers skip zeros: a zero memory limit, share, quota,
//! period, weight or an empty cpuset means "leave it". [`merge`] follows
//! that rule, so a containerd `update --resources=-` (a whole
//! `LinuxResources`, zeros included) changes only what it sets, and keeps
//! the rest for the next update. `pids.limit` 0 is taken literally (runc
//! ≥ 1.4: no new processes).

use oci_spec::runtime::LinuxResources;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Fields where runc reads 0 (or "") as "unchanged".
const ZERO_IS_UNSET: &[(&str, &str)] = &[
    ("memory", "limit"),
    ("memory", "reservation"),
    ("memory", "swap"),
    ("memory", "kernel"),
    ("memory", "kernelTCP"),
    ("cpu", "shares"),
    ("cpu", "quota"),
    ("cpu", "period"),
    ("cpu", "realtimeRuntime"),
    ("cpu", "realtimePeriod"),
    ("cpu", "cpus"),
    ("cpu", "mems"),
    ("blockIO", "weight"),
    ("blockIO", "leafWeight"),
];

fn to_value(res: &LinuxResources) -> Result<Value> {
    serde_json::to_value(res).map_err(|e| Error::Invalid(format!("resources: {e}")))
}

/// `current` with every value `patch` sets replaced; `patch.devices` is
/// ignored (update never changes device rules, as in runc). Lists and
/// maps (hugepage limits, unified, throttles) are replaced as a whole.
pub fn merge(current: &LinuxResources, patch: &LinuxResources) -> Result<LinuxResources> {
    let mut base = to_value(current)?;
    let mut patch = to_value(patch)?;
    let Value::Object(p) = &mut patch else {
        return Err(Error::Invalid("resources: not a JSON object".to_string()));
    };
    p.remove("devices");
    for (section, key) in ZERO_IS_UNSET {
        if let Some(Value::Object(s)) = p.get_mut(*section) {
            let unset = match s.get(*key) {
                Some(Value::Number(n)) => n.as_i64() == Some(0) || n.as_u64() == Some(0),
                Some(Value::String(v)) => v.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if unset {
                s.remove(*key);
            }
        }
    }
    // runc: "memory -1" without a swap value lifts the swap limit too
    // (otherwise the old memory+swap would be below "unlimited").
    let unlimited = p
        .get("memory")
        .and_then(|m| m.get("limit"))
        .and_then(Value::as_i64)
        == Some(-1);
    if unlimited {
        if let Some(Value::Object(m)) = p.get_mut("memory") {
            m.entry("swap").or_insert(Value::from(-1));
        }
    }
    if let Value::Object(b) = &mut base {
        b.remove("devices");
        merge_objects(b, std::mem::take(p));
        // An idle cgroup has no weight: cgroup v2 refuses cpu.weight while
        // cpu.idle is 1, so keep no shares next to a set idle (runc drops
        // them too).
        if let Some(Value::Object(cpu)) = b.get_mut("cpu") {
            if cpu
                .get("idle")
                .and_then(Value::as_i64)
                .is_some_and(|i| i != 0)
            {
                cpu.remove("shares");
            }
        }
    }
    serde_json::from_value(base).map_err(|e| Error::Invalid(format!("merged resources: {e}")))
}

/// Objects merge key by key (one level of sections, then their fields);
/// anything else replaces.
fn merge_objects(base: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(p)) if is_section(&k) => {
                for (pk, pv) in p {
                    b.insert(pk, pv);
                }
            }
            (_, Value::Null) => {}
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The sections whose fields merge one by one.
fn is_section(key: &str) -> bool {
    matches!(key, "memory" | "cpu" | "pids" | "blockIO" | "network")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn merged(cur: Value, patch: Value) -> Value {
        serde_json::to_value(merge(&res(cur), &res(patch)).unwrap()).unwrap()
    }

    #[test]
    fn sets_what_is_given_and_keeps_the_rest() {
        let got = merged(
            json!({"memory": {"limit": 100, "swap": 200}, "cpu": {"shares": 512, "quota": 5000, "period": 10000},
                   "pids": {"limit": 10}, "devices": [{"allow": false, "access": "rwm"}]}),
            json!({"memory": {"limit": 150}, "cpu": {"quota": 2000}}),
        );
        assert_eq!(
            got,
            json!({"memory": {"limit": 150, "swap": 200}, "cpu": {"shares": 512, "quota": 2000, "period": 10000},
                   "pids": {"limit": 10}})
        );
    }

    #[test]
    fn zeros_are_unset_as_in_runc() {
        let got = merged(
            json!({"memory": {"limit": 100}, "cpu": {"shares": 512, "cpus": "0-1"}, "pids": {"limit": 10}}),
            json!({"memory": {"limit": 0, "swap": 0, "reservation": 0}, "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": ""},
                   "blockIO": {"weight": 0}, "pids": {"limit": 0}, "devices": [{"allow": true, "access": "rwm"}]}),
        );
        assert_eq!(
            got,
            json!({"memory": {"limit": 100}, "cpu": {"shares": 512, "cpus": "0-1"}, "pids": {"limit": 0}, "blockIO": {}})
        );
    }

    #[test]
    fn idle_drops_shares() {
        let got = merged(
            json!({"cpu": {"shares": 512, "quota": 1000}}),
            json!({"cpu": {"idle": 1}}),
        );
        assert_eq!(got, json!({"cpu": {"quota": 1000, "idle": 1}}));
        let got = merged(got.clone(), json!({"cpu": {"idle": 0, "shares": 100}}));
        assert_eq!(
            got,
            json!({"cpu": {"quota": 1000, "idle": 0, "shares": 100}})
        );
    }

    #[test]
    fn unlimited_memory_lifts_swap() {
        let got = merged(
            json!({"memory": {"limit": 100, "swap": 200}}),
            json!({"memory": {"limit": -1}}),
        );
        assert_eq!(got, json!({"memory": {"limit": -1, "swap": -1}}));
        let got = merged(
            json!({"memory": {"limit": 100, "swap": 200}}),
            json!({"memory": {"limit": -1, "swap": 300}}),
        );
        assert_eq!(got, json!({"memory": {"limit": -1, "swap": 300}}));
    }

    #[test]
    fn lists_and_maps_replace() {
        let got = merged(
            json!({"unified": {"memory.high": "100", "pids.max": "5"}, "hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}),
            json!({"unified": {"memory.high": "200"}}),
        );
        assert_eq!(
            got,
            json!({"unified": {"memory.high": "200"}, "hugepageLimits": [{"pageSize": "2MB", "limit": 1}]})
        );
    }
}
