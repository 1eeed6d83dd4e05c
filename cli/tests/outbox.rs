//! The outbox across processes: crash safety under SIGKILL, and concurrent enqueuers while a
//! flusher runs. Both against the sandbox; both check every event against its recordings.

use freight_sandbox::{Fault, FaultKind, Sandbox, SandboxConfig, SandboxHandle};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TOKEN: &str = "outbox-test-token";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_freight")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("freight-cli-outbox-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn write_events(path: &Path, prefix: &str, n: usize) {
    let t = now() - 30;
    let mut text = String::with_capacity(n * 200);
    for i in 0..n {
        text.push_str(
            &json!({"event_name": "Lead", "event_time": t, "action_source": "system_generated",
                    "event_id": format!("{prefix}-{i}"),
                    "user_data": {"em": format!("{prefix}{i}@example.com")}})
            .to_string(),
        );
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn destinations(d: &Path) -> PathBuf {
    let p = d.join("destinations.json");
    std::fs::write(
        &p,
        r#"{"shop": {"pixel_id": "4242", "token_env": "OUTBOX_TEST_TOKEN"}}"#,
    )
    .unwrap();
    p
}

fn flush_cmd(db: &Path, dests: &Path, sb: &SandboxHandle) -> Command {
    let mut c = Command::new(bin());
    c.args([
        "outbox",
        "flush",
        db.to_str().unwrap(),
        "--destinations",
        dests.to_str().unwrap(),
        "--graph-url",
        &sb.url(),
        "--lease-secs",
        "1",
        "--max-requests",
        "1000",
    ])
    .env("OUTBOX_TEST_TOKEN", TOKEN)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

fn stats(db: &Path) -> Value {
    let out = Command::new(bin())
        .args(["outbox", "stats", db.to_str().unwrap()])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn enqueue(db: &Path, file: &Path) -> std::process::Child {
    Command::new(bin())
        .args([
            "outbox",
            "enqueue",
            db.to_str().unwrap(),
            "--key",
            "shop",
            file.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Accepted copies per event_id in the sandbox.
fn accepted(sb: &SandboxHandle) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for e in sb.accepted_events() {
        *m.entry(e.event["event_id"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    m
}

#[test]
fn sigkill_during_flush_loses_nothing() {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut duplicates_seen = 0;
    for run in 0..20 {
        let d = dir(&format!("crash-{run}"));
        let db = d.join("outbox.db");
        let events = d.join("events.jsonl");
        let n = 2500;
        write_events(&events, &format!("r{run}"), n);
        assert!(enqueue(&db, &events).wait().unwrap().success());
        let sb = Sandbox::start(SandboxConfig::with_token(TOKEN)).unwrap();
        // Slow responses widen the window in which the kill lands mid-request.
        sb.push_fault(Fault::times(FaultKind::Delay { ms: 150 }, 3));
        let dests = destinations(&d);
        let mut child = flush_cmd(&db, &dests, &sb).spawn().unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % 500));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // The killed flusher's leases run out; the next flush finishes the job.
        std::thread::sleep(Duration::from_millis(1100));
        let out = flush_cmd(&db, &dests, &sb).output().unwrap();
        assert!(
            out.status.success(),
            "run {run}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = stats(&db);
        assert_eq!(
            (s["pending"].as_u64(), s["delivered"].as_u64()),
            (Some(0), Some(n as u64)),
            "run {run}: {s}"
        );
        let got = accepted(&sb);
        for i in 0..n {
            let copies = got.get(&format!("r{run}-{i}")).copied().unwrap_or(0);
            assert!(copies >= 1, "run {run}: event {i} lost");
            duplicates_seen += copies - 1;
        }
        // Resent copies carry the same event_id: Meta deduplicates them.
        let dups = sb
            .accepted_events()
            .iter()
            .filter(|e| e.duplicate_of.is_some())
            .count();
        assert_eq!(
            dups,
            got.values().map(|c| c - 1).sum::<usize>(),
            "run {run}"
        );
    }
    eprintln!("20 SIGKILL runs: no event lost; {duplicates_seen} resends, all with their event_id");
}

#[test]
fn four_enqueuers_and_a_flusher() {
    let d = dir("concurrent");
    let db = d.join("outbox.db");
    let mut sandbox_config = SandboxConfig::with_token(TOKEN);
    sandbox_config.record_events = true;
    let sb = Sandbox::start(sandbox_config).unwrap();
    let dests = destinations(&d);
    let files: Vec<PathBuf> = (0..4)
        .map(|p| {
            let f = d.join(format!("events-{p}.jsonl"));
            write_events(&f, &format!("p{p}"), 25_000);
            f
        })
        .collect();
    // Create the file first (an enqueue of nothing) so the processes race on rows, not on
    // the schema.
    let nothing = d.join("empty.jsonl");
    std::fs::write(&nothing, "").unwrap();
    assert!(enqueue(&db, &nothing).wait().unwrap().success());
    let mut writers: Vec<_> = files.iter().map(|f| enqueue(&db, f)).collect();
    let mut flushes = 0;
    loop {
        let out = flush_cmd(&db, &dests, &sb).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        flushes += 1;
        let running = writers.iter_mut().any(|w| w.try_wait().unwrap().is_none());
        if !running && stats(&db)["pending"] == 0 {
            break;
        }
        assert!(flushes < 500, "the flusher does not finish");
    }
    for w in writers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success());
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["stored"], 25_000);
    }
    let s = stats(&db);
    assert_eq!(
        (s["delivered"].as_u64(), s["pending"].as_u64()),
        (Some(100_000), Some(0)),
        "{s}"
    );
    let got = accepted(&sb);
    assert_eq!(got.len(), 100_000, "every event reached the sandbox");
    assert!(
        got.values().all(|&c| c == 1),
        "one flusher at a time never sends a row twice"
    );
}

#[test]
fn a_destination_that_cannot_be_used_is_named_with_its_reason() {
    let sb = Sandbox::start(SandboxConfig::with_token(TOKEN)).unwrap();
    let d = dir("unresolved");
    let db = d.join("outbox.db");
    for key in ["numeric", "no-token", "bad-pixel", "absent"] {
        let file = d.join(format!("{key}.jsonl"));
        write_events(&file, key, 2);
        let out = Command::new(bin())
            .args(["outbox", "enqueue", db.to_str().unwrap(), "--key", key])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let dests = d.join("destinations.json");
    std::fs::write(
        &dests,
        r#"{"numeric": {"pixel_id": 4242, "token_env": "OUTBOX_TEST_TOKEN"},
            "no-token": {"pixel_id": "4242", "token_env": "OUTBOX_TEST_UNSET_VARIABLE"},
            "bad-pixel": {"pixel_id": "not-a-pixel", "token_env": "OUTBOX_TEST_TOKEN"}}"#,
    )
    .unwrap();
    let out = flush_cmd(&db, &dests, &sb)
        .env_remove("OUTBOX_TEST_UNSET_VARIABLE")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["delivered"], 2, "a numeric pixel id is a pixel id");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("\"no-token\"") && stderr.contains("OUTBOX_TEST_UNSET_VARIABLE is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"bad-pixel\"") && stderr.contains("pixel_id"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"absent\"") && stderr.contains("not in"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "pending events fail the run");
    assert_eq!(stats(&db)["pending"], 6);
}

#[test]
fn a_token_in_the_destinations_file_is_never_echoed() {
    let d = dir("token-echo");
    let db = d.join("outbox.db");
    let events = d.join("events.jsonl");
    write_events(&events, "echo", 1);
    assert!(enqueue(&db, &events).wait().unwrap().success());
    let sb = Sandbox::start(SandboxConfig::with_token(TOKEN)).unwrap();
    // As long as Meta's tokens are.
    let secret = format!("EAAB{}", "Zx9".repeat(60));
    for table in [
        format!(r#""{secret}""#),
        format!(r#"{{"shop": {{"pixel_id": "4242", "token_env": "{secret}"}}}}"#),
        format!(r#"{{"shop": {{"pixel_id": "4242", "token_env": "x {secret}"}}}}"#),
    ] {
        let p = d.join("destinations.json");
        std::fs::write(&p, &table).unwrap();
        let out = flush_cmd(&db, &p, &sb).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{table}");
        assert!(!all.contains(&secret), "{table}: {all}");
    }
}

#[test]
fn enqueue_names_the_line_of_a_rejected_event() {
    let d = dir("enqueue-lines");
    let events = d.join("events.jsonl");
    write_events(&events, "lines", 5);
    let mut text = std::fs::read_to_string(&events).unwrap();
    text = text.replacen("\n", "\nnot json\n", 1); // line 2 unreadable; events on 1, 3, 4, …
    let mut all: Vec<String> = text.lines().map(str::to_owned).collect();
    all[3] = all[3].replace("@example.com", "");
    std::fs::write(&events, all.join("\n") + "\n").unwrap();
    for chunk in ["1", "1000"] {
        let out = Command::new(bin())
            .args([
                "outbox",
                "enqueue",
                d.join(format!("{chunk}.db")).to_str().unwrap(),
                "--key",
                "shop",
                "--chunk",
                chunk,
                events.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("line 4: rejected: user_data.em"),
            "chunk {chunk}: {stderr}"
        );
    }
}

#[test]
fn an_interrupted_flush_ends_its_wait_and_keeps_the_rest_pending() {
    use std::io::{BufRead, BufReader};
    let d = dir("interrupt");
    let db = d.join("outbox.db");
    let events = d.join("events.jsonl");
    write_events(&events, "int", 3);
    assert!(enqueue(&db, &events).wait().unwrap().success());
    let sb = Sandbox::start(SandboxConfig::with_token(TOKEN)).unwrap();
    // Meta asks for 30 s before the next try, every time.
    sb.push_fault(Fault::times(
        FaultKind::Http429 {
            retry_after: Some(30),
            graph_body: true,
        },
        100,
    ));
    let dests = destinations(&d);
    let mut child = flush_cmd(&db, &dests, &sb).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sb.requests().is_empty() {
        assert!(std::time::Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The batch was throttled: the flush waits 30 s for its retry.
    let started = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    stderr.read_line(&mut said).unwrap();
    assert!(said.starts_with("freight: interrupted: "), "{said}");
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the retry wait went on: {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(130));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["interrupted"], true, "{report}");
    assert_eq!(report["delivered"], 0, "{report}");
    assert_eq!(
        sb.requests().len(),
        1,
        "nothing was sent after the interrupt"
    );
    assert_eq!(stats(&db)["pending"], 3, "nothing lost");
    // The next flush is not interrupted, and leaves the destination alone for the 30 s Meta
    // asked for.
    sb.reset();
    let out = flush_cmd(&db, &dests, &sb).output().unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["interrupted"].as_bool(), report["requests"].as_u64()),
        (Some(false), Some(0)),
        "{report}"
    );
    assert!(sb.requests().is_empty());
}

#[test]
fn only_enqueue_creates_an_outbox() {
    let d = dir("missing");
    let db = d.join("typo.db");
    for args in [
        &["stats"][..],
        &["list"][..],
        &["retry"][..],
        &["resume", "--key", "shop"][..],
    ] {
        let out = Command::new(bin())
            .arg("outbox")
            .arg(args[0])
            .arg(&db)
            .args(&args[1..])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no outbox there"),
            "{args:?}"
        );
        assert!(!db.exists(), "{args:?} left a file");
    }
    let sb = Sandbox::start(SandboxConfig::with_token(TOKEN)).unwrap();
    let out = flush_cmd(&db, &destinations(&d), &sb).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!db.exists());
}

#[test]
fn a_paused_destination_fails_every_flush_until_resumed() {
    let d = dir("paused");
    let db = d.join("outbox.db");
    let events = d.join("events.jsonl");
    write_events(&events, "pause", 2);
    assert!(enqueue(&db, &events).wait().unwrap().success());
    let sb = Sandbox::start(SandboxConfig::with_token(TOKEN)).unwrap();
    let dests = destinations(&d);
    // A token Meta refuses: the destination is paused, its events wait.
    for run in 0..2 {
        let out = flush_cmd(&db, &dests, &sb)
            .env("OUTBOX_TEST_TOKEN", "revoked-token")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "run {run}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("destination \"shop\" is paused until"),
            "run {run}: {stderr}"
        );
        assert!(!stderr.contains("revoked-token"), "{stderr}");
    }
    assert_eq!(sb.requests().len(), 1, "a paused destination is left alone");
    assert_eq!(stats(&db)["pending"], 2);
    // Resumed with a good token: delivered, and the run succeeds.
    let resume = |key: &str| {
        Command::new(bin())
            .args(["outbox", "resume", db.to_str().unwrap(), "--key", key])
            .output()
            .unwrap()
    };
    // A mistyped key is not a success.
    let typo = resume("shpo");
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("\"shpo\" is neither paused nor throttled")
    );
    assert!(resume("shop").status.success());
    let out = flush_cmd(&db, &dests, &sb).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stats(&db)["delivered"], 2);
}

#[test]
fn a_destination_file_carries_test_codes_and_app_secrets_and_refuses_unknown_settings() {
    use freight_sandbox::TokenConfig;
    let d = dir("settings");
    let db = d.join("outbox.db");
    let events = d.join("events.jsonl");
    write_events(&events, "settings", 2);
    assert!(enqueue(&db, &events).wait().unwrap().success());
    let mut config = SandboxConfig::default();
    config.tokens.insert(
        TOKEN.into(),
        TokenConfig {
            datasets: vec!["*".into()],
            app_secret: Some("outbox-app-secret".into()),
            require_appsecret_proof: true,
            ..TokenConfig::default()
        },
    );
    let sb = Sandbox::start(config).unwrap();
    let dests = d.join("destinations.json");
    // A misspelled setting: that destination is not used (its test code would be lost).
    std::fs::write(
        &dests,
        r#"{"shop": {"pixel_id": "4242", "token_env": "OUTBOX_TEST_TOKEN",
                     "test_event_code": "TEST77", "app_secret_env": "OUTBOX_TEST_SECRET",
                     "tset_event_code": "TEST77-typo"}}"#,
    )
    .unwrap();
    let out = flush_cmd(&db, &dests, &sb)
        .env("OUTBOX_TEST_SECRET", "outbox-app-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown setting \"tset_event_code\""),
        "{stderr}"
    );
    assert!(
        !stderr.contains("TEST77-typo"),
        "keys are named, never values"
    );
    assert!(sb.requests().is_empty());
    // A token pasted as a key is not named.
    std::fs::write(
        &dests,
        r#"{"shop": {"pixel_id": "4242", "token_env": "OUTBOX_TEST_TOKEN",
                     "EAAB-pasted-token.value": "x"}}"#,
    )
    .unwrap();
    let out = flush_cmd(&db, &dests, &sb).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown setting (not shown"), "{stderr}");
    assert!(!stderr.contains("EAAB"), "{stderr}");
    std::fs::write(
        &dests,
        r#"{"shop": {"pixel_id": "4242", "token_env": "OUTBOX_TEST_TOKEN",
                     "test_event_code": "TEST77", "app_secret_env": "OUTBOX_TEST_SECRET"}}"#,
    )
    .unwrap();
    let out = flush_cmd(&db, &dests, &sb)
        .env("OUTBOX_TEST_SECRET", "outbox-app-secret")
        .args(["--partner-agent", "plfreight-1-2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = &sb.requests()[0];
    assert_eq!(r.test_event_code.as_deref(), Some("TEST77"));
    assert_eq!(r.partner_agent.as_deref(), Some("plfreight-1-2"));
    assert_eq!(r.appsecret_proof_valid, Some(true));
    assert_eq!(stats(&db)["delivered"], 2);
}
