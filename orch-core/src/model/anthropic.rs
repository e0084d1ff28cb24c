//! Anthropic's Messages API, streamed: [`AnthropicProvider`] (`anthropic:MODEL`).
//!
//! Each call POSTs `{base}/v1/messages` with `stream: true` over the shared [`HttpTransport`] (timeouts,
//! retries: see [`super::http`]), with the headers `x-api-key`, `anthropic-version: 2023-06-01` and
//! `content-type: application/json`.
//!
//! # Request
//!
//! - `system` is sent as a list of one text block; `tools` as `{name, description, input_schema}`.
//! - Messages keep their blocks: text, thinking **with its signature unchanged**, redacted thinking,
//!   tool use, and tool results linked by `tool_use_id` with `is_error`. Text blocks that are empty or
//!   only whitespace are left out (the API rejects them), and so are thinking blocks without a signature
//!   (they did not come from Anthropic, and the API would reject them); a message left empty is dropped.
//! - Extended thinking (`thinking: {type: enabled, budget_tokens}`) is asked for when the request has
//!   [`ModelRequest::thinking`], else when [`AnthropicConfig::thinking_budget`] is set. The API wants
//!   `budget_tokens` ≥ 1024 and below `max_tokens`; it says so in a 400 otherwise.
//!
//! # Prompt caching
//!
//! With [`AnthropicConfig::prompt_caching`] (default on), `cache_control: {"type": "ephemeral"}`
//! breakpoints are placed on the system prompt, on the **last** tool of the list (which caches all tool
//! definitions), and on the last content block of the conversation's **latest user message** (so each
//! call of an agent loop reads the previous call's prefix from the cache and writes the new one). That is
//! at most three breakpoints; the API allows four. Prefixes shorter than the model's minimum cacheable
//! length (1024 or 2048 tokens) are simply not cached. Cache reads and writes are reported in
//! [`Usage::cache_read_input_tokens`] and [`Usage::cache_creation_input_tokens`].
//!
//! # Stream
//!
//! `message_start` (usage incl. cache tokens), `content_block_start` (text, thinking, redacted thinking,
//! tool use), `content_block_delta` (`text_delta`, `input_json_delta`, `thinking_delta`,
//! `signature_delta`), `content_block_stop`, `message_delta` (output tokens, stop reason),
//! `message_stop`, `ping` and `error` map onto [`ModelDelta`]s by block index. An `error` event becomes
//! the [`ModelError`] of its type, carrying the API's type and message (an `overloaded_error` before
//! any output is retried). Unknown events, block types (e.g. server tools) and delta types are skipped.

use std::borrow::Cow;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::{EventMapper, Flow, HttpConfig, HttpTransport, SseEvent, error_from_api, header};
use super::{BlockStart, DeltaStream, ModelDelta, ModelError, ModelProvider, ModelRequest, StopReason};
use crate::wire::{ContentBlock, Message, Role, Usage};

/// The environment variable holding the API key.
pub const ENV_API_KEY: &str = "ANTHROPIC_API_KEY";
/// The environment variable that overrides the base URL.
pub const ENV_BASE_URL: &str = "ANTHROPIC_BASE_URL";
/// The `anthropic-version` header sent.
pub const API_VERSION: &str = "2023-06-01";

/// Settings of an [`AnthropicProvider`]. Its `Debug` output hides the API key.
#[derive(Clone, PartialEq)]
pub struct AnthropicConfig {
    /// The API key, sent as `x-api-key`.
    pub api_key: String,
    /// The base URL, without `/v1` (default [`AnthropicConfig::DEFAULT_BASE_URL`]).
    pub base_url: String,
    /// Timeouts and retries.
    pub http: HttpConfig,
    /// A thinking budget used when a request does not set [`ModelRequest::thinking`] (default none).
    pub thinking_budget: Option<u32>,
    /// Whether to place prompt-cache breakpoints (default true).
    pub prompt_caching: bool,
}

impl fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("http", &self.http)
            .field("thinking_budget", &self.thinking_budget)
            .field("prompt_caching", &self.prompt_caching)
            .finish()
    }
}

impl AnthropicConfig {
    /// The public API.
    pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

    /// Defaults with this API key.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            base_url: Self::DEFAULT_BASE_URL.to_string(),
            http: HttpConfig::default(),
            thinking_budget: None,
            prompt_caching: true,
        }
    }

    /// From the environment: [`ENV_API_KEY`] (required), [`ENV_BASE_URL`] (optional),
    /// [`ENV_THINKING_BUDGET`] (optional) and the transport settings of [`HttpConfig::from_env`].
    pub fn from_env() -> Result<Self, ModelError> {
        let api_key = std::env::var(ENV_API_KEY).ok().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
            ModelError::Auth { message: format!("{ENV_API_KEY} is not set: export it to use anthropic: models") }
        })?;
        let mut config = Self::new(api_key.trim());
        if let Some(base) = std::env::var(ENV_BASE_URL).ok().filter(|b| !b.trim().is_empty()) {
            config.base_url = base.trim().to_string();
        }
        config.http = HttpConfig::from_env();
        config.thinking_budget = parse_thinking_budget(std::env::var(ENV_THINKING_BUDGET).ok().as_deref())?;
        Ok(config)
    }
}

/// Turns on extended thinking with this token budget (e.g. `4096`; empty or `0` leaves it off).
pub const ENV_THINKING_BUDGET: &str = "ORCH_THINKING_BUDGET";

/// Parses [`ENV_THINKING_BUDGET`]: a whole number of tokens; empty or 0 means off.
fn parse_thinking_budget(value: Option<&str>) -> Result<Option<u32>, ModelError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.parse::<u32>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(ModelError::InvalidRequest {
                kind: "configuration".into(),
                message: format!("{ENV_THINKING_BUDGET} must be a whole number of tokens, not '{v}'"),
            }),
        },
    }
}

#[cfg(test)]
mod thinking_env_tests {
    use super::*;

    #[test]
    fn thinking_budget_parses_numbers_and_rejects_words() {
        assert_eq!(parse_thinking_budget(None).ok(), Some(None));
        assert_eq!(parse_thinking_budget(Some(" ")).ok(), Some(None));
        assert_eq!(parse_thinking_budget(Some("0")).ok(), Some(None));
        assert_eq!(parse_thinking_budget(Some("4096")).ok(), Some(Some(4096)));
        let err = parse_thinking_budget(Some("lots")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(ENV_THINKING_BUDGET) && err.contains("lots"), "{err}");
    }
}

/// Anthropic's Messages API as a [`ModelProvider`] named `anthropic`.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    config: AnthropicConfig,
    transport: HttpTransport,
    url: String,
    headers: HeaderMap,
}

impl AnthropicProvider {
    /// A provider with these settings. Fails when the key cannot be sent as a header or the HTTP client
    /// cannot be built.
    pub fn new(config: AnthropicConfig) -> Result<Self, ModelError> {
        let mut key = HeaderValue::from_str(&config.api_key).map_err(|_| ModelError::Auth {
            message: "the Anthropic API key holds characters that cannot be sent in an HTTP header".into(),
        })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header("x-api-key"), key);
        headers.insert(header("anthropic-version"), HeaderValue::from_static(API_VERSION));
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        let url = format!("{}/v1/messages", config.base_url.trim_end_matches('/'));
        let transport = HttpTransport::new(config.http.clone())?;
        Ok(Self { config, transport, url, headers })
    }

    /// A provider configured from the environment ([`AnthropicConfig::from_env`]).
    pub fn from_env() -> Result<Self, ModelError> {
        Self::new(AnthropicConfig::from_env()?)
    }

    /// Its settings.
    pub fn config(&self) -> &AnthropicConfig {
        &self.config
    }

    fn body(&self, request: &ModelRequest) -> Result<Vec<u8>, ModelError> {
        let caching = self.config.prompt_caching;
        let cache = || caching.then_some(CacheControl::EPHEMERAL);
        let model = request.model.strip_prefix("anthropic:").unwrap_or(&request.model);
        let system = request
            .system
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|text| vec![SystemBlock { kind: "text", text, cache_control: cache() }]);
        let last = request.tools.len().saturating_sub(1);
        let tools = request
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| ApiTool {
                name: &t.name,
                description: &t.description,
                input_schema: &t.input_schema,
                cache_control: if i == last { cache() } else { None },
            })
            .collect();
        let mut messages: Vec<ApiMessage<'_>> = request.messages.iter().filter_map(api_message).collect();
        if caching
            && let Some(m) = messages.iter_mut().rev().find(|m| m.role == "user")
            && let Some(b) = m.content.last_mut()
        {
            b.cache_control = cache();
        }
        let thinking = request
            .thinking
            .map(|t| t.budget_tokens)
            .or(self.config.thinking_budget)
            .map(|budget_tokens| ApiThinking { kind: "enabled", budget_tokens });
        let body =
            ApiRequest { model, max_tokens: request.max_tokens, system, messages, tools, thinking, stream: true };
        serde_json::to_vec(&body)
            .map_err(|e| ModelError::Other { message: format!("cannot encode the Anthropic request: {e}") })
    }
}

#[async_trait]
impl ModelProvider for AnthropicProvider {
    fn name(&self) -> &str {
        "anthropic"
    }

    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        let body = self.body(&request)?;
        tracing::debug!(model = %request.model, agent = %request.agent_name, bytes = body.len(), "anthropic call");
        Ok(self.transport.post_sse(
            self.url.clone(),
            self.headers.clone(),
            Bytes::from(body),
            AnthropicStreamMapper::new(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------------
// Request shapes
// ---------------------------------------------------------------------------------------------------

#[derive(Serialize, Clone, Copy)]
struct CacheControl {
    #[serde(rename = "type")]
    kind: &'static str,
}

impl CacheControl {
    const EPHEMERAL: Self = Self { kind: "ephemeral" };
}

#[derive(Serialize)]
struct ApiRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<Vec<SystemBlock<'a>>>,
    messages: Vec<ApiMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ApiTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<ApiThinking>,
    stream: bool,
}

#[derive(Serialize)]
struct SystemBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

#[derive(Serialize)]
struct ApiTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

#[derive(Serialize)]
struct ApiThinking {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: u32,
}

#[derive(Serialize)]
struct ApiMessage<'a> {
    role: &'static str,
    content: Vec<ApiBlock<'a>>,
}

#[derive(Serialize)]
struct ApiBlock<'a> {
    #[serde(flatten)]
    block: ApiBlockKind<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ApiBlockKind<'a> {
    Text {
        text: &'a str,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        content: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

fn api_message(message: &Message) -> Option<ApiMessage<'_>> {
    let content: Vec<ApiBlock<'_>> = message
        .content
        .iter()
        .filter_map(|b| {
            let block = match b {
                ContentBlock::Text { text } if text.trim().is_empty() => return None,
                ContentBlock::Text { text } => ApiBlockKind::Text { text },
                ContentBlock::Thinking { thinking, signature: Some(signature) } => {
                    ApiBlockKind::Thinking { thinking, signature }
                }
                ContentBlock::Thinking { signature: None, .. } => return None,
                ContentBlock::RedactedThinking { data } => ApiBlockKind::RedactedThinking { data },
                ContentBlock::ToolUse { id, name, input } => ApiBlockKind::ToolUse { id, name, input },
                ContentBlock::ToolResult { tool_use_id, content, is_error } => {
                    ApiBlockKind::ToolResult { tool_use_id, content, is_error: *is_error }
                }
            };
            Some(ApiBlock { block, cache_control: None })
        })
        .collect();
    if content.is_empty() {
        return None;
    }
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    Some(ApiMessage { role, content })
}

// ---------------------------------------------------------------------------------------------------
// Stream mapping
// ---------------------------------------------------------------------------------------------------

/// Maps Anthropic's streamed events onto [`ModelDelta`]s (block indices are kept). Use it with
/// [`super::http::decode_sse`] to decode a recorded stream.
#[derive(Debug, Clone, Default)]
pub struct AnthropicStreamMapper {
    /// Indices of blocks of unknown types, whose deltas are skipped.
    skipped: Vec<usize>,
    /// A stop reason arrived (`message_delta`).
    stopped: bool,
}

impl AnthropicStreamMapper {
    /// A mapper at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MessageStart {
    message: StartedMessage,
}

#[derive(Deserialize)]
struct StartedMessage {
    #[serde(default)]
    usage: Option<ApiUsage>,
}

#[derive(Deserialize, Default)]
struct ApiUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl ApiUsage {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_input_tokens: self.cache_read_input_tokens.unwrap_or(0),
            cache_creation_input_tokens: self.cache_creation_input_tokens.unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct BlockStartEvent {
    index: usize,
    content_block: StartedBlock,
}

#[derive(Deserialize)]
struct StartedBlock {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    thinking: Option<String>,
    signature: Option<String>,
    data: Option<String>,
    id: Option<String>,
    name: Option<String>,
    input: Option<Value>,
}

#[derive(Deserialize)]
struct BlockDeltaEvent<'a> {
    index: usize,
    #[serde(borrow)]
    delta: BlockDelta<'a>,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    text: Option<String>,
    partial_json: Option<String>,
    thinking: Option<String>,
    signature: Option<String>,
}

#[derive(Deserialize)]
struct BlockStopEvent {
    index: usize,
}

#[derive(Deserialize)]
struct MessageDeltaEvent {
    #[serde(default)]
    delta: MessageDeltaBody,
    #[serde(default)]
    usage: Option<ApiUsage>,
}

#[derive(Deserialize, Default)]
struct MessageDeltaBody {
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEvent {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

fn parse<'a, T: Deserialize<'a>>(kind: &str, data: &'a str) -> Result<T, ModelError> {
    serde_json::from_str(data)
        .map_err(|e| ModelError::Protocol { message: format!("Anthropic `{kind}` event: {e}: {}", quote(data)) })
}

fn quote(data: &str) -> String {
    crate::text::clip_chars(data, 200, "…")
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" | "pause_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "refusal" => StopReason::Refusal,
        other => {
            tracing::debug!(reason = other, "unknown Anthropic stop reason; taken as end_turn");
            StopReason::EndTurn
        }
    }
}

impl EventMapper for AnthropicStreamMapper {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<ModelDelta>) -> Result<Flow, ModelError> {
        let data = event.data.as_str();
        let kind: Cow<'_, str> = if event.event.is_empty() {
            parse::<TypeOnly<'_>>("unnamed", data)?.kind
        } else {
            Cow::Borrowed(event.event.as_str())
        };
        match kind.as_ref() {
            "content_block_delta" => {
                let e: BlockDeltaEvent<'_> = parse(&kind, data)?;
                if self.skipped.contains(&e.index) {
                    return Ok(Flow::Continue);
                }
                let index = e.index;
                let d = e.delta;
                match (d.kind.as_ref(), d.text, d.partial_json, d.thinking, d.signature) {
                    ("text_delta", Some(text), ..) => out.push(ModelDelta::Text { index, text }),
                    ("input_json_delta", _, Some(partial_json), ..) => {
                        out.push(ModelDelta::InputJson { index, partial_json })
                    }
                    ("thinking_delta", _, _, Some(thinking), _) => out.push(ModelDelta::Thinking { index, thinking }),
                    ("signature_delta", .., Some(signature)) => out.push(ModelDelta::Signature { index, signature }),
                    (other, ..) => tracing::debug!(delta = other, "skipping an unknown Anthropic delta"),
                }
            }
            "ping" => {}
            "message_start" => {
                let e: MessageStart = parse(&kind, data)?;
                if let Some(u) = e.message.usage {
                    out.push(ModelDelta::Usage(u.usage()));
                }
            }
            "content_block_start" => {
                let e: BlockStartEvent = parse(&kind, data)?;
                let index = e.index;
                let b = e.content_block;
                match b.kind.as_str() {
                    "text" => {
                        out.push(ModelDelta::BlockStart { index, block: BlockStart::Text });
                        if let Some(text) = b.text.filter(|t| !t.is_empty()) {
                            out.push(ModelDelta::Text { index, text });
                        }
                    }
                    "thinking" => {
                        out.push(ModelDelta::BlockStart { index, block: BlockStart::Thinking });
                        if let Some(thinking) = b.thinking.filter(|t| !t.is_empty()) {
                            out.push(ModelDelta::Thinking { index, thinking });
                        }
                        if let Some(signature) = b.signature.filter(|t| !t.is_empty()) {
                            out.push(ModelDelta::Signature { index, signature });
                        }
                    }
                    "redacted_thinking" => {
                        let data = b.data.unwrap_or_default();
                        out.push(ModelDelta::BlockStart { index, block: BlockStart::RedactedThinking { data } });
                    }
                    "tool_use" => {
                        let (Some(id), Some(name)) = (b.id, b.name) else {
                            return Err(ModelError::Protocol {
                                message: format!("Anthropic tool_use block {index} without id or name"),
                            });
                        };
                        out.push(ModelDelta::BlockStart { index, block: BlockStart::ToolUse { id, name } });
                        if let Some(input) = b.input.filter(|i| i.as_object().is_some_and(|o| !o.is_empty())) {
                            out.push(ModelDelta::InputJson { index, partial_json: input.to_string() });
                        }
                    }
                    other => {
                        tracing::debug!(block = other, index, "skipping an Anthropic content block of unknown type");
                        self.skipped.push(index);
                    }
                }
            }
            "content_block_stop" => {
                let e: BlockStopEvent = parse(&kind, data)?;
                if !self.skipped.contains(&e.index) {
                    out.push(ModelDelta::BlockStop { index: e.index });
                }
            }
            "message_delta" => {
                let e: MessageDeltaEvent = parse(&kind, data)?;
                if let Some(u) = e.usage {
                    out.push(ModelDelta::Usage(u.usage()));
                }
                if let Some(reason) = e.delta.stop_reason {
                    self.stopped = true;
                    out.push(ModelDelta::Stop { reason: stop_reason(&reason) });
                }
            }
            "message_stop" => return Ok(Flow::Done),
            "error" => {
                let e: ErrorEvent = parse(&kind, data)?;
                let kind = if e.error.kind.is_empty() { "error" } else { e.error.kind.as_str() };
                return Err(error_from_api(kind, &e.error.message));
            }
            other => tracing::debug!(event = other, "skipping an unknown Anthropic event"),
        }
        Ok(Flow::Continue)
    }

    fn on_end(&mut self, _out: &mut Vec<ModelDelta>) -> Result<(), ModelError> {
        if self.stopped {
            Ok(())
        } else {
            Err(ModelError::StreamBroken { message: "the Anthropic stream ended before message_stop".into() })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let p = AnthropicProvider::new(AnthropicConfig::new("sk-ant-very-secret")).unwrap();
        let shown = format!("{p:?} {:?}", p.config());
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn blocks_the_api_would_reject_are_left_out() {
        let mut config = AnthropicConfig::new("k");
        config.prompt_caching = false;
        config.thinking_budget = Some(1024);
        let p = AnthropicProvider::new(config).unwrap();
        let request = ModelRequest {
            model: "anthropic:claude-haiku-4-5".into(),
            system: Some("  ".into()),
            messages: Arc::new(vec![
                Message::user_text("hi"),
                Message {
                    role: Role::Assistant,
                    content: vec![
                        ContentBlock::Thinking { thinking: "unsigned".into(), signature: None },
                        ContentBlock::Text { text: " \n".into() },
                        ContentBlock::Text { text: "hello".into() },
                    ],
                },
                Message { role: Role::Assistant, content: vec![ContentBlock::Text { text: String::new() }] },
                Message::user_text("bye"),
            ]),
            tools: Arc::new(Vec::new()),
            max_tokens: 2048,
            thinking: None,
            agent_name: "a".into(),
        };
        let body: Value = serde_json::from_slice(&p.body(&request).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"model": "claude-haiku-4-5", "max_tokens": 2048, "stream": true,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
                {"role": "user", "content": [{"type": "text", "text": "bye"}]},
            ]})
        );
    }
}
