//! The C ABI of Freight (`libfreight`, header `include/freight.h`).
//!
//! JSON in, JSON out: events, options, destinations, client configurations and reports have
//! the same JSON shapes as the `freight` command and the Python module. See
//! `ffi/ARCHITECTURE.md` for the rules this file keeps: errors, panics, ownership, strings.

#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

use freight_core::client::{Client, ClientConfig};
use freight_core::destination::Destination;
use freight_core::normalize::{normalize, Field, NormalizeOptions};
use freight_core::prepare::{prepare, PrepareOptions};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// The version of the ABI: bumped on any incompatible change of a signature or a code.
pub const FREIGHT_ABI_VERSION: u32 = 1;

/// Status of every fallible function. Codes are stable and grouped; they are never
/// renumbered: 0 success, 1xx bad arguments, 2xx bad configuration, 3xx storage, 9xx internal
/// errors.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum freight_result {
    /// Success; the out-parameters were written.
    Ok = 0,
    /// A required pointer was NULL.
    NullArgument = 100,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 101,
    /// A JSON argument does not parse, or has the wrong shape.
    InvalidJson = 102,
    /// An argument is out of range or unknown (e.g. a field name).
    InvalidArgument = 103,
    /// A customer-information value cannot be used (e.g. not an email address).
    InvalidValue = 104,
    /// The client configuration is invalid (URL, version, options).
    InvalidConfig = 200,
    /// The destination is invalid (pixel id, token).
    InvalidDestination = 201,
    /// The outbox file cannot be opened or written.
    Storage = 300,
    /// A bug: a panic was caught at the boundary. Please report it.
    Panic = 900,
}

impl freight_result {
    fn name(self) -> &'static std::ffi::CStr {
        match self {
            freight_result::Ok => c"FREIGHT_RESULT_OK",
            freight_result::NullArgument => c"FREIGHT_RESULT_NULL_ARGUMENT",
            freight_result::InvalidUtf8 => c"FREIGHT_RESULT_INVALID_UTF8",
            freight_result::InvalidJson => c"FREIGHT_RESULT_INVALID_JSON",
            freight_result::InvalidArgument => c"FREIGHT_RESULT_INVALID_ARGUMENT",
            freight_result::InvalidValue => c"FREIGHT_RESULT_INVALID_VALUE",
            freight_result::InvalidConfig => c"FREIGHT_RESULT_INVALID_CONFIG",
            freight_result::InvalidDestination => c"FREIGHT_RESULT_INVALID_DESTINATION",
            freight_result::Storage => c"FREIGHT_RESULT_STORAGE",
            freight_result::Panic => c"FREIGHT_RESULT_PANIC",
        }
    }
}

/// A Conversions API client: one connection pool, shared by any number of destinations.
///
/// Thread safety: a `freight_client *` may be used from several threads at once.
pub struct freight_client {
    inner: Client,
    /// Set by freight_client_cancel: its sends and flushes stop between requests.
    cancel: std::sync::atomic::AtomicBool,
}

/// A durable local outbox (one SQLite file).
///
/// Thread safety: a `freight_outbox *` may be used from several threads at once; several
/// processes may open the same file.
pub struct freight_outbox {
    inner: ::freight_outbox::Outbox,
}

/// An error on its way to the caller: a status and a message.
struct Error {
    code: freight_result,
    message: String,
}

fn fail(code: freight_result, message: impl Into<String>) -> Error {
    Error {
        code,
        message: message.into(),
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: &str) {
    // A message never contains NUL; replace it if one ever does.
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// The boundary of every fallible export: clears the thread's last error, runs `body`
/// inside `catch_unwind`, and turns an error or a panic into a status and a message. It is a
/// function, not a macro, so that cbindgen (on stable Rust) sees every export's signature.
fn guard(body: impl FnOnce() -> Result<(), Error>) -> freight_result {
    LAST_ERROR.with(|e| *e.borrow_mut() = None);
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => freight_result::Ok,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.code
        }
        Err(_) => {
            set_last_error(
                "internal error: a panic was caught at the C boundary; please report it",
            );
            freight_result::Panic
        }
    }
}

/// Checks that an out-parameter can be written.
fn out_ptr<T>(out: *mut T, name: &str) -> Result<(), Error> {
    if out.is_null() {
        Err(fail(
            freight_result::NullArgument,
            format!("{name} is NULL; pass the address of a variable to receive the result"),
        ))
    } else {
        Ok(())
    }
}

/// Borrows `(ptr, len)` as UTF-8 text. `optional`: NULL (or length 0) means absent.
///
/// # Safety
/// `ptr` must be NULL or point to `len` readable bytes for the duration of the call.
unsafe fn str_in<'a>(
    ptr: *const c_char,
    len: usize,
    name: &str,
    optional: bool,
) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        return if optional {
            Ok(None)
        } else {
            Err(fail(
                freight_result::NullArgument,
                format!("{name} is NULL"),
            ))
        };
    }
    if len > isize::MAX as usize {
        return Err(fail(
            freight_result::InvalidArgument,
            format!("{name}: length is too large"),
        ));
    }
    // SAFETY: the caller guarantees `len` readable bytes at `ptr` (checked non-NULL above).
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    match std::str::from_utf8(bytes) {
        Ok("") if optional => Ok(None),
        Ok(s) => Ok(Some(s)),
        Err(e) => Err(fail(
            freight_result::InvalidUtf8,
            format!("{name} is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )),
    }
}

/// # Safety
/// As [`str_in`].
unsafe fn required<'a>(ptr: *const c_char, len: usize, name: &str) -> Result<&'a str, Error> {
    // SAFETY: forwarded from the caller.
    Ok(unsafe { str_in(ptr, len, name, false) }?.unwrap_or(""))
}

fn parse_json(text: &str, name: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        fail(
            freight_result::InvalidJson,
            format!(
                "{name} is not valid JSON: {:?} error at line {}, column {}",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })
}

/// A JSON object (options, a configuration): an array would fill the settings by position.
fn parse_object(text: &str, name: &str, code: freight_result) -> Result<Value, Error> {
    match parse_json(text, name)? {
        v @ Value::Object(_) => Ok(v),
        _ => Err(fail(code, format!("{name} must be a JSON object"))),
    }
}

/// Hands a new handle to the caller through `out`.
///
/// # Safety
/// `out` must be non-NULL and writable.
unsafe fn handle_out<T>(out: *mut *mut T, value: T) {
    // SAFETY: the caller's contract; the box is freed by `handle_free`.
    unsafe { *out = Box::into_raw(Box::new(value)) };
}

/// Frees a handle from `handle_out`; NULL is a no-op; a panic in a destructor stays here.
///
/// # Safety
/// `ptr` must be NULL or a live handle from `handle_out` of the same type, not yet freed.
unsafe fn handle_free<T>(ptr: *mut T) {
    if ptr.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ptr` came from Box::into_raw in `handle_out` (caller's contract).
        drop(unsafe { Box::from_raw(ptr) });
    }));
}

/// Optional JSON options (NULL: the defaults).
fn options_from<T: serde::de::DeserializeOwned + Default>(text: Option<&str>) -> Result<T, Error> {
    match text {
        Some(o) => serde_json::from_value(parse_object(
            o,
            "options_json",
            freight_result::InvalidJson,
        )?)
        .map_err(|e| fail(freight_result::InvalidJson, format!("options_json: {e}"))),
        None => Ok(T::default()),
    }
}

/// Writes an owned, NUL-terminated copy of `s` to `*out`.
///
/// # Safety
/// `out` must be valid for a write (checked non-NULL by the caller).
unsafe fn write_string(out: *mut *mut c_char, s: String) -> Result<(), Error> {
    let c = CString::new(s).map_err(|_| {
        fail(
            freight_result::InvalidValue,
            "the result contains a NUL character",
        )
    })?;
    // SAFETY: the caller checked `out` and guarantees it is writable.
    unsafe { *out = c.into_raw() };
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| fail(freight_result::Panic, e.to_string()))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The library's version, e.g. "0.1.0". Static: never free it.
#[no_mangle]
pub extern "C" fn freight_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

/// The ABI version this library implements (FREIGHT_ABI_VERSION of the Rust crate); a
/// program built against another version should refuse to run.
#[no_mangle]
pub extern "C" fn freight_abi_version() -> u32 {
    FREIGHT_ABI_VERSION
}

/// The name of a status code, e.g. "FREIGHT_RESULT_INVALID_JSON", or "FREIGHT_RESULT_UNKNOWN"
/// for a value that is not a freight_result. Static: never free it.
#[no_mangle]
pub extern "C" fn freight_result_name(result: i32) -> *const c_char {
    let known = [
        freight_result::Ok,
        freight_result::NullArgument,
        freight_result::InvalidUtf8,
        freight_result::InvalidJson,
        freight_result::InvalidArgument,
        freight_result::InvalidValue,
        freight_result::InvalidConfig,
        freight_result::InvalidDestination,
        freight_result::Storage,
        freight_result::Panic,
    ];
    match known.iter().find(|r| **r as i32 == result) {
        Some(r) => r.name().as_ptr(),
        None => c"FREIGHT_RESULT_UNKNOWN".as_ptr(),
    }
}

/// Describes the last error of the calling thread (each function returning a
/// `freight_result` clears it first; the version, result-name and `_free` functions leave
/// it), snprintf style: copies at most `len - 1` bytes and a NUL into `buf`, and returns the
/// length of the whole message without the NUL. With `buf` NULL (or `len` 0) only the length is returned.
/// Returns 0 when the last such call succeeded. Messages never contain tokens or customer
/// data.
///
/// # Safety
/// `buf` must be NULL or point to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn freight_last_error_message(buf: *mut c_char, len: usize) -> usize {
    let result = catch_unwind(|| {
        LAST_ERROR.with(|e| {
            let e = e.borrow();
            let msg = e.as_ref().map_or(&[][..], |c| c.as_bytes());
            if !buf.is_null() && len > 0 {
                let n = msg.len().min(len - 1);
                // SAFETY: the caller guarantees `len` writable bytes at `buf`; n < len.
                unsafe {
                    ptr::copy_nonoverlapping(msg.as_ptr().cast::<c_char>(), buf, n);
                    *buf.add(n) = 0;
                }
            }
            msg.len()
        })
    });
    result.unwrap_or(0)
}

/// Frees a string returned by this library. NULL is a no-op.
///
/// # Safety
/// `s` must be NULL or a string returned through an out-parameter of this library, not yet
/// freed.
#[no_mangle]
pub unsafe extern "C" fn freight_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: `s` came from CString::into_raw in this library (caller's contract).
        drop(unsafe { CString::from_raw(s) });
    });
}

/// Normalizes (and hashes) one customer-information value.
///
/// `field` is a user_data key ("em", "ph", "fn", …); `value` the raw text; `options_json` is
/// NULL or `{"default_country":"gb","date_order":"dmy","hash_external_id":true,
/// "md5_passthrough":false}`. On success `*json_out` receives `{"normalized":"…","hash":"…"}`
/// (both null when the value is empty and dropped; plus `"warning"` when there is one).
/// An unusable value returns FREIGHT_RESULT_INVALID_VALUE and the last error names the
/// problem type (e.g. "invalid_email: …"), never the value.
///
/// # Safety
/// String arguments must point to the given number of readable bytes (options may be NULL);
/// `json_out` must be writable. Free `*json_out` with freight_string_free.
#[no_mangle]
pub unsafe extern "C" fn freight_normalize(
    field: *const c_char,
    field_len: usize,
    value: *const c_char,
    value_len: usize,
    options_json: *const c_char,
    options_len: usize,
    json_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(json_out, "json_out")?;
        // SAFETY: the caller's contract on each (pointer, length) pair.
        let (field, value, options) = unsafe {
            (
                required(field, field_len, "field")?,
                required(value, value_len, "value")?,
                str_in(options_json, options_len, "options_json", true)?,
            )
        };
        let field = Field::from_key(field).ok_or_else(|| {
            fail(
                freight_result::InvalidArgument,
                freight_core::normalize::not_a_field(field),
            )
        })?;
        let mut opts: NormalizeOptions = options_from(options)?;
        opts.check()
            .map_err(|e| fail(freight_result::InvalidArgument, e))?;
        if opts.now.is_none() {
            opts.now = Some(unix_now());
        }
        let out = match normalize(field, value, &opts) {
            Ok(Some(n)) => {
                let mut v = json!({"normalized": n.value, "hash": n.to_wire(field, &opts)});
                if let Some(w) = n.warning {
                    v["warning"] = json!(w.as_str());
                }
                v
            }
            Ok(None) => json!({"normalized": null, "hash": null, "warning": "empty_value"}),
            Err(e) => {
                return Err(fail(
                    freight_result::InvalidValue,
                    format!("{}: {}", e.kind.as_str(), e.msg),
                ))
            }
        };
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(json_out, to_json(&out)?) }
    })
}

/// Prepares events: normalizes, hashes and validates each, without sending.
///
/// `events_json` is a JSON array of CAPI events (plain-text customer data allowed);
/// `options_json` NULL or the normalization options of freight_normalize; `now` the clock
/// in Unix seconds (0 or less: the current time). On success `*json_out` receives
/// `{"events":[{"index":0,"event":{…wire…},"warnings":[…]}],
/// "rejected":[{"index":1,"errors":[{"type","loc","msg"}],"warnings":[…]}],
/// "skipped":[{"index":2,"reason":"consent_denied"}]}`: every input index appears once.
/// Rejected and skipped events are data, not an error.
///
/// # Safety
/// As freight_normalize.
#[no_mangle]
pub unsafe extern "C" fn freight_prepare(
    events_json: *const c_char,
    events_len: usize,
    options_json: *const c_char,
    options_len: usize,
    now: i64,
    json_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(json_out, "json_out")?;
        // SAFETY: the caller's contract on each (pointer, length) pair.
        let (events, options) = unsafe {
            (
                required(events_json, events_len, "events_json")?,
                str_in(options_json, options_len, "options_json", true)?,
            )
        };
        let events = match parse_json(events, "events_json")? {
            Value::Array(a) => a,
            _ => {
                return Err(fail(
                    freight_result::InvalidJson,
                    "events_json must be a JSON array of events",
                ))
            }
        };
        let opts: PrepareOptions = options_from(options)?;
        opts.normalize
            .check()
            .map_err(|e| fail(freight_result::InvalidArgument, e))?;
        let now = if now > 0 { now } else { unix_now() };
        let prepared = prepare(&events, &opts, now);
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(json_out, to_json(&prepared)?) }
    })
}

/// Maps a CDP (Segment) track call to a Conversions API event (seed 002's table).
///
/// `call_json` is one track call; `options_json` NULL or `{"event_map":{…},"category_map":{…},
/// "value_field":"price","external_id_field":"context.traits.email","action_source":"website",
/// "default_currency":"USD"}`. On success `*json_out` receives `{"event":{…}}` — plain-text
/// customer data, ready for freight_prepare or freight_client_send — or
/// `{"errors":[{"type","loc","msg"}]}` for a call that cannot be mapped.
///
/// # Safety
/// As freight_normalize.
#[no_mangle]
pub unsafe extern "C" fn freight_segment(
    call_json: *const c_char,
    call_len: usize,
    options_json: *const c_char,
    options_len: usize,
    json_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(json_out, "json_out")?;
        // SAFETY: the caller's contract on each (pointer, length) pair.
        let (call, options) = unsafe {
            (
                required(call_json, call_len, "call_json")?,
                str_in(options_json, options_len, "options_json", true)?,
            )
        };
        let call = parse_json(call, "call_json")?;
        let opts: freight_core::segment::SegmentOptions = options_from(options)?;
        let out = match freight_core::segment::map_track(&call, &opts) {
            Ok(event) => json!({ "event": event }),
            Err(problems) => json!({ "errors": problems }),
        };
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(json_out, to_json(&out)?) }
    })
}

/// Builds a `partner_agent` in the documented format `pl<partner>-<platform version>-<app
/// version>` into `*agent_out`: the partner lowercased; an empty or NULL app version is left
/// out (`pl<partner>-<platform version>`).
///
/// # Safety
/// As freight_normalize.
#[no_mangle]
pub unsafe extern "C" fn freight_partner_agent(
    partner: *const c_char,
    partner_len: usize,
    platform_version: *const c_char,
    platform_version_len: usize,
    app_version: *const c_char,
    app_version_len: usize,
    agent_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(agent_out, "agent_out")?;
        // SAFETY: the caller's contract on each (pointer, length) pair.
        let (p, pv, av) = unsafe {
            (
                required(partner, partner_len, "partner")?,
                required(platform_version, platform_version_len, "platform_version")?,
                // Optional: NULL (with length 0) is no app version, as "".
                str_in(app_version, app_version_len, "app_version", true)?.unwrap_or(""),
            )
        };
        let agent = freight_core::platform::partner_agent(p, pv, av)
            .map_err(|e| fail(freight_result::InvalidArgument, e.0))?;
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(agent_out, agent) }
    })
}

/// An `event_id` shared by the browser pixel and the server. With `key` NULL: a random UUIDv4.
/// With a key (an order id…): the deterministic id of (secret, pixel_id, event_name, key), the
/// same every time, so the page and the server compute it independently. With a key, a NULL
/// `secret` is FREIGHT_RESULT_NULL_ARGUMENT and an empty one FREIGHT_RESULT_INVALID_ARGUMENT.
///
/// # Safety
/// As freight_normalize; `secret` may hold any bytes (it is not text).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn freight_event_id(
    secret: *const c_char,
    secret_len: usize,
    pixel_id: *const c_char,
    pixel_id_len: usize,
    event_name: *const c_char,
    event_name_len: usize,
    key: *const c_char,
    key_len: usize,
    id_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(id_out, "id_out")?;
        let id = if key.is_null() {
            freight_core::platform::new_event_id()
                .map_err(|e| fail(freight_result::InvalidArgument, e.0))?
        } else {
            if secret.is_null() {
                return Err(fail(
                    freight_result::NullArgument,
                    "a deterministic event id needs the platform's secret (secret is NULL)",
                ));
            }
            if secret_len == 0 {
                return Err(fail(
                    freight_result::InvalidArgument,
                    "secret is empty: a deterministic event id needs the platform's secret",
                ));
            }
            if secret_len > isize::MAX as usize {
                return Err(fail(
                    freight_result::InvalidArgument,
                    "secret: length is too large",
                ));
            }
            // SAFETY: the caller's contract on each (pointer, length) pair; `secret` is
            // non-NULL with a length a slice can have (checked above).
            let (secret, pixel, name, key) = unsafe {
                (
                    std::slice::from_raw_parts(secret.cast::<u8>(), secret_len),
                    required(pixel_id, pixel_id_len, "pixel_id")?,
                    required(event_name, event_name_len, "event_name")?,
                    required(key, key_len, "key")?,
                )
            };
            freight_core::platform::event_id_for(secret, pixel, name, key)
                .map_err(|e| fail(freight_result::InvalidArgument, e.0))?
        };
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(id_out, id) }
    })
}

/// `fbc`/`fbp` for a page request, by the rules of Meta's parameter builder.
/// `context_json`: `{"host":"www.shop.example","url":"/p?fbclid=…","referrer":"…",
/// "fbc_cookie":"…","fbp_cookie":"…","now_ms":1795392000123,"random":123}` (`now_ms` and
/// `random` optional). `*json_out` receives `{"fbc":…|null,"fbp":"…","cookies_to_set":
/// [{"name","value","domain","max_age"}]}`.
///
/// # Safety
/// As freight_normalize.
#[no_mangle]
pub unsafe extern "C" fn freight_click_ids(
    context_json: *const c_char,
    context_len: usize,
    json_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(json_out, "json_out")?;
        // SAFETY: the caller's contract.
        let ctx = parse_json(
            unsafe { required(context_json, context_len, "context_json")? },
            "context_json",
        )?;
        let field = |k: &str| -> Result<Option<&str>, Error> {
            match ctx.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(fail(
                    freight_result::InvalidJson,
                    format!("context_json: {k} must be a string"),
                )),
            }
        };
        let host = field("host")?.ok_or_else(|| {
            fail(
                freight_result::InvalidArgument,
                "context_json: host is required",
            )
        })?;
        // Given: a whole number in range (Python's and PHP's helpers check the same); absent or
        // null: now, and a random number.
        let whole = |k: &str, max: u64| -> Result<Option<u64>, Error> {
            match ctx.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_u64().filter(|n| *n <= max).map(Some).ok_or_else(|| {
                    fail(
                        freight_result::InvalidArgument,
                        format!("context_json: {k} must be a whole number from 0 to {max}"),
                    )
                }),
            }
        };
        let now_ms = match whole("now_ms", i64::MAX as u64)? {
            Some(ms) => ms as i64,
            None => unix_now_ms(),
        };
        let random = match whole("random", u64::from(u32::MAX))? {
            Some(r) => r as u32,
            None => freight_core::platform::new_fbp_random()
                .map_err(|e| fail(freight_result::InvalidArgument, e.0))?,
        };
        let request = freight_core::platform::RequestContext {
            host,
            url: field("url")?,
            referrer: field("referrer")?,
            fbc_cookie: field("fbc_cookie")?,
            fbp_cookie: field("fbp_cookie")?,
        };
        let ids = freight_core::platform::click_ids(&request, now_ms, random);
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(json_out, to_json(&ids)?) }
    })
}

/// Creates a client from a JSON configuration (NULL or "{}" for the defaults):
/// `{"graph_url":"https://graph.facebook.com","api_version":"v25.0","partner_agent":"…",
/// "timeout_ms":1500,"deadline_ms":900000,"batch_size":1000,"bisect":true,
/// "retry":{"max_attempts":5,…},"normalize":{"default_country":"us",…}}`.
/// `graph_url` must be https, or http to a loopback address (127.0.0.1, [::1]). `timeout_ms`
/// is the wait for Meta's answer once a request is sent (the upload is not counted).
///
/// # Safety
/// `config_json` must be NULL or point to `config_len` readable bytes; `client_out` must be
/// writable. Free the client with freight_client_free.
#[no_mangle]
pub unsafe extern "C" fn freight_client_new(
    config_json: *const c_char,
    config_len: usize,
    client_out: *mut *mut freight_client,
) -> freight_result {
    guard(|| {
        out_ptr(client_out, "client_out")?;
        // SAFETY: the caller's contract.
        let config = unsafe { str_in(config_json, config_len, "config_json", true)? };
        let config: ClientConfig = match config {
            Some(c) => serde_json::from_value(parse_object(
                c,
                "config_json",
                freight_result::InvalidConfig,
            )?)
            .map_err(|e| fail(freight_result::InvalidConfig, format!("config_json: {e}")))?,
            None => ClientConfig::default(),
        };
        let inner =
            Client::new(config).map_err(|e| fail(freight_result::InvalidConfig, e.to_string()))?;
        // SAFETY: checked non-NULL; writable by contract.
        let client = freight_client {
            inner,
            cancel: std::sync::atomic::AtomicBool::new(false),
        };
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { handle_out(client_out, client) };
        Ok(())
    })
}

/// Frees a client. NULL is a no-op. No other thread may be using it.
///
/// # Safety
/// `client` must be NULL or a client from freight_client_new, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn freight_client_free(client: *mut freight_client) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { handle_free(client) }
}

/// Stops (`stop` non-zero) the sends and outbox flushes of `client` that are running, in any
/// thread, between requests: no new request starts, a retry wait ends, the request in flight
/// is answered. The events of a send not sent fail with kind `"cancelled"` (0 attempts); a
/// flush leaves them pending and reports `"interrupted":true`. Until it is called again with
/// `stop` 0, the client's later sends and flushes stop at once in the same way.
///
/// Async-signal-safe (it only stores a flag): a SIGTERM handler may call it. NULL is a no-op.
///
/// # Safety
/// `client` must be NULL or a live client.
#[no_mangle]
pub unsafe extern "C" fn freight_client_cancel(client: *const freight_client, stop: i32) {
    if client.is_null() {
        return;
    }
    // SAFETY: non-NULL and live by the caller's contract. No allocation, lock or panic here.
    let client = unsafe { &*client };
    client
        .cancel
        .store(stop != 0, std::sync::atomic::Ordering::SeqCst);
}

/// # Safety
/// `client` must be NULL or a live client.
unsafe fn client_ref<'a>(client: *const freight_client) -> Result<&'a freight_client, Error> {
    if client.is_null() {
        return Err(fail(freight_result::NullArgument, "client is NULL"));
    }
    // SAFETY: non-NULL and live by the caller's contract.
    Ok(unsafe { &*client })
}

fn destination(text: &str) -> Result<Destination, Error> {
    Destination::from_json(text).map_err(|e| {
        fail(
            freight_result::InvalidDestination,
            format!("destination: {e}"),
        )
    })
}

/// Prepares and sends events to one destination, with retries, and reports every event.
///
/// `destination_json` is `{"pixel_id":"…","access_token":"…","test_event_code":"…",
/// "app_secret":"…"}`; `events_json` a JSON array of CAPI events. Blocks until done. On
/// success `*report_json_out` receives the report: `{"pixel_id","counts":{…},"delivered":[…],
/// "rejected":[…],"failed":[{"index","error":{"kind","http_status","code","subcode",
/// "fbtrace_id","message"},"attempts","event"}],"skipped":[…],"warnings":[…],"requests":[…]}`.
/// Events Meta refused are reported in "failed", not as an error status: the status is about
/// the call itself (arguments, configuration).
///
/// # Safety
/// `client` must be a live client (it may be shared between threads); string arguments must
/// point to the given number of readable bytes; `report_json_out` must be writable. Free the
/// report with freight_string_free.
#[no_mangle]
pub unsafe extern "C" fn freight_client_send(
    client: *const freight_client,
    destination_json: *const c_char,
    destination_len: usize,
    events_json: *const c_char,
    events_len: usize,
    report_json_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(report_json_out, "report_json_out")?;
        // SAFETY: the caller's contract on the client and each (pointer, length) pair.
        let (client, dest, events) = unsafe {
            (
                client_ref(client)?,
                required(destination_json, destination_len, "destination_json")?,
                required(events_json, events_len, "events_json")?,
            )
        };
        let dest = destination(dest)?;
        let events = match parse_json(events, "events_json")? {
            Value::Array(a) => a,
            _ => {
                return Err(fail(
                    freight_result::InvalidJson,
                    "events_json must be a JSON array of events",
                ))
            }
        };
        let report = client
            .inner
            .send_until(&dest, &events, unix_now(), Some(&client.cancel));
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(report_json_out, to_json(&report)?) }
    })
}

/// Sends one test event (with the destination's test_event_code, if any) and writes
/// `{"status":"ok"|"invalid_token"|"no_permission"|"pixel_not_found"|"throttled"|
/// "unreachable","error":{…},"fbtrace_id":"…"}` to `*json_out`.
///
/// # Safety
/// As freight_client_send.
#[no_mangle]
pub unsafe extern "C" fn freight_client_test_connection(
    client: *const freight_client,
    destination_json: *const c_char,
    destination_len: usize,
    json_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(json_out, "json_out")?;
        // SAFETY: the caller's contract.
        let (client, dest) = unsafe {
            (
                client_ref(client)?,
                required(destination_json, destination_len, "destination_json")?,
            )
        };
        let result = client.inner.test_connection(&destination(dest)?);
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(json_out, to_json(&result)?) }
    })
}

#[cfg(test)]
mod tests;

/// Opens (creating it, owner-only) the outbox file at `path` (UTF-8). `options_json` is NULL or
/// the normalization options of freight_normalize, used by freight_outbox_enqueue.
///
/// # Safety
/// `path` must point to `path_len` readable bytes; `options_json` NULL or readable;
/// `outbox_out` writable. Free the outbox with freight_outbox_free.
#[no_mangle]
pub unsafe extern "C" fn freight_outbox_open(
    path: *const c_char,
    path_len: usize,
    options_json: *const c_char,
    options_len: usize,
    outbox_out: *mut *mut freight_outbox,
) -> freight_result {
    guard(|| {
        out_ptr(outbox_out, "outbox_out")?;
        // SAFETY: the caller's contract on each (pointer, length) pair.
        let (path, options) = unsafe {
            (
                required(path, path_len, "path")?,
                str_in(options_json, options_len, "options_json", true)?,
            )
        };
        let opts: PrepareOptions = options_from(options)?;
        let inner = ::freight_outbox::Outbox::open(path)
            .map_err(|e| fail(freight_result::Storage, e.0))?
            .with_prepare_options(opts);
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { handle_out(outbox_out, freight_outbox { inner }) };
        Ok(())
    })
}

/// Frees an outbox. NULL is a no-op. No other thread may be using it.
///
/// # Safety
/// `outbox` must be NULL or an outbox from freight_outbox_open, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn freight_outbox_free(outbox: *mut freight_outbox) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { handle_free(outbox) }
}

/// # Safety
/// `outbox` must be NULL or a live outbox.
unsafe fn outbox_ref<'a>(
    outbox: *const freight_outbox,
) -> Result<&'a ::freight_outbox::Outbox, Error> {
    if outbox.is_null() {
        return Err(fail(freight_result::NullArgument, "outbox is NULL"));
    }
    // SAFETY: non-NULL and live by the caller's contract.
    Ok(unsafe { &(*outbox).inner })
}

/// Validates and stores events for the destination key `key` (resolved at flush time).
/// `*report_out` receives `{"stored":n,"duplicates":n,"rejected":[…],"skipped":[…],
/// "warnings":[…]}` (an event without `event_id` is given one derived from its content).
///
/// # Safety
/// As freight_client_send, with a live outbox.
#[no_mangle]
pub unsafe extern "C" fn freight_outbox_enqueue(
    outbox: *const freight_outbox,
    key: *const c_char,
    key_len: usize,
    events_json: *const c_char,
    events_len: usize,
    report_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(report_out, "report_out")?;
        // SAFETY: the caller's contract.
        let (outbox, key, events) = unsafe {
            (
                outbox_ref(outbox)?,
                required(key, key_len, "key")?,
                required(events_json, events_len, "events_json")?,
            )
        };
        let events = match parse_json(events, "events_json")? {
            Value::Array(a) => a,
            _ => {
                return Err(fail(
                    freight_result::InvalidJson,
                    "events_json must be a JSON array of events",
                ))
            }
        };
        let report = outbox
            .enqueue(key, &events, unix_now())
            .map_err(|e| fail(freight_result::Storage, e.0))?;
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(report_out, to_json(&report)?) }
    })
}

/// Sends due events with `client`. `destinations_json` maps keys to credentials, supplied at
/// flush time and never stored: `{"shop-1":{"pixel_id":"…","access_token":"…",
/// "test_event_code":"…","app_secret":"…"}}`; events of other keys stay pending. `*report_out`
/// receives `{"requests","delivered","failed","retried","expired","pruned",
/// "paused":[[key,reason]],"unresolved":[key],"invalid":[[key,reason]],"stopped":null|"…",
/// "interrupted":false}` (`stopped`: the storage error that ended the flush early; the counts
/// are what it did; `interrupted`: freight_client_cancel stopped it, its events stay pending): a
/// destination that cannot be used (an empty token, a bad pixel id) keeps its events pending
/// and is listed in `invalid` (when it has due events), without holding back the others.
///
/// # Safety
/// As freight_client_send, with a live outbox and client.
#[no_mangle]
pub unsafe extern "C" fn freight_outbox_flush(
    outbox: *const freight_outbox,
    client: *const freight_client,
    destinations_json: *const c_char,
    destinations_len: usize,
    report_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(report_out, "report_out")?;
        // SAFETY: the caller's contract.
        let (outbox, client, dests) = unsafe {
            (
                outbox_ref(outbox)?,
                client_ref(client)?,
                required(destinations_json, destinations_len, "destinations_json")?,
            )
        };
        let table = match parse_json(dests, "destinations_json")? {
            Value::Object(m) => m,
            _ => {
                return Err(fail(
                    freight_result::InvalidJson,
                    "destinations_json must map keys to destinations",
                ))
            }
        };
        // A destination that cannot be used holds back only its own events.
        let resolved: std::collections::HashMap<String, Result<Destination, String>> = table
            .iter()
            .map(|(key, value)| (key.clone(), Destination::from_value(value).map_err(|e| e.0)))
            .collect();
        let report = outbox
            .flush_table(
                &client.inner,
                &resolved,
                unix_now(),
                ::freight_outbox::FlushLimits::default(),
                "libfreight",
                Some(&client.cancel),
            )
            .map_err(|e| fail(freight_result::Storage, e.0))?;
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(report_out, to_json(&report)?) }
    })
}

/// Writes `{"pending","delivered","failed","expired","paused":[[key,reason,until]]}`.
///
/// # Safety
/// `outbox` must be a live outbox; `json_out` writable.
#[no_mangle]
pub unsafe extern "C" fn freight_outbox_stats(
    outbox: *const freight_outbox,
    json_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(json_out, "json_out")?;
        // SAFETY: the caller's contract.
        let outbox = unsafe { outbox_ref(outbox)? };
        let stats = outbox
            .stats(unix_now())
            .map_err(|e| fail(freight_result::Storage, e.0))?;
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(json_out, to_json(&stats)?) }
    })
}

/// Re-queues the failed events of the destination `key` (NULL: of every destination; an empty
/// key is refused, as a plugin's unset setting, not a request for every tenant's events), and
/// with `expired` non-zero the expired ones still inside Meta's window; `*count_out` receives
/// how many.
///
/// # Safety
/// `outbox` must be a live outbox; `key` NULL or readable; `count_out` writable.
#[no_mangle]
pub unsafe extern "C" fn freight_outbox_requeue(
    outbox: *const freight_outbox,
    key: *const c_char,
    key_len: usize,
    expired: i32,
    count_out: *mut u64,
) -> freight_result {
    guard(|| {
        if count_out.is_null() {
            return Err(fail(freight_result::NullArgument, "count_out is NULL"));
        }
        // SAFETY: the caller's contract.
        let outbox = unsafe { outbox_ref(outbox)? };
        let key = if key.is_null() {
            None
        } else {
            // SAFETY: the caller's contract.
            let key = unsafe { required(key, key_len, "key")? };
            if key.is_empty() {
                return Err(fail(
                    freight_result::InvalidArgument,
                    "key is empty; pass NULL to re-queue the events of every destination",
                ));
            }
            Some(key)
        };
        let n = outbox
            .requeue(key, expired != 0, unix_now())
            .map_err(|e| fail(freight_result::Storage, e.0))?;
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { *count_out = n as u64 };
        Ok(())
    })
}

/// Stored events in `state` (`pending`, `delivered`, `failed` or `expired`), oldest first, at
/// most `limit`, into `*json_out`: `[{"id","dest_key","state","attempts","last_error",
/// "event"}]` (`event` the wire event, null when the stored one cannot be read; `last_error`
/// why it failed). Failed and expired events stay inspectable.
///
/// # Safety
/// `outbox` must be a live outbox; `state` readable; `json_out` writable.
#[no_mangle]
pub unsafe extern "C" fn freight_outbox_list(
    outbox: *const freight_outbox,
    state: *const c_char,
    state_len: usize,
    limit: usize,
    json_out: *mut *mut c_char,
) -> freight_result {
    guard(|| {
        out_ptr(json_out, "json_out")?;
        // SAFETY: the caller's contract.
        let (outbox, state) =
            unsafe { (outbox_ref(outbox)?, required(state, state_len, "state")?) };
        let state = ::freight_outbox::State::parse(state).ok_or_else(|| {
            fail(
                freight_result::InvalidArgument,
                "state must be pending, delivered, failed or expired",
            )
        })?;
        let events = outbox
            .list(state, limit)
            .map_err(|e| fail(freight_result::Storage, e.0))?;
        // SAFETY: checked non-NULL above; writable by contract.
        unsafe { write_string(json_out, to_json(&events)?) }
    })
}

/// Lifts the circuit breaker of a destination key (after its token was fixed).
///
/// # Safety
/// `outbox` must be a live outbox; `key` readable.
#[no_mangle]
pub unsafe extern "C" fn freight_outbox_resume(
    outbox: *const freight_outbox,
    key: *const c_char,
    key_len: usize,
) -> freight_result {
    guard(|| {
        // SAFETY: the caller's contract.
        let (outbox, key) = unsafe { (outbox_ref(outbox)?, required(key, key_len, "key")?) };
        outbox
            .resume(key)
            .map(drop)
            .map_err(|e| fail(freight_result::Storage, e.0))
    })
}
