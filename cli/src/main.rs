//! `freight`: the command-line face of the Freight Conversions API engine.
//!
//! Offline subcommands: `normalize`, `prepare` (dry run: wire events and rejections, one
//! JSON line per input) and `validate` (a human summary; exit 1 when an event is rejected).

#![forbid(unsafe_code)]

/// `eprintln!` that never panics: a closed standard error (`2>&-`, a reader that went away)
/// must not turn a message into a crash; the message is lost with the stream.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod input;
mod interrupt;
mod outbox;
mod send;

use clap::{Args, Parser, Subcommand, ValueEnum};
use freight::input::Input;
use freight::normalize::{normalize, DateOrder, Field, NormalizeOptions};
use freight::prepare::{PrepareOptions, Preparer};
use freight::validate::Problem;
use serde_json::{json, Value};
use std::io::{self, BufReader, BufWriter, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(
    name = "freight",
    version,
    about = "Send events to Meta's Conversions API, correctly and fast"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Normalize (and hash) one customer-information value, or JSON Lines with --jsonl.
    Normalize(NormalizeArgs),
    /// Dry run: print each input event as it would go on the wire, or why it is rejected.
    Prepare(PrepareArgs),
    /// Check events and print a summary; exits 1 when any event is rejected.
    Validate(PrepareArgs),
    /// Serve the local Graph API sandbox on 127.0.0.1 until interrupted.
    Sandbox(SandboxArgs),
    /// Send events to a pixel (token from FREIGHT_ACCESS_TOKEN; without it, to the built-in
    /// sandbox).
    Send(send::SendArgs),
    /// Send one test event and print whether the connection works.
    TestConnection(send::TestConnectionArgs),
    /// The durable local outbox: enqueue now, deliver later (enqueue|flush|stats|list|retry|resume).
    Outbox(outbox::OutboxArgs),
}

#[derive(Args)]
struct SandboxArgs {
    /// Port on 127.0.0.1; 0 picks a free one. The first output line is the base URL.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// JSON configuration: tokens, datasets and knobs (see sandbox/README.md). Without it
    /// the token `sandbox-token` is accepted for every pixel.
    #[arg(long)]
    config: Option<String>,
}

#[derive(Args)]
struct NormalizeArgs {
    /// The user_data key: em, ph, fn, ln, ge, db, ct, st, zp, country, external_id, ...
    #[arg(required_unless_present = "jsonl")]
    field: Option<String>,
    /// The raw value.
    #[arg(required_unless_present = "jsonl")]
    value: Option<String>,
    /// Print the wire value (the SHA-256 hash) instead of the normalized text.
    #[arg(long)]
    hash: bool,
    /// Read lines {"field":..,"value":..,"options":{..}} on stdin, write one result a line.
    #[arg(long, conflicts_with_all = ["field", "value", "hash"])]
    jsonl: bool,
    #[command(flatten)]
    options: OptionArgs,
}

#[derive(Args)]
struct PrepareArgs {
    /// JSON Lines (or CSV) file of events; `-` or nothing reads standard input.
    file: Option<String>,
    /// Input format; by default CSV for `*.csv` files, JSON Lines otherwise.
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    source: SourceArgs,
    /// The clock, as Unix seconds (default: now).
    #[arg(long, value_parser = unix_seconds)]
    now: Option<i64>,
    #[command(flatten)]
    options: OptionArgs,
}

/// What each input line is.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputKind {
    /// A Conversions API event.
    Capi,
    /// A CDP (Segment) track call, mapped to an event (seed 002's table).
    Segment,
}

/// Where events come from.
#[derive(Args)]
pub struct SourceArgs {
    /// What each input line is.
    #[arg(long = "from", value_enum, default_value_t = InputKind::Capi)]
    from: InputKind,
    /// A file of JSON settings for the Segment mapping: event_map, category_map, value_field,
    /// external_id_field, action_source, default_currency.
    #[arg(long)]
    segment_config: Option<String>,
}

/// Turns input lines into events (mapping track calls when asked).
pub struct Source {
    segment: Option<freight::segment::SegmentOptions>,
}

impl SourceArgs {
    /// The source these flags describe.
    pub fn source(&self) -> Result<Source, Fatal> {
        let segment = match (self.from, &self.segment_config) {
            (InputKind::Capi, Some(_)) => {
                return Err(Fatal("--segment-config needs --from segment".into()))
            }
            (InputKind::Capi, None) => None,
            (InputKind::Segment, None) => Some(Default::default()),
            (InputKind::Segment, Some(path)) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| Fatal(format!("{path}: {e}")))?;
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| Fatal(format!("{path}: not Segment settings: {e}")))?,
                )
            }
        };
        Ok(Source { segment })
    }
}

impl Source {
    /// The event of input `index`, or its rejection.
    pub fn event(&self, value: Value, index: usize) -> Result<Value, freight::prepare::Rejection> {
        let Some(opts) = &self.segment else {
            return Ok(value);
        };
        freight::segment::map_track(&value, opts).map_err(|problems| freight::prepare::Rejection {
            index,
            errors: problems
                .into_iter()
                .map(|p| {
                    let loc = if p.loc.is_empty() {
                        format!("data[{index}]")
                    } else {
                        format!("data[{index}].{}", p.loc)
                    };
                    Problem::new(p.kind, loc, p.msg)
                })
                .collect(),
            warnings: Vec::new(),
        })
    }
}

/// Input formats.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One CAPI event object per line.
    Jsonl,
    /// Offline conversions: one event per row, columns named after CAPI fields.
    Csv,
}

/// Opens `file` (or standard input) as a stream of events.
pub fn read_events(
    file: Option<&str>,
    format: Option<Format>,
    wrap: impl FnOnce(Box<dyn io::Read>, Option<u64>) -> Box<dyn io::Read>,
) -> Result<Box<dyn Iterator<Item = input::Item>>, Fatal> {
    let (reader, size): (Box<dyn io::Read>, Option<u64>) = match file {
        None | Some("-") => (Box::new(io::stdin()), None),
        Some(path) => {
            let f = std::fs::File::open(path).map_err(|e| Fatal(format!("{path}: {e}")))?;
            let meta = f.metadata().map_err(|e| Fatal(format!("{path}: {e}")))?;
            if meta.is_dir() {
                return Err(Fatal(format!(
                    "{path} is a directory, not a file of events"
                )));
            }
            let size = Some(meta.len());
            (Box::new(f), size)
        }
    };
    let reader = wrap(reader, size);
    let format = format.unwrap_or(match file {
        Some(p) if p.to_ascii_lowercase().ends_with(".csv") => Format::Csv,
        _ => Format::Jsonl,
    });
    Ok(match format {
        Format::Jsonl => Box::new(input::jsonl(BufReader::with_capacity(1 << 16, reader))),
        Format::Csv => Box::new(input::csv(BufReader::with_capacity(1 << 16, reader))),
    })
}

#[derive(Args)]
pub struct OptionArgs {
    /// Country whose calling code completes national phone numbers (e.g. gb).
    #[arg(long)]
    default_country: Option<String>,
    /// Order of day and month in dates of birth that end with the year.
    #[arg(long, value_enum, default_value_t = Order::Mdy)]
    date_order: Order,
    /// Send external_id trimmed and unhashed (it must match the browser side).
    #[arg(long)]
    no_hash_external_id: bool,
    /// Treat 32-hex values as MD5 digests and pass them through.
    #[arg(long)]
    md5_passthrough: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Order {
    Mdy,
    Dmy,
}

impl OptionArgs {
    /// The normalization options these flags ask for.
    pub fn to_options(&self) -> Result<NormalizeOptions, String> {
        let opts = NormalizeOptions {
            default_country: self.default_country.clone(),
            date_order: match self.date_order {
                Order::Mdy => DateOrder::Mdy,
                Order::Dmy => DateOrder::Dmy,
            },
            hash_external_id: !self.no_hash_external_id,
            md5_passthrough: self.md5_passthrough,
            now: Some(unix_now()),
        };
        opts.check()?;
        Ok(opts)
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A failure of the command itself (bad usage, unreadable input): exit code 2.
pub struct Fatal(pub String);

/// What a write to a standard output whose reader went away (`freight prepare … | head -1`)
/// becomes: the command stops quietly, with the status a pipeline expects of a program
/// stopped by SIGPIPE (141), not 0: it did not finish.
const STDOUT_CLOSED: &str = "\0stdout closed";

/// Standard output (see [`STDOUT_CLOSED`]); a broken pipe elsewhere (a report file that is a
/// FIFO) stays an error.
pub(crate) struct Stdout(io::StdoutLock<'static>);

#[derive(Debug)]
struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

impl Stdout {
    pub(crate) fn new() -> Stdout {
        Stdout(io::stdout().lock())
    }

    fn mark(e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::BrokenPipe {
            io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
        } else {
            e
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(Stdout::mark)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(Stdout::mark)
    }
}

impl From<io::Error> for Fatal {
    fn from(e: io::Error) -> Fatal {
        if e.get_ref().is_some_and(|inner| inner.is::<StdoutClosed>()) {
            return Fatal(STDOUT_CLOSED.into());
        }
        Fatal(e.to_string())
    }
}

impl From<serde_json::Error> for Fatal {
    fn from(e: serde_json::Error) -> Fatal {
        // An I/O error comes back as the io::Error it was (stdout closed, a full disk).
        Fatal::from(io::Error::from(e))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Normalize(args) => run_normalize(args),
        Command::Prepare(args) => run_prepare(args),
        Command::Validate(args) => run_validate(args),
        Command::Sandbox(args) => run_sandbox(args),
        Command::Send(args) => send::run_send(args),
        Command::TestConnection(args) => send::run_test_connection(args),
        Command::Outbox(args) => outbox::run(args),
    };
    match result {
        Ok(code) => code,
        Err(Fatal(msg)) if msg == STDOUT_CLOSED => ExitCode::from(141),
        Err(Fatal(msg)) => {
            say!("freight: {msg}");
            ExitCode::from(2)
        }
    }
}

fn field_of(name: &str) -> Result<Field, String> {
    Field::from_key(name).ok_or_else(|| {
        let known: Vec<&str> = Field::ALL.iter().map(|f| f.key()).collect();
        format!("unknown field {name:?}; one of {}", known.join(", "))
    })
}

fn run_normalize(args: NormalizeArgs) -> Result<ExitCode, Fatal> {
    let opts = args.options.to_options().map_err(Fatal)?;
    if args.jsonl {
        return normalize_jsonl(&opts);
    }
    let field = field_of(args.field.as_deref().unwrap_or_default()).map_err(Fatal)?;
    let value = args.value.unwrap_or_default();
    match normalize(field, &value, &opts) {
        Ok(Some(n)) => {
            if let Some(w) = n.warning {
                say!("warning: {} [{w}]", freight::prepare::warning_msg(w));
            }
            let out = if args.hash {
                n.to_wire(field, &opts)
            } else {
                n.value
            };
            writeln!(Stdout::new(), "{out}")?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            say!("freight: empty value: it is dropped, never hashed");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            say!("freight: {field}: {}", e);
            Ok(ExitCode::FAILURE)
        }
    }
}

fn normalize_jsonl(base: &NormalizeOptions) -> Result<ExitCode, Fatal> {
    let mut stdin = io::stdin().lock();
    let mut out = BufWriter::new(Stdout::new());
    let mut n = 0usize;
    // Each line answered: a bad one (not UTF-8, not JSON, too long) gets its error line.
    while let Some(line) = input::read_line(&mut stdin, input::MAX_LINE_BYTES)? {
        n += 1;
        let line = match line {
            input::Line::Bytes(bytes) => String::from_utf8(bytes)
                .map_err(|e| format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to())),
            input::Line::TooLong => Err(format!(
                "longer than {} bytes: not read",
                input::MAX_LINE_BYTES
            )),
        };
        if line.as_ref().is_ok_and(|l| l.trim().is_empty()) {
            continue;
        }
        let mut result = line
            .and_then(|line| normalize_line(&line, base))
            .unwrap_or_else(|msg| {
                json!({"error": {"type": "invalid_input", "msg": format!("line {n}: {msg}")}})
            });
        // Blank lines get no answer: the line number pairs answers with questions.
        result["line"] = json!(n);
        serde_json::to_writer(&mut out, &result)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn normalize_line(line: &str, base: &NormalizeOptions) -> Result<Value, String> {
    let req: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let field = field_of(req["field"].as_str().ok_or("\"field\" must be a string")?)?;
    let value = match req.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Number(_)) => v.view().number_text().unwrap_or_default(),
        Some(Value::Null) => return Ok(json!({"normalized": null, "hash": null})),
        None => return Err("\"value\" is missing".into()),
        Some(_) => return Err("\"value\" must be a string".into()),
    };
    let opts = match req.get("options") {
        Some(o) => {
            let mut merged = serde_json::to_value(base).map_err(|e| e.to_string())?;
            if let (Value::Object(m), Value::Object(o)) = (&mut merged, o) {
                m.extend(o.clone());
            }
            let opts: NormalizeOptions =
                serde_json::from_value(merged).map_err(|e| format!("bad options: {e}"))?;
            opts.check()?;
            opts
        }
        None => base.clone(),
    };
    Ok(match normalize(field, &value, &opts) {
        Ok(Some(n)) => {
            let wire = n.to_wire(field, &opts);
            let mut v = json!({"normalized": n.value, "hash": wire});
            if let Some(w) = n.warning {
                v["warning"] = json!(w.as_str());
            }
            v
        }
        Ok(None) => json!({"normalized": null, "hash": null, "warning": "empty_value"}),
        Err(e) => json!({"error": {"type": e.kind.as_str(), "msg": e.msg}}),
    })
}

/// One input line's outcome.
enum Outcome {
    Ready(Box<freight::prepare::PreparedEvent>),
    Rejected(freight::prepare::Rejection),
    Skipped(freight::prepare::Skipped),
}

/// Streams JSON Lines events through the preparer, calling `each` with the 1-based line
/// number and the outcome. Malformed lines are rejected (`invalid_json`, `invalid_csv`,
/// `unreadable_input`) and the rest of the input is processed; returns the line past which
/// the input could not be read, if it could not be read to its end.
fn stream_events(
    args: &PrepareArgs,
    mut each: impl FnMut(usize, Outcome) -> Result<(), Fatal>,
) -> Result<Option<usize>, Fatal> {
    let opts = PrepareOptions {
        normalize: args.options.to_options().map_err(Fatal)?,
    };
    let preparer = Preparer::new(&opts, args.now.unwrap_or_else(unix_now));
    let items = read_events(args.file.as_deref(), args.format, |r, _| r)?;
    let source = args.source.source()?;
    let mut cut_at = None;
    for (index, item) in items.enumerate() {
        if item.event.as_ref().is_err_and(|u| u.ends) {
            cut_at = Some(item.line);
        }
        let event = item
            .event
            .map_err(|msg| unreadable(index, msg))
            .and_then(|v| source.event(v, index));
        let outcome = match event {
            Ok(event) => match preparer.process(&event, index) {
                freight::prepare::Outcome::Ready(e) => Outcome::Ready(e),
                freight::prepare::Outcome::Rejected(r) => Outcome::Rejected(r),
                freight::prepare::Outcome::Skipped(s) => Outcome::Skipped(s),
            },
            Err(r) => Outcome::Rejected(r),
        };
        each(item.line, outcome)?;
    }
    Ok(cut_at)
}

/// The rejection of an input line that is not an event at all.
pub fn unreadable(index: usize, why: input::Unreadable) -> freight::prepare::Rejection {
    freight::prepare::Rejection {
        index,
        errors: vec![Problem::new(why.kind, format!("data[{index}]"), why.msg)],
        warnings: Vec::new(),
    }
}

fn run_prepare(args: PrepareArgs) -> Result<ExitCode, Fatal> {
    let mut out = BufWriter::new(Stdout::new());
    let cut = stream_events(&args, |line_no, outcome| {
        let v = match outcome {
            Outcome::Ready(e) => {
                // The hot path: written directly, without an intermediate JSON value.
                write!(out, "{{\"index\":{},\"line\":{line_no},\"event\":", e.index)?;
                let mut buf = Vec::with_capacity(2048);
                freight::batch::write_event(&mut buf, &e.event);
                out.write_all(&buf)?;
                if !e.warnings.is_empty() {
                    out.write_all(b",\"warnings\":")?;
                    serde_json::to_writer(&mut out, &e.warnings)?;
                }
                out.write_all(b"}\n")?;
                return Ok(());
            }
            Outcome::Rejected(r) => {
                let mut v = json!({"index": r.index, "line": line_no, "rejected": r.errors});
                if !r.warnings.is_empty() {
                    v["warnings"] = json!(r.warnings);
                }
                v
            }
            Outcome::Skipped(s) => json!({"index": s.index, "line": line_no, "skipped": s.reason}),
        };
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
        Ok(())
    })?;
    out.flush()?;
    // Rejections are data; an input that could not be read to its end is a failed run.
    Ok(match cut {
        Some(line) => {
            say!("freight: the input could not be read past line {line}: what follows it was not processed");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    })
}

/// A `--now`: Unix seconds, from 1970 to the end of year 9999 (a value in milliseconds is
/// named as such rather than taken for a date 50,000 years on).
pub fn unix_seconds(s: &str) -> Result<i64, String> {
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let n: i64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of seconds"))?;
    match n {
        n if n < 0 => Err("must not be negative".into()),
        n if n > MAX && n / 1000 <= MAX => Err(format!(
            "{n} looks like milliseconds: give Unix seconds ({})",
            n / 1000
        )),
        n if n > MAX => Err(format!("must be at most {MAX} (the end of year 9999)")),
        n => Ok(n),
    }
}

/// The token the sandbox accepts when started without a configuration.
pub const SANDBOX_TOKEN: &str = "sandbox-token";

fn run_sandbox(args: SandboxArgs) -> Result<ExitCode, Fatal> {
    use freight_sandbox::{Sandbox, SandboxConfig};
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Fatal(format!("{path}: {e}")))?;
            serde_json::from_str::<SandboxConfig>(&text)
                .map_err(|e| Fatal(format!("{path}: not a sandbox configuration: {e}")))?
        }
        None => SandboxConfig::with_token(SANDBOX_TOKEN),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(|e| Fatal(format!("cannot handle signals: {e}")))?;
    let mut sandbox = Sandbox::start_on(config, args.port)
        .map_err(|e| Fatal(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    // Its address is the one thing a caller needs: written, or the command fails (a full or
    // closed standard output is an error, not a panic).
    let mut out = Stdout::new();
    writeln!(out, "{}", sandbox.url())?;
    if args.config.is_none() {
        writeln!(
            out,
            "token: {SANDBOX_TOKEN} (any pixel id); control: {}/__sandbox/requests",
            sandbox.url()
        )?;
    }
    out.flush()?;
    drop(out);
    let _ = rx.recv();
    sandbox.shutdown();
    say!("freight sandbox: stopped");
    Ok(ExitCode::SUCCESS)
}

fn run_validate(args: PrepareArgs) -> Result<ExitCode, Fatal> {
    let mut out = BufWriter::new(Stdout::new());
    let (mut valid, mut rejected, mut warned, mut skipped) = (0usize, 0usize, 0usize, 0usize);
    stream_events(&args, |line_no, outcome| {
        let (warnings, errors) = match &outcome {
            Outcome::Ready(e) => {
                valid += 1;
                (&e.warnings, None)
            }
            Outcome::Rejected(r) => {
                rejected += 1;
                (&r.warnings, Some(&r.errors))
            }
            Outcome::Skipped(s) => {
                skipped += 1;
                writeln!(out, "line {line_no}: skipped ({})", s.reason)?;
                return Ok(());
            }
        };
        if let Some(errors) = errors {
            writeln!(out, "line {line_no}: rejected")?;
            for p in errors {
                writeln!(out, "  error   {}: {} [{}]", p.loc, p.msg, p.kind)?;
            }
        } else if !warnings.is_empty() {
            writeln!(out, "line {line_no}: ok, with warnings")?;
        }
        for p in warnings {
            warned += 1;
            writeln!(out, "  warning {}: {} [{}]", p.loc, p.msg, p.kind)?;
        }
        Ok(())
    })?;
    writeln!(
        out,
        "{} events: {valid} valid, {rejected} rejected, {skipped} skipped, {warned} warnings",
        valid + rejected + skipped
    )?;
    out.flush()?;
    Ok(if rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
