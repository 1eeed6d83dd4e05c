//! The sandbox's configuration: tokens, the datasets they may post to, and the knobs of
//! `reference/sandbox-spec.md`. It loads from JSON (`freight sandbox --config FILE`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The whole configuration. Every field has a default; an empty `{}` is valid.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Access tokens the sandbox knows. An unknown token is answered like a malformed one.
    pub tokens: BTreeMap<String, TokenConfig>,
    /// Versions served as they are.
    pub known_versions: Vec<String>,
    /// Versions Graph no longer serves: rejected with code 2635, or auto-upgraded.
    pub deprecated_versions: Vec<String>,
    /// What to do with a deprecated version.
    pub deprecated_mode: DeprecatedMode,
    /// Most events in one request (Meta: 1000).
    pub max_events: usize,
    /// Seconds an `event_time` may lie in the future; `None` disables the check.
    pub future_tolerance_secs: Option<i64>,
    /// Subcode for events in the future (invented by the sandbox).
    pub future_subcode: i64,
    /// Subcode for a missing or invalid Purchase currency (invented by the sandbox).
    pub currency_subcode: i64,
    /// Accept `"1700000000"` as an event time.
    pub accept_numeric_strings: bool,
    /// Accept ISO-8601 strings (`2026-11-23T10:00:00Z`) as event times.
    pub accept_iso8601: bool,
    /// `reject` gzip-encoded request bodies (as Graph is believed to) or `accept` them.
    pub gzip_requests: GzipMode,
    /// After this many requests to a dataset, successes carry `x-business-use-case-usage`.
    pub usage_header_after: Option<u64>,
    /// HTTP status of token errors (Graph mostly answers 400, sometimes 401).
    pub auth_error_status: u16,
    /// How a token without access to a dataset is answered.
    pub permission_error_style: PermissionStyle,
    /// What to do when two token sources carry different tokens.
    pub conflicting_tokens: ConflictMode,
    /// Reject `website` events without `client_user_agent` (off: Graph accepts them).
    pub enforce_website_user_agent: bool,
    /// Reject `website` events without `event_source_url`.
    pub enforce_website_url: bool,
    /// Reject customer information that is not a SHA-256 digest (subcode invented).
    pub enforce_hashed_pii: bool,
    /// Reject malformed `fbc`/`fbp`.
    pub enforce_cookie_format: bool,
    /// When set (e.g. `da_DK`), error titles and messages are localized, so a client that
    /// matches on text instead of codes fails its tests.
    pub locale: Option<String>,
    /// Strings returned in `messages` on success.
    pub messages_on_success: Vec<String>,
    /// Report this `events_received` instead of the real count.
    pub events_received_override: Option<i64>,
    /// Leave `events_received` out of the success body.
    pub omit_events_received: bool,
    /// The deduplication window for `(dataset, event_name, event_id)`, in seconds.
    pub dedup_window_secs: i64,
    /// The clock's start (Unix seconds); `None` follows the system clock.
    pub now: Option<i64>,
    /// Seed of the `fbtrace_id` generator, for deterministic snapshots.
    pub seed: u64,
    /// Keep the decoded events of each request (off for load benchmarks: a 1000-event
    /// request holds megabytes).
    pub record_events: bool,
    /// Keep at most this many bytes of each raw body in the recordings.
    pub max_recorded_body_bytes: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            tokens: BTreeMap::new(),
            known_versions: (21..=26).map(|v| format!("v{v}.0")).collect(),
            deprecated_versions: (12..=20).map(|v| format!("v{v}.0")).collect(),
            deprecated_mode: DeprecatedMode::Reject,
            max_events: 1000,
            future_tolerance_secs: Some(60),
            future_subcode: 2_804_004,
            currency_subcode: 2_804_008,
            accept_numeric_strings: true,
            accept_iso8601: false,
            gzip_requests: GzipMode::Reject,
            usage_header_after: None,
            auth_error_status: 400,
            permission_error_style: PermissionStyle::Subcode33,
            conflicting_tokens: ConflictMode::FirstWins,
            enforce_website_user_agent: false,
            enforce_website_url: false,
            enforce_hashed_pii: false,
            enforce_cookie_format: false,
            locale: None,
            messages_on_success: Vec::new(),
            events_received_override: None,
            omit_events_received: false,
            dedup_window_secs: 48 * 3600,
            now: None,
            seed: 0x5eed,
            record_events: true,
            max_recorded_body_bytes: 64 * 1024,
        }
    }
}

impl SandboxConfig {
    /// A configuration with one valid token allowed on every dataset.
    pub fn with_token(token: &str) -> SandboxConfig {
        let mut c = SandboxConfig::default();
        c.tokens.insert(token.to_owned(), TokenConfig::default());
        c
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Token strings are secrets even in a sandbox: show how many, not which.
        f.debug_struct("SandboxConfig")
            .field("tokens", &format_args!("<{} redacted>", self.tokens.len()))
            .field("known_versions", &self.known_versions)
            .field("max_events", &self.max_events)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// One token's state.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// Whether Graph accepts the token.
    pub state: TokenState,
    /// Datasets (pixel ids) the token may post to; `"*"` is every dataset.
    pub datasets: Vec<String>,
    /// The app secret: when set, an `appsecret_proof` that is sent must match it.
    pub app_secret: Option<String>,
    /// Refuse requests of this token without `appsecret_proof`.
    pub require_appsecret_proof: bool,
    /// Subcode of an `invalid` token (460 password changed, 467 invalidated).
    pub invalid_subcode: i64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            state: TokenState::Valid,
            datasets: vec!["*".to_owned()],
            app_secret: None,
            require_appsecret_proof: false,
            invalid_subcode: 467,
        }
    }
}

impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field("state", &self.state)
            .field("datasets", &self.datasets)
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("require_appsecret_proof", &self.require_appsecret_proof)
            .finish()
    }
}

/// Token states Graph distinguishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    /// Accepted.
    #[default]
    Valid,
    /// 190/463 "Session has expired".
    Expired,
    /// 190 with `invalid_subcode` (revoked).
    Invalid,
    /// 190 "Cannot parse access token".
    Malformed,
}

/// What to do with a deprecated API version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeprecatedMode {
    /// 400 code 2635.
    #[default]
    Reject,
    /// Serve it, reporting the lowest known version in `facebook-api-version`.
    AutoUpgrade,
}

/// How a token without access to the dataset is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PermissionStyle {
    /// 100/33 "Unsupported post request" (what Graph answers for CAPI).
    #[default]
    #[serde(rename = "100/33")]
    Subcode33,
    /// 200 "Permissions error".
    #[serde(rename = "200")]
    Code200,
    /// 10 "Application does not have permission for this action".
    #[serde(rename = "10")]
    Code10,
}

/// Gzip request bodies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GzipMode {
    /// 400 code 100 "(#100) The parameter data is required".
    #[default]
    Reject,
    /// Decode them.
    Accept,
}

/// What to do when the header, query and body carry different tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictMode {
    /// Header first, then query, then body.
    #[default]
    FirstWins,
    /// 400 code 100 "Conflicting access tokens" (invented).
    Reject,
}
