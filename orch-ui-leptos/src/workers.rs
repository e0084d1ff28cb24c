//! Who works on the store, as the graphs view's toolbar shows it (`GET /api/workers`): how many task
//! workers and servers are alive, how many rows are silent, and each row in a line.

use serde_json::Value;

/// The workers and servers of `GET /api/workers`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workers {
    /// Whether an answer was read (before it, nothing is shown).
    pub loaded: bool,
    /// Task workers that beat recently.
    pub workers_alive: usize,
    /// Servers that beat recently.
    pub servers_alive: usize,
    /// Rows of either that stopped beating (a killed process's).
    pub silent: usize,
    /// One line per row: role, id, slots and state.
    pub rows: Vec<String>,
}

impl Workers {
    /// Reads `GET /api/workers`' answer; rows of another shape are left out.
    pub fn from_json(v: &Value) -> Self {
        let mut w = Self { loaded: true, ..Self::default() };
        for row in v.get("workers").and_then(Value::as_array).into_iter().flatten() {
            let (Some(role), Some(id), Some(alive)) = (
                row.get("role").and_then(Value::as_str),
                row.get("id").and_then(Value::as_str),
                row.get("alive").and_then(Value::as_bool),
            ) else {
                continue;
            };
            let state = if alive {
                match role {
                    "server" => w.servers_alive += 1,
                    _ => w.workers_alive += 1,
                }
                "alive".to_string()
            } else {
                w.silent += 1;
                let secs = row.get("silent_secs").and_then(Value::as_f64).unwrap_or(0.0);
                format!("silent for {}", crate::format::duration(secs.max(0.0) as u64))
            };
            let slots = row.get("concurrency").and_then(Value::as_u64).unwrap_or(0);
            w.rows.push(match role {
                "server" => format!("server {id}: {state}"),
                _ => format!("{role} {id} ({slots} slots): {state}"),
            });
        }
        w
    }

    /// `2 workers alive · 1 server · 1 silent`; `no worker alive` when none claims tasks.
    pub fn summary(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
        let mut parts = vec![match self.workers_alive {
            0 => "no worker alive".to_string(),
            n => format!("{} alive", plural(n, "worker", "workers")),
        }];
        if self.servers_alive > 0 {
            parts.push(plural(self.servers_alive, "server", "servers"));
        }
        if self.silent > 0 {
            parts.push(format!("{} silent", self.silent));
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_alive_workers_and_servers_and_silent_rows() {
        let v = json!({"count": 4, "workers": [
            {"role": "worker", "id": "vm:1:aaaaaa", "concurrency": 4, "alive": true, "silent_secs": 0.4},
            {"role": "server", "id": "vm:1:bbbbbb", "concurrency": 0, "alive": true, "silent_secs": 0.9},
            {"role": "worker", "id": "gone:2:cccccc", "concurrency": 8, "alive": false, "silent_secs": 600.0},
            {"role": "worker", "id": 7},
        ]});
        let w = Workers::from_json(&v);
        assert_eq!((w.workers_alive, w.servers_alive, w.silent), (1, 1, 1));
        assert_eq!(w.summary(), "1 worker alive · 1 server · 1 silent");
        assert_eq!(w.rows[0], "worker vm:1:aaaaaa (4 slots): alive");
        assert_eq!(w.rows[1], "server vm:1:bbbbbb: alive");
        assert!(w.rows[2].starts_with("worker gone:2:cccccc (8 slots): silent for "), "{}", w.rows[2]);
        assert_eq!(w.rows.len(), 3, "a row of another shape is left out");
    }

    #[test]
    fn says_when_no_worker_claims_tasks() {
        let w = Workers::from_json(&json!({"count": 1, "workers": [
            {"role": "server", "id": "vm:1:bbbbbb", "concurrency": 0, "alive": true}]}));
        assert_eq!(w.summary(), "no worker alive · 1 server");
        assert_eq!(Workers::from_json(&json!({"workers": []})).summary(), "no worker alive");
        let two = Workers::from_json(&json!({"workers": [
            {"role": "worker", "id": "a", "alive": true}, {"role": "worker", "id": "b", "alive": true}]}));
        assert_eq!(two.summary(), "2 workers alive");
    }
}
