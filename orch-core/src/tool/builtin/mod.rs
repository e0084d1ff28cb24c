//! Built-in tools (placeholder; being written).

use std::sync::Arc;

use super::Tool;

/// All built-in tools.
pub fn all() -> Vec<Arc<dyn Tool>> {
    Vec::new()
}
