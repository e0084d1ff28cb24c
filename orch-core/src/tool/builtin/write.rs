//! `Write`: creates or overwrites a file.

use async_trait::async_trait;
use serde_json::Value;

use super::{Args, Field, Kind, display_path, io_failed};
use crate::tool::confined::ConfinedDir;
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput};

const FIELDS: &[Field] = &[
    Field::required(
        "file_path",
        Kind::String,
        "The path of the file to write: absolute, or relative to the working directory. It must be inside the working directory.",
    ),
    Field::required("content", Kind::String, "The content to write to the file."),
];

/// `Write {file_path, content}`: writes `content` to the file, replacing it if it exists and creating
/// missing parent directories (inside the working directory). Returns `Wrote N bytes to <path>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Write;

#[async_trait]
impl Tool for Write {
    fn name(&self) -> &str {
        "Write"
    }

    fn description(&self) -> &str {
        "Writes a file to the local filesystem.\n\n\
         Usage:\n\
         - file_path may be absolute or relative to your working directory; files outside your working directory cannot be written.\n\
         - This overwrites the existing file if there is one, and creates missing parent directories.\n\
         - Prefer Edit for changing part of an existing file: it only sends the changed text. Read a file before overwriting it.\n\
         - Do not create documentation or README files unless asked."
    }

    fn input_schema(&self) -> Value {
        super::schema(FIELDS)
    }

    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let args = Args::parse(self.name(), FIELDS, input)?;
        let file_path = args.string("file_path");
        let content = args.string("content");
        let dir = ConfinedDir::open(&ctx.working_dir)?;
        let path = dir.resolve(&file_path)?;
        let shown = display_path(dir.root(), &path);
        if dir.metadata(&path).is_ok_and(|m| m.is_dir()) {
            return Err(ToolError::Failed(format!("{shown} is a directory; give the path of a file to write.")));
        }
        if let Some(parent) = path.parent() {
            dir.create_dir_all(parent).map_err(|e| io_failed("cannot create the parent directories of", &shown, &e))?;
        }
        dir.write(&path, content.as_bytes()).map_err(|e| io_failed("cannot write", &shown, &e))?;
        Ok(ToolOutput::text(format!("Wrote {} bytes to {shown}", content.len())))
    }
}
