//! USD prices per million tokens, and context windows, by model id.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::wire::Usage;

/// Prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Input tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Cache reads (default: 10 % of input).
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Cache writes (default: 125 % of input).
    #[serde(default)]
    pub cache_write: Option<f64>,
    /// The model's context window in tokens, when known (a price file sets it for local models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
}

impl Price {
    const fn new(input: f64, output: f64, cache_read: f64, cache_write: f64, window: u64) -> Self {
        Self {
            input,
            output,
            cache_read: Some(cache_read),
            cache_write: Some(cache_write),
            context_window: Some(window),
        }
    }

    /// The cost of `usage` at this price.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cache_read = self.cache_read.unwrap_or(self.input * 0.1);
        let cache_write = self.cache_write.unwrap_or(self.input * 1.25);
        (usage.input_tokens as f64 * self.input
            + usage.output_tokens as f64 * self.output
            + usage.cache_read_input_tokens as f64 * cache_read
            + usage.cache_creation_input_tokens as f64 * cache_write)
            / 1_000_000.0
    }
}

/// Model id → price. Lookup is exact first, then by the longest known prefix
/// (so `claude-sonnet-4-5-20250929` and `claude-sonnet-4-5` share a price).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    /// Prices by model id or id prefix.
    pub models: HashMap<String, Price>,
}

/// Error loading a price file.
#[derive(Debug, thiserror::Error)]
#[error("price file {path}: {message}")]
pub struct PriceFileError {
    /// File.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

impl PriceFileError {
    /// Always [`ErrorKind::Usage`](crate::ErrorKind::Usage): the price file is the user's to fix.
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Usage
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        let list: &[(&str, Price)] = &[
            // Claude models: the standard 200k window (1M needs a beta header this client does not send).
            ("claude-opus-4-8", Price::new(5.0, 25.0, 0.5, 6.25, 200_000)),
            ("claude-opus-4-5", Price::new(5.0, 25.0, 0.5, 6.25, 200_000)),
            ("claude-sonnet-5", Price::new(3.0, 15.0, 0.3, 3.75, 200_000)),
            ("claude-opus-4-1", Price::new(15.0, 75.0, 1.5, 18.75, 200_000)),
            ("claude-opus-4", Price::new(15.0, 75.0, 1.5, 18.75, 200_000)),
            ("claude-sonnet-4-5", Price::new(3.0, 15.0, 0.3, 3.75, 200_000)),
            ("claude-sonnet-4", Price::new(3.0, 15.0, 0.3, 3.75, 200_000)),
            ("claude-3-7-sonnet", Price::new(3.0, 15.0, 0.3, 3.75, 200_000)),
            ("claude-haiku-4-5", Price::new(1.0, 5.0, 0.1, 1.25, 200_000)),
            ("claude-3-5-haiku", Price::new(0.8, 4.0, 0.08, 1.0, 200_000)),
            ("gpt-4o-mini", Price::new(0.15, 0.6, 0.075, 0.15, 128_000)),
            ("gpt-4o", Price::new(2.5, 10.0, 1.25, 2.5, 128_000)),
            ("gpt-4.1-mini", Price::new(0.4, 1.6, 0.1, 0.4, 1_047_576)),
            ("gpt-4.1", Price::new(2.0, 8.0, 0.5, 2.0, 1_047_576)),
            // The scripted model: a window like Claude's, so compaction behaves as it would for real.
            ("scripted", Price::new(0.0, 0.0, 0.0, 0.0, 200_000)),
        ];
        Self { models: list.iter().map(|(k, v)| (k.to_string(), *v)).collect() }
    }
}

impl PriceTable {
    /// The price of a model id, if known.
    pub fn get(&self, model: &str) -> Option<&Price> {
        if let Some(p) = self.models.get(model) {
            return Some(p);
        }
        self.models.iter().filter(|(k, _)| model.starts_with(k.as_str())).max_by_key(|(k, _)| k.len()).map(|(_, p)| p)
    }

    /// The context window of a model id, if known.
    pub fn context_window(&self, model: &str) -> Option<u64> {
        self.get(model).and_then(|p| p.context_window)
    }

    /// The cost of `usage` on `model`; `None` when the model is unknown.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.get(model).map(|p| p.cost(usage))
    }

    /// Adds or replaces prices from a JSON file: `{"models": {"my-model": {"input": 1.0, "output": 2.0,
    /// "context_window": 32768}}}`.
    pub fn merge_file(&mut self, path: &Path) -> Result<(), PriceFileError> {
        let err = |message: String| PriceFileError { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let table: PriceTable =
            serde_json::from_str(&text).map_err(|e| err(format!("line {}, column {}: {e}", e.line(), e.column())))?;
        for (model, mut price) in table.models {
            // A file that prices a known model without naming its window keeps the known window.
            if price.context_window.is_none() {
                price.context_window = self.models.get(&model).and_then(|p| p.context_window);
            }
            self.models.insert(model, price);
        }
        Ok(())
    }
}
