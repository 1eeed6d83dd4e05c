//! Prepares N copies of the standard web Purchase event and builds the request bodies,
//! once: a fixed workload for `valgrind --tool=dhat` (allocations per event) and
//! `--tool=callgrind` (instructions per event), whose counts do not depend on machine load.
//!
//! `cargo build --release -p freight --example prepare_workload`
//! `valgrind --tool=dhat target/release/examples/prepare_workload 1000 [input-only]`
//! `target/release/examples/prepare_workload 1000 time|stream`: best of 50 runs, wall clock.

use freight::batch::{request_body, RequestBody, RequestFields};
use freight::prepare::{prepare, PrepareOptions, PreparedEvent, Preparer};
use serde_json::{json, Value};

const NOW: i64 = 1_795_392_000;

/// The standard web Purchase event of the benchmarks (also used by `bench/python`): messy
/// plain-text customer data, as a shop sends it.
pub fn purchase(i: usize) -> Value {
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

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mode = args.next().unwrap_or_default();
    let input_only = mode == "input-only";
    let events: Vec<Value> = (0..n).map(purchase).collect();
    if input_only {
        println!("{} input events", events.len());
        return;
    }
    let fields = RequestFields::default();
    if mode == "stream" {
        // The sender's path: prepare each event and append it to a reused body; 200 runs.
        let preparer = Preparer::new(&PrepareOptions::default(), NOW);
        let mut body = RequestBody::new(&fields);
        let mut slot = PreparedEvent::default();
        let mut runs = Vec::with_capacity(200);
        for _ in 0..200 {
            let t = std::time::Instant::now();
            body.clear();
            for (i, e) in events.iter().enumerate() {
                if preparer.process_into(e, i, &mut slot).is_ok() {
                    body.push(&slot.event);
                }
            }
            std::hint::black_box(body.finish());
            runs.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
        runs.sort_by(f64::total_cmp);
        let mean = runs.iter().sum::<f64>() / runs.len() as f64;
        println!(
            "streaming, µs per event: best {:.2}, median {:.2}, mean {mean:.2}",
            runs[0], runs[100]
        );
        return;
    }
    if mode == "time" {
        // Best of 50 runs: a quick look that machine noise inflates less than a mean.
        let mut best = f64::MAX;
        for _ in 0..50 {
            let t = std::time::Instant::now();
            let prepared = prepare(&events, &PrepareOptions::default(), NOW);
            let body = request_body(&prepared.events, &fields);
            std::hint::black_box(body);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("best {:.2} µs per event", best * 1e6 / n as f64);
        return;
    }
    let prepared = prepare(&events, &PrepareOptions::default(), NOW);
    let bytes: usize = freight::batch::batches(&prepared.events, 1000)
        .map(|b| request_body(b, &fields).len())
        .sum();
    println!(
        "{} events prepared, {} rejected, {bytes} body bytes",
        prepared.events.len(),
        prepared.rejected.len()
    );
}
