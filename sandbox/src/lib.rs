//! Freight's Graph sandbox: a local emulator of the Conversions API endpoint on loopback.
//!
//! No test can reach Meta, and nobody wants to try a CAPI client against a live pixel first.
//! The sandbox is a real HTTP/1.1 server on `127.0.0.1` that answers like
//! `POST /{version}/{pixel_id}/events`: Meta's success and error envelopes, token states and
//! `appsecret_proof`, whole-batch rejection, and scripted faults (throttling, 5xx, hangs,
//! resets, truncated bodies). It records every request — with tokens redacted — so tests
//! can assert what reached "Meta". Behaviour: `reference/sandbox-spec.md`.
//!
//! Its validation is written against the wire payload, independently of the client's own
//! validation, so that a client bug cannot hide behind a shared bug.
//!
//! ```no_run
//! use freight_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::start(SandboxConfig::with_token("TEST_TOKEN")).unwrap();
//! println!("POST {}/v25.0/123/events", sandbox.url());
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
mod graph;
pub mod http;

pub use config::{SandboxConfig, TokenConfig, TokenState};
pub use graph::{AcceptedEvent, Fault, FaultKind, Outcome, RecordedRequest, RecordedWarning};

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Starts sandboxes.
pub struct Sandbox;

impl Sandbox {
    /// Starts a sandbox on `127.0.0.1` with a free port.
    pub fn start(config: SandboxConfig) -> io::Result<SandboxHandle> {
        Sandbox::start_on(config, 0)
    }

    /// Starts a sandbox on `127.0.0.1:port` (`0` picks a free port).
    pub fn start_on(config: SandboxConfig, port: u16) -> io::Result<SandboxHandle> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(graph::State::new(config)),
            stopping: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("freight-sandbox".into())
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(SandboxHandle {
            addr,
            shared,
            thread: Some(thread),
        })
    }
}

struct Shared {
    state: Mutex<graph::State>,
    stopping: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, graph::State> {
        // A panicking connection thread must not take the sandbox down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let conn_shared = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name("freight-sandbox-conn".into())
            .spawn(move || {
                let s = Arc::clone(&conn_shared);
                http::serve_connection(stream, &conn_shared.stopping, |req| {
                    graph::handle(&s.state, req)
                });
            });
    }
}

/// A running sandbox. Dropping it stops the server.
pub struct SandboxHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl SandboxHandle {
    /// The base URL, e.g. `http://127.0.0.1:41234` (use it as the client's `graph_url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Every event of every accepted request, in order.
    pub fn accepted_events(&self) -> Vec<AcceptedEvent> {
        self.shared.lock().accepted_events()
    }

    /// The requests to one dataset (pixel id).
    pub fn requests_for(&self, dataset: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.node_id.as_deref() == Some(dataset))
            .collect()
    }

    /// Panics when `token` appears in the path or query of any recorded request.
    pub fn assert_no_token_in_urls(&self, token: &str) {
        for r in self.shared.lock().requests.iter() {
            assert!(
                !r.path.contains(token) && !r.query.contains(token),
                "request {} carried a token in its URL",
                r.seq
            );
        }
    }

    /// Queues a fault for the next matching request(s).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Clears the recordings, the fault queue and the dedup store.
    pub fn reset(&self) {
        self.shared.lock().reset();
    }

    /// Sets the sandbox clock (Unix seconds).
    pub fn set_now(&self, now: i64) {
        self.shared.lock().clock = Some(now);
    }

    /// The sandbox clock (Unix seconds).
    pub fn now(&self) -> i64 {
        self.shared.lock().now()
    }

    /// Adds or replaces a token.
    pub fn add_token(&self, token: &str, config: TokenConfig) {
        self.shared
            .lock()
            .config
            .tokens
            .insert(token.to_owned(), config);
    }

    /// Waits until at least `n` requests were recorded, or `timeout` passed; returns the
    /// number recorded.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.shared.lock().requests.len();
            if count >= n || Instant::now() >= deadline {
                return count;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops accepting connections and joins the accept thread. Open connections end when
    /// their clients close them; hanging ones end within 100 ms.
    pub fn shutdown(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
