//! `Bash`: runs a shell command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{Args, Field, Kind, truncate_chars};
use crate::confine::{Confinement, ConfinementStatus};
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
/// **Confinement** ([`BashSandbox`], on by default): on Linux the command runs under Landlock
/// ([`crate::confine`]) and may write only below the working directory, a private temporary
/// directory (`TMPDIR`, removed after the call), the repository's git directory when the working
/// directory is a subdirectory or a `git worktree` of it, and the sandbox's extra `writable`
/// directories; TCP is refused unless the sandbox allows the network. Reading is not restricted.
/// Where that cannot be enforced (no Landlock in the kernel, another system, the `landlock` feature
/// off) the command runs unconfined and the answer starts with a warning saying so. A confined
/// command that fails with "Permission denied" or "Operation not permitted" gets a note saying what
/// the sandbox allows, so the model (and the log) can tell a refusal from an ordinary failure.
#[derive(Debug, Clone, Default)]
pub struct Bash {
    sandbox: BashSandbox,
}

/// What [`Bash`] commands may do (`[sandbox]` in `.orch/config.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BashSandbox {
    /// Confine commands (default `true`). `false`: they run with the orch process's own rights.
    pub confine: bool,
    /// Let confined commands use the network (TCP; default `false`).
    pub network: bool,
    /// More directories (or files) confined commands may write below, absolute.
    pub writable: Vec<PathBuf>,
}

impl Default for BashSandbox {
    fn default() -> Self {
        Self { confine: true, network: false, writable: Vec::new() }
    }
}

impl BashSandbox {
    /// Commands run with the orch process's own rights.
    pub fn unconfined() -> Self {
        Self { confine: false, ..Self::default() }
    }
}

impl Bash {
    /// `Bash` confined by `sandbox`.
    pub fn with_sandbox(sandbox: BashSandbox) -> Self {
        Self { sandbox }
    }

    /// Its sandbox.
    pub fn sandbox(&self) -> &BashSandbox {
        &self.sandbox
    }

    /// What a command run in `working_dir` with the private temporary directory `tmp` may write.
    fn confinement(&self, working_dir: &Path, tmp: &Path) -> Confinement {
        let mut writable = vec![working_dir.to_path_buf(), tmp.to_path_buf()];
        // Shells and build tools write to these; they hold nothing.
        writable.extend(["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"].map(PathBuf::from));
        writable.extend(git_dirs_outside(working_dir));
        writable.extend(self.sandbox.writable.iter().cloned());
        Confinement { writable, network: self.sandbox.network }
    }
}

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
         - Prefer the Read, Write, Edit, Glob and Grep tools for reading, writing and searching files; use Bash for running programs, builds, tests and git.\n\
         - Commands may run confined: writing outside your working directory and $TMPDIR, and network access, can be refused (\"Permission denied\")."
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
        let tmp =
            if self.sandbox.confine {
                Some(PrivateTmp::create().map_err(|e| {
                    ToolError::Failed(format!("could not create the command's temporary directory: {e}"))
                })?)
            } else {
                None
            };
        let confine = tmp.as_ref().map(|t| {
            let wd = std::fs::canonicalize(&ctx.working_dir).unwrap_or_else(|_| ctx.working_dir.clone());
            self.confinement(&wd, t.path())
        });
        let env =
            tmp.as_ref().map(|t| vec![("TMPDIR".to_string(), t.path().display().to_string())]).unwrap_or_default();
        let spec = ProcessSpec {
            program: shell().to_string(),
            args: vec!["-c".to_string(), command],
            cwd: ctx.working_dir.clone(),
            env,
            confine,
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

        drop(tmp);

        let mut text = String::new();
        if let Some(warning) = out.confinement.warning() {
            warn_once(&warning);
            text.push_str(&warning);
            text.push('\n');
        }
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
                if refused(&out) {
                    text.push_str(&self.refusal_note(&ctx.working_dir));
                }
                Ok(ToolOutput::error(text))
            }
            None => {
                text.push_str("The command was killed by a signal (no exit code).\n");
                Ok(ToolOutput::error(text))
            }
        }
    }
}

impl Bash {
    /// What the sandbox allows, for a confined command that was refused something.
    fn refusal_note(&self, working_dir: &Path) -> String {
        let extra = if self.sandbox.writable.is_empty() {
            String::new()
        } else {
            format!(
                ", {}",
                self.sandbox.writable.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            )
        };
        let network = if self.sandbox.network { "allowed" } else { "off" };
        format!(
            "note: the command ran confined (Landlock): it may write only below {} and $TMPDIR{extra}; network: {network}. Writes elsewhere are refused with \"Permission denied\".\n",
            working_dir.display()
        )
    }
}

/// Whether a confined command's failure looks like the sandbox's refusal.
fn refused(out: &crate::runtime::ProcessOutput) -> bool {
    matches!(out.confinement, ConfinementStatus::Enforced | ConfinementStatus::Partial(_))
        && ["Permission denied", "Operation not permitted"].iter().any(|m| out.stderr.contains(m))
}

/// Logs the first unenforced confinement of the process (each answer says it anyway).
fn warn_once(warning: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(target: "orch::sandbox", "{warning}");
    }
}

/// A directory of its own under the system's temporary directory for one command (its `TMPDIR`),
/// removed with everything in it when dropped.
struct PrivateTmp(PathBuf);

impl PrivateTmp {
    fn create() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("orch-bash-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir(&path)?;
        // Canonical, so the confinement's rule names the directory itself (`/tmp` may be a link).
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::debug!(dir = %self.0.display(), error = %e, "the command's temporary directory was not removed");
        }
    }
}

/// The git directories a command in `working_dir` writes to that are not below it: the `.git` of a
/// repository whose root is above `working_dir`, or the directories a `git worktree` checkout's
/// `.git` file points to (its own, and the main repository's shared one).
fn git_dirs_outside(working_dir: &Path) -> Vec<PathBuf> {
    let Some(dot_git) = working_dir.ancestors().map(|d| d.join(".git")).find(|g| g.exists()) else {
        return Vec::new();
    };
    if dot_git.is_dir() {
        return if dot_git.starts_with(working_dir) { Vec::new() } else { vec![dot_git] };
    }
    // A worktree: `.git` is a file `gitdir: <dir>`, and `<dir>/commondir` names the shared directory.
    let Ok(text) = std::fs::read_to_string(&dot_git) else { return Vec::new() };
    let Some(gitdir) = text.lines().find_map(|l| l.strip_prefix("gitdir:")).map(|g| PathBuf::from(g.trim())) else {
        return Vec::new();
    };
    let base = dot_git.parent().unwrap_or(working_dir);
    let gitdir = if gitdir.is_absolute() { gitdir } else { base.join(gitdir) };
    let mut dirs = vec![gitdir.clone()];
    if let Ok(common) = std::fs::read_to_string(gitdir.join("commondir")) {
        let common = PathBuf::from(common.trim());
        let common = if common.is_absolute() { common } else { gitdir.join(common) };
        dirs.push(std::fs::canonicalize(&common).unwrap_or(common));
    }
    dirs
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
