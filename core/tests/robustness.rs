//! Bad input never panics: arbitrary strings go through every normalizer and arbitrary JSON
//! through `prepare`, and every input index is accounted for exactly once.

use freight::normalize::{normalize, Field, NormalizeOptions};
use freight::prepare::{prepare, NotReady, Outcome, PrepareOptions, PreparedEvent, Preparer};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::String),
        // An event time the tests' `now` accepts, so that generated events can be sent.
        Just(json!(1_795_391_000)),
        // Keys and values Freight knows, so generated events reach the deeper checks.
        prop::sample::select(vec![
            "Purchase",
            "website",
            "app",
            "physical_store",
            "LDU",
            "USD",
            "a@b.co",
            "fb.1.1.1",
            "+1 650 555 1234",
            "1990-01-01",
            "ca",
            "us",
            "",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    let keys = prop::sample::select(vec![
        "event_name",
        "event_time",
        "action_source",
        "user_data",
        "custom_data",
        "app_data",
        "em",
        "ph",
        "fn",
        "ge",
        "db",
        "ct",
        "st",
        "zp",
        "country",
        "external_id",
        "fbc",
        "fbp",
        "client_ip_address",
        "client_user_agent",
        "lead_id",
        "value",
        "currency",
        "contents",
        "id",
        "quantity",
        "item_price",
        "title",
        "description",
        "brand",
        "category",
        "delivery_category",
        "data_processing_options",
        "data_processing_options_state",
        "attribution_data",
        "original_event_data",
        "extinfo",
        "other",
    ]);
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn normalize_never_panics(s in "\\PC{0,40}", idx in 0usize..17, dmy in any::<bool>()) {
        let opts = NormalizeOptions {
            default_country: Some("gb".into()),
            date_order: if dmy { freight::normalize::DateOrder::Dmy } else { Default::default() },
            now: Some(1_795_392_000),
            ..Default::default()
        };
        let field = Field::ALL[idx];
        if let Ok(Some(n)) = normalize(field, &s, &opts) {
            let wire = n.to_wire(field, &opts);
            prop_assert!(!wire.is_empty());
            // Plain text never leaves unhashed unless it was already a digest.
            if field != Field::ExternalId {
                prop_assert!(wire.len() >= 64 && wire[..64].bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
    }

    #[test]
    fn normalize_handles_arbitrary_unicode(s in any::<String>(), idx in 0usize..17) {
        let _ = normalize(Field::ALL[idx], &s, &NormalizeOptions::default());
    }

    #[test]
    fn prepare_accounts_for_every_input(events in prop::collection::vec(arb_json(), 0..8)) {
        let out = prepare(&events, &PrepareOptions::default(), 1_795_392_000);
        let mut seen: Vec<usize> = out.events.iter().map(|e| e.index)
            .chain(out.rejected.iter().map(|r| r.index)).collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..events.len()).collect::<Vec<_>>());
        for r in &out.rejected {
            prop_assert!(!r.errors.is_empty());
            prop_assert!(r.errors.iter().all(|p| p.is_error() && p.loc.starts_with("data[")));
        }
        let body = freight::batch::request_body(&out.events, &Default::default());
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        prop_assert_eq!(parsed["data"].as_array().unwrap().len(), out.events.len());
    }

    #[test]
    fn a_reused_slot_gives_what_a_fresh_one_gives(events in prop::collection::vec(arb_json(), 0..8)) {
        same_in_a_reused_slot(&events)?;
    }

    #[test]
    fn a_reused_slot_gives_what_a_fresh_one_gives_for_sendable_events(
        events in prop::collection::vec(arb_purchase(), 1..8),
    ) {
        same_in_a_reused_slot(&events)?;
    }
}

/// Each event prepared into one reused slot (and processed into it) gives what it gives
/// alone: nothing of an earlier event stays behind. "Alone" is on a new thread, whose spare
/// allocations (thread-local) are empty: this thread's are what the reuse is about. Each case
/// runs on a thread of its own too, so that it does not depend on the cases before it (a
/// replayed or shrunk case starts as the original did).
fn same_in_a_reused_slot(events: &[Value]) -> Result<(), TestCaseError> {
    std::thread::scope(|s| {
        s.spawn(|| reused_slot_case(events))
            .join()
            .expect("preparing does not panic")
    })
}

fn reused_slot_case(events: &[Value]) -> Result<(), TestCaseError> {
    let preparer = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
    let mut slot = PreparedEvent::default();
    for (i, e) in events.iter().enumerate() {
        let alone = std::thread::scope(|s| {
            s.spawn(|| preparer.prepare_one(e, i))
                .join()
                .expect("prepare_one does not panic")
        });
        match (alone, preparer.prepare_into(e, i, &mut slot)) {
            (Ok(fresh), Ok(())) => prop_assert_eq!(&slot, &fresh),
            (Err(fresh), Err(reused)) => prop_assert_eq!(reused, fresh),
            (fresh, reused) => prop_assert!(false, "{:?} vs {:?}", fresh, reused),
        }
        let processed = match preparer.process_into(e, i, &mut slot) {
            Ok(()) => Outcome::Ready(Box::new(slot.clone())),
            Err(NotReady::Rejected(r)) => Outcome::Rejected(r),
            Err(NotReady::Skipped(s)) => Outcome::Skipped(s),
        };
        prop_assert_eq!(processed, preparer.process(e, i));
    }
    Ok(())
}

/// Purchase events that are mostly sent, with optional fields and `contents` items of
/// varying shape (some without an id, which rejects the event).
fn arb_purchase() -> impl Strategy<Value = Value> {
    let opt = |values: &'static [&'static str]| prop::option::of(prop::sample::select(values));
    let item = (
        prop::option::weighted(0.9, prop::sample::select(&["A", " b-2 ", "C"][..])),
        prop::option::of(1i64..4),
        prop::option::of(prop::sample::select(&[5.0, 19.99][..])),
        opt(&["T", "Title"]),
        opt(&["D"]),
        opt(&["B"]),
        opt(&["Cat"]),
        opt(&["home_delivery", "curbside"]),
        opt(&["red", "blue"]),
    )
        .prop_map(
            |(id, quantity, price, title, description, brand, category, dc, colour)| {
                let mut m = Map::new();
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        m.insert(k.to_owned(), v);
                    }
                };
                put("id", id.map(Value::from));
                put("quantity", quantity.map(Value::from));
                put("item_price", price.map(Value::from));
                put("title", title.map(Value::from));
                put("description", description.map(Value::from));
                put("brand", brand.map(Value::from));
                put("category", category.map(Value::from));
                put("delivery_category", dc.map(Value::from));
                put("colour", colour.map(Value::from));
                Value::Object(m)
            },
        );
    (
        prop::option::weighted(0.8, prop::collection::vec(item, 0..5)),
        prop::sample::select(&["usd", "EUR", "dollars"][..]),
        opt(&["order-1", "order-2"]),
        opt(&["+1 650 555 1234"]),
        opt(&["203.0.113.5"]),
        opt(&["fb.1.1795300000000.IwAR2F4"]),
        opt(&["https://shop.example.com/thanks"]),
    )
        .prop_map(|(contents, currency, order_id, ph, ip, fbc, url)| {
            let mut e = json!({
                "event_name": "Purchase", "event_time": 1_795_391_000, "action_source": "email",
                "user_data": {"em": "jane@example.com"},
                "custom_data": {"value": 10, "currency": currency},
            });
            if let Some(c) = contents {
                e["custom_data"]["contents"] = Value::Array(c);
            }
            if let Some(o) = order_id {
                e["custom_data"]["order_id"] = json!(o);
            }
            for (k, v) in [("ph", ph), ("client_ip_address", ip), ("fbc", fbc)] {
                if let Some(v) = v {
                    e["user_data"][k] = json!(v);
                }
            }
            if let Some(u) = url {
                e["event_source_url"] = json!(u);
            }
            e
        })
}

#[test]
fn most_generated_purchases_are_sent() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    // The reuse property above is about events that are sent: the strategy must make them.
    let mut runner = TestRunner::deterministic();
    let strategy = arb_purchase();
    let preparer = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
    let sent = (0..200)
        .filter(|&i| {
            let event = strategy.new_tree(&mut runner).unwrap().current();
            preparer.prepare_one(&event, i).is_ok()
        })
        .count();
    assert!(sent >= 60, "only {sent} of 200 generated events are sent");
}
