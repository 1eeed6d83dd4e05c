//! `freight send` and `freight test-connection`.
//!
//! The token comes from the environment (`FREIGHT_ACCESS_TOKEN`, and `FREIGHT_APP_SECRET`
//! for `appsecret_proof`), never from the command line, where it would end up in shell
//! history and process lists. Without a token both commands start the built-in Graph
//! sandbox on a free loopback port and say so on their first line: nothing leaves the
//! machine.

use crate::interrupt::{interrupted, stop_on_interrupt, INTERRUPTED_EXIT, STOP};
use crate::{
    read_events, unix_now, unreadable, Fatal, Format, OptionArgs, SourceArgs, SANDBOX_TOKEN,
};
use clap::Args;
use freight::batch::RequestFields;
use freight::client::{Client, ClientConfig};
use freight::destination::Destination;
use freight::prepare::{Outcome, PrepareOptions, PreparedEvent, Preparer, Rejection, Skipped};
use freight::report::Report;
use freight::request::DEFAULT_API_VERSION;
use freight::response::ErrorKind;
use freight_sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

/// The pixel id used with the built-in sandbox when none is given.
const DEMO_PIXEL: &str = "1234567890";

/// Where the requests go.
#[derive(Args)]
pub struct Target {
    /// The pixel (or dataset) id; needs FREIGHT_ACCESS_TOKEN (and is required with it).
    #[arg(long)]
    pixel_id: Option<String>,
    /// Route the events to Events Manager's Test Events tab; needs FREIGHT_ACCESS_TOKEN.
    #[arg(long)]
    test_event_code: Option<String>,
    /// Graph API base URL (https, or http to 127.0.0.1 or [::1]); needs FREIGHT_ACCESS_TOKEN.
    #[arg(long)]
    graph_url: Option<String>,
    /// Graph API version.
    #[arg(long, default_value = DEFAULT_API_VERSION)]
    api_version: String,
    /// The platform's partner_agent, e.g. plmyplatform-1.2-3.4.
    #[arg(long)]
    partner_agent: Option<String>,
}

/// `freight send`.
#[derive(Args)]
pub struct SendArgs {
    /// JSON Lines or CSV file of events; `-` reads standard input.
    file: String,
    /// Input format; by default CSV for `*.csv` files, JSON Lines otherwise.
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    target: Target,
    /// Write the report here as JSON Lines: one line per event, then a summary line.
    #[arg(long)]
    report: Option<String>,
    /// Events per request (at most 1000).
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// The clock (Unix seconds) — only with the built-in sandbox, whose clock is set to it
    /// too; Meta's clock cannot be set.
    #[arg(long, value_parser = crate::unix_seconds)]
    now: Option<i64>,
    /// Exit 1 when an event is rejected locally, too (by default only failures do).
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    options: OptionArgs,
}

/// `freight test-connection`.
#[derive(Args)]
pub struct TestConnectionArgs {
    #[command(flatten)]
    target: Target,
}

/// The resolved destination: a real one, or the built-in sandbox.
struct Resolved {
    client_config: ClientConfig,
    dest: Destination,
    sandbox: Option<SandboxHandle>,
    /// What to tell the user first, when the built-in sandbox is used.
    notice: Option<String>,
}

/// A secret from the environment: `None` when the variable is not set; an error when it is
/// set but blank (a secret that failed to load must not turn a send into a sandbox run).
fn env_secret(name: &str) -> Result<Option<String>, Fatal> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) => match v.into_string() {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v)),
            Ok(_) => Err(Fatal(format!(
                "{name} is set but blank: set the secret, or unset the variable"
            ))),
            Err(_) => Err(Fatal(format!("{name} is not valid UTF-8"))),
        },
    }
}

fn resolve(target: &Target, now: Option<i64>) -> Result<Resolved, Fatal> {
    if target
        .test_event_code
        .as_deref()
        .is_some_and(|c| c.trim().is_empty())
    {
        return Err(Fatal(
            "--test-event-code is blank: give the code from Events Manager, or leave the \
             option out for production"
                .into(),
        ));
    }
    let mut client_config = ClientConfig {
        api_version: target.api_version.clone(),
        partner_agent: target.partner_agent.clone(),
        ..ClientConfig::default()
    };
    let mut notice = None;
    let (dest, sandbox) = match env_secret("FREIGHT_ACCESS_TOKEN")? {
        Some(token) => {
            if now.is_some() {
                return Err(Fatal(
                    "--now works only with the built-in sandbox: Meta's clock cannot be set".into(),
                ));
            }
            let pixel = target.pixel_id.clone().ok_or_else(|| {
                Fatal("--pixel-id is required when FREIGHT_ACCESS_TOKEN is set".into())
            })?;
            if let Some(url) = &target.graph_url {
                client_config.graph_url = url.clone();
            }
            let mut dest =
                Destination::new(pixel, token).map_err(|e| Fatal(format!("destination: {e}")))?;
            if let Some(secret) = env_secret("FREIGHT_APP_SECRET")? {
                dest = dest
                    .with_app_secret(secret)
                    .map_err(|e| Fatal(format!("FREIGHT_APP_SECRET: {e}")))?;
            }
            (dest, None)
        }
        None => {
            // Options that name Meta's side mean a real send: one whose token went missing
            // (a scheduler's lost environment) must not pass for a success in the sandbox.
            for (given, option) in [
                (target.graph_url.is_some(), "--graph-url"),
                (target.pixel_id.is_some(), "--pixel-id"),
                (target.test_event_code.is_some(), "--test-event-code"),
            ] {
                if given {
                    return Err(Fatal(format!(
                        "{option} needs FREIGHT_ACCESS_TOKEN, which is not set: nothing would \
                         reach Meta. Set the token, or leave {option} out to try the built-in \
                         sandbox"
                    )));
                }
            }
            let mut config = SandboxConfig::with_token(SANDBOX_TOKEN);
            config.now = now;
            // Counted, not kept: a long file must not grow the process (sandbox-spec knobs).
            config.record_events = false;
            config.max_recorded_body_bytes = 0;
            let sandbox = Sandbox::start(config)
                .map_err(|e| Fatal(format!("cannot start the built-in sandbox: {e}")))?;
            notice = Some(format!(
                "freight: FREIGHT_ACCESS_TOKEN is not set: sending to the built-in Graph sandbox at {} (nothing leaves this machine)",
                sandbox.url()
            ));
            client_config.graph_url = sandbox.url();
            let dest = Destination::new(DEMO_PIXEL, SANDBOX_TOKEN)
                .map_err(|e| Fatal(format!("destination: {e}")))?;
            (dest, Some(sandbox))
        }
    };
    let dest = match &target.test_event_code {
        Some(code) => dest.with_test_event_code(code.clone()),
        None => dest,
    };
    Ok(Resolved {
        client_config,
        dest,
        sandbox,
        notice,
    })
}

/// From the reading thread to the sending thread.
enum Message {
    /// Prepared events and their (index, input line) pairs.
    Batch(Vec<PreparedEvent>, Vec<(usize, usize)>),
    /// An event rejected locally, and its input line.
    Rejected(Rejection, usize),
    /// An event not to be sent (consent denied), and its input line.
    Skipped(Skipped, usize),
}

/// Counts for the summary line.
#[derive(Default)]
struct Totals {
    input: usize,
    delivered: usize,
    rejected: usize,
    failed: usize,
    skipped: usize,
    /// Read and prepared, but not sent: the send was interrupted.
    unsent: usize,
    requests: usize,
    /// The input line of the last event read, when an interrupt stopped the reading.
    read_up_to: Option<usize>,
    /// The line past which the input could not be read (a read error, a quoted CSV cell left
    /// open): what followed it was never processed.
    cut_at: Option<usize>,
    /// What made the first event fail, for stderr.
    first_failure: Option<String>,
}

struct ReportWriter {
    out: Option<io::BufWriter<std::fs::File>>,
    /// Why the report could not be written (a full disk): nothing more is sent then, since
    /// what happens to the events could not be recorded.
    broken: Option<String>,
}

/// Set when the report cannot be written: the reading stops too.
static REPORT_BROKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn report_broken() -> bool {
    REPORT_BROKEN.load(std::sync::atomic::Ordering::SeqCst)
}

/// True when `report` names the file `input` reads (`-`: standard input), so that writing
/// one would truncate the other.
fn same_file(report: &str, input: &str) -> bool {
    let input = if input == "-" { "/dev/stdin" } else { input };
    let (Ok(a), Ok(b)) = (std::fs::metadata(report), std::fs::metadata(input)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        matches!(
            (std::fs::canonicalize(report), std::fs::canonicalize(input)),
            (Ok(x), Ok(y)) if x == y
        )
    }
}

/// A file created (or truncated) with mode 0600 on Unix.
fn create_private(path: &str) -> io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(path)?;
    // The mode applies to a new file only: an earlier report keeps its own otherwise.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.is_file() {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}

/// A line of the human summary on stdout; a reader that went away (`| head -1`) is no error
/// of the send, which is done.
fn summary(line: &str) -> Result<(), Fatal> {
    let mut out = crate::Stdout::new();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

impl ReportWriter {
    /// Notes the first write error, after which nothing more is written or sent.
    fn check(&mut self, written: io::Result<()>) {
        if let Err(e) = written {
            self.out = None;
            self.broken.get_or_insert_with(|| e.to_string());
            REPORT_BROKEN.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn flush(&mut self) -> Result<(), Fatal> {
        if let Some(out) = &mut self.out {
            let flushed = out.flush();
            self.check(flushed);
        }
        Ok(())
    }

    fn line(&mut self, v: &serde_json::Value) -> Result<(), Fatal> {
        if let Some(out) = &mut self.out {
            let written = serde_json::to_writer(&mut *out, v)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            self.check(written);
        }
        Ok(())
    }

    fn rejected(&mut self, r: &Rejection, line: usize) -> Result<(), Fatal> {
        let mut v =
            json!({"index": r.index, "line": line, "outcome": "rejected", "errors": r.errors});
        if !r.warnings.is_empty() {
            v["warnings"] = json!(r.warnings);
        }
        self.line(&v)
    }

    /// Writes a batch's outcomes; `lines[i]` is the input line of `batch[i]`.
    fn batch(&mut self, report: &Report, lines: &[(usize, usize)]) -> Result<(), Fatal> {
        let line_of = |index: usize| {
            lines
                .binary_search_by_key(&index, |(i, _)| *i)
                .map_or(0, |p| lines[p].1)
        };
        let warnings_of = |index: usize| {
            report
                .warnings
                .iter()
                .find(|w| w.index == index)
                .map(|w| json!(w.warnings))
        };
        for d in &report.delivered {
            let mut v = json!({"index": d.index, "line": line_of(d.index), "outcome": "delivered"});
            if let Some(id) = &d.event_id {
                v["event_id"] = json!(id);
            }
            if let Some(w) = warnings_of(d.index) {
                v["warnings"] = w;
            }
            self.line(&v)?;
        }
        for f in &report.failed {
            let mut v = if f.error.kind == ErrorKind::Cancelled {
                json!({"index": f.index, "line": line_of(f.index), "outcome": "unsent",
                       "reason": "interrupted", "event": f.event})
            } else {
                json!({"index": f.index, "line": line_of(f.index), "outcome": "failed",
                       "error": f.error, "attempts": f.attempts, "event": f.event})
            };
            if let Some(w) = warnings_of(f.index) {
                v["warnings"] = w;
            }
            self.line(&v)?;
        }
        Ok(())
    }

    /// Writes the events of a batch that was not sent, with their wire events (to send
    /// later, keeping their `event_id`).
    fn unsent(&mut self, batch: &[PreparedEvent], lines: &[(usize, usize)]) -> Result<(), Fatal> {
        for (e, (_, line)) in batch.iter().zip(lines) {
            let mut v = json!({"index": e.index, "line": line, "outcome": "unsent",
                               "reason": "interrupted", "event": e.event});
            if !e.warnings.is_empty() {
                v["warnings"] = json!(e.warnings);
            }
            self.line(&v)?;
        }
        Ok(())
    }
}

pub fn run_send(args: SendArgs) -> Result<ExitCode, Fatal> {
    let options = args.options.to_options().map_err(Fatal)?;
    let source = args.source.source()?;
    // Usage errors first, before the built-in sandbox starts and says so.
    if !(1..=freight::batch::MAX_EVENTS_PER_REQUEST).contains(&args.batch_size) {
        return Err(Fatal("--batch-size must be 1 to 1000".into()));
    }
    if args.report.as_deref() == Some("-") {
        return Err(Fatal(
            "--report needs a file path (stdout carries the summary)".into(),
        ));
    }
    let Resolved {
        mut client_config,
        dest,
        sandbox,
        notice,
    } = resolve(&args.target, args.now)?;
    // After the destination is known (a usage error leaves an earlier report as it was), and
    // before the sandbox's notice (a report that cannot be written stops the command first).
    if let Some(path) = &args.report {
        if same_file(path, &args.file) {
            return Err(Fatal(format!(
                "--report {path} is the input: writing the report would erase the events; \
                 give another file"
            )));
        }
    }
    let mut report = ReportWriter {
        out: match &args.report {
            // Owner-only: the report holds the wire events (IP addresses, user agents).
            Some(path) => Some(io::BufWriter::new(
                create_private(path).map_err(|e| Fatal(format!("{path}: {e}")))?,
            )),
            None => None,
        },
        broken: None,
    };
    if let Some(notice) = notice {
        summary(&notice)?; // the first line of the human summary
    }
    client_config.batch_size = args.batch_size;
    client_config.normalize = options.clone();
    let client = Client::new(client_config).map_err(|e| Fatal(e.to_string()))?;
    if dest.test_event_code().is_some() {
        say!(
            "warning: test_event_code is set: the events show in Test Events and are still \
             processed by Meta; remove it for production"
        );
    }
    let now = args.now.unwrap_or_else(unix_now);
    let preparer = Preparer::new(&PrepareOptions { normalize: options }, now);
    let mut session = client
        .session(&dest)
        .with_fields(RequestFields::default())
        .with_cancel(&STOP);
    let bar = if io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let file = (args.file != "-").then_some(args.file.as_str());
    // The events read but not sent are reported `unsent`, and the summary says where
    // reading stopped.
    stop_on_interrupt(
        "freight: interrupted: no new request is sent; the one in flight finishes and the \
         report is completed (interrupt again to stop at once)",
        bar.clone(),
    )?;
    let bar_for_input = bar.clone();
    let items = read_events(file, args.format, move |r, size| match bar_for_input {
        Some(bar) => {
            bar.set_length(size.unwrap_or(0));
            Box::new(bar.wrap_read(r))
        }
        None => r,
    })?;

    // Two stages: this thread reads and prepares the next batch while a sender thread has the
    // previous one on the wire. The channel holds one batch, so memory stays bounded by about
    // three batches whatever the file's size.
    let mut totals = Totals::default();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Message>(1);
    let bar_sender = bar.clone();
    let sent = std::thread::scope(|scope| -> Result<(Totals, ReportWriter), Fatal> {
        let sender = scope.spawn(move || -> Result<(Totals, ReportWriter), Fatal> {
            let mut t = Totals::default();
            for message in rx {
                match message {
                    Message::Batch(batch, lines) if interrupted() => {
                        t.unsent += batch.len();
                        report.unsent(&batch, &lines)?;
                        report.flush()?;
                    }
                    // Outcomes that cannot be recorded are not made.
                    Message::Batch(batch, _) if report.broken.is_some() => {
                        t.unsent += batch.len();
                    }
                    Message::Batch(batch, lines) => {
                        let r = session.send_prepared(&batch);
                        // Not sent because of the interrupt: unsent, not failed.
                        let cancelled = r
                            .failed
                            .iter()
                            .filter(|f| f.error.kind == ErrorKind::Cancelled)
                            .count();
                        t.delivered += r.counts.delivered;
                        t.failed += r.counts.failed - cancelled;
                        t.unsent += cancelled;
                        t.requests += r.requests.len();
                        let failure = r
                            .failed
                            .iter()
                            .find(|f| f.error.kind != ErrorKind::Cancelled);
                        if let (None, Some(f)) = (&t.first_failure, failure) {
                            t.first_failure = Some(f.error.to_string());
                        }
                        report.batch(&r, &lines)?;
                        // On disk batch by batch: an interrupted send leaves what it did.
                        report.flush()?;
                    }
                    Message::Rejected(r, line) => report.rejected(&r, line)?,
                    Message::Skipped(s, line) => report.line(&json!({"index": s.index,
                        "line": line, "outcome": "skipped", "reason": s.reason}))?,
                }
                if let Some(bar) = &bar_sender {
                    bar.set_message(format!("{} delivered, {} failed", t.delivered, t.failed));
                }
            }
            Ok((t, report))
        });
        let mut batch: Vec<PreparedEvent> = Vec::with_capacity(args.batch_size);
        let mut lines: Vec<(usize, usize)> = Vec::with_capacity(args.batch_size);
        let mut last_line = 0;
        let mut items = items.enumerate();
        loop {
            // Before reading on: an item read (even one a read blocked for) is processed, and
            // the summary names the last line of those.
            if interrupted() || report_broken() {
                totals.read_up_to = Some(last_line);
                break;
            }
            let Some((index, item)) = items.next() else {
                break;
            };
            last_line = item.line;
            totals.input += 1;
            if item.event.as_ref().is_err_and(|u| u.ends) {
                totals.cut_at = Some(item.line);
            }
            let event = item
                .event
                .map_err(|msg| unreadable(index, msg))
                .and_then(|v| source.event(v, index));
            let prepared = match event {
                Ok(event) => preparer.process(&event, index),
                Err(r) => Outcome::Rejected(r),
            };
            match prepared {
                Outcome::Skipped(s) => {
                    totals.skipped += 1;
                    if tx.send(Message::Skipped(s, item.line)).is_err() {
                        break;
                    }
                }
                Outcome::Ready(e) => {
                    batch.push(*e);
                    lines.push((index, item.line));
                    if batch.len() == args.batch_size {
                        let full =
                            std::mem::replace(&mut batch, Vec::with_capacity(args.batch_size));
                        let full_lines =
                            std::mem::replace(&mut lines, Vec::with_capacity(args.batch_size));
                        if tx.send(Message::Batch(full, full_lines)).is_err() {
                            break; // the sender stopped on an error; it is reported below
                        }
                    }
                }
                Outcome::Rejected(r) => {
                    totals.rejected += 1;
                    let say = || {
                        for p in &r.errors {
                            say!(
                                "line {}: rejected: {}: {} [{}]",
                                item.line,
                                p.loc,
                                p.msg,
                                p.kind
                            );
                        }
                    };
                    // Above the progress bar, not into it.
                    match &bar {
                        Some(bar) => bar.suspend(say),
                        None => say(),
                    }
                    if tx.send(Message::Rejected(r, item.line)).is_err() {
                        break;
                    }
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(Message::Batch(batch, lines));
        }
        drop(tx);
        sender
            .join()
            .map_err(|_| Fatal("the sender thread panicked".into()))?
    })?;
    let (t, mut report) = sent;
    totals.first_failure = t.first_failure;
    totals.delivered = t.delivered;
    totals.failed = t.failed;
    totals.unsent = t.unsent;
    totals.requests = t.requests;
    // An interrupt that came when all was done changed nothing.
    let stopped = interrupted() && (totals.unsent > 0 || totals.read_up_to.is_some());
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    report.line(&json!({"summary": {
        "pixel_id": dest.pixel_id(), "input": totals.input, "delivered": totals.delivered,
        "rejected": totals.rejected, "failed": totals.failed, "skipped": totals.skipped,
        "unsent": totals.unsent, "requests": totals.requests, "interrupted": stopped,
        "read_up_to_line": totals.read_up_to, "input_cut_at_line": totals.cut_at,
        "sandbox": sandbox.is_some()}}))?;
    report.flush()?;
    if let Some(why) = &totals.first_failure {
        let more = if args.report.is_some() {
            "each failed event, with its error, is in the report"
        } else {
            "--report FILE keeps each failed event with its error"
        };
        say!("freight: events failed: {why} ({more})");
    }
    summary(&format!(
        "{} events: {} delivered, {} rejected, {} failed, {} skipped, in {} request{}",
        totals.input,
        totals.delivered,
        totals.rejected,
        totals.failed,
        totals.skipped,
        totals.requests,
        if totals.requests == 1 { "" } else { "s" }
    ))?;
    if stopped {
        let unread = match totals.read_up_to {
            Some(0) => "no input line was processed".to_owned(),
            Some(line) => format!("events after input line {line} were not processed"),
            None => "the input was read to its end".into(),
        };
        let kept = if args.report.is_some() {
            "in the report, with their lines and wire events"
        } else {
            "--report FILE keeps them, with their lines and wire events"
        };
        summary(&format!(
            "interrupted: {} unsent ({kept}); {unread}",
            totals.unsent
        ))?;
    }
    if let Some(line) = totals.cut_at {
        summary(&format!(
            "the input could not be read past line {line} (its problem is reported with that \
             line): what follows it was not processed"
        ))?;
    }
    if let Some(why) = &report.broken {
        let unread = match totals.read_up_to {
            Some(line) => format!("; events after input line {line} were not processed"),
            None => String::new(),
        };
        say!("freight: the report could not be written: {why}");
        summary(&format!(
            "the report could not be written, so nothing was sent after that: {} unsent{unread}",
            totals.unsent
        ))?;
    }
    if let Some(sb) = &sandbox {
        let accepted: usize = sb
            .requests()
            .iter()
            .map(|r| match r.outcome {
                freight_sandbox::Outcome::Accepted { events_received } => events_received,
                _ => 0,
            })
            .sum();
        summary(&format!(
            "sandbox accepted {accepted} events (they went nowhere else)"
        ))?;
    }
    // Rejections are the input's fault and are reported above; failures mean events that
    // should have reached Meta did not, and an input cut short, events never read.
    Ok(if stopped {
        ExitCode::from(INTERRUPTED_EXIT)
    } else if totals.failed > 0
        || totals.cut_at.is_some()
        || report.broken.is_some()
        || (args.strict && totals.rejected > 0)
    {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn run_test_connection(args: TestConnectionArgs) -> Result<ExitCode, Fatal> {
    let Resolved {
        mut client_config,
        dest,
        sandbox,
        notice,
    } = resolve(&args.target, None)?;
    if let Some(notice) = notice {
        say!("{notice}"); // stdout is the JSON answer alone
    }
    client_config.retry = freight::retry::RetryPolicy::none();
    let client = Client::new(client_config).map_err(|e| Fatal(e.to_string()))?;
    if sandbox.is_none() && dest.test_event_code().is_none() {
        say!(
            "warning: no --test-event-code: the test event (FreightConnectionTest) is processed \
             as a real event of this pixel; pass the code from Events Manager's Test Events tab"
        );
    }
    let t = client.test_connection(&dest);
    writeln!(crate::Stdout::new(), "{}", serde_json::to_string(&t)?)?;
    Ok(if t.status == freight::report::ConnectionStatus::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
