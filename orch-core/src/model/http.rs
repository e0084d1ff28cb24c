//! The one HTTP transport under the HTTP model providers ([`super::anthropic`], [`super::openai`]).
//!
//! - [`SseParser`]: an incremental server-sent-events parser (`event:` / `data:` / `id:` lines,
//!   multi-line data, `:` comments, LF / CRLF / CR line ends, chunk boundaries anywhere, also inside a
//!   UTF-8 character). An event left incomplete at the end of the stream is discarded, as the SSE
//!   specification says: a cut stream never yields half an event.
//! - [`EventMapper`]: turns the events of one wire format into [`ModelDelta`]s; [`SseDecoder`] joins a
//!   parser and a mapper, so a recorded stream can be decoded in memory ([`decode_sse`]).
//! - [`HttpTransport`]: POSTs a JSON body with reqwest (rustls) and streams the answer through a mapper,
//!   with a connect timeout, an idle timeout between chunks, and retries with exponential backoff and
//!   jitter.
//!
//! # Retries
//!
//! A call is retried on 429, 529, other 5xx, 408, connection failures, stalls and retryable error
//! events (e.g. Anthropic's mid-stream `overloaded_error`) — but only **before any output**: before the
//! first delta other than usage reached the caller. Each retry is announced on the returned stream as a
//! [`ModelDelta::Retry`] (the agent loop records it as a `ModelRetry` event), then the stream waits and
//! tries again. The wait honours the `retry-after` header (seconds, or an HTTP date) and OpenAI's
//! `retry-after-ms`; otherwise it is `initial_backoff · 2^n` capped at `max_backoff`, less up to 25 %
//! jitter. A `retry-after` longer than [`HttpConfig::max_retry_wait`] is not waited for: the error is
//! returned (with its `retry_after`) for a higher layer to schedule. Anthropic's `x-should-retry` header
//! overrides the decision when present.
//!
//! Once output began, nothing is retried: a broken connection is [`ModelError::StreamBroken`], a stall
//! is [`ModelError::Timeout`], an error event is the API's own error — never a silent half answer.
//!
//! # HTTP errors
//!
//! | status | error |
//! |---|---|
//! | 401, 403 | [`ModelError::Auth`] |
//! | 408 | [`ModelError::Timeout`] |
//! | 429 | [`ModelError::RateLimited`] with `retry_after` |
//! | 529 | [`ModelError::Overloaded`] |
//! | other 5xx | [`ModelError::Server`] |
//! | 400, 404, 422 and other 4xx | [`ModelError::InvalidRequest`] with the API's error type and message |
//!
//! The API's message is taken from the JSON body: Anthropic's `{"type":"error","error":{"type","message"}}`,
//! OpenAI's `{"error":{"message","type","code"}}`, or `{"error":"…"}`; else the body text.
//!
//! # Environment
//!
//! [`HttpConfig::from_env`] (used by the providers' `from_env` constructors) reads, when set:
//! [`ENV_MAX_RETRIES`] (`ORCH_MODEL_MAX_RETRIES`, an integer), [`ENV_CONNECT_TIMEOUT`]
//! (`ORCH_MODEL_CONNECT_TIMEOUT_SECS`) and [`ENV_IDLE_TIMEOUT`] (`ORCH_MODEL_IDLE_TIMEOUT_SECS`), both
//! in seconds (decimals allowed). Invalid values are ignored with a warning.

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName};
use serde::Deserialize;
use serde_json::Value;

use super::{DeltaStream, ModelDelta, ModelError};

/// Environment variable: how many times a call is retried (default 3).
pub const ENV_MAX_RETRIES: &str = "ORCH_MODEL_MAX_RETRIES";
/// Environment variable: the connect timeout in seconds (default 10).
pub const ENV_CONNECT_TIMEOUT: &str = "ORCH_MODEL_CONNECT_TIMEOUT_SECS";
/// Environment variable: the longest silence between two chunks, in seconds (default 60).
pub const ENV_IDLE_TIMEOUT: &str = "ORCH_MODEL_IDLE_TIMEOUT_SECS";

/// The most of an error body that is read, in bytes.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// The most of an error body quoted in a message, in characters.
const ERROR_QUOTE_CHARS: usize = 500;

/// Timeouts and retries of the HTTP transport.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// How long connecting may take (default 10 s).
    pub connect_timeout: Duration,
    /// The longest silence allowed while waiting for response headers or between two chunks of the
    /// body (default 60 s). Anthropic sends `ping` events, so a healthy stream is never silent that long.
    pub idle_timeout: Duration,
    /// How many times a failed call is retried before any output (default 3; 0 disables retries).
    pub max_retries: u32,
    /// The first backoff (default 500 ms); doubled at each retry.
    pub initial_backoff: Duration,
    /// The longest backoff (default 8 s).
    pub max_backoff: Duration,
    /// The longest `retry-after` the transport waits for itself (default 60 s); a longer one ends the
    /// call with the error, whose `retry_after` a higher layer can honour.
    pub max_retry_wait: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_retries: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_wait: Duration::from_secs(60),
        }
    }
}

impl HttpConfig {
    /// The defaults, overridden by [`ENV_MAX_RETRIES`], [`ENV_CONNECT_TIMEOUT`] and [`ENV_IDLE_TIMEOUT`]
    /// when they are set to valid values.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Some(v) = env_parse(ENV_MAX_RETRIES, |s| s.parse::<u32>().ok()) {
            config.max_retries = v;
        }
        if let Some(v) = env_parse(ENV_CONNECT_TIMEOUT, parse_secs) {
            config.connect_timeout = v;
        }
        if let Some(v) = env_parse(ENV_IDLE_TIMEOUT, parse_secs) {
            config.idle_timeout = v;
        }
        config
    }
}

fn parse_secs(s: &str) -> Option<Duration> {
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).and_then(|v| Duration::try_from_secs_f64(v).ok())
}

fn env_parse<T>(name: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    let raw = std::env::var(name).ok()?;
    let v = parse(raw.trim());
    if v.is_none() {
        tracing::warn!(variable = name, value = %raw, "ignoring an invalid value");
    }
    v
}

// ---------------------------------------------------------------------------------------------------
// SSE parsing
// ---------------------------------------------------------------------------------------------------

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when the event had none.
    pub event: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
    /// The last `id:` seen in the stream, if any.
    pub id: Option<String>,
}

/// An incremental server-sent-events parser. Feed it the body in chunks of any size with
/// [`SseParser::feed`]; it yields each event once its closing empty line arrived.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting the next one belongs to it.
    skip_lf: bool,
    /// The first line was seen (a UTF-8 byte-order mark is dropped from it).
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the next chunk of the body, pushing every event it completes onto `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        let mut start = 0;
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                start = 1;
            }
        }
        while let Some(pos) = chunk[start..].iter().position(|&b| b == b'\n' || b == b'\r') {
            let end = start + pos;
            if self.line.is_empty() {
                self.line_done(&chunk[start..end], out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&chunk[start..end]);
                self.line_done(&line, out);
                line.clear();
                self.line = line;
            }
            start = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(end + 1) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        self.line.extend_from_slice(&chunk[start..]);
    }

    /// Ends the stream. An event not closed by an empty line is discarded (as the SSE specification
    /// says); returns whether there was one (or a partial line).
    pub fn finish(&mut self) -> bool {
        let pending = !self.line.is_empty() || self.has_data || !self.event.is_empty();
        self.line.clear();
        self.event.clear();
        self.data.clear();
        self.has_data = false;
        pending
    }

    fn line_done(&mut self, mut line: &[u8], out: &mut Vec<SseEvent>) {
        if !self.started {
            self.started = true;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            if self.has_data {
                self.has_data = false;
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                    id: self.id.clone(),
                });
            } else {
                self.event.clear();
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.has_data = true;
                push_utf8(&mut self.data, value);
            }
            b"event" => {
                self.event.clear();
                push_utf8(&mut self.event, value);
            }
            b"id" if !value.contains(&0) => {
                let mut id = String::new();
                push_utf8(&mut id, value);
                self.id = Some(id);
            }
            _ => {}
        }
    }
}

fn push_utf8(to: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => to.push_str(s),
        Err(_) => to.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// What a mapper tells the transport after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The answer is complete (Anthropic's `message_stop`, OpenAI's `[DONE]`); stop reading.
    Done,
}

/// Turns the events of one wire format into [`ModelDelta`]s. One mapper serves one attempt of one
/// call; the transport clones a fresh one for each attempt.
pub trait EventMapper: Send + 'static {
    /// Maps one event, pushing its deltas onto `out`. An error event of the API is returned as the
    /// matching [`ModelError`] (its retryable kinds are retried when no output was given yet).
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<ModelDelta>) -> Result<Flow, ModelError>;

    /// The body ended without [`Flow::Done`]. Pushes any final deltas, or fails with
    /// [`ModelError::StreamBroken`] when the answer is incomplete (the transport reports that as
    /// [`ModelError::Connection`] when no output was given yet, and retries it).
    fn on_end(&mut self, out: &mut Vec<ModelDelta>) -> Result<(), ModelError>;
}

/// An [`SseParser`] and an [`EventMapper`]: bytes in, deltas out.
#[derive(Debug)]
pub struct SseDecoder<M> {
    parser: SseParser,
    mapper: M,
    events: Vec<SseEvent>,
    done: bool,
}

impl<M: EventMapper> SseDecoder<M> {
    /// A decoder at the start of a stream.
    pub fn new(mapper: M) -> Self {
        Self { parser: SseParser::new(), mapper, events: Vec::new(), done: false }
    }

    /// Decodes the next chunk, pushing deltas onto `out`. After [`Flow::Done`] further input is ignored.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<ModelDelta>) -> Result<Flow, ModelError> {
        if self.done {
            return Ok(Flow::Done);
        }
        self.parser.feed(chunk, &mut self.events);
        let mut result = Ok(Flow::Continue);
        for event in self.events.drain(..) {
            match self.mapper.on_event(&event, out) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Done) => {
                    self.done = true;
                    result = Ok(Flow::Done);
                    break;
                }
                Err(e) => {
                    self.done = true;
                    result = Err(e);
                    break;
                }
            }
        }
        self.events.clear();
        result
    }

    /// The body ended: pushes final deltas, or fails when the answer is incomplete.
    pub fn finish(&mut self, out: &mut Vec<ModelDelta>) -> Result<(), ModelError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        if self.parser.finish() {
            tracing::debug!("the stream ended inside an event; the partial event was discarded");
        }
        self.mapper.on_end(out)
    }
}

/// Decodes a whole recorded SSE body in memory (e.g. a cassette, or a benchmark).
pub fn decode_sse<M: EventMapper>(mapper: M, body: &[u8]) -> Result<Vec<ModelDelta>, ModelError> {
    let mut decoder = SseDecoder::new(mapper);
    let mut out = Vec::new();
    if decoder.feed(body, &mut out)? == Flow::Continue {
        decoder.finish(&mut out)?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// API errors
// ---------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<Value>,
    message: Option<String>,
    detail: Option<Value>,
}

/// The error type and message of an API error body, when it is one of the known JSON shapes.
pub(crate) fn parse_api_error(body: &[u8]) -> Option<(Option<String>, String)> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    match parsed.error {
        Some(Value::Object(map)) => {
            let s = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_string);
            let kind = s("type").or_else(|| s("code")).or_else(|| map.get("code").map(Value::to_string));
            let message = s("message").unwrap_or_else(|| Value::Object(map.clone()).to_string());
            Some((kind.filter(|k| k != "null"), message))
        }
        Some(Value::String(message)) => Some((None, message)),
        _ => parsed
            .message
            .or_else(|| parsed.detail.map(|d| d.as_str().map(str::to_string).unwrap_or_else(|| d.to_string())))
            .map(|m| (None, m)),
    }
}

/// The [`ModelError`] for an error the API reported by type (in a body or as a mid-stream event).
pub(crate) fn error_from_api(kind: &str, message: &str) -> ModelError {
    let message = message.to_string();
    match kind {
        "overloaded_error" | "overloaded" => ModelError::Overloaded { message: format!("{kind}: {message}") },
        "rate_limit_error" | "rate_limit_exceeded" | "requests" | "tokens" | "insufficient_quota_retryable" => {
            ModelError::RateLimited { message: format!("{kind}: {message}"), retry_after: None }
        }
        "api_error" | "server_error" | "internal_error" | "internal_server_error" | "service_unavailable" => {
            ModelError::Server { status: 500, message: format!("{kind}: {message}") }
        }
        "timeout_error" | "timeout" => ModelError::Timeout { message: format!("{kind}: {message}") },
        "authentication_error" | "permission_error" | "invalid_api_key" => {
            ModelError::Auth { message: format!("{kind}: {message}") }
        }
        _ => ModelError::InvalidRequest { kind: kind.to_string(), message },
    }
}

/// The [`ModelError`] for an HTTP error status and its body.
pub(crate) fn error_for_status(status: u16, body: &[u8], retry_after: Option<Duration>) -> ModelError {
    let (kind, message) = match parse_api_error(body) {
        Some(parsed) => parsed,
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("no details")
                    .to_string()
            } else {
                truncate(text, ERROR_QUOTE_CHARS)
            };
            (None, message)
        }
    };
    let with_kind = |message: String| match &kind {
        Some(k) => format!("{k}: {message}"),
        None => message,
    };
    match status {
        401 | 403 => ModelError::Auth { message: format!("HTTP {status}, {}", with_kind(message)) },
        408 => ModelError::Timeout { message: format!("HTTP 408, {}", with_kind(message)) },
        429 => ModelError::RateLimited { message: with_kind(message), retry_after },
        529 => ModelError::Overloaded { message: with_kind(message) },
        500..=599 => ModelError::Server { status, message: with_kind(message) },
        _ => ModelError::InvalidRequest { kind: kind.unwrap_or_else(|| format!("http_{status}")), message },
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    crate::text::clip_chars(text, max_chars, "…")
}

/// Parses a `retry-after` value: delay seconds (decimals allowed) or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::try_from_secs_f64(secs).ok()).flatten();
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

fn retry_hints(headers: &HeaderMap) -> (Option<Duration>, Option<bool>) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let retry_after = get("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
        .or_else(|| get("retry-after").and_then(parse_retry_after));
    let should_retry = match get("x-should-retry") {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    (retry_after, should_retry)
}

// ---------------------------------------------------------------------------------------------------
// The transport
// ---------------------------------------------------------------------------------------------------

/// A reqwest client (rustls) with the timeouts and retries of an [`HttpConfig`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    config: Arc<HttpConfig>,
}

impl HttpTransport {
    /// A transport with its own connection pool.
    pub fn new(config: HttpConfig) -> Result<Self, ModelError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ModelError::Other { message: format!("cannot build the HTTP client: {e}") })?;
        Ok(Self { client, config: Arc::new(config) })
    }

    /// Its settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// POSTs `body` to `url` with `headers` and streams the SSE answer through `mapper` (cloned fresh for
    /// each attempt). Nothing happens until the returned stream is polled; dropping it cancels the
    /// call. Retries are announced on the stream as [`ModelDelta::Retry`] (see the module docs).
    pub fn post_sse<M: EventMapper + Clone>(
        &self,
        url: String,
        headers: HeaderMap,
        body: Bytes,
        mapper: M,
    ) -> DeltaStream {
        let call = Call {
            client: self.client.clone(),
            config: self.config.clone(),
            url,
            headers,
            body,
            template: mapper,
            retries: 0,
            wait: None,
            active: None,
            out: VecDeque::new(),
            held: Vec::new(),
            scratch: Vec::new(),
            committed: false,
            finished: false,
        };
        Box::pin(futures::stream::unfold(call, |mut call| async move {
            let item = call.next().await;
            item.map(|i| (i, call))
        }))
    }
}

/// A failed attempt, with what the server said about retrying.
struct Failure {
    error: ModelError,
    retry_after: Option<Duration>,
    should_retry: Option<bool>,
}

impl From<ModelError> for Failure {
    fn from(error: ModelError) -> Self {
        Self { error, retry_after: None, should_retry: None }
    }
}

fn from_reqwest(e: &reqwest::Error) -> ModelError {
    // The chain of sources carries the useful part ("connection refused", "unexpected EOF"...).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() { ModelError::Timeout { message } } else { ModelError::Connection { message } }
}

struct Active<M> {
    response: reqwest::Response,
    decoder: SseDecoder<M>,
}

/// The state of one call, driven by the consumer's polls.
struct Call<M> {
    client: reqwest::Client,
    config: Arc<HttpConfig>,
    url: String,
    headers: HeaderMap,
    body: Bytes,
    template: M,
    /// Retries made so far.
    retries: u32,
    /// Sleep before the next attempt.
    wait: Option<Duration>,
    active: Option<Active<M>>,
    /// Deltas ready for the consumer.
    out: VecDeque<ModelDelta>,
    /// Usage deltas held back until output begins (dropped if the attempt is retried).
    held: Vec<ModelDelta>,
    scratch: Vec<ModelDelta>,
    /// Output began: nothing is retried any more.
    committed: bool,
    finished: bool,
}

impl<M: EventMapper + Clone> Call<M> {
    async fn next(&mut self) -> Option<Result<ModelDelta, ModelError>> {
        loop {
            if let Some(d) = self.out.pop_front() {
                return Some(Ok(d));
            }
            if self.finished {
                return None;
            }
            if let Err(failure) = self.step().await
                && let Some(error) = self.on_failure(failure)
            {
                self.finished = true;
                self.out.clear();
                return Some(Err(error));
            }
        }
    }

    async fn step(&mut self) -> Result<(), Failure> {
        if let Some(wait) = self.wait.take() {
            tokio::time::sleep(wait).await;
        }
        let idle = self.config.idle_timeout;
        let Some(active) = &mut self.active else {
            let response = self.send().await?;
            self.active = Some(Active { response, decoder: SseDecoder::new(self.template.clone()) });
            return Ok(());
        };
        let chunk = match tokio::time::timeout(idle, active.response.chunk()).await {
            Err(_) => {
                return Err(ModelError::Timeout {
                    message: format!(
                        "no data for {} ms{}",
                        idle.as_millis(),
                        if self.committed { " after the answer began; the partial answer was discarded" } else { "" }
                    ),
                }
                .into());
            }
            Ok(Err(e)) => return Err(from_reqwest(&e).into()),
            Ok(Ok(chunk)) => chunk,
        };
        let result = match &chunk {
            Some(bytes) => active.decoder.feed(bytes, &mut self.scratch),
            None => active.decoder.finish(&mut self.scratch).map(|()| Flow::Done),
        };
        self.absorb();
        if result? == Flow::Done {
            self.out.extend(self.held.drain(..));
            self.active = None;
            self.finished = true;
        }
        Ok(())
    }

    /// Moves mapped deltas to the consumer, holding usage back until output begins.
    fn absorb(&mut self) {
        for delta in self.scratch.drain(..) {
            if !self.committed {
                if matches!(delta, ModelDelta::Usage(_)) {
                    self.held.push(delta);
                    continue;
                }
                self.committed = true;
                self.out.extend(self.held.drain(..));
            }
            self.out.push_back(delta);
        }
    }

    async fn send(&mut self) -> Result<reqwest::Response, Failure> {
        let request = self.client.post(&self.url).headers(self.headers.clone()).body(self.body.clone());
        tracing::debug!(url = %self.url, attempt = self.retries + 1, "model request");
        let limit = self.config.connect_timeout + self.config.idle_timeout;
        let response = match tokio::time::timeout(limit, request.send()).await {
            Err(_) => {
                return Err(ModelError::Timeout {
                    message: format!("no response headers within {} ms", limit.as_millis()),
                }
                .into());
            }
            Ok(Err(e)) => return Err(from_reqwest(&e).into()),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if status.is_success() && !json {
            return Ok(response);
        }
        let (retry_after, should_retry) = retry_hints(response.headers());
        let body = read_error_body(response, self.config.idle_timeout).await;
        let error = if status.is_success() {
            // A JSON answer where a stream was asked for: an error object, or a server without streaming.
            match parse_api_error(&body) {
                Some((kind, message)) => error_from_api(kind.as_deref().unwrap_or("error"), &message),
                None => ModelError::Protocol {
                    message: format!(
                        "expected an event stream, got JSON: {}",
                        truncate(&String::from_utf8_lossy(&body), ERROR_QUOTE_CHARS)
                    ),
                },
            }
        } else {
            error_for_status(status.as_u16(), &body, retry_after)
        };
        tracing::debug!(status = status.as_u16(), error = %error, "model request failed");
        Err(Failure { error, retry_after, should_retry })
    }

    /// Decides what a failure becomes: `None` when a retry was scheduled.
    fn on_failure(&mut self, failure: Failure) -> Option<ModelError> {
        self.active = None;
        let Failure { mut error, retry_after, should_retry } = failure;
        if self.committed {
            if let ModelError::Connection { message } = error {
                error = ModelError::StreamBroken { message };
            }
            tracing::warn!(error = %error, "model stream failed after the answer began");
            return Some(error);
        }
        if let ModelError::StreamBroken { message } = error {
            error = ModelError::Connection { message: format!("{message} (before any output)") };
        }
        let retryable = should_retry.unwrap_or_else(|| error.is_retryable());
        if !retryable || self.retries >= self.config.max_retries {
            return Some(error);
        }
        let retry_after = retry_after.or(match &error {
            ModelError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        });
        let wait = match retry_after {
            Some(d) if d > self.config.max_retry_wait => return Some(error),
            Some(d) => d,
            None => backoff(&self.config, self.retries),
        };
        self.retries += 1;
        self.held.clear();
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        tracing::warn!(attempt = self.retries, wait_ms, error = %error, "model call failed; retrying");
        self.out.push_back(ModelDelta::Retry { attempt: self.retries, wait_ms, error: error.to_string() });
        self.wait = Some(wait);
        None
    }
}

/// Reads at most [`ERROR_BODY_LIMIT`] bytes of an error body, giving up at the first silence or failure.
async fn read_error_body(mut response: reqwest::Response, idle: Duration) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match tokio::time::timeout(idle, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body
}

/// `initial · 2^n`, capped, less up to 25 % jitter.
fn backoff(config: &HttpConfig, n: u32) -> Duration {
    let base = config.initial_backoff.saturating_mul(2u32.saturating_pow(n.min(20))).min(config.max_backoff);
    let random = RandomState::new().hash_one(n);
    let jitter = (random % 1000) as f64 / 1000.0 * 0.25;
    base.mul_f64(1.0 - jitter)
}

/// A header name that is known to be valid.
pub(crate) fn header(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &c in cuts {
            p.feed(&input[last..c], &mut out);
            last = c;
        }
        p.feed(&input[last..], &mut out);
        p.finish();
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.into(), data: data.into(), id: None }
    }

    #[test]
    fn parses_events_at_every_split_point() {
        let input = "\u{feff}: comment\r\nevent: a\r\ndata: h\u{e9}llo \u{1f600}\r\ndata:  two\r\n\r\n\
                     event:b\rdata:x\r\rdata\n\nid: 7\ndata: {\"k\": 1}\n\nevent: c\ndata: cut"
            .as_bytes();
        let want = vec![
            ev("a", "h\u{e9}llo \u{1f600}\n two"),
            ev("b", "x"),
            ev("", ""),
            SseEvent { event: String::new(), data: "{\"k\": 1}".into(), id: Some("7".into()) },
        ];
        assert_eq!(parse_in_pieces(input, &[]), want);
        for i in 0..=input.len() {
            assert_eq!(parse_in_pieces(input, &[i]), want, "split at {i}");
        }
        for i in 0..=input.len() {
            for j in i..=input.len() {
                assert_eq!(parse_in_pieces(input, &[i, j]), want, "split at {i}, {j}");
            }
        }
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(parse_in_pieces(input, &bytewise), want);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_a_cut_event_is_dropped() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b"event: ping\n\ndata: whole\n\ndata: half", &mut out);
        assert_eq!(out, vec![ev("", "whole")]);
        assert!(p.finish());
    }

    #[test]
    fn api_errors_parse_in_both_shapes() {
        let a = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#;
        assert_eq!(parse_api_error(a), Some((Some("invalid_request_error".into()), "max_tokens: too big".into())));
        let o = br#"{"error":{"message":"bad model","type":null,"param":null,"code":"model_not_found"}}"#;
        assert_eq!(parse_api_error(o), Some((Some("model_not_found".into()), "bad model".into())));
        assert_eq!(parse_api_error(br#"{"error":"model not found"}"#), Some((None, "model not found".into())));
        assert_eq!(parse_api_error(b"<html>"), None);
        let e = error_for_status(404, b"not json at all", None);
        assert!(matches!(&e, ModelError::InvalidRequest { kind, .. } if kind == "http_404"), "{e:?}");
        assert!(matches!(error_for_status(529, b"", None), ModelError::Overloaded { .. }));
        assert!(matches!(error_for_status(403, b"", None), ModelError::Auth { .. }));
        assert!(matches!(error_for_status(503, b"", None), ModelError::Server { status: 503, .. }));
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = parse_retry_after(&later).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = HttpConfig::default();
        let b0 = backoff(&c, 0);
        assert!(b0 <= Duration::from_millis(500) && b0 >= Duration::from_millis(375), "{b0:?}");
        let b2 = backoff(&c, 2);
        assert!(b2 <= Duration::from_secs(2) && b2 >= Duration::from_millis(1500), "{b2:?}");
        assert!(backoff(&c, 30) <= Duration::from_secs(8));
    }
}
