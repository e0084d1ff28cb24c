//! API errors: HTTP statuses, error bodies and retry hints turned into [`ModelError`]s.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use crate::model::ModelError;

/// The most of an error body quoted in a message, in characters.
pub(super) const ERROR_QUOTE_CHARS: usize = 500;

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

pub(super) fn truncate(text: &str, max_chars: usize) -> String {
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

pub(super) fn retry_hints(headers: &HeaderMap) -> (Option<Duration>, Option<bool>) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
