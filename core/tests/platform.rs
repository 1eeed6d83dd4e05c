//! Platform features against the shared fixtures: fbc/fbp from request contexts, consent, and
//! deduplication ids (the sandbox marks a resent event_id as a duplicate).

mod common;
use common::read_jsonl;

use freight::platform::{click_ids, RequestContext};
use freight::prepare::{prepare, PrepareOptions};
use serde_json::{json, Value};

#[test]
fn click_ids_fixture() {
    let cases = read_jsonl("click_ids.jsonl");
    assert!(cases.len() >= 30);
    for c in &cases {
        let s = |k: &str| c[k].as_str();
        let ctx = RequestContext {
            host: s("host").unwrap(),
            url: s("url"),
            referrer: s("referrer"),
            fbc_cookie: s("fbc_cookie"),
            fbp_cookie: s("fbp_cookie"),
        };
        let ids = click_ids(
            &ctx,
            c["now_ms"].as_i64().unwrap(),
            c["random"].as_u64().unwrap() as u32,
        );
        let name = &c["name"];
        assert_eq!(ids.fbc.as_deref(), c["expect"]["fbc"].as_str(), "{name}");
        assert_eq!(ids.fbp, c["expect"]["fbp"], "{name}");
        let cookies: Vec<Value> = ids
            .cookies_to_set
            .iter()
            .map(|k| {
                assert_eq!(k.max_age, 90 * 86_400);
                json!([k.name, k.value, k.domain])
            })
            .collect();
        assert_eq!(
            Value::Array(cookies),
            c["expect"]["cookies_to_set"],
            "{name}"
        );
        // What Freight builds passes its own validation (no error; ms creation times).
        let now = c["now_ms"].as_i64().unwrap() / 1000;
        let mut ud = json!({"fbp": ids.fbp});
        if let Some(fbc) = &ids.fbc {
            ud["fbc"] = json!(fbc);
        }
        let ev = json!({"event_name": "PageView", "event_time": now, "action_source": "other",
                        "user_data": ud});
        let out = prepare([&ev], &PrepareOptions::default(), now);
        assert!(out.rejected.is_empty(), "{name}: {:?}", out.rejected);
    }
}

#[test]
fn denied_consent_is_skipped_and_never_validated() {
    let now = 1_795_392_000;
    let events = [
        json!({"event_name": "Lead", "event_time": now, "action_source": "email",
               "user_data": {"em": "a@example.com"}, "consent": "granted"}),
        json!({"event_name": "Lead", "event_time": now, "action_source": "email",
               "user_data": {"em": "b@example.com"}, "consent": "denied"}),
        json!({"consent": false}),
        json!({"event_name": "Lead", "event_time": now, "action_source": "email",
               "user_data": {"em": "c@example.com"}, "consent": "maybe"}),
    ];
    let out = prepare(&events, &PrepareOptions::default(), now);
    assert_eq!(out.events.len(), 1);
    assert!(out.events[0].event.event_id.is_none());
    let wire = serde_json::to_value(&out.events[0].event).unwrap();
    assert!(
        wire.get("consent").is_none(),
        "consent is Freight's field, never sent"
    );
    let skipped: Vec<(usize, &str)> = out
        .skipped
        .iter()
        .map(|s| (s.index, s.reason.as_str()))
        .collect();
    assert_eq!(skipped, [(1, "consent_denied"), (2, "consent_denied")]);
    assert_eq!(out.rejected[0].index, 3);
    assert_eq!(out.rejected[0].errors[0].kind.as_str(), "invalid_consent");
}

#[cfg(feature = "transport")]
#[test]
fn consent_and_dedup_against_the_sandbox() {
    use freight::client::{Client, ClientConfig};
    use freight::destination::Destination;
    use freight::platform::event_id_for;
    let sb =
        freight_sandbox::Sandbox::start(freight_sandbox::SandboxConfig::with_token("TOK")).unwrap();
    let client = Client::new(ClientConfig {
        graph_url: sb.url(),
        ..ClientConfig::default()
    })
    .unwrap();
    let dest = Destination::new("777", "TOK").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // The same id the platform rendered into the page for fbq('track', …, {eventID}).
    let id = event_id_for(b"platform-secret", "777", "Purchase", "order-10423").unwrap();
    let purchase = |consent: &str| {
        json!({"event_name": "Purchase", "event_time": now - 5, "action_source": "website",
               "event_id": id, "event_source_url": "https://shop.example/thanks",
               "user_data": {"em": "a@example.com", "client_user_agent": "UA",
                             "client_ip_address": "203.0.113.1"},
               "custom_data": {"value": 10, "currency": "EUR"}, "consent": consent})
    };
    let r = client.send(&dest, &[purchase("denied")]);
    assert_eq!((r.counts.skipped, r.counts.delivered), (1, 0));
    assert!(
        sb.requests().is_empty(),
        "a denied event never reaches the sandbox"
    );
    let first = client.send(&dest, &[purchase("granted")]);
    let again = client.send(&dest, &[purchase("granted")]);
    assert_eq!((first.counts.delivered, again.counts.delivered), (1, 1));
    let dups: Vec<Option<u64>> = sb
        .accepted_events()
        .iter()
        .map(|e| e.duplicate_of)
        .collect();
    assert_eq!(
        dups,
        [None, Some(1)],
        "the resent event_id is a duplicate for Meta"
    );
}

#[test]
fn segment_fixture() {
    use freight::segment::{map_track, SegmentOptions};
    let cases = read_jsonl("segment.jsonl");
    assert!(cases.len() >= 40);
    for c in &cases {
        let name = &c["name"];
        let opts: SegmentOptions = match c.get("options") {
            Some(o) => serde_json::from_value(o.clone()).unwrap(),
            None => SegmentOptions::default(),
        };
        match (map_track(&c["call"], &opts), c.get("errors")) {
            (Ok(event), None) => {
                assert_eq!(event, c["event"], "{name}");
                // What the mapping makes prepares into a sendable event, or fails only on
                // what validation checks anyway (time, event name).
                let now = 1_795_392_000 + 36_000;
                let out = prepare([&event], &PrepareOptions::default(), now);
                for r in &out.rejected {
                    for p in &r.errors {
                        assert!(
                            matches!(
                                p.kind.as_str(),
                                "missing_event_time" | "missing_event_source_url" | "missing_value"
                            ),
                            "{name}: {p:?}"
                        );
                    }
                }
            }
            (Err(problems), Some(expected)) => {
                let got: Vec<Value> = problems
                    .iter()
                    .map(|p| json!([p.kind.as_str(), p.loc]))
                    .collect();
                assert_eq!(&Value::Array(got), expected, "{name}");
            }
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
}
