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
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
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
