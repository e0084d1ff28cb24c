//! `Glob`: files whose path matches a glob pattern.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use globset::GlobBuilder;
use serde_json::Value;

use std::ops::ControlFlow;

use super::{Args, Field, Kind, display_path};
use crate::tool::confined::ConfinedDir;
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput};

/// Most paths returned; the answer says when more matched.
pub const MAX_RESULTS: usize = 1000;

const FIELDS: &[Field] = &[
    Field::required(
        "pattern",
        Kind::String,
        "The glob pattern to match files against, relative to `path` (e.g. \"**/*.rs\", \"src/**/*.{ts,tsx}\", \"*.md\").",
    ),
    Field::optional(
        "path",
        Kind::String,
        "The directory to search in, absolute or relative to the working directory. Omit it to search the working directory.",
    ),
];

/// `Glob {pattern, path?}`: the files under `path` (default: the working directory) whose path relative
/// to `path` matches `pattern` (`globset` syntax: `*` and `?` stay within one path component, `**`
/// crosses directories, `{a,b}` alternatives, `[abc]` classes). An absolute pattern is matched against
/// absolute paths instead.
///
/// Paths are returned relative to the working directory, **sorted by modification time, newest
/// first** (like Claude Code), ties by path; at most [`MAX_RESULTS`], saying when the list was cut.
/// `.git` directories are skipped, symbolic links to directories are not descended into, and a
/// symbolic link to a file is listed only if it leads to a file inside the working directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Glob;

#[async_trait]
impl Tool for Glob {
    fn name(&self) -> &str {
        "Glob"
    }

    fn description(&self) -> &str {
        "Fast file pattern matching.\n\n\
         - Supports glob patterns like \"**/*.js\" or \"src/**/*.ts\": `*` matches within one directory level, `**` matches any number of directories, `{a,b}` matches alternatives.\n\
         - The pattern is matched against paths relative to `path` (default: your working directory); \"*.rs\" only matches files directly in it, \"**/*.rs\" matches at any depth.\n\
         - Returns matching file paths relative to your working directory, sorted by modification time (newest first), at most 1000.\n\
         - .git directories are skipped. Only paths inside your working directory can be searched.\n\
         - Use this tool to find files by name; use Grep to search file contents."
    }

    fn input_schema(&self) -> Value {
        super::schema(FIELDS)
    }

    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let args = Args::parse(self.name(), FIELDS, input)?;
        let pattern = args.string("pattern");
        if pattern.is_empty() {
            return Err(ToolError::InvalidInput("field `pattern` must not be empty".to_string()));
        }
        let dir = ConfinedDir::open(&ctx.working_dir)?;
        let root = dir.root().to_path_buf();
        let base = match args.opt_string("path") {
            Some(p) if !p.is_empty() => dir.resolve(&p)?,
            _ => root.clone(),
        };
        let shown_base = display_path(&root, &base);
        let Ok(base_meta) = dir.metadata(&base) else {
            return Err(ToolError::Failed(format!("Directory does not exist: {shown_base}")));
        };
        if !base_meta.is_dir() {
            return Err(ToolError::Failed(format!("{shown_base} is not a directory; `path` must be a directory.")));
        }
        let matcher = GlobBuilder::new(&pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| ToolError::InvalidInput(format!("invalid glob pattern `{pattern}`: {e}")))?
            .compile_matcher();
        let absolute = Path::new(&pattern).is_absolute();

        let mut found: Vec<(SystemTime, PathBuf)> = Vec::new();
        let mut interrupted = false;
        dir.walk(&base, &mut |entry| {
            if ctx.interrupt.is_triggered() {
                interrupted = true;
                return ControlFlow::Break(());
            }
            let Some(file) = dir.listed_file(&entry) else { return ControlFlow::Continue(()) };
            let candidate: &Path =
                if absolute { &entry.path } else { entry.path.strip_prefix(&base).unwrap_or(&entry.path) };
            if matcher.is_match(candidate) {
                let mtime = dir
                    .metadata(&file)
                    .and_then(|m| m.modified())
                    .map(|t| t.into_std())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                found.push((mtime, entry.path));
            }
            ControlFlow::Continue(())
        })
        .map_err(|e| ToolError::Failed(format!("cannot list {shown_base}: {e}")))?;
        if interrupted {
            return Err(ToolError::Interrupted);
        }
        if found.is_empty() {
            return Ok(ToolOutput::text(format!("No files found matching `{pattern}` in {shown_base}")));
        }
        found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let total = found.len();
        let mut out: Vec<String> = found.iter().take(MAX_RESULTS).map(|(_, p)| display_path(&root, p)).collect();
        if total > MAX_RESULTS {
            out.push(format!(
                "(Results are truncated: showing the first {MAX_RESULTS} of {total} matching files. Use a more specific path or pattern.)"
            ));
        }
        Ok(ToolOutput::text(out.join("\n")))
    }
}
