//! The transport against the Graph sandbox on loopback (sandbox-spec §8): what reached the
//! sandbox, and what the report says.

use freight::client::{Client, ClientConfig};
use freight::destination::Destination;
use freight::report::{ConnectionStatus, Report};
use freight::response::ErrorKind;
use freight::retry::RetryPolicy;
use freight_sandbox::{
    Fault, FaultKind, Outcome, Sandbox, SandboxConfig, SandboxHandle, TokenConfig,
};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TOKEN: &str = "EAAB-transport-test-token-0001";
const PIXEL: &str = "1234567890";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sandbox(f: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    let mut c = SandboxConfig::with_token(TOKEN);
    f(&mut c);
    Sandbox::start(c).unwrap()
}

fn client(sb: &SandboxHandle, f: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut c = ClientConfig {
        graph_url: sb.url(),
        partner_agent: Some("plfreight-1.0-0.1".into()),
        timeout_ms: 400,
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay_ms: 1,
            max_delay_ms: 5,
            throttle_delay_ms: 5,
            max_throttle_delay_ms: 20,
            max_elapsed_ms: 10_000,
        },
        ..ClientConfig::default()
    };
    f(&mut c);
    Client::new(c).unwrap()
}

fn dest() -> Destination {
    Destination::new(PIXEL, TOKEN).unwrap()
}

fn event(i: usize) -> Value {
    json!({"event_name": "Purchase", "event_time": now() - 30, "action_source": "website",
           "event_id": format!("order-{i}"), "event_source_url": "https://shop.example/thanks",
           "user_data": {"em": format!("Customer{i}@Example.com"), "client_user_agent": "UA/1",
                         "client_ip_address": "203.0.113.7"},
           "custom_data": {"value": 10 + i, "currency": "usd"}})
}

fn events(n: usize) -> Vec<Value> {
    (0..n).map(event).collect()
}

fn assert_accounted(r: &Report, n: usize) {
    assert_eq!(r.counts.input, n);
    assert!(r.accounts_for_every_event(), "{:?}", r.counts);
}

#[test]
fn happy_path_and_top_level_fields() {
    let sb = sandbox(|_| {});
    let c = client(&sb, |_| {});
    let d = dest().with_test_event_code("TEST4242");
    let r = c.send(&d, &events(3));
    assert_accounted(&r, 3);
    assert_eq!(r.counts.delivered, 3);
    assert_eq!(r.requests.len(), 1);
    assert_eq!(r.requests[0].events_received, Some(3));
    assert!(r.requests[0].fbtrace_id.is_some());
    let reqs = sb.requests();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(q.path, format!("/v25.0/{PIXEL}/events"));
    assert_eq!(q.query, "");
    assert_eq!(q.token_source, "header");
    assert_eq!(q.body_kind, "json");
    assert_eq!(q.test_event_code.as_deref(), Some("TEST4242"));
    assert_eq!(q.partner_agent.as_deref(), Some("plfreight-1.0-0.1"));
    let ua = q.headers.iter().find(|(k, _)| k == "user-agent").unwrap();
    assert!(ua.1.starts_with("freight/"));
    // The sandbox got hashed data and an uppercase currency.
    let e = &q.events[0];
    assert_eq!(
        e["user_data"]["em"][0],
        freight::hash::sha256_hex("customer0@example.com")
    );
    assert_eq!(e["custom_data"]["currency"], "USD");
}

#[test]
fn thousand_events_per_request() {
    let sb = sandbox(|_| {});
    let c = client(&sb, |_| {});
    let r = c.send(&dest(), &events(1001));
    assert_accounted(&r, 1001);
    assert_eq!(r.counts.delivered, 1001);
    let sizes: Vec<usize> = sb.requests().iter().map(|q| q.events.len()).collect();
    assert_eq!(sizes, [1000, 1]);
    let small = client(&sb, |c| c.batch_size = 400);
    sb.reset();
    small.send(&dest(), &events(1001));
    let sizes: Vec<usize> = sb.requests().iter().map(|q| q.events.len()).collect();
    assert_eq!(sizes, [400, 400, 201]);
}

#[test]
fn seven_day_boundary_is_enforced_before_sending() {
    let sb = sandbox(|_| {});
    let c = client(&sb, |_| {});
    let n = now();
    let mut fresh = event(1);
    fresh["event_time"] = json!(n - 7 * 86_400 + 120);
    let mut stale = event(2);
    stale["event_time"] = json!(n - 7 * 86_400 - 120);
    let r = c.send_at(&dest(), &[fresh, stale], n);
    assert_accounted(&r, 2);
    assert_eq!(r.delivered.iter().map(|d| d.index).collect::<Vec<_>>(), [0]);
    assert_eq!(r.rejected[0].index, 1);
    assert_eq!(r.rejected[0].errors[0].kind.as_str(), "event_time_too_old");
    assert_eq!(
        sb.accepted_events().len(),
        1,
        "the stale event never reached Meta"
    );
}

#[test]
fn a_batch_meta_rejects_is_bisected() {
    // The sandbox allows no future time at all; the client allows 60 s: one event passes
    // locally and fails at "Meta", rejecting its whole batch.
    let sb = sandbox(|c| c.future_tolerance_secs = Some(0));
    let c = client(&sb, |_| {});
    let mut evs = events(6);
    evs[4]["event_time"] = json!(now() + 40);
    let r = c.send(&dest(), &evs);
    assert_accounted(&r, 6);
    assert_eq!(r.counts.delivered, 5);
    assert_eq!(r.failed.len(), 1);
    let f = &r.failed[0];
    assert_eq!((f.index, f.error.kind), (4, ErrorKind::Payload));
    assert_eq!(f.error.subcode, Some(2_804_004));
    assert_eq!(
        f.event.event_id.as_deref(),
        Some("order-4"),
        "the event comes back"
    );
    let accepted: Vec<String> = sb
        .accepted_events()
        .iter()
        .map(|e| e.event["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accepted.len(), 5);
    assert!(!accepted.contains(&"order-4".to_owned()));
    // Without bisection the whole batch fails.
    sb.reset();
    let whole = client(&sb, |c| c.bisect = false).send(&dest(), &evs);
    assert_eq!((whole.counts.failed, whole.counts.delivered), (6, 0));
}

#[test]
fn every_retry_class_is_retried_then_delivered() {
    let sb = sandbox(|_| {});
    let c = client(&sb, |_| {});
    let faults = vec![
        FaultKind::Throttle {
            code: 80004,
            subcode: Some(2446079),
            http: 400,
            regain_minutes: None,
        },
        FaultKind::Throttle {
            code: 4,
            subcode: None,
            http: 403,
            regain_minutes: None,
        },
        FaultKind::Http429 {
            retry_after: Some(1),
            graph_body: false,
        },
        FaultKind::Transient,
        FaultKind::Unknown,
        FaultKind::DatasetNotReady,
        FaultKind::Http5xx {
            status: 502,
            body: "html".into(),
        },
        FaultKind::Http5xx {
            status: 503,
            body: "empty".into(),
        },
        FaultKind::Hang,
        FaultKind::Reset,
        FaultKind::CloseBeforeHeaders,
        FaultKind::TruncatedBody,
        FaultKind::MalformedJson200,
    ];
    for kind in faults {
        sb.reset();
        sb.push_fault(Fault::once(kind.clone()));
        let started = std::time::Instant::now();
        let r = c.send(&dest(), &events(2));
        assert_accounted(&r, 2);
        assert_eq!(
            r.counts.delivered,
            2,
            "{kind:?}: {:?}",
            r.failed.first().map(|f| &f.error)
        );
        assert_eq!(r.requests[0].attempts, 2, "{kind:?}");
        let outcomes: Vec<_> = sb.requests().iter().map(|q| q.outcome.clone()).collect();
        assert!(matches!(outcomes[0], Outcome::Faulted { .. }), "{kind:?}");
        assert!(
            matches!(outcomes[1], Outcome::Accepted { events_received: 2 }),
            "{kind:?}"
        );
        if let FaultKind::Http429 { .. } = kind {
            assert!(
                started.elapsed() >= Duration::from_millis(950),
                "Retry-After honoured"
            );
        }
    }
}

#[test]
fn retries_are_capped_and_the_events_come_back() {
    let sb = sandbox(|_| {});
    let c = client(&sb, |c| c.retry.max_attempts = 3);
    sb.push_fault(Fault::times(FaultKind::Transient, 0));
    let r = c.send(&dest(), &events(2));
    assert_accounted(&r, 2);
    assert_eq!(r.counts.failed, 2);
    for f in &r.failed {
        assert_eq!(
            (f.error.kind, f.attempts, f.error.code),
            (ErrorKind::Transient, 3, Some(2))
        );
        assert_eq!(f.event.event_name, "Purchase");
    }
    assert_eq!(sb.requests().len(), 3);
    // Timeouts too.
    sb.reset();
    sb.push_fault(Fault::times(FaultKind::Hang, 0));
    let r = c.send(&dest(), &events(1));
    assert_eq!(
        (r.failed[0].error.kind, r.failed[0].attempts),
        (ErrorKind::Network, 3)
    );
}

#[test]
fn credential_errors_are_typed_and_not_retried() {
    let sb = sandbox(|c| {
        c.tokens.insert(
            "expired".into(),
            TokenConfig {
                state: freight_sandbox::TokenState::Expired,
                ..Default::default()
            },
        );
        c.tokens.insert(
            "elsewhere".into(),
            TokenConfig {
                datasets: vec!["1".into()],
                ..Default::default()
            },
        );
        c.tokens.insert(
            "with-secret".into(),
            TokenConfig {
                app_secret: Some("the-app-secret".into()),
                require_appsecret_proof: true,
                ..Default::default()
            },
        );
    });
    let c = client(&sb, |c| c.batch_size = 2);
    let cases = [
        (
            Destination::new(PIXEL, "expired").unwrap(),
            ErrorKind::InvalidToken,
            Some(190),
            Some(463),
        ),
        (
            Destination::new(PIXEL, "unknown-token").unwrap(),
            ErrorKind::InvalidToken,
            Some(190),
            None,
        ),
        (
            Destination::new(PIXEL, "elsewhere").unwrap(),
            ErrorKind::PixelNotFound,
            Some(100),
            Some(33),
        ),
        (
            Destination::new(PIXEL, "with-secret").unwrap(),
            ErrorKind::Config,
            Some(100),
            None,
        ),
        (
            Destination::new(PIXEL, "with-secret")
                .unwrap()
                .with_app_secret("wrong-secret")
                .unwrap(),
            ErrorKind::Config,
            Some(100),
            None,
        ),
    ];
    for (d, kind, code, subcode) in cases {
        sb.reset();
        let r = c.send(&d, &events(5));
        assert_accounted(&r, 5);
        assert_eq!(r.counts.failed, 5);
        assert_eq!(
            sb.requests().len(),
            1,
            "one request, no retry, later batches fail fast"
        );
        let e = &r.failed[0].error;
        assert_eq!((e.kind, e.code, e.subcode), (kind, code, subcode), "{d:?}");
        assert_eq!(r.failed[0].attempts, 1);
        assert_eq!(
            r.failed[4].attempts, 0,
            "not sent after the credential error"
        );
    }
    // The right app secret works, and the sandbox saw a valid proof.
    sb.reset();
    let d = Destination::new(PIXEL, "with-secret")
        .unwrap()
        .with_app_secret("the-app-secret")
        .unwrap();
    assert_eq!(c.send(&d, &events(1)).counts.delivered, 1);
    assert_eq!(sb.requests()[0].appsecret_proof_valid, Some(true));
}

#[test]
fn localized_errors_are_classified_by_code() {
    let sb = sandbox(|c| c.locale = Some("da_DK".into()));
    let c = client(&sb, |_| {});
    // The sandbox's clock runs 10 days ahead: the event is too old there.
    sb.set_now(now() + 10 * 86_400);
    let r = c.send(&dest(), &events(1));
    let e = &r.failed[0].error;
    assert_eq!(
        (e.kind, e.code, e.subcode),
        (ErrorKind::Payload, Some(100), Some(2_804_003))
    );
    assert!(e.user_title.as_deref().unwrap().contains("hændelsen"));
}

#[test]
fn count_mismatch_is_a_failure() {
    let sb = sandbox(|c| c.events_received_override = Some(1));
    let r = client(&sb, |_| {}).send(&dest(), &events(2));
    assert_accounted(&r, 2);
    assert_eq!(r.counts.failed, 2);
    assert_eq!(r.failed[0].error.kind, ErrorKind::CountMismatch);
}

#[test]
fn connection_test_statuses() {
    let sb = sandbox(|c| {
        c.tokens.insert(
            "expired".into(),
            TokenConfig {
                state: freight_sandbox::TokenState::Expired,
                ..Default::default()
            },
        );
        c.tokens.insert(
            "elsewhere".into(),
            TokenConfig {
                datasets: vec!["1".into()],
                ..Default::default()
            },
        );
    });
    let c = client(&sb, |c| c.retry = RetryPolicy::none());
    let t = c.test_connection(&dest().with_test_event_code("TEST1"));
    assert_eq!(t.status, ConnectionStatus::Ok);
    assert_eq!(sb.requests()[0].test_event_code.as_deref(), Some("TEST1"));
    let st = |d: &Destination| c.test_connection(d).status;
    assert_eq!(
        st(&Destination::new(PIXEL, "expired").unwrap()),
        ConnectionStatus::InvalidToken
    );
    assert_eq!(
        st(&Destination::new(PIXEL, "elsewhere").unwrap()),
        ConnectionStatus::PixelNotFound
    );
    sb.push_fault(Fault::once(FaultKind::Throttle {
        code: 17,
        subcode: None,
        http: 400,
        regain_minutes: None,
    }));
    assert_eq!(st(&dest()), ConnectionStatus::Throttled);
    sb.push_fault(Fault::once(FaultKind::Permission {
        style: freight_sandbox::config::PermissionStyle::Code200,
    }));
    assert_eq!(st(&dest()), ConnectionStatus::NoPermission);
    sb.push_fault(Fault::once(FaultKind::Hang));
    assert_eq!(st(&dest()), ConnectionStatus::Unreachable);
    let closed = Client::new(ClientConfig {
        graph_url: "http://127.0.0.1:1".into(),
        ..ClientConfig::default()
    })
    .unwrap();
    assert_eq!(
        closed.test_connection(&dest()).status,
        ConnectionStatus::Unreachable
    );
}

#[test]
fn no_token_anywhere() {
    let sb = sandbox(|c| {
        c.tokens.get_mut(TOKEN).unwrap().app_secret = Some("app-secret-value-77".into());
    });
    let c = client(&sb, |c| c.retry.max_attempts = 2);
    let d = dest().with_app_secret("app-secret-value-77").unwrap();
    let mut seen = Vec::new();
    seen.push(format!("{:?} {:?}", c, d));
    let r = c.send(&d, &events(3));
    seen.push(serde_json::to_string(&r).unwrap());
    seen.push(format!("{r:?}"));
    sb.push_fault(Fault::times(FaultKind::Transient, 0));
    let r = c.send(&d, &events(1));
    seen.push(serde_json::to_string(&r).unwrap());
    seen.push(r.failed[0].error.to_string());
    let bad = Destination::new(PIXEL, "EAAB-not-known-token").unwrap();
    sb.reset();
    let r = c.send(&bad, &events(1));
    seen.push(serde_json::to_string(&r).unwrap());
    seen.push(format!("{:?}", c.test_connection(&bad)));
    for q in sb.requests() {
        seen.push(format!("{} {}", q.path, q.query));
        seen.push(serde_json::to_string(&q).unwrap());
    }
    let all = seen.join("\n");
    for secret in [TOKEN, "EAAB-not-known-token", "app-secret-value-77"] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
}

#[test]
fn eight_threads_fifty_destinations_one_client() {
    let mut config = SandboxConfig::default();
    let dests: Vec<Destination> = (0..50)
        .map(|i| {
            let pixel = format!("{}", 1_000_000 + i);
            let token = format!("EAAB-token-of-pixel-{i}");
            config.tokens.insert(
                token.clone(),
                TokenConfig {
                    datasets: vec![pixel.clone()],
                    ..Default::default()
                },
            );
            Destination::new(pixel, token).unwrap()
        })
        .collect();
    let sb = Sandbox::start(config).unwrap();
    let c = client(&sb, |c| c.batch_size = 7);
    let reports: Vec<Report> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let (c, dests) = (&c, &dests);
                s.spawn(move || {
                    dests
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 8 == t)
                        .map(|(_, d)| c.send(d, &events(20)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(reports.len(), 50);
    for r in &reports {
        assert_accounted(r, 20);
        assert_eq!(
            r.counts.delivered,
            20,
            "{:?}",
            r.failed.first().map(|f| &f.error)
        );
    }
    let accepted = sb.accepted_events();
    assert_eq!(accepted.len(), 50 * 20);
    for e in &accepted {
        let i = e.dataset.parse::<usize>().unwrap() - 1_000_000;
        let expected = format!(
            "sha256:{}",
            &freight::hash::sha256_hex(&format!("EAAB-token-of-pixel-{i}"))[..12]
        );
        assert_eq!(
            e.token_fingerprint.as_deref(),
            Some(expected.as_str()),
            "token crossed pixels"
        );
    }
}

#[test]
fn a_batch_whose_retries_are_spent_makes_the_later_batches_fail_fast() {
    let sb = sandbox(|_| {});
    let c = client(&sb, |c| {
        c.batch_size = 2;
        c.retry.max_attempts = 2;
    });
    // Meta asks for 15 minutes: beyond the retry budget, so the first batch gives up at once;
    // the other two are never sent to the throttled account.
    sb.push_fault(Fault::times(
        FaultKind::Throttle {
            code: 80004,
            subcode: Some(2446079),
            http: 400,
            regain_minutes: Some(15),
        },
        0,
    ));
    let r = c.send(&dest(), &events(6));
    assert_accounted(&r, 6);
    assert_eq!(sb.requests().len(), 1);
    assert_eq!(r.requests.len(), 1);
    assert_eq!(r.failed.len(), 6);
    for f in &r.failed {
        assert_eq!(f.error.kind, ErrorKind::Throttled);
        assert_eq!(f.error.retry_after, Some(Duration::from_secs(15 * 60)));
        let sent = if f.index < 2 { 1 } else { 0 };
        assert_eq!(f.attempts, sent, "event {}", f.index);
        assert_eq!(f.event.event_id, Some(format!("order-{}", f.index)));
    }
    // An outage: the first batch's two attempts, then nothing more.
    for kind in [FaultKind::Transient, FaultKind::Reset] {
        sb.reset();
        sb.push_fault(Fault::times(kind.clone(), 0));
        let r = c.send(&dest(), &events(6));
        assert_accounted(&r, 6);
        assert_eq!(sb.requests().len(), 2, "{kind:?}");
        assert_eq!(r.counts.failed, 6, "{kind:?}");
    }
    // A passing fault that a retry overcomes halts nothing.
    sb.reset();
    sb.push_fault(Fault::once(FaultKind::Transient));
    let r = c.send(&dest(), &events(6));
    assert_eq!((r.counts.delivered, sb.requests().len()), (6, 4));
}

/// Every request answered with this Graph error (status, code, subcode).
fn graph_error_always(status: u16, code: i64, subcode: Option<i64>) -> Fault {
    let mut error = json!({"message": "Meta's text", "type": "OAuthException", "code": code,
                           "fbtrace_id": "T"});
    if let Some(sub) = subcode {
        error["error_subcode"] = json!(sub);
    }
    Fault::times(
        FaultKind::Raw {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({ "error": error }).to_string(),
        },
        0,
    )
}

#[test]
fn only_errors_about_events_are_bisected() {
    let sb = sandbox(|_| {});
    let c = client(&sb, |c| c.batch_size = 4);
    // A code Freight does not know, on every request: each batch is sent once and fails whole
    // (bisecting it would send 2n - 1 requests per batch for nothing); the next batch is still
    // sent, as a payload error is about its own batch.
    sb.push_fault(graph_error_always(400, 12345, None));
    let r = c.send(&dest(), &events(8));
    assert_accounted(&r, 8);
    assert_eq!(sb.requests().len(), 2);
    assert_eq!(r.counts.failed, 8);
    assert!(r
        .failed
        .iter()
        .all(|f| (f.error.kind, f.error.code, f.attempts) == (ErrorKind::Payload, Some(12345), 1)));
    // Code 100 without subcode is about the request ("(#100) The parameter data is
    // required"): not bisected either.
    sb.reset();
    sb.push_fault(graph_error_always(400, 100, None));
    let r = c.send(&dest(), &events(4));
    assert_accounted(&r, 4);
    assert_eq!((sb.requests().len(), r.counts.failed), (1, 4));
    // An invalid event (100 with a 2804xxx subcode) is about the events, and so is a request
    // too large whatever code comes with it: bisected down to single events (7 requests for 4).
    for fault in [
        graph_error_always(400, 100, Some(2_804_019)),
        graph_error_always(413, 12345, None),
    ] {
        sb.reset();
        sb.push_fault(fault);
        let r = c.send(&dest(), &events(4));
        assert_accounted(&r, 4);
        assert_eq!(sb.requests().len(), 7);
    }
}

#[test]
fn bisection_is_capped_per_batch() {
    // Every event bad (as when the clock is wrong: 2804003, too old): 1 + 2 * MAX_SPLITS
    // requests for a batch of 100, not 2 * 100 - 1; the next batch gets its own splits.
    let sb = sandbox(|_| {});
    let c = client(&sb, |c| c.batch_size = 100);
    sb.push_fault(graph_error_always(400, 100, Some(2_804_003)));
    let r = c.send(&dest(), &events(200));
    assert_accounted(&r, 200);
    assert_eq!(r.counts.failed, 200);
    let splits = freight::client::MAX_SPLITS;
    assert_eq!(sb.requests().len(), 2 * (1 + 2 * splits));
    assert!(r.failed.iter().all(|f| f.error.subcode == Some(2_804_003)));
}

#[test]
fn the_scheme_is_read_in_any_case() {
    let sb = sandbox(|_| {});
    let url = sb.url().replacen("http://", "HTTP://", 1);
    let c = client(&sb, |c| c.graph_url = url);
    let r = c.send(&dest(), &events(2));
    assert_eq!(
        r.counts.delivered,
        2,
        "{:?}",
        r.failed.first().map(|f| &f.error)
    );
}

/// A one-request Graph stand-in on loopback: it reads the request's headers, waits `before_body`
/// (the client's upload stalls once the socket buffers are full), reads the body, waits
/// `before_answer`, and answers that it received every event.
fn slow_graph(
    before_body: Duration,
    before_answer: Duration,
) -> (String, std::thread::JoinHandle<usize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        std::thread::sleep(before_body);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        let n = serde_json::from_slice::<Value>(&body).unwrap()["data"]
            .as_array()
            .unwrap()
            .len();
        std::thread::sleep(before_answer);
        let answer = format!(r#"{{"events_received":{n},"messages":[],"fbtrace_id":"slow"}}"#);
        let mut stream = stream;
        // The client may have given up already: its connection is then closed.
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        n
    });
    (url, server)
}

#[test]
fn timeout_is_for_the_answer_not_the_upload() {
    // 1000 events of 8 KB (more than the socket buffers hold) whose upload stalls for 0.8 s:
    // longer than the 300 ms timeout, which counts from the end of the upload.
    let note = "n".repeat(8000);
    let events: Vec<Value> = (0..1000)
        .map(|i| {
            let mut e = event(i);
            e["custom_data"]["note"] = json!(note);
            e
        })
        .collect();
    let client_of = |graph_url: String| {
        Client::new(ClientConfig {
            graph_url,
            timeout_ms: 300,
            retry: RetryPolicy::none(),
            ..ClientConfig::default()
        })
        .unwrap()
    };
    let (url, server) = slow_graph(Duration::from_millis(800), Duration::ZERO);
    let r = client_of(url).send(&dest(), &events);
    assert_eq!(server.join().unwrap(), 1000);
    assert_eq!(
        r.counts.delivered,
        1000,
        "{:?}",
        r.failed.first().map(|f| &f.error)
    );
    // An answer slower than the timeout is a timeout (handed back, not delivered).
    let (url, server) = slow_graph(Duration::ZERO, Duration::from_millis(900));
    let r = client_of(url).send(&dest(), &events[..3]);
    assert_eq!(server.join().unwrap(), 3);
    assert_eq!(r.counts.failed, 3);
    assert_eq!(r.failed[0].error.kind, ErrorKind::Network);
    assert!(r.accounts_for_every_event());
}

#[test]
fn the_deadline_bounds_every_attempt() {
    // Meta never answers: 500 ms per attempt, 1.2 s for the batch. A second attempt fits
    // (after the first, 700 ms are left); a third would not (200 ms): two attempts, ~1 s.
    let sb = sandbox(|_| {});
    let c = client(&sb, |c| {
        c.timeout_ms = 500;
        c.deadline_ms = 1_200;
    });
    sb.push_fault(Fault::times(FaultKind::Hang, 10));
    let started = std::time::Instant::now();
    let r = c.send(&dest(), &events(2));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1_600), "took {took:?}");
    assert_eq!((r.counts.failed, r.requests[0].attempts), (2, 2));
    assert_eq!(r.failed[0].error.kind, ErrorKind::Network);
    assert_accounted(&r, 2);
    // A wait Meta asks for that leaves no time for the next attempt ends the retries with
    // Meta's error (a throttle), not with the timeout of a starved last try.
    sb.reset();
    sb.push_fault(Fault::times(
        FaultKind::Http429 {
            retry_after: Some(1),
            graph_body: true,
        },
        10,
    ));
    let r = c.send(&dest(), &events(2));
    assert_eq!(r.failed[0].error.kind, ErrorKind::Throttled);
    assert_eq!(r.requests[0].attempts, 1);
}

#[test]
fn a_timeout_as_long_as_the_deadline_still_sends() {
    // The budget is then one attempt's time: the batch gets that attempt (it was handed back
    // unsent, attempts 0, whenever timeout_ms reached deadline_ms).
    let sb = sandbox(|_| {});
    for (timeout_ms, deadline_ms) in [(900_000, 900_000), (1_000_000, 900_000), (5_000, 1)] {
        let c = client(&sb, |c| {
            c.timeout_ms = timeout_ms;
            c.deadline_ms = deadline_ms;
        });
        let r = c.send(&dest(), &events(2));
        assert_eq!(
            r.counts.delivered, 2,
            "timeout {timeout_ms}, deadline {deadline_ms}"
        );
        assert_eq!(r.requests[0].attempts, 1);
    }
}

#[test]
fn a_cancelled_send_stops_its_retry_wait_and_sends_nothing_more() {
    use freight::prepare::{Outcome, PrepareOptions, Preparer};
    use std::sync::atomic::{AtomicBool, Ordering};
    let sb = sandbox(|_| {});
    // Meta asks for 30 s; the budget allows the wait; the caller stops after 300 ms.
    let c = client(&sb, |c| {
        c.batch_size = 2;
        c.retry.throttle_delay_ms = 30_000;
        c.retry.max_throttle_delay_ms = 60_000;
        c.retry.max_elapsed_ms = 600_000;
        c.deadline_ms = 600_000;
    });
    sb.push_fault(Fault::times(
        FaultKind::Http429 {
            retry_after: Some(30),
            graph_body: true,
        },
        10,
    ));
    let preparer = Preparer::new(&PrepareOptions::default(), now());
    let ready: Vec<_> = events(4)
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match preparer.process(e, i) {
            Outcome::Ready(p) => Some(*p),
            _ => None,
        })
        .collect();
    let dest = dest();
    let stop = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::SeqCst);
        });
        c.session(&dest).with_cancel(&stop).send_prepared(&ready)
    });
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_accounted(&r, 4);
    assert_eq!(r.requests.len(), 1, "the second batch is never sent");
    let kinds: Vec<_> = r
        .failed
        .iter()
        .map(|f| (f.error.kind, f.attempts))
        .collect();
    assert_eq!(
        kinds,
        [
            (ErrorKind::Throttled, 1),
            (ErrorKind::Throttled, 1),
            (ErrorKind::Cancelled, 0),
            (ErrorKind::Cancelled, 0)
        ]
    );
    // Stopped before it starts: nothing is sent.
    sb.reset();
    let r = c.session(&dest).with_cancel(&stop).send_prepared(&ready);
    assert_eq!((r.requests.len(), r.counts.failed), (0, 4));
    assert!(r
        .failed
        .iter()
        .all(|f| f.error.kind == ErrorKind::Cancelled));
    assert!(sb.requests().is_empty());
}

#[test]
fn a_token_quoted_by_meta_is_redacted() {
    // Graph's answer to a malformed token can repeat it.
    let sb = sandbox(|_| {});
    let c = client(&sb, |c| c.retry = RetryPolicy::none());
    let body = format!(
        r#"{{"error":{{"message":"Malformed access token {TOKEN}","type":"OAuthException","code":190,"error_user_title":"Bad token {TOKEN}"}}}}"#
    );
    sb.push_fault(Fault::once(FaultKind::Raw {
        status: 400,
        headers: vec![],
        body,
    }));
    let r = c.send(&dest(), &events(1));
    let e = &r.failed[0].error;
    assert_eq!(e.kind, ErrorKind::InvalidToken);
    let all = format!("{e} {e:?} {}", serde_json::to_string(&r).unwrap());
    assert!(!all.contains(TOKEN), "{all}");
    assert!(all.contains("Malformed access token <redacted>"));
    // In an answer that succeeds too, and in every text field of an error.
    sb.push_fault(Fault::once(FaultKind::Raw {
        status: 200,
        headers: vec![],
        body: format!(
            r#"{{"events_received":1,"messages":["hello {TOKEN}"],"fbtrace_id":"T{TOKEN}"}}"#
        ),
    }));
    let r = c.send(&dest(), &events(1));
    assert_eq!(r.counts.delivered, 1);
    let log = &r.requests[0];
    assert_eq!(log.messages, ["hello <redacted>"]);
    assert_eq!(log.fbtrace_id.as_deref(), Some("T<redacted>"));
    sb.push_fault(Fault::once(FaultKind::Raw {
        status: 400,
        headers: vec![],
        body: format!(
            r#"{{"error":{{"message":"m","type":"{TOKEN}","code":190,"fbtrace_id":"{TOKEN}"}}}}"#
        ),
    }));
    let r = c.send(&dest(), &events(1));
    let all = format!(
        "{:?} {}",
        r.failed[0].error,
        serde_json::to_string(&r).unwrap()
    );
    assert!(!all.contains(TOKEN), "{all}");
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) of Unix seconds `t`.
fn http_date(t: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[test]
fn retry_after_as_a_date_is_honoured() {
    // A gateway's 503 asking, by date, for a wait of about 2 s (a whole second of the date
    // may already have passed).
    let sb = sandbox(|_| {});
    let c = client(&sb, |_| {});
    let at = http_date(now() + 2);
    sb.push_fault(Fault::once(FaultKind::Raw {
        status: 503,
        headers: vec![("Retry-After".into(), at)],
        body: String::new(),
    }));
    let started = std::time::Instant::now();
    let r = c.send(&dest(), &events(2));
    assert_eq!(r.counts.delivered, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
}

#[test]
fn the_log_has_the_status_meta_answered() {
    let sb = sandbox(|_| {});
    let c = client(&sb, |_| {});
    sb.push_fault(Fault::once(FaultKind::Raw {
        status: 202,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: r#"{"events_received":2,"fbtrace_id":"t"}"#.into(),
    }));
    let r = c.send(&dest(), &events(2));
    assert_eq!(r.counts.delivered, 2);
    assert_eq!(r.requests[0].http_status, Some(202));
}
