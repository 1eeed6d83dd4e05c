//! `freight outbox`: enqueue events into a local SQLite outbox, flush it to Meta later.
//!
//! Destinations are referenced by key. `flush` resolves keys with a JSON file
//! `{"shop-1": {"pixel_id": "123", "token_env": "SHOP1_TOKEN"}}`: the token is read from the
//! named environment variable at flush time and never stored in the outbox.

use crate::interrupt::{stop_on_interrupt, INTERRUPTED_EXIT, STOP};
use crate::{read_events, unix_now, Fatal, Format, OptionArgs};
use clap::{Args, Subcommand};
use freight::client::{Client, ClientConfig};
use freight::destination::Destination;
use freight::prepare::PrepareOptions;
use freight::request::DEFAULT_API_VERSION;
use freight_outbox::{FlushLimits, Outbox};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::ExitCode;

/// `freight outbox …`
#[derive(Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    command: OutboxCommand,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Validate events and store them for a destination key; prints what was stored.
    Enqueue {
        /// The outbox file (created owner-only if missing).
        db: String,
        /// The destination key the flush resolves.
        #[arg(long)]
        key: String,
        /// JSON Lines or CSV events; `-` for standard input.
        file: String,
        /// Input format.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Events per transaction.
        #[arg(long, default_value_t = 1000)]
        chunk: usize,
        #[command(flatten)]
        options: OptionArgs,
    },
    /// Send due events; prints what happened. Exits 1 when an event failed, or when due
    /// events wait for a destination that cannot be used (each named on stderr, with why).
    /// Ctrl-C (or SIGTERM) stops it between requests, ends a retry wait, and exits 130 after
    /// the report; the events not delivered stay pending. A second one stops it at once.
    Flush {
        /// The outbox file.
        db: String,
        /// `{"key": {"pixel_id": "…", "token_env": "ENV_VAR"}}`: the token is read from the
        /// environment variable named.
        #[arg(long)]
        destinations: String,
        /// Graph API base URL (https, or http to a loopback host).
        #[arg(long)]
        graph_url: Option<String>,
        /// Graph API version.
        #[arg(long, default_value = DEFAULT_API_VERSION)]
        api_version: String,
        /// Most requests in this flush.
        #[arg(long, default_value_t = 100)]
        max_requests: usize,
        /// Lease of claimed rows, in seconds (a crashed flusher's rows return after it); 0:
        /// the client's time budget of one request with its retries, plus a minute.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
        lease_secs: i64,
        /// A name for this worker (recorded on claimed rows).
        #[arg(long, default_value = "freight-cli")]
        worker: String,
    },
    /// Counts per state and paused destinations (JSON).
    Stats {
        /// The outbox file.
        db: String,
    },
    /// Re-queue failed (and with --expired, expired) events; an expired event comes back only
    /// while Meta's window is still open (it was given up an hour early).
    Retry {
        /// The outbox file.
        db: String,
        /// Only this destination.
        #[arg(long)]
        key: Option<String>,
        /// Expired events too.
        #[arg(long)]
        expired: bool,
    },
    /// List stored events in a state (JSON Lines), e.g. the failed ones with their error.
    List {
        /// The outbox file.
        db: String,
        /// pending, delivered, failed or expired.
        #[arg(long, default_value = "failed")]
        state: String,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Lift the circuit breaker of a destination.
    Resume {
        /// The outbox file.
        db: String,
        /// The destination key.
        #[arg(long)]
        key: String,
    },
}

fn open(db: &str) -> Result<Outbox, Fatal> {
    Outbox::open(db).map_err(|e| Fatal(format!("{db}: {e}")))
}

fn print(v: &Value) -> Result<(), Fatal> {
    use std::io::Write;
    writeln!(crate::Stdout::new(), "{v}")?;
    Ok(())
}

pub fn run(args: OutboxArgs) -> Result<ExitCode, Fatal> {
    let now = unix_now();
    match args.command {
        OutboxCommand::Enqueue {
            db,
            key,
            file,
            format,
            chunk,
            options,
        } => {
            let outbox = open(&db)?.with_prepare_options(PrepareOptions {
                normalize: options.to_options().map_err(Fatal)?,
            });
            let file = (file != "-").then_some(file);
            let items = read_events(file.as_deref(), format, |r, _| r)?;
            let (mut stored, mut duplicates, mut rejected, mut skipped, mut unreadable) =
                (0, 0, 0, 0, 0);
            let mut batch = Vec::with_capacity(chunk.max(1));
            // The input line of each event of the batch: messages name the line, as `send`'s.
            let mut lines: Vec<usize> = Vec::with_capacity(chunk.max(1));
            let mut flush_batch =
                |batch: &mut Vec<Value>, lines: &mut Vec<usize>| -> Result<(), Fatal> {
                    let r = outbox
                        .enqueue(&key, batch, now)
                        .map_err(|e| Fatal(e.to_string()))?;
                    stored += r.stored;
                    duplicates += r.duplicates;
                    rejected += r.rejected.len();
                    skipped += r.skipped.len();
                    for rej in &r.rejected {
                        let line = lines.get(rej.index).copied().unwrap_or(0);
                        for p in &rej.errors {
                            // `loc` counts within the batch: the line says which event it is.
                            let loc = p.loc.split_once('.').map_or("event", |(_, rest)| rest);
                            say!("line {line}: rejected: {loc}: {} [{}]", p.msg, p.kind);
                        }
                    }
                    batch.clear();
                    lines.clear();
                    Ok(())
                };
            for item in items {
                match item.event {
                    Ok(v) => {
                        batch.push(v);
                        lines.push(item.line);
                        if batch.len() >= chunk.max(1) {
                            flush_batch(&mut batch, &mut lines)?;
                        }
                    }
                    Err(why) => {
                        unreadable += 1;
                        say!("{} [{}]", why.msg, why.kind);
                    }
                }
            }
            flush_batch(&mut batch, &mut lines)?;
            print(
                &json!({"stored": stored, "duplicates": duplicates, "rejected": rejected + unreadable,
                          "skipped": skipped}),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Flush {
            db,
            destinations,
            graph_url,
            api_version,
            max_requests,
            lease_secs,
            worker,
        } => {
            let text = std::fs::read_to_string(&destinations)
                .map_err(|e| Fatal(format!("{destinations}: {e}")))?;
            let table: HashMap<String, Value> =
                // serde's message may quote a value (a token pasted in the wrong place): only
                // where the problem is.
                serde_json::from_str(&text).map_err(|e| {
                    Fatal(format!(
                        "{destinations}: not a JSON object of destinations \
                         {{\"key\": {{\"pixel_id\": …, \"token_env\": \"NAME\"}}}} (line {}, column {})",
                        e.line(),
                        e.column()
                    ))
                })?;
            let mut config = ClientConfig {
                api_version,
                ..ClientConfig::default()
            };
            if let Some(url) = graph_url {
                config.graph_url = url;
            }
            let client = Client::new(config).map_err(|e| Fatal(e.to_string()))?;
            // Each destination resolved once, with the reason when it cannot be (never the
            // token itself).
            let resolved: HashMap<String, Result<Destination, String>> = table
                .iter()
                .map(|(key, d)| (key.clone(), destination(d)))
                .collect();
            let limits = FlushLimits {
                max_requests,
                lease_secs,
                ..FlushLimits::default()
            };
            let outbox = open(&db)?;
            stop_on_interrupt(
                "freight: interrupted: no new request is sent; the one in flight finishes and \
                 is recorded, the rest stays pending (interrupt again to stop at once)",
                None,
            )?;
            let r = outbox
                .flush_table(&client, &resolved, now, limits, &worker, Some(&STOP))
                .map_err(|e| Fatal(e.to_string()))?;
            print(&serde_json::to_value(&r)?)?;
            for key in &r.unresolved {
                let why = match r.invalid.iter().find(|(k, _)| k == key) {
                    Some((_, why)) => why.clone(),
                    None => format!("not in {destinations}"),
                };
                say!("freight: destination {key:?} has due events but cannot be used: {why}");
            }
            if let Some(e) = &r.stopped {
                say!("freight: the flush stopped early: {e}");
            }
            if r.interrupted {
                return Ok(ExitCode::from(INTERRUPTED_EXIT));
            }
            // Events that stay pending for want of a destination fail the run, as failed ones
            // and a storage error do: a scheduler must notice.
            Ok(
                if r.failed > 0 || !r.unresolved.is_empty() || r.stopped.is_some() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                },
            )
        }
        OutboxCommand::Stats { db } => {
            let s = open(&db)?.stats(now).map_err(|e| Fatal(e.to_string()))?;
            print(&serde_json::to_value(&s)?)?;
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Retry { db, key, expired } => {
            let n = open(&db)?
                .requeue(key.as_deref(), expired, now)
                .map_err(|e| Fatal(e.to_string()))?;
            print(&json!({"requeued": n}))?;
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::List { db, state, limit } => {
            let state = freight_outbox::State::parse(&state).ok_or_else(|| {
                Fatal(format!(
                    "unknown state {state:?}; pending, delivered, failed or expired"
                ))
            })?;
            for e in open(&db)?
                .list(state, limit)
                .map_err(|e| Fatal(e.to_string()))?
            {
                print(&serde_json::to_value(&e)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Resume { db, key } => {
            open(&db)?.resume(&key).map_err(|e| Fatal(e.to_string()))?;
            print(&json!({"resumed": key}))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A destination of the `--destinations` file: `{"pixel_id": "123" or 123, "token_env":
/// "NAME"}`, the token read from the environment variable NAME.
fn destination(d: &Value) -> Result<Destination, String> {
    let pixel = match &d["pixel_id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return Err("\"pixel_id\" must be the pixel's id (a string or a number)".into()),
    };
    let name = d["token_env"]
        .as_str()
        .ok_or("\"token_env\" must name the environment variable that holds the token")?;
    // Never echoed unless it looks like a variable's name: a token pasted here by mistake
    // must not reach a log.
    // (Meta's tokens are far longer than 64 characters.)
    let is_name = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if !is_name {
        return Err(
            "\"token_env\" must be the name of an environment variable (letters, \
                    digits, _; at most 64), not the token itself"
                .into(),
        );
    }
    let token = std::env::var(name)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            format!("the environment variable {name} is not set (or empty, or not UTF-8)")
        })?;
    Destination::new(pixel, token).map_err(|e| e.to_string())
}
