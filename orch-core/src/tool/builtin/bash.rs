//! `Bash`: runs a shell command.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{Args, Field, Kind, truncate_chars};
use crate::runtime::ProcessSpec;
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput};

/// Timeout when none is given, in milliseconds (2 minutes).
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// Largest timeout accepted, in milliseconds (10 minutes); larger values are lowered to it.
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// Characters of stdout, and of stderr, kept; the answer says when more was produced.
pub const MAX_OUTPUT_CHARS: usize = 30_000;

const FIELDS: &[Field] = &[
    Field::required("command", Kind::String, "The command to execute."),
    Field::optional("timeout", Kind::Integer, "Optional timeout in milliseconds (default 120000, max 600000)."),
    Field::optional(
        "description",
        Kind::String,
        "A clear, concise description of what this command does, in 5-10 words (informational only).",
    ),
];

/// `Bash {command, timeout?, description?}`: runs `bash -c <command>` (`sh -c` when `bash` is not on
/// the `PATH`) through [`crate::runtime::Runtime::run_process`], in the agent's working directory, with
/// stdin closed. `timeout` is in milliseconds (default [`DEFAULT_TIMEOUT_MS`], at most
/// [`MAX_TIMEOUT_MS`]); on timeout or interrupt the runtime kills the command's whole process group.
/// `description` is accepted, as in Claude Code, and ignored.
///
/// The answer holds stdout and stderr (each labelled, each cut to [`MAX_OUTPUT_CHARS`] characters with
/// a note when cut) and the exit code. A non-zero exit, a death by signal and a timeout ("killed after
/// N ms") are answers with `is_error: true`; an interrupt is `Err(ToolError::Interrupted)`.
///
/// **Bash is not a sandbox.** It starts in the working directory, but the command can read and write
/// anywhere the orch process itself can (`cd /`, absolute paths, network, …); only the file tools are
/// confined to the working directory. Confining commands (containers, namespaces, seccomp, …) is later
/// work; until then, only give `Bash` to agents whose commands you would run yourself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bash;

#[async_trait]
impl Tool for Bash {
    fn name(&self) -> &str {
        "Bash"
    }

    fn description(&self) -> &str {
        "Executes a bash command and returns its output.\n\n\
         Usage:\n\
         - The command runs with `bash -c` in your working directory, with no stdin (interactive commands will not work). Each call starts a fresh shell: `cd` and variables do not carry over to the next call.\n\
         - Quote paths that contain spaces (cd \"path with spaces\").\n\
         - timeout is in milliseconds (default 120000 = 2 minutes, max 600000 = 10 minutes); the command and its children are killed when it expires.\n\
         - stdout and stderr are returned separately, each cut after 30000 characters, followed by the exit code. A non-zero exit code is reported as an error.\n\
         - Chain dependent commands with && ; run long-lived servers elsewhere, since the call waits for the command to finish.\n\
         - Prefer the Read, Write, Edit, Glob and Grep tools for reading, writing and searching files; use Bash for running programs, builds, tests and git."
    }

    fn input_schema(&self) -> Value {
        let mut schema = super::schema(FIELDS);
        if let Some(t) = schema.pointer_mut("/properties/timeout").and_then(Value::as_object_mut) {
            t.insert("maximum".to_string(), Value::from(MAX_TIMEOUT_MS));
        }
        schema
    }

    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let args = Args::parse(self.name(), FIELDS, input)?;
        let command = args.string("command");
        if command.trim().is_empty() {
            return Err(ToolError::InvalidInput("field `command` must not be empty".to_string()));
        }
        let timeout_ms = args.opt_u64("timeout").unwrap_or(DEFAULT_TIMEOUT_MS).min(MAX_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(ToolError::InvalidInput("field `timeout` must be at least 1 (milliseconds)".to_string()));
        }
        if ctx.interrupt.is_triggered() {
            return Err(ToolError::Interrupted);
        }
        if !ctx.working_dir.is_dir() {
            return Err(ToolError::Failed(format!(
                "the agent's working directory {} does not exist or is not a directory",
                ctx.working_dir.display()
            )));
        }
        let spec = ProcessSpec {
            program: shell().to_string(),
            args: vec!["-c".to_string(), command],
            cwd: ctx.working_dir.clone(),
            env: Vec::new(),
            timeout: Some(Duration::from_millis(timeout_ms)),
            // A UTF-8 character is at most 4 bytes: a stream that hits this byte limit has more than
            // MAX_OUTPUT_CHARS characters, so cutting by characters below catches every truncation.
            output_limit: 4 * (MAX_OUTPUT_CHARS + 1),
        };
        let out = ctx
            .runtime
            .run_process(spec, ctx.interrupt.clone())
            .await
            .map_err(|e| ToolError::Failed(format!("could not run the command: {e}")))?;
        if out.interrupted {
            return Err(ToolError::Interrupted);
        }

        let mut text = String::new();
        section(&mut text, "stdout", &out.stdout);
        section(&mut text, "stderr", &out.stderr);
        if out.stdout.is_empty() && out.stderr.is_empty() {
            text.push_str("(no output)\n");
        }
        if out.timed_out {
            text.push_str(&format!("Command timed out: killed after {timeout_ms} ms.\n"));
            return Ok(ToolOutput::error(text));
        }
        match out.exit_code {
            Some(0) => {
                text.push_str("exit code: 0\n");
                Ok(ToolOutput::text(text))
            }
            Some(code) => {
                text.push_str(&format!("exit code: {code} (the command failed)\n"));
                Ok(ToolOutput::error(text))
            }
            None => {
                text.push_str("The command was killed by a signal (no exit code).\n");
                Ok(ToolOutput::error(text))
            }
        }
    }
}

/// Appends `stream` under its label, cut to [`MAX_OUTPUT_CHARS`] characters with a note when cut.
fn section(text: &mut String, label: &str, stream: &str) {
    if stream.is_empty() {
        return;
    }
    let (kept, cut) = truncate_chars(stream, MAX_OUTPUT_CHARS);
    text.push_str(label);
    text.push_str(":\n");
    text.push_str(kept);
    if !kept.ends_with('\n') {
        text.push('\n');
    }
    if cut {
        text.push_str(&format!("[{label} truncated: only the first {MAX_OUTPUT_CHARS} characters are shown]\n"));
    }
}

/// `bash` if it is on the `PATH`, else `sh`.
fn shell() -> &'static str {
    let has_bash = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| is_executable(&dir.join("bash"))));
    if has_bash { "bash" } else { "sh" }
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}
