//! The Graph emulation: routing, request decoding, authentication, Meta's validations,
//! responses, faults, recordings and the dedup tracker (`reference/sandbox-spec.md`).

use crate::config::{ConflictMode, DeprecatedMode, PermissionStyle, SandboxConfig, TokenState};
use crate::http::{parse_form, parse_multipart, Action, Request, Response};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ACTION_SOURCES: &[&str] = &[
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
];

/// ISO 4217 codes in use (data, not client code: the sandbox checks currencies itself).
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND \
    BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK \
    DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR \
    ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD \
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB \
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP \
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES \
    VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR \
    ZMW ZWG ZWL";

const TOO_BROAD: &[&[&str]] = &[
    &["ct", "country", "st", "zp", "ge", "client_user_agent"],
    &["db", "client_user_agent"],
    &["fn", "ge"],
    &["ln", "ge"],
];

const HASHED_KEYS: &[&str] = &[
    "em", "ph", "fn", "ln", "ct", "st", "zp", "country", "db", "ge",
];

const KNOWN_USER_DATA: &[&str] = &[
    "em",
    "ph",
    "fn",
    "ln",
    "ge",
    "db",
    "ct",
    "st",
    "zp",
    "country",
    "external_id",
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "subscription_id",
    "fb_login_id",
    "lead_id",
    "anon_id",
    "madid",
    "page_id",
    "page_scoped_user_id",
    "ctwa_clid",
    "ig_account_id",
    "instagram_business_account_id",
    "ig_sid",
    "whatsapp_business_account_id",
    "f5first",
    "f5last",
    "fi",
    "dobd",
    "dobm",
    "doby",
    "app_user_id",
];

/// A scripted fault: what to do instead of answering normally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// The behaviour.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Only requests to this dataset (pixel id) match; `None` matches all.
    #[serde(default)]
    pub dataset: Option<String>,
    /// Only requests with this top-level `test_event_code` match.
    #[serde(default)]
    pub test_event_code: Option<String>,
    /// Let this many matching requests through first (the fault hits the next ones).
    #[serde(default)]
    pub after: u32,
    /// How many requests it applies to; `0` is every request until reset.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault for the next request.
    pub fn once(kind: FaultKind) -> Fault {
        Fault::times(kind, 1)
    }

    /// A fault for the next `n` requests.
    pub fn times(kind: FaultKind, n: u32) -> Fault {
        Fault {
            kind,
            dataset: None,
            test_event_code: None,
            after: 0,
            times: n,
        }
    }
}

/// The fault behaviours of sandbox-spec §6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Rate limiting: code 4, 17, 32, 613 or 80000–80014, by default as HTTP 400.
    Throttle {
        /// Graph code.
        code: i64,
        /// Graph subcode.
        #[serde(default)]
        subcode: Option<i64>,
        /// HTTP status (400, 403 or 429).
        #[serde(default = "status_400")]
        http: u16,
        /// Minutes in `x-business-use-case-usage.estimated_time_to_regain_access`.
        #[serde(default)]
        regain_minutes: Option<i64>,
    },
    /// A proxy's 429, with `Retry-After` in seconds.
    Http429 {
        /// The `Retry-After` header.
        #[serde(default)]
        retry_after: Option<u64>,
        /// A Graph envelope (code 4) instead of plain text.
        #[serde(default)]
        graph_body: bool,
    },
    /// HTTP 500, code 2, `is_transient: true`.
    Transient,
    /// HTTP 500, code 1 "An unknown error has occurred."
    Unknown,
    /// HTTP 400, code 21009 "The data set upload is temporarily not ready."
    DatasetNotReady,
    /// A gateway error with an empty, HTML or JSON body.
    Http5xx {
        /// 500, 502, 503 or 504.
        status: u16,
        /// `empty`, `html` or `json`.
        #[serde(default = "html")]
        body: String,
    },
    /// Sleep, then answer normally (the events are accepted even if the client gave up).
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Accept the request and never answer.
    Hang,
    /// Close the connection with a TCP reset.
    Reset,
    /// Close the connection before any response header.
    CloseBeforeHeaders,
    /// Send a success response's headers and half its body, then close.
    TruncatedBody,
    /// HTTP 200 with the body `not json`.
    MalformedJson200,
    /// Code 190 (token errors), with a subcode.
    AuthError {
        /// e.g. 463 expired, 467 invalid.
        #[serde(default)]
        subcode: Option<i64>,
        /// 400 or 401.
        #[serde(default = "status_400")]
        http: u16,
    },
    /// A permission error in one of the styles Graph uses.
    Permission {
        /// `100/33`, `200` or `10`.
        #[serde(default)]
        style: PermissionStyle,
    },
    /// A verbatim response.
    Raw {
        /// Status.
        status: u16,
        /// Headers.
        #[serde(default)]
        headers: Vec<(String, String)>,
        /// Body.
        body: String,
    },
}

fn status_400() -> u16 {
    400
}

fn html() -> String {
    "html".into()
}

impl FaultKind {
    fn name(&self) -> &'static str {
        match self {
            FaultKind::Throttle { .. } => "throttle",
            FaultKind::Http429 { .. } => "http429",
            FaultKind::Transient => "transient",
            FaultKind::Unknown => "unknown",
            FaultKind::DatasetNotReady => "dataset_not_ready",
            FaultKind::Http5xx { .. } => "http5xx",
            FaultKind::Delay { .. } => "delay",
            FaultKind::Hang => "hang",
            FaultKind::Reset => "reset",
            FaultKind::CloseBeforeHeaders => "close_before_headers",
            FaultKind::TruncatedBody => "truncated_body",
            FaultKind::MalformedJson200 => "malformed_json_200",
            FaultKind::AuthError { .. } => "auth_error",
            FaultKind::Permission { .. } => "permission",
            FaultKind::Raw { .. } => "raw",
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Processed: every event accepted.
    Accepted {
        /// What the response said.
        events_received: usize,
    },
    /// Refused as a whole (auth, routing, validation).
    Rejected {
        /// HTTP status.
        status: u16,
        /// Graph code.
        code: i64,
        /// Graph subcode.
        subcode: Option<i64>,
    },
    /// A scripted fault answered instead.
    Faulted {
        /// The fault's kind.
        fault: String,
    },
    /// A control request (`/__sandbox/…`).
    Control,
}

/// A record-only observation about an accepted request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedWarning {
    /// Index of the event in `data`, if the warning is about one event.
    pub event_index: Option<usize>,
    /// A short code, e.g. `cookie_time_in_seconds`.
    pub code: String,
}

/// One request as the sandbox saw it. Tokens are redacted everywhere.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    /// Position in the recording, from 1.
    pub seq: u64,
    /// Sandbox clock at arrival.
    pub received_at: i64,
    /// HTTP method.
    pub method: String,
    /// Path (never contains a token).
    pub path: String,
    /// Query string, with `access_token` and `appsecret_proof` values redacted.
    pub query: String,
    /// The API version segment.
    pub version: Option<String>,
    /// The dataset (pixel id) segment.
    pub node_id: Option<String>,
    /// Headers, `Authorization` redacted.
    pub headers: Vec<(String, String)>,
    /// The body as text, with the token's value replaced by `***`.
    pub raw_body: String,
    /// `json`, `form`, `multipart` or `none`.
    pub body_kind: String,
    /// Per event: `object` or `json_string` (double-encoded).
    pub element_encoding: Vec<String>,
    /// Where the token came from: `header`, `query`, `body` or `none`.
    pub token_source: String,
    /// `sha256:` + the first 12 hex of the token's SHA-256: tells tokens apart without
    /// revealing them.
    pub token_fingerprint: Option<String>,
    /// Whether a sent `appsecret_proof` matched (`None`: none sent or nothing to check).
    pub appsecret_proof_valid: Option<bool>,
    /// Top-level `test_event_code`.
    pub test_event_code: Option<String>,
    /// Top-level `partner_agent`.
    pub partner_agent: Option<String>,
    /// Top-level `namespace_id`.
    pub namespace_id: Option<String>,
    /// Top-level `upload_id`.
    pub upload_id: Option<String>,
    /// Top-level `upload_tag`.
    pub upload_tag: Option<String>,
    /// Top-level `upload_source`.
    pub upload_source: Option<String>,
    /// Other top-level keys.
    pub unknown_keys: Vec<String>,
    /// The decoded events.
    pub events: Vec<Value>,
    /// For each event, the `seq` of the request that first delivered the same
    /// (dataset, event_name, event_id) within the dedup window.
    pub duplicate_of: Vec<Option<u64>>,
    /// Record-only observations.
    pub warnings: Vec<RecordedWarning>,
    /// How it ended.
    pub outcome: Outcome,
    /// Response status (0 when the fault sent none).
    pub response_status: u16,
    /// Response body as text.
    pub response_body: String,
}

/// One accepted event, flattened across requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcceptedEvent {
    /// The request's `seq`.
    pub seq: u64,
    /// Index in that request's `data`.
    pub index: usize,
    /// The dataset (pixel id).
    pub dataset: String,
    /// The request's `test_event_code`.
    pub test_event_code: Option<String>,
    /// The request's token fingerprint.
    pub token_fingerprint: Option<String>,
    /// `seq` of the first delivery when this is a duplicate.
    pub duplicate_of: Option<u64>,
    /// The event.
    pub event: Value,
}

pub(crate) struct State {
    pub config: SandboxConfig,
    pub requests: Vec<RecordedRequest>,
    pub faults: VecDeque<Fault>,
    pub clock: Option<i64>,
    dedup: HashMap<String, (i64, u64)>,
    rng: u64,
}

impl State {
    pub fn new(config: SandboxConfig) -> State {
        State {
            clock: config.now,
            rng: config.seed | 1,
            config,
            requests: Vec::new(),
            faults: VecDeque::new(),
            dedup: HashMap::new(),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        })
    }

    pub fn reset(&mut self) {
        self.requests.clear();
        self.faults.clear();
        self.dedup.clear();
    }

    pub fn accepted_events(&self) -> Vec<AcceptedEvent> {
        let mut out = Vec::new();
        for r in &self.requests {
            if !matches!(r.outcome, Outcome::Accepted { .. }) {
                continue;
            }
            for (index, event) in r.events.iter().enumerate() {
                out.push(AcceptedEvent {
                    seq: r.seq,
                    index,
                    dataset: r.node_id.clone().unwrap_or_default(),
                    test_event_code: r.test_event_code.clone(),
                    token_fingerprint: r.token_fingerprint.clone(),
                    duplicate_of: r.duplicate_of.get(index).copied().flatten(),
                    event: event.clone(),
                });
            }
        }
        out
    }

    /// xorshift64*: deterministic ids for snapshots.
    fn next_rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn trace_id(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
        (0..len)
            .map(|_| ALPHABET[(self.next_rand() % 64) as usize] as char)
            .collect()
    }

    fn take_fault(&mut self, dataset: Option<&str>, code: Option<&str>) -> Option<FaultKind> {
        let pos = self.faults.iter().position(|f| {
            f.dataset.as_deref().is_none_or(|d| Some(d) == dataset)
                && f.test_event_code.as_deref().is_none_or(|c| Some(c) == code)
        })?;
        let fault = &mut self.faults[pos];
        if fault.after > 0 {
            fault.after -= 1;
            return None;
        }
        let kind = fault.kind.clone();
        if fault.times == 1 {
            self.faults.remove(pos);
        } else if fault.times > 1 {
            fault.times -= 1;
        }
        Some(kind)
    }

    fn localized(&self) -> bool {
        self.config
            .locale
            .as_deref()
            .is_some_and(|l| !l.starts_with("en"))
    }

    /// A Graph error envelope.
    fn error(&mut self, status: u16, mut error: Value) -> Response {
        let trace = self.trace_id(23);
        error["fbtrace_id"] = json!(trace);
        let mut r = Response::json(status, &json!({ "error": error }));
        r.headers.push(("x-fb-trace-id".into(), self.trace_id(11)));
        r.headers
            .push(("x-fb-request-id".into(), self.trace_id(16)));
        r
    }

    fn invalid_parameter(&mut self, subcode: i64, title: &str, msg: &str) -> Response {
        let (title, msg) = if self.localized() {
            (
                "Ugyldig parameter for hændelsen",
                "Denne hændelse blev afvist. Ret parameteren og send igen.",
            )
        } else {
            (title, msg)
        };
        self.error(
            400,
            json!({"message": "Invalid parameter", "type": "OAuthException", "code": 100,
                   "error_subcode": subcode, "is_transient": false,
                   "error_user_title": title, "error_user_msg": msg}),
        )
    }

    fn code100(&mut self, message: String) -> Response {
        self.error(
            400,
            json!({"message": message, "type": "OAuthException", "code": 100}),
        )
    }

    fn unsupported(&mut self, method: &str, node: &str) -> Response {
        let message = format!(
            "Unsupported {} request. Object with ID '{node}' does not exist, cannot be loaded \
             due to missing permissions, or does not support this operation. Please read the \
             Graph API documentation at https://developers.facebook.com/docs/graph-api",
            method.to_ascii_lowercase()
        );
        self.error(
            400,
            json!({"message": message, "type": "GraphMethodException", "code": 100,
                   "error_subcode": 33}),
        )
    }

    fn permission(&mut self, style: PermissionStyle, node: &str) -> Response {
        match style {
            PermissionStyle::Subcode33 => self.unsupported("POST", node),
            PermissionStyle::Code200 => self.error(
                400,
                json!({"message": "(#200) Permissions error", "type": "OAuthException",
                       "code": 200}),
            ),
            PermissionStyle::Code10 => self.error(
                400,
                json!({"message": "(#10) Application does not have permission for this action",
                       "type": "OAuthException", "code": 10}),
            ),
        }
    }

    fn auth_error(&mut self, status: u16, subcode: Option<i64>, message: &str) -> Response {
        let mut e = json!({"message": message, "type": "OAuthException", "code": 190});
        if let Some(s) = subcode {
            e["error_subcode"] = json!(s);
        }
        let mut r = self.error(status, e);
        r.headers.push((
            "WWW-Authenticate".into(),
            format!("OAuth \"Facebook Platform\" \"invalid_token\" \"{message}\""),
        ));
        r
    }

    fn fault_response(&mut self, kind: &FaultKind, node: &str) -> Action {
        let r = match kind {
            FaultKind::Throttle {
                code,
                subcode,
                http,
                regain_minutes,
            } => {
                let message = match code {
                    4 => "(#4) Application request limit reached".to_owned(),
                    17 => "(#17) User request limit reached".to_owned(),
                    32 => "(#32) Page request limit reached".to_owned(),
                    613 => "(#613) Calls to this api have exceeded the rate limit.".to_owned(),
                    c => format!(
                        "(#{c}) There have been too many calls to this ad-account. Wait a bit \
                         and try again. For more info, please refer to \
                         https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management."
                    ),
                };
                let mut e = json!({"message": message, "type": "OAuthException", "code": code});
                if let Some(s) = subcode {
                    e["error_subcode"] = json!(s);
                }
                let mut r = self.error(*http, e);
                if let Some(m) = regain_minutes {
                    let usage = json!({ node: [{"type": "ads_management", "call_count": 100,
                        "total_cputime": 100, "total_time": 100,
                        "estimated_time_to_regain_access": m,
                        "ads_api_access_tier": "standard_access"}]});
                    r.headers
                        .push(("x-business-use-case-usage".into(), usage.to_string()));
                }
                r
            }
            FaultKind::Http429 {
                retry_after,
                graph_body,
            } => {
                let mut r = if *graph_body {
                    self.error(
                        429,
                        json!({"message": "(#4) Application request limit reached",
                               "type": "OAuthException", "code": 4}),
                    )
                } else {
                    Response {
                        status: 429,
                        headers: vec![("Content-Type".into(), "text/plain".into())],
                        body: b"Too Many Requests".to_vec(),
                    }
                };
                if let Some(s) = retry_after {
                    r.headers.push(("Retry-After".into(), s.to_string()));
                }
                r
            }
            FaultKind::Transient => self.error(
                500,
                json!({"message": "An unexpected error has occurred. Please retry your request later.",
                       "type": "OAuthException", "is_transient": true, "code": 2}),
            ),
            FaultKind::Unknown => self.error(
                500,
                json!({"message": "An unknown error has occurred.", "type": "OAuthException",
                       "code": 1}),
            ),
            FaultKind::DatasetNotReady => self.error(
                400,
                json!({"message": "(#21009) The data set upload is temporarily not ready.",
                       "type": "OAuthException", "code": 21009}),
            ),
            FaultKind::Http5xx { status, body } => {
                let (ct, b) = match body.as_str() {
                    "empty" => ("text/plain", Vec::new()),
                    "json" => (
                        "application/json",
                        br#"{"error":{"message":"Service temporarily unavailable"}}"#.to_vec(),
                    ),
                    _ => (
                        "text/html",
                        b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
                    ),
                };
                Response {
                    status: *status,
                    headers: vec![("Content-Type".into(), ct.into())],
                    body: b,
                }
            }
            FaultKind::Hang => return Action::Hang,
            FaultKind::Reset => return Action::Reset,
            FaultKind::CloseBeforeHeaders => return Action::CloseBeforeHeaders,
            FaultKind::TruncatedBody => {
                let trace = self.trace_id(23);
                let r = Response::json(
                    200,
                    &json!({"events_received": 1, "messages": [], "fbtrace_id": trace}),
                );
                return Action::Truncate(r);
            }
            FaultKind::MalformedJson200 => Response {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: b"not json".to_vec(),
            },
            FaultKind::AuthError { subcode, http } => {
                let message = match subcode {
                    Some(463) => "Error validating access token: Session has expired.",
                    _ => "Error validating access token: The session has been invalidated.",
                };
                self.auth_error(*http, *subcode, message)
            }
            FaultKind::Permission { style } => self.permission(*style, node),
            FaultKind::Raw {
                status,
                headers,
                body,
            } => Response {
                status: *status,
                headers: headers.clone(),
                body: body.clone().into_bytes(),
            },
            FaultKind::Delay { .. } => unreachable!("Delay is applied around normal handling"),
        };
        Action::Respond(r)
    }
}

/// The request body, decoded without the state lock (it is the expensive part).
struct Decoded {
    body_kind: &'static str,
    top: Map<String, Value>,
    data: Option<Vec<Value>>,
    element_encoding: Vec<String>,
    encoded: bool,
}

fn decode_body(req: &Request, gzip_accept: bool) -> Decoded {
    let ct = req
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let encoded = req
        .header("content-encoding")
        .is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    let mut d = Decoded {
        body_kind: "none",
        top: Map::new(),
        data: None,
        element_encoding: Vec::new(),
        encoded,
    };
    let mut raw_data: Option<Value> = None;
    let gunzipped;
    let body: &[u8] = if encoded
        && gzip_accept
        && req
            .header("content-encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("gzip"))
    {
        use std::io::Read;
        let mut out = Vec::new();
        let mut dec =
            flate2::read::GzDecoder::new(&req.body[..]).take(crate::http::MAX_BODY_BYTES as u64);
        match dec.read_to_end(&mut out) {
            Ok(_) => {
                d.encoded = false;
                gunzipped = out;
                &gunzipped
            }
            Err(_) => &req.body,
        }
    } else {
        &req.body
    };
    if body.is_empty() {
        // nothing
    } else if ct.starts_with("application/json") {
        d.body_kind = "json";
        if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(body) {
            raw_data = m.remove("data");
            d.top = m;
        }
    } else if ct.starts_with("application/x-www-form-urlencoded")
        || ct.starts_with("multipart/form-data")
    {
        let fields = if ct.starts_with("multipart") {
            d.body_kind = "multipart";
            parse_multipart(req.header("content-type").unwrap_or(""), body).unwrap_or_default()
        } else {
            d.body_kind = "form";
            parse_form(&String::from_utf8_lossy(body))
        };
        for (k, v) in fields {
            if k == "data" {
                raw_data = serde_json::from_str(&v).ok();
            } else {
                d.top.insert(k, Value::String(v));
            }
        }
    }
    if let Some(Value::Array(items)) = raw_data {
        let mut events = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::String(s) => {
                    d.element_encoding.push("json_string".into());
                    events.push(serde_json::from_str(&s).unwrap_or(Value::String(s)));
                }
                other => {
                    d.element_encoding.push("object".into());
                    events.push(other);
                }
            }
        }
        d.data = Some(events);
    }
    d
}

fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn appsecret_proof(secret: &str, token: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(token.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Replaces `token` (raw and percent-encoded) in `text` by `***`; with `truncated`, also a
/// token cut in half at the end of the text.
fn redact_token(text: &mut String, token: &str, truncated: bool) {
    if token.is_empty() {
        return;
    }
    let encoded: String = token
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    for t in [token, encoded.as_str()] {
        if text.contains(t) {
            *text = text.replace(t, "***");
        }
        if truncated {
            for k in (1..t.len()).rev() {
                if t.is_char_boundary(k) && text.ends_with(&t[..k]) {
                    let end = text.len();
                    text.replace_range(end - k..end, "***");
                    break;
                }
            }
        }
    }
}

fn top_str(top: &Map<String, Value>, k: &str) -> Option<String> {
    top.get(k).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _))
                if matches!(
                    crate::http::url_decode(k).as_str(),
                    "access_token" | "appsecret_proof"
                ) =>
            {
                format!("{k}=***")
            }
            _ => p.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Handles one request: the whole emulation.
pub(crate) fn handle(state: &Mutex<State>, req: Request) -> Action {
    let gzip_accept = {
        let st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.config.gzip_requests == crate::config::GzipMode::Accept
    };
    let decoded = if req.path.starts_with("/__sandbox/") {
        None
    } else {
        Some(decode_body(&req, gzip_accept))
    };
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut decoded) = decoded else {
        return Action::Respond(control(&mut st, &req));
    };
    let action = graph_request(&mut st, req, &mut decoded);
    drop(st);
    // Events that were not recorded are freed here, outside the lock: a 1000-event
    // request is tens of thousands of allocations.
    drop(decoded);
    action
}

fn control(st: &mut State, req: &Request) -> Response {
    let ok = |v: Value| Response::json(200, &v);
    let params = parse_form(&req.query);
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/__sandbox/requests") => ok(json!(st.requests)),
        ("GET", "/__sandbox/events") => {
            let dataset = param("dataset");
            let code = param("test_event_code");
            let events: Vec<AcceptedEvent> = st
                .accepted_events()
                .into_iter()
                .filter(|e| dataset.as_ref().is_none_or(|d| &e.dataset == d))
                .filter(|e| code.is_none() || e.test_event_code == code)
                .collect();
            ok(json!(events))
        }
        ("POST", "/__sandbox/reset") => {
            st.reset();
            ok(json!({"ok": true}))
        }
        ("POST", "/__sandbox/faults") => {
            let faults = match serde_json::from_slice::<Value>(&req.body) {
                Ok(Value::Array(a)) => a
                    .into_iter()
                    .map(serde_json::from_value::<Fault>)
                    .collect::<Result<Vec<_>, _>>(),
                Ok(v) => serde_json::from_value::<Fault>(v).map(|f| vec![f]),
                Err(e) => Err(e),
            };
            match faults {
                Ok(faults) => {
                    let n = faults.len();
                    st.faults.extend(faults);
                    ok(json!({"queued": n}))
                }
                Err(e) => Response::json(400, &json!({"error": format!("bad fault: {e}")})),
            }
        }
        ("GET", "/__sandbox/clock") => ok(json!({"now": st.now()})),
        ("POST", "/__sandbox/clock") => {
            match serde_json::from_slice::<Value>(&req.body)
                .ok()
                .and_then(|v| v["now"].as_i64())
            {
                Some(now) => {
                    st.clock = Some(now);
                    ok(json!({"now": now}))
                }
                None => Response::json(400, &json!({"error": "send {\"now\": <unix seconds>}"})),
            }
        }
        ("POST", "/__sandbox/tokens") => {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let token = body["token"].as_str().map(str::to_owned);
            let mut cfg = body.clone();
            if let Value::Object(m) = &mut cfg {
                m.remove("token");
            }
            match (token, serde_json::from_value::<crate::TokenConfig>(cfg)) {
                (Some(t), Ok(c)) => {
                    st.config.tokens.insert(t, c);
                    ok(json!({"ok": true}))
                }
                _ => Response::json(
                    400,
                    &json!({"error": "send {\"token\": \"…\", \"state\": \"valid\", \"datasets\": [\"*\"]}"}),
                ),
            }
        }
        _ => Response::json(404, &json!({"error": "unknown sandbox control endpoint"})),
    }
}

fn graph_request(st: &mut State, req: Request, decoded: &mut Decoded) -> Action {
    let now = st.now();
    let seq = st.requests.len() as u64 + 1;
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let (version, node) = match segments.as_slice() {
        [v, n, "events"] => (Some((*v).to_owned()), Some((*n).to_owned())),
        _ => (None, None),
    };

    // Tokens: header, then query, then body.
    let header_token = req.header("authorization").and_then(|a| {
        let (scheme, t) = a.split_once(' ')?;
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
            .then(|| t.trim().to_owned())
    });
    let query = parse_form(&req.query);
    let query_token = query
        .iter()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.clone());
    let body_token = top_str(&decoded.top, "access_token");
    let proof = query
        .iter()
        .find(|(k, _)| k == "appsecret_proof")
        .map(|(_, v)| v.clone())
        .or_else(|| top_str(&decoded.top, "appsecret_proof"));
    let sources = [
        ("header", header_token),
        ("query", query_token),
        ("body", body_token),
    ];
    let present: Vec<(&str, String)> = sources
        .iter()
        .filter_map(|(s, t)| t.clone().map(|t| (*s, t)))
        .collect();
    let (token_source, token) = match present.first() {
        Some((s, t)) => ((*s).to_owned(), Some(t.clone())),
        None => ("none".to_owned(), None),
    };
    let conflicting = present.iter().any(|(_, t)| Some(t) != token.as_ref());

    let cap = st.config.max_recorded_body_bytes.min(req.body.len());
    let truncated = cap < req.body.len();
    let mut raw_body = String::from_utf8_lossy(&req.body[..cap]).into_owned();
    for (_, t) in &present {
        redact_token(&mut raw_body, t, truncated);
    }
    // A body token written with escapes (`\u0045AAB…`) is not found literally: then keep no
    // body at all rather than a token.
    let whole = String::from_utf8_lossy(&req.body);
    let escaped_in_json = decoded.body_kind == "json"
        && present
            .iter()
            .any(|(source, t)| *source == "body" && !t.is_empty() && !whole.contains(t.as_str()));
    let still_there = present
        .iter()
        .any(|(_, t)| !t.is_empty() && crate::http::url_decode(&raw_body).contains(t.as_str()));
    if escaped_in_json || still_there {
        raw_body = "(not recorded: the body carries the token in an encoded form)".to_owned();
    }
    if truncated {
        raw_body.push_str(&format!("…({} bytes in all)", req.body.len()));
    }
    let headers = req
        .headers
        .iter()
        .map(|(k, v)| {
            if k == "authorization" {
                let scheme = v.split(' ').next().unwrap_or("");
                (k.clone(), format!("{scheme} ***"))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let known_top = [
        "test_event_code",
        "partner_agent",
        "namespace_id",
        "upload_id",
        "upload_tag",
        "upload_source",
        "access_token",
        "appsecret_proof",
        "platforms",
        "progress",
        "trace",
    ];
    let mut rec = RecordedRequest {
        seq,
        received_at: now,
        method: req.method.clone(),
        path: req.path.clone(),
        query: redact_query(&req.query),
        version: version.clone(),
        node_id: node.clone(),
        headers,
        raw_body,
        body_kind: decoded.body_kind.to_owned(),
        element_encoding: decoded.element_encoding.clone(),
        token_source,
        token_fingerprint: token.as_deref().map(fingerprint),
        appsecret_proof_valid: None,
        test_event_code: top_str(&decoded.top, "test_event_code"),
        partner_agent: top_str(&decoded.top, "partner_agent"),
        namespace_id: top_str(&decoded.top, "namespace_id"),
        upload_id: top_str(&decoded.top, "upload_id"),
        upload_tag: top_str(&decoded.top, "upload_tag"),
        upload_source: top_str(&decoded.top, "upload_source"),
        unknown_keys: decoded
            .top
            .keys()
            .filter(|k| !known_top.contains(&k.as_str()))
            .cloned()
            .collect(),
        events: Vec::new(),
        duplicate_of: Vec::new(),
        warnings: Vec::new(),
        outcome: Outcome::Control,
        response_status: 0,
        response_body: String::new(),
    };

    let node_str = node.clone().unwrap_or_default();
    let mut delay = None;
    let code = rec.test_event_code.clone();
    let action = match st.take_fault(node.as_deref(), code.as_deref()) {
        Some(FaultKind::Delay { ms }) => {
            delay = Some(Duration::from_millis(ms));
            None
        }
        Some(kind) => {
            rec.outcome = Outcome::Faulted {
                fault: kind.name().to_owned(),
            };
            if st.config.record_events {
                rec.events = decoded.data.take().unwrap_or_default();
            }
            Some(st.fault_response(&kind, &node_str))
        }
        None => None,
    };
    let action = match action {
        Some(a) => a,
        None => {
            let (response, outcome) = process(
                st,
                &req,
                decoded,
                &mut rec,
                version,
                node,
                token,
                proof,
                conflicting,
            );
            rec.outcome = outcome;
            if st.config.record_events {
                rec.events = decoded.data.take().unwrap_or_default();
            }
            match delay {
                Some(d) => Action::Delay(d, response),
                None => Action::Respond(response),
            }
        }
    };
    if let Action::Respond(r) | Action::Delay(_, r) | Action::Truncate(r) = &action {
        rec.response_status = r.status;
        rec.response_body = String::from_utf8_lossy(&r.body).into_owned();
    }
    st.requests.push(rec);
    action
}

#[allow(clippy::too_many_arguments)]
fn process(
    st: &mut State,
    req: &Request,
    decoded: &Decoded,
    rec: &mut RecordedRequest,
    version: Option<String>,
    node: Option<String>,
    token: Option<String>,
    proof: Option<String>,
    conflicting: bool,
) -> (Response, Outcome) {
    let reject = |r: Response, code: i64, subcode: Option<i64>| {
        let status = r.status;
        (
            r,
            Outcome::Rejected {
                status,
                code,
                subcode,
            },
        )
    };
    // Routing.
    let (Some(version), Some(node)) = (version, node) else {
        let r = st.unsupported(&req.method, req.path.trim_matches('/'));
        return reject(r, 100, Some(33));
    };
    if req.method != "POST" {
        let r = st.unsupported(&req.method, &node);
        return reject(r, 100, Some(33));
    }
    let version_ok = version.len() > 1
        && version.starts_with('v')
        && version[1..].split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        });
    let mut served_version = version.clone();
    if !version_ok || !st.config.known_versions.contains(&version) {
        if version_ok && st.config.deprecated_versions.contains(&version) {
            match st.config.deprecated_mode {
                DeprecatedMode::Reject => {
                    let r = st.error(
                        400,
                        json!({"message": "(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version.",
                               "type": "OAuthException", "code": 2635}),
                    );
                    return reject(r, 2635, None);
                }
                DeprecatedMode::AutoUpgrade => {
                    served_version = st
                        .config
                        .known_versions
                        .first()
                        .cloned()
                        .unwrap_or(version.clone());
                }
            }
        } else {
            let r = st.error(
                400,
                json!({"message": format!("Unknown path components: /{version}"),
                       "type": "OAuthException", "code": 2500}),
            );
            return reject(r, 2500, None);
        }
    }
    // Authentication.
    let Some(token) = token else {
        let r = st.error(
            400,
            json!({"message": "An access token is required to request this resource.",
                   "type": "OAuthException", "code": 104}),
        );
        return reject(r, 104, None);
    };
    if conflicting && st.config.conflicting_tokens == ConflictMode::Reject {
        let r = st.code100("Conflicting access tokens".into());
        return reject(r, 100, None);
    }
    let status = st.config.auth_error_status;
    let token_cfg = st.config.tokens.get(&token).cloned();
    let token_cfg = match token_cfg {
        Some(c) if c.state == TokenState::Valid => c,
        Some(c) if c.state == TokenState::Expired => {
            let r = st.auth_error(
                status,
                Some(463),
                "Error validating access token: Session has expired on Friday, 26-Jun-26 15:48:19 PDT. The current time is Saturday, 27-Jun-26 09:12:44 PDT.",
            );
            return reject(r, 190, Some(463));
        }
        Some(c) if c.state == TokenState::Invalid => {
            let r = st.auth_error(
                status,
                Some(c.invalid_subcode),
                "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
            );
            return reject(r, 190, Some(c.invalid_subcode));
        }
        _ => {
            let r = st.auth_error(
                status,
                None,
                "Invalid OAuth access token - Cannot parse access token",
            );
            return reject(r, 190, None);
        }
    };
    if let Some(secret) = &token_cfg.app_secret {
        match &proof {
            Some(p) => {
                // Lowercase hex, as the wire contract has it (§1.3): an uppercase proof is refused.
                let valid = *p == appsecret_proof(secret, &token);
                rec.appsecret_proof_valid = Some(valid);
                if !valid {
                    let r = st.error(
                        400,
                        json!({"message": "Invalid appsecret_proof provided in the API argument",
                               "type": "GraphMethodException", "code": 100}),
                    );
                    return reject(r, 100, None);
                }
            }
            None if token_cfg.require_appsecret_proof => {
                let r = st.error(
                    400,
                    json!({"message": "API calls from the server require an appsecret_proof argument",
                           "type": "GraphMethodException", "code": 100}),
                );
                return reject(r, 100, None);
            }
            None => {}
        }
    }
    if node.is_empty() || !node.bytes().all(|b| b.is_ascii_digit()) {
        let r = st.unsupported("POST", &node);
        return reject(r, 100, Some(33));
    }
    if !token_cfg.datasets.iter().any(|d| d == "*" || d == &node) {
        let style = st.config.permission_error_style;
        let r = st.permission(style, &node);
        let (code, sub) = match style {
            PermissionStyle::Subcode33 => (100, Some(33)),
            PermissionStyle::Code200 => (200, None),
            PermissionStyle::Code10 => (10, None),
        };
        return reject(r, code, sub);
    }
    // The body.
    let data_required = "(#100) The parameter data is required".to_owned();
    if decoded.encoded {
        let r = st.code100(data_required);
        return reject(r, 100, None);
    }
    let events = match &decoded.data {
        Some(events) if !events.is_empty() => events,
        _ => {
            let r = st.code100(data_required);
            return reject(r, 100, None);
        }
    };
    if events.len() > st.config.max_events {
        let r = st.code100(format!(
            "(#100) Param data must contain at most {} events",
            st.config.max_events
        ));
        return reject(r, 100, None);
    }
    // Meta's validations: the first failing event rejects the whole batch.
    let now = st.now();
    for (i, e) in events.iter().enumerate() {
        if let Some((code, subcode, r)) = validate_event(st, i, e, now) {
            return reject(r, code, subcode);
        }
    }
    // Accepted.
    record_warnings(rec, decoded, events);
    let mut dups = Vec::with_capacity(events.len());
    for e in events {
        dups.push(dedup(st, &node, e, now, rec.seq));
    }
    rec.duplicate_of = dups;
    let trace = st.trace_id(23);
    let mut body = Map::new();
    if !st.config.omit_events_received {
        let n = st
            .config
            .events_received_override
            .unwrap_or(events.len() as i64);
        body.insert("events_received".into(), json!(n));
    }
    body.insert("messages".into(), json!(st.config.messages_on_success));
    body.insert("fbtrace_id".into(), json!(trace));
    let body = Value::Object(body);
    let mut r = Response::json(200, &body);
    r.headers.extend([
        ("facebook-api-version".to_owned(), served_version),
        ("x-fb-trace-id".to_owned(), st.trace_id(11)),
        ("x-fb-request-id".to_owned(), st.trace_id(16)),
        ("x-fb-rev".to_owned(), "1000000000".to_owned()),
        (
            "Cache-Control".to_owned(),
            "private, no-cache, no-store, must-revalidate".to_owned(),
        ),
    ]);
    if let Some(k) = st.config.usage_header_after {
        let calls = st
            .requests
            .iter()
            .filter(|q| q.node_id.as_deref() == Some(node.as_str()))
            .count() as u64
            + 1;
        if calls > k {
            let usage = json!({ node.as_str(): [{"type": "ads_management", "call_count": calls,
                "total_cputime": calls, "total_time": calls, "estimated_time_to_regain_access": 0,
                "ads_api_access_tier": "standard_access"}]});
            r.headers
                .push(("x-business-use-case-usage".to_owned(), usage.to_string()));
        }
    }
    let outcome = Outcome::Accepted {
        events_received: events.len(),
    };
    (r, outcome)
}

fn validate_event(
    st: &mut State,
    i: usize,
    e: &Value,
    now: i64,
) -> Option<(i64, Option<i64>, Response)> {
    let fail100 = |st: &mut State, msg: String| Some((100, None, st.code100(msg)));
    let name = e.get("event_name").and_then(Value::as_str).unwrap_or("");
    if name.trim().is_empty() {
        return fail100(st, "(#100) The parameter event_name is required".into());
    }
    let time = match e.get("event_time") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .ok()
            .filter(|_| st.config.accept_numeric_strings)
            .or_else(|| iso8601(s).filter(|_| st.config.accept_iso8601)),
        _ => None,
    };
    let Some(time) = time else {
        return fail100(
            st,
            format!("(#100) param data[{i}][event_time] must be an integer"),
        );
    };
    let source = e.get("action_source").and_then(Value::as_str).unwrap_or("");
    if !ACTION_SOURCES.contains(&source) {
        return fail100(
            st,
            format!(
                "(#100) param data[{i}][action_source] must be one of {{{}}}",
                ACTION_SOURCES.join(", ")
            ),
        );
    }
    let days = if source == "physical_store" { 62 } else { 7 };
    if time < now - days * 86_400 {
        let r = st.invalid_parameter(
            2_804_003,
            "Event Timestamp Too Old",
            "The timestamp for this event is too far in the past. Events need to be sent from your server within 7 days of when they occurred. Enter a timestamp that has occurred within the last 7 days.",
        );
        return Some((100, Some(2_804_003), r));
    }
    if let Some(tol) = st.config.future_tolerance_secs {
        if time > now + tol {
            let sub = st.config.future_subcode;
            let r = st.invalid_parameter(
                sub,
                "Event Timestamp In Future",
                "The timestamp for this event is in the future. Enter the time the event happened.",
            );
            return Some((100, Some(sub), r));
        }
    }
    let ud = e.get("user_data").and_then(Value::as_object);
    let keys: Vec<&str> = ud
        .map(|m| {
            m.iter()
                .filter(|(_, v)| match v {
                    Value::Null => false,
                    Value::String(s) => !s.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    _ => true,
                })
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty()
        || TOO_BROAD
            .iter()
            .any(|set| keys.iter().all(|k| set.contains(k)))
    {
        let r = st.invalid_parameter(
            2_804_050,
            "You haven't added sufficient customer information parameter data",
            "This event has no customer information parameters, or it has a combination of customer information parameters that is too broad to be effective for matching.",
        );
        return Some((100, Some(2_804_050), r));
    }
    let empty = Map::new();
    let ud = ud.unwrap_or(&empty);
    let cd = e.get("custom_data").and_then(Value::as_object);
    if name == "Purchase" {
        if cd.and_then(|c| c.get("value")).is_none_or(Value::is_null) {
            let r = st.invalid_parameter(
                2_804_009,
                "Missing Value for Purchase Event",
                "Your purchase event doesn’t include a value parameter. Enter a value. For example: 1.99",
            );
            return Some((100, Some(2_804_009), r));
        }
        let currency = cd.and_then(|c| c.get("currency")).and_then(Value::as_str);
        let valid = currency.is_some_and(is_currency);
        if !valid {
            let sub = st.config.currency_subcode;
            let r = st.invalid_parameter(
                sub,
                "Missing or Invalid Currency",
                "Your purchase event needs a valid ISO 4217 currency code, such as USD.",
            );
            return Some((100, Some(sub), r));
        }
    }
    if let Some(lead) = ud.get("lead_id") {
        let s = match lead {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !(15..=16).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            let r = st.invalid_parameter(
                2_804_036,
                "Invalid Lead ID",
                "One or more of your lead IDs are invalid or deleted. Your entire event batch may be rejected if there are one or more invalid lead IDs. The lead ID is a 15–16 digit number generated by Meta.",
            );
            return Some((100, Some(2_804_036), r));
        }
    }
    if source == "business_messaging"
        && e.get("messaging_channel").and_then(Value::as_str) == Some("whatsapp")
        && !ud.contains_key("whatsapp_business_account_id")
        && !ud.contains_key("page_id")
    {
        let r = st.invalid_parameter(
            2_804_116,
            "Missing Page or WhatsApp Business Account identification",
            "Business messaging events need page_id or whatsapp_business_account_id.",
        );
        return Some((100, Some(2_804_116), r));
    }
    if let Some(dpo) = e.get("data_processing_options") {
        let ok_dpo = match dpo.as_array() {
            Some(a) => a.iter().all(|v| v.as_str() == Some("LDU")),
            None => false,
        };
        let country = e
            .get("data_processing_options_country")
            .and_then(Value::as_i64);
        let state = e
            .get("data_processing_options_state")
            .and_then(Value::as_i64);
        let ok_country = country.is_none_or(|c| c == 0 || c == 1);
        let ok_state = state.is_none_or(|s| s == 0 || (1000..=1013).contains(&s));
        if !(ok_dpo && ok_country && ok_state) {
            return fail100(
                st,
                format!("(#100) param data[{i}][data_processing_options] is invalid"),
            );
        }
    }
    if source == "website" {
        if st.config.enforce_website_user_agent && !ud.contains_key("client_user_agent") {
            let r = st.invalid_parameter(
                2_804_050,
                "You haven't added sufficient customer information parameter data",
                "Website events need client_user_agent.",
            );
            return Some((100, Some(2_804_050), r));
        }
        if st.config.enforce_website_url && e.get("event_source_url").is_none() {
            return fail100(
                st,
                format!("(#100) param data[{i}][event_source_url] is required"),
            );
        }
    }
    if st.config.enforce_hashed_pii {
        let unhashed = HASHED_KEYS.iter().any(|k| {
            let values: Vec<&Value> = match ud.get(*k) {
                Some(Value::Array(a)) => a.iter().collect(),
                Some(v) => vec![v],
                None => vec![],
            };
            values.iter().any(|v| !v.as_str().is_some_and(is_digest))
        });
        if unhashed {
            let r = st.invalid_parameter(
                2_804_020,
                "Unhashed Customer Information",
                "Customer information parameters must be hashed with SHA-256.",
            );
            return Some((100, Some(2_804_020), r));
        }
    }
    if st.config.enforce_cookie_format {
        for (k, fbc) in [("fbc", true), ("fbp", false)] {
            if let Some(v) = ud.get(k) {
                if !v.as_str().is_some_and(|s| cookie_ok(s, fbc)) {
                    let r = st.invalid_parameter(
                        2_804_019,
                        "Invalid Parameter",
                        "A click or browser id is malformed.",
                    );
                    return Some((100, Some(2_804_019), r));
                }
            }
        }
    }
    None
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC only; the knob is for probing clients).
fn iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d, hh, mm, ss) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn is_currency(code: &str) -> bool {
    static CODES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let codes = CODES.get_or_init(|| ISO_4217.split_whitespace().collect());
    code.len() == 3 && codes.contains(code.to_ascii_uppercase().as_str())
}

fn is_known_user_data_key(key: &str) -> bool {
    static KEYS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| KNOWN_USER_DATA.iter().copied().collect())
        .contains(key)
}

fn is_digest(s: &str) -> bool {
    let digest = s.split_once('.').map_or(s, |(d, _)| d);
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn cookie_ok(s: &str, fbc: bool) -> bool {
    let p: Vec<&str> = s.split('.').collect();
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    (4..=5).contains(&p.len())
        && p[0] == "fb"
        && digits(p[1])
        && digits(p[2])
        && (10..=13).contains(&p[2].len())
        && if fbc { !p[3].is_empty() } else { digits(p[3]) }
}

fn record_warnings(rec: &mut RecordedRequest, decoded: &Decoded, events: &[Value]) {
    let mut w = |i: Option<usize>, code: &str| {
        rec.warnings.push(RecordedWarning {
            event_index: i,
            code: code.to_owned(),
        })
    };
    if decoded.top.contains_key("test_event_code") {
        w(None, "test_event_code_present");
    }
    for (i, e) in events.iter().enumerate() {
        if e["event_time"]
            .as_i64()
            .is_some_and(|t| t > 100_000_000_000)
        {
            w(Some(i), "event_time_in_milliseconds");
        }
        if e.get("customer_segmentation").is_some() {
            w(Some(i), "customer_segmentation_at_event_level");
        }
        if e["custom_data"]["value"].is_string() {
            w(Some(i), "value_numeric_string");
        }
        if e["custom_data"]["currency"]
            .as_str()
            .is_some_and(|c| c.chars().any(|c| c.is_ascii_lowercase()))
        {
            w(Some(i), "currency_lowercase");
        }
        if let Some(ud) = e["user_data"].as_object() {
            for k in ["fbc", "fbp"] {
                if ud
                    .get(k)
                    .and_then(Value::as_str)
                    .and_then(|s| s.split('.').nth(2))
                    .is_some_and(|t| t.len() == 10)
                {
                    w(Some(i), "cookie_time_in_seconds");
                }
            }
            if ud.keys().any(|k| !is_known_user_data_key(k)) {
                w(Some(i), "unknown_user_data_key");
            }
        }
    }
}

/// Marks a resent event; returns the `seq` of the first delivery within the window.
fn dedup(st: &mut State, node: &str, e: &Value, now: i64, seq: u64) -> Option<u64> {
    let name = e["event_name"].as_str().unwrap_or("");
    let (key, window) = if e["action_source"] == "physical_store" {
        let cd = &e["custom_data"];
        let who = match cd["order_id"].as_str() {
            Some(o) => format!("order:{o}"),
            None => format!("user:{}", e["user_data"]),
        };
        (
            format!(
                "offline|{node}|{}|{name}|{}|{who}",
                e["event_time"], cd["item_number"]
            ),
            7 * 86_400,
        )
    } else {
        let id = match &e["event_id"] {
            Value::String(s) => s.clone(),
            Value::Null => return None,
            other => other.to_string(),
        };
        (format!("{node}|{name}|{id}"), st.config.dedup_window_secs)
    };
    match st.dedup.get(&key) {
        Some(&(first, first_seq)) if now - first <= window => Some(first_seq),
        _ => {
            st.dedup.insert(key, (now, seq));
            None
        }
    }
}
