//! Reading events: JSON Lines (one CAPI event object per line) or CSV (offline conversions,
//! one event per row, columns named after the CAPI fields).

use freight::ProblemKind;
use serde_json::{json, Map, Value};
use std::io::BufRead;

/// Where each input event came from, for messages.
pub struct Item {
    /// 1-based line (JSONL) or record (CSV) number.
    pub line: usize,
    /// The event, or why it could not be read.
    pub event: Result<Value, Unreadable>,
}

/// Why an input line or record is not an event.
#[derive(Debug)]
pub struct Unreadable {
    /// `invalid_json`, `invalid_csv` or `unreadable_input`.
    pub kind: ProblemKind,
    /// What is wrong, naming the line or record.
    pub msg: String,
    /// Nothing after it is read: the input cannot be read on (a read error, a quoted cell
    /// left open, a CSV header that cannot be used).
    pub ends: bool,
}

fn unreadable(kind: ProblemKind, msg: String) -> Unreadable {
    Unreadable {
        kind,
        msg,
        ends: false,
    }
}

impl Unreadable {
    fn ending(self) -> Unreadable {
        Unreadable { ends: true, ..self }
    }
}

/// The longest line read, in bytes. An event is a few kilobytes (one with 1000 `contents`
/// items about 100 KB): a longer line is refused without being held in memory, so a stream
/// without newlines cannot exhaust it.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One line of a stream, without its newline.
pub enum Line {
    /// The line's bytes.
    Bytes(Vec<u8>),
    /// A line longer than the limit, read past and dropped.
    TooLong,
}

/// The next line of `reader`, at most `max` bytes held; `None` at the end.
pub fn read_line(reader: &mut impl BufRead, max: usize) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let (mut too_long, mut any) = (false, false);
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => None,
                (true, true) => Some(Line::TooLong),
                (true, false) => Some(Line::Bytes(line)),
            });
        }
        any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        if !too_long {
            if line.len() + part.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(part);
            }
        }
        let used = newline.map_or(chunk.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(Some(if too_long {
                Line::TooLong
            } else {
                Line::Bytes(line)
            }));
        }
    }
}

/// An iterator over the events of a JSON Lines stream; blank lines are skipped.
pub fn jsonl(mut reader: impl BufRead) -> impl Iterator<Item = Item> {
    let mut line_no = 0usize;
    let mut broken = false;
    std::iter::from_fn(move || loop {
        if broken {
            return None; // the stream failed: its error was the last item
        }
        let next = read_line(&mut reader, MAX_LINE_BYTES);
        line_no += 1;
        let raw = match next {
            Ok(None) => return None,
            Ok(Some(Line::Bytes(raw))) => raw,
            Ok(Some(Line::TooLong)) => {
                return Some(Item {
                    line: line_no,
                    event: Err(unreadable(
                        ProblemKind::UnreadableInput,
                        format!("line {line_no} is longer than {MAX_LINE_BYTES} bytes: not read"),
                    )),
                })
            }
            Err(e) => {
                broken = true;
                return Some(Item {
                    line: line_no,
                    event: Err(unreadable(
                        ProblemKind::UnreadableInput,
                        format!("cannot read line {line_no}: {e}"),
                    )
                    .ending()),
                });
            }
        };
        // A byte order mark (some editors on Windows write one) is not part of the JSON.
        let raw = match (line_no, raw.strip_prefix(b"\xef\xbb\xbf")) {
            (1, Some(rest)) => rest.to_vec(),
            _ => raw,
        };
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = serde_json::from_slice::<Value>(&raw).map_err(|e| {
            unreadable(
                ProblemKind::InvalidJson,
                format!(
                    "line {line_no} is not valid JSON: {:?} error at column {}",
                    e.classify(),
                    e.column()
                ),
            )
        });
        return Some(Item {
            line: line_no,
            event,
        });
    })
}

use freight::model::USER_DATA_KEYS as USER_DATA;
const EVENT: &[&str] = &[
    "event_name",
    "event_time",
    "action_source",
    "event_id",
    "event_source_url",
    "referrer_url",
    "opt_out",
    "messaging_channel",
    "customer_segmentation",
    "consent",
];
const NUMBERS: &[&str] = &["value", "predicted_ltv", "net_revenue", "num_items"];

/// The longest CSV record read, in bytes (as [`MAX_LINE_BYTES`] for a JSON line). A record
/// may span lines (a quoted cell can hold newlines), so the bound is on the bytes read since
/// the record began: past it, reading stops with an error, as a quoted cell left open would
/// otherwise hold the rest of the stream in memory.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// A reader that refuses to read past `limit`, a byte offset the CSV reader moves on after
/// each record; it also counts what it read and the quotes in it, and notes the end.
struct Bounded<R> {
    inner: R,
    seen: std::rc::Rc<Seen>,
}

/// What [`Bounded`] has read so far.
#[derive(Default)]
struct Seen {
    limit: std::cell::Cell<u64>,
    read: std::cell::Cell<u64>,
    quote: std::cell::Cell<Quote>,
    ended: std::cell::Cell<bool>,
}

/// Where the bytes read so far leave a CSV reader, as to quotes (RFC 4180, as the `csv`
/// crate reads it: a quote opens a quoted cell only at the start of a cell, `""` inside one
/// is a quote, and a quote inside an unquoted cell is text).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
enum Quote {
    /// At the start of a cell.
    #[default]
    CellStart,
    /// Inside an unquoted cell, or after a quoted one closed.
    Unquoted,
    /// Inside a quoted cell.
    Open,
    /// Inside a quoted cell, just after a quote: it closed the cell, or starts `""`.
    Closing,
}

impl Quote {
    fn after(self, bytes: &[u8]) -> Quote {
        bytes.iter().fold(self, |state, &b| match (state, b) {
            (Quote::CellStart, b'"') => Quote::Open,
            (Quote::Open, b'"') => Quote::Closing,
            (Quote::Open, _) => Quote::Open,
            (Quote::Closing, b'"') => Quote::Open,
            (_, b',' | b'\n' | b'\r') => Quote::CellStart,
            _ => Quote::Unquoted,
        })
    }
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let seen = &self.seen;
        let room = seen.limit.get().saturating_sub(seen.read.get());
        if room == 0 {
            return Err(std::io::Error::other(format!(
                "a record longer than {MAX_RECORD_BYTES} bytes (a quoted cell left open?)"
            )));
        }
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        seen.read.set(seen.read.get() + n as u64);
        seen.quote.set(seen.quote.get().after(&buf[..n]));
        if n == 0 && want > 0 {
            seen.ended.set(true);
        }
        Ok(n)
    }
}

/// An iterator over the rows of a CSV stream with a header row. Columns: the event fields
/// (`event_name`, `event_time` as Unix seconds or `YYYY-MM-DD[ T]HH:MM[:SS[.fff]]` with `Z`
/// or an offset (`+02:00`), UTC without one, `consent`, `data_processing_options` (`LDU`) and
/// its country and state codes, …), the `user_data` keys (`em`, `ph`, … — several values
/// separated by `|`; also prefixed `user_data.`), and the customer-information aliases
/// (`email`, `phone`, `first_name`, …), which go to `user_data` for its validation to name the
/// right key; `custom_data` fields (`value`, `currency`, `order_id`, `content_ids` separated by
/// `|`, …); any other column, or one prefixed `custom_data.`, becomes a custom property.
/// Names are matched whatever their case, with spaces or dashes for underscores (`First
/// Name`, `E-mail`). Empty cells are absent.
///
/// Customer information never goes to Meta unhashed by mistake: two columns for one field
/// are a header error, and a cell holding an email address in a column that would make it a
/// custom property rejects its row (name the column `em` to send it hashed, or
/// `custom_data.<name>` to send it as it is).
///
/// A record longer than [`MAX_RECORD_BYTES`], a quoted cell left open until the end of the
/// input, or a read error ends the stream with an error item: a CSV stream cannot be
/// resynchronized on the next record.
pub fn csv(reader: impl std::io::Read) -> impl Iterator<Item = Item> {
    // The CSV reader buffers ahead of the record it parses: the bound leaves room for that.
    const BUFFER: u64 = 1 << 16;
    let seen = std::rc::Rc::new(Seen::default());
    seen.limit.set(MAX_RECORD_BYTES + BUFFER);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .buffer_capacity(BUFFER as usize)
        .from_reader(Bounded {
            inner: reader,
            seen: seen.clone(),
        });
    let headers = rdr.headers().cloned();
    let mut n = 1usize; // the header is record 1
    let mut columns = Vec::new();
    let mut header_error = match &headers {
        Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => Some(unreadable(
            ProblemKind::UnreadableInput,
            format!("cannot read the CSV header: {e}"),
        )),
        Err(e) => Some(unreadable(
            ProblemKind::InvalidCsv,
            format!("cannot read the CSV header: {e}"),
        )),
        // A file that a spreadsheet saved with `;` (as it does in many locales).
        Ok(h) if h.len() == 1 && h.get(0).is_some_and(|c| c.contains(';')) => Some(unreadable(
            ProblemKind::InvalidCsv,
            "the CSV header is one column with ';' in it: the file must be comma-separated \
             (save it with ',' as the separator)"
                .into(),
        )),
        Ok(h) => match columns_of(h) {
            Ok(c) => {
                columns = c;
                None
            }
            Err(msg) => Some(unreadable(ProblemKind::InvalidCsv, msg)),
        },
    };
    let mut record = csv::StringRecord::new();
    let mut broken = false;
    std::iter::from_fn(move || {
        if let Some(e) = header_error.take() {
            broken = true;
            return Some(Item {
                line: 1,
                event: Err(e.ending()),
            });
        }
        if broken {
            return None;
        }
        seen.limit
            .set(rdr.position().byte() + MAX_RECORD_BYTES + BUFFER);
        let read = rdr.read_record(&mut record);
        n += 1;
        // A quote left open takes the rest of the input into one cell: the record ends where
        // the input does, inside a quoted cell. Its text must not go anywhere, nor the rows it
        // swallowed be lost without a word.
        let open_quote = seen.ended.get()
            && rdr.position().byte() == seen.read.get()
            && seen.quote.get() == Quote::Open;
        let event = match read {
            Ok(false) => return None,
            Ok(true) if open_quote => {
                broken = true;
                Err(not_closed(n).ending())
            }
            Err(e) if open_quote && !matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                broken = true;
                Err(not_closed(n).ending())
            }
            Ok(true) => row_to_event(&columns, &record)
                .map_err(|msg| unreadable(ProblemKind::InvalidCsv, format!("row {n} {msg}"))),
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                broken = true;
                Err(unreadable(
                    ProblemKind::UnreadableInput,
                    format!("cannot read row {n}: {e}; the rest is not read"),
                )
                .ending())
            }
            Err(e) => Err(unreadable(
                ProblemKind::InvalidCsv,
                format!("row {n} is not valid CSV: {e}"),
            )),
        };
        Some(Item { line: n, event })
    })
}

fn not_closed(row: usize) -> Unreadable {
    unreadable(
        ProblemKind::InvalidCsv,
        format!(
            "row {row} is not valid CSV: a quoted cell is not closed, so it runs to the end of \
             the input; the rest is not read"
        ),
    )
}

/// Where a CSV column goes.
enum Column {
    /// A `user_data` key (or an alias, for the validation to name the right key).
    User(String),
    EventTime,
    OptOut,
    /// `data_processing_options`, `|`-separated.
    Dpo,
    /// `data_processing_options_country` or `_state`: a number when it is one.
    DpoCode(String),
    /// Another event field.
    Event(String),
    /// A `custom_data` field; `explicit` when the column said `custom_data.`.
    Custom {
        key: String,
        explicit: bool,
    },
    /// No name in the header (a spreadsheet's trailing empty columns): its cells must be
    /// empty.
    Unnamed,
}

/// `First Name`, `firstName`, `FIRST-NAME` → `first_name`: what a column name is matched
/// as. Runs of anything but letters and digits are one `_`; a capital after a small letter or
/// a digit (or ending a run of capitals: `IPAddress`) starts a word.
fn canonical(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_uppercase() && i > 0 && !out.is_empty() && !out.ends_with('_') {
            let before = chars[i - 1];
            let next_small = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if before.is_lowercase()
                || before.is_ascii_digit()
                || (before.is_uppercase() && next_small)
            {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// The known `custom_data` fields (other columns are custom properties, kept as named).
const CUSTOM: &[&str] = &[
    "value",
    "currency",
    "content_ids",
    "content_name",
    "content_category",
    "content_type",
    "num_items",
    "order_id",
    "predicted_ltv",
    "net_revenue",
    "search_string",
    "status",
    "delivery_category",
];

fn column(header: &str) -> Column {
    let trimmed = header.trim();
    if trimmed.is_empty() {
        return Column::Unnamed;
    }
    let lower = trimmed.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("user_data.") {
        return Column::User(canonical(rest));
    }
    if lower.starts_with("custom_data.") {
        let key = trimmed["custom_data.".len()..].trim();
        let known = canonical(key);
        return Column::Custom {
            key: if CUSTOM.contains(&known.as_str()) {
                known
            } else {
                key.to_owned()
            },
            explicit: true,
        };
    }
    let c = canonical(trimmed);
    match c.as_str() {
        _ if USER_DATA.contains(&c.as_str()) || freight::model::user_data_key_for(&c).is_some() => {
            Column::User(c)
        }
        "event_time" => Column::EventTime,
        "opt_out" => Column::OptOut,
        "data_processing_options" => Column::Dpo,
        "data_processing_options_country" | "data_processing_options_state" => Column::DpoCode(c),
        _ if EVENT.contains(&c.as_str()) => Column::Event(c),
        _ if CUSTOM.contains(&c.as_str()) => Column::Custom {
            key: c,
            explicit: false,
        },
        _ => Column::Custom {
            key: trimmed.to_owned(),
            explicit: false,
        },
    }
}

/// The columns of a header; two columns for one field are an error (one would silently
/// overwrite the other).
fn columns_of(headers: &csv::StringRecord) -> Result<Vec<Column>, String> {
    let columns: Vec<Column> = headers.iter().map(column).collect();
    let mut filled: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, c) in columns.iter().enumerate() {
        let target = match c {
            Column::User(k) => format!("user_data.{k}"),
            Column::EventTime => "event_time".into(),
            Column::OptOut => "opt_out".into(),
            Column::Dpo => "data_processing_options".into(),
            Column::DpoCode(k) | Column::Event(k) => k.clone(),
            Column::Custom { key, .. } => format!("custom_data.{key}"),
            Column::Unnamed => continue,
        };
        if let Some(first) = filled.insert(target.clone(), i) {
            return Err(format!(
                "the CSV header has two columns for {target}: {} ({:?}) and {} ({:?}); keep one",
                first + 1,
                headers.get(first).unwrap_or_default(),
                i + 1,
                headers.get(i).unwrap_or_default(),
            ));
        }
    }
    Ok(columns)
}

/// Holds an email address (`jane@example.com`, `Jane <jane@example.com>`): what a custom
/// property must not hold unless asked for.
fn holds_email(cell: &str) -> bool {
    cell.split(|c: char| c.is_whitespace() || "<>()[]{},;:\"'".contains(c))
        .any(|word| match word.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        })
}

fn row_to_event(columns: &[Column], row: &csv::StringRecord) -> Result<Value, String> {
    let mut event = Map::new();
    let mut user = Map::new();
    let mut custom = Map::new();
    let list = |cell: &str| -> Vec<Value> { cell.split('|').map(|v| json!(v.trim())).collect() };
    for (i, (column, cell)) in columns.iter().zip(row.iter()).enumerate() {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        match column {
            Column::User(key) => {
                let mut values = list(cell);
                let value = if values.len() == 1 {
                    values.remove(0)
                } else {
                    Value::Array(values)
                };
                user.insert(key.clone(), value);
            }
            Column::EventTime => {
                event.insert("event_time".into(), parse_time(cell));
            }
            Column::OptOut => {
                event.insert(
                    "opt_out".into(),
                    json!(matches!(cell, "true" | "1" | "yes")),
                );
            }
            // `LDU` (or `[]`'s empty cell, skipped above); several values separated by `|`.
            Column::Dpo => {
                event.insert("data_processing_options".into(), Value::Array(list(cell)));
            }
            // Meta's codes are numbers (1 for the US, 1000 for California); anything else is
            // passed on as text, for the validation to name.
            Column::DpoCode(key) => {
                let code = cell.parse::<i64>().map_or(json!(cell), |n| json!(n));
                event.insert(key.clone(), code);
            }
            Column::Event(key) => {
                event.insert(key.clone(), json!(cell));
            }
            Column::Unnamed => {
                return Err(format!(
                    "has a value in column {}, which has no name in the header",
                    i + 1
                ));
            }
            Column::Custom { key, explicit } => {
                if !explicit && holds_email(cell) {
                    return Err(format!(
                        "has an email address in column {} ({key:?}), which would go to Meta \
                         unhashed as a custom property: name the column em to send it hashed, \
                         or custom_data.{key} to send it as it is",
                        i + 1
                    ));
                }
                let value = if NUMBERS.contains(&key.as_str()) {
                    cell.parse::<f64>().map_or(json!(cell), |n| json!(n))
                } else if key == "content_ids" {
                    Value::Array(list(cell))
                } else {
                    json!(cell)
                };
                custom.insert(key.clone(), value);
            }
        }
    }
    if !user.is_empty() {
        event.insert("user_data".into(), Value::Object(user));
    }
    if !custom.is_empty() {
        event.insert("custom_data".into(), Value::Object(custom));
    }
    Ok(Value::Object(event))
}

/// Unix seconds, or an ISO-8601 date-time (`YYYY-MM-DD`, then `T` or a space and
/// `HH:MM[:SS[.fff]]`, then `Z`, `±HH:MM`, `±HHMM`, `±HH` or nothing for UTC); anything else
/// is passed on as text (and rejected by validation with the field named).
fn parse_time(cell: &str) -> Value {
    if let Ok(n) = cell.parse::<i64>() {
        return json!(n);
    }
    iso_time(cell).map_or_else(|| json!(cell), |t| json!(t))
}

fn iso_time(cell: &str) -> Option<i64> {
    fn num(s: &str, digits: usize) -> Option<i64> {
        (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    }
    let (date, rest) = match cell.split_once(['T', 't', ' ']) {
        Some((d, r)) => (d, Some(r)),
        None => (cell, None),
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some()
        || !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=days_in_month(y, m)).contains(&day)
    {
        return None;
    }
    let mut seconds = days_from_civil(y, m, day) * 86_400;
    let Some(rest) = rest else {
        return Some(seconds);
    };
    // The zone: Z, ±HH:MM, ±HHMM or none (UTC).
    let (time, offset) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else if let Some(at) = rest.rfind(['+', '-']) {
        let (t, zone) = rest.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let zone = &zone[1..];
        let (hh, mm) = match zone.split_once(':') {
            Some((h, m)) => (num(h, 2)?, num(m, 2)?),
            None if zone.len() == 4 && zone.is_ascii() => {
                (num(&zone[..2], 2)?, num(&zone[2..], 2)?)
            }
            None => (num(zone, 2)?, 0),
        };
        if hh > 14 || mm > 59 {
            return None;
        }
        (t, sign * (hh * 3600 + mm * 60))
    } else {
        (rest, 0)
    };
    let mut t = time.split(':');
    let (hh, mm) = (num(t.next()?, 2)?, num(t.next()?, 2)?);
    let ss = match t.next() {
        None => 0,
        // Fractions of a second are dropped: Meta takes whole seconds.
        Some(s) => {
            let (whole, fraction) = s.split_once('.').unwrap_or((s, "0"));
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            num(whole, 2)?
        }
    };
    if t.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    seconds += hh * 3600 + mm * 60 + ss - offset;
    Some(seconds)
}

/// The days of month `m` (1–12) of year `y`.
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_events() {
        let text = "event_name,event_time,action_source,em,ph,value,currency,order_id,store\n\
                    Purchase,2026-11-20T14:03:00Z,physical_store,a@b.co|c@d.co,,99.5,EUR,A1,Lyon\n\
                    Purchase,1795392000,physical_store,x@y.co,+33 6 12,,EUR,A2,\n";
        let items: Vec<Item> = csv(text.as_bytes()).collect();
        assert_eq!(items.len(), 2);
        let e = items[0].event.as_ref().unwrap();
        assert_eq!(e["event_time"], 1_795_183_380);
        assert_eq!(e["user_data"]["em"], json!(["a@b.co", "c@d.co"]));
        assert!(e["user_data"].get("ph").is_none());
        assert_eq!(e["custom_data"]["value"], 99.5);
        assert_eq!(e["custom_data"]["store"], "Lyon");
        assert_eq!(items[1].line, 3);
        assert_eq!(
            items[1].event.as_ref().unwrap()["event_time"],
            1_795_392_000
        );
    }

    #[test]
    fn a_quote_left_open_stops_the_reading_and_hides_nothing() {
        let text = "event_name,order_id,em\nLead,\"oops\nLead,o1,a1@example.com\n\
                    Lead,o2,a2@example.com\n";
        let items: Vec<Item> = csv(text.as_bytes()).collect();
        assert_eq!(items.len(), 1, "the swallowed rows are not events");
        let e = items[0].event.as_ref().unwrap_err();
        assert_eq!(e.kind, ProblemKind::InvalidCsv);
        assert!(e.ends, "nothing after it is read");
        assert!(e
            .msg
            .starts_with("row 2 is not valid CSV: a quoted cell is not closed"));
        assert!(!e.msg.contains("a1@"), "{}", e.msg);
        // Open in the last column, the record has its number of cells.
        let text = "event_name,em,order_id\nLead,a@b.co,\"oops\nLead,a1@example.com,o1\n";
        let items: Vec<Item> = csv(text.as_bytes()).collect();
        assert_eq!(items.len(), 1);
        let e = items[0].event.as_ref().unwrap_err();
        assert!(e.msg.contains("a quoted cell is not closed"), "{}", e.msg);
        // A stray quote further on closes it, as CSV reads it: the rows between become one
        // cell, which must not carry their customer information to Meta in clear.
        let text = "event_name,notes\nLead,\"oops\nLead,a1@example.com 12\" pizza\nLead,x\n";
        let items: Vec<Item> = csv(text.as_bytes()).collect();
        assert_eq!(items.len(), 2);
        let e = items[0].event.as_ref().unwrap_err();
        assert!(e.msg.contains("has an email address"), "{}", e.msg);
        assert!(!e.msg.contains("a1@"), "{}", e.msg);
        // A cell that spans lines and is closed is fine, last or not, whatever quotes the
        // unquoted cells hold.
        for (text, last) in [
            ("event_name,notes\nLead,\"one\ntwo\"\n", "one\ntwo"),
            ("event_name,notes\nLead,\"one\ntwo\"", "one\ntwo"),
            (
                "event_name,notes\nLead,\"one\ntwo\"\nLead,\"x\"\"y\"\n",
                "x\"y",
            ),
            (
                "event_name,notes\nLead,12\" pizza\nLead,\"one\ntwo\"",
                "one\ntwo",
            ),
            (
                "event_name,notes\r\nLead,\"a,\"\"b\"\"\"\r\nLead,\"one\r\ntwo\"",
                "one\r\ntwo",
            ),
        ] {
            let items: Vec<Item> = csv(text.as_bytes()).collect();
            assert!(items.iter().all(|i| i.event.is_ok()), "{text:?}");
            let e = items.last().unwrap().event.as_ref().unwrap();
            assert_eq!(e["custom_data"]["notes"], last, "{text:?}");
        }
    }

    #[test]
    fn csv_names_match_whatever_their_case_and_separators() {
        let text = "Event Name,Event-Time,Action Source,Email,First Name,E-mail,\
                    Mobile,User_Data.PH,Value,Currency,Order Notes\n\
                    Purchase,1795392000,website,a@b.co,Jane,c@d.co,+1 650 555 1234,\
                    +1 650 555 9999,12.5,EUR,ring twice\n";
        let items: Vec<Item> = csv(text.as_bytes()).collect();
        let e = items[0].event.as_ref().unwrap();
        assert_eq!(e["event_name"], "Purchase");
        assert_eq!(e["event_time"], 1_795_392_000);
        assert_eq!(e["action_source"], "website");
        let user = e["user_data"].as_object().unwrap();
        let keys: Vec<&str> = user.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["email", "first_name", "e_mail", "mobile", "ph"],
            "customer information goes to user_data (its validation names em, fn, ph)"
        );
        assert_eq!(e["custom_data"]["value"], 12.5);
        assert_eq!(e["custom_data"]["currency"], "EUR");
        assert_eq!(e["custom_data"]["Order Notes"], "ring twice");
    }

    #[test]
    fn names_are_matched_as_words() {
        for (name, matched) in [
            ("First Name", "first_name"),
            ("firstName", "first_name"),
            ("FIRST-NAME", "first_name"),
            ("First\u{a0}Name", "first_name"),
            ("first  name", "first_name"),
            ("PhoneNumber", "phone_number"),
            ("IPAddress", "ip_address"),
            ("DateOfBirth", "date_of_birth"),
            ("PostalCode", "postal_code"),
            ("E-mail", "e_mail"),
            ("ExternalID", "external_id"),
            ("EM", "em"),
            (" zip code ", "zip_code"),
        ] {
            assert_eq!(canonical(name), matched, "{name:?}");
        }
        for name in [
            "PhoneNumber",
            "IPAddress",
            "PostalCode",
            "DateOfBirth",
            "E-mail",
        ] {
            assert!(matches!(column(name), Column::User(_)), "{name}");
        }
    }

    #[test]
    fn blank_header_names_are_empty_columns() {
        let text = "event_name,em,,\nLead,a@b.co,,\nLead,c@d.co,,x\n";
        let items: Vec<Item> = csv(text.as_bytes()).collect();
        assert!(items[0].event.is_ok());
        let e = items[1].event.as_ref().unwrap_err();
        assert_eq!(
            e.msg,
            "row 3 has a value in column 4, which has no name in the header"
        );
    }

    #[test]
    fn two_columns_for_one_field_are_a_header_error() {
        for header in [
            "em,user_data.em",
            "value,custom_data.Value",
            "Email,email",
            "event_name,Event Name",
        ] {
            let text = format!("{header}\na,b\n");
            let items: Vec<Item> = csv(text.as_bytes()).collect();
            assert_eq!(items.len(), 1, "{header}");
            let e = items[0].event.as_ref().unwrap_err();
            assert_eq!(e.kind, ProblemKind::InvalidCsv);
            assert!(e.msg.contains("two columns for"), "{}", e.msg);
        }
    }

    #[test]
    fn an_email_in_a_custom_column_rejects_its_row() {
        let text = "event_name,contact,custom_data.cc\nLead,jane@example.com,\n\
                    Lead,,x@example.com\nLead,not-an-address@,\n\
                    Lead,Jane <jane@example.com>,\n";
        let items: Vec<Item> = csv(text.as_bytes()).collect();
        let e = items[0].event.as_ref().unwrap_err();
        assert_eq!(e.kind, ProblemKind::InvalidCsv);
        assert!(
            e.msg
                .starts_with("row 2 has an email address in column 2 (\"contact\")"),
            "{}",
            e.msg
        );
        assert!(!e.msg.contains("jane"), "{}", e.msg);
        let asked = items[1].event.as_ref().unwrap();
        assert_eq!(
            asked["custom_data"]["cc"], "x@example.com",
            "asked for by name"
        );
        assert!(items[2].event.is_ok());
        assert!(items[3].event.is_err(), "inside other text too");
    }

    #[test]
    fn csv_times_keep_their_offset() {
        let ten_utc = 1_795_341_600; // 2026-11-22T10:00:00Z
        assert_eq!(parse_time("2026-11-22T10:00:00Z"), json!(ten_utc));
        assert_eq!(parse_time("2026-11-22T10:00:00"), json!(ten_utc));
        assert_eq!(parse_time("2026-11-22 10:00"), json!(ten_utc));
        assert_eq!(parse_time("2026-11-22T10:00:00.250Z"), json!(ten_utc));
        assert_eq!(
            parse_time("2026-11-22T10:00:00-05:00"),
            json!(ten_utc + 5 * 3600)
        );
        assert_eq!(
            parse_time("2026-11-22T10:00:00+0930"),
            json!(ten_utc - 9 * 3600 - 1800)
        );
        assert_eq!(parse_time("2026-11-22t10:00:00z"), json!(ten_utc));
        assert_eq!(parse_time("2026-11-22T10:00:00+01"), json!(ten_utc - 3600));
        for bad in [
            "2026-11-22 10:00:00 PM",
            "2026-11-22T10:00:00:99",
            "2026-11-22T10:00:00+25:00",
            "2026-11-22T10:00:00+5",
            "2026-11-22T10:00:00+1\u{e9}2",
            "2026-11-22T10:00:00.Z",
            "2026-11-22T1:00",
            "26-11-22",
        ] {
            assert_eq!(parse_time(bad), json!(bad), "{bad}");
        }
    }

    #[test]
    fn csv_times_are_real_dates() {
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), json!(1_709_164_800));
        assert_eq!(parse_time("2000-02-29"), json!(951_782_400));
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-04-31",
            "2026-13-01",
            "2026-11-20T24:00",
        ] {
            assert_eq!(parse_time(bad), json!(bad), "{bad}");
        }
        assert_eq!(parse_time("2026-12-31 23:59:59"), json!(1_798_761_599));
    }

    #[test]
    fn csv_columns_go_where_the_event_takes_them() {
        let text = "event_name,consent,data_processing_options,data_processing_options_country,\
                    data_processing_options_state,email,user_data.ph,custom_data.email,colour\n\
                    Lead,denied,LDU,1,1000,jane@example.com,+1 650 555 1234,x@y.z,red\n";
        let items: Vec<Item> = csv(text.as_bytes()).collect();
        let e = items[0].event.as_ref().unwrap();
        assert_eq!(
            e["consent"], "denied",
            "consent is the event's, not a custom property"
        );
        assert_eq!(e["data_processing_options"], json!(["LDU"]));
        assert_eq!(e["data_processing_options_country"], 1);
        assert_eq!(e["data_processing_options_state"], 1000);
        // Customer information never lands in custom_data, which Meta gets unhashed.
        assert_eq!(e["user_data"]["email"], "jane@example.com");
        assert_eq!(e["user_data"]["ph"], "+1 650 555 1234");
        assert_eq!(e["custom_data"], json!({"email": "x@y.z", "colour": "red"}));
    }

    #[test]
    fn a_semicolon_separated_file_is_named_as_such() {
        let items: Vec<Item> = csv(&b"event_name;em\nPurchase;a@b.co\n"[..]).collect();
        assert_eq!(items.len(), 1);
        let err = items[0].event.as_ref().unwrap_err();
        assert!(err.msg.contains("comma-separated"), "{err:?}");
        assert_eq!(err.kind, ProblemKind::InvalidCsv);
    }

    #[test]
    fn csv_records_are_bounded() {
        // A quoted cell 3 MiB long (left open, it would hold the rest of any stream).
        let long = format!(
            "event_name,em\nPurchase,a@b.co\nPurchase,\"{}\"\nPurchase,c@d.co\n",
            "x".repeat(3 << 20)
        );
        let items: Vec<Item> = csv(long.as_bytes()).collect();
        assert_eq!(items.len(), 2, "the stream ends after the error");
        assert!(items[0].event.is_ok());
        let err = items[1].event.as_ref().unwrap_err();
        assert!(
            err.msg.starts_with("cannot read row 3: ") && err.msg.contains("longer than"),
            "{err:?}"
        );
        assert_eq!(err.kind, ProblemKind::UnreadableInput);
        // Records just under the bound, one after another, are all read.
        let cell = "y".repeat(usize::try_from(MAX_RECORD_BYTES).unwrap() - 100);
        let text = format!("event_name,store\nPurchase,{cell}\nPurchase,{cell}\nPurchase,z\n");
        let items: Vec<Item> = csv(text.as_bytes()).collect();
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|i| i.event.is_ok()));
        assert_eq!(
            items[2].event.as_ref().unwrap()["custom_data"]["store"],
            "z"
        );
    }

    #[test]
    fn jsonl_reads_past_a_byte_order_mark() {
        let items: Vec<Item> =
            jsonl(&b"\xef\xbb\xbf{\"a\":1}\n\xef\xbb\xbf{\"a\":2}\n"[..]).collect();
        assert_eq!(items[0].event.as_ref().unwrap()["a"], 1);
        assert!(
            items[1].event.is_err(),
            "only the stream's first bytes may be a mark"
        );
    }

    #[test]
    fn jsonl_skips_blank_lines_and_reports_bad_ones() {
        let items: Vec<Item> = jsonl(&b"{\"a\":1}\n\n{bad\n"[..]).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].line, 3);
        let err = items[1].event.as_ref().unwrap_err();
        assert!(err.msg.contains("line 3"), "{err:?}");
        assert_eq!(err.kind, ProblemKind::InvalidJson);
    }

    fn lines(input: &[u8], max: usize, buffer: usize) -> Vec<Option<Vec<u8>>> {
        let mut r = std::io::BufReader::with_capacity(buffer, input);
        let mut out = Vec::new();
        while let Some(line) = read_line(&mut r, max).unwrap() {
            out.push(match line {
                Line::Bytes(b) => Some(b),
                Line::TooLong => None,
            });
        }
        out
    }

    #[test]
    fn lines_are_bounded_and_the_stream_goes_on() {
        for buffer in [1, 3, 64] {
            assert_eq!(
                lines(b"ab\n\nabcdef\nxyz", 4, buffer),
                vec![
                    Some(b"ab".to_vec()),
                    Some(vec![]),
                    None,
                    Some(b"xyz".to_vec())
                ],
                "buffer {buffer}"
            );
            assert_eq!(lines(b"abcd\n", 4, buffer), vec![Some(b"abcd".to_vec())]);
            assert_eq!(lines(b"abcde", 4, buffer), vec![None]);
            assert_eq!(lines(b"", 4, buffer), Vec::<Option<Vec<u8>>>::new());
        }
        let items: Vec<Item> = jsonl(&b"{\"a\":1}\n\xff\n"[..]).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].event.is_ok());
        let err = items[1].event.as_ref().unwrap_err();
        assert!(err.msg.starts_with("line 2 is not valid JSON"), "{err:?}");
        assert_eq!(err.kind, ProblemKind::InvalidJson);
    }
}
