//! What happened to every event of a send: each input index ends in exactly one of
//! `delivered`, `rejected` (local validation), `failed` (Graph error or retries exhausted,
//! with the event returned so the caller can persist it) or `skipped` (e.g. no consent).

use crate::model::ServerEvent;
use crate::prepare::Rejection;
use crate::response::{ErrorKind, GraphError};
use crate::validate::Problem;
use serde::Serialize;

/// The outcome of one `send`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The destination pixel.
    pub pixel_id: String,
    /// Counts per outcome.
    pub counts: Counts,
    /// Events Meta acknowledged.
    pub delivered: Vec<Delivered>,
    /// Events rejected locally, with every problem; never sent.
    pub rejected: Vec<Rejection>,
    /// Events that did not reach Meta, with the error and the event itself.
    pub failed: Vec<Failure>,
    /// Events deliberately not sent.
    pub skipped: Vec<Skipped>,
    /// Warnings about events that were sent (or failed to be).
    pub warnings: Vec<EventWarnings>,
    /// One entry per HTTP request made (after retries).
    pub requests: Vec<RequestLog>,
}

/// How many input events ended in each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Input events.
    pub input: usize,
    /// Delivered.
    pub delivered: usize,
    /// Rejected locally.
    pub rejected: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

/// A delivered event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// Input index.
    pub index: usize,
    /// Its `event_id`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// An event that did not reach Meta.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// Input index.
    pub index: usize,
    /// Why.
    pub error: GraphError,
    /// Requests made for it.
    pub attempts: u32,
    /// The wire event, so the caller can persist it and send it again later (with the same
    /// `event_id`, so Meta deduplicates).
    pub event: ServerEvent,
}

pub use crate::prepare::Skipped;

/// Warnings about one event that was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventWarnings {
    /// Input index.
    pub index: usize,
    /// The warnings.
    pub warnings: Vec<Problem>,
}

/// One HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestLog {
    /// Events in the request.
    pub events: usize,
    /// Attempts made.
    pub attempts: u32,
    /// HTTP status of the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Meta's `events_received`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_received: Option<u64>,
    /// Meta's trace id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    /// Meta's `messages`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// The error of the last attempt, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<GraphError>,
}

impl Report {
    /// Recomputes `counts` from the lists.
    pub fn update_counts(&mut self, input: usize) {
        self.counts = Counts {
            input,
            delivered: self.delivered.len(),
            rejected: self.rejected.len(),
            failed: self.failed.len(),
            skipped: self.skipped.len(),
        };
    }

    /// True when every input event was delivered.
    pub fn all_delivered(&self) -> bool {
        self.counts.delivered == self.counts.input
    }

    /// Every input index exactly once across the four outcomes?
    pub fn accounts_for_every_event(&self) -> bool {
        let mut seen: Vec<usize> = self
            .delivered
            .iter()
            .map(|d| d.index)
            .chain(self.rejected.iter().map(|r| r.index))
            .chain(self.failed.iter().map(|f| f.index))
            .chain(self.skipped.iter().map(|s| s.index))
            .collect();
        seen.sort_unstable();
        seen == (0..self.counts.input).collect::<Vec<_>>()
    }

    /// Appends another report of the same destination (e.g. the next chunk of a stream),
    /// whose indexes are already absolute.
    pub fn merge(&mut self, other: Report) {
        self.delivered.extend(other.delivered);
        self.rejected.extend(other.rejected);
        self.failed.extend(other.failed);
        self.skipped.extend(other.skipped);
        self.warnings.extend(other.warnings);
        self.requests.extend(other.requests);
        let input = self.counts.input + other.counts.input;
        self.update_counts(input);
    }
}

/// The answer of a connection test, for a platform to show its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// The test event was accepted.
    Ok,
    /// The token is invalid, expired or revoked.
    InvalidToken,
    /// The token may not post to this pixel.
    NoPermission,
    /// The pixel does not exist (or the token cannot see it).
    PixelNotFound,
    /// Meta is rate-limiting this app or account.
    Throttled,
    /// Meta could not be reached (network, timeouts, server errors).
    Unreachable,
}

impl ConnectionStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Ok => "ok",
            ConnectionStatus::InvalidToken => "invalid_token",
            ConnectionStatus::NoPermission => "no_permission",
            ConnectionStatus::PixelNotFound => "pixel_not_found",
            ConnectionStatus::Throttled => "throttled",
            ConnectionStatus::Unreachable => "unreachable",
        }
    }

    /// The status a failed test request means.
    pub fn from_error(error: &crate::response::GraphError) -> ConnectionStatus {
        match error.kind {
            ErrorKind::InvalidToken => ConnectionStatus::InvalidToken,
            ErrorKind::NoPermission => ConnectionStatus::NoPermission,
            // appsecret_proof errors (code 100) are about the credentials; other
            // configuration errors (a wrong path or version, a proxy's 4xx) mean Meta's
            // endpoint was not reached as configured.
            ErrorKind::Config if error.code == Some(100) => ConnectionStatus::InvalidToken,
            ErrorKind::Config if error.code == Some(368) => ConnectionStatus::NoPermission,
            ErrorKind::Config => ConnectionStatus::Unreachable,
            ErrorKind::PixelNotFound => ConnectionStatus::PixelNotFound,
            ErrorKind::Throttled => ConnectionStatus::Throttled,
            ErrorKind::Transient | ErrorKind::Network | ErrorKind::Cancelled => {
                ConnectionStatus::Unreachable
            }
            // Meta refused the test event itself (an invalid parameter, code 100): the
            // connection and credentials work. An error code Freight does not know is no
            // such verdict.
            ErrorKind::Payload if error.code == Some(100) => ConnectionStatus::Ok,
            ErrorKind::Payload | ErrorKind::CountMismatch => ConnectionStatus::Unreachable,
        }
    }
}

/// The full answer of a connection test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionTest {
    /// The status.
    pub status: ConnectionStatus,
    /// The error behind a status other than `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<GraphError>,
    /// Meta's trace id of the test request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
}
