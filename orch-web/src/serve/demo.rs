//! The demo model `orch serve` runs when no model is configured (no `--model`, `ORCH_MODEL`,
//! `models.default` or `ANTHROPIC_API_KEY`): the scripted demo orchestrator of `examples/scripts`,
//! so a newcomer's first server answers a chat without an API key.

use std::path::{Path, PathBuf};

use crate::chat::Failure;

/// The script (the same file the README's CLI demo uses).
const SCRIPT: &str = include_str!("../../../examples/scripts/orchestrator.json");

/// Writes the demo script to `<working_dir>/.orch/demo-orchestrator.json` and returns its model spec.
pub fn demo_model(working_dir: &Path) -> Result<String, Failure> {
    let dir = working_dir.join(".orch");
    let path: PathBuf = dir.join("demo-orchestrator.json");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, SCRIPT))
        .map_err(|e| Failure::runtime(format!("cannot write the demo model to {}: {e}", path.display())))?;
    Ok(format!("scripted:{}", path.display()))
}
