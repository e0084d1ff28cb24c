//! The built-in tools and the sandbox that confines the file tools.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use orch_core::tool::sandbox::{self, SandboxError};
use orch_core::tool::{ToolContext, ToolError, ToolOutput, ToolRegistry};
use serde_json::{Value, json};

/// A temporary tree: `outer/` holds the working dir `outer/wd/` and things outside it
/// (`outer/secret.txt`, `outer/secretdir/s.txt`).
struct Env {
    _tmp: tempfile::TempDir,
    outer: PathBuf,
    wd: PathBuf,
    ctx: ToolContext,
}

impl Env {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let outer = tmp.path().canonicalize().unwrap();
        let wd = outer.join("wd");
        std::fs::create_dir(&wd).unwrap();
        std::fs::write(outer.join("secret.txt"), "TOP SECRET\n").unwrap();
        std::fs::create_dir(outer.join("secretdir")).unwrap();
        std::fs::write(outer.join("secretdir/s.txt"), "TOP SECRET\n").unwrap();
        let ctx = support::tool_context(wd.clone());
        Self { _tmp: tmp, outer, wd, ctx }
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.wd.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.wd.join(rel)).unwrap()
    }

    /// `wd/<link>` → `target`.
    fn symlink(&self, target: &Path, link: &str) {
        std::os::unix::fs::symlink(target, self.wd.join(link)).unwrap();
    }

    async fn call(&self, tool: &str, input: Value) -> Result<ToolOutput, ToolError> {
        let registry = ToolRegistry::with_builtins();
        let tool = registry.get(tool).unwrap_or_else(|| panic!("no tool {tool}"));
        tool.call(&self.ctx, input).await
    }

    async fn ok(&self, tool: &str, input: Value) -> String {
        let out = self.call(tool, input.clone()).await.unwrap_or_else(|e| panic!("{tool} {input}: {e:?}"));
        assert!(!out.is_error, "{tool} {input}: {}", out.content);
        out.content
    }
}

fn assert_refused(r: Result<ToolOutput, ToolError>, what: &str) {
    match r {
        Err(ToolError::Refused(msg)) => {
            assert!(msg.contains("outside the agent's working directory"), "{what}: {msg}");
        }
        other => panic!("{what}: expected Refused, got {other:?}"),
    }
}

fn assert_invalid(r: Result<ToolOutput, ToolError>, needle: &str) {
    match r {
        Err(ToolError::InvalidInput(msg)) => assert!(msg.contains(needle), "expected {needle:?} in {msg:?}"),
        other => panic!("expected InvalidInput({needle}), got {other:?}"),
    }
}

fn assert_failed(r: Result<ToolOutput, ToolError>, needle: &str) {
    match r {
        Err(ToolError::Failed(msg)) => assert!(msg.contains(needle), "expected {needle:?} in {msg:?}"),
        other => panic!("expected Failed({needle}), got {other:?}"),
    }
}

// ---------------------------------------------------------------- registry and input validation

#[test]
fn registry_has_the_six_builtins_with_schemas() {
    let r = ToolRegistry::with_builtins();
    assert_eq!(r.names(), vec!["Bash", "Edit", "Glob", "Grep", "Read", "Write"]);
    for spec in r.specs() {
        assert!(!spec.description.is_empty());
        assert_eq!(spec.input_schema["type"], "object", "{}", spec.name);
        assert_eq!(spec.input_schema["additionalProperties"], false);
    }
    let read = r.get("Read").unwrap().input_schema();
    assert_eq!(read["required"], json!(["file_path"]));
    assert_eq!(read["properties"]["offset"]["type"], "integer");
    let edit = r.get("Edit").unwrap().input_schema();
    assert_eq!(edit["required"], json!(["file_path", "old_string", "new_string"]));
    assert_eq!(edit["properties"]["replace_all"]["type"], "boolean");
    let bash = r.get("Bash").unwrap().input_schema();
    assert_eq!(bash["required"], json!(["command"]));
    assert_eq!(bash["properties"]["timeout"]["maximum"], 600_000);
}

#[tokio::test]
async fn invalid_input_names_the_field() {
    let env = Env::new();
    env.write("a.txt", "a\n");
    assert_invalid(env.call("Read", json!({"file_path": "a.txt", "bogus": 1})).await, "unknown field `bogus`");
    assert_invalid(env.call("Read", json!({})).await, "missing required field `file_path`");
    assert_invalid(env.call("Read", json!({"file_path": 7})).await, "field `file_path` must be a string");
    assert_invalid(env.call("Read", json!({"file_path": "a.txt", "offset": "2"})).await, "field `offset`");
    assert_invalid(env.call("Read", json!({"file_path": "a.txt", "limit": -1})).await, "field `limit`");
    assert_invalid(
        env.call("Edit", json!({"file_path": "a.txt", "old_string": "a", "new_string": "b", "replace_all": "yes"}))
            .await,
        "field `replace_all` must be a boolean",
    );
    assert_invalid(env.call("Bash", json!({"command": ["ls"]})).await, "field `command`");
    assert_invalid(env.call("Write", json!("a.txt")).await, "JSON object");
    assert_invalid(env.call("Read", json!({"file_path": ""})).await, "empty path");
    // Integral floats and null optionals are accepted.
    let out = env.ok("Read", json!({"file_path": "a.txt", "offset": 1.0, "limit": null})).await;
    assert!(out.contains("\ta"));
}

// ---------------------------------------------------------------- Read

#[tokio::test]
async fn read_numbers_lines_like_cat_n() {
    let env = Env::new();
    env.write("f.txt", "alpha\nbeta\ngamma\n");
    let out = env.ok("Read", json!({"file_path": "f.txt"})).await;
    assert_eq!(out, "     1\talpha\n     2\tbeta\n     3\tgamma\n");
    // Absolute paths inside the working dir work too.
    let abs = env.wd.join("f.txt");
    let out = env.ok("Read", json!({"file_path": abs.to_str().unwrap()})).await;
    assert!(out.starts_with("     1\talpha\n"));
}

#[tokio::test]
async fn read_offset_and_limit() {
    let env = Env::new();
    let content: String = (1..=10).map(|i| format!("line {i}\n")).collect();
    env.write("f.txt", &content);
    let out = env.ok("Read", json!({"file_path": "f.txt", "offset": 3, "limit": 2})).await;
    assert!(out.starts_with("     3\tline 3\n     4\tline 4\n"), "{out}");
    assert!(!out.contains("line 5"));
    assert!(out.contains("Showing lines 3-4 of 10"), "{out}");
    assert_failed(env.call("Read", json!({"file_path": "f.txt", "offset": 11})).await, "past the end");
}

#[tokio::test]
async fn read_default_limit_is_2000_lines() {
    let env = Env::new();
    let content: String = (1..=2100).map(|i| format!("{i}\n")).collect();
    env.write("big.txt", &content);
    let out = env.ok("Read", json!({"file_path": "big.txt"})).await;
    assert!(out.contains("  2000\t2000\n"));
    assert!(!out.contains("\t2001\n"));
    assert!(out.contains("Showing lines 1-2000 of 2100"));
}

#[tokio::test]
async fn read_truncates_long_lines() {
    let env = Env::new();
    env.write("long.txt", &format!("{}\nshort\n", "x".repeat(5000)));
    let out = env.ok("Read", json!({"file_path": "long.txt"})).await;
    let first = out.lines().next().unwrap();
    assert_eq!(first, format!("     1\t{}", "x".repeat(2000)));
    assert!(out.contains("     2\tshort"));
    assert!(out.contains("truncated"));
}

#[tokio::test]
async fn read_errors_and_empty_file() {
    let env = Env::new();
    assert_failed(env.call("Read", json!({"file_path": "nope.txt"})).await, "does not exist");
    std::fs::create_dir(env.wd.join("d")).unwrap();
    assert_failed(env.call("Read", json!({"file_path": "d"})).await, "is a directory");
    std::fs::write(env.wd.join("bin"), b"abc\0def").unwrap();
    assert_failed(env.call("Read", json!({"file_path": "bin"})).await, "binary");
    env.write("empty.txt", "");
    let out = env.ok("Read", json!({"file_path": "empty.txt"})).await;
    assert!(out.contains("empty"), "{out}");
}

// ---------------------------------------------------------------- Write

#[tokio::test]
async fn write_creates_parents_and_overwrites() {
    let env = Env::new();
    let out = env.ok("Write", json!({"file_path": "a/b/c.txt", "content": "hello"})).await;
    assert_eq!(out, "Wrote 5 bytes to a/b/c.txt");
    assert_eq!(env.read("a/b/c.txt"), "hello");
    let out = env.ok("Write", json!({"file_path": "a/b/c.txt", "content": "bye\n"})).await;
    assert_eq!(out, "Wrote 4 bytes to a/b/c.txt");
    assert_eq!(env.read("a/b/c.txt"), "bye\n");
    assert_failed(env.call("Write", json!({"file_path": "a", "content": "x"})).await, "is a directory");
    assert_invalid(env.call("Write", json!({"file_path": "x.txt"})).await, "missing required field `content`");
}

// ---------------------------------------------------------------- Edit

#[tokio::test]
async fn edit_replaces_once() {
    let env = Env::new();
    env.write("f.rs", "fn main() {\n    println!(\"hi\");\n}\n");
    let out = env.ok("Edit", json!({"file_path": "f.rs", "old_string": "\"hi\"", "new_string": "\"hello\""})).await;
    assert!(out.contains("Replaced 1 occurrence"), "{out}");
    assert_eq!(env.read("f.rs"), "fn main() {\n    println!(\"hello\");\n}\n");
}

#[tokio::test]
async fn edit_multiple_occurrences_needs_replace_all() {
    let env = Env::new();
    env.write("f.txt", "foo bar foo baz foo\n");
    let r = env.call("Edit", json!({"file_path": "f.txt", "old_string": "foo", "new_string": "qux"})).await;
    assert_failed(r, "occurs 3 times");
    let r = env.call("Edit", json!({"file_path": "f.txt", "old_string": "foo", "new_string": "qux"})).await;
    let Err(ToolError::Failed(msg)) = r else { panic!() };
    assert!(msg.contains("replace_all") && msg.contains("context"), "{msg}");
    assert_eq!(env.read("f.txt"), "foo bar foo baz foo\n", "unchanged after the failure");
    let out = env
        .ok("Edit", json!({"file_path": "f.txt", "old_string": "foo", "new_string": "qux", "replace_all": true}))
        .await;
    assert!(out.contains("Replaced 3 occurrences"), "{out}");
    assert_eq!(env.read("f.txt"), "qux bar qux baz qux\n");
}

#[tokio::test]
async fn edit_errors() {
    let env = Env::new();
    env.write("f.txt", "abc\n");
    assert_failed(
        env.call("Edit", json!({"file_path": "f.txt", "old_string": "zzz", "new_string": "y"})).await,
        "not found",
    );
    assert_invalid(
        env.call("Edit", json!({"file_path": "f.txt", "old_string": "abc", "new_string": "abc"})).await,
        "exactly the same",
    );
    assert_failed(
        env.call("Edit", json!({"file_path": "missing.txt", "old_string": "a", "new_string": "b"})).await,
        "does not exist",
    );
    assert_invalid(
        env.call("Edit", json!({"file_path": "f.txt", "old_string": "", "new_string": "b"})).await,
        "old_string",
    );
    assert_eq!(env.read("f.txt"), "abc\n");
}

// ---------------------------------------------------------------- Glob

#[tokio::test]
async fn glob_matches_recursively_and_skips_git() {
    let env = Env::new();
    env.write("top.rs", "");
    env.write("src/a.rs", "");
    env.write("src/deep/b.rs", "");
    env.write("src/c.txt", "");
    env.write(".git/objects/x.rs", "");
    let out = env.ok("Glob", json!({"pattern": "**/*.rs"})).await;
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    assert_eq!(got, vec!["src/a.rs", "src/deep/b.rs", "top.rs"]);
    // `*` does not cross directories.
    assert_eq!(env.ok("Glob", json!({"pattern": "*.rs"})).await, "top.rs");
    // Relative to `path`, shown relative to the working dir.
    let out = env.ok("Glob", json!({"pattern": "*.rs", "path": "src"})).await;
    assert_eq!(out, "src/a.rs");
    let out = env.ok("Glob", json!({"pattern": "*.{rs,txt}", "path": "src"})).await;
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    assert_eq!(got, vec!["src/a.rs", "src/c.txt"]);
    let out = env.ok("Glob", json!({"pattern": "**/*.py"})).await;
    assert!(out.starts_with("No files found"), "{out}");
    assert_failed(env.call("Glob", json!({"pattern": "*", "path": "nowhere"})).await, "does not exist");
    assert_invalid(env.call("Glob", json!({"pattern": "a[", "path": "src"})).await, "invalid glob");
}

#[tokio::test]
async fn glob_sorts_newest_first() {
    let env = Env::new();
    let now = SystemTime::now();
    for (name, age) in [("old.txt", 300), ("new.txt", 10), ("mid.txt", 100)] {
        env.write(name, name);
        let f = std::fs::File::options().write(true).open(env.wd.join(name)).unwrap();
        f.set_modified(now - Duration::from_secs(age)).unwrap();
    }
    assert_eq!(env.ok("Glob", json!({"pattern": "*.txt"})).await, "new.txt\nmid.txt\nold.txt");
}

#[tokio::test]
async fn glob_caps_results() {
    let env = Env::new();
    for i in 0..1005 {
        env.write(&format!("many/f{i:04}.txt"), "");
    }
    let out = env.ok("Glob", json!({"pattern": "many/*.txt"})).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1001);
    assert!(lines[1000].contains("truncated") && lines[1000].contains("1005"), "{}", lines[1000]);
}

// ---------------------------------------------------------------- Grep

#[tokio::test]
async fn grep_finds_lines() {
    let env = Env::new();
    env.write("a.rs", "fn main() {}\nlet x = 1;\nfn helper() {}\n");
    env.write("sub/b.txt", "nothing\nfn in text\n");
    env.write(".git/config", "fn hidden\n");
    // orch's own directory (its database) is never read by a search of the working directory.
    env.write(".orch/orch.db-wal", "fn orch\n");
    std::fs::write(env.wd.join("bin.dat"), b"fn \0 binary").unwrap();
    let out = env.ok("Grep", json!({"pattern": r"^fn \w+"})).await;
    assert_eq!(out, "a.rs:1:fn main() {}\na.rs:3:fn helper() {}\nsub/b.txt:2:fn in text");
    // glob filter on file names.
    let out = env.ok("Grep", json!({"pattern": "fn", "glob": "*.txt"})).await;
    assert_eq!(out, "sub/b.txt:2:fn in text");
    // glob with a `/` is matched against the path.
    let out = env.ok("Grep", json!({"pattern": "fn", "glob": "sub/*"})).await;
    assert_eq!(out, "sub/b.txt:2:fn in text");
    // path may be a directory or a single file.
    assert_eq!(env.ok("Grep", json!({"pattern": "fn", "path": "sub"})).await, "sub/b.txt:2:fn in text");
    assert_eq!(env.ok("Grep", json!({"pattern": "let", "path": "a.rs"})).await, "a.rs:2:let x = 1;");
    // No matches is a plain answer.
    let out = env.ok("Grep", json!({"pattern": "zzz"})).await;
    assert!(out.starts_with("No matches"), "{out}");
    assert_failed(env.call("Grep", json!({"pattern": "x", "path": "nowhere"})).await, "does not exist");
}

#[tokio::test]
async fn grep_invalid_regex_is_invalid_input() {
    let env = Env::new();
    let r = env.call("Grep", json!({"pattern": "fn ("})).await;
    assert_invalid(r, "regex parse error");
}

#[tokio::test]
async fn grep_caps_matches() {
    let env = Env::new();
    let content: String = (0..600).map(|i| format!("hit {i}\n")).collect();
    env.write("many.txt", &content);
    let out = env.ok("Grep", json!({"pattern": "hit"})).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 501);
    assert_eq!(lines[499], "many.txt:500:hit 499");
    assert!(lines[500].contains("truncated at 500"), "{}", lines[500]);
}

// ---------------------------------------------------------------- sandbox

#[test]
fn sandbox_resolve_rules() {
    let env = Env::new();
    env.write("sub/a.txt", "a");
    let wd = &env.wd;
    assert_eq!(sandbox::resolve(wd, "sub/a.txt").unwrap(), wd.join("sub/a.txt"));
    assert_eq!(sandbox::resolve(wd, "./sub/../sub/a.txt").unwrap(), wd.join("sub/a.txt"));
    assert_eq!(sandbox::resolve(wd, ".").unwrap(), *wd);
    assert_eq!(sandbox::resolve(wd, "new/dir/file.txt").unwrap(), wd.join("new/dir/file.txt"));
    assert_eq!(sandbox::resolve(wd, wd.join("sub").to_str().unwrap()).unwrap(), wd.join("sub"));
    assert!(matches!(sandbox::resolve(wd, ""), Err(SandboxError::EmptyPath { .. })));
    for bad in ["..", "../secret.txt", "sub/../../secret.txt", "/etc/passwd", "/"] {
        match sandbox::resolve(wd, bad) {
            Err(e @ SandboxError::OutsideWorkingDir { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(bad) && msg.contains(wd.to_str().unwrap()), "{msg}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // A working dir reached through a symlink is canonicalized.
    std::os::unix::fs::symlink(wd, env.outer.join("wd-link")).unwrap();
    assert_eq!(sandbox::resolve(&env.outer.join("wd-link"), "sub/a.txt").unwrap(), wd.join("sub/a.txt"));
    // A sibling directory whose name starts like the working dir is still outside.
    std::fs::create_dir(env.outer.join("wd2")).unwrap();
    assert!(sandbox::resolve(wd, "../wd2/x").is_err());
    // Symlink loops are an error, not a hang.
    env.symlink(&wd.join("loop"), "loop");
    assert!(matches!(sandbox::resolve(wd, "loop"), Err(SandboxError::Unresolvable { .. })));
    assert!(matches!(sandbox::resolve(&env.outer.join("missing"), "a"), Err(SandboxError::WorkingDir { .. })));
}

#[tokio::test]
async fn file_tools_refuse_paths_outside() {
    let env = Env::new();
    env.symlink(&env.outer.join("secret.txt"), "link.txt");
    env.symlink(&env.outer.join("secretdir"), "linkdir");
    // A relative link that climbs out, and a dangling link to a file that does not exist yet.
    env.symlink(Path::new("../secretdir"), "rel-linkdir");
    env.symlink(&env.outer.join("created-outside.txt"), "dangling.txt");
    let abs_outside = env.outer.join("secret.txt");
    let abs_outside = abs_outside.to_str().unwrap();
    let file_paths = ["../secret.txt", abs_outside, "/etc/passwd", "link.txt", "linkdir/s.txt", "rel-linkdir/s.txt"];

    for p in file_paths {
        assert_refused(env.call("Read", json!({"file_path": p})).await, &format!("Read {p}"));
        assert_refused(
            env.call("Edit", json!({"file_path": p, "old_string": "TOP", "new_string": "NOT"})).await,
            &format!("Edit {p}"),
        );
        assert_refused(env.call("Write", json!({"file_path": p, "content": "pwned"})).await, &format!("Write {p}"));
        assert_refused(env.call("Grep", json!({"pattern": "SECRET", "path": p})).await, &format!("Grep {p}"));
    }
    for p in ["dangling.txt", "linkdir/new.txt", "../new.txt", "linkdir/deeper/new.txt"] {
        assert_refused(env.call("Write", json!({"file_path": p, "content": "pwned"})).await, &format!("Write {p}"));
    }
    assert!(!env.outer.join("created-outside.txt").exists());
    assert!(!env.outer.join("secretdir/new.txt").exists());
    assert!(!env.outer.join("new.txt").exists());
    assert_eq!(std::fs::read_to_string(env.outer.join("secret.txt")).unwrap(), "TOP SECRET\n");
    assert_eq!(std::fs::read_to_string(env.outer.join("secretdir/s.txt")).unwrap(), "TOP SECRET\n");

    for p in ["..", "../secretdir", env.outer.to_str().unwrap(), "/", "linkdir", "rel-linkdir"] {
        assert_refused(env.call("Glob", json!({"pattern": "**/*", "path": p})).await, &format!("Glob {p}"));
        assert_refused(env.call("Grep", json!({"pattern": "SECRET", "path": p})).await, &format!("Grep {p}"));
    }

    // Walking the working dir does not follow links out either.
    let out = env.ok("Grep", json!({"pattern": "SECRET"})).await;
    assert!(out.starts_with("No matches"), "{out}");
    let out = env.ok("Glob", json!({"pattern": "**/*"})).await;
    assert!(!out.contains("s.txt") && !out.contains("link.txt"), "{out}");
}

#[tokio::test]
async fn symlinks_inside_are_fine() {
    let env = Env::new();
    env.write("real/data.txt", "hello inside\n");
    env.symlink(&env.wd.join("real/data.txt"), "file-link.txt");
    env.symlink(Path::new("real"), "dir-link");
    let out = env.ok("Read", json!({"file_path": "file-link.txt"})).await;
    assert_eq!(out, "     1\thello inside\n");
    let out = env.ok("Read", json!({"file_path": "dir-link/data.txt"})).await;
    assert_eq!(out, "     1\thello inside\n");
    env.ok("Edit", json!({"file_path": "file-link.txt", "old_string": "hello", "new_string": "hi"})).await;
    assert_eq!(env.read("real/data.txt"), "hi inside\n");
    env.ok("Write", json!({"file_path": "dir-link/new.txt", "content": "n"})).await;
    assert_eq!(env.read("real/new.txt"), "n");
    let out = env.ok("Grep", json!({"pattern": "inside", "path": "dir-link"})).await;
    assert_eq!(out, "real/data.txt:1:hi inside");
    let out = env.ok("Glob", json!({"pattern": "*.txt", "path": "dir-link"})).await;
    assert!(out.contains("real/data.txt") && out.contains("real/new.txt"), "{out}");
    // A link to a file inside is listed and searched under its own name.
    let out = env.ok("Grep", json!({"pattern": "inside", "glob": "file-link.txt"})).await;
    assert_eq!(out, "file-link.txt:1:hi inside");
}

// ---------------------------------------------------------------- Bash

#[tokio::test]
async fn bash_reports_output_and_exit_code() {
    let env = Env::new();
    let out = env.call("Bash", json!({"command": "echo out; echo err >&2; pwd", "description": "test"})).await.unwrap();
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("stdout:\nout\n"), "{}", out.content);
    assert!(out.content.contains("stderr:\nerr\n"), "{}", out.content);
    assert!(out.content.contains(env.wd.to_str().unwrap()), "runs in the working dir: {}", out.content);
    assert!(out.content.contains("exit code: 0"), "{}", out.content);

    let out = env.call("Bash", json!({"command": "echo failing; exit 3"})).await.unwrap();
    assert!(out.is_error);
    assert!(out.content.contains("failing") && out.content.contains("exit code: 3"), "{}", out.content);

    let out = env.call("Bash", json!({"command": "true"})).await.unwrap();
    assert!(!out.is_error && out.content.contains("(no output)"), "{}", out.content);
    assert_invalid(env.call("Bash", json!({"command": "  "})).await, "command");
}

#[tokio::test]
async fn bash_timeout_kills() {
    let env = Env::new();
    let start = Instant::now();
    let out = env.call("Bash", json!({"command": "echo started; sleep 30", "timeout": 300})).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
    assert!(out.is_error);
    assert!(out.content.contains("timed out") && out.content.contains("300 ms"), "{}", out.content);
}

fn process_gone(pid: u32) -> bool {
    // Gone, or a zombie waiting for a reaper that is not ours.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

async fn wait_gone(pid: u32) -> bool {
    for _ in 0..100 {
        if process_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn bash_interrupt_kills_the_command() {
    let env = Env::new();
    let interrupt = env.ctx.interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        interrupt.trigger();
    });
    let start = Instant::now();
    let r = env.call("Bash", json!({"command": "echo $$ > pid; sleep 30 & echo $! > child; wait"})).await;
    assert_eq!(r, Err(ToolError::Interrupted));
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
    let pid: u32 = env.read("pid").trim().parse().unwrap();
    let child: u32 = env.read("child").trim().parse().unwrap();
    assert!(wait_gone(pid).await, "shell {pid} still running");
    assert!(wait_gone(child).await, "sleep {child} still running");
}

#[tokio::test]
async fn bash_already_interrupted_does_not_run() {
    let env = Env::new();
    env.ctx.interrupt.trigger();
    let r = env.call("Bash", json!({"command": "touch ran"})).await;
    assert_eq!(r, Err(ToolError::Interrupted));
    assert!(!env.wd.join("ran").exists());
}

#[tokio::test]
async fn bash_output_is_capped() {
    let env = Env::new();
    let out = env
        .call("Bash", json!({"command": "head -c 40000 /dev/zero | tr '\\0' a; head -c 10 /dev/zero | tr '\\0' b >&2"}))
        .await
        .unwrap();
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains(&"a".repeat(30_000)));
    assert!(!out.content.contains(&"a".repeat(30_001)));
    assert!(out.content.contains("[stdout truncated"), "{}", &out.content[30_000..]);
    assert!(out.content.contains("stderr:\nbbbbbbbbbb\n"));
    assert!(!out.content.contains("[stderr truncated"));
}
