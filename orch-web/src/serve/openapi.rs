//! The OpenAPI document of `/api` (served at `/api/openapi.json`): the operations come from the
//! handlers' `#[utoipa::path]` annotations (see `api::routes`); this module gives the document its
//! head, the error body every operation may answer, and the optional bearer token.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// The error answer of every `/api` route.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used: errors are written by `ApiError`
pub struct ErrorBody {
    /// What went wrong.
    error: ErrorDetail,
}

/// The code and message of an error.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `bad_request`, `invalid_body`, `not_found`, `conflict`, `busy`,
    /// `unauthorized`, `forbidden`, `body_too_large`, `unsupported_media_type`, `rate_limited`,
    /// `unavailable`, `internal`, …
    code: String,
    /// For a person.
    message: String,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "orch",
        description = "orch's REST API: agents, the event log, the orchestrator's chat, workflow runs (ADWs), \
plans and task graphs, the task queue for external agents, costs and budgets. The live event stream is the \
WebSocket `/ws` (`?since=SEQ` replays first). A server listening beyond loopback requires its token on every \
request (`Authorization: Bearer TOKEN`)."
    ),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct Head;

/// The document's head: title, description, version and the error schemas.
pub fn base() -> OpenApi {
    <Head as utoipa::OpenApi>::openapi()
}

/// Gives every operation the error answers (`4XX`, `5XX` as [`ErrorBody`]) and declares the bearer
/// token, which only a server listening beyond loopback requires (an empty requirement says "or none").
pub fn finish(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.options,
            &mut item.head,
        ];
        for op in operations.into_iter().flatten() {
            for (status, what) in [
                (
                    "4XX",
                    "Bad input (400, 413, 415, 422), a missing or wrong token (401, 403), no such thing (404), a conflict (409), too many requests (429)",
                ),
                ("5XX", "The server or its store failed (500, 503)"),
            ] {
                let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
                let response = ResponseBuilder::new().description(what).content("application/json", content).build();
                op.responses.responses.insert(status.to_string(), RefOr::T(response));
            }
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    doc.security = Some(vec![SecurityRequirement::default(), SecurityRequirement::new("bearer", Vec::<String>::new())]);
}
