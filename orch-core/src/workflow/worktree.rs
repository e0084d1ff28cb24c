//! Git isolation of workflow runs: a run with `worktree = true` works in its own git worktree
//! (`<repo>/.orch/worktrees/<run name>`) on its own branch (`orch/<run name>`), commits each step's
//! changes there, and on success keeps the branch for review or merges it into the main tree's
//! current branch (only when that tree has no uncommitted changes to tracked files). The main tree's
//! files are never touched, so several runs can work on one repository at once.
//!
//! What a run did is recorded in its `output_data.worktree` ([`WORKTREE_KEY`]): `path`, `branch`,
//! `base` (the commit it started from), `on_success`, and once the run ends `state` (`active`,
//! `kept`, `merged`, `merge_skipped`), `merge_error` when a merge was refused or failed, and
//! `removed` (whether the worktree directory was removed; the branch always stays unless merged).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::git;
use crate::runtime::Runtime;

/// The key of a run's worktree in its `output_data` (and of the override in its input).
pub const WORKTREE_KEY: &str = "worktree";

/// The input key overriding a workflow's `on_success`.
pub const ON_SUCCESS_KEY: &str = "on_success";

/// Time allowed to git commands that write (a checkout of a big tree takes a while).
const WRITE_TIMEOUT: Duration = Duration::from_secs(300);

/// What to do with a worktree run's branch when the run completes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnSuccess {
    /// Keep the branch for review (the default); the worktree directory is removed.
    #[default]
    Keep,
    /// Merge the branch into the main tree's current branch when that tree is clean.
    Merge,
}

impl OnSuccess {
    /// `keep` or `merge`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Merge => "merge",
        }
    }

    /// Parses `keep` or `merge`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keep" => Some(Self::Keep),
            "merge" => Some(Self::Merge),
            _ => None,
        }
    }
}

/// How a workflow isolates its runs (the `worktree` and `on_success` keys of a workflow file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Isolation {
    /// Run in a worktree of its own.
    pub worktree: bool,
    /// What to do with the branch on success.
    pub on_success: OnSuccess,
}

impl Isolation {
    /// This isolation with a run's input applied: `worktree` (a boolean) and `on_success` (`keep` or
    /// `merge`) override the workflow's. A value of the wrong kind is an error naming the key.
    pub fn with_input(self, input: &Value) -> Result<Isolation, String> {
        let mut out = self;
        match input.get(WORKTREE_KEY) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => out.worktree = *b,
            Some(other) => return Err(format!("'{WORKTREE_KEY}' must be true or false, not {other}")),
        }
        match input.get(ON_SUCCESS_KEY) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                out.on_success = OnSuccess::parse(s)
                    .ok_or_else(|| format!("'{ON_SUCCESS_KEY}' must be \"keep\" or \"merge\", not \"{s}\""))?;
            }
            Some(other) => return Err(format!("'{ON_SUCCESS_KEY}' must be \"keep\" or \"merge\", not {other}")),
        }
        Ok(out)
    }
}

/// Serializes this process's worktree creations and merges (git takes its own locks, but two
/// `worktree add` or two merges at the same moment in one repository can trip over each other's).
static GIT_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A run's worktree.
#[derive(Debug, Clone)]
pub(crate) struct Worktree {
    /// The main tree's top.
    pub top: PathBuf,
    /// The worktree's top.
    pub path: PathBuf,
    /// The run's working dir inside it (the engine's working dir relative to the repository's top).
    pub workdir: PathBuf,
    /// The branch.
    pub branch: String,
    /// The commit it started from.
    pub base: String,
    /// What to do on success.
    pub on_success: OnSuccess,
}

/// Checks that `working_dir` is in a git repository with a commit, for a run that will need a
/// worktree: the repository's top, or why not.
pub(crate) async fn check_repository(runtime: &dyn Runtime, working_dir: &Path) -> Result<PathBuf, String> {
    let Some(top) = git::toplevel(runtime, working_dir).await else {
        return Err(format!(
            "{} is not in a git repository: a worktree run needs one (git init, then a first commit)",
            working_dir.display()
        ));
    };
    if git::head(runtime, &top).await.is_none() {
        return Err(format!(
            "the git repository at {} has no commit yet: a worktree run branches from HEAD, so commit first",
            top.display()
        ));
    }
    Ok(top)
}

/// A branch and directory name from a run's name: letters, digits, `.`, `_` and `-` kept, other
/// characters as `-`, at most [`MAX_NAME`] characters, no leading or trailing `.` or `-`, no `..`, no
/// `.lock` ending (what git refuses in a branch name), never empty.
pub(crate) fn sanitize(name: &str) -> String {
    let mapped: String = name
        .chars()
        .take(MAX_NAME)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .collect();
    let mut out = mapped.replace("..", "-");
    if let Some(stem) = out.strip_suffix(".lock") {
        out = format!("{stem}-lock");
    }
    let trimmed = out.trim_start_matches(['.', '-']).trim_end_matches(['.', '-']);
    if trimmed.is_empty() { "run".to_string() } else { trimmed.to_string() }
}

/// The longest branch and directory name taken from a run's name.
const MAX_NAME: usize = 64;

async fn git_ok(runtime: &dyn Runtime, cwd: &Path, args: &[&str]) -> Result<String, String> {
    git::run_or_error(runtime, cwd, args, WRITE_TIMEOUT, &[0]).await.map(|o| o.stdout.trim().to_string())
}

async fn branch_exists(runtime: &dyn Runtime, top: &Path, branch: &str) -> bool {
    let reference = format!("refs/heads/{branch}");
    git::run(runtime, top, &["rev-parse", "-q", "--verify", &reference], 4096, &[0]).await.is_some()
}

/// `-c user.name=orch` / `-c user.email=orch@localhost` for what the repository does not configure,
/// so commits and merges work in a repository without an identity; and no signing prompts.
async fn identity(runtime: &dyn Runtime, cwd: &Path) -> Vec<String> {
    let mut out = vec!["-c".to_string(), "commit.gpgsign=false".to_string()];
    for (key, fallback) in [("user.name", "orch"), ("user.email", "orch@localhost")] {
        let set = git::run(runtime, cwd, &["config", "--get", key], 4096, &[0])
            .await
            .is_some_and(|o| !o.stdout.trim().is_empty());
        if !set {
            out.push("-c".to_string());
            out.push(format!("{key}={fallback}"));
        }
    }
    out
}

impl Worktree {
    /// The run's worktree: the one `recorded` on the run (a resumed run; re-created on its branch if
    /// its directory is gone), else a new one on a new branch from the main tree's `HEAD`.
    pub(crate) async fn open(
        runtime: &dyn Runtime,
        working_dir: &Path,
        run_name: &str,
        short_id: &str,
        on_success: OnSuccess,
        recorded: Option<&Value>,
    ) -> Result<Worktree, String> {
        let top = check_repository(runtime, working_dir).await?;
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let rel = canonical(working_dir).strip_prefix(canonical(&top)).map(Path::to_path_buf).unwrap_or_default();
        let _guard = GIT_WRITES.lock().await;
        if let Some(rec) = recorded
            && let (Some(path), Some(branch), Some(base)) = (
                rec.get("path").and_then(Value::as_str),
                rec.get("branch").and_then(Value::as_str),
                rec.get("base").and_then(Value::as_str),
            )
        {
            let path = PathBuf::from(path);
            if !path.join(".git").exists() {
                if !branch_exists(runtime, &top, branch).await {
                    return Err(format!("the run's branch {branch} is gone: it cannot be resumed in its worktree"));
                }
                // A directory removed by hand leaves git's record of it; drop that first.
                git_ok(runtime, &top, &["worktree", "prune"]).await?;
                ensure_ignored(&top)?;
                let p = path.display().to_string();
                git_ok(runtime, &top, &["worktree", "add", &p, branch]).await?;
            }
            let workdir = path.join(&rel);
            return Ok(Worktree { top, path, workdir, branch: branch.to_string(), base: base.to_string(), on_success });
        }
        let base = git::head(runtime, &top)
            .await
            .ok_or_else(|| format!("the git repository at {} has no commit yet", top.display()))?;
        let mut name = sanitize(run_name);
        let root = top.join(".orch").join("worktrees");
        if branch_exists(runtime, &top, &format!("orch/{name}")).await || root.join(&name).exists() {
            name = format!("{name}-{short_id}");
        }
        let branch = format!("orch/{name}");
        let path = root.join(&name);
        ensure_ignored(&top)?;
        let p = path.display().to_string();
        git_ok(runtime, &top, &["worktree", "add", "-q", "-b", &branch, &p, &base]).await?;
        let workdir = path.join(&rel);
        if let Err(e) = std::fs::create_dir_all(&workdir) {
            return Err(format!("could not create {} in the worktree: {e}", workdir.display()));
        }
        Ok(Worktree { top, path, workdir, branch, base, on_success })
    }

    /// What the run records about it (before the run ends: `state` is `active`).
    pub(crate) fn record(&self) -> Value {
        json!({
            "path": self.path.display().to_string(),
            "branch": self.branch,
            "base": self.base,
            "on_success": self.on_success.as_str(),
            "state": "active",
        })
    }

    /// Commits everything changed in the worktree with `message`: the new commit, or `None` when
    /// nothing changed.
    pub(crate) async fn commit(&self, runtime: &dyn Runtime, message: &str) -> Result<Option<String>, String> {
        git_ok(runtime, &self.path, &["add", "-A"]).await?;
        let staged =
            git::run_or_error(runtime, &self.path, &["diff", "--cached", "--quiet"], WRITE_TIMEOUT, &[0, 1]).await?;
        if staged.exit_code == Some(0) {
            return Ok(None);
        }
        let mut args = identity(runtime, &self.path).await;
        args.extend(["commit", "-q", "--no-verify", "-m", message].map(str::to_string));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        git_ok(runtime, &self.path, &args).await?;
        Ok(git::head(runtime, &self.path).await)
    }

    /// Ends the worktree when its run ends: on `success`, merges the branch when asked (and the main
    /// tree is clean); unless the run is `resumable`, removes the worktree directory (the branch
    /// stays, with every step's commit, unless it was merged). Returns the run's record of it.
    pub(crate) async fn close(&self, runtime: &dyn Runtime, success: bool, resumable: bool, message: &str) -> Value {
        let mut rec = self.record();
        if resumable {
            return rec;
        }
        let _guard = GIT_WRITES.lock().await;
        let mut merged = false;
        rec["state"] = json!("kept");
        if success && self.on_success == OnSuccess::Merge {
            match self.merge(runtime, message).await {
                Ok(()) => {
                    merged = true;
                    rec["state"] = json!("merged");
                }
                Err(e) => {
                    rec["state"] = json!("merge_skipped");
                    rec["merge_error"] = json!(e);
                }
            }
        }
        let p = self.path.display().to_string();
        match git_ok(runtime, &self.top, &["worktree", "remove", "--force", &p]).await {
            Ok(_) => rec["removed"] = json!(true),
            Err(e) => {
                rec["removed"] = json!(false);
                rec["remove_error"] = json!(e);
            }
        }
        if merged && let Err(e) = git_ok(runtime, &self.top, &["branch", "-q", "-d", &self.branch]).await {
            tracing::debug!(error = %e, "could not delete a merged workflow branch");
        }
        rec
    }

    /// Merges the branch into the main tree's current branch, if that tree has no uncommitted changes
    /// to tracked files; a conflicting merge is aborted.
    async fn merge(&self, runtime: &dyn Runtime, message: &str) -> Result<(), String> {
        let status = git_ok(runtime, &self.top, &["status", "--porcelain", "--untracked-files=no"]).await?;
        if !status.is_empty() {
            return Err(format!(
                "the main tree at {} has uncommitted changes: not merged; the branch {} is kept",
                self.top.display(),
                self.branch
            ));
        }
        if git::run(runtime, &self.top, &["symbolic-ref", "-q", "HEAD"], 4096, &[0]).await.is_none() {
            return Err(format!("the main tree's HEAD is detached: not merged; the branch {} is kept", self.branch));
        }
        let mut args = identity(runtime, &self.top).await;
        args.extend(["merge", "-q", "--no-ff", "--no-edit", "-m", message, &self.branch].map(str::to_string));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Err(e) = git_ok(runtime, &self.top, &args).await {
            // A conflicted merge leaves the tree mid-merge: put it back.
            let _ = git::run(runtime, &self.top, &["merge", "--abort"], 4096, &[0]).await;
            return Err(format!("{e}; the branch {} is kept", self.branch));
        }
        Ok(())
    }
}

/// Makes `<top>/.orch/worktrees` ignored by the main tree (a `.gitignore` of `*` inside it), so the
/// worktrees never show in its status.
fn ensure_ignored(top: &Path) -> Result<(), String> {
    let root = top.join(".orch").join("worktrees");
    std::fs::create_dir_all(&root).map_err(|e| format!("could not create {}: {e}", root.display()))?;
    let ignore = root.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "# orch: workflow worktrees (each on its own branch)\n*\n")
            .map_err(|e| format!("could not write {}: {e}", ignore.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_safe_branch_names() {
        assert_eq!(sanitize("plan_build-1a2b3c4d"), "plan_build-1a2b3c4d");
        assert_eq!(sanitize("fix the bug / now"), "fix-the-bug---now");
        assert_eq!(sanitize("..hidden"), "hidden");
        assert_eq!(sanitize("a..b"), "a-b");
        assert_eq!(sanitize("ünï"), "n");
        assert_eq!(sanitize("///"), "run");
        assert_eq!(sanitize("build.lock"), "build-lock");
        assert_eq!(sanitize("a...b."), "a-.b");
        assert_eq!(sanitize(&"x".repeat(200)).len(), 64);
    }

    #[test]
    fn input_overrides_the_workflow() {
        let base = Isolation::default();
        assert_eq!(base.with_input(&json!({})).unwrap(), base);
        let on = base.with_input(&json!({"worktree": true, "on_success": "merge"})).unwrap();
        assert_eq!(on, Isolation { worktree: true, on_success: OnSuccess::Merge });
        let off = on.with_input(&json!({"worktree": false})).unwrap();
        assert!(!off.worktree);
        assert!(base.with_input(&json!({"worktree": "yes"})).unwrap_err().contains("'worktree' must be true or false"));
        assert!(base.with_input(&json!({"on_success": "push"})).unwrap_err().contains("\"keep\" or \"merge\""));
    }
}
