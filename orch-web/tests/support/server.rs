//! `orch serve` as a child process, and the HTTP calls its tests make.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::orch;

/// A running `orch serve` (killed when dropped).
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// Sends SIGTERM and waits (up to 60 s: a hang fails the test, not a slow stop) for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        super::wait_exit(&mut self.child, Duration::from_secs(60), "orch serve after SIGTERM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `orch --model MODEL serve --port 0 ARGS…` in `dir` with `env`, and waits for its address.
pub fn start(dir: &Path, model: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut child = orch()
        .envs(env.iter().copied())
        .arg("--cwd")
        .arg(dir)
        .args(["--model", model, "serve", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Whatever the server prints later is read (and dropped), so its stdout never breaks or fills.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let addr = line
        .trim()
        .strip_prefix("orch serve: listening on ")
        .unwrap_or_else(|| panic!("no address from orch serve: {line:?}"));
    Server { base: addr.to_string(), child }
}

/// An HTTP client with a 30 s timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET base+path`: the status and the JSON body (`null` when it is not JSON).
pub async fn get(base: &str, path: &str) -> (u16, Value) {
    answer(client().get(format!("{base}{path}")).send().await.unwrap()).await
}

/// `POST base+path` with a JSON body.
pub async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    answer(client().post(format!("{base}{path}")).json(body).send().await.unwrap()).await
}

/// `PUT base+path` with a JSON body.
pub async fn put(base: &str, path: &str, body: &Value) -> (u16, Value) {
    answer(client().put(format!("{base}{path}")).json(body).send().await.unwrap()).await
}

/// `POST base+path` with `body` sent as it is, as JSON.
pub async fn post_raw(base: &str, path: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    answer(r).await
}

/// A WebSocket client of the server.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `/ws` with `query` (e.g. `?since=0`).
pub async fn connect(base: &str, query: &str) -> Ws {
    let url = format!("{}/ws{query}", base.replacen("http://", "ws://", 1));
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws
}

/// The next JSON frame (skipping pings), within 30 s.
pub async fn next_frame(ws: &mut Ws) -> Value {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.expect("a frame within 30 s");
        match msg.unwrap().unwrap() {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Frames until `until` holds for one (returned with all before it), within 60 s.
pub async fn frames_until(ws: &mut Ws, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    let start = std::time::Instant::now();
    let mut seen = Vec::new();
    loop {
        assert!(start.elapsed() < Duration::from_secs(60), "gave up waiting; frames so far: {seen:#?}");
        let f = next_frame(ws).await;
        let done = until(&f);
        seen.push(f);
        if done {
            return seen;
        }
    }
}
