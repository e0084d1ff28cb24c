//! Confines file paths to a working directory (placeholder; being written).

use std::path::{Path, PathBuf};

/// Resolves `path` (relative to `working_dir`, or absolute) to a path inside `working_dir`.
pub fn resolve(working_dir: &Path, path: &str) -> Result<PathBuf, String> {
    Ok(working_dir.join(path))
}
