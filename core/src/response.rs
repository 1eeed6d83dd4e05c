//! Stage 7 of the pipeline, without IO: what a Graph response means.
//!
//! Classification follows `reference/wire-contract.md` §3.5: by Graph `code`,
//! `error_subcode` and `is_transient` first, by HTTP status second, and **never** by message
//! text, which Meta localizes. Every field of the error envelope is optional and unknown
//! fields are ignored.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What to do about a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A passing fault (codes 1, 2, 341, 21009, `is_transient`, HTTP 5xx): retry with backoff.
    Transient,
    /// Rate limited (codes 4, 17, 32, 613, 80000–80014, HTTP 429): retry after a cool-down.
    Throttled,
    /// The token is invalid, expired or missing (190, 102, 104): needs an operator.
    InvalidToken,
    /// The token may not post to this pixel (10, 200–299, 3).
    NoPermission,
    /// The pixel does not exist or the token cannot see it (100/33).
    PixelNotFound,
    /// A configuration error: `appsecret_proof`, unknown path or API version (2500, 2635), a
    /// policy block (368).
    Config,
    /// Meta rejected the events themselves (100 with 2804xxx, other 4xx): no retry. The
    /// batch is bisected when the error may concern single events
    /// ([`GraphError::concerns_events`]).
    Payload,
    /// Meta acknowledged a different number of events than were sent.
    CountMismatch,
    /// The connection failed, timed out or broke; or the response could not be read.
    Network,
    /// The caller stopped the send ([`Session::with_cancel`](crate::client::Session::with_cancel))
    /// before this request was sent: nothing is known to be wrong; send the events again.
    Cancelled,
}

impl ErrorKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Throttled => "throttled",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::NoPermission => "no_permission",
            ErrorKind::PixelNotFound => "pixel_not_found",
            ErrorKind::Config => "config",
            ErrorKind::Payload => "payload",
            ErrorKind::CountMismatch => "count_mismatch",
            ErrorKind::Network => "network",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    /// True for the kinds worth retrying (a cancelled request: later, once the caller goes on).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Transient | ErrorKind::Throttled | ErrorKind::Network | ErrorKind::Cancelled
        )
    }
}

/// A failed request, as reported. `message` is Meta's (possibly localized) text, shown to
/// people, never used to decide anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphError {
    /// The class that decides retries.
    pub kind: ErrorKind,
    /// HTTP status, when a response arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Graph `code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// Graph `error_subcode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subcode: Option<i64>,
    /// Graph `type`.
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    pub error_type: Option<String>,
    /// Meta's message, or a description of the network failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Meta's `error_user_title` (localized).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_title: Option<String>,
    /// The trace id to quote to Meta support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    /// How long to wait, from `Retry-After` or `x-business-use-case-usage`.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl GraphError {
    /// Whether Meta's verdict may be about single events of the batch, so that halving the
    /// batch can single them out: an invalid event (code 100 with a 2804xxx subcode) or a
    /// request too large (HTTP 413). Other payload errors are about the request itself (code
    /// 100 without subcode: "(#100) The parameter data is required") or of a code Freight does
    /// not know: halving on them would only send twice as many requests to meet them again.
    pub fn concerns_events(&self) -> bool {
        let invalid_event = self.code == Some(100)
            && self
                .subcode
                .is_some_and(|s| (2_804_000..=2_804_999).contains(&s));
        self.kind == ErrorKind::Payload && (invalid_event || self.http_status == Some(413))
    }

    /// A request not sent because the caller stopped the send.
    pub fn cancelled() -> GraphError {
        GraphError {
            kind: ErrorKind::Cancelled,
            ..GraphError::network("not sent: the send was stopped")
        }
    }

    /// A request that cannot be made with this configuration (never sent).
    pub fn config(message: impl Into<String>) -> GraphError {
        GraphError {
            kind: ErrorKind::Config,
            ..GraphError::network(message)
        }
    }

    /// A failure without a usable response.
    pub fn network(message: impl Into<String>) -> GraphError {
        GraphError {
            kind: ErrorKind::Network,
            http_status: None,
            code: None,
            subcode: None,
            error_type: None,
            message: Some(message.into()),
            user_title: None,
            fbtrace_id: None,
            retry_after: None,
        }
    }

    /// Replaces `secret` (the request's token or app secret) wherever Meta's text quotes it:
    /// Graph's answer to a malformed token can repeat the token.
    pub fn redact(&mut self, secret: &str) {
        for text in [
            &mut self.message,
            &mut self.user_title,
            &mut self.error_type,
            &mut self.fbtrace_id,
        ]
        .into_iter()
        .flatten()
        {
            redact_in(text, secret);
        }
    }
}

/// `text` with every occurrence of `secret` replaced by `<redacted>`.
fn redact_in(text: &mut String, secret: &str) {
    if !secret.is_empty() && text.contains(secret) {
        *text = text.replace(secret, "<redacted>");
    }
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind.as_str())?;
        if let Some(s) = self.http_status {
            write!(f, " (HTTP {s}")?;
            if let Some(c) = self.code {
                write!(f, ", code {c}")?;
            }
            if let Some(c) = self.subcode {
                write!(f, "/{c}")?;
            }
            write!(f, ")")?;
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GraphError {}

/// A successful response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Success {
    /// The HTTP status (2xx).
    pub http_status: u16,
    /// `events_received` (missing in some responses).
    pub events_received: Option<u64>,
    /// Meta's `messages` (undocumented content; reported verbatim).
    pub messages: Vec<String>,
    /// The trace id.
    pub fbtrace_id: Option<String>,
}

impl Success {
    /// Replaces `secret` wherever the answer quotes it (see [`GraphError::redact`]).
    pub fn redact(&mut self, secret: &str) {
        for text in self.messages.iter_mut().chain(&mut self.fbtrace_id) {
            redact_in(text, secret);
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    error_type: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    is_transient: Option<bool>,
    #[serde(default)]
    error_user_title: Option<String>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct RawSuccess {
    #[serde(default)]
    events_received: Option<u64>,
    #[serde(default)]
    messages: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

/// The class of a Graph error code (with its subcode and `type`), if the code decides it.
pub fn kind_of_code(
    code: i64,
    subcode: Option<i64>,
    error_type: Option<&str>,
) -> Option<ErrorKind> {
    Some(match code {
        1 | 2 | 341 | 21009 => ErrorKind::Transient,
        4 | 17 | 32 | 613 | 80_000..=80_014 => ErrorKind::Throttled,
        190 | 102 | 104 => ErrorKind::InvalidToken,
        3 | 10 | 200..=299 => ErrorKind::NoPermission,
        2500 | 2635 | 368 => ErrorKind::Config,
        100 => match subcode {
            Some(33) => ErrorKind::PixelNotFound,
            Some(s) if (2_804_000..=2_804_999).contains(&s) => ErrorKind::Payload,
            Some(_) => ErrorKind::Payload,
            // appsecret_proof errors are code 100 without subcode, of type
            // GraphMethodException; "(#100) …" parameter errors are OAuthException.
            None if error_type == Some("GraphMethodException") => ErrorKind::Config,
            None => ErrorKind::Payload,
        },
        _ => return None,
    })
}

/// Classifies a response: its status, headers (any case) and body. A `Retry-After` given as
/// an HTTP date is read by [`classify_at`], which knows the time.
// An error is an ordinary outcome here and is reported whole; boxing buys nothing.
#[allow(clippy::result_large_err)]
pub fn classify(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Success, GraphError> {
    classify_at(status, headers, body, None)
}

/// [`classify`] at the time `now` (Unix seconds), which turns a `Retry-After` HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, as proxies and gateways send it) into a wait.
#[allow(clippy::result_large_err)]
pub fn classify_at(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    now: Option<i64>,
) -> Result<Success, GraphError> {
    let retry_after = retry_after(headers, now);
    let raw = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error);
    // A Graph error is an error whatever the status (a 200 carrying one is classified by its
    // code, not read as a success that acknowledged nothing).
    if (200..300).contains(&status) && raw.is_none() {
        return match serde_json::from_slice::<RawSuccess>(body) {
            Ok(s) => Ok(Success {
                http_status: status,
                events_received: s.events_received,
                messages: s
                    .messages
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| match m {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
                fbtrace_id: s.fbtrace_id,
            }),
            Err(_) => Err(GraphError {
                kind: ErrorKind::Network,
                http_status: Some(status),
                message: Some("the success response is not valid JSON".into()),
                ..GraphError::network("")
            }),
        };
    }
    let by_status = match status {
        429 => ErrorKind::Throttled,
        401 => ErrorKind::InvalidToken,
        403 => ErrorKind::NoPermission,
        408 | 425 => ErrorKind::Transient,
        s if s >= 500 => ErrorKind::Transient,
        // A 4xx without a Graph error is no verdict on the events (a proxy, a wrong path):
        // a configuration problem, not retried and not bisected.
        413 => ErrorKind::Payload,
        _ => ErrorKind::Config,
    };
    let mut err = GraphError {
        kind: by_status,
        http_status: Some(status),
        code: None,
        subcode: None,
        error_type: None,
        message: None,
        user_title: None,
        fbtrace_id: None,
        retry_after,
    };
    match raw {
        Some(e) => {
            // A known code decides (Graph marks rate limits `is_transient` too, and they need
            // a cool-down, not a quick retry); `is_transient` decides for the other codes.
            let known = e
                .code
                .and_then(|c| kind_of_code(c, e.error_subcode, e.error_type.as_deref()));
            err.kind = match known {
                Some(kind) => kind,
                None if e.is_transient == Some(true) => ErrorKind::Transient,
                None if e.code.is_some() && status < 500 && status != 429 => ErrorKind::Payload,
                None => by_status,
            };
            err.code = e.code;
            err.subcode = e.error_subcode;
            err.error_type = e.error_type;
            err.message = e.message;
            err.user_title = e.error_user_title;
            err.fbtrace_id = e.fbtrace_id;
        }
        None => {
            err.message = Some(format!("HTTP {status} without a Graph error body"));
        }
    }
    Err(err)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `Retry-After` (seconds), else the largest `estimated_time_to_regain_access` (minutes) of
/// `x-business-use-case-usage`.
fn retry_after(headers: &[(String, String)], now: Option<i64>) -> Option<Duration> {
    if let Some(value) = header(headers, "retry-after").map(str::trim) {
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let (Some(at), Some(now)) = (http_date(value), now) {
            // A date already past means: now.
            return Some(Duration::from_secs(u64::try_from(at - now).unwrap_or(0)));
        }
    }
    let usage: serde_json::Value =
        serde_json::from_str(header(headers, "x-business-use-case-usage")?).ok()?;
    let minutes = usage
        .as_object()?
        .values()
        .filter_map(|v| v.as_array())
        .flatten()
        .filter_map(|e| e["estimated_time_to_regain_access"].as_u64())
        .max()?;
    (minutes > 0).then(|| Duration::from_secs(minutes.saturating_mul(60)))
}

/// Unix seconds of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7), the
/// form senders must use; the two obsolete forms are not read (the header is then ignored).
fn http_date(v: &str) -> Option<i64> {
    let b = v.as_bytes();
    // Bytes, not text: a header may hold any UTF-8 (a replacement character), and slicing
    // text inside one would panic.
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" || !v.is_ascii() {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = v.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| v.get(8..11) == Some(*m))? as i64 + 1;
    let (day, year) = (num(5..7)?, num(12..16)?);
    let (h, m, s) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if &b[7..8] != b" "
        || &b[11..12] != b" "
        || &b[16..17] != b" "
        || b[19] != b':'
        || b[22] != b':'
    {
        return None;
    }
    if !(1..=crate::normalize::days_in_month(year, month)).contains(&day)
        || h > 23
        || m > 59
        || s > 60
    {
        return None;
    }
    let days = crate::normalize::days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_as_an_http_date() {
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            http_date("Mon, 23 Nov 2026 00:00:00 GMT"),
            Some(1_795_392_000)
        );
        for bad in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "",
            "7",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Noo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Tue, 31 Apr 2029 00:00:00 GMT",
            "Sun, 06 Nov 1994 08:49:3\u{e9}GMT",
            "Sun, 06 Nov 1994 08:49:\u{fffd}GMT",
            "Sun, 06 Nov 1994 08:\u{e9}\u{e9}\u{e9}\u{e9} GMT",
        ] {
            assert_eq!(http_date(bad), None, "{bad}");
        }
        let h = |v: &str| vec![("Retry-After".to_owned(), v.to_owned())];
        let at = |v: &str, now| classify_at(503, &h(v), b"", now).unwrap_err().retry_after;
        let date = "Mon, 23 Nov 2026 00:00:30 GMT";
        assert_eq!(at(date, Some(1_795_392_000)), Some(Duration::from_secs(30)));
        assert_eq!(
            at(date, Some(1_795_392_100)),
            Some(Duration::ZERO),
            "a past date: now"
        );
        assert_eq!(
            at(date, None),
            None,
            "without the time, a date says nothing"
        );
        assert_eq!(at("12", None), Some(Duration::from_secs(12)));
    }

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify(status, &[], body.as_bytes()).unwrap_err().kind
    }

    #[test]
    fn classifies_by_code_then_status() {
        let e = |c: &str| format!(r#"{{"error":{{"message":"x",{c}}}}}"#);
        use ErrorKind::*;
        // (status, Graph error fields or a raw body, class)
        let graph = [
            (400, r#""code":80004,"error_subcode":2446079"#, Throttled),
            (400, r#""code":17"#, Throttled),
            (500, r#""code":2,"is_transient":true"#, Transient),
            (400, r#""code":21009"#, Transient),
            (400, r#""code":190,"error_subcode":463"#, InvalidToken),
            (400, r#""code":100,"error_subcode":33"#, PixelNotFound),
            (400, r#""code":100,"error_subcode":2804003"#, Payload),
            (400, r#""code":100,"type":"GraphMethodException""#, Config),
            (400, r#""code":100,"type":"OAuthException""#, Payload),
            (400, r#""code":200"#, NoPermission),
            (400, r#""code":2635"#, Config),
            // Unknown code: the status decides.
            (503, r#""code":-3"#, Transient),
            (400, r#""code":999999"#, Payload),
            // A known code decides over `is_transient`; `is_transient` over an unknown code.
            (403, r#""code":4,"is_transient":true"#, Throttled),
            (400, r#""code":4,"is_transient":true"#, Throttled),
            (403, r#""code":613,"is_transient":true"#, Throttled),
            (400, r#""code":613,"is_transient":true"#, Throttled),
            (403, r#""code":80004,"is_transient":true"#, Throttled),
            (400, r#""code":80004,"is_transient":true"#, Throttled),
            (400, r#""code":190,"is_transient":true"#, InvalidToken),
            (400, r#""code":999999,"is_transient":true"#, Transient),
            (400, r#""code":999999,"is_transient":false"#, Payload),
        ];
        for (status, fields, class) in graph {
            assert_eq!(kind(status, &e(fields)), class, "{status} {fields}");
        }
        let raw = [
            (502, "<html>bad gateway</html>", Transient),
            (429, "Too Many Requests", Throttled),
            (418, "", Config),
            (404, "<html>not found</html>", Config),
            (408, "", Transient),
            (413, "", Payload),
        ];
        for (status, body, class) in raw {
            assert_eq!(kind(status, body), class, "{status} {body}");
        }
    }

    #[test]
    fn connection_status_of_errors() {
        use crate::report::ConnectionStatus as S;
        let status = |http: u16, body: &str| {
            S::from_error(&classify(http, &[], body.as_bytes()).unwrap_err())
        };
        let app_limit = r#"{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","is_transient":true,"code":4,"fbtrace_id":"t"}}"#;
        assert_eq!(status(403, app_limit), S::Throttled);
        // Meta refused the test event: the credentials work.
        let old = r#"{"error":{"code":100,"error_subcode":2804003}}"#;
        assert_eq!(status(400, old), S::Ok);
        assert_eq!(status(400, r#"{"error":{"code":100}}"#), S::Ok);
        // An unknown code says nothing of the sort.
        assert_eq!(status(400, r#"{"error":{"code":5000}}"#), S::Unreachable);
        assert_eq!(status(413, ""), S::Unreachable);
        // A Graph error in a 200 is the error.
        let expired = r#"{"error":{"code":190,"error_subcode":463,"message":"expired"}}"#;
        assert_eq!(status(200, expired), S::InvalidToken);
    }

    #[test]
    fn an_error_in_a_success_status_is_an_error() {
        let e = classify(200, &[], br#"{"error":{"code":2,"is_transient":true}}"#).unwrap_err();
        assert_eq!(
            (e.kind, e.code, e.http_status),
            (ErrorKind::Transient, Some(2), Some(200))
        );
        let ok = classify(200, &[], br#"{"events_received":2,"fbtrace_id":"t"}"#).unwrap();
        assert_eq!(ok.events_received, Some(2));
    }

    #[test]
    fn localized_text_changes_nothing() {
        let da = r#"{"error":{"message":"Ugyldig","type":"OAuthException","code":100,"error_subcode":2804003,"error_user_title":"Hændelsens tidsstempel er for gammelt"}}"#;
        let e = classify(400, &[], da.as_bytes()).unwrap_err();
        assert_eq!(
            (e.kind, e.code, e.subcode),
            (ErrorKind::Payload, Some(100), Some(2_804_003))
        );
    }

    #[test]
    fn envelope_fields_are_optional_and_unknown_keys_ignored() {
        let body = r#"{"error":{"code":-3,"error_data":{"blame_field_specs":[["a"]]},"x":1},"__fb_trace_id__":"t"}"#;
        let e = classify(400, &[], body.as_bytes()).unwrap_err();
        assert_eq!((e.code, e.message), (Some(-3), None));
        assert!(classify(200, &[], b"not json").is_err());
        let ok = classify(200, &[], br#"{"events_received":2,"messages":["m"],"x":1}"#).unwrap();
        assert_eq!((ok.events_received, ok.messages.len()), (Some(2), 1));
    }

    #[test]
    fn retry_after_from_headers() {
        let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        let e = classify(429, &h("Retry-After", "7"), b"").unwrap_err();
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        let usage = r#"{"123":[{"type":"ads_management","estimated_time_to_regain_access":3}]}"#;
        let e = classify(
            400,
            &h("X-Business-Use-Case-Usage", usage),
            br#"{"error":{"code":80004}}"#,
        )
        .unwrap_err();
        assert_eq!(e.retry_after, Some(Duration::from_secs(180)));
    }
}
