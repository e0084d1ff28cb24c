//! The scripted model (placeholder; being written).

use async_trait::async_trait;

use super::{DeltaStream, ModelError, ModelProvider, ModelRequest};

/// A deterministic, data-driven model.
#[derive(Debug, Default)]
pub struct ScriptedModel {}

/// A bad script.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScriptError(pub String);

impl ScriptedModel {
    /// Parses a script.
    pub fn from_json_str(_s: &str) -> Result<Self, ScriptError> {
        Ok(Self {})
    }
}

#[async_trait]
impl ModelProvider for ScriptedModel {
    fn name(&self) -> &str {
        "scripted"
    }
    async fn stream(&self, _request: ModelRequest) -> Result<DeltaStream, ModelError> {
        Err(ModelError::Other { message: "not yet".into() })
    }
}
