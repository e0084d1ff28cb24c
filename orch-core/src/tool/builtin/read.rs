//! `Read`: a text file's lines, numbered like `cat -n`.

use async_trait::async_trait;
use serde_json::Value;

use super::{Args, Field, Kind, display_path, io_failed, looks_binary, truncate_chars};
use crate::tool::confined::ConfinedDir;
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput};

/// Lines read when `limit` is not given.
pub const DEFAULT_LIMIT: u64 = 2000;
/// Longer lines are cut to this many characters.
pub const MAX_LINE_CHARS: usize = 2000;

const FIELDS: &[Field] = &[
    Field::required(
        "file_path",
        Kind::String,
        "The path of the file to read: absolute, or relative to the working directory. It must be inside the working directory.",
    ),
    Field::optional(
        "offset",
        Kind::Integer,
        "The line number to start reading from (1-based). Only give it when the file is too large to read at once.",
    ),
    Field::optional(
        "limit",
        Kind::Integer,
        "The number of lines to read (default 2000). Only give it when the file is too large to read at once.",
    ),
];

/// `Read {file_path, offset?, limit?}`: returns a text file's lines as `cat -n` does (right-aligned line
/// number, a tab, the line), starting at the 1-based line `offset` (default 1), at most `limit` lines
/// (default 2000). Lines longer than 2000 characters are cut. Fails for a missing file, a directory or
/// a binary file (one with NUL bytes); an empty file is reported as such.
#[derive(Debug, Clone, Copy, Default)]
pub struct Read;

#[async_trait]
impl Tool for Read {
    fn name(&self) -> &str {
        "Read"
    }

    fn description(&self) -> &str {
        "Reads a text file from the local filesystem.\n\n\
         Usage:\n\
         - file_path may be absolute or relative to your working directory; files outside your working directory cannot be read.\n\
         - By default it reads up to 2000 lines from the start of the file. For long files you can give an offset (1-based line number) and a limit (number of lines), but it is usually best to read the whole file.\n\
         - Lines longer than 2000 characters are truncated.\n\
         - Results are returned like `cat -n`: the line number, a tab, then the line. The line number and tab are not part of the file; do not include them in Edit's old_string.\n\
         - It reads files, not directories: use Glob or Bash `ls` to list a directory.\n\
         - Binary files (containing NUL bytes) are refused.\n\
         - Reading an empty file says so."
    }

    fn input_schema(&self) -> Value {
        super::schema(FIELDS)
    }

    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let args = Args::parse(self.name(), FIELDS, input)?;
        let file_path = args.string("file_path");
        let offset = args.opt_u64("offset").unwrap_or(1).max(1);
        let limit = args.opt_u64("limit").unwrap_or(DEFAULT_LIMIT);
        if limit == 0 {
            return Err(ToolError::InvalidInput("field `limit` must be at least 1".to_string()));
        }
        let dir = ConfinedDir::open(&ctx.working_dir)?;
        let path = dir.resolve(&file_path)?;
        let shown = display_path(dir.root(), &path);

        let meta = match dir.metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ToolError::Failed(format!("File does not exist: {shown}")));
            }
            Err(e) => return Err(io_failed("cannot read", &shown, &e)),
        };
        if meta.is_dir() {
            return Err(ToolError::Failed(format!(
                "{shown} is a directory, not a file. Use Glob or Bash `ls` to list its contents."
            )));
        }
        let bytes = dir.read(&path).map_err(|e| io_failed("cannot read", &shown, &e))?;
        if bytes.is_empty() {
            return Ok(ToolOutput::text(format!("(The file {shown} exists but is empty.)")));
        }
        if looks_binary(&bytes) {
            return Err(ToolError::Failed(format!(
                "{shown} looks like a binary file (it contains NUL bytes); Read only reads text files."
            )));
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let total = lines.len();
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if offset > total {
            return Err(ToolError::Failed(format!(
                "offset {offset} is past the end of {shown}, which has {total} line{}.",
                if total == 1 { "" } else { "s" }
            )));
        }
        let start = offset - 1;
        let end = start.saturating_add(limit).min(total);
        let mut out = String::new();
        let mut cut = 0usize;
        for (i, line) in lines.iter().enumerate().take(end).skip(start) {
            let (line, was_cut) = truncate_chars(line, MAX_LINE_CHARS);
            if was_cut {
                cut += 1;
            }
            out.push_str(&format!("{:>6}\t{line}\n", i + 1));
        }
        if end < total || start > 0 {
            out.push_str(&format!(
                "\n(Showing lines {}-{end} of {total}. Use offset and limit to read other parts.)\n",
                start + 1
            ));
        }
        if cut > 0 {
            out.push_str(&format!(
                "({cut} line{} longer than {MAX_LINE_CHARS} characters {} truncated.)\n",
                if cut == 1 { "" } else { "s" },
                if cut == 1 { "was" } else { "were" }
            ));
        }
        Ok(ToolOutput::text(out))
    }
}
