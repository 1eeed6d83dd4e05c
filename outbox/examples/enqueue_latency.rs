//! Enqueue latency of a single page event, p50/p99 over 5,000 calls, and batch throughput.
//!
//! `cargo run --release -p freight-outbox --example enqueue_latency [DIR]`

use freight_outbox::Outbox;
use serde_json::json;
use std::time::Instant;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("freight-enqueue-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let outbox = Outbox::open(dir.join("outbox.db")).unwrap();
    let now = 1_795_392_000;
    let event = |i: usize| {
        json!({"event_name": "Purchase", "event_time": now - 5, "action_source": "website",
               "event_id": format!("order-{i}"), "event_source_url": "https://shop.example/t",
               "user_data": {"em": format!("c{i}@example.com"), "ph": "+1 650 555 0100",
                             "client_user_agent": "Mozilla/5.0", "client_ip_address": "203.0.113.1",
                             "fbp": "fb.1.1795391000000.123456"},
               "custom_data": {"value": 42.5, "currency": "EUR"}})
    };
    let mut samples = Vec::with_capacity(5000);
    for i in 0..5000 {
        let e = [event(i)];
        let t = Instant::now();
        outbox.enqueue("shop-1", &e, now).unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "single-event enqueue: p50 {:?}  p99 {:?}  max {:?}",
        p(0.5),
        p(0.99),
        samples[samples.len() - 1]
    );
    let batch: Vec<_> = (10_000..110_000).map(event).collect();
    let t = Instant::now();
    for chunk in batch.chunks(1000) {
        outbox.enqueue("shop-2", chunk, now).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "batch enqueue (1000 per call): {:.0} events/s",
        100_000.0 / secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}
