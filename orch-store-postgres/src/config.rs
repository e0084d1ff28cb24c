//! Connection settings: the URL and its orch-specific parts (`pool_max`, the schema in `options`), the
//! environment, [`PgOptions`](crate::PgOptions), password redaction and connection-error messages.

use std::str::FromStr;
use std::time::Duration;

use crate::sqlx;
use orch_core::store::StoreError;
use sqlx::postgres::PgConnectOptions;

/// Default number of pooled connections.
pub(crate) const DEFAULT_POOL_SIZE: u32 = 10;
/// Default schema.
pub(crate) const DEFAULT_SCHEMA: &str = "orch";
/// How long connecting may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable naming the pool size.
pub(crate) const ENV_POOL: &str = "ORCH_PG_POOL";
/// Environment variable naming the schema.
pub(crate) const ENV_SCHEMA: &str = "ORCH_PG_SCHEMA";
/// The orch-specific URL query parameter giving the pool size.
const POOL_PARAM: &str = "pool_max";

/// Everything `connect` derives from the URL, the environment and the options.
pub(crate) struct Config {
    /// The URL without its password.
    pub location: String,
    /// Secrets to scrub from error messages (the password as written and decoded).
    pub secrets: Vec<String>,
    /// sqlx's options (the URL minus `pool_max`), with `application_name` defaulted to `orch`.
    pub connect: PgConnectOptions,
    /// The schema holding orch's tables.
    pub schema: String,
    /// Pool size.
    pub pool_size: u32,
}

/// The URL with any password replaced by `***`: the `user:password@` part and any `password=` query
/// parameter. Never fails; text that is not a URL is returned with the same replacements where they apply.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    match before_query.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            let auth_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(auth_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    match userinfo.split_once(':') {
                        Some((user, _password)) => {
                            out.push_str(user);
                            out.push_str(":***");
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push('@');
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let parts: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

/// The password(s) a URL carries, as written and percent-decoded, to scrub from messages.
fn secrets_of(url: &str) -> Vec<String> {
    let mut raw = Vec::new();
    let before_query = url.split('?').next().unwrap_or(url);
    if let Some((_, rest)) = before_query.split_once("://") {
        let authority = rest.split('/').next().unwrap_or(rest);
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            raw.push(password.to_string());
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for kv in query.split('&') {
            if let Some((k, v)) = kv.split_once('=')
                && k.to_ascii_lowercase().contains("password")
            {
                raw.push(v.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for s in raw {
        let decoded = percent_decode(&s);
        // Very short secrets would mangle every message; they never appear in ours anyway.
        for v in [s, decoded] {
            if v.len() >= 3 && !out.contains(&v) {
                out.push(v);
            }
        }
    }
    // Longest first, so a secret containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces every secret in `message` by `***`.
pub(crate) fn scrub(message: String, secrets: &[String]) -> String {
    secrets.iter().fold(message, |m, s| if m.contains(s.as_str()) { m.replace(s.as_str(), "***") } else { m })
}

/// Removes the orch-specific `pool_max` parameter from the URL; returns the rest and its value.
fn take_pool_param(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None) };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some((k, v)) if k == POOL_PARAM => {
                value = Some(v.to_string());
                false
            }
            _ => !kv.is_empty() && *kv != POOL_PARAM,
        })
        .collect();
    let mut out = base.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    (out, value)
}

/// The first schema of the last `search_path` set in a libpq `options` string
/// (`-c search_path=a,b`, `-csearch_path=a`, `--search_path=a`; backslash escapes spaces).
pub(crate) fn search_path_schema(options: &str) -> Option<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in options.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c.is_whitespace() {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    let mut found = None;
    let mut i = 0;
    while i < tokens.len() {
        let setting = if tokens[i] == "-c" {
            i += 1;
            tokens.get(i).map(String::as_str)
        } else if let Some(s) = tokens[i].strip_prefix("--") {
            Some(s)
        } else {
            tokens[i].strip_prefix("-c")
        };
        if let Some((key, value)) = setting.and_then(|s| s.split_once('='))
            && key.trim().replace('-', "_").eq_ignore_ascii_case("search_path")
        {
            found = value.split(',').map(|s| s.trim().trim_matches('"').to_string()).next();
        }
        i += 1;
    }
    found.filter(|s| !s.is_empty())
}

/// Checks a schema name: lowercase ASCII letters, digits and `_`, starting with a letter or `_`, at most
/// 63 bytes, not `pg_…` (reserved by PostgreSQL). Such names need no quoting anywhere.
pub(crate) fn check_schema(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || name.len() > 63 || name.starts_with("pg_") {
        return Err(format!(
            "invalid schema name '{name}': use lowercase ASCII letters, digits and '_', start with a letter or '_', \
             at most 63 bytes, not starting with 'pg_'"
        ));
    }
    Ok(())
}

impl Config {
    /// Reads the URL, the environment and the options. Nothing is contacted.
    pub(crate) fn new(url: &str, options: &crate::PgOptions) -> Result<Self, StoreError> {
        let location = redact_url(url);
        let secrets = secrets_of(url);
        let open = |message: String| StoreError::Open { location: location.clone(), message: scrub(message, &secrets) };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(open("not a PostgreSQL URL (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)".into()));
        }
        let (rest, pool_param) = take_pool_param(url);
        let mut connect = PgConnectOptions::from_str(&rest).map_err(|e| open(format!("invalid URL: {e}")))?;
        if connect.get_application_name().is_none() {
            connect = connect.application_name("orch");
        }

        let pool_size = match (options.pool_size, pool_param) {
            (Some(n), _) => n,
            (None, Some(v)) => v.parse::<u32>().map_err(|_| open(format!("invalid {POOL_PARAM} '{v}' in the URL")))?,
            (None, None) => match std::env::var(ENV_POOL) {
                Ok(v) if !v.trim().is_empty() => {
                    v.trim().parse::<u32>().map_err(|_| open(format!("invalid {ENV_POOL} '{v}'")))?
                }
                _ => DEFAULT_POOL_SIZE,
            },
        };
        if pool_size == 0 {
            return Err(open("the pool size must be at least 1".into()));
        }

        let schema = match &options.schema {
            Some(s) => s.clone(),
            None => match connect.get_options().and_then(search_path_schema) {
                Some(s) => s,
                None => match std::env::var(ENV_SCHEMA) {
                    Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
                    _ => DEFAULT_SCHEMA.to_string(),
                },
            },
        };
        check_schema(&schema).map_err(open)?;
        Ok(Self { location, secrets, connect, schema, pool_size })
    }

    /// A [`StoreError::Open`] naming the redacted URL, with secrets scrubbed from the message.
    pub(crate) fn open_error(&self, message: impl Into<String>) -> StoreError {
        StoreError::Open { location: self.location.clone(), message: scrub(message.into(), &self.secrets) }
    }

    /// Explains a failure to connect, in the words a person would search for.
    pub(crate) fn connect_error(&self, e: &sqlx::Error) -> StoreError {
        let host = format!("{}:{}", self.connect.get_host(), self.connect.get_port());
        let message = match e {
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                format!("connection refused by {host} (is PostgreSQL running and accepting TCP connections there?)")
            }
            sqlx::Error::Io(io) => format!("cannot reach {host}: {io}"),
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // invalid_password, invalid_authorization_specification, invalid_catalog_name: PostgreSQL's
                // own words say it ("password authentication failed for user …", "database … does not exist").
                Some(code @ ("28P01" | "28000" | "3D000")) => format!("{} (SQLSTATE {code})", db.message()),
                Some(code) => format!("the server refused the connection: {} (SQLSTATE {code})", db.message()),
                None => format!("the server refused the connection: {}", db.message()),
            },
            sqlx::Error::PoolTimedOut => {
                format!("timed out after {} s connecting to {host}", CONNECT_TIMEOUT.as_secs())
            }
            sqlx::Error::Tls(t) => format!("TLS handshake with {host} failed: {t}"),
            sqlx::Error::Configuration(c) => format!("invalid connection settings: {c}"),
            other => other.to_string(),
        };
        self.open_error(message)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://h/db?password=x&sslmode=require"),
            "postgres://h/db?password=***&sslmode=require"
        );
        assert_eq!(redact_url("postgresql://u:p%40ss@h/db?a=1"), "postgresql://u:***@h/db?a=1");
        assert_eq!(redact_url("garbage"), "garbage");
        assert_eq!(redact_url("postgres://u:pw@h/db/with@at"), "postgres://u:***@h/db/with@at");
    }

    #[test]
    fn finds_secrets() {
        assert_eq!(secrets_of("postgres://u:p%40ssword@h/db"), vec!["p%40ssword".to_string(), "p@ssword".into()]);
        assert_eq!(secrets_of("postgres://h/db?password=hunter2"), vec!["hunter2".to_string()]);
        assert_eq!(scrub("bad hunter2!".into(), &secrets_of("postgres://h/db?password=hunter2")), "bad ***!");
    }

    #[test]
    fn strips_pool_param() {
        assert_eq!(take_pool_param("postgres://h/db?pool_max=3"), ("postgres://h/db".into(), Some("3".into())));
        assert_eq!(
            take_pool_param("postgres://h/db?a=1&pool_max=3&b=2"),
            ("postgres://h/db?a=1&b=2".into(), Some("3".into()))
        );
        assert_eq!(take_pool_param("postgres://h/db"), ("postgres://h/db".into(), None));
    }

    #[test]
    fn reads_search_path() {
        assert_eq!(search_path_schema("-c search_path=myschema"), Some("myschema".into()));
        assert_eq!(search_path_schema("-c statement_timeout=5 -c search_path=a,public"), Some("a".into()));
        assert_eq!(search_path_schema("-csearch_path=\"b\""), Some("b".into()));
        assert_eq!(search_path_schema("--search_path=c -c search_path=d"), Some("d".into()));
        assert_eq!(search_path_schema("-c geqo=off"), None);
    }

    #[test]
    fn checks_schema_names() {
        assert!(check_schema("orch").is_ok());
        assert!(check_schema("orch_t_0123abc").is_ok());
        assert!(check_schema("_x").is_ok());
        for bad in ["", "Orch", "1abc", "a-b", "pg_orch", "a b", &"x".repeat(64)] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_url_options() {
        let c = Config::new(
            "postgres://u:pw12@127.0.0.1:5433/db?pool_max=3&options=-c%20search_path%3Dmine",
            &crate::PgOptions::default(),
        )
        .unwrap();
        assert_eq!((c.schema.as_str(), c.pool_size), ("mine", 3));
        assert_eq!(c.location, "postgres://u:***@127.0.0.1:5433/db?pool_max=3&options=-c%20search_path%3Dmine");
        assert_eq!(c.connect.get_application_name(), Some("orch"));
        let c = Config::new(
            "postgres://u@h/db?options=-c%20search_path%3Dmine",
            &crate::PgOptions { schema: Some("other".into()), pool_size: Some(2) },
        )
        .unwrap();
        assert_eq!((c.schema.as_str(), c.pool_size), ("other", 2));
        assert!(matches!(Config::new("mysql://h/db", &crate::PgOptions::default()), Err(StoreError::Open { .. })));
        assert!(matches!(
            Config::new("postgres://h/db?pool_max=many", &crate::PgOptions::default()),
            Err(StoreError::Open { .. })
        ));
    }
}
