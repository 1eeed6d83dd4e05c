//! Sandbox throughput: 1000-event requests over one keep-alive connection, so client
//! benchmarks measure the client, not the sandbox. Target: ≥ 5,000 requests per minute.
//!
//! `cargo bench -p freight-sandbox --bench throughput`

use freight_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut config = SandboxConfig::with_token("bench-token");
    config.record_events = false;
    let sandbox = Sandbox::start(config).unwrap();
    let digest = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f";
    let events: Vec<_> = (0..1000)
        .map(|i| {
            json!({"event_name": "Purchase", "event_time": now - 60, "action_source": "website",
                   "event_id": format!("order-{i}"), "event_source_url": "https://shop.example/t",
                   "user_data": {"em": [digest], "ph": [digest], "fn": [digest], "ln": [digest],
                                 "ct": [digest], "st": [digest], "zp": [digest],
                                 "country": [digest], "external_id": [digest],
                                 "client_ip_address": "203.0.113.24",
                                 "client_user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
                                 "fbc": "fb.1.1795300000000.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk",
                                 "fbp": "fb.1.1795200000000.1234567890"},
                   "custom_data": {"value": 129.9, "currency": "USD",
                                   "contents": [{"id": "SKU-1", "quantity": 1, "item_price": 79.9}]}})
        })
        .collect();
    let body = json!({ "data": events }).to_string();
    let head = format!(
        "POST /v25.0/123/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bench-token\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let run = Duration::from_secs(10);
    for connections in [1u32, 2] {
        let start = Instant::now();
        let n: u32 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..connections)
                .map(|_| scope.spawn(|| client(sandbox.addr(), &head, &body, run)))
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        let secs = start.elapsed().as_secs_f64();
        println!(
            "sandbox: {connections} keep-alive connection(s), {n} requests of 1000 events ({:.2} MB each) in {secs:.1} s: {:.0} requests/minute, {:.0} events/s",
            body.len() as f64 / 1e6,
            f64::from(n) * 60.0 / secs,
            f64::from(n) * 1000.0 / secs
        );
    }
}

/// Sends the request again and again over one connection for `run`; returns the count.
fn client(addr: std::net::SocketAddr, head: &str, body: &str, run: Duration) -> u32 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < run {
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                len = v.trim().parse().unwrap();
            }
            assert!(!line.starts_with("HTTP/1.1 4"), "rejected: {line}");
        }
        let mut resp = vec![0; len];
        reader.read_exact(&mut resp).unwrap();
        n += 1;
    }
    n
}
