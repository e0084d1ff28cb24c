//! A small git client over [`Runtime::run_process`]: the work tree's top, `HEAD`, status, diffs and the
//! files commits changed. File tracking uses it today; ADW build and review steps and worktrees will.
//!
//! Every call runs `git --literal-pathspecs -c core.quotepath=off …` with optional locks off (so a read
//! never blocks a concurrent writer), no terminal prompt and a [`GIT_TIMEOUT`]. Calls return `None` when
//! git is missing, fails or times out; the failure is logged at `debug`. Nothing here panics.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Interrupt;
use crate::runtime::{ProcessOutput, ProcessSpec, Runtime};

/// Time allowed to each `git` call.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Output kept from one `git diff` (longer diffs are cut, with a note).
pub const DIFF_OUTPUT_LIMIT: usize = 1024 * 1024;

/// Output allowed to a listing (`status`, `diff --name-only`); a longer one is not used.
pub const LIST_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

fn spec(cwd: &Path, args: &[&str], output_limit: usize) -> ProcessSpec {
    spec_with(cwd, args, output_limit, GIT_TIMEOUT)
}

fn spec_with(cwd: &Path, args: &[&str], output_limit: usize, timeout: Duration) -> ProcessSpec {
    let mut all = vec!["--literal-pathspecs".to_string(), "-c".to_string(), "core.quotepath=off".to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    ProcessSpec {
        program: "git".to_string(),
        args: all,
        cwd: cwd.to_path_buf(),
        env: vec![
            ("GIT_OPTIONAL_LOCKS".to_string(), "0".to_string()),
            ("GIT_TERMINAL_PROMPT".to_string(), "0".to_string()),
        ],
        timeout: Some(timeout),
        output_limit,
        confine: None,
    }
}

/// Runs git in `cwd` with `timeout` (for commands that write: worktrees, commits, merges) and says
/// why it failed: `Ok` when it ran to completion with one of `ok_codes`, else the command and git's
/// own message.
pub async fn run_or_error(
    runtime: &dyn Runtime,
    cwd: &Path,
    args: &[&str],
    timeout: Duration,
    ok_codes: &[i32],
) -> Result<ProcessOutput, String> {
    let command = format!("git {}", args.join(" "));
    match runtime.run_process(spec_with(cwd, args, LIST_OUTPUT_LIMIT, timeout), Interrupt::new()).await {
        Ok(out) if out.exit_code.is_some_and(|c| ok_codes.contains(&c)) => Ok(out),
        Ok(out) if out.timed_out => Err(format!("`{command}` in {} timed out", cwd.display())),
        Ok(out) => {
            let said = if out.stderr.trim().is_empty() { out.stdout.trim() } else { out.stderr.trim() };
            let code = out.exit_code.map_or_else(|| "a signal".to_string(), |c| format!("exit code {c}"));
            Err(format!("`{command}` in {} failed ({code}): {said}", cwd.display()))
        }
        Err(e) => Err(format!("could not run `{command}` in {}: {e}", cwd.display())),
    }
}

/// Runs git in `cwd`; `Some` when it ran to completion with one of `ok_codes`.
pub async fn run(
    runtime: &dyn Runtime,
    cwd: &Path,
    args: &[&str],
    output_limit: usize,
    ok_codes: &[i32],
) -> Option<ProcessOutput> {
    match runtime.run_process(spec(cwd, args, output_limit), Interrupt::new()).await {
        Ok(out) => match out.exit_code {
            Some(code) if ok_codes.contains(&code) => Some(out),
            _ => {
                tracing::debug!(
                    ?args,
                    cwd = %cwd.display(),
                    exit_code = ?out.exit_code,
                    timed_out = out.timed_out,
                    stderr = %out.stderr.trim(),
                    "git failed"
                );
                None
            }
        },
        Err(error) => {
            tracing::debug!(?args, cwd = %cwd.display(), %error, "could not run git");
            None
        }
    }
}

/// The top of the work tree `wd` is in, as git prints it.
pub async fn toplevel(runtime: &dyn Runtime, wd: &Path) -> Option<PathBuf> {
    if !wd.is_dir() {
        return None;
    }
    let out = run(runtime, wd, &["rev-parse", "--show-toplevel"], 64 * 1024, &[0]).await?;
    let top = out.stdout.trim_end_matches(['\n', '\r']);
    (!top.is_empty()).then(|| PathBuf::from(top))
}

/// The commit `HEAD` points at, if there is one.
pub async fn head(runtime: &dyn Runtime, top: &Path) -> Option<String> {
    let out = run(runtime, top, &["rev-parse", "-q", "--verify", "HEAD^{commit}"], 4096, &[0]).await?;
    let head = out.stdout.trim();
    (!head.is_empty()).then(|| head.to_string())
}

/// The empty tree's id (SHA-1 or SHA-256 as the repository uses), the base of a repository without commits.
pub async fn empty_tree(runtime: &dyn Runtime, top: &Path) -> Option<String> {
    let out = run(runtime, top, &["hash-object", "-t", "tree", "/dev/null"], 4096, &[0]).await?;
    let id = out.stdout.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// `git status --porcelain=v1 -z --untracked-files=all`: (path relative to the top, status letters).
/// `None` also when the listing is too long to use.
pub async fn status(runtime: &dyn Runtime, top: &Path) -> Option<Vec<(String, String)>> {
    let args = ["status", "--porcelain=v1", "-z", "--untracked-files=all"];
    let out = run(runtime, top, &args, LIST_OUTPUT_LIMIT, &[0]).await?;
    if out.truncated {
        tracing::debug!(top = %top.display(), "git status output too long; not using it");
        return None;
    }
    Some(parse_porcelain_z(&out.stdout))
}

/// Parses `git status --porcelain=v1 -z`. A rename or copy (`R`/`C`) is followed by its source path; the
/// source of a rename is listed as deleted.
pub fn parse_porcelain_z(stdout: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut fields = stdout.split('\0');
    while let Some(field) = fields.next() {
        if field.len() < 4 || !field.is_char_boundary(2) || !field.is_char_boundary(3) {
            continue;
        }
        let (status, path) = (&field[..2], &field[3..]);
        let path = path.trim_end_matches('/').to_string();
        if status.contains('R') || status.contains('C') {
            let source = fields.next().unwrap_or_default();
            if status.contains('R') && !source.is_empty() {
                out.push((source.trim_end_matches('/').to_string(), "D ".to_string()));
            }
        }
        out.push((path, status.to_string()));
    }
    out
}

/// The paths that differ between two commits (`git diff --name-only`, renames as delete + add).
pub async fn changed_between(runtime: &dyn Runtime, top: &Path, from: &str, to: &str) -> Option<Vec<String>> {
    let args = ["diff", "--name-only", "-z", "--no-renames", from, to];
    match run(runtime, top, &args, LIST_OUTPUT_LIMIT, &[0]).await {
        Some(out) if !out.truncated => {
            Some(out.stdout.split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect())
        }
        _ => None,
    }
}

/// `git diff <base> -- <path>`; `None` when empty or failed.
pub async fn diff(runtime: &dyn Runtime, top: &Path, base: &str, repo_rel: &str) -> Option<String> {
    let args = ["diff", "--no-color", "--no-ext-diff", base, "--", repo_rel];
    let out = run(runtime, top, &args, DIFF_OUTPUT_LIMIT, &[0]).await?;
    diff_text(out)
}

/// `git diff --no-index -- /dev/null <path>` for an untracked file (exit code 1 means "differences").
pub async fn diff_new_file(runtime: &dyn Runtime, top: &Path, repo_rel: &str) -> Option<String> {
    let args = ["diff", "--no-index", "--no-color", "--no-ext-diff", "--", "/dev/null", repo_rel];
    let out = run(runtime, top, &args, DIFF_OUTPUT_LIMIT, &[0, 1]).await?;
    diff_text(out)
}

fn diff_text(out: ProcessOutput) -> Option<String> {
    if out.stdout.is_empty() {
        return None;
    }
    let mut text = out.stdout;
    if out.truncated {
        text.push_str(&format!("\n[diff output truncated at {DIFF_OUTPUT_LIMIT} bytes]\n"));
    }
    Some(text)
}

/// Whether git's index knows the path (`true` when git cannot tell, the safe answer for diffs).
pub async fn is_tracked(runtime: &dyn Runtime, top: &Path, repo_rel: &str) -> bool {
    let args = ["ls-files", "-z", "--", repo_rel];
    match run(runtime, top, &args, 64 * 1024, &[0]).await {
        Some(out) => !out.stdout.is_empty(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_porcelain_z;

    #[test]
    fn porcelain_lists_renames_as_a_deleted_source_and_the_new_path() {
        let out = parse_porcelain_z("R  new.rs\0old.rs\0?? dir/\0 M a b.txt\0");
        assert_eq!(
            out,
            vec![
                ("old.rs".to_string(), "D ".to_string()),
                ("new.rs".to_string(), "R ".to_string()),
                ("dir".to_string(), "??".to_string()),
                ("a b.txt".to_string(), " M".to_string()),
            ]
        );
    }
}
