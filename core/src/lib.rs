//! Freight: Meta Conversions API (CAPI) events, normalized, hashed, validated and batched.
//!
//! The crate is a pure pipeline with no IO and no clock — the current time is always a
//! parameter — so every rule is unit-testable and any host can bring its own HTTP client.
//! The modules follow the pipeline of SPEC §2:
//!
//! `input events → normalize → hash → validate → batch → send → report`
//!
//! * [`input`]: what the pipeline reads — any JSON-like tree (`serde_json::Value`, or the
//!   Python binding's dicts, read in place).
//! * [`model`]: the typed wire model of a server event (what goes on the wire); hashed
//!   customer values are kept as inline digests ([`model::UserValue`]).
//! * [`normalize`](mod@normalize): Meta's normalization rules for customer information, one field at a time.
//! * [`hash`]: SHA-256 as lowercase hex, and detection of values that are already hashed.
//! * [`validate`]: the problems (`{type, loc, msg}`) an event can have; errors reject it.
//! * [`prepare`](mod@prepare): input JSON events → wire-ready events or rejections, in input
//!   order; [`prepare::Preparer::process_into`] prepares one event into a reused slot, so a
//!   sender that writes each event to a [`batch::RequestBody`] at once allocates nothing.
//! * [`batch`]: split prepared events into requests of at most 1000 and build the body.
//! * [`destination`], [`request`], [`response`], [`retry`]: the Graph API request of a batch,
//!   what a response means, and when to retry — all without IO.
//! * [`report`]: what happened to every event.
//! * [`platform`]: `partner_agent`, deduplication ids, `fbc`/`fbp` from a page request.
//! * [`segment`]: CDP (Segment) track calls → server events.
//! * `client` (feature `transport`, on by default): the blocking ureq driver.
//!
//! ```
//! use freight::prepare::{prepare, PrepareOptions};
//! use serde_json::json;
//!
//! let now = 1_760_000_000;
//! let events = vec![json!({
//!     "event_name": "Purchase",
//!     "event_time": now - 60,
//!     "action_source": "system_generated",
//!     "user_data": {"em": "  Jane.Doe@Example.com "},
//!     "custom_data": {"value": 42.5, "currency": "eur"}
//! })];
//! let prepared = prepare(&events, &PrepareOptions::default(), now);
//! assert!(prepared.rejected.is_empty());
//! let body = freight::batch::request_body(&prepared.events, &Default::default());
//! assert!(body.starts_with(b"{\"data\":[{\"event_name\":\"Purchase\""));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
#[cfg(feature = "transport")]
pub mod client;
pub mod destination;
pub mod hash;
pub mod input;
pub mod model;
pub mod normalize;
pub mod platform;
pub mod prepare;
pub mod report;
pub mod request;
pub mod response;
pub mod retry;
pub mod segment;
pub mod validate;

pub use model::ServerEvent;
pub use normalize::{normalize, Field, NormalizeOptions};
pub use prepare::{prepare, PrepareOptions, Prepared};
pub use validate::{Problem, ProblemKind};

/// The version of this crate, as sent in `User-Agent: freight/<version>`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
