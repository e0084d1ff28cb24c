//! Who may talk to the server: the token (every request but the landing page, when one is set) and
//! the browser origins CORS lets in.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

use super::error::ApiError;
use super::state::AppState;

/// The seed dashboard's dev server origins, allowed when nothing else is configured.
pub const DEFAULT_ORIGINS: [&str; 2] = ["http://127.0.0.1:5175", "http://localhost:5175"];

/// Refuses a request without the server's token (when it has one): `Authorization: Bearer TOKEN`, or
/// `?token=TOKEN` (for WebSocket and EventSource clients, which cannot set headers).
pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = state.token() else {
        return next.run(request).await;
    };
    if is_public(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let from_query =
        request.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token="))).map(percent_decode);
    let given = from_header.map(str::to_string).or(from_query);
    match given {
        Some(t) if same(&t, expected) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", "the token is wrong").into_response(),
        None => {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server needs a token: send Authorization: Bearer TOKEN (or ?token=TOKEN)",
            )
            .into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

/// The landing page and the dashboard's own files: they hold no data (the dashboard then sends the
/// token on every request it makes).
fn is_public(method: &axum::http::Method, path: &str) -> bool {
    let read = method == axum::http::Method::GET || method == axum::http::Method::HEAD;
    read && (matches!(path, "/" | "/index.html" | "/style.css") || path.starts_with("/pkg/"))
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `%XX` escapes of a query value decoded (a token may hold characters a URL escapes).
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// CORS for `origins` (with credentials, any method and header, as the seed's server allows), and
/// preflights answered.
pub fn cors(origins: &[String]) -> CorsLayer {
    let values: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(values))
        .allow_credentials(true)
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole_and_query_values_decode() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd") && !same("abc", "abcd"));
        assert_eq!(percent_decode("a%2Fb%3D"), "a/b=");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("é%"), "é%", "non-ASCII text is kept, never split");
    }
}
