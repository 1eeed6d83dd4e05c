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
    /// Send due events; prints what happened. Exits 1 when an event failed or expired, or
    /// when events wait for a destination that cannot be used or is paused (each named on
    /// stderr, with why).
    /// Ctrl-C (or SIGTERM) stops it between requests, ends a retry wait, and exits 130 after
    /// the report; the events not delivered stay pending. A second one stops it at once.
    Flush {
        /// The outbox file.
        db: String,
        /// `{"key": {"pixel_id": "…", "token_env": "ENV_VAR"}}`: the token is read from the
        /// environment variable named; optional `"test_event_code"` and `"app_secret_env"`
        /// (the variable holding the app secret, for appsecret_proof).
        #[arg(long)]
        destinations: String,
        /// The platform's partner_agent, e.g. plmyplatform-1.2-3.4.
        #[arg(long)]
        partner_agent: Option<String>,
        /// Graph API base URL (https, or http to 127.0.0.1 or [::1]).
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
    /// Lift the pause (circuit breaker) or the throttle of a destination; exits 1 when it had
    /// neither (a mistyped key).
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

/// The outbox at `db`, which must exist: only `enqueue` creates one (a mistyped path would
/// otherwise show an empty outbox, and leave a stray file).
fn open_existing(db: &str) -> Result<Outbox, Fatal> {
    if !std::path::Path::new(db).exists() {
        return Err(Fatal(format!(
            "{db}: no outbox there (`freight outbox enqueue` creates one)"
        )));
    }
    open(db)
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
            let mut cut_at = None;
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
                        if why.ends {
                            cut_at = Some(item.line);
                        }
                        say!("{} [{}]", why.msg, why.kind);
                    }
                }
            }
            flush_batch(&mut batch, &mut lines)?;
            print(&json!({"stored": stored, "duplicates": duplicates,
                          "rejected": rejected + unreadable, "skipped": skipped,
                          "input_cut_at_line": cut_at}))?;
            // As `send`: events never read fail the run; rejected ones are the input's and
            // are named above.
            if let Some(line) = cut_at {
                say!("freight: the input could not be read past line {line}: what follows it was not stored");
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Flush {
            db,
            destinations,
            graph_url,
            api_version,
            partner_agent,
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
                partner_agent,
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
            let outbox = open_existing(&db)?;
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
            if r.expired > 0 {
                say!(
                    "freight: {} events expired unsent (Meta's window for them closed): \
                     `freight outbox list {db} --state expired` shows them",
                    r.expired
                );
            }
            // Paused now or by an earlier flush: its events wait until it is resumed. (Only
            // this file's destinations: another worker may serve the others.)
            let mut paused = outbox.stats(now).map_err(|e| Fatal(e.to_string()))?.paused;
            paused.retain(|(key, _, _)| table.contains_key(key));
            for (key, reason, until) in &paused {
                say!(
                    "freight: destination {key:?} is paused until {until} (Unix time): {reason}; \
                     its events wait. Fix its credentials, then `freight outbox resume {db} \
                     --key {key}`"
                );
            }
            if r.interrupted {
                return Ok(ExitCode::from(INTERRUPTED_EXIT));
            }
            // Events that stay pending for want of a usable destination fail the run, as
            // failed and expired ones and a storage error do: a scheduler must notice.
            Ok(
                if r.failed > 0
                    || r.expired > 0
                    || !r.unresolved.is_empty()
                    || !paused.is_empty()
                    || r.stopped.is_some()
                {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                },
            )
        }
        OutboxCommand::Stats { db } => {
            let s = open_existing(&db)?
                .stats(now)
                .map_err(|e| Fatal(e.to_string()))?;
            print(&serde_json::to_value(&s)?)?;
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Retry { db, key, expired } => {
            let n = open_existing(&db)?
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
            for e in open_existing(&db)?
                .list(state, limit)
                .map_err(|e| Fatal(e.to_string()))?
            {
                print(&serde_json::to_value(&e)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Resume { db, key } => {
            let resumed = open_existing(&db)?
                .resume(&key)
                .map_err(|e| Fatal(e.to_string()))?;
            if !resumed {
                say!("freight: destination {key:?} is neither paused nor throttled: nothing to resume");
                return Ok(ExitCode::FAILURE);
            }
            print(&json!({"resumed": key}))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A destination of the `--destinations` file: `{"pixel_id": "123" or 123, "token_env":
/// "NAME"}`, the token read from the environment variable NAME.
fn destination(d: &Value) -> Result<Destination, String> {
    const KEYS: [&str; 4] = ["pixel_id", "token_env", "test_event_code", "app_secret_env"];
    let Some(entry) = d.as_object() else {
        return Err(format!("must be an object of {}", KEYS.join(", ")));
    };
    // A setting misspelled or not supported would otherwise be dropped without a word (a
    // test code ignored sends test events as real ones). Keys are named, never values.
    if let Some(unknown) = entry.keys().find(|k| !KEYS.contains(&k.as_str())) {
        // Named only when it looks like a setting's name: a token pasted as a key must not
        // reach a log.
        let named = if is_name(unknown) {
            format!("{unknown:?}")
        } else {
            "(not shown: not a setting's name)".into()
        };
        return Err(format!(
            "unknown setting {named} (known: {})",
            KEYS.join(", ")
        ));
    }
    let pixel = match &d["pixel_id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return Err("\"pixel_id\" must be the pixel's id (a string or a number)".into()),
    };
    let token = secret_from_env(d, "token_env", "the token")?;
    let mut dest = Destination::new(pixel, token).map_err(|e| e.to_string())?;
    match &d["test_event_code"] {
        Value::Null => {}
        Value::String(code) if !code.trim().is_empty() => {
            dest = dest.with_test_event_code(code.clone());
        }
        _ => return Err("\"test_event_code\" must be the code from Events Manager".into()),
    }
    if !d["app_secret_env"].is_null() {
        let secret = secret_from_env(d, "app_secret_env", "the app secret")?;
        dest = dest.with_app_secret(secret).map_err(|e| e.to_string())?;
    }
    Ok(dest)
}

/// Letters, digits and `_`, not starting with a digit, at most 64 (Meta's tokens are far
/// longer): a name that can be shown.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

/// The secret in the environment variable that the entry's `key` names.
fn secret_from_env(d: &Value, key: &str, what: &str) -> Result<String, String> {
    let name = d[key]
        .as_str()
        .ok_or_else(|| format!("{key:?} must name the environment variable that holds {what}"))?;
    // Never echoed unless it looks like a variable's name: a secret pasted here by mistake
    // must not reach a log.
    if !is_name(name) {
        return Err(format!(
            "{key:?} must be the name of an environment variable (letters, digits, _; at \
             most 64), not {what} itself"
        ));
    }
    std::env::var(name)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            format!("the environment variable {name} is not set (or empty, or not UTF-8)")
        })
}
