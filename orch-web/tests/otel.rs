//! OpenTelemetry: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, `orch` exports its spans over OTLP/HTTP to a
//! collector (here a stand-in on 127.0.0.1 that decodes the protobuf export requests as a collector
//! does): an agent run with its model calls (tokens and cost) and tool calls, a workflow's steps and a
//! graph's tasks, nested; without the variable nothing is sent.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use support::{orch, scripted, text};

/// A stand-in OTLP/HTTP collector: `POST /v1/traces` with an `ExportTraceServiceRequest`.
struct Collector {
    base: String,
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    match ExportTraceServiceRequest::decode(body) {
                        Ok(request) => {
                            sink.lock().unwrap().push(request);
                            (axum::http::StatusCode::OK, [("content-type", "application/x-protobuf")], Vec::new())
                        }
                        Err(_) => (axum::http::StatusCode::BAD_REQUEST, [("content-type", "text/plain")], Vec::new()),
                    }
                }
            }),
        );
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Collector { base, received, _runtime: runtime }
    }

    /// Every request received so far.
    fn requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.received.lock().unwrap().clone()
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Span> {
        self.requests()
            .into_iter()
            .flat_map(|r| r.resource_spans)
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }
}

/// `orch --cwd DIR ARGS…` exporting to `collector` as service `orch-test`.
fn traced(dir: &Path, collector: &Collector, args: &[&str]) {
    let out = orch()
        .arg("--cwd")
        .arg(dir)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.base)
        .env("OTEL_SERVICE_NAME", "orch-test")
        .env("ORCH_PRICES", dir.join("prices.json"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "orch {args:?}: {}", text(&out.stderr));
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

fn int(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(Any::IntValue(i)) => *i,
        other => panic!("{}: {key} is {other:?}, not an integer", span.name),
    }
}

fn double(span: &Span, key: &str) -> f64 {
    match attr(span, key) {
        Some(Any::DoubleValue(f)) => *f,
        other => panic!("{}: {key} is {other:?}, not a number", span.name),
    }
}

fn string<'a>(span: &'a Span, key: &str) -> &'a str {
    match attr(span, key) {
        Some(Any::StringValue(s)) => s,
        other => panic!("{}: {key} is {other:?}, not a string", span.name),
    }
}

fn named<'a>(spans: &'a [Span], prefix: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name.starts_with(prefix)).collect()
}

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one span named {name}: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    found[0]
}

fn prices(dir: &Path) {
    std::fs::write(dir.join("prices.json"), r#"{"models": {"scripted": {"input": 1000.0, "output": 1000.0}}}"#)
        .unwrap();
}

#[test]
fn an_agent_run_is_a_trace_of_its_model_and_tool_calls_with_tokens_and_cost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    prices(d);
    std::fs::write(d.join("hello.txt"), "hi\n").unwrap();
    let model = scripted(
        d,
        "model.json",
        &json!({"steps": [
            {"reply": [{"type": "tool_use", "name": "Read", "input": {"file_path": "hello.txt"}}],
             "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 50}},
            {"reply": [{"type": "text", "text": "It says hi."}], "usage": {"input_tokens": 130, "output_tokens": 10}}
        ]}),
    );
    let collector = Collector::start();
    traced(d, &collector, &["--model", &model, "run", "--agent", "reader", "Read hello.txt"]);

    let requests = collector.requests();
    assert!(!requests.is_empty(), "the spans were exported before the process ended");
    let service = requests[0].resource_spans[0].resource.as_ref().unwrap();
    let name = service.attributes.iter().find(|kv| kv.key == "service.name").unwrap();
    assert_eq!(name.value, Some(AnyValue { value: Some(Any::StringValue("orch-test".into())) }));

    let spans = collector.spans();
    let run = one(&spans, "invoke_agent reader");
    assert!(run.parent_span_id.is_empty(), "the run is the trace's root");
    assert_eq!(string(run, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(string(run, "gen_ai.agent.name"), "reader");
    let calls = named(&spans, "chat scripted");
    assert_eq!(calls.len(), 2, "two model calls");
    let tool = one(&spans, "execute_tool Read");
    for child in calls.iter().copied().chain([tool]) {
        assert_eq!(child.trace_id, run.trace_id, "{} is in the run's trace", child.name);
        assert_eq!(child.parent_span_id, run.span_id, "{} nests in the run", child.name);
    }
    let (first, second) =
        if int(calls[0], "gen_ai.usage.input_tokens") == 100 { (calls[0], calls[1]) } else { (calls[1], calls[0]) };
    assert_eq!(string(first, "gen_ai.operation.name"), "chat");
    assert_eq!(string(first, "gen_ai.request.model"), "scripted");
    assert_eq!(string(first, "gen_ai.provider.name"), "scripted");
    assert_eq!(string(first, "gen_ai.system"), "scripted");
    assert_eq!(int(first, "gen_ai.usage.input_tokens"), 100);
    assert_eq!(int(first, "gen_ai.usage.output_tokens"), 20);
    assert_eq!(int(first, "gen_ai.usage.cache_read.input_tokens"), 50);
    assert_eq!(int(first, "gen_ai.usage.cache_creation.input_tokens"), 0);
    assert_eq!(string(first, "gen_ai.response.finish_reasons"), "tool_use");
    assert_eq!(int(second, "gen_ai.usage.input_tokens"), 130);
    assert_eq!(int(second, "gen_ai.usage.output_tokens"), 10);
    assert!((double(second, "orch.cost_usd") - 140.0 * 1000.0 / 1e6).abs() < 1e-9);
    assert!(double(first, "orch.cost_usd") >= 120.0 * 1000.0 / 1e6);
    assert_eq!(string(tool, "gen_ai.tool.name"), "Read");
    assert_eq!(string(tool, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(attr(tool, "orch.tool.is_error"), Some(&Any::BoolValue(false)));
    assert_eq!(int(run, "gen_ai.usage.input_tokens"), 230);
    assert_eq!(int(run, "gen_ai.usage.output_tokens"), 30);
    let total = double(first, "orch.cost_usd") + double(second, "orch.cost_usd");
    assert!((double(run, "orch.cost_usd") - total).abs() < 1e-9, "the run's cost is its calls' cost");
    assert_eq!(string(run, "orch.stop_reason"), "end_turn");

    // Without the variable nothing is exported.
    let before = collector.requests().len();
    let out = orch()
        .arg("--cwd")
        .arg(d)
        .args(["--model", &model, "run", "--agent", "quiet", "Read hello.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(collector.requests().len(), before, "no export without OTEL_EXPORTER_OTLP_ENDPOINT");
}

#[test]
fn a_workflow_nests_its_steps_and_their_agent_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    prices(d);
    let model = support::adw::model(d);
    let collector = Collector::start();
    traced(d, &collector, &["--model", &model, "adw", "start", "plan_build", "--prompt", "Add a parser", "--wait"]);
    let spans = collector.spans();
    let workflow = one(&spans, "workflow plan_build");
    assert!(workflow.parent_span_id.is_empty());
    assert_eq!(string(workflow, "orch.workflow.status"), "completed");
    for step in ["plan", "build"] {
        let s = one(&spans, &format!("workflow_step {step}"));
        assert_eq!(s.parent_span_id, workflow.span_id, "step {step} nests in the workflow");
        let runs = named(&spans, &format!("invoke_agent {step}-"));
        let run = runs.iter().find(|r| r.parent_span_id == s.span_id).expect("the step's agent run nests in it");
        let calls: Vec<&Span> = spans.iter().filter(|c| c.parent_span_id == run.span_id).collect();
        assert!(calls.iter().any(|c| c.name.starts_with("chat ")), "the {step} run has its model calls");
        assert!(calls.iter().any(|c| c.name == "execute_tool Write"), "the {step} run has its Write call");
    }
}

#[test]
fn a_graph_nests_its_tasks_and_their_agent_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    prices(d);
    let model =
        scripted(d, "model.json", &json!({"steps": [{"repeat": true, "reply": [{"type": "text", "text": "done"}]}]}));
    let plan = d.join("plan.json");
    let tasks = json!({"tasks": [{"id": "t0", "title": "task 0", "complexity": "simple"},
                                  {"id": "t1", "title": "task 1", "complexity": "simple", "depends_on": ["t0"]}]});
    std::fs::write(&plan, serde_json::to_vec(&tasks).unwrap()).unwrap();
    let collector = Collector::start();
    traced(d, &collector, &["--model", &model, "graph", "run", "--file", plan.to_str().unwrap()]);
    let spans = collector.spans();
    let graphs: Vec<&Span> = spans.iter().filter(|s| s.name == "graph").collect();
    assert_eq!(graphs.len(), 1, "one graph span");
    let graph = graphs[0];
    assert!(graph.parent_span_id.is_empty());
    for key in ["t0", "t1"] {
        let task = one(&spans, &format!("graph_task {key}"));
        assert_eq!(task.parent_span_id, graph.span_id, "task {key} nests in the graph");
        let run = one(&spans, &format!("invoke_agent {key}-"));
        assert_eq!(run.parent_span_id, task.span_id, "the {key} attempt's run nests in its task");
    }
}
