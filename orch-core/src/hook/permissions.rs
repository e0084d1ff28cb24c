//! Claude Code permission rules for native agents: `permissions.deny` and `permissions.ask` of
//! `<cwd>/.claude/settings.json` and `settings.local.json`, applied as one PreToolUse hook.
//!
//! ```json
//! {"permissions": {"ask": ["Write", "Bash(git push:*)"], "deny": ["Read(./.env)"]}}
//! ```
//!
//! A rule is `Tool` (every call of the tool) or `Tool(pattern)`:
//! - `Bash(npm run test:*)` matches commands that start with `npm run test`; `Bash(git diff)` that
//!   command exactly; a pattern with `*` elsewhere is a glob over the whole command.
//! - `Read`, `Write`, `Edit`, `MultiEdit`, `NotebookEdit`, `Glob`, `Grep` match their path (`file_path`,
//!   `notebook_path` or `path`) against a gitignore-style glob relative to the working dir: `./src/**`,
//!   `/src/**` and `src/**` are the same; `*.env` (no `/`) matches at any depth; `//abs/path` is absolute.
//! - `WebFetch(domain:example.com)` matches URLs of that host and its subdomains.
//! - MCP tools (`mcp__<server>__<tool>`): `mcp__github__create_issue` matches that tool, `mcp__github` and
//!   `mcp__github__*` every tool of the server.
//!
//! A `deny` rule wins over an `ask` rule (as in Claude Code): the call is denied with the rule named;
//! an `ask` parks the run for a person ([`HookDecision::Ask`]). `allow` rules change nothing: orch
//! runs tools without asking unless a rule or hook says otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use globset::GlobBuilder;
use serde_json::Value;

use super::command::{SettingsProblem, settings_files};
use super::{Hook, HookDecision, HookError, HookEvent, HookInput, HookRegistry};

/// One permission rule, `Tool` or `Tool(pattern)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRule {
    /// The rule as written.
    pub text: String,
    /// The tool it names.
    pub tool: String,
    /// The pattern between the parentheses, if any.
    pub pattern: Option<String>,
}

impl PermissionRule {
    /// Parses `Tool` or `Tool(pattern)`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (tool, pattern) = match t.split_once('(') {
            None => (t, None),
            Some((tool, rest)) => {
                let Some(inner) = rest.strip_suffix(')') else {
                    return Err(format!("permission rule \"{text}\" opens a '(' it does not close"));
                };
                (tool.trim(), Some(inner.trim().to_string()).filter(|p| !p.is_empty() && p != "*"))
            }
        };
        if tool.is_empty() || tool.contains(char::is_whitespace) {
            return Err(format!("permission rule \"{text}\" does not start with a tool name"));
        }
        Ok(Self { text: t.to_string(), tool: tool.to_string(), pattern })
    }

    /// Whether the rule matches a call of `tool` with `input`, made in `cwd`.
    pub fn matches(&self, tool: &str, input: &Value, cwd: &Path) -> bool {
        if self.tool != tool {
            return self.pattern.is_none() && names_mcp_server_of(&self.tool, tool);
        }
        let Some(pattern) = &self.pattern else { return true };
        let field = |k: &str| input.get(k).and_then(Value::as_str);
        match tool {
            "Bash" => field("command").is_some_and(|c| command_matches(pattern, c.trim())),
            "Read" | "Write" | "Edit" | "MultiEdit" | "NotebookEdit" | "Glob" | "Grep" => {
                let path = field("file_path").or_else(|| field("notebook_path")).or_else(|| field("path"));
                path.is_some_and(|p| path_matches(pattern, p, cwd))
            }
            "WebFetch" => match (pattern.strip_prefix("domain:"), field("url")) {
                (Some(domain), Some(url)) => {
                    host_of(url).is_some_and(|h| h == domain || h.ends_with(&format!(".{domain}")))
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// Whether `rule` names the whole MCP server `tool` belongs to, as Claude Code reads `mcp__github` and
/// `mcp__github__*`: every `mcp__github__<tool>`.
fn names_mcp_server_of(rule: &str, tool: &str) -> bool {
    let server = rule.strip_suffix("__*").unwrap_or(rule);
    let Some(name) = server.strip_prefix("mcp__") else { return false };
    !name.is_empty() && !name.contains("__") && tool.strip_prefix(server).is_some_and(|rest| rest.starts_with("__"))
}

fn command_matches(pattern: &str, command: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix(":*") {
        return command.starts_with(prefix);
    }
    if pattern.contains('*') {
        return GlobBuilder::new(pattern)
            .literal_separator(false)
            .build()
            .is_ok_and(|g| g.compile_matcher().is_match(command));
    }
    command == pattern
}

fn path_matches(pattern: &str, path: &str, cwd: &Path) -> bool {
    let (base, rel_pattern): (PathBuf, String) = if let Some(abs) = pattern.strip_prefix("//") {
        (PathBuf::from("/"), abs.to_string())
    } else if let Some(home) = pattern.strip_prefix("~/") {
        (std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default(), home.to_string())
    } else {
        let p = pattern.strip_prefix("./").or_else(|| pattern.strip_prefix('/')).unwrap_or(pattern);
        let p = if p.contains('/') { p.to_string() } else { format!("**/{p}") };
        (cwd.to_path_buf(), p)
    };
    let full = if Path::new(path).is_absolute() { PathBuf::from(path) } else { cwd.join(path) };
    let Ok(rel) = full.strip_prefix(&base) else { return false };
    GlobBuilder::new(&rel_pattern).literal_separator(true).build().is_ok_and(|g| g.compile_matcher().is_match(rel))
}

fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    Some(host.split(':').next().unwrap_or(host))
}

/// The `deny` and `ask` rules of a project's settings, as one PreToolUse hook.
#[derive(Debug, Clone, Default)]
pub struct PermissionHook {
    deny: Vec<(PermissionRule, PathBuf)>,
    ask: Vec<(PermissionRule, PathBuf)>,
}

impl PermissionHook {
    /// Whether it has no rules.
    pub fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.ask.is_empty()
    }
}

#[async_trait]
impl Hook for PermissionHook {
    fn name(&self) -> &str {
        "settings permissions"
    }

    async fn call(&self, input: &HookInput) -> Result<HookDecision, HookError> {
        let (Some(tool), HookEvent::PreToolUse) = (input.tool_name.as_deref(), input.event) else {
            return Ok(HookDecision::Continue);
        };
        let args = input.tool_input.clone().unwrap_or(Value::Null);
        let cwd = Path::new(&input.working_dir);
        let file = |f: &Path| f.file_name().map(|n| format!(".claude/{}", n.to_string_lossy())).unwrap_or_default();
        if let Some((rule, from)) = self.deny.iter().find(|(r, _)| r.matches(tool, &args, cwd)) {
            return Ok(HookDecision::Deny {
                reason: format!("denied by the permission rule \"{}\" in {}", rule.text, file(from)),
            });
        }
        if let Some((rule, from)) = self.ask.iter().find(|(r, _)| r.matches(tool, &args, cwd)) {
            return Ok(HookDecision::Ask {
                question: format!(
                    "Allow this {tool} call? (the permission rule \"{}\" in {} asks)",
                    rule.text,
                    file(from)
                ),
            });
        }
        Ok(HookDecision::Continue)
    }

    fn is_claude_settings_hook(&self) -> bool {
        true
    }
}

/// Reads the `permissions.deny` and `permissions.ask` rules of `cwd`'s settings files; bad rules are
/// reported and skipped. (Unreadable or invalid files are reported by the hooks' loader.)
pub fn load_permission_rules(cwd: &Path) -> (PermissionHook, Vec<SettingsProblem>) {
    let mut hook = PermissionHook::default();
    let mut problems = Vec::new();
    for file in settings_files(cwd) {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let Ok(root) = serde_json::from_str::<Value>(&text) else { continue };
        let Some(perms) = root.get("permissions") else { continue };
        for (key, into) in [("deny", &mut hook.deny), ("ask", &mut hook.ask)] {
            let Some(list) = perms.get(key) else { continue };
            let Some(list) = list.as_array() else {
                problems.push(SettingsProblem {
                    file: file.clone(),
                    message: format!("permissions.{key} is not a list; skipped"),
                });
                continue;
            };
            for rule in list {
                match rule.as_str().map(PermissionRule::parse) {
                    Some(Ok(r)) => into.push((r, file.clone())),
                    Some(Err(e)) => {
                        problems.push(SettingsProblem { file: file.clone(), message: format!("{e}; skipped") })
                    }
                    None => problems.push(SettingsProblem {
                        file: file.clone(),
                        message: format!("permissions.{key} has a rule that is not a string; skipped"),
                    }),
                }
            }
        }
    }
    (hook, problems)
}

/// Registers `cwd`'s permission rules as a PreToolUse hook (when there are any) and returns the
/// problems found.
pub fn register_permission_rules(registry: &mut HookRegistry, cwd: &Path) -> Vec<SettingsProblem> {
    let (hook, problems) = load_permission_rules(cwd);
    if !hook.is_empty() {
        // No matcher: a rule names its tool itself.
        let _ = registry.register_arc(HookEvent::PreToolUse, None, Arc::new(hook));
    }
    problems
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn rules_parse_and_match_like_claude_code() {
        let cwd = Path::new("/work/p");
        let r = PermissionRule::parse("Write").unwrap();
        assert!(r.matches("Write", &json!({"file_path": "a.txt"}), cwd));
        assert!(!r.matches("Edit", &json!({"file_path": "a.txt"}), cwd));
        let r = PermissionRule::parse("Bash(git push:*)").unwrap();
        assert!(r.matches("Bash", &json!({"command": "git push origin main"}), cwd));
        assert!(!r.matches("Bash", &json!({"command": "git status"}), cwd));
        let r = PermissionRule::parse("Read(./secrets/**)").unwrap();
        assert!(r.matches("Read", &json!({"file_path": "/work/p/secrets/k/a.pem"}), cwd));
        assert!(r.matches("Read", &json!({"file_path": "secrets/a"}), cwd));
        assert!(!r.matches("Read", &json!({"file_path": "/work/p/src/a"}), cwd));
        let r = PermissionRule::parse("Edit(*.env)").unwrap();
        assert!(r.matches("Edit", &json!({"file_path": "deep/dir/.env"}), cwd));
        let r = PermissionRule::parse("WebFetch(domain:example.com)").unwrap();
        assert!(r.matches("WebFetch", &json!({"url": "https://docs.example.com/x"}), cwd));
        assert!(!r.matches("WebFetch", &json!({"url": "https://example.org/"}), cwd));
        // MCP tools by Claude Code's names: one tool, or every tool of a server.
        let r = PermissionRule::parse("mcp__github").unwrap();
        assert!(r.matches("mcp__github__create_issue", &json!({}), cwd));
        assert!(!r.matches("mcp__githubx__create_issue", &json!({}), cwd));
        let r = PermissionRule::parse("mcp__github__*").unwrap();
        assert!(r.matches("mcp__github__delete_repo", &json!({}), cwd));
        let r = PermissionRule::parse("mcp__github__delete_repo").unwrap();
        assert!(r.matches("mcp__github__delete_repo", &json!({}), cwd));
        assert!(!r.matches("mcp__github__create_issue", &json!({}), cwd));
        assert!(PermissionRule::parse("Bash(ls").is_err());
        assert!(PermissionRule::parse("(x)").is_err());
    }
}
