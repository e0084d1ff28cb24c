//! Parsing Claude Code's `--output-format stream-json` lines (one JSON object per line) into what the
//! executor records. Tolerant: unknown fields are ignored, missing ones default, and a line that is not
//! JSON or of an unknown `type` is reported as such rather than failing the run.

use serde_json::Value;

use crate::wire::{CompactTrigger, Usage};

/// How the user message that carries a compaction's summary begins.
const SUMMARY_PREFIX: &str = "This session is being continued from a previous conversation";

/// One content block of an `assistant` line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// Text.
    Text(String),
    /// Thinking, with its signature.
    Thinking { thinking: String, signature: Option<String> },
    /// A tool call.
    ToolUse { id: String, name: String, input: Value },
}

/// One `tool_result` block of a `user` line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolResultBlock {
    pub tool_use_id: String,
    pub content: String,
    pub is_error: bool,
}

/// The final `result` line.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ResultLine {
    /// `success`, `error_max_turns`, `error_during_execution`, `error_max_budget_usd`, …
    pub subtype: String,
    /// The authoritative failure flag (API errors come with `subtype: success`).
    pub is_error: bool,
    /// The final text (absent on most `error_*` subtypes).
    pub result: Option<String>,
    /// `errors: [...]` of `error_*` subtypes.
    pub errors: Vec<String>,
    pub session_id: Option<String>,
    pub total_cost_usd: f64,
    pub usage: Usage,
    pub num_turns: u32,
    pub duration_ms: Option<u64>,
    /// The model's last stop reason (`end_turn`, …).
    pub stop_reason: Option<String>,
    /// HTTP status of an API error.
    pub api_error_status: Option<u16>,
    /// The model, when `modelUsage` names exactly one.
    pub model: Option<String>,
    /// Context windows by model, from `modelUsage.<model>.contextWindow`.
    pub context_windows: Vec<(String, u64)>,
}

impl ResultLine {
    /// Why the turn ended, in the native loop's words.
    pub fn stop_reason(&self) -> String {
        if !self.is_error {
            return self.stop_reason.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "end_turn".to_string());
        }
        match self.subtype.as_str() {
            "error_max_turns" => "max_turns".into(),
            "error_max_budget_usd" => "max_budget".into(),
            _ => "error".into(),
        }
    }

    /// The text describing the outcome: the result, or the errors.
    pub fn text(&self) -> Option<String> {
        if self.errors.is_empty() { self.result.clone() } else { Some(self.errors.join("; ")) }
    }

    /// The context window of `model` as `modelUsage` gives it, else the largest it gives.
    pub fn context_window(&self, model: &str) -> Option<u64> {
        self.context_windows
            .iter()
            .find(|(m, _)| m == model)
            .or_else(|| self.context_windows.iter().max_by_key(|(_, w)| *w))
            .map(|(_, w)| *w)
    }
}

/// What one stdout line means.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line {
    /// `system`/`init`.
    Init { session_id: Option<String>, model: Option<String>, tools: Vec<String>, raw: Value },
    /// `system`/`api_retry`.
    Retry { attempt: u32, wait_ms: u64, error: String },
    /// `system`/`compact_boundary`: what started it (`auto`, `manual`) and the tokens before.
    Compact { trigger: CompactTrigger, pre_tokens: u64 },
    /// `assistant`: its blocks, or (for `<synthetic>` API-error messages) the error.
    Assistant {
        blocks: Vec<Block>,
        api_error: Option<String>,
        message_id: Option<String>,
        /// The `Task` call whose subagent wrote it (top-level `parent_tool_use_id`); `None` for the agent's own.
        parent: Option<String>,
        /// The context the call used: `message.usage` input, cache reads and cache writes (0 when absent).
        context: u64,
    },
    /// `user`: the tool results it carries.
    User {
        results: Vec<ToolResultBlock>,
        /// The `Task` call whose subagent it belongs to (top-level `parent_tool_use_id`).
        parent: Option<String>,
        /// The summary text, when this is the message a compaction left in place of the conversation.
        summary: Option<String>,
    },
    /// `result`.
    Result(Box<ResultLine>),
    /// A known line that carries nothing to record (`stream_event`, other `system` subtypes).
    Ignored,
    /// JSON of an unknown `type` (or no `type`).
    Unknown { kind: String },
    /// Not JSON at all.
    NotJson { error: String },
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn u64_field(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(|x| x.as_u64().or_else(|| x.as_f64().map(|f| f.max(0.0) as u64))).unwrap_or(0)
}

/// Text of a `tool_result` content: a string, or the text of its blocks.
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .map(|b| match b.get("type").and_then(Value::as_str) {
                Some("text") => b.get("text").and_then(Value::as_str).unwrap_or_default().to_string(),
                Some(kind) => format!("[{kind}]"),
                None => b.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
    }
}

fn usage_of(v: Option<&Value>) -> Usage {
    match v {
        Some(u) => Usage {
            input_tokens: u64_field(u, "input_tokens"),
            output_tokens: u64_field(u, "output_tokens"),
            cache_read_input_tokens: u64_field(u, "cache_read_input_tokens"),
            cache_creation_input_tokens: u64_field(u, "cache_creation_input_tokens"),
        },
        None => Usage::default(),
    }
}

fn parse_result(v: &Value) -> ResultLine {
    let mut usage = usage_of(v.get("usage"));
    let model_usage = v.get("modelUsage").and_then(Value::as_object);
    // With `--max-budget-usd` the CLI reported zero `usage` but the real counts in `modelUsage`.
    if usage.total() == 0
        && let Some(mu) = model_usage
    {
        for m in mu.values() {
            usage.add(&Usage {
                input_tokens: u64_field(m, "inputTokens"),
                output_tokens: u64_field(m, "outputTokens"),
                cache_read_input_tokens: u64_field(m, "cacheReadInputTokens"),
                cache_creation_input_tokens: u64_field(m, "cacheCreationInputTokens"),
            });
        }
    }
    // Cost: the top-level figure, else the seed's fallback `usage.total_cost_usd`, else the per-model sum.
    let total_cost_usd = v
        .get("total_cost_usd")
        .and_then(Value::as_f64)
        .or_else(|| v.get("usage").and_then(|u| u.get("total_cost_usd")).and_then(Value::as_f64))
        .or_else(|| model_usage.map(|mu| mu.values().filter_map(|m| m.get("costUSD").and_then(Value::as_f64)).sum()))
        .unwrap_or(0.0);
    let model = model_usage.filter(|mu| mu.len() == 1).and_then(|mu| mu.keys().next().cloned());
    let context_windows = model_usage
        .into_iter()
        .flatten()
        .filter_map(|(m, u)| u.get("contextWindow").and_then(Value::as_u64).filter(|w| *w > 0).map(|w| (m.clone(), w)))
        .collect();
    ResultLine {
        subtype: str_field(v, "subtype").unwrap_or_default(),
        is_error: v.get("is_error").and_then(Value::as_bool).unwrap_or(false),
        result: str_field(v, "result"),
        errors: v
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())).collect())
            .unwrap_or_default(),
        session_id: str_field(v, "session_id"),
        total_cost_usd,
        usage,
        num_turns: u32::try_from(u64_field(v, "num_turns")).unwrap_or(u32::MAX),
        duration_ms: v.get("duration_ms").and_then(Value::as_u64),
        stop_reason: str_field(v, "stop_reason"),
        api_error_status: v.get("api_error_status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()),
        model,
        context_windows,
    }
}

fn parse_assistant(v: &Value) -> Line {
    let message = v.get("message");
    let content = message.and_then(|m| m.get("content")).and_then(Value::as_array);
    let mut blocks = Vec::new();
    for b in content.into_iter().flatten() {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => blocks.push(Block::Text(str_field(b, "text").unwrap_or_default())),
            Some("thinking") => blocks.push(Block::Thinking {
                thinking: str_field(b, "thinking").unwrap_or_default(),
                signature: str_field(b, "signature"),
            }),
            Some("tool_use") | Some("server_tool_use") => blocks.push(Block::ToolUse {
                id: str_field(b, "id").unwrap_or_default(),
                name: str_field(b, "name").unwrap_or_default(),
                input: b.get("input").cloned().unwrap_or(Value::Null),
            }),
            _ => {}
        }
    }
    // API failures come as a `<synthetic>` message with one text block and a top-level `error`.
    let synthetic = message.and_then(|m| m.get("model")).and_then(Value::as_str) == Some("<synthetic>");
    let api_error = if synthetic || v.get("error").is_some_and(|e| !e.is_null()) {
        let text = blocks
            .iter()
            .filter_map(|b| match b {
                Block::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        Some(if text.is_empty() { str_field(v, "error").unwrap_or_else(|| "API error".into()) } else { text })
    } else {
        None
    };
    if api_error.is_some() {
        blocks.clear();
    }
    let usage = usage_of(message.and_then(|m| m.get("usage")));
    Line::Assistant {
        blocks,
        api_error,
        message_id: message.and_then(|m| str_field(m, "id")),
        parent: parent_of(v),
        context: usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens,
    }
}

/// The top-level `parent_tool_use_id`: the `Task` call a subagent's line belongs to.
fn parent_of(v: &Value) -> Option<String> {
    str_field(v, "parent_tool_use_id").filter(|p| !p.is_empty())
}

fn parse_user(v: &Value) -> Line {
    let content = v.get("message").and_then(|m| m.get("content"));
    let text = match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    let flagged = v.get("isCompactSummary").and_then(Value::as_bool).unwrap_or(false);
    let summary = (!text.is_empty() && (flagged || text.trim_start().starts_with(SUMMARY_PREFIX))).then_some(text);
    let results = content
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|b| ToolResultBlock {
            tool_use_id: str_field(b, "tool_use_id").unwrap_or_default(),
            content: content_text(b.get("content")),
            is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
        })
        .collect();
    Line::User { results, parent: parent_of(v), summary }
}

/// Parses one stdout line (without its line break).
pub(crate) fn parse_line(line: &str) -> Line {
    let v: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Line::NotJson { error: e.to_string() },
    };
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "system" => match v.get("subtype").and_then(Value::as_str).unwrap_or_default() {
            "init" => Line::Init {
                session_id: str_field(&v, "session_id"),
                model: str_field(&v, "model"),
                tools: v
                    .get("tools")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default(),
                raw: v,
            },
            "api_retry" => {
                let status = v.get("error_status").and_then(Value::as_u64);
                let error = str_field(&v, "error").unwrap_or_else(|| "error".into());
                Line::Retry {
                    attempt: u32::try_from(u64_field(&v, "attempt")).unwrap_or(u32::MAX),
                    wait_ms: u64_field(&v, "retry_delay_ms"),
                    error: match status {
                        Some(s) => format!("{s} {error}"),
                        None => error,
                    },
                }
            }
            "compact_boundary" => {
                let meta = v.get("compact_metadata");
                let trigger = match meta.and_then(|m| m.get("trigger")).and_then(Value::as_str) {
                    Some("auto") => CompactTrigger::Auto,
                    Some("manual") => CompactTrigger::Manual,
                    _ => CompactTrigger::Other,
                };
                Line::Compact { trigger, pre_tokens: meta.map(|m| u64_field(m, "pre_tokens")).unwrap_or(0) }
            }
            _ => Line::Ignored,
        },
        "assistant" => parse_assistant(&v),
        "user" => parse_user(&v),
        "result" => Line::Result(Box::new(parse_result(&v))),
        "stream_event" => Line::Ignored,
        other => Line::Unknown { kind: if other.is_empty() { "(none)".into() } else { other.to_string() } },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_the_documented_lines() {
        let init = r#"{"type":"system","subtype":"init","cwd":"/w","session_id":"s1","tools":["Bash","Write"],"model":"claude-sonnet-4-5","permissionMode":"acceptEdits"}"#;
        match parse_line(init) {
            Line::Init { session_id, model, tools, .. } => {
                assert_eq!(session_id.as_deref(), Some("s1"));
                assert_eq!(model.as_deref(), Some("claude-sonnet-4-5"));
                assert_eq!(tools, vec!["Bash", "Write"]);
            }
            other => panic!("{other:?}"),
        }
        let tool = r#"{"type":"assistant","message":{"id":"m","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"tool_use","id":"toolu_1","name":"Write","input":{"file_path":"a"}}],"stop_reason":null,"usage":{"input_tokens":1,"output_tokens":1}},"parent_tool_use_id":null,"session_id":"s1"}"#;
        assert_eq!(
            parse_line(tool),
            Line::Assistant {
                blocks: vec![Block::ToolUse {
                    id: "toolu_1".into(),
                    name: "Write".into(),
                    input: serde_json::json!({"file_path": "a"})
                }],
                api_error: None,
                message_id: Some("m".into()),
                parent: None,
                context: 1,
            }
        );
        let user = r#"{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_1","type":"tool_result","content":[{"type":"text","text":"ok"}],"is_error":true}]}}"#;
        assert_eq!(
            parse_line(user),
            Line::User {
                results: vec![ToolResultBlock { tool_use_id: "toolu_1".into(), content: "ok".into(), is_error: true }],
                parent: None,
                summary: None,
            }
        );
        let api = r#"{"type":"assistant","message":{"model":"<synthetic>","content":[{"type":"text","text":"API Error: 400 bad"}]},"error":"unknown"}"#;
        match parse_line(api) {
            Line::Assistant { blocks, api_error, .. } => {
                assert!(blocks.is_empty());
                assert_eq!(api_error.as_deref(), Some("API Error: 400 bad"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_results() {
        let ok = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":1194,"num_turns":2,"result":"Done","stop_reason":"end_turn","session_id":"s1","total_cost_usd":0.00876,"usage":{"input_tokens":2400,"cache_creation_input_tokens":0,"cache_read_input_tokens":600,"output_tokens":92},"modelUsage":{"claude-sonnet-4-5":{"inputTokens":2400}}}"#;
        let Line::Result(r) = parse_line(ok) else { panic!() };
        assert_eq!(r.usage.input_tokens, 2400);
        assert_eq!(r.usage.cache_read_input_tokens, 600);
        assert_eq!(r.usage.output_tokens, 92);
        assert!((r.total_cost_usd - 0.00876).abs() < 1e-12);
        assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(r.stop_reason(), "end_turn");
        let budget = r#"{"type":"result","subtype":"error_max_budget_usd","is_error":true,"errors":["Reached maximum budget ($0.001)"],"total_cost_usd":0.00489,"usage":{"input_tokens":0,"output_tokens":0},"modelUsage":{"m":{"inputTokens":1200,"outputTokens":80,"costUSD":0.00489}}}"#;
        let Line::Result(r) = parse_line(budget) else { panic!() };
        assert_eq!(r.usage.input_tokens, 1200);
        assert_eq!(r.stop_reason(), "max_budget");
        assert_eq!(r.text().as_deref(), Some("Reached maximum budget ($0.001)"));
        let api = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":400,"result":"API Error: 400 x","total_cost_usd":0}"#;
        let Line::Result(r) = parse_line(api) else { panic!() };
        assert_eq!(r.stop_reason(), "error");
        assert_eq!(r.api_error_status, Some(400));
    }

    #[test]
    fn parses_subagent_lines_compaction_and_context() {
        let sub = r#"{"type":"assistant","message":{"id":"m2","model":"claude-sonnet-4-5","content":[{"type":"text","text":"found it"}],"usage":{"input_tokens":900,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":1}},"parent_tool_use_id":"toolu_task","session_id":"s1","uuid":"u"}"#;
        match parse_line(sub) {
            Line::Assistant { parent, context, blocks, .. } => {
                assert_eq!(parent.as_deref(), Some("toolu_task"));
                assert_eq!(context, 1020);
                assert_eq!(blocks, vec![Block::Text("found it".into())]);
            }
            other => panic!("{other:?}"),
        }
        let result = r#"{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_r","type":"tool_result","content":"x"}]},"parent_tool_use_id":"toolu_task","session_id":"s1","uuid":"u"}"#;
        assert!(matches!(parse_line(result), Line::User { parent: Some(p), summary: None, .. } if p == "toolu_task"));
        let boundary = r#"{"type":"system","subtype":"compact_boundary","compact_metadata":{"trigger":"manual","pre_tokens":150000},"session_id":"s1","uuid":"u"}"#;
        assert_eq!(parse_line(boundary), Line::Compact { trigger: CompactTrigger::Manual, pre_tokens: 150_000 });
        let odd = r#"{"type":"system","subtype":"compact_boundary","session_id":"s1"}"#;
        assert_eq!(parse_line(odd), Line::Compact { trigger: CompactTrigger::Other, pre_tokens: 0 });
        let summary = r#"{"type":"user","message":{"role":"user","content":"This session is being continued from a previous conversation that ran out of context. Summary: wrote a.txt."},"parent_tool_use_id":null,"session_id":"s1","uuid":"u"}"#;
        match parse_line(summary) {
            Line::User { results, summary: Some(text), parent: None } => {
                assert!(results.is_empty());
                assert!(text.ends_with("Summary: wrote a.txt."));
            }
            other => panic!("{other:?}"),
        }
        let flagged = r#"{"type":"user","isCompactSummary":true,"message":{"role":"user","content":[{"type":"text","text":"Earlier: a.txt"}]}}"#;
        assert!(matches!(parse_line(flagged), Line::User { summary: Some(t), .. } if t == "Earlier: a.txt"));
        let plain = r#"{"type":"user","message":{"role":"user","content":[{"type":"text","text":"hello"}]}}"#;
        assert!(matches!(parse_line(plain), Line::User { summary: None, .. }));
        let ok = r#"{"type":"result","subtype":"success","is_error":false,"modelUsage":{"claude-haiku-4-5":{"inputTokens":5,"contextWindow":100000},"claude-sonnet-4-5":{"inputTokens":9,"contextWindow":200000},"x":{"inputTokens":1}}}"#;
        let Line::Result(r) = parse_line(ok) else { panic!() };
        assert_eq!(r.context_window("claude-haiku-4-5"), Some(100_000));
        assert_eq!(r.context_window("claude-code"), Some(200_000), "the largest when the model is not listed");
        assert_eq!(ResultLine::default().context_window("m"), None);
    }

    #[test]
    fn reports_garbage() {
        assert!(matches!(parse_line("not json"), Line::NotJson { .. }));
        assert_eq!(parse_line(r#"{"type":"mystery"}"#), Line::Unknown { kind: "mystery".into() });
        assert_eq!(parse_line(r#"{"type":"system","subtype":"status"}"#), Line::Ignored);
    }
}
