//! Errors of the HTTP API: `{"error":{"code","message"}}` under `/api` (the seed's routes answer
//! `{"detail": …}` instead, see [`SeedError`]), with the status of the error's kind; never a stack trace.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orch_core::ErrorKind;
use serde_json::json;

/// An error answer of `/api`.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`not_found`, `bad_request`, …).
    pub code: &'static str,
    /// What was wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// An error of `status` with `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// 400: the request is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The answer for an engine error of `kind`.
    pub fn of_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = match kind {
            ErrorKind::Usage => "bad_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Busy => "busy",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Provider => "provider_error",
            ErrorKind::Interrupted => "interrupted",
            _ => "internal",
        };
        let message = message.into();
        if status.is_server_error() {
            tracing::warn!(%status, error = %message, "request failed");
        }
        Self::new(status, code, message)
    }
}

/// Every engine error converts by its kind.
macro_rules! api_error_from_kind {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for ApiError {
            fn from(e: $error) -> Self {
                Self::of_kind(e.kind(), e.to_string())
            }
        }
    )*};
}

api_error_from_kind!(
    orch_core::store::StoreError,
    orch_core::orchestrator::ManageError,
    orch_core::orchestrator::OrchestratorError,
    orch_core::workflow::WorkflowError,
    orch_core::graph::GraphError,
    orch_core::engine::EngineError,
);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("the JSON body does not fit: {}", e.body_text()),
            ),
            JsonRejection::JsonSyntaxError(e) => {
                Self::bad_request(format!("the body is not valid JSON: {}", e.body_text()))
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is larger than the server accepts")
            }
            other => Self::bad_request(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(format!("bad query: {}", r.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response()
    }
}

/// An error answer of the seed's routes: `{"detail": "…"}` (as FastAPI answers), with a 4xx where
/// the seed wrongly answered 500 for bad input.
#[derive(Debug)]
pub struct SeedError(pub ApiError);

impl<E: Into<ApiError>> From<E> for SeedError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for SeedError {
    fn into_response(self) -> Response {
        (self.0.status, Json(json!({"detail": self.0.message}))).into_response()
    }
}

/// Parses an id of a path or body: a malformed one is a 400 naming it (the seed answered 500).
pub fn parse_id(what: &str, text: &str) -> Result<orch_core::wire::Id, ApiError> {
    text.trim().parse().map_err(|_| ApiError::bad_request(format!("{what} '{text}' is not a valid id (a UUID)")))
}
