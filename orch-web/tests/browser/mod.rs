//! The browser tests' harness: `orch serve` with the dashboard of this tree and the scripted demo
//! orchestrator, and a WebDriver session on chromedriver driving headless Chromium.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{orch, script};

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../orch-ui-leptos/dist")
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `orch serve` in `dir` on `port` (0: any) with the dashboard of this tree; its base URL.
pub fn serve(dir: &Path, port: u16) -> (Proc, String) {
    serve_with(dir, port, &[])
}

/// [`serve`] with more arguments of `orch serve`.
pub fn serve_with(dir: &Path, port: u16, args: &[&str]) -> (Proc, String) {
    let model = format!("scripted:{}", script("orchestrator.json").display());
    let mut child = orch()
        .env("ORCH_UI_DIR", dist())
        .arg("--cwd")
        .arg(dir)
        .args(["--model", &model, "serve", "--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("orch serve: listening on ").unwrap_or_else(|| panic!("orch serve: {line:?}"));
    (Proc(child), base.to_string())
}

/// A WebDriver session on chromedriver.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: Proc,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        let driver = Proc(driver);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap().keep();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,800",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": which("chromium").unwrap_or_else(|| "/usr/bin/chromium".into()), "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let r: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_string();
        Browser { http, session: format!("{base}/session/{session}"), _driver: driver }
    }

    pub async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if !body.is_null() {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {v}");
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.cmd(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Runs `script` (a function body) that calls `done(value)` when it has finished.
    pub async fn js_async(&self, script: &str) -> Value {
        let body = format!("const done = arguments[arguments.length - 1]; {script}");
        self.cmd(reqwest::Method::POST, "/execute/async", json!({"script": body, "args": []})).await
    }

    /// Waits until `script` returns a truthy value; that value.
    pub async fn until(&self, what: &str, limit: Duration, script: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.js(script).await;
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body.innerText.slice(0, 3000)").await;
                panic!("timed out waiting for {what}; the page says:\n{}", text.as_str().unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn element(&self, css: &str) -> String {
        let v = self.cmd(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await;
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_string()
    }

    /// Types `text` into the element (`\u{E007}` is Enter).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{id}/value"), json!({"text": text})).await;
    }

    /// Presses Ctrl+`key`.
    pub async fn ctrl(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "kb", "actions": [
            {"type": "keyDown", "value": "\u{E009}"}, {"type": "keyDown", "value": key},
            {"type": "keyUp", "value": key}, {"type": "keyUp", "value": "\u{E009}"}]}]});
        self.cmd(reqwest::Method::POST, "/actions", actions).await;
    }

    /// Presses `key` (`\u{E00C}` is Escape).
    pub async fn key(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "kb", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]});
        self.cmd(reqwest::Method::POST, "/actions", actions).await;
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let png = base64_decode(v.as_str().unwrap());
        let dir =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(std::env::temp_dir, PathBuf::from).join("ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The browser console's errors so far.
    pub async fn console_errors(&self) -> Vec<String> {
        let r = self.http.post(format!("{}/se/log", self.session)).json(&json!({"type": "browser"})).send().await;
        let Ok(r) = r else { return Vec::new() };
        let v: Value = r.json().await.unwrap_or(Value::Null);
        v["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .filter_map(|e| e["message"].as_str().map(str::to_string))
                    // The reconnect attempts while the server is down fail by design.
                    .filter(|m| !m.contains("/ws?since=") && !m.contains("ERR_CONNECTION_REFUSED"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (and Chromium) before chromedriver is killed.
        let url = self.session.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async { reqwest::Client::new().delete(url).send().await.ok() });
        })
        .join();
    }
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s.bytes().filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, c)| n | (u32::from(val(*c)) << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}

/// `POST base+path` with a JSON body: the answer's JSON (a failure panics, naming the answer).
pub async fn post_json(base: &str, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new().post(format!("{base}{path}")).json(&body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "POST {path}: {status} {v}");
    v
}

/// Every event of the log, by seq.
pub async fn log_seqs(base: &str) -> Vec<u64> {
    let v: Value = reqwest::get(format!("{base}/api/events?limit=10000")).await.unwrap().json().await.unwrap();
    v["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

/// What the page holds: the header's event count and the seqs of the rows drawn.
pub const PAGE_ROWS: &str = "({count: Number(document.querySelector('[data-testid=stat-events]').textContent), \
    seqs: Array.from(document.querySelectorAll('.row[data-seq]')).map(r => Number(r.dataset.seq))})";

/// Whether the browser, its driver and the dashboard build are there (under CI=true a missing one
/// fails the test; otherwise it is skipped, saying so).
pub fn can_run() -> bool {
    !(which("chromium").is_none() && missing("chromium")
        || which("chromedriver").is_none() && missing("chromedriver")
        || !dist().join("index.html").is_file() && missing("the dashboard build (scripts/build-ui.sh)"))
}

pub fn missing(what: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is missing (under CI=true the browser test must run; scripts/test.sh installs it)");
    }
    eprintln!("skipped: {what} is missing (scripts/test.sh installs it)");
    true
}
