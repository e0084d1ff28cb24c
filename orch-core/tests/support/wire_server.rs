//! A scripted HTTP/1.1 server on 127.0.0.1 for testing model providers at the wire.
//!
//! It is raw tokio TCP on purpose: a test decides every byte, how the body is cut into chunks, when the
//! server pauses, whether it ends the body properly, cuts the connection mid-stream or stalls. Each
//! request is recorded (method, path, headers, body) and answered by the next scripted [`Reply`];
//! connections are kept alive across replies that end properly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One step of a reply body.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send these bytes as one HTTP chunk (or one write, for a sized body), then flush.
    Send(Vec<u8>),
    /// Pause.
    Sleep(Duration),
}

/// How a reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The body ends properly; the connection stays open for the next request.
    Finish,
    /// The connection is closed without ending the body.
    Cut,
    /// The server says nothing more, holding the connection open (for a long time).
    Stall,
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers (besides the framing ones).
    pub headers: Vec<(String, String)>,
    /// The body, step by step.
    pub steps: Vec<Step>,
    /// Chunked transfer encoding (streams) or a content-length (whole bodies).
    pub chunked: bool,
    /// How it ends.
    pub end: End,
    /// Stall before sending anything, even the headers.
    pub stall_before_headers: bool,
}

impl Reply {
    /// A 200 event stream sent as one chunk.
    pub fn sse(body: impl Into<Vec<u8>>) -> Self {
        Self::sse_chunks(vec![body.into()])
    }

    /// A 200 event stream sent in these chunks (each one flushed separately).
    pub fn sse_chunks(chunks: Vec<Vec<u8>>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            steps: chunks.into_iter().map(Step::Send).collect(),
            chunked: true,
            end: End::Finish,
            stall_before_headers: false,
        }
    }

    /// A 200 event stream cut into pieces of `n` bytes (so cuts fall inside tokens and UTF-8 characters),
    /// with a short pause between pieces so that they reach the client separately.
    pub fn sse_split(body: &[u8], n: usize) -> Self {
        let mut r = Self::sse_chunks(Vec::new());
        for piece in body.chunks(n) {
            r.steps.push(Step::Send(piece.to_vec()));
            r.steps.push(Step::Sleep(Duration::from_millis(1)));
        }
        r
    }

    /// A JSON answer with this status.
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            steps: vec![Step::Send(body.to_string().into_bytes())],
            chunked: false,
            end: End::Finish,
            stall_before_headers: false,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a step.
    pub fn then(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Ends by cutting the connection mid-body.
    pub fn cut(mut self) -> Self {
        self.end = End::Cut;
        self
    }

    /// Ends by stalling.
    pub fn stall(mut self) -> Self {
        self.end = End::Stall;
        self
    }

    /// Stalls before sending even the headers.
    pub fn stall_before_headers(mut self) -> Self {
        self.stall_before_headers = true;
        self
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path (with query).
    pub path: String,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
}

/// The server. It runs until the test's runtime ends.
pub struct WireServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl WireServer {
    /// Starts a server answering requests with `replies`, in order.
    pub async fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared { replies: Mutex::new(replies.into()), requests: Mutex::new(Vec::new()) });
        let s = shared.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, s).await;
                });
            }
        });
        Self { addr, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Scripts one more reply.
    pub fn push(&self, reply: Reply) {
        self.shared.replies.lock().unwrap().push_back(reply);
    }
}

async fn serve(mut socket: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut socket, &mut buf).await? else {
            return Ok(());
        };
        shared.requests.lock().unwrap().push(request);
        let reply = shared.replies.lock().unwrap().pop_front().unwrap_or_else(|| {
            Reply::json(
                418,
                &serde_json::json!({"error": {"type": "test_error", "message": "the test server has no reply scripted"}}),
            )
        });
        if reply.stall_before_headers {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
        let mut head = format!("HTTP/1.1 {} Scripted\r\n", reply.status);
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if reply.chunked {
            head.push_str("transfer-encoding: chunked\r\n");
        } else {
            let len: usize = reply.steps.iter().map(|s| if let Step::Send(b) = s { b.len() } else { 0 }).sum();
            head.push_str(&format!("content-length: {len}\r\n"));
        }
        head.push_str("\r\n");
        socket.write_all(head.as_bytes()).await?;
        socket.flush().await?;
        for step in &reply.steps {
            match step {
                Step::Send(bytes) if reply.chunked => {
                    if bytes.is_empty() {
                        continue;
                    }
                    let mut frame = format!("{:x}\r\n", bytes.len()).into_bytes();
                    frame.extend_from_slice(bytes);
                    frame.extend_from_slice(b"\r\n");
                    socket.write_all(&frame).await?;
                    socket.flush().await?;
                }
                Step::Send(bytes) => {
                    socket.write_all(bytes).await?;
                    socket.flush().await?;
                }
                Step::Sleep(d) => tokio::time::sleep(*d).await,
            }
        }
        match reply.end {
            End::Finish => {
                if reply.chunked {
                    socket.write_all(b"0\r\n\r\n").await?;
                    socket.flush().await?;
                }
            }
            End::Cut => {
                socket.shutdown().await?;
                return Ok(());
            }
            End::Stall => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Ok(());
            }
        }
    }
}

/// Reads one request; `None` when the client closed the connection.
async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Recorded>> {
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = socket.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let body_start = head_end + 4;
    while buf.len() < body_start + len {
        let n = socket.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = buf[body_start..body_start + len].to_vec();
    buf.drain(..body_start + len);
    Ok(Some(Recorded { method, path, headers, body }))
}

/// Formats one SSE event: `event: NAME` and `data: JSON`, then a blank line.
pub fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// Formats one data-only SSE event.
pub fn data(data: &Value) -> String {
    format!("data: {data}\n\n")
}
