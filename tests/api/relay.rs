//! A TCP relay between a server under test and Postgres, to cut, stall or drop a database link on
//! command without touching the shared Postgres.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::helpers::{base_options, TestDatabase};

/// The simple-protocol `COMMIT` query as sqlx sends it: `Q`, length 11, `COMMIT\0`.
const COMMIT: &[u8] = b"Q\x00\x00\x00\x0bCOMMIT\x00";

/// The head of `ReadyForQuery` with the session idle (`Z`, length 5, `I`): Postgres ends every
/// exchange outside a transaction with it, so each one is a round trip completed.
const READY_IDLE: &[u8] = b"Z\x00\x00\x00\x05I";

/// What happens at the `COMMIT` of a transaction that carried the armed marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Postgres gets the COMMIT and commits; its answer is lost and the link reset.
    LoseTheAnswer,
    /// The link is reset before the COMMIT reaches Postgres: the transaction rolls back.
    Cut,
    /// The COMMIT is held and the link carries nothing more, in either direction, while its
    /// sockets stay open: a stalled network path.
    Stall,
}

struct Armed {
    marker: Vec<u8>,
    fault: Fault,
}

#[derive(Default)]
struct Shared {
    up: AtomicBool,
    links: Mutex<Vec<AbortHandle>>,
    armed: Mutex<Option<Armed>>,
    fired: Notify,
    round_trips: AtomicUsize,
}

pub struct DatabaseRelay {
    pub port: u16,
    shared: Arc<Shared>,
}

impl DatabaseRelay {
    pub async fn start() -> Self {
        let options = base_options();
        let upstream = format!("{}:{}", options.get_host(), options.get_port());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        shared.up.store(true, Ordering::SeqCst);
        let accepting = shared.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !accepting.up.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let upstream = upstream.clone();
                let link_shared = accepting.clone();
                let link = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(upstream).await {
                        relay_link(inbound, outbound, &link_shared).await;
                    }
                });
                accepting.links.lock().unwrap().push(link.abort_handle());
            }
        });
        Self { port, shared }
    }

    /// The database URL of `database` through this relay.
    pub fn url(&self, database: &TestDatabase) -> String {
        let options = base_options();
        format!(
            "postgres://{}@127.0.0.1:{}/{}",
            options.get_username(),
            self.port,
            database.name
        )
    }

    /// Every link dropped, new ones refused.
    pub fn cut(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        for link in self.shared.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
    }

    /// Applies `fault` once, to the first transaction whose traffic carries `marker` (a value
    /// the test sends, e.g. a name: bound parameters travel as text) when it commits.
    pub fn arm(&self, marker: &str, fault: Fault) {
        *self.shared.armed.lock().unwrap() = Some(Armed {
            marker: marker.as_bytes().to_vec(),
            fault,
        });
    }

    /// The round trips completed outside a transaction on every link so far (see [`READY_IDLE`]).
    pub fn round_trips(&self) -> usize {
        self.shared.round_trips.load(Ordering::SeqCst)
    }

    /// Waits until the armed fault has happened (at most 20 s).
    pub async fn fired(&self) {
        tokio::time::timeout(Duration::from_secs(20), self.shared.fired.notified())
            .await
            .expect("the armed fault happened");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Copies both ways until either side closes, applying the armed fault when it is due.
async fn relay_link(mut client: TcpStream, mut server: TcpStream, shared: &Shared) {
    let mut from_client = vec![0_u8; 64 * 1024];
    let mut from_server = vec![0_u8; 64 * 1024];
    let mut marked = false;
    // The end of the last chunk from Postgres, so that a `ReadyForQuery` split between two
    // chunks is counted.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        tokio::select! {
            read = client.read(&mut from_client) => {
                let Ok(n @ 1..) = read else { return };
                let chunk = &from_client[..n];
                let fault = {
                    let mut armed = shared.armed.lock().unwrap();
                    marked |= armed.as_ref().is_some_and(|a| contains(chunk, &a.marker));
                    if marked && contains(chunk, COMMIT) {
                        armed.take().map(|a| a.fault)
                    } else {
                        None
                    }
                };
                match fault {
                    None => {
                        if server.write_all(chunk).await.is_err() {
                            return;
                        }
                    }
                    Some(Fault::LoseTheAnswer) => {
                        // Forward the COMMIT and wait for Postgres to answer it, so that it has
                        // committed; then reset the link without passing the answer on.
                        let _ = server.write_all(chunk).await;
                        let _ = server.read(&mut from_server).await;
                        shared.fired.notify_one();
                        return;
                    }
                    Some(Fault::Cut) => {
                        shared.fired.notify_one();
                        return;
                    }
                    Some(Fault::Stall) => {
                        shared.fired.notify_one();
                        // Hold both sockets open and carry nothing, until the relay is dropped.
                        std::future::pending::<()>().await;
                    }
                }
            }
            read = server.read(&mut from_server) => {
                let Ok(n @ 1..) = read else { return };
                tail.extend_from_slice(&from_server[..n]);
                let ready = tail.windows(READY_IDLE.len()).filter(|w| *w == READY_IDLE).count();
                shared.round_trips.fetch_add(ready, Ordering::SeqCst);
                let keep = tail.len().min(READY_IDLE.len() - 1);
                tail.drain(..tail.len() - keep);
                if client.write_all(&from_server[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl Drop for DatabaseRelay {
    fn drop(&mut self) {
        for link in self.shared.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}
