//! Recording: [`RecordingProvider`] passes calls through and writes each completed interaction.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::{Stream, StreamExt};

use super::format::{Interaction, RecordedError, RecordedResponse};
use super::{CASSETTE_VERSION, CassetteError};
use crate::model::{DeltaStream, ModelDelta, ModelError, ModelProvider, ModelRequest};

/// Wraps a provider and records every completed call to a cassette; see the
/// [module documentation](super).
pub struct RecordingProvider {
    inner: Arc<dyn ModelProvider>,
    sink: Arc<Sink>,
}

impl fmt::Debug for RecordingProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingProvider")
            .field("provider", &self.inner.name())
            .field("path", &self.sink.path)
            .field("recorded", &self.recorded())
            .finish()
    }
}

impl RecordingProvider {
    /// Records `inner`'s calls to a new cassette at `path`, replacing any file there. Creates missing
    /// parent directories.
    pub fn create(inner: Arc<dyn ModelProvider>, path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        Self::open(inner, path.as_ref(), true)
    }

    /// Records `inner`'s calls to the end of the cassette at `path`, creating it (and missing parent
    /// directories) if needed.
    pub fn append(inner: Arc<dyn ModelProvider>, path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        Self::open(inner, path.as_ref(), false)
    }

    fn open(inner: Arc<dyn ModelProvider>, path: &Path, truncate: bool) -> Result<Self, CassetteError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| CassetteError::io(path, &format!("cannot create the directory {}", dir.display()), &e))?;
        }
        if truncate {
            File::create(path).map_err(|e| CassetteError::io(path, "cannot create", &e))?;
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| CassetteError::io(path, "cannot open for appending", &e))?;
        let provider = inner.name().to_owned();
        Ok(Self {
            inner,
            sink: Arc::new(Sink {
                path: path.to_path_buf(),
                provider,
                file: Mutex::new(file),
                recorded: AtomicUsize::new(0),
            }),
        })
    }

    /// The cassette file.
    pub fn path(&self) -> &Path {
        &self.sink.path
    }

    /// How many interactions this recorder has written.
    pub fn recorded(&self) -> usize {
        self.sink.recorded.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl ModelProvider for RecordingProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        match self.inner.stream(request.clone()).await {
            Ok(inner) => Ok(RecordingStream {
                inner,
                pending: Some(Pending { request, deltas: Vec::new() }),
                sink: self.sink.clone(),
                done: false,
            }
            .boxed()),
            Err(e) => {
                let response = RecordedResponse { deltas: None, error: Some(RecordedError::from(&e)) };
                match self.sink.record(request, response) {
                    Ok(()) => Err(e),
                    Err(record) => Err(record.with_call_error(&e)),
                }
            }
        }
    }
}

/// The cassette being written.
struct Sink {
    path: PathBuf,
    provider: String,
    file: Mutex<File>,
    recorded: AtomicUsize,
}

/// A failure to write the cassette.
struct RecordFailure {
    message: String,
}

impl RecordFailure {
    fn into_model_error(self) -> ModelError {
        ModelError::Other { message: self.message }
    }

    fn with_call_error(self, e: &ModelError) -> ModelError {
        ModelError::Other { message: format!("{} (the model call itself failed: {e})", self.message) }
    }
}

impl Sink {
    /// Appends one interaction as one line.
    fn record(&self, request: ModelRequest, response: RecordedResponse) -> Result<(), RecordFailure> {
        let agent = request.agent_name.clone();
        let interaction = Interaction {
            v: CASSETTE_VERSION,
            provider: self.provider.clone(),
            request,
            response,
            recorded_at: Some(crate::wire::now()),
        };
        let written = serde_json::to_vec(&interaction).map_err(|e| e.to_string()).and_then(|mut line| {
            line.push(b'\n');
            let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
            file.write_all(&line).and_then(|()| file.flush()).map_err(|e| e.to_string())
        });
        match written {
            Ok(()) => {
                self.recorded.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                tracing::error!(cassette = %self.path.display(), agent = %agent, error = %e, "could not record a model call");
                Err(RecordFailure {
                    message: format!(
                        "cassette {}: could not record the model call of agent '{agent}': {e}",
                        self.path.display()
                    ),
                })
            }
        }
    }
}

struct Pending {
    request: ModelRequest,
    deltas: Vec<ModelDelta>,
}

/// Passes a call's deltas on and records the interaction when it ends.
struct RecordingStream {
    inner: DeltaStream,
    /// `Some` until the interaction is recorded (or given up).
    pending: Option<Pending>,
    sink: Arc<Sink>,
    /// The stream has ended (after an error, or after the end of the inner stream).
    done: bool,
}

impl Stream for RecordingStream {
    type Item = Result<ModelDelta, ModelError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(delta))) => {
                if let Some(p) = this.pending.as_mut() {
                    p.deltas.push(delta.clone());
                }
                Poll::Ready(Some(Ok(delta)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                let Some(p) = this.pending.take() else { return Poll::Ready(Some(Err(e))) };
                let response = RecordedResponse { deltas: Some(p.deltas), error: Some(RecordedError::from(&e)) };
                match this.sink.record(p.request, response) {
                    Ok(()) => Poll::Ready(Some(Err(e))),
                    Err(record) => Poll::Ready(Some(Err(record.with_call_error(&e)))),
                }
            }
            Poll::Ready(None) => {
                this.done = true;
                let Some(p) = this.pending.take() else { return Poll::Ready(None) };
                let response = RecordedResponse { deltas: Some(p.deltas), error: None };
                match this.sink.record(p.request, response) {
                    Ok(()) => Poll::Ready(None),
                    Err(record) => Poll::Ready(Some(Err(record.into_model_error()))),
                }
            }
        }
    }
}

impl Drop for RecordingStream {
    fn drop(&mut self) {
        let Some(p) = self.pending.take() else { return };
        if matches!(p.deltas.last(), Some(ModelDelta::Stop { .. })) {
            // The caller stopped reading after the end of the answer: it is complete.
            let response = RecordedResponse { deltas: Some(p.deltas), error: None };
            // A failure is logged by `record`; there is no caller left to tell.
            let _ = self.sink.record(p.request, response);
        } else {
            tracing::debug!(
                cassette = %self.sink.path.display(),
                agent = %p.request.agent_name,
                deltas = p.deltas.len(),
                "model call abandoned before its end; not recorded"
            );
        }
    }
}
