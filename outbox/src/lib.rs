//! Freight's outbox: a durable local queue between a page request and Meta.
//!
//! A storefront must not wait for Meta (a plugin that sent synchronously added 0.5–6 s to
//! every page), yet no event may be lost and errors must stay visible. [`Outbox::enqueue`]
//! validates and prepares events (rejections come back at once) and stores the wire-ready
//! events in SQLite (WAL); a worker calls [`Outbox::flush`], which sends due events per
//! destination in batches of up to 1000 with the transport's retries, and records every
//! outcome.
//!
//! - **Tokens are not stored**: events reference a caller-chosen destination key, resolved
//!   to a [`Destination`] at flush time (the platform keeps tokens in its own secret store).
//! - **Idempotent**: the same (destination, event_name, event_id) is stored once; an event
//!   without `event_id` is given one derived from its content. Delivery is at least once; a
//!   resend keeps its `event_id`, so Meta deduplicates it.
//! - **Lifecycle**: `pending → delivered | failed | expired` (not delivered before Meta's
//!   window closes: 7 days, 62 for `physical_store`, minus a margin). Failed and expired
//!   events stay inspectable and can be re-queued; delivered ones are deleted by the flush
//!   after a retention period ([`FlushLimits::retention_secs`], 7 days).
//! - **Per-destination circuit breaker**: a token, permission or configuration error pauses
//!   that destination only (with the reason) until [`Outbox::resume`] or a pause time;
//!   throttling delays only the throttled destination.
//! - **Concurrency**: several processes may enqueue into one file while others flush: rows
//!   are claimed with a lease, so two flushers never send the same row at once.
//!
//! Storage sits behind the [`Store`] trait; `docs/outbox.md` plans a PostgreSQL store.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod sqlite;

pub use sqlite::SqliteStore;

use freight::client::Client;
use freight::destination::Destination;
use freight::model::{ActionSource, ServerEvent};
use freight::prepare::{Outcome, PrepareOptions, PreparedEvent, Preparer, Rejection, Skipped};
use freight::response::{ErrorKind, GraphError};
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// An outbox error: storage or arguments (never containing a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxError(pub String);

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutboxError {}

impl From<rusqlite::Error> for OutboxError {
    fn from(e: rusqlite::Error) -> Self {
        OutboxError(format!("outbox storage: {e}"))
    }
}

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Storage id.
    pub id: i64,
    /// The destination key.
    pub dest_key: String,
    /// The wire event.
    pub event: ServerEvent,
    /// Send attempts so far.
    pub attempts: u32,
}

/// What [`Store::claim`] took.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The claimed rows, oldest first.
    pub rows: Vec<Row>,
    /// Due rows whose stored event could not be read: marked failed with the reason.
    pub unreadable: usize,
}

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting to be sent.
    Pending,
    /// Meta acknowledged it.
    Delivered,
    /// Refused by Meta (or retried to exhaustion).
    Failed,
    /// Not delivered before Meta's window closed.
    Expired,
}

impl State {
    /// The state of a stored name (`pending`, `delivered`, `failed`, `expired`).
    pub fn parse(name: &str) -> Option<State> {
        Some(match name {
            "pending" => State::Pending,
            "delivered" => State::Delivered,
            "failed" => State::Failed,
            "expired" => State::Expired,
            _ => return None,
        })
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Delivered => "delivered",
            State::Failed => "failed",
            State::Expired => "expired",
        }
    }
}

/// Counts per state, and the paused destinations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Waiting.
    pub pending: u64,
    /// Delivered (until pruned).
    pub delivered: u64,
    /// Failed.
    pub failed: u64,
    /// Expired.
    pub expired: u64,
    /// Destinations paused by the circuit breaker: (key, reason, until).
    pub paused: Vec<(String, String, i64)>,
}

/// The storage an outbox needs. [`SqliteStore`] is the embedded default.
pub trait Store {
    /// Stores prepared events of `dest_key`; returns how many were new (duplicates of a
    /// stored (destination, event_name, event_id) are kept once).
    fn insert(
        &self,
        dest_key: &str,
        events: &[(ServerEvent, i64)],
        now: i64,
    ) -> Result<usize, OutboxError>;
    /// Marks pending events past their window as expired; returns how many.
    fn expire(&self, now: i64) -> Result<usize, OutboxError>;
    /// Destinations with due, unleased pending events that are not paused or throttled.
    fn due_destinations(&self, now: i64) -> Result<Vec<String>, OutboxError>;
    /// Claims up to `limit` due rows of a destination for `lease_secs` (atomic). A row whose
    /// stored event cannot be read is marked failed (with the reason) and not returned.
    fn claim(
        &self,
        dest_key: &str,
        limit: usize,
        now: i64,
        lease_secs: i64,
        owner: &str,
    ) -> Result<Claimed, OutboxError>;
    /// Records delivered rows. Like the three below, it changes only rows still claimed by
    /// `owner`: a flusher whose lease ran out (and whose rows another flusher took) must not
    /// overwrite what the other recorded.
    fn delivered(&self, ids: &[i64], now: i64, owner: &str) -> Result<(), OutboxError>;
    /// Records failed rows with the error.
    fn failed(&self, ids: &[i64], error: &str, now: i64, owner: &str) -> Result<(), OutboxError>;
    /// Puts claimed rows back to pending, due at `at`.
    fn release(&self, ids: &[i64], at: i64, owner: &str) -> Result<(), OutboxError>;
    /// Puts claimed rows that were never sent back to pending, due at `at`, their claim not
    /// counted as an attempt.
    fn unclaim(&self, ids: &[i64], at: i64, owner: &str) -> Result<(), OutboxError>;
    /// Pauses a destination until `until` with a reason (circuit breaker).
    fn pause(&self, dest_key: &str, reason: &str, until: i64) -> Result<(), OutboxError>;
    /// Delays a throttled destination until `until`.
    fn throttle(&self, dest_key: &str, until: i64) -> Result<(), OutboxError>;
    /// Lifts a pause or a throttle; false when the destination had neither.
    fn resume(&self, dest_key: &str) -> Result<bool, OutboxError>;
    /// Re-queues failed (and, with `expired`, expired) events of a destination or all;
    /// returns how many.
    fn requeue(
        &self,
        dest_key: Option<&str>,
        expired: bool,
        now: i64,
    ) -> Result<usize, OutboxError>;
    /// Deletes delivered events older than `before`; returns how many.
    fn prune(&self, before: i64) -> Result<usize, OutboxError>;
    /// Counts.
    fn stats(&self, now: i64) -> Result<Stats, OutboxError>;
    /// Stored events in `state` (oldest first, at most `limit`), for inspection.
    fn list(&self, state: State, limit: usize) -> Result<Vec<StoredEvent>, OutboxError>;
}

/// A stored event, for inspection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Storage id.
    pub id: i64,
    /// The destination key.
    pub dest_key: String,
    /// Its state.
    pub state: State,
    /// Send attempts.
    pub attempts: u32,
    /// Why it failed (kind, code, fbtrace_id), if it did.
    pub last_error: Option<String>,
    /// The wire event; `None` when the stored event cannot be read (`last_error` says why).
    pub event: Option<ServerEvent>,
}

/// What [`Outbox::enqueue`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnqueueReport {
    /// Events stored now.
    pub stored: usize,
    /// Events already stored before (same destination, event_name and event_id).
    pub duplicates: usize,
    /// Events rejected by validation, never stored.
    pub rejected: Vec<Rejection>,
    /// Events skipped (consent denied), never stored.
    pub skipped: Vec<Skipped>,
    /// Warnings of stored events (by their index in the call), as `prepare` gives them.
    pub warnings: Vec<freight::report::EventWarnings>,
}

/// Limits of one [`Outbox::flush`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushLimits {
    /// Most requests in this flush.
    pub max_requests: usize,
    /// Events per request (≤ 1000).
    pub batch_size: usize,
    /// How long a claim holds, in seconds: a crashed flusher's rows return after it. 0 (the
    /// default) is the client's time budget of one batch (`deadline_ms`, which its retries,
    /// its last attempt and its bisection end within) plus a minute, so that a live flusher's
    /// rows are never taken while it still sends them. A shorter lease brings rows back
    /// sooner after a crash; a request that outlives it may then be sent again by another
    /// flusher (Meta deduplicates it by `event_id`), and only the flusher holding the claim
    /// records the outcome.
    pub lease_secs: i64,
    /// How long an auth/config error pauses a destination, in seconds.
    pub pause_secs: i64,
    /// Delay before retrying events after a transient failure, in seconds.
    pub retry_after_secs: i64,
    /// Attempts after which a transient failure becomes final.
    pub max_attempts: u32,
    /// Delivered events older than this (seconds since delivery) are deleted by the flush.
    pub retention_secs: i64,
}

impl Default for FlushLimits {
    fn default() -> Self {
        FlushLimits {
            max_requests: 100,
            batch_size: 1000,
            lease_secs: 0,
            pause_secs: 3600,
            retry_after_secs: 60,
            max_attempts: 20,
            retention_secs: 7 * 86_400,
        }
    }
}

/// What one flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlushReport {
    /// Requests sent.
    pub requests: usize,
    /// Events delivered.
    pub delivered: usize,
    /// Events failed for good.
    pub failed: usize,
    /// Events put back for a later flush.
    pub retried: usize,
    /// Events expired before sending.
    pub expired: usize,
    /// Delivered events deleted, older than the retention.
    pub pruned: usize,
    /// Destinations paused in this flush, with the reason.
    pub paused: Vec<(String, String)>,
    /// Destinations with no credentials from the resolver (events kept).
    pub unresolved: Vec<String>,
    /// Of those, the ones whose credentials were given but cannot be used, with the reason
    /// (never the token): see [`Outbox::flush_table`].
    pub invalid: Vec<(String, String)>,
    /// The storage error that stopped the flush early, if one did (the counts above are what
    /// it did before; rows it held come back after their lease).
    pub stopped: Option<String>,
    /// True when the caller's cancel flag was set before the flush ended: no request started
    /// after it, a retry wait it found ended there, and the events claimed but not sent are
    /// pending again, due at once, with no attempt counted (they are in `retried`).
    pub interrupted: bool,
}

/// Seconds before Meta's window closes that a re-queued expired event is given up for good:
/// time for a flush and its retries to end before Meta refuses the event.
pub const REQUEUE_MARGIN_SECS: i64 = 600;

/// The longest a throttled destination waits, in seconds (a day), whatever Meta asks.
pub const MAX_THROTTLE_SECS: i64 = 86_400;

/// Seconds before Meta's window closes that an event is given up (the margin).
pub const EXPIRY_MARGIN_SECS: i64 = 3600;

/// The outbox.
pub struct Outbox<S: Store = SqliteStore> {
    store: S,
    prepare: PrepareOptions,
}

impl Outbox<SqliteStore> {
    /// Opens (creating it, owner-only) the SQLite outbox at `path`.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, OutboxError> {
        Ok(Outbox::with_store(SqliteStore::open(path)?))
    }
}

impl<S: Store> Outbox<S> {
    /// An outbox over any store.
    pub fn with_store(store: S) -> Self {
        Outbox {
            store,
            prepare: PrepareOptions::default(),
        }
    }

    /// Sets the normalization options used by `enqueue`.
    pub fn with_prepare_options(mut self, options: PrepareOptions) -> Self {
        self.prepare = options;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Validates, prepares and stores `events` for the destination `dest_key` (a key the
    /// resolver of [`Outbox::flush`] knows). Rejected and skipped events come back at once.
    pub fn enqueue(
        &self,
        dest_key: &str,
        events: &[Value],
        now: i64,
    ) -> Result<EnqueueReport, OutboxError> {
        if dest_key.is_empty() || dest_key.len() > 256 {
            return Err(OutboxError(
                "the destination key must be 1 to 256 characters".into(),
            ));
        }
        let preparer = Preparer::new(&self.prepare, now);
        let mut report = EnqueueReport::default();
        let mut ready = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            match preparer.process(e, i) {
                Outcome::Ready(mut p) => {
                    let expires = expires_at(&p.event);
                    // A flush would expire it unsent: the caller learns it now, while it can
                    // still send the event itself.
                    if expires <= now {
                        report.rejected.push(Rejection {
                            index: i,
                            errors: vec![freight::validate::Problem::new(
                                freight::ProblemKind::EventTimeTooOld,
                                format!("data[{i}].event_time"),
                                format!(
                                    "too old for the outbox: Meta's window for it closes in \
                                     less than {} minutes, the margin the outbox keeps for its \
                                     retries (send it directly instead)",
                                    EXPIRY_MARGIN_SECS / 60
                                ),
                            )],
                            warnings: std::mem::take(&mut p.warnings),
                        });
                        continue;
                    }
                    if !p.warnings.is_empty() {
                        report.warnings.push(freight::report::EventWarnings {
                            index: i,
                            warnings: std::mem::take(&mut p.warnings),
                        });
                    }
                    if p.event.event_id.is_none() {
                        p.event.event_id = Some(content_id(&p.event)?);
                    }
                    ready.push((p.event, expires));
                }
                Outcome::Rejected(r) => report.rejected.push(r),
                Outcome::Skipped(s) => report.skipped.push(s),
            }
        }
        report.stored = self.store.insert(dest_key, &ready, now)?;
        report.duplicates = ready.len() - report.stored;
        Ok(report)
    }

    /// Sends due events with `client`, resolving each destination key with `resolve` (None:
    /// the events stay pending). Records every outcome; see [`FlushLimits`].
    ///
    /// `cancel`, once set (by a signal handler, another thread), stops the flush between
    /// requests: a retry wait ends, no request starts, the one in flight is answered and
    /// recorded, and the report says `interrupted` ([`Session::with_cancel`]).
    ///
    /// [`Session::with_cancel`]: freight::client::Session::with_cancel
    pub fn flush(
        &self,
        client: &Client,
        resolve: impl Fn(&str) -> Option<Destination>,
        now: i64,
        limits: FlushLimits,
        owner: &str,
        cancel: Option<&AtomicBool>,
    ) -> Result<FlushReport, OutboxError> {
        if limits.lease_secs < 0
            || limits.pause_secs < 0
            || limits.retry_after_secs < 0
            || limits.retention_secs < 0
        {
            return Err(OutboxError(
                "lease_secs, pause_secs, retry_after_secs and retention_secs must not be negative"
                    .into(),
            ));
        }
        let lease_secs = match limits.lease_secs {
            0 => i64::try_from(client.config().deadline_ms / 1000)
                .unwrap_or(i64::MAX / 4)
                .saturating_add(60),
            secs => secs,
        };
        // This flush's own name in the leases: two flushes given the same `owner` (two
        // threads, or a restarted worker) must not take each other's claims for their own.
        let owner = &flush_owner(owner);
        let started = std::time::Instant::now();
        // Leases start when the rows are claimed: a long flush claims its last rows well
        // after `now`.
        let claim_time =
            || now.saturating_add(i64::try_from(started.elapsed().as_secs()).unwrap_or(0));
        let mut report = FlushReport {
            expired: self.store.expire(now)?,
            pruned: self
                .store
                .prune(now.saturating_sub(limits.retention_secs))?,
            ..FlushReport::default()
        };
        let keys = self.store.due_destinations(now)?;
        let cancelled = || cancel.is_some_and(|c| c.load(Ordering::SeqCst));
        // A storage error (the disk full, the file locked past the busy timeout) stops the
        // flush: what it did so far is still reported, with the error.
        let run = || -> Result<(), OutboxError> {
            'destinations: for key in keys {
                let Some(dest) = resolve(&key) else {
                    report.unresolved.push(key);
                    continue;
                };
                let mut session = client.session(&dest);
                if let Some(flag) = cancel {
                    session = session.with_cancel(flag);
                }
                while report.requests < limits.max_requests {
                    if cancelled() {
                        report.interrupted = true;
                        return Ok(());
                    }
                    // No more than one request's worth: every claimed row then goes out in this
                    // call (bisection aside), and is charged an attempt for it.
                    let claimed = self.store.claim(
                        &key,
                        limits
                            .batch_size
                            .min(client.config().batch_size)
                            .clamp(1, 1000),
                        claim_time(),
                        lease_secs,
                        owner,
                    )?;
                    report.failed += claimed.unreadable;
                    let rows = claimed.rows;
                    if rows.is_empty() {
                        if claimed.unreadable > 0 {
                            continue; // the due rows behind them
                        }
                        break;
                    }
                    let prepared: Vec<PreparedEvent> = rows
                        .iter()
                        .enumerate()
                        .map(|(index, r)| PreparedEvent {
                            index,
                            event: r.event.clone(),
                            warnings: Vec::new(),
                        })
                        .collect();
                    let sent = session.send_prepared(&prepared);
                    report.requests += sent.requests.len();
                    let ids = |idx: &mut dyn Iterator<Item = usize>| -> Vec<i64> {
                        idx.map(|i| rows[i].id).collect()
                    };
                    let delivered = ids(&mut sent.delivered.iter().map(|d| d.index));
                    self.store.delivered(&delivered, now, owner)?;
                    report.delivered += delivered.len();
                    let mut stop = false;
                    for f in &sent.failed {
                        let id = rows[f.index].id;
                        // Not sent at all (the session had stopped on an earlier part of the
                        // claim, a bisected half): back to pending, without an attempt counted.
                        let went_out = f.attempts > 0;
                        let put_back = |at: i64| {
                            if went_out {
                                self.store.release(&[id], at, owner)
                            } else {
                                self.store.unclaim(&[id], at, owner)
                            }
                        };
                        match classify(&f.error) {
                            // Stopped by the caller before it went out: due again at once.
                            Next::Retry if f.error.kind == ErrorKind::Cancelled => {
                                self.store.unclaim(&[id], now, owner)?;
                                report.retried += 1;
                                report.interrupted = true;
                                stop = true;
                            }
                            // Sent and failed for a passing reason, and the client's retries
                            // were cut short by the caller: never failed for good for that.
                            Next::Retry if cancelled() => {
                                put_back(now.saturating_add(limits.retry_after_secs))?;
                                report.retried += 1;
                                report.interrupted = true;
                                stop = true;
                            }
                            Next::Retry
                                if !went_out
                                    || rows[f.index].attempts + 1 < limits.max_attempts =>
                            {
                                put_back(now.saturating_add(limits.retry_after_secs))?;
                                report.retried += 1;
                                // The client's retries are spent: the destination's next events
                                // wait for a later flush too.
                                stop = true;
                            }
                            Next::Throttled => {
                                let wait =
                                    f.error.retry_after.map_or(limits.retry_after_secs, |d| {
                                        i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
                                    });
                                // At most a day: a wait beyond it is no wait Meta means.
                                let until = now.saturating_add(wait.clamp(1, MAX_THROTTLE_SECS));
                                self.store.throttle(&key, until)?;
                                // Not the event's failure: no attempt is counted against it.
                                self.store.unclaim(&[id], until, owner)?;
                                report.retried += 1;
                                stop = true;
                            }
                            Next::Pause => {
                                let reason = describe(&f.error);
                                self.store.pause(
                                    &key,
                                    &reason,
                                    now.saturating_add(limits.pause_secs),
                                )?;
                                // Not the event's failure: no attempt is counted against it.
                                self.store.unclaim(&[id], now, owner)?;
                                if !report.paused.iter().any(|(k, _)| k == &key) {
                                    report.paused.push((key.clone(), reason));
                                }
                                stop = true;
                            }
                            Next::Retry | Next::Fail if went_out => {
                                self.store.failed(&[id], &describe(&f.error), now, owner)?;
                                report.failed += 1;
                            }
                            Next::Retry | Next::Fail => {
                                put_back(now)?;
                                report.retried += 1;
                            }
                        }
                    }
                    if stop {
                        continue 'destinations;
                    }
                }
            }
            Ok(())
        };
        if let Err(e) = run() {
            report.stopped = Some(e.0);
        }
        // Also when the flag came during the last request's retry wait, which it ended.
        report.interrupted |= cancelled();
        Ok(report)
    }

    /// [`Outbox::flush`] with a table of destinations, some of which may be unusable (an
    /// empty token, a bad pixel id: `Err` with the reason). One advertiser's bad credentials
    /// do not hold back the others: its events stay pending, its key is in `unresolved`, and
    /// the reason in `invalid`.
    pub fn flush_table(
        &self,
        client: &Client,
        destinations: &std::collections::HashMap<String, Result<Destination, String>>,
        now: i64,
        limits: FlushLimits,
        owner: &str,
        cancel: Option<&AtomicBool>,
    ) -> Result<FlushReport, OutboxError> {
        let resolve = |key: &str| destinations.get(key)?.as_ref().ok().cloned();
        let mut report = self.flush(client, resolve, now, limits, owner, cancel)?;
        report.invalid = report
            .unresolved
            .iter()
            .filter_map(|key| match destinations.get(key) {
                Some(Err(why)) => Some((key.clone(), why.clone())),
                _ => None,
            })
            .collect();
        Ok(report)
    }

    /// Lifts the circuit breaker (a pause) or a throttle of a destination; false when it had
    /// neither (a mistyped key).
    pub fn resume(&self, dest_key: &str) -> Result<bool, OutboxError> {
        self.store.resume(dest_key)
    }

    /// Re-queues failed events (and expired ones with `expired`) of one destination or all.
    /// An expired event comes back only while Meta's window is open (it was given up an hour
    /// early, [`EXPIRY_MARGIN_SECS`]), until [`REQUEUE_MARGIN_SECS`] before the window closes;
    /// past that Meta would refuse it, and it stays expired.
    pub fn requeue(
        &self,
        dest_key: Option<&str>,
        expired: bool,
        now: i64,
    ) -> Result<usize, OutboxError> {
        // An empty key is a setting left unset, not a request for every tenant's events.
        if dest_key.is_some_and(|k| k.trim().is_empty()) {
            return Err(OutboxError(
                "the destination key is empty; give none to re-queue the events of every \
                 destination"
                    .into(),
            ));
        }
        self.store.requeue(dest_key, expired, now)
    }

    /// Deletes delivered events older than `retention_secs`.
    pub fn prune(&self, retention_secs: i64, now: i64) -> Result<usize, OutboxError> {
        self.store.prune(now.saturating_sub(retention_secs))
    }

    /// Counts per state and the paused destinations.
    pub fn stats(&self, now: i64) -> Result<Stats, OutboxError> {
        self.store.stats(now)
    }

    /// Stored events in `state`, oldest first (failed and expired ones stay inspectable).
    pub fn list(&self, state: State, limit: usize) -> Result<Vec<StoredEvent>, OutboxError> {
        self.store.list(state, limit)
    }
}

/// The `event_id` of an event that has none, from its content: enqueued twice, it is stored
/// once; sent twice (delivery is at least once), Meta deduplicates it.
fn content_id(event: &ServerEvent) -> Result<String, OutboxError> {
    let wire = serde_json::to_string(event)
        .map_err(|e| OutboxError(format!("cannot store an event: {e}")))?;
    freight::platform::event_id_for(b"freight-outbox event content", "", "", &wire)
        .map_err(|e| OutboxError(e.0))
}

/// `owner` and what makes this flush's name unique: the process and a counter.
fn flush_owner(owner: &str) -> String {
    use std::sync::atomic::AtomicU64;
    static FLUSHES: AtomicU64 = AtomicU64::new(0);
    let n = FLUSHES.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{owner}/{}.{n}.{nanos}", std::process::id())
}

enum Next {
    Retry,
    Throttled,
    Pause,
    Fail,
}

fn classify(e: &GraphError) -> Next {
    match e.kind {
        ErrorKind::Transient | ErrorKind::Network | ErrorKind::Cancelled => Next::Retry,
        ErrorKind::Throttled => Next::Throttled,
        ErrorKind::InvalidToken
        | ErrorKind::NoPermission
        | ErrorKind::PixelNotFound
        | ErrorKind::Config => Next::Pause,
        ErrorKind::Payload | ErrorKind::CountMismatch => Next::Fail,
    }
}

fn describe(e: &GraphError) -> String {
    let mut s = e.kind.as_str().to_owned();
    if let Some(c) = e.code {
        s.push_str(&format!(" (code {c}"));
        if let Some(sc) = e.subcode {
            s.push_str(&format!("/{sc}"));
        }
        s.push(')');
    }
    if let Some(t) = &e.fbtrace_id {
        s.push_str(&format!(" fbtrace_id {t}"));
    }
    s
}

/// Days after it happened that Meta accepts an event.
pub const WINDOW_DAYS: i64 = 7;
/// Days after it happened that Meta accepts a `physical_store` event.
pub const STORE_WINDOW_DAYS: i64 = 62;

/// When the outbox gives an event up: Meta's window ([`WINDOW_DAYS`] after it happened,
/// [`STORE_WINDOW_DAYS`] for `physical_store`) minus [`EXPIRY_MARGIN_SECS`].
pub fn expires_at(event: &ServerEvent) -> i64 {
    let days = if event.action_source == ActionSource::PhysicalStore {
        STORE_WINDOW_DAYS
    } else {
        WINDOW_DAYS
    };
    event.event_time + days * 86_400 - EXPIRY_MARGIN_SECS
}
