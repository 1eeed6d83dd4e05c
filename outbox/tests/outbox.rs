//! The outbox against the sandbox: enqueue, flush, idempotency, lifecycle, circuit breaker.

use freight::client::{Client, ClientConfig};
use freight::destination::Destination;
use freight::retry::RetryPolicy;
use freight_outbox::{FlushLimits, Outbox};
use freight_sandbox::{Fault, FaultKind, Sandbox, SandboxConfig, SandboxHandle, TokenConfig};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("freight-outbox-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("outbox.db")
}

fn event(i: usize, t: i64) -> Value {
    json!({"event_name": "Purchase", "event_time": t, "action_source": "website",
           "event_id": format!("order-{i}"), "event_source_url": "https://shop.example/t",
           "user_data": {"em": format!("c{i}@example.com"), "client_user_agent": "UA",
                         "client_ip_address": "203.0.113.1"},
           "custom_data": {"value": 5, "currency": "EUR"}})
}

fn client(sb: &SandboxHandle) -> Client {
    Client::new(ClientConfig {
        graph_url: sb.url(),
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ClientConfig::default()
    })
    .unwrap()
}

fn resolver(key: &str) -> Option<Destination> {
    let n: u32 = key.strip_prefix("shop-")?.parse().ok()?;
    Destination::new(format!("{}", 1000 + n), format!("token-{n}")).ok()
}

fn sandbox(destinations: u32) -> SandboxHandle {
    let mut c = SandboxConfig::default();
    for n in 0..destinations {
        c.tokens.insert(
            format!("token-{n}"),
            TokenConfig {
                datasets: vec![format!("{}", 1000 + n)],
                ..Default::default()
            },
        );
    }
    Sandbox::start(c).unwrap()
}

#[test]
fn enqueue_validates_stores_once_and_is_private() {
    let path = temp_db("enqueue");
    let outbox = Outbox::open(&path).unwrap();
    let t = now();
    let mut bad = event(9, t);
    bad["user_data"]["em"] = json!("nope");
    let r = outbox
        .enqueue("shop-0", &[event(1, t), event(2, t), bad], t)
        .unwrap();
    assert_eq!((r.stored, r.duplicates, r.rejected.len()), (2, 0, 1));
    assert_eq!(r.rejected[0].errors[0].kind.as_str(), "invalid_email");
    let again = outbox.enqueue("shop-0", &[event(1, t)], t).unwrap();
    assert_eq!(
        (again.stored, again.duplicates),
        (0, 1),
        "same event_id stored once"
    );
    assert_eq!(outbox.stats(t).unwrap().pending, 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "owner-only file");
    }
    let text = std::fs::read(&path).unwrap();
    assert!(
        !String::from_utf8_lossy(&text).contains("token-"),
        "no token in the file"
    );
}

#[test]
fn flush_delivers_and_records() {
    let sb = sandbox(3);
    let outbox = Outbox::open(temp_db("flush")).unwrap();
    let t = now();
    for n in 0..3 {
        let events: Vec<Value> = (0..1500).map(|i| event(i, t - 10)).collect();
        outbox.enqueue(&format!("shop-{n}"), &events, t).unwrap();
    }
    let r = outbox
        .flush(
            &client(&sb),
            resolver,
            t,
            FlushLimits::default(),
            "w1",
            None,
        )
        .unwrap();
    assert_eq!((r.delivered, r.failed, r.requests), (4500, 0, 6));
    let s = outbox.stats(t).unwrap();
    assert_eq!((s.pending, s.delivered), (0, 4500));
    assert_eq!(sb.accepted_events().len(), 4500);
    let again = outbox
        .flush(
            &client(&sb),
            resolver,
            t,
            FlushLimits::default(),
            "w1",
            None,
        )
        .unwrap();
    assert_eq!(again.requests, 0, "nothing is sent twice");
    assert_eq!(outbox.prune(0, t + 1).unwrap(), 4500);
}

#[test]
fn an_auth_failure_pauses_only_that_destination() {
    let sb = sandbox(20);
    sb.add_token(
        "token-7",
        TokenConfig {
            state: freight_sandbox::TokenState::Expired,
            ..Default::default()
        },
    );
    let outbox = Outbox::open(temp_db("pause")).unwrap();
    let t = now();
    for n in 0..20 {
        outbox
            .enqueue(
                &format!("shop-{n}"),
                &[event(n, t - 5), event(100 + n, t - 5)],
                t,
            )
            .unwrap();
    }
    let r = outbox
        .flush(&client(&sb), resolver, t, FlushLimits::default(), "w", None)
        .unwrap();
    assert_eq!(r.delivered, 38);
    assert_eq!(r.paused.len(), 1);
    assert_eq!(r.paused[0].0, "shop-7");
    assert!(
        r.paused[0].1.starts_with("invalid_token (code 190/463)"),
        "{}",
        r.paused[0].1
    );
    let s = outbox.stats(t).unwrap();
    assert_eq!(
        (s.pending, s.failed),
        (2, 0),
        "the paused events wait, nothing is lost"
    );
    assert_eq!(s.paused[0].0, "shop-7");
    // Still paused on the next flush; resumes when told, and delivers once the token works.
    assert_eq!(
        outbox
            .flush(
                &client(&sb),
                resolver,
                t + 1,
                FlushLimits::default(),
                "w",
                None
            )
            .unwrap()
            .requests,
        0
    );
    sb.add_token(
        "token-7",
        TokenConfig {
            datasets: vec!["1007".into()],
            ..Default::default()
        },
    );
    assert!(outbox.resume("shop-7").unwrap());
    assert!(!outbox.resume("shop-7").unwrap(), "nothing left to lift");
    assert!(!outbox.resume("shop-77").unwrap(), "an unknown key");
    let r = outbox
        .flush(
            &client(&sb),
            resolver,
            t + 2,
            FlushLimits::default(),
            "w",
            None,
        )
        .unwrap();
    assert_eq!(r.delivered, 2);
}

#[test]
fn transient_failures_retry_later_and_payload_errors_fail() {
    let mut config = SandboxConfig::with_token("token-0");
    config.future_tolerance_secs = Some(0);
    let sb = Sandbox::start(config).unwrap();
    let outbox = Outbox::open(temp_db("retry")).unwrap();
    let t = now();
    let mut future = event(2, t + 30);
    future["event_id"] = json!("future");
    outbox
        .enqueue("shop-0", &[event(1, t - 1), future], t)
        .unwrap();
    sb.push_fault(Fault::once(FaultKind::Transient));
    let limits = FlushLimits {
        retry_after_secs: 30,
        ..FlushLimits::default()
    };
    let r = outbox
        .flush(&client(&sb), resolver, t, limits, "w", None)
        .unwrap();
    assert_eq!((r.delivered, r.retried), (0, 2));
    assert_eq!(
        outbox
            .flush(&client(&sb), resolver, t + 1, limits, "w", None)
            .unwrap()
            .requests,
        0,
        "not due yet"
    );
    let r = outbox
        .flush(&client(&sb), resolver, t + 31, limits, "w", None)
        .unwrap();
    assert_eq!(
        (r.delivered, r.failed),
        (1, 1),
        "the bad event is bisected out and failed"
    );
    assert_eq!(outbox.stats(t + 31).unwrap().failed, 1);
    let failed = outbox.list(freight_outbox::State::Failed, 10).unwrap();
    let first = failed[0].event.as_ref().unwrap();
    assert_eq!(first.event_id.as_deref(), Some("future"));
    assert!(failed[0]
        .last_error
        .as_deref()
        .unwrap()
        .starts_with("payload (code 100/2804004)"));
    assert_eq!(outbox.requeue(Some("shop-0"), false, t + 32).unwrap(), 1);
    // An empty key (a plugin's unset setting) is no request for every destination's events.
    for blank in ["", " "] {
        let e = outbox.requeue(Some(blank), false, t + 32).unwrap_err();
        assert!(e.0.contains("key is empty"), "{e}");
    }
    assert_eq!(outbox.stats(t + 32).unwrap().pending, 1);
}

#[test]
fn throttling_delays_only_that_destination() {
    let sb = sandbox(2);
    let outbox = Outbox::open(temp_db("throttle")).unwrap();
    let t = now();
    outbox.enqueue("shop-0", &[event(1, t)], t).unwrap();
    outbox.enqueue("shop-1", &[event(2, t)], t).unwrap();
    sb.push_fault(Fault {
        kind: FaultKind::Throttle {
            code: 80004,
            subcode: None,
            http: 400,
            regain_minutes: Some(2),
        },
        dataset: Some("1000".into()),
        test_event_code: None,
        after: 0,
        times: 0,
    });
    let r = outbox
        .flush(&client(&sb), resolver, t, FlushLimits::default(), "w", None)
        .unwrap();
    assert_eq!((r.delivered, r.retried), (1, 1));
    assert_eq!(
        outbox
            .flush(
                &client(&sb),
                resolver,
                t + 60,
                FlushLimits::default(),
                "w",
                None
            )
            .unwrap()
            .requests,
        0,
        "still cooling down (2 minutes)"
    );
    sb.reset();
    let r = outbox
        .flush(
            &client(&sb),
            resolver,
            t + 121,
            FlushLimits::default(),
            "w",
            None,
        )
        .unwrap();
    assert_eq!(r.delivered, 1);
}

#[test]
fn an_outage_ends_the_flush_of_that_destination_only() {
    let sb = sandbox(2);
    let outbox = Outbox::open(temp_db("outage")).unwrap();
    let t = now();
    let many: Vec<Value> = (0..6).map(|i| event(i, t)).collect();
    outbox.enqueue("shop-0", &many, t).unwrap();
    outbox.enqueue("shop-1", &[event(9, t)], t).unwrap();
    sb.push_fault(Fault {
        kind: FaultKind::Transient,
        dataset: Some("1000".into()),
        test_event_code: None,
        after: 0,
        times: 0,
    });
    let limits = FlushLimits {
        batch_size: 2,
        retry_after_secs: 30,
        ..FlushLimits::default()
    };
    let r = outbox
        .flush(&client(&sb), resolver, t, limits, "w", None)
        .unwrap();
    // shop-0's first batch fails; its other four events are not sent to the failing
    // destination in this flush (nor charged an attempt); shop-1 is delivered.
    assert_eq!((r.delivered, r.retried, r.requests), (1, 2, 2));
    assert_eq!(sb.requests_for("1000").len(), 1);
    let pending = outbox.list(freight_outbox::State::Pending, 10).unwrap();
    assert_eq!(pending.len(), 6);
    let tried: Vec<u32> = pending.iter().map(|e| e.attempts).collect();
    assert_eq!(tried.iter().filter(|&&a| a == 1).count(), 2, "{tried:?}");
    assert_eq!(tried.iter().filter(|&&a| a == 0).count(), 4, "{tried:?}");
    sb.reset();
    let r = outbox
        .flush(&client(&sb), resolver, t + 31, limits, "w", None)
        .unwrap();
    assert_eq!(r.delivered, 6);
}

#[test]
fn events_a_stopped_send_never_sent_are_not_charged_an_attempt() {
    let sb = sandbox(1);
    let outbox = Outbox::open(temp_db("unsent")).unwrap();
    let t = now();
    outbox
        .enqueue("shop-0", &[event(1, t), event(2, t)], t)
        .unwrap();
    // Meta refuses the pair (an invalid-parameter error): the client halves it; the first
    // half meets an outage and the send stops, so the second half is never sent.
    sb.push_fault(Fault::once(FaultKind::Raw {
        status: 400,
        headers: vec![("content-type".into(), "application/json".into())],
        body: r#"{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"error_subcode":2804019,"fbtrace_id":"T"}}"#.into(),
    }));
    sb.push_fault(Fault::times(FaultKind::Transient, 0));
    let limits = FlushLimits {
        retry_after_secs: 30,
        max_attempts: 2,
        ..FlushLimits::default()
    };
    let r = outbox
        .flush(&client(&sb), resolver, t, limits, "w", None)
        .unwrap();
    assert_eq!((r.requests, r.retried, r.failed), (2, 2, 0));
    let pending = outbox.list(freight_outbox::State::Pending, 10).unwrap();
    let mut attempts: Vec<(Option<String>, u32)> = pending
        .iter()
        .map(|e| (e.event.as_ref().unwrap().event_id.clone(), e.attempts))
        .collect();
    attempts.sort();
    assert_eq!(
        attempts,
        vec![(Some("order-1".into()), 1), (Some("order-2".into()), 0)]
    );
    // A second outage: order-1 has had its two attempts and fails; order-2, never sent,
    // stays pending with one attempt.
    let r = outbox
        .flush(&client(&sb), resolver, t + 31, limits, "w", None)
        .unwrap();
    assert_eq!(r.failed, 1, "{r:?}");
    assert_eq!(outbox.stats(t + 31).unwrap().pending, 1);
}

#[test]
fn events_expire_before_metas_window_closes() {
    let sb = sandbox(1);
    let outbox = Outbox::open(temp_db("expire")).unwrap();
    let t = now();
    outbox.enqueue("shop-0", &[event(1, t - 60)], t).unwrap();
    let later = t + 7 * 86_400;
    let r = outbox
        .flush(
            &client(&sb),
            resolver,
            later,
            FlushLimits::default(),
            "w",
            None,
        )
        .unwrap();
    assert_eq!((r.expired, r.requests), (1, 0));
    assert_eq!(outbox.stats(later).unwrap().expired, 1);
    // The event expired an hour before Meta's window closes (at t - 60 + 7 days): re-queued
    // in that hour, it is sent; then it expires for good and cannot come back.
    let last_hour = t - 60 + 7 * 86_400 - 1800;
    assert_eq!(outbox.requeue(None, true, last_hour).unwrap(), 1);
    let r = outbox
        .flush(
            &client(&sb),
            resolver,
            last_hour,
            FlushLimits::default(),
            "w",
            None,
        )
        .unwrap();
    assert_eq!(
        (r.expired, r.requests),
        (0, 1),
        "sent in the window's last hour"
    );
    let path = temp_db("expire-twice");
    let outbox = Outbox::open(&path).unwrap();
    outbox.enqueue("shop-0", &[event(1, t - 60)], t).unwrap();
    let closed = t - 60 + 7 * 86_400;
    assert_eq!(
        outbox
            .flush(
                &client(&sb),
                resolver,
                later,
                FlushLimits::default(),
                "w",
                None
            )
            .unwrap()
            .expired,
        1
    );
    assert_eq!(
        outbox.requeue(None, true, closed).unwrap(),
        0,
        "Meta's window is closed"
    );
    assert_eq!(outbox.stats(closed).unwrap().expired, 1);
    // Nor in its last minutes, when a flush could not end before Meta refuses the event.
    assert_eq!(outbox.requeue(None, true, closed - 300).unwrap(), 0);
    // An expired row whose body is not JSON stays, and the others are re-queued all the same.
    outbox.enqueue("shop-0", &[event(2, t - 60)], t).unwrap();
    outbox.enqueue("shop-0", &[event(3, t - 60)], t).unwrap();
    outbox
        .flush(
            &client(&sb),
            resolver,
            later,
            FlushLimits::default(),
            "w",
            None,
        )
        .unwrap();
    raw(&path)
        .execute(
            "UPDATE bodies SET wire = '{\"event_name\":' WHERE id = 2",
            [],
        )
        .unwrap();
    assert_eq!(outbox.stats(later).unwrap().expired, 3);
    assert_eq!(outbox.requeue(None, true, last_hour).unwrap(), 2);
}

#[test]
fn unresolved_destinations_keep_their_events() {
    let sb = sandbox(1);
    let outbox = Outbox::open(temp_db("unresolved")).unwrap();
    let t = now();
    outbox.enqueue("unknown-shop", &[event(1, t)], t).unwrap();
    let r = outbox
        .flush(&client(&sb), resolver, t, FlushLimits::default(), "w", None)
        .unwrap();
    assert_eq!(r.unresolved, ["unknown-shop"]);
    assert_eq!(outbox.stats(t).unwrap().pending, 1);
}

#[test]
fn two_concurrent_flushers_never_send_a_row_twice() {
    let sb = sandbox(4);
    let path = temp_db("two-flushers");
    let t = now();
    {
        let outbox = Outbox::open(&path).unwrap();
        for n in 0..4 {
            let events: Vec<Value> = (0..2500)
                .map(|i| event(n * 10_000 + i as usize, t - 5))
                .collect();
            outbox.enqueue(&format!("shop-{n}"), &events, t).unwrap();
        }
    }
    let limits = FlushLimits {
        batch_size: 250,
        ..FlushLimits::default()
    };
    let reports: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|w| {
                let (path, sb) = (&path, &sb);
                s.spawn(move || {
                    let outbox = Outbox::open(path).unwrap(); // its own connection
                    outbox
                        .flush(&client(sb), resolver, t, limits, w, None)
                        .unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let delivered: usize = reports.iter().map(|r| r.delivered).sum();
    assert_eq!(delivered, 10_000);
    let mut ids: Vec<String> = sb
        .accepted_events()
        .iter()
        .map(|e| format!("{}/{}", e.dataset, e.event["event_id"]))
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((n, ids.len()), (10_000, 10_000), "no row was sent twice");
}

fn raw(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn a_file_of_another_layout_is_refused() {
    // The first layout kept the wire JSON in `events` (NOT NULL): opened by this version, its
    // inserts were ignored, silently, as duplicates.
    let old = temp_db("old-layout");
    raw(&old)
        .execute_batch(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, dest_key TEXT NOT NULL,
                                  event_name TEXT NOT NULL, event_id TEXT, wire TEXT NOT NULL);",
        )
        .unwrap();
    let e = Outbox::open(&old).err().expect("an old layout is refused");
    assert!(e.0.contains("another layout"), "{e}");
    // A newer version's file.
    let newer = temp_db("newer-layout");
    drop(Outbox::open(&newer).unwrap());
    raw(&newer).pragma_update(None, "user_version", 2).unwrap();
    let e = Outbox::open(&newer)
        .err()
        .expect("a newer layout is refused");
    assert!(e.0.contains("layout 2"), "{e}");
    // A file of this layout written before the version was recorded: adopted.
    let unversioned = temp_db("unversioned");
    let t = now();
    Outbox::open(&unversioned)
        .unwrap()
        .enqueue("shop-0", &[event(1, t)], t)
        .unwrap();
    raw(&unversioned)
        .pragma_update(None, "user_version", 0)
        .unwrap();
    let outbox = Outbox::open(&unversioned).unwrap();
    assert_eq!(outbox.stats(t).unwrap().pending, 1);
    let version: i64 = raw(&unversioned)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
}

#[test]
fn a_flusher_whose_lease_ran_out_changes_nothing() {
    use freight_outbox::Store;
    let path = temp_db("late-flusher");
    let outbox = Outbox::open(&path).unwrap();
    let t = now();
    outbox
        .enqueue("shop-0", &[event(1, t), event(2, t)], t)
        .unwrap();
    let store = outbox.store();
    let a = store.claim("shop-0", 10, t, 10, "a").unwrap().rows;
    assert_eq!(a.len(), 2);
    assert!(store
        .claim("shop-0", 10, t + 5, 10, "b")
        .unwrap()
        .rows
        .is_empty());
    // a's lease runs out; b takes the rows and delivers them; a's late outcomes are dropped.
    let b = store.claim("shop-0", 10, t + 20, 10, "b").unwrap().rows;
    let ids: Vec<i64> = b.iter().map(|r| r.id).collect();
    store.release(&ids[..1], t + 21, "a").unwrap();
    assert!(
        store.due_destinations(t + 22).unwrap().is_empty(),
        "b's lease holds"
    );
    store.delivered(&ids, t + 23, "b").unwrap();
    store.failed(&ids, "late", t + 24, "a").unwrap();
    store.unclaim(&ids, t + 24, "a").unwrap();
    let stats = outbox.stats(t + 25).unwrap();
    assert_eq!((stats.delivered, stats.failed, stats.pending), (2, 0, 0));
}

#[test]
fn an_unreadable_row_fails_alone() {
    let sb = sandbox(1);
    let path = temp_db("unreadable");
    let outbox = Outbox::open(&path).unwrap();
    let t = now();
    let events: Vec<Value> = (0..3).map(|i| event(i, t - 5)).collect();
    outbox.enqueue("shop-0", &events, t).unwrap();
    let db = raw(&path);
    db.execute(
        "UPDATE bodies SET wire = '{\"event_name\":' WHERE id = 2",
        [],
    )
    .unwrap();
    db.execute("DELETE FROM bodies WHERE id = 3", []).unwrap();
    let r = outbox
        .flush(&client(&sb), resolver, t, FlushLimits::default(), "w", None)
        .unwrap();
    assert_eq!((r.delivered, r.failed), (1, 2));
    let stats = outbox.stats(t).unwrap();
    assert_eq!((stats.delivered, stats.failed, stats.pending), (1, 2, 0));
    // Still listed, without the event they lost.
    let failed = outbox.list(freight_outbox::State::Failed, 10).unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed
        .iter()
        .all(|f| f.event.is_none() && f.last_error.is_some()));
    let errors: Vec<String> = db
        .prepare("SELECT last_error FROM events WHERE state = 'failed' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        errors[0].starts_with("the stored event cannot be read"),
        "{errors:?}"
    );
    assert_eq!(errors[1], "the stored event is missing");
}

#[test]
fn an_event_without_event_id_is_stored_once_with_one() {
    let path = temp_db("no-event-id");
    let outbox = Outbox::open(&path).unwrap();
    let t = now();
    let mut e = event(1, t);
    e.as_object_mut().unwrap().remove("event_id");
    let first = outbox.enqueue("shop-0", &[e.clone()], t).unwrap();
    let again = outbox.enqueue("shop-0", &[e.clone()], t).unwrap();
    assert_eq!((first.stored, again.stored, again.duplicates), (1, 0, 1));
    let mut other = e.clone();
    other["custom_data"]["value"] = json!(6);
    assert_eq!(outbox.enqueue("shop-0", &[other], t).unwrap().stored, 1);
    let stored = outbox.list(freight_outbox::State::Pending, 10).unwrap();
    let ids: Vec<_> = stored
        .iter()
        .map(|s| s.event.as_ref().unwrap().event_id.clone())
        .collect();
    assert!(ids
        .iter()
        .all(|id| id.as_ref().is_some_and(|i| i.len() == 36)));
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn a_huge_retry_after_throttles_for_a_day() {
    let sb = sandbox(1);
    let path = temp_db("huge-retry-after");
    let outbox = Outbox::open(&path).unwrap();
    let t = now();
    outbox.enqueue("shop-0", &[event(1, t - 5)], t).unwrap();
    sb.push_fault(Fault::once(FaultKind::Http429 {
        retry_after: Some(u64::MAX),
        graph_body: false,
    }));
    let r = outbox
        .flush(&client(&sb), resolver, t, FlushLimits::default(), "w", None)
        .unwrap();
    assert_eq!((r.delivered, r.retried), (0, 1));
    // Throttled for a day at most (the wait wrapped to -1 before: due a second later).
    use freight_outbox::Store;
    let due = |at: i64| outbox.store().due_destinations(at).unwrap();
    assert!(due(t + 86_399).is_empty());
    assert_eq!(due(t + freight_outbox::MAX_THROTTLE_SECS), ["shop-0"]);
}

#[test]
fn the_default_lease_outlasts_a_request_and_its_retries() {
    let sb = sandbox(1);
    let path = temp_db("default-lease");
    let outbox = Outbox::open(&path).unwrap();
    let t = now();
    outbox.enqueue("shop-0", &[event(1, t - 5)], t).unwrap();
    sb.push_fault(Fault::once(FaultKind::Hang));
    let c = client(&sb);
    let budget = i64::try_from(c.config().deadline_ms / 1000).unwrap() + 60;
    std::thread::scope(|s| {
        let flush = s.spawn(|| {
            outbox
                .flush(&c, resolver, t, FlushLimits::default(), "w", None)
                .unwrap()
        });
        // While the request hangs, its row is leased for the client's whole budget.
        let lease = loop {
            let l: Option<i64> = raw(&path)
                .query_row("SELECT lease_until FROM events", [], |r| r.get(0))
                .unwrap();
            if let Some(l) = l {
                break l;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(lease >= t + budget, "lease {} s", lease - t);
        assert_eq!(flush.join().unwrap().retried, 1);
    });
}

#[test]
fn warnings_come_back_and_delivered_events_are_pruned() {
    let sb = sandbox(1);
    let path = temp_db("warnings-prune");
    let outbox = Outbox::open(&path).unwrap();
    let t = now();
    let mut no_id = event(2, t - 5);
    no_id.as_object_mut().unwrap().remove("event_id");
    let r = outbox
        .enqueue("shop-0", &[event(1, t - 5), no_id], t)
        .unwrap();
    assert_eq!(r.stored, 2);
    assert_eq!(
        r.warnings.len(),
        1,
        "the event without event_id is warned about"
    );
    assert_eq!(r.warnings[0].index, 1);
    let f = outbox
        .flush(&client(&sb), resolver, t, FlushLimits::default(), "w", None)
        .unwrap();
    assert_eq!((f.delivered, f.pruned), (2, 0));
    let later = t + FlushLimits::default().retention_secs + 1;
    let f = outbox
        .flush(
            &client(&sb),
            resolver,
            later,
            FlushLimits::default(),
            "w",
            None,
        )
        .unwrap();
    assert_eq!(f.pruned, 2);
    assert_eq!(outbox.stats(later).unwrap().delivered, 0);
    let bodies: i64 = raw(&path)
        .query_row("SELECT COUNT(*) FROM bodies", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bodies, 0);
}

#[test]
fn a_throttle_or_a_pause_is_not_an_attempt() {
    let sb = sandbox(1);
    let path = temp_db("throttle-attempts");
    let outbox = Outbox::open(&path).unwrap();
    let t = now();
    outbox.enqueue("shop-0", &[event(1, t - 5)], t).unwrap();
    sb.push_fault(Fault::once(FaultKind::Http429 {
        retry_after: Some(30),
        graph_body: false,
    }));
    let f = outbox
        .flush(&client(&sb), resolver, t, FlushLimits::default(), "w", None)
        .unwrap();
    assert_eq!(f.retried, 1);
    sb.push_fault(Fault::once(FaultKind::AuthError {
        subcode: Some(463),
        http: 400,
    }));
    let f = outbox
        .flush(
            &client(&sb),
            resolver,
            t + 31,
            FlushLimits::default(),
            "w",
            None,
        )
        .unwrap();
    assert_eq!(f.paused.len(), 1);
    let attempts: i64 = raw(&path)
        .query_row("SELECT attempts FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(attempts, 0);
}

/// A store whose `delivered` fails from the `n`th call on (as a full disk would).
struct FailingStore {
    inner: freight_outbox::SqliteStore,
    calls: std::cell::Cell<usize>,
    fail_from: usize,
}

mod failing {
    use super::FailingStore;
    use freight::model::ServerEvent;
    use freight_outbox::{Claimed, OutboxError, State, Stats, Store, StoredEvent};

    impl Store for FailingStore {
        fn insert(&self, k: &str, e: &[(ServerEvent, i64)], n: i64) -> Result<usize, OutboxError> {
            self.inner.insert(k, e, n)
        }
        fn expire(&self, now: i64) -> Result<usize, OutboxError> {
            self.inner.expire(now)
        }
        fn due_destinations(&self, now: i64) -> Result<Vec<String>, OutboxError> {
            self.inner.due_destinations(now)
        }
        fn claim(
            &self,
            k: &str,
            limit: usize,
            now: i64,
            lease: i64,
            owner: &str,
        ) -> Result<Claimed, OutboxError> {
            self.inner.claim(k, limit, now, lease, owner)
        }
        fn delivered(&self, ids: &[i64], now: i64, owner: &str) -> Result<(), OutboxError> {
            self.calls.set(self.calls.get() + 1);
            if self.calls.get() >= self.fail_from {
                return Err(OutboxError(
                    "outbox storage: database or disk is full".into(),
                ));
            }
            self.inner.delivered(ids, now, owner)
        }
        fn failed(&self, ids: &[i64], e: &str, now: i64, owner: &str) -> Result<(), OutboxError> {
            self.inner.failed(ids, e, now, owner)
        }
        fn release(&self, ids: &[i64], at: i64, owner: &str) -> Result<(), OutboxError> {
            self.inner.release(ids, at, owner)
        }
        fn unclaim(&self, ids: &[i64], at: i64, owner: &str) -> Result<(), OutboxError> {
            self.inner.unclaim(ids, at, owner)
        }
        fn pause(&self, k: &str, reason: &str, until: i64) -> Result<(), OutboxError> {
            self.inner.pause(k, reason, until)
        }
        fn throttle(&self, k: &str, until: i64) -> Result<(), OutboxError> {
            self.inner.throttle(k, until)
        }
        fn resume(&self, k: &str) -> Result<bool, OutboxError> {
            self.inner.resume(k)
        }
        fn requeue(&self, k: Option<&str>, expired: bool, now: i64) -> Result<usize, OutboxError> {
            self.inner.requeue(k, expired, now)
        }
        fn prune(&self, before: i64) -> Result<usize, OutboxError> {
            self.inner.prune(before)
        }
        fn stats(&self, now: i64) -> Result<Stats, OutboxError> {
            self.inner.stats(now)
        }
        fn list(&self, state: State, limit: usize) -> Result<Vec<StoredEvent>, OutboxError> {
            self.inner.list(state, limit)
        }
    }
}

#[test]
fn a_storage_error_keeps_what_the_flush_did() {
    let sb = sandbox(2);
    let path = temp_db("storage-error");
    let store = FailingStore {
        inner: freight_outbox::SqliteStore::open(&path).unwrap(),
        calls: std::cell::Cell::new(0),
        fail_from: 2,
    };
    let outbox = Outbox::with_store(store);
    let t = now();
    outbox.enqueue("shop-0", &[event(1, t - 5)], t).unwrap();
    outbox.enqueue("shop-1", &[event(2, t - 5)], t).unwrap();
    let r = outbox
        .flush(&client(&sb), resolver, t, FlushLimits::default(), "w", None)
        .unwrap();
    // shop-0 delivered and recorded; shop-1 delivered, then its record failed: reported.
    assert_eq!(r.delivered, 1);
    assert_eq!(r.requests, 2);
    assert_eq!(
        r.stopped.as_deref(),
        Some("outbox storage: database or disk is full")
    );
}

#[test]
fn a_cancelled_flush_ends_its_wait_and_leaves_the_rest_pending() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let sb = sandbox(2);
    let outbox = Outbox::open(temp_db("cancel")).unwrap();
    let t = now();
    for (key, first) in [("shop-0", 0), ("shop-1", 10)] {
        let r = outbox
            .enqueue(key, &[event(first, t), event(first + 1, t)], t)
            .unwrap();
        assert_eq!(r.stored, 2);
    }
    // Meta asks for 30 s, which the client's budget allows; the caller stops after 300 ms.
    sb.push_fault(Fault::times(
        FaultKind::Http429 {
            retry_after: Some(30),
            graph_body: true,
        },
        10,
    ));
    let waiting = Client::new(ClientConfig {
        graph_url: sb.url(),
        ..ClientConfig::default()
    })
    .unwrap();
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::SeqCst);
        });
        outbox
            .flush(
                &waiting,
                resolver,
                t,
                FlushLimits::default(),
                "w",
                Some(&stop),
            )
            .unwrap()
    });
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(r.interrupted, "{r:?}");
    assert_eq!(
        (r.requests, r.delivered, r.failed, r.retried),
        (1, 0, 0, 2),
        "{r:?}"
    );
    assert_eq!(sb.requests().len(), 1, "no request after the interrupt");
    assert_eq!(outbox.stats(t).unwrap().pending, 4, "nothing lost");
    // Already set: nothing is claimed or sent.
    let r = outbox
        .flush(
            &waiting,
            resolver,
            t,
            FlushLimits::default(),
            "w",
            Some(&stop),
        )
        .unwrap();
    assert!(r.interrupted);
    assert_eq!((r.requests, r.retried), (0, 0));
    assert_eq!(sb.requests().len(), 1);
    // Without it, once the throttled destination's wait is over, everything goes out.
    sb.reset();
    let r = outbox
        .flush(
            &waiting,
            resolver,
            t + 31,
            FlushLimits::default(),
            "w",
            None,
        )
        .unwrap();
    assert!(!r.interrupted);
    assert_eq!((r.requests, r.delivered), (2, 4), "{r:?}");
    assert_eq!(outbox.stats(t + 31).unwrap().pending, 0);
}

#[test]
fn an_event_the_flush_would_expire_is_refused_at_enqueue() {
    let outbox = Outbox::open(temp_db("too-old")).unwrap();
    let t = now();
    // Inside Meta's 7 days, but less than the outbox's hour of margin before they end.
    let late = t - 7 * 86_400 + 1200;
    let r = outbox
        .enqueue("shop-0", &[event(1, late), event(2, t)], t)
        .unwrap();
    assert_eq!((r.stored, r.rejected.len()), (1, 1), "{r:?}");
    assert_eq!(r.rejected[0].index, 0);
    let p = &r.rejected[0].errors[0];
    assert_eq!(p.kind.as_str(), "event_time_too_old");
    assert_eq!(p.loc, "data[0].event_time");
    assert!(p.msg.starts_with("too old for the outbox"), "{}", p.msg);
    // The margin's edge: an hour and a minute left is still taken.
    let r = outbox
        .enqueue("shop-0", &[event(3, t - 7 * 86_400 + 3660)], t)
        .unwrap();
    assert_eq!(r.stored, 1);
}

#[test]
fn a_flush_cancelled_in_a_retry_wait_never_fails_the_event_for_good() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    let sb = sandbox(1);
    let outbox = Outbox::open(temp_db("cancel-retry")).unwrap();
    let t = now();
    assert_eq!(
        outbox.enqueue("shop-0", &[event(1, t)], t).unwrap().stored,
        1
    );
    // A passing failure, then a long backoff before the client's next try.
    sb.push_fault(Fault::times(FaultKind::Transient, 10));
    let waiting = Client::new(ClientConfig {
        graph_url: sb.url(),
        retry: RetryPolicy {
            base_delay_ms: 20_000,
            max_delay_ms: 20_000,
            ..RetryPolicy::default()
        },
        ..ClientConfig::default()
    })
    .unwrap();
    // The outbox's last attempt: a failure it counts would be final.
    let limits = FlushLimits {
        max_attempts: 1,
        ..FlushLimits::default()
    };
    let stop = AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            while sb.requests().is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(100));
            stop.store(true, Ordering::SeqCst);
        });
        outbox
            .flush(&waiting, resolver, t, limits, "w", Some(&stop))
            .unwrap()
    });
    assert!(r.interrupted, "{r:?}");
    assert_eq!((r.failed, r.retried), (0, 1), "{r:?}");
    let s = outbox.stats(t).unwrap();
    assert_eq!((s.pending, s.failed), (1, 0));
}

#[test]
fn resume_lifts_a_throttle_too() {
    use freight_outbox::Store;
    let outbox = Outbox::open(temp_db("resume-throttle")).unwrap();
    let t = now();
    assert_eq!(
        outbox.enqueue("shop-0", &[event(1, t)], t).unwrap().stored,
        1
    );
    outbox.store().throttle("shop-0", t + 86_400).unwrap();
    assert!(outbox.resume("shop-0").unwrap(), "a throttle is lifted");
    assert!(!outbox.resume("shop-0").unwrap());
    let sb = sandbox(1);
    let r = outbox
        .flush(&client(&sb), resolver, t, FlushLimits::default(), "w", None)
        .unwrap();
    assert_eq!(r.delivered, 1, "{r:?}");
}
