//! CDP track calls (Segment's spec) → Conversions API server events (seed 002).
//!
//! [`map_track`] turns one track call into a CAPI event with plain-text customer data, ready
//! for [`crate::prepare`](mod@crate::prepare) (which normalizes, hashes and validates it). The table:
//!
//! | track call | server event |
//! |---|---|
//! | `event` | `event_name`: `Order Completed`→`Purchase`, `Product Added`→`AddToCart`, `Product Viewed`/`Product List Viewed`→`ViewContent`, `Products Searched`→`Search`, `Checkout Started`→`InitiateCheckout`; the user's `event_map` first; anything else as a custom event |
//! | `messageId` | `event_id` |
//! | `timestamp` (else `originalTimestamp`, `sentAt`, `receivedAt`; ISO-8601 or Unix seconds) | `event_time` |
//! | `userId`, else `anonymousId` (or the `external_id_field` path) | `user_data.external_id` |
//! | `context.ip`, `context.userAgent` | `user_data.client_ip_address`, `client_user_agent` |
//! | `context.traits.email`, `phone`, `firstName`, `lastName`, `birthday`, `address.city`, `address.state`, `address.postalCode`, `address.country` | `user_data.em`, `ph`, `fn`, `ln`, `db`, `ct`, `st`, `zp`, `country` |
//! | `properties.fbp`, `properties.fbc` | `user_data.fbp`, `fbc` |
//! | `properties.revenue` (for `Product Viewed`/`Product Added`: the `value_field`, default `price`) | `custom_data.value` |
//! | `properties.currency` (default `USD` when there is a value) | `custom_data.currency` |
//! | `properties.products[]` (`product_id`, `quantity`, `price`) | `custom_data.contents[]` (`id`, `quantity`, `item_price`), `content_ids`, `num_items` |
//! | `properties.product_id` (single-product events) | `content_ids`, `contents` |
//! | `properties.query`, `status`, `name`, `category` | `search_string`, `status`, `content_name`, `content_category` (+ `content_type` from `category_map`) |
//! | `context.page.url`, `context.page.referrer` | `event_source_url`, `referrer_url` |
//! | other `properties` | `custom_data` custom properties |

use crate::validate::{Problem, ProblemKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Settings of the mapping (the CDP destination's settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentOptions {
    /// Track event → standard event name; consulted before the built-in table.
    pub event_map: BTreeMap<String, String>,
    /// Product category → `content_type` (`product` or `product_group`).
    pub category_map: BTreeMap<String, String>,
    /// The property holding the value of `Product Viewed`/`Product Added` (default `price`).
    pub value_field: String,
    /// A dotted path (`context.traits.email`, `properties.externalid`) to use as
    /// `external_id` instead of `userId`/`anonymousId`.
    pub external_id_field: Option<String>,
    /// `action_source` of the events (default `website`).
    pub action_source: String,
    /// Currency when a value has none (default `USD`).
    pub default_currency: String,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            event_map: BTreeMap::new(),
            category_map: BTreeMap::new(),
            value_field: "price".into(),
            external_id_field: None,
            action_source: "website".into(),
            default_currency: "USD".into(),
        }
    }
}

/// The standard event of a Segment e-commerce event name, if it has one.
pub fn standard_event(track: &str) -> Option<&'static str> {
    Some(match track {
        "Order Completed" => "Purchase",
        "Product Added" => "AddToCart",
        "Product Viewed" | "Product List Viewed" => "ViewContent",
        "Products Searched" => "Search",
        "Checkout Started" => "InitiateCheckout",
        _ => return None,
    })
}

/// Properties every call maps (the value property, and a single product's `product_id`,
/// `sku`, `price` and `quantity` when they make its `contents`, are mapped too; every other
/// property becomes a custom property).
const CONSUMED: &[&str] = &[
    "currency", "products", "query", "status", "fbp", "fbc", "name", "category",
];

/// A string with something in it, or any other non-null value.
fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    }
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |cur, key| cur.get(key))
        .filter(|v| !v.is_null())
}

/// Maps one track call. Problems are located in the call (`properties.products[1].price`).
pub fn map_track(call: &Value, opts: &SegmentOptions) -> Result<Value, Vec<Problem>> {
    let mut problems = Vec::new();
    let Some(obj) = call.as_object() else {
        return Err(vec![Problem::new(
            ProblemKind::NotAnObject,
            "",
            "a track call must be a JSON object",
        )]);
    };
    if let Some(t) = obj.get("type").and_then(Value::as_str) {
        if t != "track" {
            bad(
                &mut problems,
                "type",
                "only track calls map to server events",
            );
        }
    }
    let mut event = Map::new();
    let track = match get(call, "event") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => {
            bad(
                &mut problems,
                "event",
                "must be the name of the tracked event",
            );
            String::new()
        }
        None => {
            problems.push(Problem::new(
                ProblemKind::MissingEventName,
                "event",
                "a track call needs its event name",
            ));
            String::new()
        }
    };
    let name = opts
        .event_map
        .get(&track)
        .cloned()
        .or_else(|| standard_event(&track).map(str::to_owned))
        .unwrap_or_else(|| track.clone());
    event.insert("event_name".into(), json!(name));
    let time = ["timestamp", "originalTimestamp", "sentAt", "receivedAt"]
        .iter()
        .find_map(|k| get(call, k).map(|v| (*k, v)));
    if let Some((key, v)) = time {
        match v {
            Value::Number(n) if n.is_i64() => {
                event.insert("event_time".into(), v.clone());
            }
            Value::String(s) => match parse_iso8601(s) {
                Some(t) => {
                    event.insert("event_time".into(), json!(t));
                }
                None => bad(
                    &mut problems,
                    key,
                    "must be an ISO-8601 date-time such as 2026-11-23T10:00:00Z",
                ),
            },
            _ => bad(
                &mut problems,
                key,
                "must be an ISO-8601 date-time or Unix seconds",
            ),
        }
    }
    event.insert("action_source".into(), json!(opts.action_source));
    if let Some(id) = get(call, "messageId") {
        event.insert("event_id".into(), text(id));
    }
    if let Some(url) = get(call, "context.page.url") {
        event.insert("event_source_url".into(), url.clone());
    }
    if let Some(r) = get(call, "context.page.referrer") {
        event.insert("referrer_url".into(), r.clone());
    }

    let mut ud = Map::new();
    let external = match &opts.external_id_field {
        Some(path) => get(call, path),
        None => get(call, "userId")
            .filter(|v| present(v))
            .or_else(|| get(call, "anonymousId")),
    };
    if let Some(id) = external {
        ud.insert("external_id".into(), text(id));
    }
    for (path, key) in [
        ("context.ip", "client_ip_address"),
        ("context.userAgent", "client_user_agent"),
        ("context.traits.email", "em"),
        ("context.traits.phone", "ph"),
        ("context.traits.firstName", "fn"),
        ("context.traits.lastName", "ln"),
        ("context.traits.birthday", "db"),
        ("context.traits.address.city", "ct"),
        ("context.traits.address.state", "st"),
        ("context.traits.address.postalCode", "zp"),
        ("context.traits.address.country", "country"),
        ("properties.fbp", "fbp"),
        ("properties.fbc", "fbc"),
    ] {
        if let Some(v) = get(call, path) {
            // Birthdays often arrive as ISO date-times: keep the date part.
            let v = match (key, v) {
                ("db", Value::String(s)) if s.len() > 10 && s.as_bytes()[10] == b'T' => {
                    json!(s[..10])
                }
                _ => v.clone(),
            };
            ud.insert(key.into(), v);
        }
    }
    event.insert("user_data".into(), Value::Object(ud));

    let mut props = match get(call, "properties") {
        Some(Value::Object(p)) => p.clone(),
        // PHP encodes an empty associative array as `[]`.
        Some(Value::Array(a)) if a.is_empty() => Map::new(),
        Some(_) => {
            bad(&mut problems, "properties", "must be an object");
            Map::new()
        }
        None => Map::new(),
    };
    // The alternative external id is hashed in user_data: not also sent in plain text.
    if let Some(path) = opts
        .external_id_field
        .as_deref()
        .and_then(|p| p.strip_prefix("properties."))
    {
        remove_path(&mut props, path);
    }
    let mut cd = Map::new();
    let single_product = matches!(track.as_str(), "Product Viewed" | "Product Added");
    let value_key = if single_product {
        opts.value_field.as_str()
    } else {
        "revenue"
    };
    if let Some(v) = props.get(value_key).filter(|v| !v.is_null()) {
        match number(v) {
            Some(n) => {
                cd.insert("value".into(), json!(n));
            }
            None => bad(
                &mut problems,
                &format!("properties.{value_key}"),
                "must be a number",
            ),
        }
    }
    match props.get("currency").filter(|v| !v.is_null()) {
        Some(c) => {
            cd.insert("currency".into(), c.clone());
        }
        None if cd.contains_key("value") || name == "Purchase" => {
            cd.insert("currency".into(), json!(opts.default_currency));
        }
        None => {}
    }
    if let Some(products) = props.get("products").filter(|v| !v.is_null()) {
        match products {
            Value::Array(items) => {
                let mut contents = Vec::new();
                let mut ids = Vec::new();
                for (i, p) in items.iter().enumerate() {
                    let loc = format!("properties.products[{i}]");
                    match content(p, &loc, &mut problems) {
                        Some(c) => {
                            ids.push(c["id"].clone());
                            contents.push(c);
                        }
                        None => continue,
                    }
                }
                cd.insert("num_items".into(), json!(items.len()));
                cd.insert("content_ids".into(), Value::Array(ids));
                cd.insert("contents".into(), Value::Array(contents));
            }
            _ => bad(
                &mut problems,
                "properties.products",
                "must be an array of products",
            ),
        }
    }
    // A single product (`Product Viewed`/`Added`, or any call naming one): its contents.
    // Without an id there is none, and the event is sent without contents.
    let product_id = ["product_id", "sku"]
        .iter()
        .any(|k| props.get(*k).is_some_and(present));
    let single = products_absent(&props) && product_id;
    if single {
        if let Some(c) = content(&Value::Object(props.clone()), "properties", &mut problems) {
            cd.insert("content_ids".into(), json!([c["id"].clone()]));
            cd.insert("contents".into(), json!([c]));
        }
    }
    for (prop, key) in [
        ("query", "search_string"),
        ("status", "status"),
        ("name", "content_name"),
        ("category", "content_category"),
    ] {
        if let Some(v) = props.get(prop).filter(|v| !v.is_null()) {
            cd.insert(key.into(), v.clone());
        }
    }
    if let Some(cat) = props.get("category").and_then(Value::as_str) {
        if let Some(t) = opts.category_map.get(cat) {
            cd.insert("content_type".into(), json!(t));
        }
    }
    for (k, v) in &props {
        let used = CONSUMED.contains(&k.as_str())
            || k == value_key
            || (single && matches!(k.as_str(), "product_id" | "sku" | "price" | "quantity"));
        // A property never replaces what the mapping has set (`value` from `revenue`, …).
        if !used && !v.is_null() && !cd.contains_key(k) {
            cd.insert(k.clone(), v.clone());
        }
    }
    if !cd.is_empty() {
        event.insert("custom_data".into(), Value::Object(cd));
    }
    if problems.is_empty() {
        Ok(Value::Object(event))
    } else {
        Err(problems)
    }
}

/// True when the call has no `products` list (a single product's fields may then make one).
fn products_absent(props: &Map<String, Value>) -> bool {
    props.get("products").is_none_or(Value::is_null)
}

/// Removes the value at a dotted path (`a.b`) from `map`, if there is one.
fn remove_path(map: &mut Map<String, Value>, path: &str) {
    match path.split_once('.') {
        None => {
            map.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Value::Object(inner)) = map.get_mut(head) {
                remove_path(inner, rest);
            }
        }
    }
}

/// `{id, quantity, item_price}` of a Segment product (`product_id`, else `sku`).
fn content(p: &Value, loc: &str, problems: &mut Vec<Problem>) -> Option<Value> {
    let Some(p) = p.as_object() else {
        bad(problems, loc, "must be an object");
        return None;
    };
    // The first of product_id and sku with something in it (as the caller's check).
    let given = ["product_id", "sku"]
        .iter()
        .find_map(|k| p.get(*k).filter(|v| present(v)));
    let id = match given.or_else(|| p.get("product_id")) {
        Some(Value::String(s)) if !s.trim().is_empty() => json!(s),
        Some(Value::Number(n)) => json!(n.to_string()),
        _ => {
            bad(
                problems,
                &format!("{loc}.product_id"),
                "each product needs its product_id",
            );
            return None;
        }
    };
    let mut c = json!({ "id": id });
    match p.get("quantity").filter(|v| !v.is_null()) {
        Some(q) => match number(q) {
            Some(n) if n.fract() == 0.0 && n >= 0.0 => c["quantity"] = json!(n as i64),
            _ => bad(
                problems,
                &format!("{loc}.quantity"),
                "must be a whole number",
            ),
        },
        None => c["quantity"] = json!(1),
    }
    if let Some(price) = p.get("price").filter(|v| !v.is_null()) {
        match number(price) {
            Some(n) => c["item_price"] = json!(n),
            None => bad(problems, &format!("{loc}.price"), "must be a number"),
        }
    }
    Some(c)
}

fn bad(problems: &mut Vec<Problem>, loc: &str, msg: &str) {
    problems.push(Problem::new(ProblemKind::InvalidType, loc, msg));
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

fn text(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        other => json!(other.to_string()),
    }
}

/// Unix seconds of an ISO-8601 date-time (`2026-11-23T10:00:00.000Z`, `+02:00` offsets).
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() < 19 || !matches!(s.as_bytes()[10], b'T' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo)
        || !(1..=crate::normalize::days_in_month(y, mo)).contains(&d)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let oh: i64 = o.get(1..3)?.parse().ok()?;
            let om: i64 = o.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = crate::normalize::days_from_civil(y, mo, d);
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso8601("2026-11-23T00:00:00.123Z"),
            Some(1_795_392_000)
        );
        assert_eq!(
            parse_iso8601("2026-11-23T02:00:00+02:00"),
            Some(1_795_392_000)
        );
        assert_eq!(parse_iso8601("2026-11-23"), None);
        assert_eq!(parse_iso8601("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso8601("2026-02-29T00:00:00Z"), None);
        assert_eq!(parse_iso8601("2026-04-31T00:00:00Z"), None);
        assert_eq!(parse_iso8601("2028-02-29T00:00:00Z"), Some(1_835_395_200));
    }
}
