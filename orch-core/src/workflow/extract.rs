//! Output extraction: turning a finished step's final text and working directory into output values.
//!
//! [`extract_now`] applies one [`Extract`] rule; the runner tries a step output's rules in order and
//! keeps the first value. An `ask` rule needs one more turn of the step's agent, so the runner asks the
//! question itself and passes the answer to [`accept_answer`].
//!
//! A rule *yields* only a non-empty string: an empty regex group or final text counts as no value, so
//! the next rule is tried.
//!
//! The seed's rules, as the built-in workflows spell them:
//! - **plan path**: ask the agent for the path, accept the answer with [`PLAN_PATH_ACCEPT`] (the first
//!   line when it starts with `/` or `./`, else the first `/….md` anywhere in the answer), else the
//!   newest `specs/*.md`;
//! - **review verdict**: `keyword = ["FAIL", "PASS"]` — FAIL if the text contains "FAIL" in any case,
//!   else PASS if it contains "PASS", else no verdict ([`keyword`]);
//! - **review file**: the newest `app_review/review_*.md`.

use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use regex::Regex;
use serde_json::Value;

use super::spec::Extract;

/// The `accept` pattern of the built-in plan step's `ask` rule: with [`accept_answer`] it gives the
/// seed's plan-path rule (a first line starting with `/` or `./` is taken whole; otherwise the first
/// `/….md` anywhere in the answer).
pub const PLAN_PATH_ACCEPT: &str = r"^(?:/|\./)|/[^\s]+\.md";

/// The value `extract` yields now, or `None`:
/// - `regex`: the group (`group`) of the first match in `final_text`;
/// - `newest_file`: the newest file (by modification time; ties go to the greater path) under
///   `working_dir` whose path relative to it matches the glob (`*` stays within one directory, `**`
///   crosses them), as an absolute path string. With `since`, only files modified at or after it count.
///   `.git` and `.orch` directories are not searched, and symbolic links are not followed;
/// - `keyword`: see [`keyword`];
/// - `result`: the whole final text;
/// - `ask`: always `None` (the runner asks and uses [`accept_answer`]).
pub fn extract_now(
    extract: &Extract,
    final_text: &str,
    working_dir: &Path,
    since: Option<SystemTime>,
) -> Option<Value> {
    let text = match extract {
        Extract::Regex { pattern, group } => pattern.captures(final_text)?.get(*group).map(|m| m.as_str().to_string()),
        Extract::NewestFile { glob } => newest_file(glob, working_dir, since)?.to_str().map(str::to_string),
        Extract::Keyword { keywords } => keyword(final_text, keywords),
        Extract::Ask { .. } => None,
        Extract::Result => Some(final_text.to_string()),
    }?;
    (!text.is_empty()).then_some(Value::String(text))
}

/// The value an `ask` rule takes from the agent's `answer`.
///
/// The answer is cleaned: backticks are removed, surrounding whitespace and quotes (`"`, `'`) are
/// trimmed, and its first non-empty line is taken. Then:
/// - without `accept`, that line (if not empty);
/// - with `accept`, that line when the pattern matches it **at its first character** (for a pattern
///   starting with `^`, simply when it matches); otherwise the pattern's first match anywhere in the
///   answer (the whole match); otherwise nothing.
///
/// With [`PLAN_PATH_ACCEPT`] this is the seed's plan-path rule.
pub fn accept_answer(answer: &str, accept: Option<&Regex>) -> Option<String> {
    let no_ticks = answer.replace('`', "");
    let line = no_ticks
        .lines()
        .map(|l| l.trim().trim_matches(|c| c == '"' || c == '\'').trim())
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let Some(accept) = accept else {
        return (!line.is_empty()).then(|| line.to_string());
    };
    if !line.is_empty() && accept.find(line).is_some_and(|m| m.start() == 0) {
        return Some(line.to_string());
    }
    accept.find(answer).map(|m| m.as_str().to_string()).filter(|s| !s.is_empty())
}

/// The first of `keywords` (in list order, not text order) that occurs anywhere in `text`, ignoring
/// case, returned as written in the list. `["FAIL", "PASS"]` is the seed's verdict rule: FAIL wins over
/// PASS.
pub fn keyword(text: &str, keywords: &[String]) -> Option<String> {
    let lower = text.to_lowercase();
    keywords.iter().find(|k| !k.is_empty() && lower.contains(&k.to_lowercase())).cloned()
}

/// The newest file under `working_dir` matching `glob` (relative), as an absolute path.
fn newest_file(glob: &str, working_dir: &Path, since: Option<SystemTime>) -> Option<PathBuf> {
    let glob = glob.trim_start_matches("./");
    let matcher = match globset::GlobBuilder::new(glob).literal_separator(true).build() {
        Ok(g) => g.compile_matcher(),
        Err(e) => {
            tracing::warn!(glob, error = %e, "newest_file: bad glob");
            return None;
        }
    };
    let root = std::path::absolute(working_dir).ok()?;
    // Walk only below the glob's literal leading directories, and no deeper than it can match.
    let parts: Vec<&str> = glob.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let literal = parts.iter().take_while(|p| !p.contains(['*', '?', '[', '{', '\\'])).count();
    let literal = literal.min(parts.len().saturating_sub(1));
    let base = parts.iter().take(literal).fold(root.clone(), |acc, p| acc.join(p));
    let max_depth = if glob.contains("**") { usize::MAX } else { parts.len() - literal };
    let walker = walkdir::WalkDir::new(&base).follow_links(false).max_depth(max_depth).into_iter().filter_entry(|e| {
        !(e.depth() > 0 && e.file_type().is_dir() && (e.file_name() == ".git" || e.file_name() == ".orch"))
    });
    let mut best: Option<(SystemTime, PathBuf)> = None;
    for entry in walker.flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(&root) else { continue };
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) || !matcher.is_match(rel) {
            continue;
        }
        let Some(mtime) = entry.metadata().ok().and_then(|m| m.modified().ok()) else { continue };
        if since.is_some_and(|s| mtime < s) {
            continue;
        }
        let newer = match &best {
            None => true,
            Some((t, p)) => mtime > *t || (mtime == *t && entry.path() > p.as_path()),
        };
        if newer {
            best = Some((mtime, entry.path().to_path_buf()));
        }
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::time::Duration;

    fn touch(dir: &Path, rel: &str, age_secs: u64) -> PathBuf {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rel).unwrap();
        let when = SystemTime::now() - Duration::from_secs(age_secs);
        File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
        path
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn regex_takes_the_group_of_the_first_match() {
        let e = Extract::Regex { pattern: Regex::new(r"tests: (\d+)").unwrap(), group: 1 };
        let dir = Path::new(".");
        assert_eq!(extract_now(&e, "ran. tests: 12, then tests: 3", dir, None), Some(Value::from("12")));
        assert_eq!(extract_now(&e, "nothing here", dir, None), None);
        let whole = Extract::Regex { pattern: Regex::new(r"v\d+").unwrap(), group: 0 };
        assert_eq!(extract_now(&whole, "release v42 done", dir, None), Some(Value::from("v42")));
        let optional = Extract::Regex { pattern: Regex::new(r"x(y?)").unwrap(), group: 1 };
        assert_eq!(extract_now(&optional, "x", dir, None), None, "an empty group yields nothing");
    }

    #[test]
    fn newest_file_picks_the_latest_match_as_an_absolute_path() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        touch(dir, "specs/old.md", 300);
        let newest = touch(dir, "specs/new.md", 100);
        touch(dir, "specs/newer.txt", 10);
        touch(dir, "specs/sub/deeper.md", 5);
        touch(dir, "other/newest.md", 1);
        let e = Extract::NewestFile { glob: "specs/*.md".into() };
        let got = extract_now(&e, "", dir, None).unwrap();
        assert_eq!(got, Value::from(newest.to_str().unwrap()));
        assert!(Path::new(got.as_str().unwrap()).is_absolute());

        let deep = Extract::NewestFile { glob: "**/*.md".into() };
        assert!(extract_now(&deep, "", dir, None).unwrap().as_str().unwrap().ends_with("other/newest.md"));
        let review = Extract::NewestFile { glob: "app_review/review_*.md".into() };
        assert_eq!(extract_now(&review, "", dir, None), None, "no such directory");
    }

    #[test]
    fn newest_file_since_ignores_files_older_than_the_step() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        touch(dir, "app_review/review_1.md", 600);
        let e = Extract::NewestFile { glob: "app_review/review_*.md".into() };
        let step_start = SystemTime::now() - Duration::from_secs(60);
        assert_eq!(extract_now(&e, "", dir, Some(step_start)), None);
        let fresh = touch(dir, "app_review/review_2.md", 30);
        assert_eq!(extract_now(&e, "", dir, Some(step_start)), Some(Value::from(fresh.to_str().unwrap())));
    }

    #[test]
    fn keyword_is_the_seed_verdict_rule() {
        let verdict = s(&["FAIL", "PASS"]);
        assert_eq!(keyword("VERDICT: PASS", &verdict).as_deref(), Some("PASS"));
        assert_eq!(keyword("all checks pass, none fail", &verdict).as_deref(), Some("FAIL"));
        assert_eq!(keyword("Verdict: Fail", &verdict).as_deref(), Some("FAIL"));
        assert_eq!(keyword("PASS … later FAIL", &verdict).as_deref(), Some("FAIL"));
        assert_eq!(keyword("looks good", &verdict), None);
        let e = Extract::Keyword { keywords: verdict };
        assert_eq!(extract_now(&e, "VERDICT: PASS", Path::new("."), None), Some(Value::from("PASS")));
    }

    #[test]
    fn result_is_the_whole_final_text_and_ask_is_left_to_the_runner() {
        let dir = Path::new(".");
        assert_eq!(extract_now(&Extract::Result, "line 1\nline 2", dir, None), Some(Value::from("line 1\nline 2")));
        assert_eq!(extract_now(&Extract::Result, "", dir, None), None);
        let ask = Extract::Ask { question: "Path?".into(), accept: None };
        assert_eq!(extract_now(&ask, "/a.md", dir, None), None);
    }

    #[test]
    fn accept_answer_follows_the_seed_plan_path_rule() {
        let re = Regex::new(PLAN_PATH_ACCEPT).unwrap();
        let acc = |a: &str| accept_answer(a, Some(&re));
        assert_eq!(acc("/repo/specs/login.md").as_deref(), Some("/repo/specs/login.md"));
        assert_eq!(acc("  `/repo/specs/login.md`\n").as_deref(), Some("/repo/specs/login.md"));
        assert_eq!(acc("\"./specs/login.md\"").as_deref(), Some("./specs/login.md"));
        assert_eq!(acc("```\n/repo/specs/login.md\n```").as_deref(), Some("/repo/specs/login.md"));
        // A first line starting with `/` is taken whole, as the seed does.
        assert_eq!(acc("/repo/specs/my plan").as_deref(), Some("/repo/specs/my plan"));
        // Otherwise the first `/….md` anywhere in the answer.
        assert_eq!(
            acc("The plan is at /repo/specs/login.md, enjoy.\nAlso /x/y.md").as_deref(),
            Some("/repo/specs/login.md")
        );
        assert_eq!(acc("I wrote it.\nPath: /repo/specs/a.md").as_deref(), Some("/repo/specs/a.md"));
        assert_eq!(acc("I could not write a plan."), None);
        assert_eq!(acc(""), None);
    }

    #[test]
    fn accept_answer_with_a_user_pattern_or_none() {
        let re = Regex::new(r"^(/|\./)\S+\.md$").unwrap();
        assert_eq!(accept_answer("'/a/b.md'", Some(&re)).as_deref(), Some("/a/b.md"));
        assert_eq!(accept_answer("b.md", Some(&re)), None);
        let count = Regex::new(r"\d+").unwrap();
        assert_eq!(accept_answer("There are 42 tests", Some(&count)).as_deref(), Some("42"));
        assert_eq!(accept_answer("17", Some(&count)).as_deref(), Some("17"));
        assert_eq!(accept_answer("\n\n  \"hello\"  \nworld", None).as_deref(), Some("hello"));
        assert_eq!(accept_answer("   ", None), None);
    }
}
