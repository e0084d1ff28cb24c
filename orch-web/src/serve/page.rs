//! The page at `/` when no dashboard build is found (see [`super::ui`]): what runs here, where the API
//! and the event stream are, and how to build the dashboard.

use axum::extract::State;
use axum::response::Html;

use super::state::AppState;

/// The landing page.
pub async fn index(State(state): State<AppState>) -> Html<String> {
    let cwd = html_escape(&state.working_dir().display().to_string());
    let model = html_escape(state.engine().default_agent_model());
    let orchestrator = state.orchestrator().id();
    let version = env!("CARGO_PKG_VERSION");
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>orch</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:3rem auto;padding:0 1rem;color:#1d2330}}
code{{background:#eef1f6;padding:.1rem .3rem;border-radius:4px}}li{{margin:.3rem 0}}</style></head>
<body>
<h1>orch {version}</h1>
<p>The orch server runs here: working dir <code>{cwd}</code>, default model <code>{model}</code>,
orchestrator <code>{orchestrator}</code>.</p>
<p><b>The dashboard is not built.</b> Build it with <code>scripts/build-ui.sh</code> in the orch repository
(it installs the wasm32 target and wasm-bindgen-cli when missing), then restart <code>orch serve</code>:
it serves <code>orch-ui-leptos/dist</code> here. Or point it at a build: <code>orch serve --ui DIR</code>
(or <code>ORCH_UI_DIR=DIR</code>).</p>
<ul>
<li><a href="/api/health">/api/health</a> and <a href="/api/ready">/api/ready</a>: is it up, does the store answer</li>
<li><a href="/api/agents">/api/agents</a>, <a href="/api/events?order=desc&amp;limit=50">/api/events</a>,
<a href="/api/adws">/api/adws</a>, <a href="/api/orchestrator/chat">/api/orchestrator/chat</a>: orch's JSON API</li>
<li><code>/ws</code>: every event live (<code>?since=SEQ</code> replays from a seq first)</li>
<li>The seed dashboard's routes (<code>/get_orchestrator</code>, <code>/list_agents</code>, <code>/get_events</code>, …) for its Vue client</li>
</ul>
<p>Send the orchestrator a message: <code>curl -X POST localhost:PORT/api/orchestrator/chat -H 'content-type: application/json' -d '{{"message":"…"}}'</code>.</p>
</body></html>"#
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
