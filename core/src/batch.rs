//! Stage 5 of the pipeline: split prepared events into requests and build the request body.
//!
//! Meta takes at most 1000 events per request, all for one pixel. The body is JSON:
//! `{"data":[…],"test_event_code":…,"partner_agent":…}`. Credentials are never part of it:
//! the transport sends the token in the `Authorization` header.

use crate::model::{write_hex64, ServerEvent, UserValue};
use crate::prepare::PreparedEvent;
use serde::{Deserialize, Serialize};

/// Meta's limit of events per request.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// The most [`RequestBody::expect`] reserves ahead.
const MAX_RESERVED: usize = 16 << 20;

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

impl RequestFields {
    /// Checks the fields a caller sets: each one given is a non-blank string of at most 256
    /// characters without control characters (as `partner_agent` in the client's
    /// configuration); `appsecret_proof` is computed from the destination, never given.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("test_event_code", &self.test_event_code),
            ("partner_agent", &self.partner_agent),
            ("namespace_id", &self.namespace_id),
            ("upload_id", &self.upload_id),
            ("upload_tag", &self.upload_tag),
            ("upload_source", &self.upload_source),
        ] {
            if let Some(v) = v {
                if v.trim().is_empty() || v.chars().count() > 256 || v.chars().any(char::is_control)
                {
                    return Err(format!(
                        "{name} must be a non-blank string of at most 256 characters without \
                         control characters"
                    ));
                }
            }
        }
        if self.appsecret_proof.is_some() {
            return Err("appsecret_proof is computed from the destination's app secret".into());
        }
        Ok(())
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
/// bounded by one request. With [`Preparer::process_into`](crate::prepare::Preparer::process_into)
/// and one reused slot, a stream of events allocates nothing at all (its example).
///
/// ```
/// use freight::batch::{RequestBody, RequestFields};
/// use freight::prepare::{Outcome, PrepareOptions, Preparer};
/// let preparer = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
/// let mut body = RequestBody::new(&RequestFields::default());
/// let event = serde_json::json!({"event_name": "Lead", "event_time": 1_795_391_000,
///     "action_source": "email", "user_data": {"em": "a@example.com"}});
/// if let Outcome::Ready(prepared) = preparer.process(&event, 0) {
///     body.push(&prepared.event);
/// }
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
    /// Events the caller expects to push ([`RequestBody::expect`]).
    expected: usize,
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
            expected: 0,
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
        let start = self.buf.len();
        write_event(&mut self.buf, event);
        self.count += 1;
        if self.count == 1 && self.expected > 1 {
            // Room for the others at the first one's size, and an eighth more.
            let size = self.buf.len() - start + 1;
            let rest = size.saturating_mul(self.expected - 1);
            let room = rest.saturating_add(rest / 8).min(MAX_RESERVED);
            // Not reserved if it cannot be: the buffer then grows as it goes.
            let _ = self.buf.try_reserve(room);
        }
    }

    /// Tells the body how many events each request it builds will hold (the hint is kept
    /// by [`RequestBody::clear`]): once the first event is written, room for the others is
    /// reserved at its size (at most 16 MiB), so that a large body is not copied each time
    /// its buffer would double. A hint only: any number of events may be pushed.
    pub fn expect(&mut self, events: usize) {
        self.expected = events;
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

/// `"name":` for a key of the model, built at compile time: the writer copies a constant.
macro_rules! key {
    ($name:literal) => {
        concat!("\"", $name, "\":")
    };
}

/// Writes one event as JSON: the same bytes as `serde_json::to_writer(out, event)`, without
/// serde_json's byte-by-byte escaping scan for the strings that need none (digests, ids):
/// the body is most of the cost of a request.
pub fn write_event(out: &mut Vec<u8>, e: &ServerEvent) {
    let mut o = Obj::new(out);
    o.str(key!("event_name"), &e.event_name);
    o.int(key!("event_time"), e.event_time);
    o.str(key!("action_source"), e.action_source.as_str());
    o.opt_str(key!("event_id"), e.event_id.as_deref());
    o.opt_str(key!("event_source_url"), e.event_source_url.as_deref());
    o.opt_str(key!("referrer_url"), e.referrer_url.as_deref());
    if let Some(b) = e.opt_out {
        o.key(key!("opt_out"));
        o.out.extend_from_slice(if b { b"true" } else { b"false" });
    }
    o.key(key!("user_data"));
    write_user_data(o.out, &e.user_data);
    if let Some(cd) = &e.custom_data {
        o.key(key!("custom_data"));
        write_custom_data(o.out, cd);
    }
    o.opt_serde(key!("app_data"), e.app_data.as_deref());
    o.opt_serde(
        key!("data_processing_options"),
        e.data_processing_options.as_ref(),
    );
    o.opt_int(
        key!("data_processing_options_country"),
        e.data_processing_options_country,
    );
    o.opt_int(
        key!("data_processing_options_state"),
        e.data_processing_options_state,
    );
    o.opt_serde(key!("original_event_data"), e.original_event_data.as_ref());
    o.opt_serde(key!("attribution_data"), e.attribution_data.as_deref());
    o.opt_str(key!("messaging_channel"), e.messaging_channel.as_deref());
    o.opt_str(
        key!("customer_segmentation"),
        e.customer_segmentation.as_deref(),
    );
    o.opt_str(
        key!("advanced_measurement_table"),
        e.advanced_measurement_table.as_deref(),
    );
    o.end();
}

fn write_user_data(out: &mut Vec<u8>, u: &crate::model::UserData) {
    let mut o = Obj::new(out);
    // Expanded field by field so that every key is a constant.
    macro_rules! lists {
        ($($name:literal => $field:ident),* $(,)?) => {$(
            if !u.$field.is_empty() {
                o.key(key!($name));
                o.out.push(b'[');
                for (i, v) in u.$field.iter().enumerate() {
                    if i > 0 {
                        o.out.push(b',');
                    }
                    write_user_value(o.out, v);
                }
                o.out.push(b']');
            }
        )*};
    }
    macro_rules! plain {
        ($($name:literal => $field:ident),* $(,)?) => {$(
            o.opt_str(key!($name), u.$field.as_deref());
        )*};
    }
    macro_rules! hashed {
        ($($name:literal => $field:ident),* $(,)?) => {$(
            if let Some(v) = &u.$field {
                o.key(key!($name));
                write_user_value(o.out, v);
            }
        )*};
    }
    lists! {
        "em" => em, "ph" => ph, "fn" => r#fn, "ln" => ln, "ge" => ge, "db" => db, "ct" => ct,
        "st" => st, "zp" => zp, "country" => country, "external_id" => external_id,
    }
    plain! {
        "client_ip_address" => client_ip_address,
        "client_user_agent" => client_user_agent,
        "fbc" => fbc,
        "fbp" => fbp,
        "subscription_id" => subscription_id,
        "fb_login_id" => fb_login_id,
        "lead_id" => lead_id,
        "anon_id" => anon_id,
        "madid" => madid,
        "page_id" => page_id,
        "page_scoped_user_id" => page_scoped_user_id,
        "ctwa_clid" => ctwa_clid,
        "ig_account_id" => ig_account_id,
        "instagram_business_account_id" => instagram_business_account_id,
        "ig_sid" => ig_sid,
        "whatsapp_business_account_id" => whatsapp_business_account_id,
    }
    hashed! {
        "f5first" => f5first, "f5last" => f5last, "fi" => fi, "dobd" => dobd, "dobm" => dobm,
        "doby" => doby,
    }
    o.end();
}

fn write_custom_data(out: &mut Vec<u8>, c: &crate::model::CustomData) {
    let mut o = Obj::new(out);
    o.opt_num(key!("value"), c.value);
    o.opt_str(key!("currency"), c.currency.as_deref());
    o.opt_str(key!("content_name"), c.content_name.as_deref());
    o.opt_str(key!("content_category"), c.content_category.as_deref());
    o.opt_serde(key!("content_ids"), c.content_ids.as_ref());
    if let Some(contents) = &c.contents {
        o.key(key!("contents"));
        o.out.push(b'[');
        for (i, item) in contents.iter().enumerate() {
            if i > 0 {
                o.out.push(b',');
            }
            let mut io = Obj::new(o.out);
            io.str(key!("id"), &item.id);
            io.opt_int(key!("quantity"), item.quantity);
            io.opt_num(key!("item_price"), item.item_price);
            io.opt_str(key!("title"), item.title.as_deref());
            io.opt_str(key!("description"), item.description.as_deref());
            io.opt_str(key!("brand"), item.brand.as_deref());
            io.opt_str(key!("category"), item.category.as_deref());
            io.opt_str(key!("delivery_category"), item.delivery_category.as_deref());
            io.extra(&item.extra);
            io.end();
        }
        o.out.push(b']');
    }
    o.opt_str(key!("content_type"), c.content_type.as_deref());
    o.opt_str(key!("order_id"), c.order_id.as_deref());
    o.opt_num(key!("predicted_ltv"), c.predicted_ltv);
    o.opt_num(key!("net_revenue"), c.net_revenue);
    o.opt_int(key!("num_items"), c.num_items);
    o.opt_str(key!("status"), c.status.as_deref());
    o.opt_str(key!("search_string"), c.search_string.as_deref());
    o.opt_str(key!("delivery_category"), c.delivery_category.as_deref());
    o.opt_str(key!("item_number"), c.item_number.as_deref());
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

    /// One of the model's keys, given as `"name":` by [`key!`] (a copy of constant length).
    #[inline(always)]
    fn key(&mut self, fragment: &'static str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(fragment.as_bytes());
    }

    /// A key from the input (`custom_data` custom properties), escaped as needed.
    fn any_key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, k);
        self.out.push(b':');
    }

    #[inline(always)]
    fn str(&mut self, k: &'static str, v: &str) {
        self.key(k);
        write_str(self.out, v);
    }

    #[inline(always)]
    fn opt_str(&mut self, k: &'static str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }

    #[inline(always)]
    fn int(&mut self, k: &'static str, v: i64) {
        self.key(k);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    #[inline(always)]
    fn opt_int(&mut self, k: &'static str, v: Option<i64>) {
        if let Some(v) = v {
            self.int(k, v);
        }
    }

    /// A number; NaN and the infinities have no JSON form and are left out, as absent values
    /// are (never `null`: `prepare` refuses them, but a caller can build a model holding one).
    #[inline(always)]
    fn opt_num(&mut self, k: &'static str, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.key(k);
            write_f64(self.out, v);
        }
    }

    fn opt_serde<T: Serialize + ?Sized>(&mut self, k: &'static str, v: Option<&T>) {
        if let Some(v) = v {
            self.key(k);
            self.serde(v);
        }
    }

    fn extra(&mut self, m: &serde_json::Map<String, serde_json::Value>) {
        for (k, v) in m {
            self.any_key(k);
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

/// Writes `v` as serde_json does. Amounts in cents (`20.0`, `129.9`, `19.99`) are most of
/// what is written and skip the shortest-digits algorithm: when `v` below 10¹³ is the double
/// nearest to `c / 100` for a whole `c`, that decimal has at most 15 significant digits, so
/// no other decimal as short maps to the same double, and its digits are the shortest ones.
fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_sign_positive() && v < 1e13 {
        // Rounded by truncation (no `round` call without SSE4.1); a wrong guess (at
        // `k + 0.5 - ε`) only fails the check below, which sends `v` the long way.
        let cents = (v * 100.0 + 0.5) as u64;
        if cents as f64 / 100.0 == v {
            out.extend_from_slice(itoa::Buffer::new().format(cents / 100).as_bytes());
            let frac = (cents % 100) as u8;
            match (frac / 10, frac % 10) {
                (tens, 0) => out.extend_from_slice(&[b'.', b'0' + tens]),
                (tens, ones) => out.extend_from_slice(&[b'.', b'0' + tens, b'0' + ones]),
            }
            return;
        }
    }
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// True when a byte needs escaping; branch-free so the loop vectorizes.
fn needs_escape(b: &[u8]) -> bool {
    b.iter().fold(false, |acc, &c| {
        acc | (c < 0x20) | (c == b'"') | (c == b'\\')
    })
}

/// A hashed customer-information value as a JSON string.
fn write_user_value(out: &mut Vec<u8>, v: &UserValue) {
    match v {
        UserValue::Sha256(d) => {
            out.reserve(66);
            out.push(b'"');
            write_hex64(out, d);
            out.push(b'"');
        }
        UserValue::Text(t) => write_str(out, t),
    }
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
    fn numbers_are_written_as_serde_json_writes_them() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            20.0,
            129.9,
            0.1,
            1e15 - 1.0,
            1e15,
            1e16,
            9_007_199_254_740_993.0,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut x = 0.37_f64;
        for _ in 0..2000 {
            x = (x * 7.31 + 0.173) % 1e6;
            values.extend([x, x.floor(), -x.floor(), x.floor() * 1e9]);
        }
        // Amounts in cents, tenths and thousandths, in every magnitude up to the limit.
        for cents in (0..100_000u64).chain((0..40).map(|i| 999_999_999_999_999 - i)) {
            let c = cents as f64;
            values.extend([c / 100.0, c / 10.0, c / 1000.0, c / 100.0 * 1e7]);
        }
        values.extend([
            0.01,
            0.05,
            0.005,
            1e-7,
            0.1 + 0.2,
            9_999_999_999_999.99,
            1e13,
            0.499_999_999_999_999_94,
            0.004_999_999_999_999_999,
            1.005,
            2.675,
        ]);
        // Half a cent from an amount, and the doubles either side: where rounding the cents
        // by truncation can be one off (which the exactness check must catch).
        for c in [0u64, 1, 49, 99, 100, 12_345, 999_999_999_999] {
            let half = (c as f64 + 0.5) / 100.0;
            let below = f64::from_bits(half.to_bits() - 1);
            let above = f64::from_bits(half.to_bits() + 1);
            values.extend([half, below, above]);
        }
        for v in values {
            let mut ours = Vec::new();
            write_f64(&mut ours, v);
            assert_eq!(ours, serde_json::to_vec(&v).unwrap(), "{v}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_number_is_written_as_serde_json_writes_it(
            v in proptest::num::f64::ANY,
            cents in 0u64..2_000_000_000_000_000,
            scale in 0i32..6,
        ) {
            for v in [v, cents as f64 / 10f64.powi(scale)] {
                let mut ours = Vec::new();
                write_f64(&mut ours, v);
                proptest::prop_assert_eq!(ours, serde_json::to_vec(&v).unwrap(), "{}", v);
            }
        }
    }

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
    fn request_fields_are_checked() {
        let ok = RequestFields {
            test_event_code: Some("TEST123".into()),
            partner_agent: Some("plx-1".into()),
            ..Default::default()
        };
        assert!(ok.check().is_ok());
        assert!(RequestFields::default().check().is_ok());
        for bad in [
            RequestFields {
                partner_agent: Some(" ".into()),
                ..Default::default()
            },
            RequestFields {
                upload_tag: Some("a\nb".into()),
                ..Default::default()
            },
            RequestFields {
                namespace_id: Some("x".repeat(257)),
                ..Default::default()
            },
            RequestFields {
                appsecret_proof: Some("0".repeat(64)),
                ..Default::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers_without_json_form_are_left_out() {
        let now = 1_700_000_000;
        let ev = json!({"event_name":"Purchase","event_time":now,"action_source":"email",
                        "user_data":{"em":"a@b.co"},
                        "custom_data":{"value":5,"currency":"EUR",
                                       "contents":[{"id":"a","quantity":1,"item_price":2}]}});
        let mut prepared = prepare([&ev], &PrepareOptions::default(), now);
        let cd = prepared.events[0].event.custom_data.as_mut().unwrap();
        cd.value = Some(f64::NAN);
        cd.contents.as_mut().unwrap()[0].item_price = Some(f64::INFINITY);
        let body = request_body(&prepared.events, &RequestFields::default());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let cd = &v["data"][0]["custom_data"];
        assert!(cd.get("value").is_none(), "{cd}");
        assert!(cd["contents"][0].get("item_price").is_none(), "{cd}");
        assert_eq!(cd["currency"], "EUR");
    }

    #[test]
    fn stored_amounts_read_back_exactly() {
        // serde_json's default parser may miss the last digit of a 17-digit double: an
        // outbox or CLI round trip would change the amount sent.
        for v in [
            59.980000000000004_f64,
            472.74908866546684,
            0.30000000000000004,
        ] {
            let text = serde_json::to_string(&v).unwrap();
            assert_eq!(
                serde_json::from_str::<f64>(&text).unwrap().to_bits(),
                v.to_bits()
            );
        }
    }

    #[test]
    fn expecting_events_reserves_room_and_changes_no_byte() {
        let now = 1_700_000_000;
        let events: Vec<ServerEvent> = (0..5)
            .map(|i| {
                let ev = json!({"event_name": "Lead", "event_time": now,
                                "action_source": "email", "event_id": format!("e-{i}"),
                                "user_data": {"em": format!("{i}@example.com")}});
                prepare([&ev], &PrepareOptions::default(), now)
                    .events
                    .remove(0)
                    .event
            })
            .collect();
        let fields = RequestFields::default();
        // Fewer, as many and more events than expected (a hint only), and none at all.
        for (expected, pushed) in [
            (3, 1),
            (3, 3),
            (3, 5),
            (1, 2),
            (0, 4),
            (1000, 0),
            (1000, 2),
            (usize::MAX, 2),
        ] {
            let mut plain = RequestBody::new(&fields);
            let mut hinted = RequestBody::new(&fields);
            hinted.expect(expected);
            for e in &events[..pushed] {
                plain.push(e);
                hinted.push(e);
                if hinted.len() == 1 && expected > 1 {
                    let one = hinted.byte_len() - b"{\"data\":[".len();
                    let room = one.saturating_mul(expected - 1).min(MAX_RESERVED);
                    assert!(hinted.buf.capacity() >= hinted.byte_len() + room);
                    assert!(hinted.buf.capacity() <= 64 * 1024 + MAX_RESERVED * 2);
                }
            }
            assert_eq!(
                hinted.finish(),
                plain.finish(),
                "expected {expected}, {pushed} pushed"
            );
        }
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
