//! `Grep`: searches file contents with a regular expression.

use std::ops::ControlFlow;
use std::path::Path;

use async_trait::async_trait;
use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use serde_json::Value;

use super::{Args, Field, Kind, display_path, looks_binary, truncate_chars};
use crate::tool::confined::ConfinedDir;
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput};

/// Most matching lines returned; the answer says when more matched.
pub const MAX_MATCHES: usize = 500;
/// Matching lines longer than this many characters are cut.
pub const MAX_LINE_CHARS: usize = 500;
/// Files larger than this are not searched (the answer says how many were skipped).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

const FIELDS: &[Field] = &[
    Field::required(
        "pattern",
        Kind::String,
        "The regular expression to search for in file contents (Rust regex syntax, e.g. \"fn\\\\s+main\", \"log.*Error\").",
    ),
    Field::optional(
        "path",
        Kind::String,
        "The file or directory to search in, absolute or relative to the working directory. Omit it to search the working directory.",
    ),
    Field::optional(
        "glob",
        Kind::String,
        "Only search files matching this glob (e.g. \"*.js\", \"*.{ts,tsx}\"). Without a `/` it is matched against the file name, with one against the path relative to `path`.",
    ),
];

/// `Grep {pattern, path?, glob?}`: the lines matching the regular expression `pattern` (`regex` crate
/// syntax), in the files under `path` (default: the working directory; may also be a single file),
/// optionally only in files matching `glob` (matched against the file name, or against the path
/// relative to `path` when it contains `/`).
///
/// Output: one `path:line_no:line` per matching line, paths relative to the working directory, files
/// in name order; at most [`MAX_MATCHES`] lines, saying when cut. No match is a plain "No matches"
/// answer, not an error. Binary files (NUL bytes), files over [`MAX_FILE_BYTES`] and `.git`
/// directories are skipped; symbolic links are followed only when they lead inside the working
/// directory. An invalid regular expression is [`ToolError::InvalidInput`] carrying the regex error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grep;

#[async_trait]
impl Tool for Grep {
    fn name(&self) -> &str {
        "Grep"
    }

    fn description(&self) -> &str {
        "Searches file contents with a regular expression.\n\n\
         Usage:\n\
         - pattern is a regular expression (Rust regex syntax, like ripgrep's: \"log.*Error\", \"function\\s+\\w+\"). Literal braces and other metacharacters need escaping (\"interface\\{\\}\"). Use (?i) at the start for a case-insensitive search.\n\
         - path is a file or directory (default: your working directory); only paths inside your working directory can be searched.\n\
         - glob filters which files are searched, e.g. \"*.js\" or \"**/*.{ts,tsx}\".\n\
         - Output is one line per match: path:line_number:line, paths relative to your working directory, at most 500 matches.\n\
         - Patterns match within a single line. Binary files and .git directories are skipped.\n\
         - Use this tool to search file contents; use Glob to find files by name."
    }

    fn input_schema(&self) -> Value {
        super::schema(FIELDS)
    }

    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let args = Args::parse(self.name(), FIELDS, input)?;
        let pattern = args.string("pattern");
        let regex = Regex::new(&pattern)
            .map_err(|e| ToolError::InvalidInput(format!("invalid regular expression in `pattern`: {e}")))?;
        let filter = match args.opt_string("glob").filter(|g| !g.is_empty()) {
            Some(g) => Some(
                GlobBuilder::new(&g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| ToolError::InvalidInput(format!("invalid glob in `glob`: {e}")))?
                    .compile_matcher(),
            ),
            None => None,
        };
        let dir = ConfinedDir::open(&ctx.working_dir)?;
        let base = match args.opt_string("path") {
            Some(p) if !p.is_empty() => dir.resolve(&p)?,
            _ => dir.root().to_path_buf(),
        };
        let shown_base = display_path(dir.root(), &base);
        let Ok(base_meta) = dir.metadata(&base) else {
            return Err(ToolError::Failed(format!("Path does not exist: {shown_base}")));
        };

        let mut search = Search { dir: &dir, regex: &regex, lines: Vec::new(), truncated: false, too_large: 0 };
        if base_meta.is_file() {
            // An explicitly named file is searched whatever the glob says.
            search.file_as(&base, &base);
        } else {
            let mut interrupted = false;
            dir.walk(&base, &mut |entry| {
                if ctx.interrupt.is_triggered() {
                    interrupted = true;
                    return ControlFlow::Break(());
                }
                if !passes(filter.as_ref(), &base, &entry.path) {
                    return ControlFlow::Continue(());
                }
                let Some(file) = dir.listed_file(&entry) else { return ControlFlow::Continue(()) };
                // Show the path as walked (a link inside the tree keeps its own name).
                search.file_as(&file, &entry.path);
                if search.truncated { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            })
            .map_err(|e| ToolError::Failed(format!("cannot list {shown_base}: {e}")))?;
            if interrupted {
                return Err(ToolError::Interrupted);
            }
        }

        let mut out = if search.lines.is_empty() {
            format!("No matches for `{pattern}` in {shown_base}")
        } else {
            search.lines.join("\n")
        };
        if search.truncated {
            out.push_str(&format!(
                "\n(Results are truncated at {MAX_MATCHES} matches. Use a more specific pattern, path or glob.)"
            ));
        }
        if search.too_large > 0 {
            out.push_str(&format!(
                "\n({} file{} larger than {} MiB not searched.)",
                search.too_large,
                if search.too_large == 1 { "" } else { "s" },
                MAX_FILE_BYTES / (1024 * 1024)
            ));
        }
        Ok(ToolOutput::text(out))
    }
}

/// Whether `path` passes the optional glob filter.
fn passes(filter: Option<&GlobMatcher>, base: &Path, path: &Path) -> bool {
    let Some(m) = filter else { return true };
    if m.glob().glob().contains('/') {
        m.is_match(path.strip_prefix(base).unwrap_or(path))
    } else {
        path.file_name().is_some_and(|n| m.is_match(n))
    }
}

struct Search<'a> {
    dir: &'a ConfinedDir,
    regex: &'a Regex,
    lines: Vec<String>,
    truncated: bool,
    too_large: usize,
}

impl Search<'_> {
    /// Searches `file`, reporting matches under the name `shown_as`.
    fn file_as(&mut self, file: &Path, shown_as: &Path) {
        if self.dir.metadata(file).is_ok_and(|m| m.len() > MAX_FILE_BYTES) {
            self.too_large += 1;
            return;
        }
        let Ok(bytes) = self.dir.read(file) else { return };
        if looks_binary(&bytes) {
            return;
        }
        let text = String::from_utf8_lossy(&bytes);
        let shown = display_path(self.dir.root(), shown_as);
        for (i, line) in text.lines().enumerate() {
            if !self.regex.is_match(line) {
                continue;
            }
            if self.lines.len() >= MAX_MATCHES {
                self.truncated = true;
                return;
            }
            let (line, cut) = truncate_chars(line, MAX_LINE_CHARS);
            let ellipsis = if cut { " […]" } else { "" };
            self.lines.push(format!("{shown}:{}:{line}{ellipsis}", i + 1));
        }
    }
}
