//! [`HttpTransport`]: POSTs a request and streams its answer, with timeouts and retries.

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName};

use super::HttpConfig;
use super::error::{ERROR_QUOTE_CHARS, error_for_status, error_from_api, parse_api_error, retry_hints, truncate};
use super::sse::{EventMapper, Flow, SseDecoder};
use crate::model::{DeltaStream, ModelDelta, ModelError};

/// The most of an error body that is read, in bytes.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

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
mod tests {
    use super::*;

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
