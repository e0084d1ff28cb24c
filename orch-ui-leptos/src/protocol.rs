//! What the server sends: `/ws` frames and the JSON of the REST routes, read defensively (an entry
//! that does not decode is skipped, not fatal), and the URLs the page asks for.

use orch_core::wire::{Agent, ChatMessage, EventRecord, WorkflowRecord};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One `/ws` frame, as the page uses it.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An event of the log.
    Event(Box<EventRecord>),
    /// The replay is over; live from here (the replay's last seq).
    Live(u64),
    /// The server is closing the stream; resume after this seq.
    Ending(Option<u64>),
    /// Anything else (the seed's frames, `connection_established`, pongs, …).
    Other,
}

/// Reads one text frame.
pub fn parse_frame(text: &str) -> Incoming {
    let Ok(v) = serde_json::from_str::<Value>(text) else { return Incoming::Other };
    match v.get("frame").and_then(Value::as_str) {
        Some("live") => Incoming::Live(v.get("last_seq").and_then(Value::as_u64).unwrap_or(0)),
        Some("cut_off" | "error") => {
            Incoming::Ending(v.get("resume_from").and_then(Value::as_u64).map(|s| s.saturating_sub(1)))
        }
        Some(_) => Incoming::Other,
        None if v.get("seq").is_some() => match serde_json::from_value::<EventRecord>(v) {
            Ok(r) => Incoming::Event(Box::new(r)),
            Err(_) => Incoming::Other,
        },
        None => Incoming::Other,
    }
}

/// The list under `key` of a JSON answer, each entry decoded on its own (bad ones skipped).
pub fn list<T: DeserializeOwned>(v: &Value, key: &str) -> Vec<T> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| serde_json::from_value(x.clone()).ok()).collect())
        .unwrap_or_default()
}

/// `GET /api/agents`.
pub fn agents(v: &Value) -> Vec<Agent> {
    list(v, "agents")
}

/// `GET /api/orchestrator/chat`.
pub fn chat(v: &Value) -> Vec<ChatMessage> {
    list(v, "messages")
}

/// `GET /api/adws`.
pub fn workflows(v: &Value) -> Vec<WorkflowRecord> {
    list(v, "adws")
}

/// `GET /api/events` (newest first with `order=desc`): the events oldest first, and the log's last seq.
pub fn events(v: &Value) -> (Vec<EventRecord>, u64) {
    let mut events: Vec<EventRecord> = list(v, "events");
    events.sort_by_key(|e| e.seq);
    let last = v.get("last_seq").and_then(Value::as_u64).unwrap_or_else(|| events.last().map_or(0, |e| e.seq));
    (events, last)
}

/// `GET /api/adws/{id}/events`: every step's events.
pub fn workflow_events(v: &Value) -> Vec<EventRecord> {
    let mut out: Vec<EventRecord> = Vec::new();
    if let Some(steps) = v.get("events_by_step").and_then(Value::as_object) {
        for events in steps.values().filter_map(Value::as_array) {
            out.extend(events.iter().filter_map(|e| serde_json::from_value(e.clone()).ok()));
        }
    }
    out.sort_by_key(|e| e.seq);
    out
}

/// `GET /api/adws/types`: the workflow types' names.
pub fn workflow_types(v: &Value) -> Vec<String> {
    v.get("types")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|t| t.get("type").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default()
}

/// One suggestion of `POST /api/autocomplete`: what to append, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The text that continues the input.
    pub completion: String,
    /// Why the expert suggests it.
    pub reasoning: String,
}

/// `POST /api/autocomplete`'s suggestions (at most 3; empty ones skipped).
pub fn suggestions(v: &Value) -> Vec<Suggestion> {
    v.get("suggestions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| {
                    let completion = s.get("completion").and_then(Value::as_str)?.to_string();
                    let reasoning = s.get("reasoning").and_then(Value::as_str).unwrap_or_default().to_string();
                    (!completion.trim().is_empty()).then_some(Suggestion { completion, reasoning })
                })
                .take(3)
                .collect()
        })
        .unwrap_or_default()
}

/// The orchestrator's cost and context from `GET /api/orchestrator`.
pub fn orchestrator_cost(v: &Value) -> Option<(f64, u64, Option<u64>)> {
    let o = v.get("orchestrator")?;
    Some((
        o.get("total_cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
        o.get("context_used").and_then(Value::as_u64).unwrap_or(0),
        o.get("context_window").and_then(Value::as_u64),
    ))
}

/// The agent the orchestrator's own turns run as (`agent_id` of `GET /api/orchestrator`): its events
/// are the chat's thinking and action bubbles, and its timeline lane is "orchestrator".
pub fn orchestrator_agent(v: &Value) -> Option<orch_core::wire::Id> {
    v.get("agent_id")?.as_str()?.parse().ok()
}

/// The palette's system panel: the orchestrator's session and working directory, and what can be
/// inserted (from the seed's `GET /get_orchestrator`, which `orch serve` answers too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct System {
    /// The orchestrator's session id, once it has one.
    pub session_id: Option<String>,
    /// The server's working directory.
    pub cwd: String,
    /// Slash commands (`/name`).
    pub commands: Vec<String>,
    /// Agent templates' names.
    pub templates: Vec<String>,
    /// The orchestrator's tools' names.
    pub tools: Vec<String>,
}

/// Reads `GET /get_orchestrator`.
pub fn system(v: &Value) -> System {
    let names = |key: &str, field: &str| -> Vec<String> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.get(field).and_then(Value::as_str).map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let o = v.get("orchestrator");
    let info = o.and_then(|o| o.pointer("/metadata/system_message_info"));
    let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    System {
        session_id: text(o.and_then(|o| o.get("session_id"))),
        cwd: text(info.and_then(|i| i.get("cwd")))
            .or_else(|| text(o.and_then(|o| o.get("working_dir"))))
            .unwrap_or_default(),
        commands: names("slash_commands", "name")
            .into_iter()
            .map(|n| format!("/{}", n.trim_start_matches('/')))
            .collect(),
        templates: names("agent_templates", "name"),
        // `create_agent(name: string, …)`: the name before the parenthesis.
        tools: v
            .get("orchestrator_tools")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|t| t.split('(').next().unwrap_or(t).trim().to_string())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// An error answer's message (`{"error":{"message"}}`, the seed's `{"detail"}`), or the raw text.
pub fn error_message(status: u16, body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let msg = v.as_ref().and_then(|v| {
        v.pointer("/error/message").or_else(|| v.get("detail")).and_then(Value::as_str).map(str::to_string)
    });
    match msg {
        Some(m) => format!("{status}: {m}"),
        None if body.trim().is_empty() => format!("HTTP {status}"),
        None => format!("{status}: {}", crate::format::truncate(body.trim(), 200)),
    }
}

/// The event stream's URL on the page's own server (`http:` pages use `ws:`, `https:` ones `wss:`),
/// replaying after `since`.
pub fn ws_url(protocol: &str, host: &str, since: u64, token: Option<&str>) -> String {
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    match token {
        Some(t) => format!("{scheme}://{host}/ws?since={since}&token={}", percent_encode(t)),
        None => format!("{scheme}://{host}/ws?since={since}"),
    }
}

/// The server's token given in the page's query string (`?token=…`, as the server's start-up message
/// says to open it), decoded; and the query without it, to put back in the address bar.
pub fn token_in_query(search: &str) -> (Option<String>, String) {
    let query = search.strip_prefix('?').unwrap_or(search);
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("token=") {
            Some(t) if !t.is_empty() => token = Some(percent_decode(t)),
            Some(_) => {}
            None => rest.push(pair),
        }
    }
    let rest = if rest.is_empty() { String::new() } else { format!("?{}", rest.join("&")) };
    (token, rest)
}

/// A query value escaped (everything but unreserved characters).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// `%XX` escapes (and `+` as a space) of a query value decoded.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |k: usize| bytes.get(k).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames() {
        let ev = r#"{"seq":7,"timestamp":"2026-12-03T08:00:00Z","agent_id":null,"type":"Text","text":"hi"}"#;
        match parse_frame(ev) {
            Incoming::Event(r) => assert_eq!(r.seq, 7),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_frame(r#"{"frame":"live","last_seq":12}"#), Incoming::Live(12));
        assert_eq!(parse_frame(r#"{"frame":"cut_off","resume_from":13}"#), Incoming::Ending(Some(12)));
        assert_eq!(parse_frame(r#"{"frame":"seed","type":"agent_log","seq":7}"#), Incoming::Other);
        assert_eq!(parse_frame(r#"{"type":"connection_established"}"#), Incoming::Other);
        assert_eq!(parse_frame("not json"), Incoming::Other);
        // An event of a newer orch decodes as an unknown one rather than failing.
        let newer = r#"{"seq":8,"timestamp":"2026-12-03T08:00:00Z","type":"SomethingNew","x":1}"#;
        assert!(matches!(parse_frame(newer), Incoming::Event(_)));
    }

    #[test]
    fn answers_are_read_defensively() {
        let v = json!({"events": [
            {"seq": 9, "timestamp": "2026-12-03T08:00:00Z", "type": "Text", "text": "b"},
            {"seq": "bad"},
            {"seq": 3, "timestamp": "2026-12-03T08:00:00Z", "type": "Text", "text": "a"}
        ], "last_seq": 10});
        let (events, last) = events(&v);
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 9]);
        assert_eq!(last, 10);
        assert!(agents(&json!({"agents": [{"name": "half an agent"}]})).is_empty());
        assert!(agents(&json!({})).is_empty());
        assert_eq!(workflow_types(&json!({"types": [{"type": "plan_build"}, {"x": 1}]})), ["plan_build"]);
        let by_step = json!({"events_by_step": {"plan": [{"seq": 5, "timestamp": "2026-12-03T08:00:00Z", "type": "Text", "text": "p"}],
                                                "_workflow": [{"seq": 2, "timestamp": "2026-12-03T08:00:00Z", "type": "Text", "text": "w"}]}});
        assert_eq!(workflow_events(&by_step).iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 5]);
        assert_eq!(
            error_message(400, r#"{"error":{"code":"bad_request","message":"the message is empty"}}"#),
            "400: the message is empty"
        );
        assert_eq!(error_message(502, ""), "HTTP 502");
        assert_eq!(orchestrator_cost(&json!({"orchestrator": {"total_cost_usd": 1.5}})), Some((1.5, 0, None)));
        let id = "01a23be5-1bcc-705f-8442-1f1d475f078e";
        assert_eq!(orchestrator_agent(&json!({"orchestrator": {}, "agent_id": id})), id.parse().ok());
        assert!(orchestrator_agent(&json!({"agent_id": id})).is_some());
        assert_eq!(orchestrator_agent(&json!({"orchestrator": {}})), None);
        let s = suggestions(&json!({"suggestions": [{"completion": " then test it", "reasoning": "tests"},
                                                     {"completion": " "}, {"x": 1}, {"completion": "a"},
                                                     {"completion": "b"}, {"completion": "c"}]}));
        assert_eq!(s.iter().map(|s| s.completion.as_str()).collect::<Vec<_>>(), [" then test it", "a", "b"]);
        assert_eq!(s[0].reasoning, "tests");
        assert!(suggestions(&json!({})).is_empty());
    }

    #[test]
    fn the_system_panel_reads_the_orchestrator() {
        let v = json!({"orchestrator": {"session_id": "s-1", "working_dir": "/w",
                                        "metadata": {"system_message_info": {"cwd": "/srv/app"}}},
                       "slash_commands": [{"name": "plan"}, {"name": "/review"}, {"x": 1}],
                       "agent_templates": [{"name": "builder"}],
                       "orchestrator_tools": ["create_agent(name: string)", "list_agents()"]});
        let s = system(&v);
        assert_eq!(s.session_id.as_deref(), Some("s-1"));
        assert_eq!(s.cwd, "/srv/app");
        assert_eq!(s.commands, ["/plan", "/review"]);
        assert_eq!(s.templates, ["builder"]);
        assert_eq!(s.tools, ["create_agent", "list_agents"]);
        let bare = system(&json!({"orchestrator": {"session_id": null, "working_dir": "/w"}}));
        assert_eq!((bare.session_id, bare.cwd.as_str()), (None, "/w"));
    }

    #[test]
    fn urls() {
        assert_eq!(ws_url("http:", "127.0.0.1:9403", 0, None), "ws://127.0.0.1:9403/ws?since=0");
        assert_eq!(ws_url("https:", "orch.example", 42, None), "wss://orch.example/ws?since=42");
        assert_eq!(ws_url("http:", "h", 1, Some("a b&c")), "ws://h/ws?since=1&token=a%20b%26c");
        assert_eq!(token_in_query("?view=logs&token=s3cr%25t&q=x"), (Some("s3cr%t".into()), "?view=logs&q=x".into()));
        assert_eq!(token_in_query("?token=t"), (Some("t".into()), String::new()));
        assert_eq!(token_in_query("?view=logs"), (None, "?view=logs".into()));
        assert_eq!(percent_decode(&percent_encode("ä/?=&+ x")), "ä/?=&+ x");
    }
}
