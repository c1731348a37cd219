//! Webhook receivers for tests: a real HTTP server on loopback that records every request (raw
//! body, headers, arrival time) and answers from a script, then 200; and a hostile one that
//! answers too much or too slowly.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer: a status, after a delay.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub location: Option<&'static str>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            location: None,
        }
    }

    pub fn redirect(location: &'static str) -> Self {
        Self {
            status: 302,
            delay: Duration::ZERO,
            location: Some(location),
        }
    }

    pub fn slow(delay: Duration) -> Self {
        Self {
            status: 200,
            delay,
            location: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Received {
    pub body: Bytes,
    pub headers: HeaderMap,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The body as the event envelope around a `data` of type `T`.
    pub fn event<T: serde::de::DeserializeOwned>(&self) -> moncreneau::events::Envelope<T> {
        serde_json::from_slice(&self.body).expect("an event body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    received: Vec<Received>,
    /// The answer once the script is spent; 200 unless told otherwise.
    otherwise: Option<u16>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let reply = {
        let mut inner = inner.lock().unwrap();
        inner.received.push(Received {
            body,
            headers,
            at: Instant::now(),
        });
        let otherwise = Reply::status(inner.otherwise.unwrap_or(200));
        inner.script.pop_front().unwrap_or(otherwise)
    };
    tokio::time::sleep(reply.delay).await;
    let status = StatusCode::from_u16(reply.status).unwrap();
    match reply.location {
        Some(location) => (status, [(header::LOCATION, location)]).into_response(),
        None => status.into_response(),
    }
}

impl Receiver {
    pub async fn start(script: Vec<Reply>) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            script: script.into(),
            ..Inner::default()
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/hooks",
            listener.local_addr().unwrap().port()
        );
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inner }
    }

    /// From now on, answers `status` to every request the script does not cover.
    pub fn answer_otherwise(&self, status: u16) {
        self.inner.lock().unwrap().otherwise = Some(status);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Waits (bounded) until `count` requests arrived; answers them all.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} requests arrived within {within:?}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How a [`HostileReceiver`] answers every request.
#[derive(Debug, Clone, Copy)]
pub enum Hostile {
    /// 200, then a body of `bytes` sent as fast as the peer reads it, announced by
    /// `Content-Length` or sent in chunks.
    HugeBody { bytes: u64, chunked: bool },
    /// 200 with a long body announced, then one byte of it every `every`.
    DripBody { every: Duration },
    /// A status line, then header lines without end.
    EndlessHeaders,
    /// Reads the request, then never answers nor closes.
    Silent,
}

/// A receiver speaking raw HTTP/1.1 over TCP, so that it can misbehave in ways a well-made server
/// library would not allow; it counts the requests it got and the answer bytes it got out.
#[derive(Clone)]
pub struct HostileReceiver {
    pub url: String,
    requests: Arc<AtomicUsize>,
    sent: Arc<AtomicU64>,
}

/// What the huge bodies are cut from: a static block, so the receiver itself allocates nothing.
static BLOCK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

impl HostileReceiver {
    pub async fn start(hostile: Hostile) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/hooks",
            listener.local_addr().unwrap().port()
        );
        let receiver = Self {
            url,
            requests: Arc::default(),
            sent: Arc::default(),
        };
        let shared = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move { shared.answer(stream, hostile).await });
            }
        });
        receiver
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Answer bytes (body, or header lines) written to the peer so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Writes `bytes`, counting them; an error means the peer went away.
    async fn write(&self, stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
        stream.write_all(bytes).await?;
        self.sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    /// Answers one request as `hostile` says, until done or until the peer leaves.
    async fn answer(&self, mut stream: TcpStream, hostile: Hostile) -> std::io::Result<()> {
        read_request(&mut stream).await?;
        self.requests.fetch_add(1, Ordering::SeqCst);
        match hostile {
            Hostile::HugeBody { bytes, chunked } => {
                let head = if chunked {
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_owned()
                } else {
                    format!("HTTP/1.1 200 OK\r\ncontent-length: {bytes}\r\n\r\n")
                };
                stream.write_all(head.as_bytes()).await?;
                let mut left = bytes;
                while left > 0 {
                    let block = &BLOCK[..BLOCK.len().min(left as usize)];
                    if chunked {
                        stream
                            .write_all(format!("{:x}\r\n", block.len()).as_bytes())
                            .await?;
                    }
                    self.write(&mut stream, block).await?;
                    if chunked {
                        stream.write_all(b"\r\n").await?;
                    }
                    left -= block.len() as u64;
                }
                if chunked {
                    stream.write_all(b"0\r\n\r\n").await?;
                }
            }
            Hostile::DripBody { every } => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n")
                    .await?;
                for _ in 0..1_000_000 {
                    self.write(&mut stream, b"x").await?;
                    tokio::time::sleep(every).await;
                }
            }
            Hostile::Silent => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Hostile::EndlessHeaders => {
                stream.write_all(b"HTTP/1.1 200 OK\r\n").await?;
                let padding = "a".repeat(1000);
                // 64 MB at most, should the peer never give up.
                for line in 0..64_000 {
                    let header = format!("x-pad-{line}: {padding}\r\n");
                    self.write(&mut stream, header.as_bytes()).await?;
                }
            }
        }
        stream.shutdown().await
    }
}

/// Reads one request: its head, then as many body bytes as its `Content-Length` says.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        request.extend_from_slice(&buffer[..read]);
        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        if request.len() >= end + 4 + length {
            return Ok(());
        }
    }
}
