//! OpenTelemetry traces (feature `otel`): the `tracing` spans orch-core emits (agent runs, model calls,
//! tool calls, workflow steps, graph tasks) exported over OTLP/HTTP (protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.
//!
//! Without either variable no exporter, thread or layer exists, so spans stay disabled at their
//! callsites and cost nothing measurable. With one, spans go through a batch processor on a thread of
//! its own to the endpoint's `/v1/traces`; the service is named by `OTEL_SERVICE_NAME` (default
//! `orch`), and `OTEL_EXPORTER_OTLP_HEADERS` adds headers (e.g. an API key). [`shutdown`] flushes
//! what is still buffered; the `orch` binary calls it when a command (or `orch serve`) ends.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

/// The default service name (`OTEL_SERVICE_NAME` overrides it).
pub const DEFAULT_SERVICE_NAME: &str = "orch";

/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The tracer provider while exporting, so [`shutdown`] can flush it.
static PROVIDER: OnceLock<Mutex<Option<SdkTracerProvider>>> = OnceLock::new();

/// Why the exporter could not be set up (logged; the program goes on without traces).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The export thread or its runtime could not start.
    #[error("cannot start the OTLP export thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the OTLP HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The exporter refused its configuration (e.g. a malformed endpoint).
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The layer that exports orch's spans as `service_name`, when traces are `requested` (the composition
/// root, `orch_web::engine`, reads both from the environment: `OTEL_EXPORTER_OTLP_ENDPOINT` or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, and `OTEL_SERVICE_NAME`); `Ok(None)` otherwise. Only spans of
/// orch's own crates at INFO and above are exported, whatever `ORCH_LOG` says. [`shutdown`] flushes it.
pub fn layer<S>(requested: bool, service_name: String) -> Result<Option<impl Layer<S>>, TelemetryError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    if !requested {
        return Ok(None);
    }
    let exporter = Exporter::start(None, service_name)?;
    let layer = exporter.layer();
    if let Ok(mut slot) = PROVIDER.get_or_init(|| Mutex::new(None)).lock() {
        *slot = Some(exporter.provider);
    }
    Ok(Some(layer))
}

/// An OTLP/HTTP span exporter and its batch processor.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Exporter {
    /// Exports to `traces_url` (the whole URL, e.g. `http://127.0.0.1:4318/v1/traces`), or where the
    /// `OTEL_EXPORTER_OTLP_*` variables say when `None`, as service `service_name`.
    pub fn start(traces_url: Option<&str>, service_name: String) -> Result<Self, TelemetryError> {
        let builder = opentelemetry_otlp::SpanExporter::builder().with_http().with_http_client(ExportClient::start()?);
        let builder = match traces_url {
            Some(url) => builder.with_endpoint(url),
            None => builder,
        };
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(builder.build()?)
            .with_resource(Resource::builder().with_service_name(service_name).build())
            .build();
        Ok(Exporter { provider })
    }

    /// A `tracing` layer exporting orch's spans (its crates' spans at INFO and above) here.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let only_orch = Targets::new()
            .with_target("orch_core", LevelFilter::INFO)
            .with_target("orch_web", LevelFilter::INFO)
            .with_target("orch", LevelFilter::INFO);
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("orch")).with_filter(only_orch)
    }

    /// Exports what is still buffered and stops. Blocks: call it outside the async runtime, or from a
    /// thread that may block.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("orch: could not export the last traces: {e}");
        }
    }
}

/// Exports the spans still buffered and stops exporting. Waits for the export (bounded by the
/// exporter's timeout). Does nothing when no exporter runs. Call it outside the async runtime, or
/// from a thread that may block.
pub fn shutdown() {
    let provider = PROVIDER.get().and_then(|m| m.lock().ok()).and_then(|mut slot| slot.take());
    if let Some(provider) = provider {
        Exporter { provider }.shutdown();
    }
}

/// The exporter's HTTP client: the workspace's reqwest on a small runtime of its own (one thread),
/// so exports work whichever thread the batch processor calls from, inside orch's runtime or not,
/// and a flush at exit never waits on a runtime that is shutting down.
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    fn start() -> Result<Self, TelemetryError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        // The thread drives the runtime until the process exits.
        std::thread::Builder::new()
            .name("orch-otlp".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        let client = reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?;
        Ok(Self { client, runtime: handle })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let reply =
                client.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body).send().await?;
            let status = reply.status();
            let headers = reply.headers().clone();
            let body = reply.bytes().await?;
            let mut response = Response::new(body);
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            Ok::<_, HttpError>(response)
        });
        sent.await?
    }
}
