//! Stage 5 of the pipeline: split prepared events into requests and build the request body.
//!
//! Meta takes at most 1000 events per request, all for one pixel. The body is JSON:
//! `{"data":[…],"test_event_code":…,"partner_agent":…}`. Credentials are never part of it:
//! the transport sends the token in the `Authorization` header.

use crate::model::ServerEvent;
use crate::prepare::PreparedEvent;
use serde::{Deserialize, Serialize};

/// Meta's limit of events per request.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// The top-level fields sent next to `data` (`reference/wire-contract.md` §1.5, §4).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFields {
    /// Routes events to Events Manager's Test Events tab (they are still processed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_event_code: Option<String>,
    /// The platform that sends on the advertiser's behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_agent: Option<String>,
    /// Scope used to resolve `external_id` or a third-party id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_id: Option<String>,
    /// Id of the current set of uploaded events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Tag of an offline upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_tag: Option<String>,
    /// The origin of the uploaded data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_source: Option<String>,
    /// `hex(HMAC-SHA256(app_secret, access_token))`, set by [`crate::request::request_fields`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appsecret_proof: Option<String>,
}

impl std::fmt::Debug for RequestFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestFields")
            .field("test_event_code", &self.test_event_code)
            .field("partner_agent", &self.partner_agent)
            .field("namespace_id", &self.namespace_id)
            .field("upload_id", &self.upload_id)
            .field("upload_tag", &self.upload_tag)
            .field("upload_source", &self.upload_source)
            .field(
                "appsecret_proof",
                &self.appsecret_proof.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl AsRef<ServerEvent> for ServerEvent {
    fn as_ref(&self) -> &ServerEvent {
        self
    }
}

impl AsRef<ServerEvent> for PreparedEvent {
    fn as_ref(&self) -> &ServerEvent {
        &self.event
    }
}

/// Splits `events` into request-sized slices of at most `max` (clamped to 1..=1000) events.
///
/// ```
/// let v: Vec<u32> = (0..2500).collect();
/// let sizes: Vec<usize> = freight::batch::batches(&v, 1000).map(|b| b.len()).collect();
/// assert_eq!(sizes, [1000, 1000, 500]);
/// ```
pub fn batches<E>(events: &[E], max: usize) -> std::slice::Chunks<'_, E> {
    events.chunks(max.clamp(1, MAX_EVENTS_PER_REQUEST))
}

/// The JSON request body for one batch.
pub fn request_body<E: AsRef<ServerEvent>>(events: &[E], fields: &RequestFields) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + events.len() * 2048);
    write_request_body(&mut out, events, fields);
    out
}

/// Writes the JSON request body for one batch into `out` (appending).
pub fn write_request_body<E: AsRef<ServerEvent>>(
    out: &mut Vec<u8>,
    events: &[E],
    fields: &RequestFields,
) {
    out.extend_from_slice(b"{\"data\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_event(out, e.as_ref());
    }
    out.push(b']');
    let top = serde_json::to_vec(fields).unwrap_or_default();
    // `top` is `{}` or `{"k":…}`: splice its members after `data`.
    if top.len() > 2 {
        out.push(b',');
        out.extend_from_slice(&top[1..top.len() - 1]);
    }
    out.push(b'}');
}

/// A request body built one event at a time, reusing its buffer between requests: the
/// streaming path, where each event is prepared, written and dropped, so memory stays
/// bounded by one request.
///
/// ```
/// use freight::batch::{RequestBody, RequestFields};
/// use freight::prepare::{PrepareOptions, Preparer};
/// let preparer = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
/// let mut body = RequestBody::new(&RequestFields::default());
/// let event = serde_json::json!({"event_name": "Lead", "event_time": 1_795_391_000,
///     "action_source": "email", "user_data": {"em": "a@example.com"}});
/// body.push(&preparer.prepare_one(&event, 0).unwrap().event);
/// assert_eq!(body.len(), 1);
/// let bytes = body.finish();
/// assert!(bytes.ends_with(b"]}"));
/// body.clear();
/// assert!(body.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct RequestBody {
    buf: Vec<u8>,
    tail: Vec<u8>,
    count: usize,
    finished: bool,
}

impl RequestBody {
    /// An empty body with the given top-level fields.
    pub fn new(fields: &RequestFields) -> RequestBody {
        let top = serde_json::to_vec(fields).unwrap_or_default();
        let mut tail = b"]".to_vec();
        if top.len() > 2 {
            tail.push(b',');
            tail.extend_from_slice(&top[1..top.len() - 1]);
        }
        tail.push(b'}');
        let mut body = RequestBody {
            buf: Vec::with_capacity(64 * 1024),
            tail,
            count: 0,
            finished: false,
        };
        body.clear();
        body
    }

    /// Appends one event.
    pub fn push(&mut self, event: &ServerEvent) {
        if self.finished {
            // Reopen: drop the tail written by `finish`.
            self.buf.truncate(self.buf.len() - self.tail.len());
            self.finished = false;
        }
        if self.count > 0 {
            self.buf.push(b',');
        }
        write_event(&mut self.buf, event);
        self.count += 1;
    }

    /// Number of events in the body.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no event was pushed since the last [`RequestBody::clear`].
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the body so far, in bytes.
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// The complete JSON body.
    pub fn finish(&mut self) -> &[u8] {
        if !self.finished {
            self.buf.extend_from_slice(&self.tail);
            self.finished = true;
        }
        &self.buf
    }

    /// Empties the body, keeping its buffer.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"data\":[");
        self.count = 0;
        self.finished = false;
    }
}

/// Writes one event as JSON: the same bytes as `serde_json::to_writer(out, event)`, without
/// serde_json's byte-by-byte escaping scan for the strings that need none (digests, ids):
/// the body is most of the cost of a request.
pub fn write_event(out: &mut Vec<u8>, e: &ServerEvent) {
    let mut o = Obj::new(out);
    o.str("event_name", &e.event_name);
    o.int("event_time", e.event_time);
    o.str("action_source", e.action_source.as_str());
    o.opt_str("event_id", e.event_id.as_deref());
    o.opt_str("event_source_url", e.event_source_url.as_deref());
    o.opt_str("referrer_url", e.referrer_url.as_deref());
    if let Some(b) = e.opt_out {
        o.key("opt_out");
        o.out.extend_from_slice(if b { b"true" } else { b"false" });
    }
    o.key("user_data");
    write_user_data(o.out, &e.user_data);
    if let Some(cd) = &e.custom_data {
        o.key("custom_data");
        write_custom_data(o.out, cd);
    }
    o.opt_serde("app_data", e.app_data.as_deref());
    o.opt_serde(
        "data_processing_options",
        e.data_processing_options.as_ref(),
    );
    o.opt_int(
        "data_processing_options_country",
        e.data_processing_options_country,
    );
    o.opt_int(
        "data_processing_options_state",
        e.data_processing_options_state,
    );
    o.opt_serde("original_event_data", e.original_event_data.as_ref());
    o.opt_serde("attribution_data", e.attribution_data.as_deref());
    o.opt_str("messaging_channel", e.messaging_channel.as_deref());
    o.opt_str("customer_segmentation", e.customer_segmentation.as_deref());
    o.opt_str(
        "advanced_measurement_table",
        e.advanced_measurement_table.as_deref(),
    );
    o.end();
}

fn write_user_data(out: &mut Vec<u8>, u: &crate::model::UserData) {
    let mut o = Obj::new(out);
    for (k, list) in [
        ("em", &u.em),
        ("ph", &u.ph),
        ("fn", &u.r#fn),
        ("ln", &u.ln),
        ("ge", &u.ge),
        ("db", &u.db),
        ("ct", &u.ct),
        ("st", &u.st),
        ("zp", &u.zp),
        ("country", &u.country),
        ("external_id", &u.external_id),
    ] {
        if !list.is_empty() {
            o.key(k);
            o.out.push(b'[');
            for (i, v) in list.iter().enumerate() {
                if i > 0 {
                    o.out.push(b',');
                }
                write_str(o.out, v);
            }
            o.out.push(b']');
        }
    }
    for (k, v) in [
        ("client_ip_address", &u.client_ip_address),
        ("client_user_agent", &u.client_user_agent),
        ("fbc", &u.fbc),
        ("fbp", &u.fbp),
        ("subscription_id", &u.subscription_id),
        ("fb_login_id", &u.fb_login_id),
        ("lead_id", &u.lead_id),
        ("anon_id", &u.anon_id),
        ("madid", &u.madid),
        ("page_id", &u.page_id),
        ("page_scoped_user_id", &u.page_scoped_user_id),
        ("ctwa_clid", &u.ctwa_clid),
        ("ig_account_id", &u.ig_account_id),
        (
            "instagram_business_account_id",
            &u.instagram_business_account_id,
        ),
        ("ig_sid", &u.ig_sid),
        (
            "whatsapp_business_account_id",
            &u.whatsapp_business_account_id,
        ),
        ("f5first", &u.f5first),
        ("f5last", &u.f5last),
        ("fi", &u.fi),
        ("dobd", &u.dobd),
        ("dobm", &u.dobm),
        ("doby", &u.doby),
    ] {
        o.opt_str(k, v.as_deref());
    }
    o.end();
}

fn write_custom_data(out: &mut Vec<u8>, c: &crate::model::CustomData) {
    let mut o = Obj::new(out);
    o.opt_num("value", c.value);
    o.opt_str("currency", c.currency.as_deref());
    o.opt_str("content_name", c.content_name.as_deref());
    o.opt_str("content_category", c.content_category.as_deref());
    o.opt_serde("content_ids", c.content_ids.as_ref());
    if let Some(contents) = &c.contents {
        o.key("contents");
        o.out.push(b'[');
        for (i, item) in contents.iter().enumerate() {
            if i > 0 {
                o.out.push(b',');
            }
            let mut io = Obj::new(o.out);
            io.str("id", &item.id);
            io.opt_int("quantity", item.quantity);
            io.opt_num("item_price", item.item_price);
            io.opt_str("title", item.title.as_deref());
            io.opt_str("description", item.description.as_deref());
            io.opt_str("brand", item.brand.as_deref());
            io.opt_str("category", item.category.as_deref());
            io.opt_str("delivery_category", item.delivery_category.as_deref());
            io.extra(&item.extra);
            io.end();
        }
        o.out.push(b']');
    }
    o.opt_str("content_type", c.content_type.as_deref());
    o.opt_str("order_id", c.order_id.as_deref());
    o.opt_num("predicted_ltv", c.predicted_ltv);
    o.opt_num("net_revenue", c.net_revenue);
    o.opt_int("num_items", c.num_items);
    o.opt_str("status", c.status.as_deref());
    o.opt_str("search_string", c.search_string.as_deref());
    o.opt_str("delivery_category", c.delivery_category.as_deref());
    o.opt_str("item_number", c.item_number.as_deref());
    o.extra(&c.extra);
    o.end();
}

/// A JSON object being written.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        // Keys are the model's own names (or custom_data keys, escaped as needed).
        if needs_escape(k.as_bytes()) {
            write_str(self.out, k);
            self.out.push(b':');
        } else {
            self.out.reserve(k.len() + 3);
            self.out.push(b'"');
            self.out.extend_from_slice(k.as_bytes());
            self.out.extend_from_slice(b"\":");
        }
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        write_str(self.out, v);
    }

    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }

    fn int(&mut self, k: &str, v: i64) {
        self.key(k);
        self.serde(&v);
    }

    fn opt_int(&mut self, k: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.int(k, v);
        }
    }

    fn opt_num(&mut self, k: &str, v: Option<f64>) {
        if let Some(v) = v {
            self.key(k);
            self.serde(&v);
        }
    }

    fn opt_serde<T: Serialize + ?Sized>(&mut self, k: &str, v: Option<&T>) {
        if let Some(v) = v {
            self.key(k);
            self.serde(v);
        }
    }

    fn extra(&mut self, m: &serde_json::Map<String, serde_json::Value>) {
        for (k, v) in m {
            self.key(k);
            self.serde(v);
        }
    }

    fn serde<T: Serialize + ?Sized>(&mut self, v: &T) {
        // Writing into a Vec cannot fail, and the model has no non-string map keys.
        let _ = serde_json::to_writer(&mut *self.out, v);
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

/// True when a byte needs escaping; branch-free so the loop vectorizes.
fn needs_escape(b: &[u8]) -> bool {
    b.iter().fold(false, |acc, &c| {
        acc | (c < 0x20) | (c == b'"') | (c == b'\\')
    })
}

/// A JSON string, copied as is when it needs no escaping (as serde_json escapes: control
/// characters, `"` and `\`).
fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    if !needs_escape(b) {
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::{prepare, PrepareOptions};
    use serde_json::json;

    #[test]
    fn body_has_data_then_top_level_fields() {
        let now = 1_700_000_000;
        let ev = json!({"event_name":"Lead","event_time":now,"action_source":"email",
                        "user_data":{"em":"a@b.co"}});
        let prepared = prepare([&ev], &PrepareOptions::default(), now);
        let fields = RequestFields {
            test_event_code: Some("TEST123".into()),
            partner_agent: Some("plfreight-1.0-0.1".into()),
            ..Default::default()
        };
        let body = request_body(&prepared.events, &fields);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        assert_eq!(v["test_event_code"], "TEST123");
        assert_eq!(v["partner_agent"], "plfreight-1.0-0.1");
        assert!(v.get("namespace_id").is_none());
        let empty = request_body::<ServerEvent>(&[], &RequestFields::default());
        assert_eq!(empty, b"{\"data\":[]}");
    }

    #[test]
    fn fast_writer_matches_serde_json() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/events.jsonl"
        ))
        .unwrap();
        let mut checked = 0;
        for line in text.lines() {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let now = case["now"].as_i64().unwrap();
            for e in prepare([&case["event"]], &PrepareOptions::default(), now).events {
                let mut fast = Vec::new();
                write_event(&mut fast, &e.event);
                let serde = serde_json::to_vec(&e.event).unwrap();
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    String::from_utf8(serde).unwrap()
                );
                checked += 1;
            }
        }
        assert!(checked > 20);
        let mut e = prepare(
            [
                &json!({"event_name":"A\"b\\c\n\u{1}é","event_time":1,"action_source":"other",
                     "user_data":{"em":"a@b.co"},"custom_data":{"x":"\""}}),
            ],
            &PrepareOptions::default(),
            1,
        );
        let e = e.events.pop().unwrap().event;
        let mut fast = Vec::new();
        write_event(&mut fast, &e);
        assert_eq!(fast, serde_json::to_vec(&e).unwrap());
    }

    #[test]
    fn batches_clamp_to_meta_limit() {
        let v = vec![0u8; 2001];
        assert_eq!(
            batches(&v, 5000).map(<[u8]>::len).collect::<Vec<_>>(),
            [1000, 1000, 1]
        );
        assert_eq!(batches(&v[..3], 0).count(), 3);
    }
}
