//! OpenAI-compatible Chat Completions, streamed: [`OpenAiProvider`] for `openai:MODEL` (OpenAI, vLLM,
//! llama.cpp, any compatible server) and `ollama:MODEL` (Ollama's `/v1` endpoint).
//!
//! Each call POSTs `{base}/chat/completions` with `stream: true` and
//! `stream_options: {include_usage: true}` over the shared [`HttpTransport`] (timeouts, retries: see
//! [`super::http`]). `Authorization: Bearer KEY` is sent only when a key is configured.
//!
//! # Request
//!
//! - The system prompt is the first message (`role: system`).
//! - User text blocks are joined (blank line between) into one `user` message; tool results become
//!   `role: tool` messages with `tool_call_id`, placed before the user text. Chat Completions has no error
//!   flag for tool results: a failed result's content is prefixed with `Error: `.
//! - Assistant messages carry their text as `content` and their tool calls as
//!   `tool_calls: [{id, type: function, function: {name, arguments}}]`, `arguments` being the input as a
//!   JSON string. Thinking and redacted thinking blocks are dropped (the format has no place for them).
//! - Tools are `[{type: function, function: {name, description, parameters}}]`.
//! - The output limit is sent as `max_completion_tokens` or `max_tokens` ([`MaxTokensField`]).
//!
//! # Stream
//!
//! `choices[0].delta.content` becomes a text block; `delta.reasoning_content` / `delta.reasoning` (sent
//! by DeepSeek, vLLM, Ollama and others) a thinking block without signature; each tool call of
//! `delta.tool_calls[]` (matched by `index`, its first chunk carrying `id` and `function.name`, later ones
//! pieces of `function.arguments` cut anywhere) a tool-use block. Block indices are given in order of
//! appearance (normally the text first, then one per tool call). `finish_reason` maps `stop` → end turn
//! (tool use when tool calls were made), `tool_calls` → tool use, `length` → max tokens,
//! `content_filter` → refusal. The usage chunk maps `prompt_tokens − cached_tokens` to input tokens and
//! `prompt_tokens_details.cached_tokens` to cache reads. `data: [DONE]` ends the answer; a stream that
//! ends without it and without a `finish_reason` is broken. An `{"error": …}` chunk becomes the
//! [`ModelError`] of its type with the API's message.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::{EventMapper, Flow, HttpConfig, HttpTransport, SseEvent, error_from_api, parse_api_error};
use super::{BlockStart, DeltaStream, ModelDelta, ModelError, ModelProvider, ModelRequest, StopReason};
use crate::wire::{ContentBlock, Message, Role, Usage};

/// The environment variable holding the OpenAI API key (optional).
pub const ENV_API_KEY: &str = "OPENAI_API_KEY";
/// The environment variable that overrides the OpenAI base URL.
pub const ENV_BASE_URL: &str = "OPENAI_BASE_URL";
/// The environment variable naming the Ollama server.
pub const ENV_OLLAMA_HOST: &str = "OLLAMA_HOST";

/// Which field carries the output limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    /// `max_completion_tokens`: OpenAI's current field (required by its reasoning models).
    MaxCompletionTokens,
    /// `max_tokens`: the older field, understood by Ollama and most compatible servers.
    MaxTokens,
}

/// Settings of an [`OpenAiProvider`]. Its `Debug` output hides the API key.
#[derive(Clone, PartialEq)]
pub struct OpenAiConfig {
    /// The API key, sent as `Authorization: Bearer …`; none sends no `Authorization` header.
    pub api_key: Option<String>,
    /// The base URL, including `/v1` (default [`OpenAiConfig::DEFAULT_BASE_URL`]).
    pub base_url: String,
    /// Timeouts and retries.
    pub http: HttpConfig,
    /// What [`ModelProvider::name`] returns: `openai` or `ollama`, so that agents' `openai:…` or
    /// `ollama:…` model strings route to this provider.
    pub provider_name: String,
    /// Which field carries the output limit.
    pub max_tokens_field: MaxTokensField,
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("http", &self.http)
            .field("provider_name", &self.provider_name)
            .field("max_tokens_field", &self.max_tokens_field)
            .finish()
    }
}

impl OpenAiConfig {
    /// OpenAI's API.
    pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
    /// Ollama's default address.
    pub const DEFAULT_OLLAMA_HOST: &str = "http://127.0.0.1:11434";

    /// OpenAI's API with this key (`provider_name` `openai`, `max_completion_tokens`).
    pub fn new(api_key: Option<String>) -> Self {
        Self {
            api_key,
            base_url: Self::DEFAULT_BASE_URL.to_string(),
            http: HttpConfig::default(),
            provider_name: "openai".to_string(),
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
        }
    }

    /// An OpenAI-compatible server at `base_url` (which includes `/v1`), named `openai`, sending
    /// `max_tokens`.
    pub fn compatible(base_url: impl Into<String>, api_key: Option<String>) -> Self {
        Self { base_url: base_url.into(), max_tokens_field: MaxTokensField::MaxTokens, ..Self::new(api_key) }
    }

    /// An Ollama server at `host` (`http://host:port`, or `host[:port]`; the port defaults to 11434),
    /// reached at `{host}/v1`, named `ollama`, without key.
    pub fn ollama(host: &str) -> Self {
        Self { provider_name: "ollama".to_string(), ..Self::compatible(format!("{}/v1", ollama_base(host)), None) }
    }

    /// From the environment: [`ENV_API_KEY`] (optional), [`ENV_BASE_URL`] (default OpenAI's API; another
    /// server gets `max_tokens`) and the transport settings of [`HttpConfig::from_env`].
    pub fn from_env() -> Self {
        let key = std::env::var(ENV_API_KEY).ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
        let mut config = match std::env::var(ENV_BASE_URL).ok().map(|b| b.trim().to_string()).filter(|b| !b.is_empty())
        {
            Some(base) if !base.trim_end_matches('/').eq_ignore_ascii_case(Self::DEFAULT_BASE_URL) => {
                Self::compatible(base, key)
            }
            _ => Self::new(key),
        };
        config.http = HttpConfig::from_env();
        config
    }

    /// Ollama from the environment: [`ENV_OLLAMA_HOST`] (default [`OpenAiConfig::DEFAULT_OLLAMA_HOST`])
    /// and the transport settings of [`HttpConfig::from_env`].
    pub fn ollama_from_env() -> Self {
        let host = std::env::var(ENV_OLLAMA_HOST).ok().filter(|h| !h.trim().is_empty());
        let mut config = Self::ollama(host.as_deref().unwrap_or(Self::DEFAULT_OLLAMA_HOST));
        config.http = HttpConfig::from_env();
        config
    }
}

/// `OLLAMA_HOST` as a base URL: a scheme and a port are added when missing.
fn ollama_base(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let (scheme, rest) = match host.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("http", host),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let has_port = match authority.rfind(']') {
        Some(i) => authority[i..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port || authority.is_empty() {
        format!("{scheme}://{rest}")
    } else {
        format!("{scheme}://{authority}:11434{}", &rest[authority.len()..])
    }
}

/// OpenAI-compatible Chat Completions as a [`ModelProvider`] named by [`OpenAiConfig::provider_name`].
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    config: OpenAiConfig,
    transport: HttpTransport,
    url: String,
    headers: HeaderMap,
}

impl OpenAiProvider {
    /// A provider with these settings. Fails when the key cannot be sent as a header or the HTTP client
    /// cannot be built.
    pub fn new(config: OpenAiConfig) -> Result<Self, ModelError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &config.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| ModelError::Auth {
                message: "the OpenAI API key holds characters that cannot be sent in an HTTP header".into(),
            })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        let transport = HttpTransport::new(config.http.clone())?;
        Ok(Self { config, transport, url, headers })
    }

    /// OpenAI (or the server of `OPENAI_BASE_URL`) configured from the environment
    /// ([`OpenAiConfig::from_env`]).
    pub fn from_env() -> Result<Self, ModelError> {
        Self::new(OpenAiConfig::from_env())
    }

    /// Ollama configured from the environment ([`OpenAiConfig::ollama_from_env`]).
    pub fn ollama_from_env() -> Result<Self, ModelError> {
        Self::new(OpenAiConfig::ollama_from_env())
    }

    /// Its settings.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    fn body(&self, request: &ModelRequest) -> Result<Vec<u8>, ModelError> {
        let prefix = format!("{}:", self.config.provider_name);
        let model = request.model.strip_prefix(prefix.as_str()).unwrap_or(&request.model);
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = request.system.as_deref().filter(|s| !s.trim().is_empty()) {
            messages.push(OaMessage::text("system", system.to_string()));
        }
        for m in request.messages.iter() {
            push_messages(m, &mut messages);
        }
        let tools = request
            .tools
            .iter()
            .map(|t| OaTool {
                kind: "function",
                function: OaFunction { name: &t.name, description: &t.description, parameters: &t.input_schema },
            })
            .collect();
        let (max_tokens, max_completion_tokens) = match self.config.max_tokens_field {
            MaxTokensField::MaxTokens => (Some(request.max_tokens), None),
            MaxTokensField::MaxCompletionTokens => (None, Some(request.max_tokens)),
        };
        let body = OaRequest {
            model,
            messages,
            tools,
            max_tokens,
            max_completion_tokens,
            stream: true,
            stream_options: StreamOptions { include_usage: true },
        };
        serde_json::to_vec(&body)
            .map_err(|e| ModelError::Other { message: format!("cannot encode the chat completions request: {e}") })
    }
}

#[async_trait]
impl ModelProvider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.config.provider_name
    }

    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        let body = self.body(&request)?;
        tracing::debug!(
            provider = %self.config.provider_name,
            model = %request.model,
            agent = %request.agent_name,
            bytes = body.len(),
            "chat completions call"
        );
        Ok(self.transport.post_sse(
            self.url.clone(),
            self.headers.clone(),
            Bytes::from(body),
            OpenAiStreamMapper::new(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------------
// Request shapes
// ---------------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct OaRequest<'a> {
    model: &'a str,
    messages: Vec<OaMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OaTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct OaTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: OaFunction<'a>,
}

#[derive(Serialize)]
struct OaFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

#[derive(Serialize)]
struct OaMessage<'a> {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OaToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

impl OaMessage<'_> {
    fn text(role: &'static str, content: String) -> Self {
        Self { role, content: Some(content), tool_calls: Vec::new(), tool_call_id: None }
    }
}

#[derive(Serialize)]
struct OaToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: OaFunctionCall<'a>,
}

#[derive(Serialize)]
struct OaFunctionCall<'a> {
    name: &'a str,
    arguments: String,
}

fn join_text<'a>(blocks: impl Iterator<Item = &'a ContentBlock>) -> Option<String> {
    let mut text = String::new();
    for b in blocks {
        if let ContentBlock::Text { text: t } = b {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(t);
        }
    }
    (!text.is_empty()).then_some(text)
}

fn push_messages<'a>(message: &'a Message, out: &mut Vec<OaMessage<'a>>) {
    match message.role {
        Role::User => {
            for b in &message.content {
                if let ContentBlock::ToolResult { tool_use_id, content, is_error } = b {
                    let content = if *is_error && !content.starts_with("Error") {
                        format!("Error: {content}")
                    } else {
                        content.clone()
                    };
                    out.push(OaMessage {
                        role: "tool",
                        content: Some(content),
                        tool_calls: Vec::new(),
                        tool_call_id: Some(tool_use_id),
                    });
                }
            }
            if let Some(text) = join_text(message.content.iter()) {
                out.push(OaMessage::text("user", text));
            }
        }
        Role::Assistant => {
            let tool_calls: Vec<OaToolCall<'a>> = message
                .content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolUse { id, name, input } => Some(OaToolCall {
                        id,
                        kind: "function",
                        function: OaFunctionCall { name, arguments: input.to_string() },
                    }),
                    _ => None,
                })
                .collect();
            let content = join_text(message.content.iter());
            if content.is_some() || !tool_calls.is_empty() {
                out.push(OaMessage { role: "assistant", content, tool_calls, tool_call_id: None });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Stream mapping
// ---------------------------------------------------------------------------------------------------

/// Maps Chat Completions stream chunks onto [`ModelDelta`]s, giving block indices in order of
/// appearance. Use it with [`super::http::decode_sse`] to decode a recorded stream.
#[derive(Debug, Clone, Default)]
pub struct OpenAiStreamMapper {
    next_index: usize,
    text: Option<usize>,
    thinking: Option<usize>,
    calls: Vec<CallState>,
    stop: Option<StopReason>,
    closed: bool,
}

#[derive(Debug, Clone)]
struct CallState {
    /// The server's `index` of the call.
    key: usize,
    /// Our block index, once the call's name is known.
    block: Option<usize>,
    id: String,
    name: String,
    /// Argument pieces that arrived before the name.
    pending: String,
}

impl OpenAiStreamMapper {
    /// A mapper at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn open(
        &mut self,
        slot: fn(&mut Self) -> &mut Option<usize>,
        block: BlockStart,
        out: &mut Vec<ModelDelta>,
    ) -> usize {
        if let Some(i) = *slot(self) {
            return i;
        }
        let index = self.next_index;
        self.next_index += 1;
        *slot(self) = Some(index);
        out.push(ModelDelta::BlockStart { index, block });
        index
    }

    fn tool_call(&mut self, tc: ToolCallDelta, out: &mut Vec<ModelDelta>) {
        let pos = match (tc.index, &tc.id) {
            (Some(key), _) => self.calls.iter().rposition(|c| c.key == key),
            (None, Some(id)) => self.calls.iter().rposition(|c| &c.id == id),
            (None, None) => self.calls.len().checked_sub(1),
        };
        let pos = match pos {
            Some(p) => p,
            None => {
                let key = tc.index.unwrap_or_else(|| self.calls.iter().map(|c| c.key + 1).max().unwrap_or(0));
                self.calls.push(CallState {
                    key,
                    block: None,
                    id: String::new(),
                    name: String::new(),
                    pending: String::new(),
                });
                self.calls.len() - 1
            }
        };
        let (name, arguments) = match tc.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let call = &mut self.calls[pos];
        if let Some(id) = tc.id.filter(|i| !i.is_empty())
            && call.id.is_empty()
        {
            call.id = id;
        }
        if let Some(name) = name.filter(|n| !n.is_empty())
            && call.name.is_empty()
        {
            call.name = name;
        }
        if let Some(args) = arguments.filter(|a| !a.is_empty()) {
            match call.block {
                Some(index) => out.push(ModelDelta::InputJson { index, partial_json: args }),
                None => call.pending.push_str(&args),
            }
        }
        if call.block.is_none() && !call.name.is_empty() {
            let index = self.next_index;
            self.next_index += 1;
            let call = &mut self.calls[pos];
            call.block = Some(index);
            if call.id.is_empty() {
                call.id = format!("call_{}", call.key);
            }
            out.push(ModelDelta::BlockStart {
                index,
                block: BlockStart::ToolUse { id: call.id.clone(), name: call.name.clone() },
            });
            if !call.pending.is_empty() {
                out.push(ModelDelta::InputJson { index, partial_json: std::mem::take(&mut call.pending) });
            }
        }
    }

    /// Closes every block (once), in index order.
    fn close(&mut self, out: &mut Vec<ModelDelta>) -> Result<(), ModelError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if let Some(c) = self.calls.iter().find(|c| c.block.is_none()) {
            return Err(ModelError::Protocol {
                message: format!("tool call {} of the stream never got a function name", c.key),
            });
        }
        let mut indices: Vec<usize> = self
            .text
            .iter()
            .chain(self.thinking.iter())
            .copied()
            .chain(self.calls.iter().filter_map(|c| c.block))
            .collect();
        indices.sort_unstable();
        out.extend(indices.into_iter().map(|index| ModelDelta::BlockStop { index }));
        Ok(())
    }

    fn finish_reason(&mut self, reason: &str) -> StopReason {
        match reason {
            "tool_calls" | "function_call" => StopReason::ToolUse,
            "length" => StopReason::MaxTokens,
            "content_filter" => StopReason::Refusal,
            _ if !self.calls.is_empty() => StopReason::ToolUse,
            "stop" => StopReason::EndTurn,
            other => {
                tracing::debug!(reason = other, "unknown finish_reason; taken as end_turn");
                StopReason::EndTurn
            }
        }
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<OaUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<ChoiceDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct OaUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl EventMapper for OpenAiStreamMapper {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<ModelDelta>) -> Result<Flow, ModelError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.close(out)?;
            if let Some(reason) = self.stop {
                out.push(ModelDelta::Stop { reason });
            }
            return Ok(Flow::Done);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| ModelError::Protocol {
            message: format!("chat completions chunk: {e}: {}", crate::text::prefix_chars(data, 200).0),
        })?;
        if chunk.error.is_some() {
            let (kind, message) =
                parse_api_error(data.as_bytes()).unwrap_or_else(|| (None, "error event without a message".into()));
            return Err(error_from_api(kind.as_deref().unwrap_or("error"), &message));
        }
        if let Some(choice) = chunk.choices.into_iter().next() {
            if let Some(delta) = choice.delta {
                if let Some(thinking) = delta.reasoning_content.or(delta.reasoning).filter(|t| !t.is_empty()) {
                    let index = self.open(|s| &mut s.thinking, BlockStart::Thinking, out);
                    out.push(ModelDelta::Thinking { index, thinking });
                }
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    let index = self.open(|s| &mut s.text, BlockStart::Text, out);
                    out.push(ModelDelta::Text { index, text });
                }
                for tc in delta.tool_calls.unwrap_or_default() {
                    self.tool_call(tc, out);
                }
            }
            if let Some(reason) = choice.finish_reason {
                let reason = self.finish_reason(&reason);
                self.stop = Some(reason);
                self.close(out)?;
            }
        }
        if let Some(u) = chunk.usage {
            let prompt = u.prompt_tokens.unwrap_or(0);
            let cached = u.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0).min(prompt);
            out.push(ModelDelta::Usage(Usage {
                input_tokens: prompt - cached,
                output_tokens: u.completion_tokens.unwrap_or(0),
                cache_read_input_tokens: cached,
                cache_creation_input_tokens: 0,
            }));
        }
        Ok(Flow::Continue)
    }

    fn on_end(&mut self, out: &mut Vec<ModelDelta>) -> Result<(), ModelError> {
        match self.stop {
            Some(reason) => {
                self.close(out)?;
                out.push(ModelDelta::Stop { reason });
                Ok(())
            }
            None => Err(ModelError::StreamBroken {
                message: "the chat completions stream ended before a finish_reason".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_hosts_become_base_urls() {
        assert_eq!(ollama_base("http://127.0.0.1:11434"), "http://127.0.0.1:11434");
        assert_eq!(ollama_base("0.0.0.0"), "http://0.0.0.0:11434");
        assert_eq!(ollama_base("gpu-box:8080/"), "http://gpu-box:8080");
        assert_eq!(ollama_base("https://ollama.internal"), "https://ollama.internal:11434");
        assert_eq!(ollama_base("[::1]"), "http://[::1]:11434");
        assert_eq!(ollama_base("http://[::1]:1234"), "http://[::1]:1234");
        assert_eq!(OpenAiConfig::ollama("localhost").base_url, "http://localhost:11434/v1");
    }
}
