//! `Edit`: exact string replacement in a file.

use async_trait::async_trait;
use serde_json::Value;

use super::{Args, Field, Kind, display_path, io_failed};
use crate::tool::confined::ConfinedDir;
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput};

const FIELDS: &[Field] = &[
    Field::required(
        "file_path",
        Kind::String,
        "The path of the file to modify: absolute, or relative to the working directory. It must be inside the working directory.",
    ),
    Field::required("old_string", Kind::String, "The exact text to replace."),
    Field::required("new_string", Kind::String, "The text to replace it with (must be different from old_string)."),
    Field::optional(
        "replace_all",
        Kind::Boolean,
        "Replace every occurrence of old_string (default false: old_string must occur exactly once).",
    ),
];

/// `Edit {file_path, old_string, new_string, replace_all?}`: replaces the exact text `old_string` by
/// `new_string`. Without `replace_all`, `old_string` must occur exactly once. Fails when the file is
/// missing, when `old_string` is not found, when it occurs several times without `replace_all` (saying
/// how many), and when `old_string == new_string`. Returns how many replacements were made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Edit;

#[async_trait]
impl Tool for Edit {
    fn name(&self) -> &str {
        "Edit"
    }

    fn description(&self) -> &str {
        "Performs exact string replacements in a file.\n\n\
         Usage:\n\
         - Read the file first, so old_string matches its current content exactly.\n\
         - file_path may be absolute or relative to your working directory; files outside your working directory cannot be edited.\n\
         - When copying text from Read output, keep the exact indentation (tabs/spaces) that follows the line-number tab; never include the line number itself.\n\
         - The edit fails if old_string is not found, or if it occurs more than once: then give a larger old_string with more surrounding context to make it unique, or set replace_all to change every occurrence.\n\
         - replace_all is useful for renaming a variable across the file.\n\
         - old_string and new_string must differ. To create a new file, use Write."
    }

    fn input_schema(&self) -> Value {
        super::schema(FIELDS)
    }

    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let args = Args::parse(self.name(), FIELDS, input)?;
        let file_path = args.string("file_path");
        let old_string = args.string("old_string");
        let new_string = args.string("new_string");
        let replace_all = args.opt_bool("replace_all").unwrap_or(false);
        if old_string.is_empty() {
            return Err(ToolError::InvalidInput(
                "field `old_string` must not be empty (to create a file, use Write)".to_string(),
            ));
        }
        if old_string == new_string {
            return Err(ToolError::InvalidInput(
                "No changes to make: old_string and new_string are exactly the same.".to_string(),
            ));
        }
        let dir = ConfinedDir::open(&ctx.working_dir)?;
        let path = dir.resolve(&file_path)?;
        let shown = display_path(dir.root(), &path);

        let bytes = match dir.read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ToolError::Failed(format!(
                    "File does not exist: {shown}. To create a new file, use Write."
                )));
            }
            Err(_) if dir.metadata(&path).is_ok_and(|m| m.is_dir()) => {
                return Err(ToolError::Failed(format!("{shown} is a directory, not a file.")));
            }
            Err(e) => return Err(io_failed("cannot read", &shown, &e)),
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Err(ToolError::Failed(format!("{shown} is not valid UTF-8 text; Edit only changes text files.")));
        };
        let count = text.matches(old_string.as_str()).count();
        if count == 0 {
            return Err(ToolError::Failed(format!(
                "old_string was not found in {shown}. It must match the file exactly, including whitespace and indentation; Read the file again to check its current content."
            )));
        }
        if count > 1 && !replace_all {
            return Err(ToolError::Failed(format!(
                "old_string occurs {count} times in {shown}, but replace_all is false. To replace only one occurrence, give more surrounding context in old_string so it is unique; to replace every occurrence, set replace_all to true."
            )));
        }
        let updated = text.replace(old_string.as_str(), &new_string);
        dir.write(&path, updated.as_bytes()).map_err(|e| io_failed("cannot write", &shown, &e))?;
        Ok(ToolOutput::text(format!("Replaced {count} occurrence{} in {shown}", if count == 1 { "" } else { "s" })))
    }
}
