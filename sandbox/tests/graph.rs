//! The sandbox over real sockets, row by row of `reference/sandbox-spec.md` §1–§7.

mod common;

use common::*;
use freight_sandbox::config::{ConflictMode, DeprecatedMode, PermissionStyle};
use freight_sandbox::{Fault, FaultKind, Outcome, Sandbox, SandboxConfig, TokenConfig, TokenState};
use serde_json::{json, Value};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn start() -> freight_sandbox::SandboxHandle {
    start_with(|_| {})
}

fn start_with(f: impl FnOnce(&mut SandboxConfig)) -> freight_sandbox::SandboxHandle {
    let mut c = SandboxConfig::with_token(TOKEN);
    f(&mut c);
    Sandbox::start(c).unwrap()
}

// §1 Routing

#[test]
fn routing_versions_nodes_and_methods() {
    let sb = start_with(|c| {
        c.known_versions = vec!["v25.0".into()];
        c.deprecated_versions = vec!["v19.0".into()];
    });
    let a = sb.addr();
    let auth = format!("Bearer {TOKEN}");
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let body = json!({"data": [event(now(), "r1")]}).to_string();
    let r = request(a, "POST", "/vx/1/events", &h, body.as_bytes()).unwrap();
    assert_eq!((r.status, r.code()), (400, (2500, None)));
    let r = request(a, "POST", "/v30.0/1/events", &h, body.as_bytes()).unwrap();
    assert_eq!(r.code(), (2500, None));
    let r = request(a, "POST", "/v19.0/1/events", &h, body.as_bytes()).unwrap();
    assert_eq!(r.code(), (2635, None));
    let r = request(a, "POST", "/v25.0/abc/events", &h, body.as_bytes()).unwrap();
    assert_eq!(r.code(), (100, Some(33)));
    assert_eq!(r.json()["error"]["type"], "GraphMethodException");
    let r = request(a, "GET", "/v25.0/1/events", &h, b"").unwrap();
    assert_eq!(r.code(), (100, Some(33)));
    let r = request(a, "POST", "/v25.0/1/other", &h, body.as_bytes()).unwrap();
    assert_eq!(r.code(), (100, Some(33)));

    let up = start_with(|c| {
        c.known_versions = vec!["v25.0".into()];
        c.deprecated_versions = vec!["v19.0".into()];
        c.deprecated_mode = DeprecatedMode::AutoUpgrade;
    });
    let r = request(up.addr(), "POST", "/v19.0/1/events", &h, body.as_bytes()).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("facebook-api-version"), Some("v25.0"));
}

// §2 Decoding

#[test]
fn decodes_json_form_multipart_and_double_encoded_events() {
    let sb = start();
    let a = sb.addr();
    let e = event(now(), "d1");
    // JSON, objects.
    assert_eq!(post_events(a, vec![e.clone()]).status, 200);
    // Form: data is a JSON array of JSON strings (the Python SDK's double encoding).
    let data = serde_json::to_string(&vec![e.to_string()]).unwrap();
    let form = format!(
        "data={}&access_token={TOKEN}&test_event_code=TEST42",
        urlencode(&data)
    );
    let r = request(
        a,
        "POST",
        &format!("/v25.0/{PIXEL}/events"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    // Multipart with the token in the query.
    let mp = format!(
        "--B0\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n{}\r\n--B0--\r\n",
        json!([e])
    );
    let r = request(
        a,
        "POST",
        &format!("/v25.0/{PIXEL}/events?access_token={TOKEN}"),
        &[("Content-Type", "multipart/form-data; boundary=B0")],
        mp.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    let reqs = sb.requests();
    let kinds: Vec<_> = reqs.iter().map(|r| r.body_kind.as_str()).collect();
    assert_eq!(kinds, ["json", "form", "multipart"]);
    assert_eq!(reqs[0].element_encoding, ["object"]);
    assert_eq!(reqs[1].element_encoding, ["json_string"]);
    assert_eq!(reqs[1].events[0]["event_id"], "d1");
    assert_eq!(reqs[1].test_event_code.as_deref(), Some("TEST42"));
    let sources: Vec<_> = reqs.iter().map(|r| r.token_source.as_str()).collect();
    assert_eq!(sources, ["header", "body", "query"]);
}

#[test]
fn chunked_bodies_and_keep_alive() {
    let sb = start();
    let body = json!({"data": [event(now(), "k1")]}).to_string();
    let mut s = TcpStream::connect(sb.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    for _ in 0..3 {
        let req = format!(
            "POST /v25.0/{PIXEL}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let r = read_reply(&mut reader).unwrap();
        assert_eq!(r.status, 200);
    }
    assert_eq!(sb.requests().len(), 3, "three requests on one connection");
}

#[test]
fn bad_bodies_get_code_100() {
    let sb = start();
    let a = sb.addr();
    let auth = format!("Bearer {TOKEN}");
    let path = format!("/v25.0/{PIXEL}/events");
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    for body in [
        &b"{not json"[..],
        b"{}",
        br#"{"data":{}}"#,
        br#"{"data":[]}"#,
    ] {
        let r = request(a, "POST", &path, &h, body).unwrap();
        assert_eq!(r.code(), (100, None));
        assert_eq!(
            r.json()["error"]["message"],
            "(#100) The parameter data is required"
        );
    }
    let gz = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
    ];
    let body = json!({"data": [event(now(), "g")]}).to_string();
    assert_eq!(
        request(a, "POST", &path, &gz, body.as_bytes())
            .unwrap()
            .code(),
        (100, None)
    );
    let n = now();
    let ok: Vec<Value> = (0..1000).map(|i| event(n, &format!("e{i}"))).collect();
    assert_eq!(post_events(a, ok.clone()).status, 200);
    let mut too_many = ok;
    too_many.push(event(n, "one-more"));
    let r = post_events(a, too_many);
    assert_eq!(r.code(), (100, None));
    assert_eq!(sb.accepted_events().len(), 1000);
}

// §3 Authentication

#[test]
fn token_states_and_auth_errors() {
    let sb = start_with(|c| {
        for (t, state) in [
            ("expired", TokenState::Expired),
            ("revoked", TokenState::Invalid),
            ("garbled", TokenState::Malformed),
        ] {
            c.tokens.insert(
                t.into(),
                TokenConfig {
                    state,
                    ..Default::default()
                },
            );
        }
        c.tokens.insert(
            "other-pixel".into(),
            TokenConfig {
                datasets: vec!["999".into()],
                ..Default::default()
            },
        );
    });
    let a = sb.addr();
    let body = json!({"data": [event(now(), "a1")]});
    let r = request(
        a,
        "POST",
        &format!("/v25.0/{PIXEL}/events"),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!((r.status, r.code()), (400, (104, None)));
    let r = post(a, PIXEL, "unknown-token", &body);
    assert_eq!((r.status, r.code()), (400, (190, None)));
    assert!(r
        .header("WWW-Authenticate")
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(post(a, PIXEL, "garbled", &body).code(), (190, None));
    assert_eq!(post(a, PIXEL, "expired", &body).code(), (190, Some(463)));
    assert_eq!(post(a, PIXEL, "revoked", &body).code(), (190, Some(467)));
    let r = post(a, PIXEL, "other-pixel", &body);
    assert_eq!(
        r.code(),
        (100, Some(33)),
        "a token never reaches another pixel"
    );
    assert_eq!(post(a, "999", "other-pixel", &body).status, 200);
    assert!(sb.accepted_events().iter().all(|e| e.dataset == "999"));

    let s401 = start_with(|c| c.auth_error_status = 401);
    assert_eq!(post(s401.addr(), PIXEL, "nope", &body).status, 401);
    for (style, code) in [
        (PermissionStyle::Code200, 200),
        (PermissionStyle::Code10, 10),
    ] {
        let sb = start_with(|c| {
            c.permission_error_style = style;
            c.tokens.insert(
                "limited".into(),
                TokenConfig {
                    datasets: vec!["1".into()],
                    ..Default::default()
                },
            );
        });
        assert_eq!(
            post(sb.addr(), PIXEL, "limited", &body).code(),
            (code, None)
        );
    }
}

#[test]
fn appsecret_proof_checked() {
    let secret = "app-secret-xyz";
    let sb = start_with(|c| {
        c.tokens.insert(
            TOKEN.into(),
            TokenConfig {
                app_secret: Some(secret.into()),
                require_appsecret_proof: true,
                ..Default::default()
            },
        );
    });
    let a = sb.addr();
    let proof = {
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(TOKEN.as_bytes());
        m.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let ev = event(now(), "p1");
    assert_eq!(
        post(
            a,
            PIXEL,
            TOKEN,
            &json!({"data": [ev], "appsecret_proof": proof})
        )
        .status,
        200
    );
    let r = post(
        a,
        PIXEL,
        TOKEN,
        &json!({"data": [ev], "appsecret_proof": "0".repeat(64)}),
    );
    assert_eq!(r.code(), (100, None));
    assert_eq!(
        r.json()["error"]["message"],
        "Invalid appsecret_proof provided in the API argument"
    );
    let r = post(a, PIXEL, TOKEN, &json!({"data": [ev]}));
    assert_eq!(
        r.json()["error"]["message"],
        "API calls from the server require an appsecret_proof argument"
    );
    // The right proof in uppercase hex is not the proof (the contract: lowercase hex).
    let r = post(
        a,
        PIXEL,
        TOKEN,
        &json!({"data": [ev], "appsecret_proof": proof.to_uppercase()}),
    );
    assert_eq!(r.code(), (100, None));
    let valid: Vec<_> = sb
        .requests()
        .iter()
        .map(|r| r.appsecret_proof_valid)
        .collect();
    assert_eq!(valid, [Some(true), Some(false), None, Some(false)]);
}

#[test]
fn conflicting_tokens() {
    let sb = start_with(|c| {
        c.conflicting_tokens = ConflictMode::Reject;
        c.tokens.insert("second".into(), TokenConfig::default());
    });
    let r = post(
        sb.addr(),
        PIXEL,
        TOKEN,
        &json!({"data": [event(now(), "c")], "access_token": "second"}),
    );
    assert_eq!(r.code(), (100, None));
    let fw = start_with(|c| {
        c.tokens.insert("second".into(), TokenConfig::default());
    });
    let r = post(
        fw.addr(),
        PIXEL,
        TOKEN,
        &json!({"data": [event(now(), "c")], "access_token": "second"}),
    );
    assert_eq!(r.status, 200, "header first wins");
    assert_eq!(
        fw.requests()[0].token_fingerprint.as_deref(),
        Some(fingerprint(TOKEN).as_str())
    );
}

fn fingerprint(t: &str) -> String {
    format!("sha256:{}", &sha(t)[..12])
}

// §4 Validation

#[test]
fn each_validation_rejects_the_whole_batch() {
    let n = 1_795_392_000;
    let sb = start_with(|c| c.now = Some(n));
    let a = sb.addr();
    let good = event(n, "ok");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut e = event(n, "bad");
        f(&mut e);
        e
    };
    let cases: Vec<(Value, (i64, Option<i64>))> = vec![
        (
            with(&|e| e["event_time"] = json!(n - 7 * 86_400 - 1)),
            (100, Some(2_804_003)),
        ),
        (
            with(&|e| e["event_time"] = json!(n + 61)),
            (100, Some(2_804_004)),
        ),
        (with(&|e| e["event_time"] = json!("yesterday")), (100, None)),
        (with(&|e| e["event_name"] = json!("")), (100, None)),
        (with(&|e| e["action_source"] = json!("web")), (100, None)),
        (
            with(&|e| e["user_data"] = json!({})),
            (100, Some(2_804_050)),
        ),
        (
            with(&|e| e["user_data"] = json!({"ct": [sha("paris")], "country": [sha("fr")]})),
            (100, Some(2_804_050)),
        ),
        (
            with(&|e| e["custom_data"] = json!({"currency": "USD"})),
            (100, Some(2_804_009)),
        ),
        (
            with(&|e| e["custom_data"] = json!({"value": 1, "currency": "XYZ"})),
            (100, Some(2_804_008)),
        ),
        (
            with(&|e| e["user_data"]["lead_id"] = json!("123")),
            (100, Some(2_804_036)),
        ),
        (
            with(&|e| {
                e["action_source"] = json!("business_messaging");
                e["messaging_channel"] = json!("whatsapp");
            }),
            (100, Some(2_804_116)),
        ),
        (
            with(&|e| e["data_processing_options"] = json!(["GDPR"])),
            (100, None),
        ),
        (
            with(&|e| {
                e["data_processing_options"] = json!(["LDU"]);
                e["data_processing_options_state"] = json!(1099);
            }),
            (100, None),
        ),
    ];
    for (i, (bad, code)) in cases.into_iter().enumerate() {
        let r = post_events(a, vec![good.clone(), bad.clone()]);
        assert_eq!((r.status, r.code()), (400, code), "case {i}: {bad}");
    }
    assert!(
        sb.accepted_events().is_empty(),
        "nothing of a rejected batch is accepted"
    );
    assert!(sb
        .requests()
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Rejected { .. })));
    // Boundaries: 7 days minus a second is fine, physical_store at 60 days too.
    let mut edge = event(n, "edge");
    edge["event_time"] = json!(n - 7 * 86_400 + 1);
    let mut store = event(n, "store");
    store["action_source"] = json!("physical_store");
    store["event_time"] = json!(n - 60 * 86_400);
    assert_eq!(post_events(a, vec![edge, store]).status, 200);
    // Numeric strings for event_time are accepted by default.
    let mut s = event(n, "s");
    s["event_time"] = json!((n - 5).to_string());
    assert_eq!(post_events(a, vec![s]).status, 200);
}

#[test]
fn optional_validations_and_localized_text() {
    let n = 1_795_392_000;
    let strict = start_with(|c| {
        c.now = Some(n);
        c.enforce_hashed_pii = true;
        c.enforce_website_user_agent = true;
        c.enforce_cookie_format = true;
    });
    let mut plain = event(n, "x");
    plain["user_data"]["em"] = json!(["a@example.com"]);
    assert_eq!(
        post_events(strict.addr(), vec![plain]).code(),
        (100, Some(2_804_020))
    );
    let mut no_ua = event(n, "y");
    no_ua["user_data"]
        .as_object_mut()
        .unwrap()
        .remove("client_user_agent");
    assert_eq!(
        post_events(strict.addr(), vec![no_ua.clone()]).code(),
        (100, Some(2_804_050))
    );
    let mut cookie = event(n, "z");
    cookie["user_data"]["fbp"] = json!("fb.1.x");
    assert_eq!(
        post_events(strict.addr(), vec![cookie]).code(),
        (100, Some(2_804_019))
    );
    // Off by default.
    let lax = start_with(|c| c.now = Some(n));
    assert_eq!(post_events(lax.addr(), vec![no_ua]).status, 200);

    let da = start_with(|c| {
        c.now = Some(n);
        c.locale = Some("da_DK".into());
    });
    let mut old = event(n, "o");
    old["event_time"] = json!(n - 30 * 86_400);
    let r = post_events(da.addr(), vec![old.clone()]);
    let en = post_events(lax.addr(), vec![old]);
    assert_eq!(r.code(), en.code());
    assert_ne!(
        r.json()["error"]["error_user_title"],
        en.json()["error"]["error_user_title"]
    );
}

#[test]
fn record_only_warnings() {
    let n = 1_795_392_000;
    let sb = start_with(|c| c.now = Some(n));
    let mut e = event(n, "w");
    e["user_data"]["fbc"] = json!("fb.1.1795391000.abc");
    e["custom_data"]["currency"] = json!("usd");
    e["custom_data"]["value"] = json!("10.5");
    e["user_data"]["email"] = json!("x");
    let r = post(
        sb.addr(),
        PIXEL,
        TOKEN,
        &json!({"data": [e], "test_event_code": "T"}),
    );
    assert_eq!(r.status, 200);
    let codes: Vec<String> = sb.requests()[0]
        .warnings
        .iter()
        .map(|w| w.code.clone())
        .collect();
    for c in [
        "test_event_code_present",
        "cookie_time_in_seconds",
        "currency_lowercase",
        "value_numeric_string",
        "unknown_user_data_key",
    ] {
        assert!(codes.iter().any(|x| x == c), "{c} in {codes:?}");
    }
}

// §5 Success

#[test]
fn success_envelope_and_knobs() {
    let sb = start();
    let r = post_events(sb.addr(), vec![event(now(), "s1"), event(now(), "s2")]);
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["events_received"], 2);
    assert_eq!(b["messages"], json!([]));
    assert_eq!(b["fbtrace_id"].as_str().unwrap().len(), 23);
    assert_eq!(r.header("facebook-api-version"), Some("v25.0"));
    assert!(r.header("x-fb-trace-id").is_some());
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));

    let odd = start_with(|c| {
        c.events_received_override = Some(1);
        c.messages_on_success = vec!["note".into()];
    });
    let b = post_events(odd.addr(), vec![event(now(), "a"), event(now(), "b")]).json();
    assert_eq!(
        (b["events_received"].clone(), b["messages"].clone()),
        (json!(1), json!(["note"]))
    );
    let omit = start_with(|c| c.omit_events_received = true);
    assert!(post_events(omit.addr(), vec![event(now(), "a")])
        .json()
        .get("events_received")
        .is_none());
}

#[test]
fn dedup_tracker_marks_resends_within_48_hours() {
    let n = 1_795_392_000;
    let sb = start_with(|c| c.now = Some(n));
    let a = sb.addr();
    assert_eq!(post_events(a, vec![event(n, "order-1")]).status, 200);
    sb.set_now(n + 47 * 3600);
    let mut again = event(n + 47 * 3600, "order-1");
    again["event_time"] = json!(n + 47 * 3600 - 10);
    assert_eq!(
        post_events(a, vec![again.clone(), event(n + 47 * 3600, "order-2")]).status,
        200
    );
    sb.set_now(n + 49 * 3600);
    again["event_time"] = json!(n + 49 * 3600 - 10);
    assert_eq!(post_events(a, vec![again]).status, 200);
    let dups: Vec<Option<u64>> = sb
        .accepted_events()
        .iter()
        .map(|e| e.duplicate_of)
        .collect();
    assert_eq!(
        dups,
        [None, Some(1), None, None],
        "resend flagged; after 48 h it is new"
    );
}

// §6 Faults

#[test]
fn faults_behave_on_the_wire() {
    let sb = start();
    let a = sb.addr();
    let ev = || vec![event(now(), "f")];
    let cases: Vec<(FaultKind, u16, (i64, Option<i64>))> = vec![
        (
            FaultKind::Throttle {
                code: 80004,
                subcode: Some(2446079),
                http: 400,
                regain_minutes: Some(3),
            },
            400,
            (80004, Some(2446079)),
        ),
        (
            FaultKind::Throttle {
                code: 17,
                subcode: None,
                http: 400,
                regain_minutes: None,
            },
            400,
            (17, None),
        ),
        (FaultKind::Transient, 500, (2, None)),
        (FaultKind::Unknown, 500, (1, None)),
        (FaultKind::DatasetNotReady, 400, (21009, None)),
        (
            FaultKind::AuthError {
                subcode: Some(463),
                http: 401,
            },
            401,
            (190, Some(463)),
        ),
        (
            FaultKind::Permission {
                style: PermissionStyle::Subcode33,
            },
            400,
            (100, Some(33)),
        ),
    ];
    for (kind, status, code) in cases {
        sb.push_fault(Fault::once(kind.clone()));
        let r = post_events(a, ev());
        assert_eq!((r.status, r.code()), (status, code), "{kind:?}");
    }
    assert_eq!(post_events(a, ev()).status, 200, "faults are consumed");
    let r_throttle = &sb.requests()[0];
    assert_eq!(
        r_throttle.outcome,
        Outcome::Faulted {
            fault: "throttle".into()
        }
    );

    sb.push_fault(Fault::once(FaultKind::Http429 {
        retry_after: Some(7),
        graph_body: false,
    }));
    let r = post_events(a, ev());
    assert_eq!((r.status, r.header("Retry-After")), (429, Some("7")));
    sb.push_fault(Fault::once(FaultKind::Http5xx {
        status: 502,
        body: "html".into(),
    }));
    let r = post_events(a, ev());
    assert_eq!(r.status, 502);
    assert!(String::from_utf8_lossy(&r.body).contains("<html>"));
    sb.push_fault(Fault::once(FaultKind::MalformedJson200));
    let r = post_events(a, ev());
    assert_eq!((r.status, r.body.as_slice()), (200, &b"not json"[..]));
    sb.push_fault(Fault::once(FaultKind::Raw {
        status: 418,
        headers: vec![],
        body: "teapot".into(),
    }));
    assert_eq!(post_events(a, ev()).status, 418);

    // Dataset filter and repeat count.
    sb.push_fault(Fault {
        dataset: Some("42".into()),
        ..Fault::times(FaultKind::Transient, 2)
    });
    assert_eq!(
        post_events(a, ev()).status,
        200,
        "another pixel is not affected"
    );
    let t = |p: &str| post(a, p, TOKEN, &json!({"data": ev()})).status;
    assert_eq!((t("42"), t("42"), t("42")), (500, 500, 200));
}

fn raw_post(sb: &freight_sandbox::SandboxHandle) -> TcpStream {
    let body = json!({"data": [event(now(), "w")]}).to_string();
    let mut s = TcpStream::connect(sb.addr()).unwrap();
    let req = format!(
        "POST /v25.0/{PIXEL}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    s
}

#[test]
fn hang_reset_close_and_truncate_are_real() {
    let sb = start();
    // Hang: nothing arrives until the client gives up.
    sb.push_fault(Fault::once(FaultKind::Hang));
    let mut s = raw_post(&sb);
    s.set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let err = s.read(&mut buf).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    assert!(t.elapsed() >= Duration::from_millis(550));
    drop(s);

    // Reset: the read fails with a connection reset.
    sb.push_fault(Fault::once(FaultKind::Reset));
    let mut s = raw_post(&sb);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let r = s.read(&mut buf);
    assert!(
        matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "expected a reset, got {r:?}"
    );

    // Close before headers: a clean end of stream with no byte.
    sb.push_fault(Fault::once(FaultKind::CloseBeforeHeaders));
    let mut s = raw_post(&sb);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    assert!(all.is_empty());

    // Truncated: fewer body bytes than Content-Length.
    sb.push_fault(Fault::once(FaultKind::TruncatedBody));
    let mut s = raw_post(&sb);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(body.len() < len, "body {} of {len}", body.len());
    assert!(serde_json::from_str::<Value>(body).is_err());
}

#[test]
fn delay_still_accepts_events() {
    let sb = start();
    sb.push_fault(Fault::once(FaultKind::Delay { ms: 300 }));
    let t = Instant::now();
    assert_eq!(
        post_events(sb.addr(), vec![event(now(), "slow")]).status,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(290));
    assert_eq!(sb.accepted_events().len(), 1);
}

// §7 Recordings

#[test]
fn recordings_never_contain_tokens() {
    let secret = "app-secret-never-logged";
    let sb = start_with(|c| {
        c.tokens.get_mut(TOKEN).unwrap().app_secret = Some(secret.into());
    });
    let a = sb.addr();
    let ev = json!([event(now(), "t")]);
    post(a, PIXEL, TOKEN, &json!({"data": ev}));
    let q = format!("/v25.0/{PIXEL}/events?access_token={TOKEN}&appsecret_proof=abc");
    request(
        a,
        "POST",
        &q,
        &[("Content-Type", "application/json")],
        json!({"data": ev}).to_string().as_bytes(),
    )
    .unwrap();
    let form = format!(
        "access_token={}&data={}",
        urlencode(TOKEN),
        urlencode(&ev.to_string())
    );
    request(
        a,
        "POST",
        &format!("/v25.0/{PIXEL}/events"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    post(a, PIXEL, TOKEN, &json!({"data": ev, "access_token": TOKEN}));
    // Encoded forms: a percent-encoded query key, an escaped JSON string, lowercase %xx.
    let q = format!("/v25.0/{PIXEL}/events?access%5Ftoken={TOKEN}");
    request(
        a,
        "POST",
        &q,
        &[("Content-Type", "application/json")],
        json!({"data": ev}).to_string().as_bytes(),
    )
    .unwrap();
    let escaped: String = TOKEN
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let body = format!(r#"{{"data":{ev},"access_token":"{escaped}"}}"#);
    request(
        a,
        "POST",
        &format!("/v25.0/{PIXEL}/events"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .unwrap();
    let lower: String = TOKEN.bytes().map(|b| format!("%{b:02x}")).collect();
    let form = format!("access_token={lower}&data={}", urlencode(&ev.to_string()));
    request(
        a,
        "POST",
        &format!("/v25.0/{PIXEL}/events"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    let all = serde_json::to_string(&sb.requests()).unwrap();
    assert!(!all.contains(&lower) && !all.contains(&escaped));
    assert!(!all.contains(TOKEN), "token leaked into recordings");
    assert!(!all.contains(secret));
    assert!(all.contains("Bearer ***"));
    assert!(all.contains("access_token=***"));
    // Over the control endpoint too.
    let r = request(a, "GET", "/__sandbox/requests", &[], b"").unwrap();
    assert!(!String::from_utf8_lossy(&r.body).contains(TOKEN));
    assert!(!format!("{:?}", SandboxConfig::with_token(TOKEN)).contains(TOKEN));
}

#[test]
fn control_endpoints_script_from_any_language() {
    let sb = start();
    let a = sb.addr();
    let r = request(
        a,
        "POST",
        "/__sandbox/faults",
        &[],
        br#"[{"kind":"transient","times":1},{"kind":"throttle","code":4}]"#,
    )
    .unwrap();
    assert_eq!(r.json()["queued"], 2);
    assert_eq!(post_events(a, vec![event(now(), "1")]).code(), (2, None));
    assert_eq!(post_events(a, vec![event(now(), "2")]).code(), (4, None));
    assert_eq!(post_events(a, vec![event(now(), "3")]).status, 200);
    let r = request(
        a,
        "GET",
        &format!("/__sandbox/events?dataset={PIXEL}"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = request(
        a,
        "POST",
        "/__sandbox/clock",
        &[],
        br#"{"now": 1795392000}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(sb.now(), 1_795_392_000);
    let r = request(
        a,
        "POST",
        "/__sandbox/tokens",
        &[],
        br#"{"token":"t2","state":"expired"}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        post(a, PIXEL, "t2", &json!({"data": [event(now(), "x")]})).code(),
        (190, Some(463))
    );
    assert_eq!(
        request(a, "POST", "/__sandbox/faults", &[], b"{\"kind\":\"nope\"}")
            .unwrap()
            .status,
        400
    );
    request(a, "POST", "/__sandbox/reset", &[], b"").unwrap();
    assert!(sb.requests().is_empty());
}

#[test]
fn envelope_fields_are_optional_for_raw_payloads() {
    let sb = start();
    let body = r#"{"error":{"message":"x","code":-3,"error_data":{"blame_field_specs":[["a"]]},"extra":1}}"#;
    sb.push_fault(Fault::once(FaultKind::Raw {
        status: 400,
        headers: vec![],
        body: body.into(),
    }));
    let r = post_events(sb.addr(), vec![event(now(), "r")]);
    assert_eq!(r.json()["error"]["code"], -3);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn fault_matching_by_test_event_code_and_after() {
    let sb = start();
    let a = sb.addr();
    sb.push_fault(Fault {
        test_event_code: Some("T1".into()),
        after: 1,
        ..Fault::once(FaultKind::Transient)
    });
    let send = |code: Option<&str>| {
        let mut body = json!({"data": [event(now(), "m")]});
        if let Some(c) = code {
            body["test_event_code"] = json!(c);
        }
        post(a, PIXEL, TOKEN, &body).status
    };
    assert_eq!(send(None), 200, "another test_event_code is not matched");
    assert_eq!(
        send(Some("T1")),
        200,
        "the first matching request passes (after = 1)"
    );
    assert_eq!(send(Some("T1")), 500);
    assert_eq!(send(Some("T1")), 200);
    assert_eq!(sb.requests_for(PIXEL).len(), 4);
    sb.assert_no_token_in_urls(TOKEN);
}

#[test]
fn optional_knobs_gzip_iso8601_and_usage_header() {
    use std::io::Write as _;
    let n = 1_795_392_000;
    let sb = start_with(|c| {
        c.now = Some(n);
        c.gzip_requests = freight_sandbox::config::GzipMode::Accept;
        c.accept_iso8601 = true;
        c.usage_header_after = Some(1);
    });
    let mut e = event(n, "g");
    e["event_time"] = json!("2026-11-22T23:59:00Z");
    let body = json!({"data": [e]}).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let auth = format!("Bearer {TOKEN}");
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
    ];
    let r = request(
        sb.addr(),
        "POST",
        &format!("/v25.0/{PIXEL}/events"),
        &h,
        &gz,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert!(
        r.header("x-business-use-case-usage").is_none(),
        "only after the first call"
    );
    let r = request(
        sb.addr(),
        "POST",
        &format!("/v25.0/{PIXEL}/events"),
        &h,
        &gz,
    )
    .unwrap();
    assert!(r
        .header("x-business-use-case-usage")
        .unwrap()
        .contains("call_count"));
    // Off by default: an ISO time is refused and gzip is "data is required".
    let strict = start_with(|c| c.now = Some(n));
    let r = request(
        strict.addr(),
        "POST",
        &format!("/v25.0/{PIXEL}/events"),
        &h,
        &gz,
    )
    .unwrap();
    assert_eq!(r.code(), (100, None));
    assert_eq!(post_events(strict.addr(), vec![e]).code(), (100, None));
}
