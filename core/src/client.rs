//! The blocking HTTPS transport (feature `transport`): prepares events, sends them in batches
//! with retries, bisects batches Meta rejects, and accounts for every event in a [`Report`].
//!
//! One [`Client`] holds one ureq agent (keep-alive, rustls with webpki roots) and serves any
//! number of destinations from any number of threads: it is `Send + Sync`. Each request
//! carries only its own destination's token.
//!
//! ```no_run
//! use freight::client::{Client, ClientConfig};
//! use freight::destination::Destination;
//! let client = Client::new(ClientConfig::default()).unwrap();
//! let dest = Destination::new("1234567890", std::env::var("TOKEN").unwrap()).unwrap();
//! let events = vec![serde_json::json!({"event_name": "Lead", "event_time": 1_795_392_000,
//!     "action_source": "email", "user_data": {"em": "a@example.com"}})];
//! let report = client.send(&dest, &events);
//! for f in &report.failed {
//!     eprintln!("event {} failed: {}", f.index, f.error); // persist f.event to retry later
//! }
//! ```

use crate::batch::{RequestBody, RequestFields, MAX_EVENTS_PER_REQUEST};
use crate::destination::Destination;
use crate::input::Input;
use crate::model::UserValue;
use crate::normalize::NormalizeOptions;
use crate::prepare::{Outcome, PrepareOptions, PreparedEvent, Preparer};
use crate::report::{
    ConnectionStatus, ConnectionTest, Delivered, EventWarnings, Failure, Report, RequestLog,
};
use crate::request::{build_request, request_fields, ConfigError, GraphConfig, HttpRequest};
use crate::response::{classify_at, ErrorKind, GraphError, Success};
use crate::retry::RetryPolicy;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest response body read (Graph answers are small; this bounds a broken proxy).
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// The client's configuration (also its JSON form for the C ABI and Python).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// Base URL: `https://graph.facebook.com`, or `http://` to a loopback sandbox.
    pub graph_url: String,
    /// Graph API version, `v25.0`.
    pub api_version: String,
    /// The platform's `partner_agent`, sent on every request.
    pub partner_agent: Option<String>,
    /// How long to wait for Meta's answer once a request is sent, in milliseconds (Meta
    /// advises 1500: "the response time will be under 600 milliseconds"). Sending is not
    /// counted: a batch is about 1.2 MB, longer than 1.5 s to upload on a slow link. Connecting
    /// (DNS, TCP, TLS) has [`CONNECT_TIMEOUT`], an upload fails when no byte goes out for
    /// [`STALL_TIMEOUT`], and a whole request is cut at [`CALL_TIMEOUT`].
    pub timeout_ms: u64,
    /// Time budget of one batch, in milliseconds (at least `timeout_ms`): its retries, the
    /// last attempt, and the requests of its bisection all end within it; a retry is made only
    /// with `timeout_ms` left (what is left when it runs out fails, handed back unsent).
    pub deadline_ms: u64,
    /// Retries.
    pub retry: RetryPolicy,
    /// Events per request, at most 1000.
    pub batch_size: usize,
    /// Split a batch Meta rejects for one of its events (a 2804xxx error, or a request too
    /// large) to deliver the good events, at most [`MAX_SPLITS`] times per batch: past that
    /// (many bad events, or all of them, as when the clock is wrong), the rest fails whole.
    pub bisect: bool,
    /// Normalization options for plain-text customer information.
    pub normalize: NormalizeOptions,
}

impl Default for ClientConfig {
    fn default() -> Self {
        let graph = GraphConfig::default();
        ClientConfig {
            graph_url: graph.graph_url,
            api_version: graph.api_version,
            partner_agent: None,
            timeout_ms: 1500,
            deadline_ms: 15 * 60 * 1000,
            retry: RetryPolicy::default(),
            batch_size: MAX_EVENTS_PER_REQUEST,
            bisect: true,
            normalize: NormalizeOptions {
                now: None,
                ..NormalizeOptions::default()
            },
        }
    }
}

impl ClientConfig {
    fn graph(&self) -> GraphConfig {
        GraphConfig {
            graph_url: self.graph_url.clone(),
            api_version: self.api_version.clone(),
            partner_agent: self.partner_agent.clone(),
        }
    }

    /// Checks every setting.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.graph().check()?;
        if self.timeout_ms == 0 {
            return Err(ConfigError("timeout_ms must be positive".into()));
        }
        if !(1..=MAX_EVENTS_PER_REQUEST).contains(&self.batch_size) {
            return Err(ConfigError(format!(
                "batch_size must be 1 to {MAX_EVENTS_PER_REQUEST}"
            )));
        }
        self.retry.check().map_err(ConfigError)?;
        self.normalize.check().map_err(ConfigError)
    }
}

/// The longest time to connect to the Graph API (DNS, TCP and the TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An upload that sends nothing for this long fails (a slow one that goes on does not).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one request may take, from connecting to the answer's last byte.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The most splits of one batch when bisecting (each split sends two requests): enough to
/// single out a few bad events among 1000 (ten splits each), not 1999 requests when all are.
pub const MAX_SPLITS: usize = 32;

/// The Conversions API client. `Send + Sync`: share one across threads and destinations.
pub struct Client {
    config: ClientConfig,
    graph: GraphConfig,
    agent: ureq::Agent,
    rng: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Client {
    /// A client with `config` (checked).
    pub fn new(config: ClientConfig) -> Result<Client, ConfigError> {
        config.check()?;
        // The check allows plain http only to a loopback host (the scheme in any case).
        let plain_http = config
            .graph_url
            .split_once("://")
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("http"));
        let mut builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_write(Some(STALL_TIMEOUT))
            .timeout_recv_response(Some(Duration::from_millis(config.timeout_ms)))
            .timeout_recv_body(Some(Duration::from_millis(config.timeout_ms)))
            .timeout_per_call(Some(CALL_TIMEOUT))
            // A redirect could carry the Authorization header elsewhere: never follow.
            .max_redirects(0)
            .https_only(!plain_http);
        if plain_http {
            // A proxy from the environment (HTTP_PROXY, ALL_PROXY) would carry the token in
            // clear text off the machine: a loopback host is always reached directly. Over
            // TLS a proxy only tunnels, so https honours it.
            builder = builder.proxy(None);
        }
        let agent: ureq::Agent = builder.build().into();
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Ok(Client {
            graph: config.graph(),
            config,
            agent,
            rng: AtomicU64::new(seed),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Prepares `events` (CAPI JSON, plain-text customer data allowed) and sends them to
    /// `dest`, now.
    pub fn send<I: Input>(
        &self,
        dest: &Destination,
        events: impl IntoIterator<Item = I>,
    ) -> Report {
        self.send_at(dest, events, unix_now())
    }

    /// [`Client::send`] with the clock `now` (Unix seconds) for validation.
    pub fn send_at<I: Input>(
        &self,
        dest: &Destination,
        events: impl IntoIterator<Item = I>,
        now: i64,
    ) -> Report {
        self.send_until(dest, events, now, None)
    }

    /// [`Client::send_at`] that `cancel`, once set, stops between requests
    /// ([`Session::with_cancel`]): the events not sent fail with kind `cancelled`.
    pub fn send_until<I: Input>(
        &self,
        dest: &Destination,
        events: impl IntoIterator<Item = I>,
        now: i64,
        cancel: Option<&AtomicBool>,
    ) -> Report {
        let preparer = self.preparer(now);
        let mut report = Report::default();
        let mut ready = Vec::new();
        let mut input = 0;
        for (index, event) in events.into_iter().enumerate() {
            input += 1;
            match preparer.process(event, index) {
                Outcome::Ready(e) => ready.push(*e),
                Outcome::Rejected(r) => report.rejected.push(r),
                Outcome::Skipped(s) => report.skipped.push(s),
            }
        }
        self.finish_send(dest, &ready, report, input, cancel)
    }

    /// The preparer [`Client::send_at`] uses: the client's normalization options, the clock
    /// `now`. For callers that prepare events themselves, then send with
    /// [`Client::send_prepared`] (the Python binding prepares while holding the GIL and
    /// sends without it).
    pub fn preparer(&self, now: i64) -> Preparer {
        Preparer::new(
            &PrepareOptions {
                normalize: self.config.normalize.clone(),
            },
            now,
        )
    }

    /// Sends events prepared by [`Client::preparer`]. `report` already holds the rejected
    /// and skipped events of the same input, of `input` events in all; the returned report
    /// accounts for every one of them.
    pub fn send_prepared(
        &self,
        dest: &Destination,
        ready: &[PreparedEvent],
        report: Report,
        input: usize,
    ) -> Report {
        self.finish_send(dest, ready, report, input, None)
    }

    /// Sends `ready` in one session (stopped by `cancel`, if given) and completes `report`.
    fn finish_send(
        &self,
        dest: &Destination,
        ready: &[PreparedEvent],
        mut report: Report,
        input: usize,
        cancel: Option<&AtomicBool>,
    ) -> Report {
        report.pixel_id = dest.pixel_id().to_owned();
        let mut session = self.session(dest);
        if let Some(flag) = cancel {
            session = session.with_cancel(flag);
        }
        report.merge(session.send_prepared(ready));
        report.update_counts(input);
        report
    }

    /// A sending session for one destination: it remembers an authentication or
    /// configuration failure, or a batch whose retries were spent, so that later batches fail
    /// fast (handed back unsent) instead of being sent. Start a new session to try again.
    pub fn session<'a>(&'a self, dest: &'a Destination) -> Session<'a> {
        Session {
            client: self,
            dest,
            fields: RequestFields::default(),
            halted: None,
            splits_left: MAX_SPLITS,
            cancel: None,
        }
    }

    /// Sends one test event (with the destination's `test_event_code`, if any) and says
    /// whether the connection works.
    pub fn test_connection(&self, dest: &Destination) -> ConnectionTest {
        let now = unix_now();
        let event = crate::model::ServerEvent {
            event_id: Some(format!("freight-connection-test-{now}")),
            user_data: crate::model::UserData {
                external_id: [UserValue::sha256("freight-connection-test")]
                    .into_iter()
                    .collect(),
                ..Default::default()
            },
            ..crate::model::ServerEvent::new(
                "FreightConnectionTest",
                now,
                crate::model::ActionSource::Other,
            )
        };
        let fields = request_fields(&self.graph, dest, &RequestFields::default());
        let mut body = RequestBody::new(&fields);
        body.push(&event);
        // The URL was checked with the client's configuration: this is for form's sake.
        let exchanged = match build_request(&self.graph, dest, &mut body) {
            Ok(req) => self.exchange(&req, CALL_TIMEOUT),
            Err(e) => Err(GraphError::config(e.to_string())),
        };
        match exchanged {
            Ok(s) => ConnectionTest {
                status: ConnectionStatus::Ok,
                error: None,
                fbtrace_id: s.fbtrace_id,
            },
            Err(e) => ConnectionTest {
                status: ConnectionStatus::from_error(&e),
                fbtrace_id: e.fbtrace_id.clone(),
                error: Some(e),
            },
        }
    }

    /// One HTTP exchange, classified.
    // An error is an ordinary outcome here and is reported whole; boxing buys nothing.
    #[allow(clippy::result_large_err)]
    fn exchange(&self, req: &HttpRequest, within: Duration) -> Result<Success, GraphError> {
        let mut builder = self
            .agent
            .post(&req.url)
            .config()
            .timeout_per_call(Some(within.min(CALL_TIMEOUT)))
            .build();
        for (k, v) in &req.headers {
            builder = builder.header(*k, v.as_str());
        }
        let mut resp = builder.send(&req.body[..]).map_err(describe)?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| {
                let mut g = describe(e);
                g.http_status = Some(status);
                g
            })?;
        // Meta's text may quote the token it refuses: never pass it on.
        let token = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.strip_prefix("Bearer "))
            .unwrap_or("");
        match classify_at(status, &headers, &body, Some(unix_now())) {
            Ok(mut ok) => {
                ok.redact(token);
                Ok(ok)
            }
            Err(mut e) => {
                e.redact(token);
                Err(e)
            }
        }
    }

    fn random(&self) -> u64 {
        // splitmix64 over an atomic counter: cheap, thread-safe jitter.
        let mut z = self
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A network failure described without echoing anything sent.
fn describe(e: ureq::Error) -> GraphError {
    let msg = match &e {
        ureq::Error::Timeout(t) => format!("timed out ({t:?})"),
        ureq::Error::Io(io) => format!("connection error: {}", io.kind()),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        ureq::Error::BodyExceedsLimit(n) => format!("response larger than {n} bytes"),
        ureq::Error::Protocol(p) => format!("HTTP protocol error: {p}"),
        other => format!("transport error: {other}"),
    };
    GraphError::network(msg)
}

/// Sends prepared events to one destination; see [`Client::session`].
pub struct Session<'a> {
    client: &'a Client,
    dest: &'a Destination,
    fields: RequestFields,
    halted: Option<GraphError>,
    /// Splits left to the batch being delivered ([`MAX_SPLITS`]).
    splits_left: usize,
    /// Set by the caller to stop the send ([`Session::with_cancel`]).
    cancel: Option<&'a AtomicBool>,
}

/// The longest a retry wait goes without looking at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(50);

impl<'a> Session<'a> {
    /// Stops the send once `flag` is set (by a signal handler, another thread): no request
    /// starts after that, a retry wait ends at once (its batch fails with the error that
    /// caused the wait), and the events not sent yet fail with kind `cancelled` and 0 attempts.
    /// The request in flight, if any, is answered first: its outcome is known.
    pub fn with_cancel(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Sleeps `d`, or less when the send is cancelled meanwhile; false then.
    fn wait(&self, d: Duration) -> bool {
        let Some(flag) = self.cancel else {
            std::thread::sleep(d);
            return true;
        };
        let end = Instant::now() + d;
        loop {
            if flag.load(Ordering::SeqCst) {
                return false;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(CANCEL_POLL));
        }
    }

    /// Sets the top-level `namespace_id`, `upload_id`, `upload_tag` and `upload_source`
    /// (`test_event_code` comes from the destination when it has one, `partner_agent` from
    /// these fields, else from the client). Check caller-given fields with
    /// [`RequestFields::check`] first.
    pub fn with_fields(mut self, fields: RequestFields) -> Self {
        self.fields = fields;
        self
    }

    /// Sends `events` in batches of the configured size. The report uses the events' own
    /// indexes; its `counts.input` is `events.len()`.
    pub fn send_prepared(&mut self, events: &[PreparedEvent]) -> Report {
        let mut report = Report {
            pixel_id: self.dest.pixel_id().to_owned(),
            ..Report::default()
        };
        for e in events {
            if !e.warnings.is_empty() {
                report.warnings.push(EventWarnings {
                    index: e.index,
                    warnings: e.warnings.clone(),
                });
            }
        }
        for batch in events.chunks(self.client.config.batch_size) {
            self.splits_left = MAX_SPLITS;
            // At least one attempt's time, whatever deadline_ms says.
            let config = &self.client.config;
            let budget = config.deadline_ms.max(config.timeout_ms);
            let deadline = Instant::now() + Duration::from_millis(budget);
            self.deliver(batch, deadline, true, &mut report);
        }
        report.update_counts(events.len());
        report
    }

    fn fail_all(events: &[PreparedEvent], error: &GraphError, attempts: u32, report: &mut Report) {
        report.failed.extend(events.iter().map(|e| Failure {
            index: e.index,
            error: error.clone(),
            attempts,
            event: e.event.clone(),
        }));
    }

    /// Sends `events` (a batch, or a bisected half when `whole` is false) by `deadline`.
    fn deliver(
        &mut self,
        events: &[PreparedEvent],
        deadline: Instant,
        whole: bool,
        report: &mut Report,
    ) {
        if events.is_empty() {
            return;
        }
        if self.cancelled() {
            Self::fail_all(events, &GraphError::cancelled(), 0, report);
            return;
        }
        if let Some(err) = &self.halted {
            Self::fail_all(events, err, 0, report);
            return;
        }
        let timeout = Duration::from_millis(self.client.config.timeout_ms);
        if !whole && Instant::now() + timeout > deadline {
            // A bisected half whose batch's time is spent: handed back unsent (a batch always
            // gets its first attempt, even when `timeout_ms` is its whole budget).
            let err = GraphError::network("the batch's time budget (deadline_ms) ran out");
            Self::fail_all(events, &err, 0, report);
            return;
        }
        let client = self.client;
        let fields = request_fields(&client.graph, self.dest, &self.fields);
        let mut body = RequestBody::new(&fields);
        for e in events {
            body.push(&e.event);
        }
        let req = match build_request(&client.graph, self.dest, &mut body) {
            Ok(req) => req,
            Err(e) => {
                // Checked when the client was made: cannot happen, and is not sent if it does.
                Self::fail_all(events, &GraphError::config(e.to_string()), 0, report);
                return;
            }
        };
        drop(body);
        let started = Instant::now();
        let mut attempts = 0;
        let err = loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let result = client.exchange(&req, left);
            match result {
                Ok(ok) => {
                    let log = RequestLog {
                        events: events.len(),
                        attempts,
                        http_status: Some(ok.http_status),
                        events_received: ok.events_received,
                        fbtrace_id: ok.fbtrace_id.clone(),
                        messages: ok.messages.clone(),
                        error: None,
                    };
                    if ok.events_received == Some(events.len() as u64) {
                        report.requests.push(log);
                        report.delivered.extend(events.iter().map(|e| Delivered {
                            index: e.index,
                            event_id: e.event.event_id.clone(),
                        }));
                        return;
                    }
                    let err = GraphError {
                        kind: ErrorKind::CountMismatch,
                        http_status: Some(ok.http_status),
                        message: Some(format!(
                            "Meta acknowledged {} of {} events",
                            ok.events_received
                                .map_or("an unknown number".to_owned(), |n| n.to_string()),
                            events.len()
                        )),
                        fbtrace_id: ok.fbtrace_id,
                        ..GraphError::network("")
                    };
                    report.requests.push(RequestLog {
                        error: Some(err.clone()),
                        ..log
                    });
                    Self::fail_all(events, &err, attempts, report);
                    return;
                }
                Err(err) => {
                    let delay = client.config.retry.next_delay(
                        err.kind,
                        attempts,
                        started.elapsed(),
                        err.retry_after,
                        client.random(),
                    );
                    // Another attempt only with time for Meta to answer it; else this error
                    // (a throttle stays a throttle, not a timeout of a last, starved try).
                    match delay {
                        Some(d) if Instant::now() + d + timeout <= deadline => {
                            if !self.wait(d) {
                                break err; // cancelled: no further attempt
                            }
                        }
                        _ => break err,
                    }
                }
            }
        };
        report.requests.push(RequestLog {
            events: events.len(),
            attempts,
            http_status: err.http_status,
            events_received: None,
            fbtrace_id: err.fbtrace_id.clone(),
            messages: Vec::new(),
            error: Some(err.clone()),
        });
        match err.kind {
            ErrorKind::Payload
                if events.len() > 1
                    && client.config.bisect
                    && err.concerns_events()
                    && self.splits_left > 0 =>
            {
                // Meta rejects a whole batch for one bad event and does not say which:
                // halve until the bad ones stand alone, delivering the rest.
                self.splits_left -= 1;
                let (a, b) = events.split_at(events.len() / 2);
                self.deliver(a, deadline, false, report);
                self.deliver(b, deadline, false, report);
            }
            // The destination cannot take events (credentials, permissions, configuration),
            // or its retries are spent (an outage, a rate limit, or a wait Meta asked for
            // beyond the retry budget): the later batches of this send would meet the same,
            // so they fail at once, handed back unsent, instead of hammering Meta.
            ErrorKind::InvalidToken
            | ErrorKind::NoPermission
            | ErrorKind::PixelNotFound
            | ErrorKind::Config
            | ErrorKind::Transient
            | ErrorKind::Throttled
            | ErrorKind::Network
            | ErrorKind::Cancelled => {
                self.halted = Some(err.clone());
                Self::fail_all(events, &err, attempts, report);
            }
            ErrorKind::Payload | ErrorKind::CountMismatch => {
                Self::fail_all(events, &err, attempts, report)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Client>();
    }

    #[test]
    fn bad_configs_are_refused() {
        for c in [
            ClientConfig {
                graph_url: "http://graph.facebook.com".into(),
                ..Default::default()
            },
            ClientConfig {
                batch_size: 1001,
                ..Default::default()
            },
            ClientConfig {
                api_version: "25".into(),
                ..Default::default()
            },
        ] {
            assert!(Client::new(c).is_err());
        }
        let json =
            r#"{"graph_url":"http://127.0.0.1:9","timeout_ms":300,"retry":{"max_attempts":2}}"#;
        let c: ClientConfig = serde_json::from_str(json).unwrap();
        assert!(Client::new(c).is_ok());
        assert!(serde_json::from_str::<ClientConfig>(r#"{"graph_ur":"x"}"#).is_err());
    }
}
