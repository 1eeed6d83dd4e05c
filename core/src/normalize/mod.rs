//! Stage 2 of the pipeline: normalize customer information (`user_data`) as Meta requires,
//! before it is hashed.
//!
//! The rules are SPEC §3: Meta's documented rules, taking the best of Meta's own
//! implementations and fixing their bugs. Every difference from the official SDKs' unit-test
//! vectors is listed, with its reason, in `docs/normalization.md`, and a test enforces that
//! list. Error messages never contain the input: they name what is wrong and how to fix it.
//!
//! ```
//! use freight::normalize::{normalize, Field, NormalizeOptions};
//! let opts = NormalizeOptions { default_country: Some("gb".into()), ..Default::default() };
//! let n = normalize(Field::Ph, "020 7946 0958", &opts).unwrap().unwrap();
//! assert_eq!(n.value, "442079460958");
//! assert_eq!(n.to_wire(Field::Ph, &opts).len(), 64);
//! ```

mod calling_codes;
mod tables;

use crate::hash;
use crate::validate::ProblemKind;
use serde::{Deserialize, Serialize};
use std::fmt;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// A customer-information key that Freight normalizes and (by default) hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Email.
    Em,
    /// Phone number.
    Ph,
    /// First name.
    Fn,
    /// Last name.
    Ln,
    /// Gender (`f`/`m`).
    Ge,
    /// Date of birth (`YYYYMMDD`).
    Db,
    /// City.
    Ct,
    /// State or province.
    St,
    /// Postal code.
    Zp,
    /// Country (ISO 3166-1 alpha-2).
    Country,
    /// The advertiser's own id of the person.
    ExternalId,
    /// First 5 characters of the first name.
    F5first,
    /// First 5 characters of the last name.
    F5last,
    /// First initial.
    Fi,
    /// Day of birth (`DD`).
    Dobd,
    /// Month of birth (`MM`).
    Dobm,
    /// Year of birth (`YYYY`).
    Doby,
}

impl Field {
    /// Every field, in wire order.
    pub const ALL: &'static [Field] = &[
        Field::Em,
        Field::Ph,
        Field::Fn,
        Field::Ln,
        Field::Ge,
        Field::Db,
        Field::Ct,
        Field::St,
        Field::Zp,
        Field::Country,
        Field::ExternalId,
        Field::F5first,
        Field::F5last,
        Field::Fi,
        Field::Dobd,
        Field::Dobm,
        Field::Doby,
    ];

    /// The `user_data` key, e.g. `em`.
    pub fn key(self) -> &'static str {
        match self {
            Field::Em => "em",
            Field::Ph => "ph",
            Field::Fn => "fn",
            Field::Ln => "ln",
            Field::Ge => "ge",
            Field::Db => "db",
            Field::Ct => "ct",
            Field::St => "st",
            Field::Zp => "zp",
            Field::Country => "country",
            Field::ExternalId => "external_id",
            Field::F5first => "f5first",
            Field::F5last => "f5last",
            Field::Fi => "fi",
            Field::Dobd => "dobd",
            Field::Dobm => "dobm",
            Field::Doby => "doby",
        }
    }

    /// The field for a `user_data` key.
    pub fn from_key(key: &str) -> Option<Field> {
        Some(match key {
            "em" => Field::Em,
            "ph" => Field::Ph,
            "fn" => Field::Fn,
            "ln" => Field::Ln,
            "ge" => Field::Ge,
            "db" => Field::Db,
            "ct" => Field::Ct,
            "st" => Field::St,
            "zp" => Field::Zp,
            "country" => Field::Country,
            "external_id" => Field::ExternalId,
            "f5first" => Field::F5first,
            "f5last" => Field::F5last,
            "fi" => Field::Fi,
            "dobd" => Field::Dobd,
            "dobm" => Field::Dobm,
            "doby" => Field::Doby,
            _ => return None,
        })
    }

    /// True for keys that take a list of values on the wire (the others take one string).
    pub fn is_multi(self) -> bool {
        !matches!(
            self,
            Field::F5first | Field::F5last | Field::Fi | Field::Dobd | Field::Dobm | Field::Doby
        )
    }

    /// True when the normalized value is SHA-256-hashed before it is sent.
    pub fn is_hashed(self, opts: &NormalizeOptions) -> bool {
        self != Field::ExternalId || opts.hash_external_id
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// How to read dates of birth whose year comes last (`01/02/1990`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DateOrder {
    /// Month, day, year (Meta's US-centric docs): `01/02/1990` is January 2nd.
    #[default]
    Mdy,
    /// Day, month, year: `01/02/1990` is February 1st.
    Dmy,
}

/// Options of the normalization rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeOptions {
    /// Country (alpha-2, alpha-3 or English name) whose calling code completes national
    /// phone numbers (`020 7946 0958` + `gb` → `442079460958`).
    pub default_country: Option<String>,
    /// Order of day and month in dates of birth that end with the year.
    pub date_order: DateOrder,
    /// Hash `external_id` (default, as Meta's current SDK). `false` sends it trimmed and
    /// unhashed, for platforms whose browser pixel sends it raw: both sides must match.
    pub hash_external_id: bool,
    /// Treat 32-hex values as MD5 digests and pass them through (off: a dashless UUID is
    /// 32-hex too).
    pub md5_passthrough: bool,
    /// The clock (Unix seconds) for "not in the future" checks on dates of birth; `None`
    /// skips them. [`crate::prepare`](mod@crate::prepare) sets it from its `now`.
    pub now: Option<i64>,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            default_country: None,
            date_order: DateOrder::Mdy,
            hash_external_id: true,
            md5_passthrough: false,
            now: None,
        }
    }
}

impl NormalizeOptions {
    /// Checks the options themselves: `default_country` must be a known country.
    pub fn check(&self) -> Result<(), String> {
        if let Some(c) = &self.default_country {
            if calling_code(c).is_none() {
                return Err(format!(
                    "option default_country: {c:?} is not a known country; use an ISO 3166-1 \
                     alpha-2 code such as \"us\" or \"gb\""
                ));
            }
        }
        Ok(())
    }
}

/// A normalized value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The normalized plain text, or the digest when `hashed`.
    pub value: String,
    /// True when the input was already a SHA-256 digest (passed through, lowercased).
    pub hashed: bool,
    /// A warning about the value (e.g. `phone_missing_country_code`); it is still sent.
    pub warning: Option<ProblemKind>,
}

impl Normalized {
    /// The value as it goes on the wire: hashed unless already hashed or the field is sent
    /// in plain text (`external_id` with `hash_external_id = false`).
    pub fn to_wire(&self, field: Field, opts: &NormalizeOptions) -> String {
        if self.hashed || !field.is_hashed(opts) {
            self.value.clone()
        } else {
            hash::sha256_hex(&self.value)
        }
    }
}

/// Why a value cannot be used. The message never contains the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormalizeError {
    /// The problem kind, e.g. `invalid_email`.
    pub kind: ProblemKind,
    /// What is wrong and how to fix it.
    pub msg: &'static str,
}

impl fmt::Display for NormalizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.msg, self.kind)
    }
}

impl std::error::Error for NormalizeError {}

fn err(kind: ProblemKind, msg: &'static str) -> NormalizeError {
    NormalizeError { kind, msg }
}

const DIGEST_MSG: &str = "looks like a digest other than SHA-256 (MD5, SHA-1, or a SHA-256 \
     missing a digit): send the plain value, or its SHA-256 as 64 hex digits (for MD5, set \
     md5_passthrough)";

/// True for hex digits only, as many as a digest other than SHA-256 has (MD5 32, SHA-1 40,
/// SHA-224 56, SHA-384 96, SHA-512 128) or a SHA-256 with a digit missing or added. No
/// customer value of a hashed key but an external id (which may be any id) looks like that:
/// normalized as a name or a phone number, it would be mangled and hashed into garbage.
fn other_digest(s: &str) -> bool {
    matches!(s.len(), 32 | 40 | 56 | 63 | 65 | 96 | 128) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why `key` is no field to normalize, for a caller that named one: a `user_data` key sent as
/// given (`client_ip_address`, `fbc`…), or no customer-information key at all.
///
/// ```
/// use freight::normalize::not_a_field;
/// assert!(not_a_field("fbc").contains("sent as given"));
/// assert!(not_a_field("email").starts_with("unknown field"));
/// ```
pub fn not_a_field(key: &str) -> String {
    if crate::model::PLAIN_USER_DATA_KEYS.contains(&key) {
        format!(
            "{key:?} is sent as given, never normalized or hashed; only the hashed user_data \
             keys (em, ph, fn, ln, ge, db, ct, st, zp, country, external_id…) are normalized"
        )
    } else {
        format!("unknown field {key:?}; expected a user_data key such as em or ph")
    }
}

/// Normalizes one value of `field`.
///
/// `Ok(None)` means the value is empty or whitespace only: it is dropped (with an
/// `empty_value` warning in [`crate::prepare`](mod@crate::prepare)), never hashed.
pub fn normalize(
    field: Field,
    raw: &str,
    opts: &NormalizeOptions,
) -> Result<Option<Normalized>, NormalizeError> {
    let mut buf = String::new();
    Ok(match normalize_into(field, raw, opts, &mut buf)? {
        Out::Empty => None,
        Out::Hashed(value) => Some(Normalized {
            value,
            hashed: true,
            warning: None,
        }),
        Out::Plain(warning) => Some(Normalized {
            value: buf,
            hashed: false,
            warning,
        }),
    })
}

/// Normalizes and hashes one value: what goes on the wire, `Ok(None)` when it is dropped.
pub fn normalize_and_hash(
    field: Field,
    raw: &str,
    opts: &NormalizeOptions,
) -> Result<Option<String>, NormalizeError> {
    Ok(normalize(field, raw, opts)?.map(|n| n.to_wire(field, opts)))
}

/// The outcome of [`normalize_into`].
pub(crate) enum Out {
    /// Empty input: dropped.
    Empty,
    /// Already hashed: the wire value.
    Hashed(String),
    /// The normalized text is in the buffer.
    Plain(Option<ProblemKind>),
}

/// Normalizes `raw` into `buf` (cleared first), without allocating for plain values.
pub(crate) fn normalize_into(
    field: Field,
    raw: &str,
    opts: &NormalizeOptions,
    buf: &mut String,
) -> Result<Out, NormalizeError> {
    buf.clear();
    let s = trim(raw);
    if s.is_empty() {
        return Ok(Out::Empty);
    }
    // An external id sent unhashed goes as given (it must match the browser's): a digest
    // among external ids is an id like any other.
    let as_given = field == Field::ExternalId && !opts.hash_external_id;
    if !as_given {
        if let Some(h) = hash::already_hashed(s, opts.md5_passthrough) {
            return Ok(Out::Hashed(h));
        }
    }
    if field != Field::ExternalId && other_digest(s) {
        return Err(err(ProblemKind::UnrecognizedDigest, DIGEST_MSG));
    }
    let warning = match field {
        Field::Em => email(s, buf)?,
        Field::Ph => phone(s, opts, buf)?,
        Field::Fn | Field::Ln => letters(s, buf, err(ProblemKind::InvalidName, NAME_MSG))?,
        Field::Ge => gender(s, buf)?,
        Field::Db => date_of_birth(s, opts, buf)?,
        Field::Ct => letters(s, buf, err(ProblemKind::InvalidCity, CITY_MSG))?,
        Field::St => state(s, buf)?,
        Field::Zp => zip(s, buf)?,
        Field::Country => country(s, buf)?,
        Field::ExternalId => {
            if opts.hash_external_id {
                lowercase_into(s, buf);
            } else {
                buf.push_str(s);
            }
            None
        }
        Field::F5first | Field::F5last | Field::Fi => {
            letters(s, buf, err(ProblemKind::InvalidName, NAME_MSG))?;
            let keep = if field == Field::Fi { 1 } else { 5 };
            if let Some((cut, _)) = buf.char_indices().nth(keep) {
                buf.truncate(cut);
            }
            None
        }
        Field::Dobd => two_digits(s, 31, buf, err(ProblemKind::InvalidDobDay, DOBD_MSG))?,
        Field::Dobm => two_digits(s, 12, buf, err(ProblemKind::InvalidDobMonth, DOBM_MSG))?,
        Field::Doby => year_of_birth(s, opts, buf)?,
    };
    Ok(Out::Plain(warning))
}

type Step = Result<Option<ProblemKind>, NormalizeError>;

const NAME_MSG: &str = "no letters left after removing punctuation, digits and spaces; \
                        send the person's name in letters of any script";
const CITY_MSG: &str = "no letters left after removing punctuation, digits and spaces; \
                        send the city name";
const DOBD_MSG: &str = "day of birth must be a number 01-31";
const DOBM_MSG: &str = "month of birth must be a number 01-12";

/// `s.trim()`, without decoding characters when the text ends in ASCII: ASCII white space
/// (the six White_Space characters below 128) is stripped byte by byte, and only a non-ASCII
/// end goes through the general trim.
pub(crate) fn trim(s: &str) -> &str {
    let space = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r');
    let b = s.as_bytes();
    let start = b.iter().position(|c| !space(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !space(c)).map_or(start, |i| i + 1);
    // Both cuts are next to ASCII bytes, so they are character boundaries.
    let t = s.get(start..end).unwrap_or(s);
    match (t.as_bytes().first(), t.as_bytes().last()) {
        (Some(a), Some(z)) if !a.is_ascii() || !z.is_ascii() => t.trim(),
        _ => t,
    }
}

fn lowercase_into(s: &str, buf: &mut String) {
    if s.is_ascii() {
        let start = buf.len();
        buf.push_str(s);
        if let Some(tail) = buf.get_mut(start..) {
            tail.make_ascii_lowercase();
        }
    } else {
        for c in s.chars() {
            buf.extend(c.to_lowercase());
        }
    }
}

fn email(s: &str, buf: &mut String) -> Step {
    const MSG: &str = "not a plausible email address; send a bare local@domain.tld \
                       address without display name or spaces";
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        lowercase_into(s, buf);
    } else {
        // One address, one hash: a decomposed ü (u + combining diaeresis) is composed.
        lowercase_into(&s.nfc().collect::<String>(), buf);
    }
    let bad = || err(ProblemKind::InvalidEmail, MSG);
    let (local, domain) = buf.split_once('@').ok_or_else(bad)?;
    let plausible = if buf.is_ascii() {
        ascii_email_ok(local.as_bytes(), domain.as_bytes())
    } else {
        email_ok(local, domain)
    };
    if plausible {
        Ok(None)
    } else {
        Err(bad())
    }
}

/// Forbidden in the local part: ASCII whitespace, controls and `<>()[]\,;:"@`.
fn forbidden_in_local(b: u8) -> bool {
    b <= b' '
        || b == 0x7f
        || matches!(
            b,
            b'<' | b'>' | b'(' | b')' | b'[' | b']' | b'\\' | b',' | b';' | b':' | b'"' | b'@'
        )
}

/// [`email_ok`] for ASCII addresses, in one pass over each part.
fn ascii_email_ok(local: &[u8], domain: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (local.first(), local.last()) else {
        return false;
    };
    if first == b'.' || last == b'.' {
        return false;
    }
    let mut prev = 0;
    for &c in local {
        if forbidden_in_local(c) || (c == b'.' && prev == b'.') {
            return false;
        }
        prev = c;
    }
    let mut labels = 0;
    let mut tld: &[u8] = b"";
    for label in domain.split(|&c| c == b'.') {
        let (Some(&first), Some(&last)) = (label.first(), label.last()) else {
            return false;
        };
        if first == b'-'
            || last == b'-'
            || !label
                .iter()
                .all(|&c| c == b'-' || c.is_ascii_alphanumeric())
        {
            return false;
        }
        labels += 1;
        tld = label;
    }
    labels >= 2 && tld.len() >= 2 && !tld.iter().all(u8::is_ascii_digit)
}

/// A plausible address: a local part without spaces, controls, specials or empty dot-atoms;
/// a domain of at least two labels of letters, digits and inner hyphens (any script), the
/// last one not all digits.
fn email_ok(local: &str, domain: &str) -> bool {
    // Invisible format characters (a zero-width space pasted from a web page, a soft
    // hyphen, a byte-order mark) make another address that looks the same.
    let invisible = |c: char| {
        // (Not the zero-width joiner and non-joiner, which Persian and Indic text uses.)
        matches!(c, '\u{ad}' | '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{feff}')
    };
    let forbidden = |c: char| {
        c.is_whitespace()
            || c.is_control()
            || invisible(c)
            || (c.is_ascii() && forbidden_in_local(c as u8))
    };
    if local.is_empty()
        || local.chars().any(forbidden)
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return false;
    }
    let mut labels = 0;
    let mut tld = "";
    for label in domain.split('.') {
        if label.is_empty()
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c == '-' || c.is_alphanumeric())
        {
            return false;
        }
        labels += 1;
        tld = label;
    }
    labels >= 2 && tld.chars().count() >= 2 && !tld.chars().all(|c| c.is_ascii_digit())
}

/// The international calling code of a country given by code or name.
pub(crate) fn calling_code(country_name: &str) -> Option<u16> {
    calling_code_of(lookup_country(country_name)?)
}

/// The international calling code of an ISO 3166-1 alpha-2 code.
fn calling_code_of(code: &str) -> Option<u16> {
    calling_codes::CALLING_CODES
        .binary_search_by(|(k, _)| (*k).cmp(code))
        .ok()
        .map(|i| calling_codes::CALLING_CODES[i].1)
}

fn phone(s: &str, opts: &NormalizeOptions, buf: &mut String) -> Step {
    const MSG: &str = "not a usable phone number; send 7-15 digits with the country code, \
                       e.g. +1 650 555 1234";
    let bad = || err(ProblemKind::InvalidPhone, MSG);
    let mut body = s;
    if body.len() >= 4 && body.as_bytes()[..4].eq_ignore_ascii_case(b"tel:") {
        body = body[4..].trim_start();
    }
    // An extension (`ext. 12`, `x12`, `#12`) is cut off, never glued onto the number.
    // The markers are ASCII, so their byte position is a character boundary (and a byte
    // search, unlike a search for any of several chars, decodes nothing).
    let candidate = body
        .bytes()
        .position(|b| matches!(b, b'x' | b'X' | b'e' | b'E' | b'#' | b';'));
    if let Some(at) = candidate {
        if body[..at].bytes().any(|b| b.is_ascii_digit()) {
            let rest = body[at..].to_ascii_lowercase();
            let marker = ["extension", "extn", "ext", "x", "#", ";ext="]
                .iter()
                .find(|m| rest.starts_with(**m));
            if let Some(m) = marker {
                // The extension itself is digits (`ext. 12`, `x 12`): words after the number
                // (`… 1234 xyz`, `ext. 12 and 13`) make it no number Meta can match.
                let extension = &rest[m.len()..];
                let digits_only = extension
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_whitespace() || ".:=-".contains(c));
                if !digits_only || !extension.bytes().any(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                body = &body[..at];
            }
        }
    }
    let international = body.starts_with('+');
    if international {
        // `+00 44…` and `+0044…` mix two prefixes: the zeros are no part of the number.
        body = body[1..].trim_start_matches(|c: char| c == '0' || c.is_whitespace());
    }
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '0'..='9' => buf.push(c),
            '０'..='９' => buf.push(char::from(b'0' + (c as u32 - '０' as u32) as u8)),
            // `+44 (0)20 …`, `0049 (0)30 …`: the trunk 0 written beside an international
            // number is no part of it.
            // (Not in Italy, San Marino and the Vatican, where the 0 is part of the number.)
            '(' if (international || buf.starts_with("00"))
                && body[i..].starts_with("(0)")
                && !matches!(buf.trim_start_matches('0'), "39" | "378" | "379") =>
            {
                chars.nth(1);
            }
            '+' | '-' | '.' | '(' | ')' | '[' | ']' | '{' | '}' | '/' | '_' => {}
            c if c.is_whitespace() => {}
            _ => return Err(bad()),
        }
    }
    if buf.is_empty() {
        return Err(bad());
    }
    let mut warning = None;
    if !international {
        if buf.starts_with("00") {
            buf.drain(..2);
        } else {
            let trunk = buf.starts_with('0');
            // Looked up once (the name is folded into a key for it).
            let country = opts.default_country.as_deref().and_then(lookup_country);
            // Italy, San Marino and the Vatican keep the leading 0 in international format.
            let keeps_zero = matches!(country, Some("it" | "sm" | "va"));
            if !keeps_zero {
                let zeros = buf.len() - buf.trim_start_matches('0').len();
                buf.drain(..zeros);
            }
            match &opts.default_country {
                Some(_) => {
                    let (code, cc) = country
                        .and_then(|code| Some((code, calling_code_of(code)?)))
                        .ok_or(err(
                            ProblemKind::InvalidPhone,
                            "the default_country option is not a known country",
                        ))?;
                    let national_digits = min_national_digits(cc, code);
                    let mut digits = [0u8; 5];
                    let cc = fmt_u16(cc, &mut digits);
                    // National unless it already starts with the country code and is long
                    // enough to hold a national number after it (an Indian mobile 91234
                    // 56789 begins with 91 and is national).
                    let has_cc =
                        !trunk && buf.starts_with(cc) && buf.len() >= cc.len() + national_digits;
                    if !has_cc {
                        buf.insert_str(0, cc);
                    }
                }
                None => {
                    if trunk || buf.len() <= 10 {
                        warning = Some(ProblemKind::PhoneMissingCountryCode);
                    }
                }
            }
        }
    }
    let digits = buf.trim_start_matches('0').len();
    if buf.starts_with('0') || !(7..=15).contains(&digits) {
        return Err(bad());
    }
    Ok(warning)
}

/// The fewest digits of a national number (without trunk prefix) in `country` (an alpha-2
/// code): where all numbers have about the same length, enough to tell a national number
/// that happens to begin with the calling code from one written with it; 7 elsewhere.
fn min_national_digits(calling_code: u16, country: &str) -> usize {
    if calling_code == 1 {
        return 10; // the North American Numbering Plan
    }
    match country {
        "in" | "br" | "mx" | "ru" | "kz" | "cn" | "tr" | "ar" | "co" => 10,
        // Italian mobiles are 3xx xxxxxxx, written without a trunk 0: a 10-digit 393…
        // is a national number, not +39 and eight digits.
        "gb" | "fr" | "es" | "pt" | "au" | "jp" | "nl" | "pl" | "sa" | "id" | "vn" | "za"
        | "pk" | "it" | "va" => 9,
        "eg" => 8,
        _ => 7,
    }
}

/// `n` in decimal, written into `out`.
fn fmt_u16(mut n: u16, out: &mut [u8; 5]) -> &str {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&out[i..]).unwrap_or("")
}

/// Lowercase letters of any script, with the marks that spell them (a Devanagari virama, a
/// Thai tone mark: the word is not the same without them); everything else (spaces,
/// punctuation, digits, optional marks) removed.
fn letters(s: &str, buf: &mut String, empty: NormalizeError) -> Step {
    if s.is_ascii() {
        buf.extend(
            s.bytes()
                .filter(u8::is_ascii_alphabetic)
                .map(|b| b.to_ascii_lowercase() as char),
        );
    } else {
        // NFC first, then the whole text lowercased at once: `str::to_lowercase` applies
        // Unicode's final-sigma rule (ΣΟΦΟΚΛΗΣ → σοφοκλης, as Σοφοκλης), which lowercasing
        // one character at a time cannot.
        let lower = if is_nfc_quick(s.chars()) == IsNormalized::Yes {
            s.to_lowercase()
        } else {
            s.nfc().collect::<String>().to_lowercase()
        };
        // A mark is kept right after a kept letter, and only in the scripts whose marks
        // spell the word (Brahmic scripts, Thai, Lao, Tibetan, Myanmar, Khmer: a virama, a
        // tone mark). Optional marks (Arabic and Hebrew vowel points, stress accents) go,
        // so that a name hashes the same with them or without; so do a lone mark and the
        // pieces of an emoji (a variation selector, a keycap).
        let mut after_letter = false;
        for c in lower.chars() {
            let keep = if is_combining_mark(c) {
                after_letter && spelling_mark(c)
            } else {
                c.is_alphabetic()
            };
            if keep {
                buf.push(c);
            }
            after_letter = keep;
        }
    }
    if buf.is_empty() {
        Err(empty)
    } else {
        Ok(None)
    }
}

/// A combining mark of a script whose marks are part of the spelling.
fn spelling_mark(c: char) -> bool {
    matches!(c, '\u{0900}'..='\u{0DFF}' | '\u{0E00}'..='\u{0FFF}' | '\u{1000}'..='\u{109F}'
            | '\u{1780}'..='\u{17FF}')
}

/// Writes the lookup key of a name into `key`: lowercase ASCII letters only, diacritics
/// removed (`Côte d'Ivoire` → `cotedivoire`). Empty when the name has other letters.
fn fold_key(s: &str, key: &mut String) {
    key.clear();
    if s.is_ascii() {
        key.extend(
            s.bytes()
                .filter(u8::is_ascii_alphabetic)
                .map(|b| b.to_ascii_lowercase() as char),
        );
        return;
    }
    for c in s.nfd() {
        if c.is_ascii_alphabetic() {
            key.push(c.to_ascii_lowercase());
        } else if c.is_alphabetic() && !is_combining_mark(c) {
            key.clear();
            return;
        }
    }
}

fn lookup<'a>(table: &'a [(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    table
        .binary_search_by(|(k, _)| (*k).cmp(key))
        .ok()
        .map(|i| table[i].1)
}

/// Where the keys of each first letter `a`-`z` start and end in a sorted lookup table (keys
/// are lowercase ASCII letters): a lookup compares a handful of keys of the same letter, and
/// only those of the same length byte by byte.
const fn letter_ranges(table: &[(&str, &str)]) -> [(u16, u16); 26] {
    let mut ranges = [(0u16, 0u16); 26];
    let mut i = 0;
    while i < table.len() {
        let k = table[i].0.as_bytes();
        if !k.is_empty() && k[0] >= b'a' && k[0] <= b'z' {
            let l = (k[0] - b'a') as usize;
            if ranges[l].1 == 0 {
                ranges[l].0 = i as u16;
            }
            ranges[l].1 = i as u16 + 1;
        }
        i += 1;
    }
    ranges
}

static COUNTRY_LETTERS: [(u16, u16); 26] = letter_ranges(tables::COUNTRY_BY_KEY);
static REGION_LETTERS: [(u16, u16); 26] = letter_ranges(tables::US_CA_REGION_BY_KEY);

/// [`lookup`] through the first-letter ranges of `table`.
fn lookup_by_letter<'a>(
    table: &'a [(&'a str, &'a str)],
    letters: &[(u16, u16); 26],
    key: &str,
) -> Option<&'a str> {
    let first = *key.as_bytes().first()?;
    let (lo, hi) = *letters.get(usize::from(first.wrapping_sub(b'a')))?;
    table
        .get(usize::from(lo)..usize::from(hi))?
        .iter()
        .find(|(k, _)| k.len() == key.len() && *k == key)
        .map(|(_, v)| *v)
}

/// The position in a 26 × 26 table of a two-letter lowercase key.
const fn pair_slot(a: u8, b: u8) -> usize {
    (a - b'a') as usize * 26 + (b - b'a') as usize
}

/// The two-letter keys of a lookup table, indexed by [`pair_slot`]: the position in the table
/// plus one, or 0. Codes (`us`, `gb`) are the common input, so they skip the binary search.
const fn pair_index(table: &[(&str, &str)]) -> [u16; 676] {
    let mut index = [0u16; 676];
    let mut i = 0;
    while i < table.len() {
        let k = table[i].0.as_bytes();
        if k.len() == 2 {
            index[pair_slot(k[0], k[1])] = i as u16 + 1;
        }
        i += 1;
    }
    index
}

static COUNTRY_PAIRS: [u16; 676] = pair_index(tables::COUNTRY_BY_KEY);

/// The country of a lookup key (see [`fold_key`]).
fn country_code(key: &str) -> Option<&'static str> {
    match key.as_bytes() {
        &[a, b] if a.is_ascii_lowercase() && b.is_ascii_lowercase() => {
            match COUNTRY_PAIRS[pair_slot(a, b)] {
                0 => None,
                i => Some(tables::COUNTRY_BY_KEY[usize::from(i) - 1].1),
            }
        }
        _ => lookup_by_letter(tables::COUNTRY_BY_KEY, &COUNTRY_LETTERS, key),
    }
}

/// The shortest region name in [`tables::US_CA_REGION_BY_KEY`]: shorter keys are codes,
/// which need no lookup.
const SHORTEST_REGION_NAME: usize = {
    let t = tables::US_CA_REGION_BY_KEY;
    let mut min = usize::MAX;
    let mut i = 0;
    while i < t.len() {
        if t[i].0.len() < min {
            min = t[i].0.len();
        }
        i += 1;
    }
    min
};
// Two-letter keys are codes, never names: the state lookup may skip them.
const _: () = assert!(SHORTEST_REGION_NAME > 2);

fn gender(s: &str, buf: &mut String) -> Step {
    // Only case, spaces, dots and apostrophes are forgiven (`Mr.`, `ma'am`): `mal3e` is no
    // gender.
    let key: String = s
        .chars()
        .filter(|c| !(c.is_whitespace() || matches!(c, '.' | '\'' | '’')))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    match lookup(tables::GENDER_BY_KEY, &key) {
        Some(g) => {
            buf.push_str(g);
            Ok(None)
        }
        None => Err(err(
            ProblemKind::InvalidGender,
            "not a recognised gender; send f or m (female/male and common synonyms work)",
        )),
    }
}

fn state(s: &str, buf: &mut String) -> Step {
    fold_key(s, buf);
    let name = buf.len() >= SHORTEST_REGION_NAME;
    let region = name
        .then(|| lookup_by_letter(tables::US_CA_REGION_BY_KEY, &REGION_LETTERS, buf))
        .flatten();
    if let Some(code) = region {
        buf.clear();
        buf.push_str(code);
        return Ok(None);
    }
    buf.clear();
    letters(
        s,
        buf,
        err(
            ProblemKind::InvalidState,
            "no letters left in the state; send a 2-letter code (ca) or the region's name",
        ),
    )
}

fn lookup_country(s: &str) -> Option<&'static str> {
    let mut key = String::with_capacity(s.len());
    fold_key(s, &mut key);
    country_code(&key)
}

fn country(s: &str, buf: &mut String) -> Step {
    fold_key(s, buf);
    match country_code(buf) {
        Some(code) => {
            buf.clear();
            buf.push_str(code);
            Ok(None)
        }
        None => Err(err(
            ProblemKind::InvalidCountry,
            "not a recognised country; send an ISO 3166-1 alpha-2 code such as us or gb",
        )),
    }
}

/// A dash of any kind, or a space of any kind: what separates the parts of a postal code.
fn zip_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}')
}

fn zip(s: &str, buf: &mut String) -> Step {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    // US ZIP+4: only the 5-digit ZIP is matched by Meta. The separator may be a no-break
    // space or an en dash, as word processors write them, or a dash between spaces.
    let zip4 = (b.len() >= 10
        && digits(0..5)
        && digits(b.len() - 4..b.len())
        && s[5..b.len() - 4].chars().count() <= 3
        && s[5..b.len() - 4].chars().all(zip_separator))
        || (b.len() == 9 && digits(0..9));
    if zip4 {
        buf.push_str(&s[..5]);
        return Ok(None);
    }
    if s.is_ascii() {
        buf.extend(
            s.bytes()
                .filter(|&b| !(b.is_ascii_whitespace() || b == 0x0b || b == b'-'))
                .map(|b| char::from(b.to_ascii_lowercase())),
        );
    } else {
        for c in s.chars() {
            if !zip_separator(c) {
                buf.extend(c.to_lowercase());
            }
        }
    }
    if buf.chars().count() < 2 {
        return Err(err(
            ProblemKind::InvalidZip,
            "postal code too short; send at least 2 characters",
        ));
    }
    Ok(None)
}

fn two_digits(s: &str, max: u32, buf: &mut String, bad: NormalizeError) -> Step {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let n: u32 = s.parse().map_err(|_| bad)?;
    if !(1..=max).contains(&n) {
        return Err(bad);
    }
    buf.push_str(&format!("{n:02}"));
    Ok(None)
}

fn year_of_birth(s: &str, opts: &NormalizeOptions, buf: &mut String) -> Step {
    let bad = err(
        ProblemKind::InvalidDobYear,
        "year of birth must be 4 digits from 1900 to this year",
    );
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let y: i64 = s.parse().map_err(|_| bad)?;
    let this_year = opts.now.map(|n| civil_from_unix(n).0).unwrap_or(i64::MAX);
    if y < 1900 || y > this_year {
        return Err(bad);
    }
    buf.push_str(s);
    Ok(None)
}

fn date_of_birth(s: &str, opts: &NormalizeOptions, buf: &mut String) -> Step {
    let bad = err(
        ProblemKind::InvalidDateOfBirth,
        "not a real date of birth; send YYYY-MM-DD (or YYYYMMDD) from 1900 to today",
    );
    // Only digits and the usual separators are accepted: no words, no times.
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '/' | '.' | ' ' | '_' | '|' | ':' | '–'))
    {
        return Err(bad);
    }
    let groups: Vec<&str> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let num = |g: &str| g.parse::<i64>().ok();
    let (y, m, d) = match groups.as_slice() {
        [one] if one.len() == 8 => (num(&one[..4]), num(&one[4..6]), num(&one[6..])),
        [a, b, c] if a.len() == 4 && b.len() <= 2 && c.len() <= 2 => {
            let (b, c) = (num(b), num(c));
            // Year first is year-month-day, unless only day-month makes a date.
            match (b, c) {
                (Some(b), Some(c)) if b > 12 && c <= 12 => (num(a), Some(c), Some(b)),
                _ => (num(a), b, c),
            }
        }
        [a, b, c] if a.len() <= 2 && b.len() <= 2 && c.len() == 4 => {
            let (a, b) = (num(a), num(b));
            let day_first = match (a, b) {
                (Some(a), Some(b)) if a > 12 && b <= 12 => true,
                (Some(a), Some(b)) if b > 12 && a <= 12 => false,
                _ => opts.date_order == DateOrder::Dmy,
            };
            if day_first {
                (num(c), b, a)
            } else {
                (num(c), a, b)
            }
        }
        _ => return Err(bad),
    };
    let (y, m, d) = match (y, m, d) {
        (Some(y), Some(m), Some(d)) => (y, m, d),
        _ => return Err(bad),
    };
    if y < 1900 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad);
    }
    if let Some(now) = opts.now {
        if (y, m, d) > civil_from_unix(now) {
            return Err(bad);
        }
    }
    buf.push_str(&format!("{y:04}{m:02}{d:02}"));
    Ok(None)
}

/// The days of month `m` (1–12) of year `y`.
pub(crate) fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (Howard Hinnant's
/// days_from_civil); `m` 1–12.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// (year, month, day) in UTC of a Unix time (Howard Hinnant's civil_from_days).
pub(crate) fn civil_from_unix(secs: i64) -> (i64, i64, i64) {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The position of a three-letter uppercase code in a 26³-bit set.
const fn triple_slot(a: u8, b: u8, c: u8) -> usize {
    ((a - b'A') as usize * 26 + (b - b'A') as usize) * 26 + (c - b'A') as usize
}

/// [`tables::CURRENCIES`] as a bit set indexed by [`triple_slot`].
static CURRENCY_BITS: [u64; 275] = {
    let mut bits = [0u64; 275];
    let t = tables::CURRENCIES;
    let mut i = 0;
    while i < t.len() {
        let c = t[i].as_bytes();
        let slot = triple_slot(c[0], c[1], c[2]);
        bits[slot / 64] |= 1 << (slot % 64);
        i += 1;
    }
    bits
};

/// True when `code` (any case) is an active ISO 4217 currency code.
pub fn is_currency(code: &str) -> bool {
    let &[a, b, c] = code.as_bytes() else {
        return false;
    };
    if !(a.is_ascii_alphabetic() && b.is_ascii_alphabetic() && c.is_ascii_alphabetic()) {
        return false;
    }
    let slot = triple_slot(
        a.to_ascii_uppercase(),
        b.to_ascii_uppercase(),
        c.to_ascii_uppercase(),
    );
    CURRENCY_BITS[slot / 64] & (1 << (slot % 64)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(field: Field, raw: &str) -> Result<Option<String>, ProblemKind> {
        n_with(field, raw, &NormalizeOptions::default())
    }

    fn n_with(
        field: Field,
        raw: &str,
        o: &NormalizeOptions,
    ) -> Result<Option<String>, ProblemKind> {
        normalize(field, raw, o)
            .map(|v| v.map(|v| v.value))
            .map_err(|e| e.kind)
    }

    fn ok(field: Field, raw: &str) -> String {
        n(field, raw).unwrap().unwrap()
    }

    #[test]
    fn spec_table_examples() {
        assert_eq!(
            ok(Field::Em, "  John_Smith@Gmail.com "),
            "john_smith@gmail.com"
        );
        assert_eq!(ok(Field::Fn, "Valéry"), "valéry");
        assert_eq!(ok(Field::Ln, "O'Brien"), "obrien");
        assert_eq!(ok(Field::Fn, "Mary-Jane"), "maryjane");
        assert_eq!(ok(Field::Ct, "New York"), "newyork");
        assert_eq!(ok(Field::Ct, "São Paulo"), "sãopaulo");
        assert_eq!(ok(Field::St, "California"), "ca");
        assert_eq!(ok(Field::St, "District of Columbia"), "dc");
        assert_eq!(ok(Field::St, "British Columbia"), "bc");
        assert_eq!(ok(Field::St, "Bayern"), "bayern");
        assert_eq!(ok(Field::Zp, "SW1A 1AA"), "sw1a1aa");
        assert_eq!(ok(Field::Zp, "94035-1234"), "94035");
        assert_eq!(ok(Field::Country, "USA"), "us");
        assert_eq!(ok(Field::Country, "United States"), "us");
        assert_eq!(ok(Field::Country, "UK"), "gb");
        assert_eq!(ok(Field::Ge, "Female"), "f");
        assert_eq!(ok(Field::Ge, "MR"), "m");
        assert_eq!(ok(Field::Db, "1990-01-15"), "19900115");
        assert_eq!(ok(Field::Db, "01/15/1990"), "19900115");
        assert_eq!(ok(Field::F5first, "Élisabeth"), "élisa");
        assert_eq!(ok(Field::Fi, "Ñúñez"), "ñ");
        assert_eq!(ok(Field::Dobd, "7"), "07");
    }

    #[test]
    fn phone_rules() {
        let gb = NormalizeOptions {
            default_country: Some("gb".into()),
            ..Default::default()
        };
        let us = NormalizeOptions {
            default_country: Some("US".into()),
            ..Default::default()
        };
        assert_eq!(
            n_with(Field::Ph, "020 7946 0958", &gb),
            Ok(Some("442079460958".into()))
        );
        assert_eq!(
            n_with(Field::Ph, "(650) 555-1234", &us),
            Ok(Some("16505551234".into()))
        );
        assert_eq!(
            n_with(Field::Ph, "1 650 555 1234", &us),
            Ok(Some("16505551234".into()))
        );
        assert_eq!(ok(Field::Ph, "+1.650.555.1234"), "16505551234");
        assert_eq!(ok(Field::Ph, "0044 20 7946 0958"), "442079460958");
        assert_eq!(ok(Field::Ph, "+1 650 555 1234 ext. 12"), "16505551234");
        assert_eq!(ok(Field::Ph, "+1 650 555 1234 x12"), "16505551234");
        let w = normalize(Field::Ph, "020 7946 0958", &NormalizeOptions::default()).unwrap();
        let w = w.unwrap();
        assert_eq!(w.value, "2079460958");
        assert_eq!(w.warning, Some(ProblemKind::PhoneMissingCountryCode));
        assert_eq!(n(Field::Ph, "call me"), Err(ProblemKind::InvalidPhone));
        assert_eq!(
            n(Field::Ph, "+1 234 567 890 123 456"),
            Err(ProblemKind::InvalidPhone)
        );
        assert_eq!(n(Field::Ph, "+12345"), Err(ProblemKind::InvalidPhone));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            n(Field::Em, "John Doe <john@example.com>"),
            Err(ProblemKind::InvalidEmail)
        );
        assert_eq!(
            n(Field::Em, "john@@example.com"),
            Err(ProblemKind::InvalidEmail)
        );
        assert_eq!(n(Field::Em, "john@example"), Err(ProblemKind::InvalidEmail));
        assert_eq!(n(Field::Ge, "x"), Err(ProblemKind::InvalidGender));
        assert_eq!(
            n(Field::Db, "2000-02-30"),
            Err(ProblemKind::InvalidDateOfBirth)
        );
        assert_eq!(
            n(Field::Db, "1899-12-31"),
            Err(ProblemKind::InvalidDateOfBirth)
        );
        assert_eq!(
            n(Field::Country, "Atlantis"),
            Err(ProblemKind::InvalidCountry)
        );
        assert_eq!(n(Field::Ct, "12345"), Err(ProblemKind::InvalidCity));
        assert_eq!(n(Field::Zp, "1"), Err(ProblemKind::InvalidZip));
        assert_eq!(n(Field::Dobd, "001"), Err(ProblemKind::InvalidDobDay));
        assert_eq!(n(Field::Dobm, "13"), Err(ProblemKind::InvalidDobMonth));
    }

    #[test]
    fn dob_not_in_future_and_date_order() {
        let o = NormalizeOptions {
            now: Some(946_684_800), // 2000-01-01
            date_order: DateOrder::Dmy,
            ..Default::default()
        };
        assert_eq!(
            n_with(Field::Db, "2000-01-02", &o),
            Err(ProblemKind::InvalidDateOfBirth)
        );
        assert_eq!(
            n_with(Field::Db, "02/01/1990", &o),
            Ok(Some("19900102".into()))
        );
        assert_eq!(
            n_with(Field::Doby, "2001", &o),
            Err(ProblemKind::InvalidDobYear)
        );
    }

    #[test]
    fn empty_dropped_and_hashes_pass_through() {
        assert_eq!(n(Field::Fn, "   "), Ok(None));
        let h = "A".repeat(64);
        let v = normalize(Field::Em, &h, &NormalizeOptions::default())
            .unwrap()
            .unwrap();
        assert!(v.hashed);
        assert_eq!(v.value, "a".repeat(64));
        // A dashless UUID is 32-hex and is hashed like any id.
        let uuid = "0123456789abcdef0123456789abcdef";
        let v = normalize(Field::ExternalId, uuid, &NormalizeOptions::default()).unwrap();
        assert!(!v.unwrap().hashed);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1));
        assert_eq!(civil_from_unix(951_782_400), (2000, 2, 29));
        assert_eq!(civil_from_unix(-1), (1969, 12, 31));
    }

    #[test]
    fn ascii_email_check_agrees_with_the_general_one() {
        // Every string of up to 6 characters over an alphabet of the interesting classes.
        let alphabet = [b'a', b'1', b'.', b'-', b'@', b' ', b'"', b'_', 0x0b];
        let mut checked = 0;
        let mut stack = vec![Vec::new()];
        while let Some(s) = stack.pop() {
            let text = String::from_utf8(s.clone()).unwrap();
            if let Some((local, domain)) = text.split_once('@') {
                assert_eq!(
                    ascii_email_ok(local.as_bytes(), domain.as_bytes()),
                    email_ok(local, domain),
                    "{text:?}"
                );
                checked += 1;
            }
            if s.len() < 6 {
                for &c in &alphabet {
                    let mut next = s.clone();
                    next.push(c);
                    stack.push(next);
                }
            }
        }
        assert!(checked > 100_000);
    }

    #[test]
    fn currencies() {
        assert!(is_currency("usd"));
        assert!(is_currency("EUR"));
        assert!(!is_currency("XYZ"));
        assert!(!is_currency("US"));
        // The bit set agrees with the table on every three-letter code.
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                for c in b'A'..=b'Z' {
                    let code = String::from_utf8(vec![a, b, c]).unwrap();
                    let listed = tables::CURRENCIES.binary_search(&code.as_str()).is_ok();
                    assert_eq!(is_currency(&code), listed, "{code}");
                    assert_eq!(is_currency(&code.to_lowercase()), listed, "{code}");
                }
            }
        }
    }

    #[test]
    fn trim_agrees_with_str_trim() {
        let parts = [
            "",
            " ",
            "\t",
            "\n",
            "\x0B",
            "\x0C",
            "\r",
            "\u{85}",
            "\u{A0}",
            "\u{2003}",
            "\u{3000}",
            "a",
            "é",
            "ab c",
            "\u{1F600}",
            "\0",
            "\x1F",
            "-",
        ];
        for a in parts {
            for b in parts {
                for c in parts {
                    let s = format!("{a}{b}{c}{a}");
                    assert_eq!(trim(&s), s.trim(), "{s:?}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn trim_agrees_with_str_trim_on_any_text(s in "\\PC*", pad in "[ \t\n\r\u{0B}\u{0C}\u{85}\u{A0}]{0,3}") {
            let s = format!("{pad}{s}{pad}");
            proptest::prop_assert_eq!(trim(&s), s.trim());
        }
    }

    #[test]
    fn direct_lookups_agree_with_the_tables() {
        for a in b'a'..=b'z' {
            for b in b'a'..=b'z' {
                let key = String::from_utf8(vec![a, b]).unwrap();
                assert_eq!(
                    country_code(&key),
                    lookup(tables::COUNTRY_BY_KEY, &key),
                    "{key}"
                );
            }
        }
        // Every key of the name tables is found through its letter, and nothing else is.
        for (table, letters) in [
            (tables::COUNTRY_BY_KEY, &COUNTRY_LETTERS),
            (tables::US_CA_REGION_BY_KEY, &REGION_LETTERS),
        ] {
            for (k, v) in table {
                assert_eq!(lookup_by_letter(table, letters, k), Some(*v), "{k}");
                let longer = format!("{k}x");
                assert_eq!(
                    lookup_by_letter(table, letters, &longer),
                    lookup(table, &longer)
                );
            }
            for bad in ["", "zzzzzz", "A", "é"] {
                assert_eq!(lookup_by_letter(table, letters, bad), lookup(table, bad));
            }
        }
        assert_eq!(country_code("uk"), Some("gb"));
        assert_eq!(country_code("unitedstates"), Some("us"));
        assert_eq!(n(Field::St, "CA"), Ok(Some("ca".into())));
        assert_eq!(n(Field::St, "Québec"), Ok(Some("qc".into())));
    }
}
