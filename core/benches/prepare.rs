//! `prepare` + request-body serialization of the standard web Purchase event, 1,000 events
//! (one full request). Run: `cargo bench -p freight --bench prepare`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use freight::batch::{request_body, RequestBody, RequestFields};
use freight::prepare::{prepare, PrepareOptions, PreparedEvent, Preparer};
use serde_json::{json, Value};

const NOW: i64 = 1_795_392_000;

/// The standard web Purchase event of the benchmarks (also used by `bench/python`): messy
/// plain-text customer data, as a shop sends it.
fn purchase(i: usize) -> Value {
    json!({
        "event_name": "Purchase",
        "event_time": NOW - 60,
        "action_source": "website",
        "event_id": format!("order-{i}"),
        "event_source_url": "https://shop.example.com/checkout/thank-you",
        "user_data": {
            "em": format!("  Customer.{i}@Example.com "),
            "ph": format!("+1 (650) 555-{:04}", i % 10_000),
            "fn": "Jane",
            "ln": "Doe-Smith",
            "ct": "Menlo Park",
            "st": "California",
            "zp": "94025",
            "country": "US",
            "external_id": format!("cust-{i}"),
            "client_ip_address": "203.0.113.24",
            "client_user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
            "fbc": "fb.1.1795300000000.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk",
            "fbp": format!("fb.1.1795200000000.{}", 1_000_000_000 + i)
        },
        "custom_data": {
            "value": 129.9,
            "currency": "usd",
            "contents": [
                {"id": "SKU-1001", "quantity": 1, "item_price": 79.9},
                {"id": "SKU-2040", "quantity": 2, "item_price": 20.0},
                {"id": "SKU-3300", "quantity": 1, "item_price": 10.0}
            ]
        }
    })
}

fn bench_prepare(c: &mut Criterion) {
    let events: Vec<Value> = (0..1000).map(purchase).collect();
    let opts = PrepareOptions::default();
    let fields = RequestFields {
        partner_agent: Some("plfreight-1.0-0.1.0".into()),
        ..Default::default()
    };
    // Sanity: every event is valid, so the benchmark measures the full path.
    let check = prepare(&events, &opts, NOW);
    assert_eq!(check.events.len(), 1000, "{:?}", check.rejected.first());

    let mut g = c.benchmark_group("prepare");
    g.throughput(Throughput::Elements(1000));
    // The streaming path of a sender: prepare each event into a reused slot, append it to a
    // reused body buffer.
    let preparer = Preparer::new(&opts, NOW);
    let mut body = RequestBody::new(&fields);
    let mut slot = PreparedEvent::default();
    g.bench_function("purchase_x1000_streaming_prepare_and_body", |b| {
        b.iter(|| {
            body.clear();
            for (i, e) in events.iter().enumerate() {
                if preparer.process_into(e, i, &mut slot).is_ok() {
                    body.push(&slot.event);
                }
            }
            body.finish().len()
        })
    });
    g.bench_function("purchase_x1000_prepare_and_body", |b| {
        b.iter(|| {
            let prepared = prepare(&events, &opts, NOW);
            request_body(&prepared.events, &fields)
        })
    });
    g.bench_function("purchase_x1000_prepare_only", |b| {
        b.iter(|| prepare(&events, &opts, NOW))
    });
    let prepared = prepare(&events, &opts, NOW);
    g.bench_function("purchase_x1000_body_only", |b| {
        b.iter(|| request_body(&prepared.events, &fields))
    });
    let text: Vec<String> = events.iter().map(Value::to_string).collect();
    g.bench_function("purchase_x1000_from_json_text", |b| {
        b.iter_batched(
            || (),
            |()| {
                let parsed: Vec<Value> = text
                    .iter()
                    .map(|t| serde_json::from_str(t).unwrap_or(Value::Null))
                    .collect();
                let prepared = prepare(&parsed, &opts, NOW);
                request_body(&prepared.events, &fields)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_prepare);
criterion_main!(benches);
