//! Request counting (for `/api/metrics`) and the rate limit on the endpoints that start work (chat,
//! agent commands, workflow starts): a token bucket per client address, `ORCH_RATE_LIMIT` requests a
//! minute (default 60; 0 turns it off), answered 429 with `Retry-After` when spent.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;

/// Counters of the server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Answers by status class (index 1 = 1xx … 5 = 5xx).
    pub responses: [AtomicU64; 6],
    /// Requests refused by the rate limit.
    pub rate_limited: AtomicU64,
}

/// Token buckets per client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter of `per_minute` requests a minute per address (0: no limit).
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// From `ORCH_RATE_LIMIT` (default 60 a minute).
    pub fn from_env() -> Self {
        let n = std::env::var("ORCH_RATE_LIMIT").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(60);
        Self::new(n)
    }

    /// Takes a token for `ip`: `Ok`, or the seconds until one is free.
    pub fn take(&self, ip: IpAddr) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 10_000 {
            // Forget full buckets (idle clients) so the map stays small.
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * per_sec < capacity);
        }
        let (tokens, at) = buckets.entry(ip).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_sec).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// Whether a request starts work (and so is rate limited).
fn starts_work(method: &Method, path: &str) -> bool {
    method == Method::POST
        && (path == "/api/orchestrator/chat"
            || path == "/send_chat"
            || path == "/api/adws"
            || path == "/api/plans"
            || path == "/api/graphs"
            || (path.starts_with("/api/graphs/") && path.ends_with("/run"))
            || (path.starts_with("/api/agents/") && path.ends_with("/command")))
}

/// Counts every answer and applies the rate limit.
pub async fn track(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    // The request log: method, path (never the query, which may carry the token), status, time.
    let started = std::time::Instant::now();
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = if starts_work(request.method(), request.uri().path()) {
        match state.limiter().take(peer.ip()) {
            Ok(()) => next.run(request).await,
            Err(wait) => {
                state.metrics().rate_limited.fetch_add(1, Ordering::Relaxed);
                let mut r = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many requests that start work; retry in {wait} s"),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
        }
    } else {
        next.run(request).await
    };
    let class = usize::from(response.status().as_u16() / 100).min(5);
    state.metrics().responses[class].fetch_add(1, Ordering::Relaxed);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    if status >= 500 {
        tracing::warn!(target: "orch::http", %method, %path, status, ms, peer = %peer.ip(), "request");
    } else {
        tracing::info!(target: "orch::http", %method, %path, status, ms, peer = %peer.ip(), "request");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_past_its_size_and_says_when_to_retry() {
        let limiter = RateLimiter::new(3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        assert!(limiter.take(ip).is_ok() && limiter.take(ip).is_ok() && limiter.take(ip).is_ok());
        let wait = limiter.take(ip).err();
        assert!(wait.is_some_and(|w| (1..=20).contains(&w)), "{wait:?}");
        let other: IpAddr = IpAddr::from([10, 0, 0, 1]);
        assert!(limiter.take(other).is_ok(), "another address has its own bucket");
        assert!(RateLimiter::new(0).take(ip).is_ok(), "0 turns the limit off");
        assert!(starts_work(&Method::POST, "/api/agents/alice/command"));
        assert!(!starts_work(&Method::GET, "/api/orchestrator/chat"));
    }
}
