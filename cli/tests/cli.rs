//! The `freight` command, run as a user would.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const NOW: &str = "1795392000";

fn freight(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_freight"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("freight runs");
    // A command that stops early (a usage error) may not read its input.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const GOOD: &str = r#"{"event_name":"Lead","event_time":1795391000,"action_source":"email","user_data":{"em":"A@Example.com"}}"#;

#[test]
fn prepare_reports_malformed_lines_and_goes_on() {
    let input = format!("{GOOD}\n{{\"event_name\": oops\n\n[1]\n{GOOD}\n");
    let out = freight(&["prepare", "-", "--now", NOW], &input);
    assert!(out.status.success());
    let l = lines(&out);
    assert_eq!(l.len(), 4, "one line per input event");
    assert_eq!(
        (&l[0]["index"], &l[0]["line"]),
        (&Value::from(0), &Value::from(1))
    );
    assert_eq!(
        l[0]["event"]["user_data"]["em"][0],
        freight::hash::sha256_hex("a@example.com")
    );
    assert_eq!(l[1]["index"], 1);
    assert_eq!(l[1]["line"], 2);
    assert_eq!(l[1]["rejected"][0]["type"], "invalid_json");
    assert!(l[1]["rejected"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("line 2"));
    assert_eq!(l[2]["line"], 4, "blank lines are skipped but counted");
    assert_eq!(l[2]["rejected"][0]["type"], "not_an_object");
    assert_eq!(
        (&l[3]["index"], &l[3]["line"]),
        (&Value::from(3), &Value::from(5))
    );
    assert!(l[3]["event"].is_object());
}

/// The message of the first problem of a rejected event's output line.
fn first_msg(line: &Value) -> &str {
    line["rejected"][0]["msg"].as_str().unwrap_or_default()
}

#[test]
fn a_malformed_csv_row_is_typed_as_such() {
    let input = "event_name,event_time,action_source,em\n\
                 Lead,1795391000,email,a@example.com\n\
                 Lead,1795391000,email,b@example.com,extra\n\
                 Lead,1795391000,email,c@example.com\n";
    let out = freight(&["prepare", "-", "--format", "csv", "--now", NOW], input);
    assert!(out.status.success());
    let l = lines(&out);
    assert_eq!(l.len(), 3, "one line per record");
    assert!(l[0]["event"].is_object());
    assert_eq!(l[1]["line"], 3);
    assert_eq!(l[1]["rejected"][0]["type"], "invalid_csv");
    assert!(
        first_msg(&l[1]).starts_with("row 3 is not valid CSV"),
        "{}",
        l[1]
    );
    assert!(l[2]["event"].is_object(), "the rest is read");
}

#[test]
fn csv_consent_ldu_and_customer_columns_are_the_events() {
    // Never sent to Meta as plain-text custom properties.
    let input = "event_name,event_time,action_source,em,consent,email,\
                 data_processing_options,data_processing_options_country,\
                 data_processing_options_state\n\
                 Lead,1795391000,email,a@example.com,denied,,,,\n\
                 Lead,1795391000,email,a@example.com,,b@example.com,,,\n\
                 Lead,1795391000,email,a@example.com,,,LDU,1,1000\n";
    let out = freight(&["prepare", "-", "--format", "csv", "--now", NOW], input);
    let l = lines(&out);
    assert_eq!(l[0]["skipped"], "consent_denied", "{}", l[0]);
    assert_eq!(l[1]["rejected"][0]["loc"], "data[1].user_data.email");
    assert!(first_msg(&l[1]).ends_with("did you mean em?"), "{}", l[1]);
    assert_eq!(
        l[2]["event"]["data_processing_options"],
        serde_json::json!(["LDU"])
    );
    assert_eq!(l[2]["event"]["data_processing_options_state"], 1000);
}

#[test]
fn validate_summarises_and_fails_on_rejection() {
    let bad = r#"{"event_name":"Purchase","event_time":1795391000,"action_source":"email","user_data":{"em":"nope"}}"#;
    let out = freight(&["validate", "--now", NOW], &format!("{GOOD}\n{bad}\n"));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("line 2: rejected"), "{text}");
    assert!(text.contains("data[1].user_data.em"), "{text}");
    assert!(text.contains("[invalid_email]"), "{text}");
    assert!(
        !text.contains("nope"),
        "the raw value never appears: {text}"
    );
    assert!(text.contains("2 events: 1 valid, 1 rejected"), "{text}");

    let ok = freight(&["validate", "--now", NOW], GOOD);
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn normalize_one_value_and_jsonl() {
    let out = freight(
        &[
            "normalize",
            "ph",
            "020 7946 0958",
            "--default-country",
            "gb",
        ],
        "",
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "442079460958"
    );

    let out = freight(&["normalize", "em", " A@B.co ", "--hash"], "");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        freight::hash::sha256_hex("a@b.co")
    );

    let out = freight(&["normalize", "ge", "robot"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("invalid_gender"));

    let out = freight(&["normalize", "ph", "020 7946 0958", "--hash"], "");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "warning: phone number without country code, sent as digits; add the country code or \
         set the default_country option [phone_missing_country_code]\n"
    );

    let input = "{\"field\":\"st\",\"value\":\"California\"}\nnot json\n{\"field\":\"zz\",\"value\":\"x\"}\n{\"field\":\"ph\",\"value\":\"020 7946 0958\",\"options\":{\"default_country\":\"gb\"}}\n";
    let out = freight(&["normalize", "--jsonl"], input);
    assert!(out.status.success());
    let l = lines(&out);
    assert_eq!(l.len(), 4);
    assert_eq!(l[0]["normalized"], "ca");
    assert_eq!(l[0]["hash"], freight::hash::sha256_hex("ca"));
    assert!(l[1]["error"]["msg"].as_str().unwrap().starts_with("line 2"));
    assert!(l[2]["error"]["msg"]
        .as_str()
        .unwrap()
        .contains("unknown field"));
    assert_eq!(l[3]["normalized"], "442079460958");
    // Each answer names its line: a blank line (no answer) shifts nothing.
    let out = freight(
        &["normalize", "--jsonl"],
        "{\"field\":\"ct\",\"value\":\"Paris\"}\n\n{\"field\":\"ct\"}\n",
    );
    let l = lines(&out);
    assert_eq!(
        (l[0]["line"].as_u64(), l[1]["line"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(l[1]["error"]["msg"], "line 3: \"value\" is missing");
}

#[test]
fn bad_options_exit_2() {
    let out = freight(&["prepare", "--default-country", "Atlantis"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("default_country"));
    let out = freight(&["prepare", "/nonexistent/events.jsonl"], "");
    assert_eq!(out.status.code(), Some(2));
    // A clock in milliseconds is named as such, not taken for a date 50,000 years on.
    let out = freight(&["prepare", "-", "--now", "1795392000000"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("looks like milliseconds: give Unix seconds (1795392000)"));
}

#[test]
fn sandbox_prints_its_address_and_stops_on_sigint() {
    sandbox_stops_on("-INT");
}

#[test]
fn sandbox_stops_on_sigterm() {
    sandbox_stops_on("-TERM");
}

#[test]
#[cfg(target_os = "linux")]
fn a_full_standard_output_is_an_error_not_a_panic() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_freight"))
        .args(["sandbox", "--port", "0"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn sandbox_stops_on(signal: &str) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(env!("CARGO_BIN_EXE_freight"))
        .args(["sandbox", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let url = first.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /__sandbox/clock HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // SIGINT as Ctrl-C sends, or SIGTERM as a service manager does.
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "clean shutdown on {signal}");
}

fn freight_env(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_freight"));
    cmd.args(args)
        .env_remove("FREIGHT_ACCESS_TOKEN")
        .env_remove("FREIGHT_APP_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // A command that stops early (a usage error) may not read its input.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

/// `freight` with `args`, without credentials (the built-in sandbox), its standard streams
/// piped.
fn spawned(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_freight"))
        .args(args)
        .env_remove("FREIGHT_ACCESS_TOKEN")
        .env_remove("FREIGHT_APP_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Ctrl-C's SIGINT to a running `freight send`, once it has said it stops. Its standard error
/// is closed then: what it writes there later must not make it panic (it did, exit 101).
fn interrupt(child: &mut std::process::Child) {
    use std::io::{BufRead, BufReader};
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    stderr.read_line(&mut said).unwrap();
    assert!(said.starts_with("freight: interrupted: "), "{said}");
}

fn report_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn send_without_token_uses_the_builtin_sandbox() {
    let dir = std::env::temp_dir().join(format!("freight-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.jsonl");
    let input = format!("{GOOD}\nnot json\n{GOOD}\n");
    let out = freight_env(
        &[
            "send",
            "-",
            "--now",
            NOW,
            "--report",
            report.to_str().unwrap(),
        ],
        &[],
        &input,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let first = stdout.lines().next().unwrap();
    assert!(
        first.contains("built-in Graph sandbox at http://127.0.0.1:"),
        "{first}"
    );
    assert!(
        stdout.contains("3 events: 2 delivered, 1 rejected, 0 failed"),
        "{stdout}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "rejections alone do not fail the send"
    );
    let lines = report_lines(&report);
    let outcomes: Vec<&str> = lines.iter().filter_map(|l| l["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["rejected", "delivered", "delivered"]);
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines.last().unwrap()["summary"]["delivered"], 2);
    let strict = freight_env(&["send", "-", "--now", NOW, "--strict"], &[], &input);
    assert_eq!(strict.status.code(), Some(1));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&report).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the report holds IP addresses and user agents"
        );
    }
}

#[test]
fn an_interrupted_send_stops_between_requests_and_accounts_for_every_event() {
    let dir = std::env::temp_dir().join(format!("freight-cli-int-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.jsonl");
    let report_arg = report.to_str().unwrap();
    let args = [
        "send",
        "-",
        "--now",
        NOW,
        "--batch-size",
        "2",
        "--report",
        report_arg,
    ];
    let mut child = spawned(&args);
    let mut stdin = child.stdin.take().unwrap();
    // Lines 1 and 2 fill a batch, which is sent; line 3 waits in the next one for more input.
    stdin
        .write_all(format!("{GOOD}\n{GOOD}\n{GOOD}\n").as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&report).map_or(0, |r| r.lines().count()) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first batch was not reported"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    interrupt(&mut child);
    // The read the interrupt found waiting gets line 4: it is processed (not lost), and the
    // reading stops there.
    stdin
        .write_all(format!("{GOOD}\n{GOOD}\n").as_bytes())
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "interrupted");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("4 events: 2 delivered, 0 rejected, 0 failed, 0 skipped, in 1 request\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("interrupted: 2 unsent (in the report, with their lines and wire events); events after input line 4 were not processed"),
        "{stdout}"
    );
    let lines = report_lines(&report);
    let outcomes: Vec<&str> = lines.iter().filter_map(|l| l["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["delivered", "delivered", "unsent", "unsent"]);
    assert_eq!(
        (&lines[2]["line"], &lines[3]["line"]),
        (&3.into(), &4.into())
    );
    assert_eq!(lines[2]["reason"], "interrupted");
    assert_eq!(
        lines[2]["event"]["event_name"], "Lead",
        "the wire event, to send later"
    );
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["input"], 4);
    assert_eq!(summary["unsent"], 2);
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["read_up_to_line"], 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupt_ends_a_retry_wait() {
    use freight_sandbox::{Fault, FaultKind, Sandbox, SandboxConfig};
    let token = "EAAB-cli-int-token";
    let sb = Sandbox::start(SandboxConfig::with_token(token)).unwrap();
    // Meta asks for 30 s before the next try, every time.
    sb.push_fault(Fault::times(
        FaultKind::Http429 {
            retry_after: Some(30),
            graph_body: true,
        },
        100,
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let event = GOOD.replace("1795391000", &(now - 60).to_string());
    let url = sb.url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_freight"))
        .args([
            "send",
            "-",
            "--pixel-id",
            "555",
            "--graph-url",
            &url,
            "--batch-size",
            "2",
        ])
        .env("FREIGHT_ACCESS_TOKEN", token)
        .env_remove("FREIGHT_APP_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{event}\n{event}\n{event}\n{event}\n").as_bytes())
        .unwrap();
    drop(stdin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sb.requests().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first batch was not sent"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The first batch was throttled: the sender waits 30 s for its retry.
    let started = std::time::Instant::now();
    interrupt(&mut child);
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the retry wait went on: {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("4 events: 0 delivered, 0 rejected, 2 failed, 0 skipped, in 1 request\n"),
        "{stdout}"
    );
    assert!(stdout.contains("interrupted: 2 unsent"), "{stdout}");
    assert_eq!(
        sb.requests().len(),
        1,
        "nothing was sent after the interrupt"
    );
}

#[test]
fn a_csv_quote_left_open_fails_the_send_and_sends_none_of_its_text() {
    let dir = std::env::temp_dir().join(format!("freight-cli-quote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("orders.csv");
    let mut text = String::from("event_name,event_time,action_source,em,order_id\n");
    text.push_str("Lead,1795391000,email,a0@example.com,\"oops\n");
    for i in 1..50 {
        text.push_str(&format!("Lead,1795391000,email,a{i}@example.com,o{i}\n"));
    }
    std::fs::write(&input, text).unwrap();
    let report = dir.join("report.jsonl");
    let out = freight_env(
        &[
            "send",
            input.to_str().unwrap(),
            "--now",
            NOW,
            "--report",
            report.to_str().unwrap(),
        ],
        &[],
        "",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 events: 0 delivered, 1 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the input could not be read past line 2"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(!text.contains("a1@example.com"), "{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["outcome"], "rejected");
    assert_eq!(lines[0]["errors"][0]["type"], "invalid_csv");
    assert_eq!(lines[1]["summary"]["input_cut_at_line"], 2);
    // A dry run of it fails too.
    let out = freight_env(&["prepare", input.to_str().unwrap(), "--now", NOW], &[], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not be read past line 2"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg(target_os = "linux")]
fn a_report_that_cannot_be_written_stops_the_send_with_a_summary() {
    let input: String = (0..2500).map(|_| format!("{GOOD}\n")).collect();
    let out = freight_env(
        &["send", "-", "--now", NOW, "--report", "/dev/full"],
        &[],
        &input,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("the report could not be written: No space left on device"),
        "{stderr}"
    );
    assert!(
        stdout.contains("the report could not be written, so nothing was sent after that: "),
        "{stdout}"
    );
    // The first batch went out before its outcomes could not be written; nothing after.
    assert!(stdout.contains("sandbox accepted 1000 events"), "{stdout}");
    assert!(stdout.contains("1000 delivered"), "{stdout}");
}

#[test]
fn a_report_over_its_own_input_is_refused() {
    let dir = std::env::temp_dir().join(format!("freight-cli-same-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("events.jsonl");
    std::fs::write(&input, format!("{GOOD}\n")).unwrap();
    let path = input.to_str().unwrap();
    // The same file under another name too.
    let link = dir.join("link.jsonl");
    let _ = std::fs::remove_file(&link);
    std::fs::hard_link(&input, &link).unwrap();
    for report in [path, link.to_str().unwrap()] {
        let out = freight_env(&["send", path, "--now", NOW, "--report", report], &[], "");
        assert_eq!(out.status.code(), Some(2), "{report}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is the input"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(&input).unwrap(),
            format!("{GOOD}\n"),
            "the input is intact"
        );
    }
    // Another file is fine, and the summary says the events went to the sandbox.
    let report = dir.join("report.jsonl");
    let out = freight_env(
        &[
            "send",
            path,
            "--now",
            NOW,
            "--report",
            report.to_str().unwrap(),
        ],
        &[],
        "",
    );
    assert!(out.status.success());
    let text = std::fs::read_to_string(&report).unwrap();
    let summary: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["sandbox"], true, "{summary}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_blank_token_or_a_directory_is_a_usage_error() {
    let out = freight_env(
        &["send", "-", "--now", NOW],
        &[("FREIGHT_ACCESS_TOKEN", "  ")],
        GOOD,
    );
    assert_eq!(out.status.code(), Some(2), "not a sandbox run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("FREIGHT_ACCESS_TOKEN is set but blank"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sandbox"));
    // Found before the built-in sandbox starts: no notice first.
    for bad in [
        &["--report", "-"][..],
        &["--batch-size", "0"][..],
        &["--now=-1"][..],
        &["--test-event-code", " "][..],
        // Meant for Meta, with the token missing: not a sandbox run that exits 0.
        &["--pixel-id", "1234567890"][..],
        &["--test-event-code", "TEST123"][..],
    ] {
        let mut args = vec!["send", "-"];
        if !bad[0].starts_with("--now") {
            args.extend_from_slice(&["--now", NOW]);
        }
        args.extend_from_slice(bad);
        let out = freight_env(&args, &[], GOOD);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            out.stdout.is_empty(),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = freight_env(&["test-connection", "--pixel-id", "1234567890"], &[], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("freight: --pixel-id needs FREIGHT_ACCESS_TOKEN, which is not set"));
    let dir = std::env::temp_dir();
    for cmd in ["send", "prepare", "validate"] {
        let out = freight_env(&[cmd, dir.to_str().unwrap(), "--now", NOW], &[], "");
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is a directory"),
            "{cmd}"
        );
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    use std::io::BufRead;
    let input: String = (0..20_000).map(|_| format!("{GOOD}\n")).collect();
    for args in [
        &["prepare", "-", "--now", NOW][..],
        &["send", "-", "--now", NOW][..],
    ] {
        let mut child = spawned(args);
        let mut stdin = child.stdin.take().unwrap();
        let input = input.clone();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty()); // then the reader goes away (`| head -1`)
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        // prepare did not finish: the status of a program stopped by SIGPIPE; send's work
        // was done, only its summary went unread.
        let expected = if args[0] == "send" { 0 } else { 141 };
        assert_eq!(out.status.code(), Some(expected), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

#[test]
fn send_with_a_token_goes_to_the_given_graph_url() {
    use freight_sandbox::{Fault, FaultKind, Sandbox, SandboxConfig};
    let token = "EAAB-cli-token-42";
    let sb = Sandbox::start(SandboxConfig::with_token(token)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let csv = format!(
        "event_name,event_time,action_source,em,value,currency,order_id\n\
         Purchase,{},physical_store,a@example.com,12.5,eur,A-1\n\
         Purchase,{},physical_store,b@example.com,7,USD,A-2\n",
        now - 86_400,
        now - 3600
    );
    let path = std::env::temp_dir().join(format!("freight-cli-{}.csv", std::process::id()));
    std::fs::write(&path, csv).unwrap();
    let url = sb.url();
    let args = [
        "send",
        path.to_str().unwrap(),
        "--pixel-id",
        "555",
        "--graph-url",
        &url,
        "--partner-agent",
        "plfreight-1-2",
    ];
    let out = freight_env(&args, &[("FREIGHT_ACCESS_TOKEN", token)], "");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("2 events: 2 delivered"), "{stdout}");
    assert!(!stdout.contains(token));
    let req = &sb.requests()[0];
    assert_eq!(req.path, "/v25.0/555/events");
    assert_eq!(req.partner_agent.as_deref(), Some("plfreight-1-2"));
    assert_eq!(req.events[0]["custom_data"]["currency"], "EUR");
    assert_eq!(req.events[1]["custom_data"]["order_id"], "A-2");

    // A failure exits 1 and names the error, never the token.
    sb.push_fault(Fault::times(
        FaultKind::AuthError {
            subcode: Some(463),
            http: 400,
        },
        0,
    ));
    let out = freight_env(&args, &[("FREIGHT_ACCESS_TOKEN", token)], "");
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("2 failed"), "{all}");
    assert!(!all.contains(token));
    // Why, on stderr, without --report.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("events failed: invalid_token (HTTP 400, code 190/463)"),
        "{stderr}"
    );

    // The clock cannot be set for Meta.
    let out = freight_env(
        &["send", "-", "--pixel-id", "1", "--now", NOW],
        &[("FREIGHT_ACCESS_TOKEN", token)],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    // Plain http to a public host is refused.
    let out = freight_env(
        &[
            "send",
            "-",
            "--pixel-id",
            "1",
            "--graph-url",
            "http://graph.facebook.com",
        ],
        &[("FREIGHT_ACCESS_TOKEN", token)],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn test_connection_reports_a_status() {
    let out = freight_env(&["test-connection"], &[], "");
    assert!(out.status.success());
    // stdout is the JSON answer alone; the sandbox notice goes to stderr.
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["status"], "ok");
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("built-in Graph sandbox"));
    // Without a token, a Graph URL is refused rather than silently ignored.
    let out = freight_env(
        &["test-connection", "--graph-url", "http://127.0.0.1:9"],
        &[],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("--graph-url needs FREIGHT_ACCESS_TOKEN"));
    let sb = freight_sandbox::Sandbox::start(freight_sandbox::SandboxConfig::with_token("right"))
        .unwrap();
    let url = sb.url();
    let out = freight_env(
        &["test-connection", "--pixel-id", "9", "--graph-url", &url],
        &[("FREIGHT_ACCESS_TOKEN", "wrong")],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("\"status\":\"invalid_token\""));
}

#[test]
fn send_from_segment_maps_track_calls() {
    let calls = concat!(
        r#"{"type":"track","event":"Order Completed","messageId":"m1","timestamp":"2026-11-22T10:00:00Z","userId":"u1","context":{"ip":"203.0.113.1","userAgent":"UA","page":{"url":"https://s.example/t"}},"properties":{"revenue":12.5,"coupon":"X"}}"#,
        "\n",
        r#"{"type":"track","event":"Order Completed","properties":{"products":"nope"}}"#,
        "\n"
    );
    let out = freight(&["prepare", "--from", "segment", "--now", NOW], calls);
    let l = lines(&out);
    assert_eq!(l[0]["event"]["event_name"], "Purchase");
    assert_eq!(l[0]["event"]["custom_data"]["currency"], "USD");
    assert_eq!(l[0]["event"]["custom_data"]["coupon"], "X");
    assert_eq!(l[1]["rejected"][0]["loc"], "data[1].properties.products");
    let sent = freight_env(
        &["send", "-", "--from", "segment", "--now", NOW],
        &[],
        calls,
    );
    let stdout = String::from_utf8(sent.stdout).unwrap();
    assert!(
        stdout.contains("2 events: 1 delivered, 1 rejected"),
        "{stdout}"
    );
    let bad = freight(&["prepare", "--segment-config", "x.json"], "");
    assert_eq!(
        bad.status.code(),
        Some(2),
        "--segment-config needs --from segment"
    );
}
