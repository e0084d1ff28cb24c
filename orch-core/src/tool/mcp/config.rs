//! `<cwd>/.mcp.json`, Claude Code's project file of MCP servers:
//!
//! ```json
//! {"mcpServers": {
//!   "files": {"command": "npx", "args": ["-y", "some-mcp-server"], "env": {"TOKEN": "${TOKEN}"}},
//!   "remote": {"type": "http", "url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${API_KEY}"}}
//! }}
//! ```
//!
//! A server with a `command` (and `type` `stdio` or none) is started as a child process speaking MCP on
//! its stdin/stdout; one with `type` `http` (or a `url` and no `type`) is reached over streamable HTTP.
//! As in Claude Code, `${VAR}` and `${VAR:-default}` are expanded from the environment in `command`,
//! `args`, `env`, `url` and `headers`; a variable that is not set and has no default is an error of that
//! server (Claude Code refuses the whole file; orch starts the other servers).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The file's name in the working directory.
pub const MCP_JSON: &str = ".mcp.json";

/// One server of `.mcp.json`, its variables expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerConfig {
    /// A child process speaking MCP over its stdin and stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Variables added to the inherited environment.
        env: BTreeMap<String, String>,
    },
    /// A server reached over streamable HTTP.
    Http {
        /// Its endpoint.
        url: String,
        /// Headers sent with every request (e.g. `Authorization`).
        headers: BTreeMap<String, String>,
    },
}

/// A server of the file that cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file.
    pub file: PathBuf,
    /// The server's name as written (empty when the whole file is at fault).
    pub server: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.server.is_empty() {
            write!(f, "{} {}", self.file.display(), self.message)
        } else {
            write!(f, "MCP server '{}' in {}: {}", self.server, self.file.display(), self.message)
        }
    }
}

impl std::error::Error for ConfigProblem {}

/// The servers of a `.mcp.json`, in name order, and the problems of those that cannot be used.
#[derive(Debug, Clone, Default)]
pub struct McpConfig {
    /// Usable servers by name.
    pub servers: BTreeMap<String, ServerConfig>,
    /// Servers left out, and why.
    pub problems: Vec<ConfigProblem>,
}

#[derive(Deserialize)]
struct File {
    #[serde(rename = "mcpServers", default)]
    mcp_servers: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(rename = "type")]
    kind: Option<String>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    // Claude Code's own keys that orch does not use.
    #[serde(rename = "oauth", default)]
    _oauth: Option<Value>,
    #[serde(rename = "headersHelper", default)]
    _headers_helper: Option<Value>,
    #[serde(rename = "timeout", default)]
    _timeout: Option<Value>,
}

impl McpConfig {
    /// Reads `<dir>/.mcp.json`; no file gives no servers. A file that is not valid JSON of the expected
    /// shape is one problem naming the file and the fault.
    pub fn load(dir: &Path) -> Self {
        Self::load_with(dir, &|k| std::env::var(k).ok())
    }

    /// [`McpConfig::load`] with variables looked up by `var`.
    pub fn load_with(dir: &Path, var: &dyn Fn(&str) -> Option<String>) -> Self {
        let file = dir.join(MCP_JSON);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::default(),
            Err(e) => return Self::whole_file(&file, format!("cannot be read: {e}")),
        };
        Self::parse(&file, &text, var)
    }

    /// Parses the text of `file`.
    pub fn parse(file: &Path, text: &str, var: &dyn Fn(&str) -> Option<String>) -> Self {
        let parsed: File = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => return Self::whole_file(file, format!("is not a valid .mcp.json: {e}")),
        };
        let mut out = Self::default();
        for (name, raw) in parsed.mcp_servers {
            match server(raw, var) {
                Ok(config) => {
                    out.servers.insert(name, config);
                }
                Err(message) => out.problems.push(ConfigProblem { file: file.to_path_buf(), server: name, message }),
            }
        }
        out
    }

    fn whole_file(file: &Path, message: String) -> Self {
        let problem = ConfigProblem { file: file.to_path_buf(), server: String::new(), message };
        Self { servers: BTreeMap::new(), problems: vec![problem] }
    }
}

fn server(raw: Value, var: &dyn Fn(&str) -> Option<String>) -> Result<ServerConfig, String> {
    let raw: RawServer = serde_json::from_value(raw).map_err(|e| format!("not a server entry: {e}"))?;
    let expand = |s: &str| expand_vars(s, var);
    let map = |m: &BTreeMap<String, String>| -> Result<BTreeMap<String, String>, String> {
        m.iter().map(|(k, v)| Ok((k.clone(), expand(v)?))).collect()
    };
    let kind = raw.kind.as_deref().unwrap_or(if raw.url.is_some() && raw.command.is_none() { "http" } else { "stdio" });
    match kind {
        "stdio" => {
            let command = raw.command.as_deref().ok_or("a stdio server needs a \"command\"")?;
            let command = expand(command)?;
            if command.trim().is_empty() {
                return Err("its \"command\" is empty".into());
            }
            let args = raw.args.iter().map(|a| expand(a)).collect::<Result<_, _>>()?;
            Ok(ServerConfig::Stdio { command, args, env: map(&raw.env)? })
        }
        "http" | "streamable-http" | "streamableHttp" => {
            let url = expand(raw.url.as_deref().ok_or("an http server needs a \"url\"")?)?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("its url \"{url}\" is not an http:// or https:// address"));
            }
            Ok(ServerConfig::Http { url, headers: map(&raw.headers)? })
        }
        "sse" => Err("type \"sse\" (the legacy HTTP+SSE transport) is not supported; use \"http\"".into()),
        other => Err(format!("unknown type \"{other}\" (expected \"stdio\" or \"http\")")),
    }
}

/// Expands `${VAR}` and `${VAR:-default}` as Claude Code does; an unset variable without a default is
/// an error naming it. `$` not followed by `{` is kept as written.
pub fn expand_vars(text: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("\"{text}\" opens a ${{ it does not close"));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (var(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(format!("environment variable {name} is not set (used as ${{{name}}})")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(k: &str) -> Option<String> {
        match k {
            "HOME_DIR" => Some("/home/me".into()),
            "TOKEN" => Some("s3cret".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_expand_with_defaults_and_an_unset_one_is_named() {
        assert_eq!(expand_vars("${HOME_DIR}/x", &vars).unwrap(), "/home/me/x");
        assert_eq!(expand_vars("${NOPE:-/tmp}/y", &vars).unwrap(), "/tmp/y");
        assert_eq!(expand_vars("a $b ${TOKEN}", &vars).unwrap(), "a $b s3cret");
        let err = expand_vars("Bearer ${API_KEY}", &vars).unwrap_err();
        assert!(err.contains("API_KEY"), "{err}");
        assert!(expand_vars("${TOKEN", &vars).is_err());
    }

    #[test]
    fn stdio_and_http_servers_parse_and_bad_ones_are_problems_naming_the_server() {
        let text = r#"{"mcpServers": {
            "files": {"command": "${HOME_DIR}/bin/srv", "args": ["--token", "${TOKEN}"], "env": {"X": "${NOPE:-1}"}},
            "remote": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
            "bare": {"url": "https://example.com/mcp"},
            "old": {"type": "sse", "url": "http://127.0.0.1:9/sse"},
            "secret": {"command": "srv", "env": {"K": "${MISSING}"}},
            "none": {"args": []}
        }}"#;
        let c = McpConfig::parse(Path::new("/w/.mcp.json"), text, &vars);
        assert_eq!(
            c.servers.get("files"),
            Some(&ServerConfig::Stdio {
                command: "/home/me/bin/srv".into(),
                args: vec!["--token".into(), "s3cret".into()],
                env: [("X".to_string(), "1".to_string())].into(),
            })
        );
        assert_eq!(
            c.servers.get("remote"),
            Some(&ServerConfig::Http {
                url: "http://127.0.0.1:9/mcp".into(),
                headers: [("Authorization".to_string(), "Bearer s3cret".to_string())].into(),
            })
        );
        assert!(matches!(c.servers.get("bare"), Some(ServerConfig::Http { .. })));
        let problems: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("'old'") && p.contains("sse")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("'secret'") && p.contains("MISSING")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("'none'") && p.contains("command")), "{problems:?}");
    }

    #[test]
    fn a_broken_file_is_one_problem_and_no_file_is_no_servers() {
        let c = McpConfig::parse(Path::new("/w/.mcp.json"), "{not json", &vars);
        assert!(c.servers.is_empty());
        assert_eq!(c.problems.len(), 1);
        assert!(c.problems[0].to_string().contains("/w/.mcp.json"), "{}", c.problems[0]);
        let dir = tempfile::tempdir().unwrap();
        let c = McpConfig::load(dir.path());
        assert!(c.servers.is_empty() && c.problems.is_empty());
    }
}
