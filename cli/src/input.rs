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
}

fn unreadable(kind: ProblemKind, msg: String) -> Unreadable {
    Unreadable { kind, msg }
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
                    )),
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
/// each record.
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.limit.get().saturating_sub(self.read);
        if room == 0 {
            return Err(std::io::Error::other(format!(
                "a record longer than {MAX_RECORD_BYTES} bytes (a quoted cell left open?)"
            )));
        }
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        Ok(n)
    }
}

/// An iterator over the rows of a CSV stream with a header row. Columns: the event fields
/// (`event_name`, `event_time` as Unix seconds or `YYYY-MM-DD[ T]HH:MM:SS[Z]` UTC, `consent`,
/// `data_processing_options` (`LDU`) and its country and state codes, …), the `user_data`
/// keys (`em`, `ph`, … — several values separated by `|`; also prefixed `user_data.`), and the
/// customer-information aliases (`email`, `phone`, `first_name`, …), which go to `user_data`
/// for its validation to name the right key; `custom_data` fields (`value`, `currency`,
/// `order_id`, `content_ids` separated by `|`, …); any other column, or one prefixed
/// `custom_data.`, becomes a custom property. Empty cells are absent.
///
/// A record longer than [`MAX_RECORD_BYTES`] or a read error ends the stream with an error
/// item: a CSV stream cannot be resynchronized on the next record.
pub fn csv(reader: impl std::io::Read) -> impl Iterator<Item = Item> {
    // The CSV reader buffers ahead of the record it parses: the bound leaves room for that.
    const BUFFER: u64 = 1 << 16;
    let limit = std::rc::Rc::new(std::cell::Cell::new(MAX_RECORD_BYTES + BUFFER));
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .buffer_capacity(BUFFER as usize)
        .from_reader(Bounded {
            inner: reader,
            read: 0,
            limit: limit.clone(),
        });
    let headers = rdr.headers().cloned();
    let mut n = 1usize; // the header is record 1
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
        Ok(_) => None,
    };
    let mut record = csv::StringRecord::new();
    let mut broken = false;
    std::iter::from_fn(move || {
        if let Some(e) = header_error.take() {
            return Some(Item {
                line: 1,
                event: Err(e),
            });
        }
        let headers = headers.as_ref().ok()?;
        if broken || headers.len() == 1 && headers.get(0).is_some_and(|c| c.contains(';')) {
            return None;
        }
        limit.set(rdr.position().byte() + MAX_RECORD_BYTES + BUFFER);
        let read = rdr.read_record(&mut record);
        n += 1;
        let event = match read {
            Ok(false) => return None,
            Ok(true) => Ok(row_to_event(headers, &record)),
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                broken = true;
                Err(unreadable(
                    ProblemKind::UnreadableInput,
                    format!("cannot read row {n}: {e}; the rest is not read"),
                ))
            }
            Err(e) => Err(unreadable(
                ProblemKind::InvalidCsv,
                format!("row {n} is not valid CSV: {e}"),
            )),
        };
        Some(Item { line: n, event })
    })
}

fn row_to_event(headers: &csv::StringRecord, row: &csv::StringRecord) -> Value {
    let mut event = Map::new();
    let mut user = Map::new();
    let mut custom = Map::new();
    for (name, cell) in headers.iter().zip(row.iter()) {
        let (name, cell) = (name.trim(), cell.trim());
        if cell.is_empty() {
            continue;
        }
        let user_column = name.strip_prefix("user_data.");
        let name = user_column.unwrap_or(name);
        // Customer information under another name (`email`) goes to `user_data` too, whose
        // validation names the right key, never to `custom_data`, which Meta gets unhashed.
        // (`custom_data.email` is a custom property, as asked.)
        let alias = freight::model::user_data_key_for(name).is_some();
        if user_column.is_some() || USER_DATA.contains(&name) || alias {
            let values: Vec<Value> = cell.split('|').map(|v| json!(v.trim())).collect();
            user.insert(
                name.to_owned(),
                if values.len() == 1 {
                    values[0].clone()
                } else {
                    Value::Array(values)
                },
            );
        } else if name == "event_time" {
            event.insert(name.to_owned(), parse_time(cell));
        } else if name == "opt_out" {
            event.insert(name.to_owned(), json!(matches!(cell, "true" | "1" | "yes")));
        } else if name == "data_processing_options" {
            // `LDU` (or `[]`'s empty cell, skipped above); several values separated by `|`.
            let options: Vec<Value> = cell.split('|').map(|v| json!(v.trim())).collect();
            event.insert(name.to_owned(), Value::Array(options));
        } else if name == "data_processing_options_country"
            || name == "data_processing_options_state"
        {
            // Meta's codes are numbers (1 for the US, 1000 for California); anything else is
            // passed on as text, for the validation to name.
            let code = cell.parse::<i64>().map_or(json!(cell), |n| json!(n));
            event.insert(name.to_owned(), code);
        } else if EVENT.contains(&name) {
            event.insert(name.to_owned(), json!(cell));
        } else {
            let key = name.strip_prefix("custom_data.").unwrap_or(name);
            let value = if NUMBERS.contains(&key) {
                cell.parse::<f64>().map_or(json!(cell), |n| json!(n))
            } else if key == "content_ids" {
                Value::Array(cell.split('|').map(|v| json!(v.trim())).collect())
            } else {
                json!(cell)
            };
            custom.insert(key.to_owned(), value);
        }
    }
    if !user.is_empty() {
        event.insert("user_data".into(), Value::Object(user));
    }
    if !custom.is_empty() {
        event.insert("custom_data".into(), Value::Object(custom));
    }
    Value::Object(event)
}

/// Unix seconds, or an ISO-8601 UTC date-time; anything else is passed on as text (and
/// rejected by validation with the field named).
fn parse_time(cell: &str) -> Value {
    if let Ok(n) = cell.parse::<i64>() {
        return json!(n);
    }
    let s = cell.trim_end_matches('Z');
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
    let d: Vec<i64> = date.split('-').filter_map(|p| p.parse().ok()).collect();
    let t: Vec<i64> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    match (d.as_slice(), t.as_slice()) {
        ([y, m, day], [hh, mm, rest @ ..])
            if (1970..=9999).contains(y)
                && (1..=12).contains(m)
                && (1..=days_in_month(*y, *m)).contains(day)
                && (0..24).contains(hh)
                && (0..60).contains(mm)
                && rest.first().is_none_or(|s| (0..61).contains(s)) =>
        {
            let ss = rest.first().copied().unwrap_or(0);
            json!(days_from_civil(*y, *m, *day) * 86_400 + hh * 3600 + mm * 60 + ss)
        }
        _ => json!(cell),
    }
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
