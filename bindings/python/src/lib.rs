//! `freight._freight`: the native half of the `freight` Python package.
//!
//! Thin by design: events are read in place from the caller's dicts ([`input`]) into owned
//! wire events, the GIL is released around anything slow (sending), and results come back
//! as plain dicts and lists. The Python half (`python/freight/`) adds the typed classes and
//! the exception tree.

mod input;

use freight::batch::{RequestBody, RequestFields};
use freight::client::{Client, ClientConfig};
use freight::destination::Destination;
use freight::input::Input;
use freight::normalize::{normalize as normalize_value, Field, NormalizeOptions};
use freight::prepare::{
    NotReady, Outcome, PrepareOptions, Prepared, PreparedEvent, Preparer, Rejection, Skipped,
};
use freight::report::Report;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde_json::{Map, Number, Value};

/// Raises `freight.errors.<name>(*args)`.
fn raise<'py, A>(py: Python<'py>, name: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let made = py
        .import("freight.errors")
        .and_then(|m| m.getattr(name))
        .and_then(|cls| cls.call1(args));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A value the strict converter refuses: where it is, the problem's slug and how to fix it
/// (never the value itself). Raised as a `ValidationError` whose `errors()` hold it.
struct Refused {
    loc: String,
    kind: &'static str,
    msg: String,
}

/// Why the strict converter stopped: a refused value, or an exception raised by Python code
/// it called (a `Decimal`'s `__float__`, a `datetime`'s `timestamp`).
enum ConvError {
    Refused(Refused),
    Py(PyErr),
}

impl From<PyErr> for ConvError {
    fn from(e: PyErr) -> Self {
        ConvError::Py(e)
    }
}

fn refused<T>(path: &str, kind: &'static str, msg: impl Into<String>) -> Result<T, ConvError> {
    Err(ConvError::Refused(Refused {
        loc: path.to_owned(),
        kind,
        msg: msg.into(),
    }))
}

/// `freight.errors.ValidationError("<loc>: <msg>", [(kind, loc, msg)])`.
fn invalid(py: Python<'_>, kind: &str, loc: &str, msg: &str) -> PyErr {
    raise(
        py,
        "ValidationError",
        (located(loc, msg), vec![(kind, loc, msg)]),
    )
}

/// `<loc>: <msg>`, or the message alone for the value itself (an empty `loc`).
fn located(loc: &str, msg: &str) -> String {
    if loc.is_empty() {
        msg.to_owned()
    } else {
        format!("{loc}: {msg}")
    }
}

impl ConvError {
    fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            ConvError::Refused(r) => invalid(py, r.kind, &r.loc, &r.msg),
            ConvError::Py(e) => e,
        }
    }
}

/// `decimal.Decimal` and `datetime.datetime`, the two types converted by Python code.
static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Python → JSON value. `path` names the place for error messages (never the value).
fn to_value(obj: &Bound<'_, PyAny>, path: &mut String, depth: usize) -> Result<Value, ConvError> {
    if depth > 64 {
        return refused(
            path,
            "invalid_value",
            "nested too deeply (64 levels at most)",
        );
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(utf8(s, path)?));
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.extract::<bool>()?));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::Number(u.into()));
        }
        return refused(
            path,
            "invalid_value",
            "integer out of range (64 bits at most)",
        );
    }
    if obj.is_instance_of::<PyFloat>() {
        let f = obj.extract::<f64>()?;
        return finite(f, path);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = Map::with_capacity(d.len());
        // A snapshot of the entries: converting a value may run Python code (a `Decimal`
        // subclass's `__float__`) that changes the dict.
        for item in d.items().iter() {
            let (k, v) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            let key = match k.cast::<PyString>() {
                Ok(s) => utf8(s, path)?,
                Err(_) => return refused(path, "invalid_type", "keys must be strings"),
            };
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
            let value = to_value(&v, path, depth + 1)?;
            path.truncate(len);
            m.insert(key, value);
        }
        return Ok(Value::Object(m));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return seq(l.iter(), l.len(), path, depth);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return seq(t.iter(), t.len(), path, depth);
    }
    // Money as `Decimal`; aware datetimes → Unix seconds.
    let py = obj.py();
    if obj.is_instance(DATETIME.import(py, "datetime", "datetime")?)? {
        // Naive as Python defines it: no tzinfo, or one that gives no offset for this time.
        let offset = obj
            .call_method0("utcoffset")
            .map_err(|e| value_error(py, e, path))?;
        if offset.is_none() {
            return refused(
                path,
                "invalid_value",
                "a timezone-naive datetime is ambiguous; use an aware datetime or Unix seconds",
            );
        }
        let ts = obj
            .call_method0("timestamp")
            .and_then(|t| t.extract::<f64>())
            .map_err(|e| value_error(py, e, path))?;
        return Ok(Value::Number((ts.floor() as i64).into()));
    }
    if obj.is_instance(DECIMAL.import(py, "decimal", "Decimal")?)? {
        // A signaling NaN refuses the conversion with a ValueError.
        let f = obj
            .call_method0("__float__")
            .and_then(|f| f.extract::<f64>())
            .map_err(|e| value_error(py, e, path))?;
        return finite(f, path);
    }
    let type_name = obj.get_type().name()?.to_cow()?.into_owned();
    refused(
        path,
        "invalid_type",
        format!("{type_name} values cannot be sent; use str, int, float, bool, None, dict or list"),
    )
}

/// An exception raised while converting a `datetime` or a `Decimal`: a `ValueError`,
/// `TypeError` or `ArithmeticError` says the value has no JSON meaning (a signaling NaN, a
/// timezone that gives no usable offset) and is refused like any other such value; anything
/// else (a bug in the caller's subclass) is raised as it is.
fn value_error(py: Python<'_>, e: PyErr, path: &str) -> ConvError {
    use pyo3::exceptions::{PyArithmeticError, PyTypeError};
    if e.is_instance_of::<PyValueError>(py)
        || e.is_instance_of::<PyTypeError>(py)
        || e.is_instance_of::<PyArithmeticError>(py)
    {
        ConvError::Refused(Refused {
            loc: path.to_owned(),
            kind: "invalid_value",
            msg: "has no JSON value (not a finite number, or a time without a usable UTC \
                  offset)"
                .into(),
        })
    } else {
        ConvError::Py(e)
    }
}

fn finite(f: f64, path: &str) -> Result<Value, ConvError> {
    match Number::from_f64(f) {
        Some(n) => Ok(Value::Number(n)),
        None => refused(path, "invalid_value", "not a finite number"),
    }
}

/// The UTF-8 text of a `str`; a lone surrogate (which UTF-8 cannot hold) is refused.
fn utf8(s: &Bound<'_, PyString>, path: &str) -> Result<String, ConvError> {
    match s.to_cow() {
        Ok(text) => Ok(text.into_owned()),
        Err(_) => refused(
            path,
            "invalid_value",
            "a string with a lone surrogate cannot be sent (it has no UTF-8 form)",
        ),
    }
}

fn seq<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    len: usize,
    path: &mut String,
    depth: usize,
) -> Result<Value, ConvError> {
    let mut out = Vec::with_capacity(len);
    for (i, item) in items.enumerate() {
        let l = path.len();
        path.push_str(&format!("[{i}]"));
        out.push(to_value(&item, path, depth + 1)?);
        path.truncate(l);
    }
    Ok(Value::Array(out))
}

/// JSON value → Python.
fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for item in a {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(m) => {
            let dict = PyDict::new(py);
            for (k, item) in m {
                dict.set_item(k, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

fn to_py_json<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    to_py(py, &value)
}

/// The list of events given to prepare or send.
fn events_in(py: Python<'_>, events: &Bound<'_, PyAny>) -> PyResult<Vec<Value>> {
    // The place of a value as the validation names it: `data[1].custom_data.value`.
    let mut path = String::from("data");
    match to_value(events, &mut path, 0) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(_) => Err(not_a_list(py)),
        Err(e) => Err(e.into_py(py)),
    }
}

fn not_a_list(py: Python<'_>) -> PyErr {
    invalid(
        py,
        "invalid_type",
        "events",
        "must be a list of event dicts",
    )
}

/// What is done with each event read from Python.
trait EventSink {
    /// Takes one event; true when it is ready to send (and so was read whole).
    fn event<I: Input>(&mut self, index: usize, event: I) -> bool;
    /// Forgets every event seen (before a second reading).
    fn reset(&mut self);
}

/// Feeds the events (a list or tuple of dicts) to `sink`, read in place. When a value has
/// no JSON meaning, the strict converter reads the events again: it raises a
/// `ValidationError` that names the place. Returns the number of events.
fn read_events(
    py: Python<'_>,
    events: &Bound<'_, PyAny>,
    sink: &mut impl EventSink,
) -> PyResult<usize> {
    let list = events.cast::<PyList>().ok();
    let tuple = events.cast::<PyTuple>().ok();
    if list.is_none() && tuple.is_none() {
        return Err(not_a_list(py));
    }
    let walk = input::Walk::new(py)?;
    let mut count = 0;
    {
        let mut take = |i: usize, e: Bound<'_, PyAny>| {
            // SAFETY: `e` is an item of `events`, which the caller holds, unchanged (no Python
            // code runs), until after `walk` is dropped below.
            let node = || unsafe { input::Node::new(&e, &walk) };
            if !sink.event(i, node()) {
                input::read_all(&node());
            }
        };
        if let Some(list) = list {
            for (i, e) in list.iter().enumerate() {
                take(i, e);
                count += 1;
            }
        } else if let Some(tuple) = tuple {
            for (i, e) in tuple.iter().enumerate() {
                take(i, e);
                count += 1;
            }
        }
    }
    let failed = walk.failed();
    // The collector runs again before any Python code does.
    drop(walk);
    if failed {
        let values = events_in(py, events)?;
        sink.reset();
        for (i, e) in values.iter().enumerate() {
            sink.event(i, e);
        }
        count = values.len();
    }
    Ok(count)
}

/// `prepare`: every outcome, as the core's `prepare` gives them.
struct PrepareSink {
    preparer: Preparer,
    out: Prepared,
}

impl EventSink for PrepareSink {
    fn event<I: Input>(&mut self, index: usize, event: I) -> bool {
        match self.preparer.process(event, index) {
            Outcome::Ready(e) => self.out.events.push(*e),
            Outcome::Rejected(r) => self.out.rejected.push(r),
            Outcome::Skipped(s) => self.out.skipped.push(s),
        }
        self.out.events.last().is_some_and(|e| e.index == index)
    }

    fn reset(&mut self) {
        self.out = Prepared::default();
    }
}

/// `request_body`: the wire events appended to one body; denied consent keeps an event out.
struct BodySink {
    preparer: Preparer,
    /// Each event is prepared into this one and written to the body at once.
    slot: PreparedEvent,
    body: RequestBody,
    rejected: Vec<Rejection>,
    skipped: Vec<Skipped>,
}

impl EventSink for BodySink {
    fn event<I: Input>(&mut self, index: usize, event: I) -> bool {
        match self.preparer.process_into(event, index, &mut self.slot) {
            Ok(()) => {
                self.body.push(&self.slot.event);
                true
            }
            Err(NotReady::Rejected(r)) => {
                self.rejected.push(r);
                false
            }
            Err(NotReady::Skipped(s)) => {
                self.skipped.push(s);
                false
            }
        }
    }

    fn reset(&mut self) {
        self.body.clear();
        self.rejected.clear();
        self.skipped.clear();
    }
}

/// `Client.send`: owned wire events to send without the GIL, and the report so far.
struct SendSink {
    preparer: Preparer,
    ready: Vec<PreparedEvent>,
    report: Report,
}

impl EventSink for SendSink {
    fn event<I: Input>(&mut self, index: usize, event: I) -> bool {
        match self.preparer.process(event, index) {
            Outcome::Ready(e) => {
                self.ready.push(*e);
                return true;
            }
            Outcome::Rejected(r) => self.report.rejected.push(r),
            Outcome::Skipped(s) => self.report.skipped.push(s),
        }
        false
    }

    fn reset(&mut self) {
        self.ready.clear();
        self.report = Report::default();
    }
}

fn options_from(py: Python<'_>, options_json: Option<&str>) -> PyResult<NormalizeOptions> {
    let opts: NormalizeOptions = match options_json {
        Some(o) => serde_json::from_str(o)
            .map_err(|e| raise(py, "ConfigError", (format!("options: {e}"),)))?,
        None => NormalizeOptions::default(),
    };
    opts.check().map_err(|e| raise(py, "ConfigError", (e,)))?;
    Ok(opts)
}

/// normalize(field, value, options_json=None) -> (normalized, wire, warning)
#[pyfunction]
#[pyo3(signature = (field, value, options_json=None))]
fn normalize(
    py: Python<'_>,
    field: &str,
    value: &Bound<'_, PyAny>,
    options_json: Option<&str>,
) -> PyResult<(Option<String>, Option<String>, Option<&'static str>)> {
    let Some(field) = Field::from_key(field) else {
        return Err(invalid(
            py,
            "unknown_field",
            "field",
            &freight::normalize::not_a_field(field),
        ));
    };
    let loc = field.key();
    let text = if let Ok(s) = value.cast::<PyString>() {
        utf8(s, loc).map_err(|e| e.into_py(py))?
    } else if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        // The number itself, never a subclass's own `__str__` (an IntEnum's "Level.TWO").
        if let Ok(i) = value.extract::<i64>() {
            i.to_string()
        } else if let Ok(u) = value.extract::<u64>() {
            u.to_string()
        } else {
            return Err(invalid(
                py,
                "invalid_value",
                loc,
                "integer out of range (64 bits at most)",
            ));
        }
    } else {
        return Err(invalid(py, "invalid_type", loc, "the value must be a str"));
    };
    let mut opts = options_from(py, options_json)?;
    if opts.now.is_none() {
        opts.now = Some(unix_now());
    }
    match normalize_value(field, &text, &opts) {
        Ok(Some(n)) => {
            let wire = n.to_wire(field, &opts);
            Ok((Some(n.value), Some(wire), n.warning.map(|w| w.as_str())))
        }
        Ok(None) => Ok((None, None, Some("empty_value"))),
        Err(e) => {
            let errors = vec![(e.kind.as_str(), loc, e.msg)];
            Err(raise(
                py,
                "ValidationError",
                (format!("{loc}: {} ({})", e.msg, e.kind.as_str()), errors),
            ))
        }
    }
}

/// prepare(events, options_json=None, now=None) -> {"events": [...], "rejected": [...]}
#[pyfunction]
#[pyo3(signature = (events, options_json=None, now=None))]
fn prepare<'py>(
    py: Python<'py>,
    events: &Bound<'py, PyAny>,
    options_json: Option<&str>,
    now: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let normalize = options_from(py, options_json)?;
    let now = clock(py, now)?;
    let mut sink = PrepareSink {
        preparer: Preparer::new(&PrepareOptions { normalize }, now),
        out: Prepared::default(),
    };
    read_events(py, events, &mut sink)?;
    to_py_json(py, &sink.out)
}

/// The body, its event count, and the rejected and skipped events (as Python lists).
type BodyParts<'py> = (
    Bound<'py, PyBytes>,
    usize,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

/// request_body(events, options_json=None, now=None, fields_json=None) ->
/// (body: bytes, count: int, rejected: list, skipped: list)
#[pyfunction]
#[pyo3(signature = (events, options_json=None, now=None, fields_json=None))]
fn request_body<'py>(
    py: Python<'py>,
    events: &Bound<'py, PyAny>,
    options_json: Option<&str>,
    now: Option<&Bound<'py, PyAny>>,
    fields_json: Option<&str>,
) -> PyResult<BodyParts<'py>> {
    let now = clock(py, now)?;
    let normalize = options_from(py, options_json)?;
    let fields: RequestFields = match fields_json {
        Some(f) => serde_json::from_str(f)
            .map_err(|e| raise(py, "ConfigError", (format!("request fields: {e}"),)))?,
        None => RequestFields::default(),
    };
    fields.check().map_err(|e| raise(py, "ConfigError", (e,)))?;
    // The length the walk will see: a list subclass's own `__len__` is not asked.
    let n = match (events.cast::<PyList>(), events.cast::<PyTuple>()) {
        (Ok(l), _) => l.len(),
        (_, Ok(t)) => t.len(),
        _ => return Err(not_a_list(py)),
    };
    if n > freight::batch::MAX_EVENTS_PER_REQUEST {
        return Err(invalid(
            py,
            "too_many_events",
            "events",
            "a request holds at most 1000 events; split the list",
        ));
    }
    let mut sink = BodySink {
        preparer: Preparer::new(&PrepareOptions { normalize }, now),
        slot: PreparedEvent::default(),
        body: RequestBody::new(&fields),
        rejected: Vec::new(),
        skipped: Vec::new(),
    };
    sink.body.expect(n);
    read_events(py, events, &mut sink)?;
    let count = sink.body.len();
    let bytes = PyBytes::new(py, sink.body.finish());
    Ok((
        bytes,
        count,
        to_py_json(py, &sink.rejected)?,
        to_py_json(py, &sink.skipped)?,
    ))
}

fn destination(
    py: Python<'_>,
    pixel_id: &str,
    access_token: &str,
    test_event_code: Option<&str>,
    app_secret: Option<&str>,
) -> PyResult<Destination> {
    build_destination(pixel_id, access_token, test_event_code, app_secret)
        .map_err(|e| raise(py, "ConfigError", (e.0,)))
}

fn build_destination(
    pixel_id: &str,
    access_token: &str,
    test_event_code: Option<&str>,
    app_secret: Option<&str>,
) -> Result<Destination, freight::destination::DestinationError> {
    let mut d = Destination::new(pixel_id, access_token)?;
    if let Some(code) = test_event_code {
        d = d.with_test_event_code(code);
    }
    if let Some(secret) = app_secret {
        d = d.with_app_secret(secret)?;
    }
    Ok(d)
}

/// partner_agent(partner, platform_version, app_version) -> str
#[pyfunction]
fn partner_agent(
    py: Python<'_>,
    partner: &str,
    platform_version: &str,
    app_version: &str,
) -> PyResult<String> {
    freight::platform::partner_agent(partner, platform_version, app_version)
        .map_err(|e| invalid(py, "invalid_partner_agent", "partner_agent", &e.0))
}

/// event_id(secret, pixel_id, event_name, key) -> str (deterministic) ; event_id_random() -> str
#[pyfunction]
fn event_id_for(
    py: Python<'_>,
    secret: &[u8],
    pixel_id: &str,
    event_name: &str,
    key: &str,
) -> PyResult<String> {
    freight::platform::event_id_for(secret, pixel_id, event_name, key)
        .map_err(|e| invalid(py, "invalid_event_id", "event_id", &e.0))
}

/// A random UUIDv4 event id.
#[pyfunction]
fn event_id_random(py: Python<'_>) -> PyResult<String> {
    freight::platform::new_event_id().map_err(|e| raise(py, "FreightError", (e.0,)))
}

/// The clock of a call: `now` (Unix seconds, as the CLI's `--now`), or the system's.
fn clock(py: Python<'_>, now: Option<&Bound<'_, PyAny>>) -> PyResult<i64> {
    let max = i64::MAX.unsigned_abs();
    Ok(match whole(py, now, "now", max)? {
        Some(n) => i64::try_from(n).unwrap_or(i64::MAX),
        None => unix_now(),
    })
}

/// A whole number from 0 to `max`, or `None`; anything else is a `ValidationError` (as the C
/// ABI's `invalid_argument`), not an `OverflowError`/`TypeError` from the conversion.
fn whole(
    py: Python<'_>,
    v: Option<&Bound<'_, PyAny>>,
    name: &str,
    max: u64,
) -> PyResult<Option<u64>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let n = if v.is_instance_of::<PyBool>() {
        None
    } else {
        v.extract::<u64>().ok().filter(|n| *n <= max)
    };
    match n {
        Some(n) => Ok(Some(n)),
        None => Err(invalid(
            py,
            "invalid_value",
            name,
            &format!("must be a whole number from 0 to {max}"),
        )),
    }
}

/// click_ids(host, url, referrer, fbc_cookie, fbp_cookie, now_ms, random) -> dict
#[pyfunction]
#[pyo3(signature = (host, url=None, referrer=None, fbc_cookie=None, fbp_cookie=None, now_ms=None, random=None))]
#[allow(clippy::too_many_arguments)]
fn click_ids<'py>(
    py: Python<'py>,
    host: &str,
    url: Option<&str>,
    referrer: Option<&str>,
    fbc_cookie: Option<&str>,
    fbp_cookie: Option<&str>,
    now_ms: Option<&Bound<'py, PyAny>>,
    random: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let now_ms = match whole(py, now_ms, "now_ms", i64::MAX as u64)? {
        Some(ms) => ms as i64,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
    };
    let random = match whole(py, random, "random", u64::from(u32::MAX))? {
        Some(r) => r as u32,
        None => {
            freight::platform::new_fbp_random().map_err(|e| raise(py, "FreightError", (e.0,)))?
        }
    };
    let ctx = freight::platform::RequestContext {
        host,
        url,
        referrer,
        fbc_cookie,
        fbp_cookie,
    };
    to_py_json(py, &freight::platform::click_ids(&ctx, now_ms, random))
}

/// segment(call, options_json=None) -> dict (the event); raises ValidationError with errors()
#[pyfunction]
#[pyo3(signature = (call, options_json=None))]
fn segment<'py>(
    py: Python<'py>,
    call: &Bound<'py, PyAny>,
    options_json: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    // Places relative to the call, as the mapping names them: `properties.revenue`.
    let mut path = String::new();
    let call = to_value(call, &mut path, 0).map_err(|e| e.into_py(py))?;
    let opts: freight::segment::SegmentOptions = match options_json {
        Some(o) => serde_json::from_str(o)
            .map_err(|e| raise(py, "ConfigError", (format!("segment options: {e}"),)))?,
        None => Default::default(),
    };
    match freight::segment::map_track(&call, &opts) {
        Ok(event) => to_py(py, &event),
        Err(problems) => {
            let first = &problems[0];
            let message = format!(
                "{} ({})",
                located(&first.loc, &first.msg),
                first.kind.as_str()
            );
            Err(raise(
                py,
                "ValidationError",
                (message, to_py_json(py, &problems)?),
            ))
        }
    }
}

/// Runs `send` (a send, an outbox flush) on a worker thread, without the GIL, while this
/// thread looks for signals every [`SIGNAL_POLL`]: Ctrl-C's `KeyboardInterrupt` (or an
/// exception another signal handler raises) stops the work — no new request starts, a retry
/// wait ends, the request in flight is answered and recorded — and is raised once the worker
/// is done. (A send may otherwise wait up to its `deadline_ms` for a throttled batch, deaf to
/// Ctrl-C.) Off the main thread, where Python delivers no signals, this only waits.
fn interruptibly<'py, T: Send>(
    py: Python<'py>,
    send: impl FnOnce(&std::sync::atomic::AtomicBool) -> T + Send,
) -> PyResult<T> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let caller = std::thread::current();
    // Run once: on the worker, or here when no thread can be started.
    let send = std::sync::Mutex::new(Some(send));
    let take = || send.lock().ok().and_then(|mut s| s.take());
    let unexpected = || PyValueError::new_err("the send or flush failed unexpectedly");
    std::thread::scope(|scope| {
        let (stop, done) = (&stop, &done);
        let spawned = std::thread::Builder::new().spawn_scoped(scope, || {
            // Done however the work ends, a panic included: the caller waits for this.
            struct Done<'a>(&'a AtomicBool, std::thread::Thread);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                    self.1.unpark();
                }
            }
            let _done = Done(done, caller.clone());
            take().map(|send| send(stop))
        });
        // No thread to be had (a process or memory limit reached): the work runs on this
        // thread, without the GIL, deaf to Ctrl-C as a C caller's would be; not a panic.
        let Ok(worker) = spawned else {
            return match take() {
                Some(send) => Ok(py.detach(|| send(stop))),
                None => Err(unexpected()),
            };
        };
        let mut raised = None;
        loop {
            // Woken by the worker as it ends, else after SIGNAL_POLL (or spuriously).
            let finished = py.detach(|| {
                if !done.load(Ordering::SeqCst) {
                    std::thread::park_timeout(SIGNAL_POLL);
                }
                done.load(Ordering::SeqCst)
            });
            if finished {
                break;
            }
            if raised.is_none() {
                if let Err(e) = py.check_signals() {
                    stop.store(true, Ordering::SeqCst);
                    raised = Some(e);
                }
            }
        }
        let out = py.detach(|| worker.join());
        match (raised, out) {
            (Some(e), _) => Err(e),
            (None, Ok(Some(out))) => Ok(out),
            (None, _) => Err(unexpected()),
        }
    })
}

/// How often a send looks for signals (Ctrl-C) while it waits.
const SIGNAL_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// The native client; `freight.Client` wraps it.
#[pyclass(frozen, name = "_Client", module = "freight._freight")]
struct NativeClient {
    inner: Client,
}

#[pymethods]
impl NativeClient {
    #[new]
    fn new(py: Python<'_>, config_json: &str) -> PyResult<Self> {
        let config: ClientConfig = serde_json::from_str(config_json)
            .map_err(|e| raise(py, "ConfigError", (format!("client configuration: {e}"),)))?;
        let inner = Client::new(config).map_err(|e| raise(py, "ConfigError", (e.0,)))?;
        Ok(NativeClient { inner })
    }

    #[pyo3(signature = (events, pixel_id, access_token, test_event_code=None, app_secret=None))]
    fn send<'py>(
        &self,
        py: Python<'py>,
        events: &Bound<'py, PyAny>,
        pixel_id: &str,
        access_token: &str,
        test_event_code: Option<&str>,
        app_secret: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dest = destination(py, pixel_id, access_token, test_event_code, app_secret)?;
        let mut sink = SendSink {
            preparer: self.inner.preparer(unix_now()),
            ready: Vec::new(),
            report: Report::default(),
        };
        let input = read_events(py, events, &mut sink)?;
        // Owned wire events only from here: other threads run Python while this one waits
        // on the network.
        let SendSink {
            ready, mut report, ..
        } = sink;
        let sent = interruptibly(py, |stop| {
            self.inner
                .session(&dest)
                .with_cancel(stop)
                .send_prepared(&ready)
        })?;
        report.pixel_id = dest.pixel_id().to_owned();
        report.merge(sent);
        report.update_counts(input);
        to_py_json(py, &report)
    }

    #[pyo3(signature = (pixel_id, access_token, test_event_code=None, app_secret=None))]
    fn test_connection<'py>(
        &self,
        py: Python<'py>,
        pixel_id: &str,
        access_token: &str,
        test_event_code: Option<&str>,
        app_secret: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dest = destination(py, pixel_id, access_token, test_event_code, app_secret)?;
        let result = py.detach(|| self.inner.test_connection(&dest));
        to_py_json(py, &result)
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "<freight client graph_url={:?} api_version={:?}>",
            c.graph_url, c.api_version
        )
    }
}

/// The native outbox; `freight.Outbox` wraps it.
#[pyclass(frozen, name = "_Outbox", module = "freight._freight")]
struct NativeOutbox {
    inner: freight_outbox::Outbox,
}

#[pymethods]
impl NativeOutbox {
    #[new]
    #[pyo3(signature = (path, options_json=None))]
    fn new(py: Python<'_>, path: &str, options_json: Option<&str>) -> PyResult<Self> {
        let normalize = options_from(py, options_json)?;
        let inner = freight_outbox::Outbox::open(path)
            .map_err(|e| raise(py, "FreightError", (e.0,)))?
            .with_prepare_options(PrepareOptions { normalize });
        Ok(NativeOutbox { inner })
    }

    fn enqueue<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        events: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let events = events_in(py, events)?;
        let report = py
            .detach(|| self.inner.enqueue(key, &events, unix_now()))
            .map_err(|e| raise(py, "FreightError", (e.0,)))?;
        to_py_json(py, &report)
    }

    /// destinations: {key: (pixel_id, access_token, test_event_code, app_secret) or the
    /// reason (a `str`) the caller's entry cannot be used}; a key whose credentials cannot be
    /// used holds back only its own events (`invalid`).
    fn flush<'py>(
        &self,
        py: Python<'py>,
        client: &NativeClient,
        destinations: std::collections::HashMap<String, Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        type Entry = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let resolved: std::collections::HashMap<String, Result<Destination, String>> = destinations
            .into_iter()
            .map(|(key, entry)| {
                let d = if let Ok(why) = entry.extract::<String>() {
                    Err(why)
                } else {
                    // Never the value in the reason: it may be a token.
                    match entry.extract::<Entry>() {
                        Ok((Some(p), Some(t), code, secret)) => {
                            build_destination(&p, &t, code.as_deref(), secret.as_deref())
                                .map_err(|e| e.0)
                        }
                        Ok(_) => Err("pixel_id and access_token are required".to_owned()),
                        Err(_) => Err("pixel_id, access_token, test_event_code and app_secret \
                                       must be text"
                            .to_owned()),
                    }
                };
                (key, d)
            })
            .collect();
        let report = interruptibly(py, |stop| {
            self.inner.flush_table(
                &client.inner,
                &resolved,
                unix_now(),
                freight_outbox::FlushLimits::default(),
                "freight-python",
                Some(stop),
            )
        })?
        .map_err(|e| raise(py, "FreightError", (e.0,)))?;
        to_py_json(py, &report)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self
            .inner
            .stats(unix_now())
            .map_err(|e| raise(py, "FreightError", (e.0,)))?;
        to_py_json(py, &s)
    }

    fn resume(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        self.inner
            .resume(key)
            .map_err(|e| raise(py, "FreightError", (e.0,)))
    }

    #[pyo3(signature = (key=None, expired=false))]
    fn requeue(&self, py: Python<'_>, key: Option<&str>, expired: bool) -> PyResult<usize> {
        self.inner
            .requeue(key, expired, unix_now())
            .map_err(|e| raise(py, "FreightError", (e.0,)))
    }

    fn list<'py>(
        &self,
        py: Python<'py>,
        state: &str,
        limit: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
        let Some(limit) = whole(py, Some(limit), "limit", max)? else {
            return Err(invalid(
                py,
                "invalid_value",
                "limit",
                "must be a whole number",
            ));
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let Some(state) = freight_outbox::State::parse(state) else {
            return Err(invalid(
                py,
                "invalid_value",
                "state",
                "must be pending, delivered, failed or expired",
            ));
        };
        let events = self
            .inner
            .list(state, limit)
            .map_err(|e| raise(py, "FreightError", (e.0,)))?;
        to_py_json(py, &events)
    }
}

/// _copy_strings(on) -> bool: read strings by copy, as on Python 3.9, from now on (or not);
/// returns the previous setting. For the test suite, which runs on a later Python.
#[pyfunction]
fn _copy_strings(on: bool) -> bool {
    input::COPY_STRINGS.swap(on, std::sync::atomic::Ordering::Relaxed)
}

/// The native module.
#[pymodule]
fn _freight(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", freight::VERSION)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(prepare, m)?)?;
    m.add_function(wrap_pyfunction!(request_body, m)?)?;
    m.add_function(wrap_pyfunction!(partner_agent, m)?)?;
    m.add_function(wrap_pyfunction!(event_id_for, m)?)?;
    m.add_function(wrap_pyfunction!(event_id_random, m)?)?;
    m.add_function(wrap_pyfunction!(click_ids, m)?)?;
    m.add_function(wrap_pyfunction!(segment, m)?)?;
    m.add_function(wrap_pyfunction!(_copy_strings, m)?)?;
    m.add_class::<NativeClient>()?;
    m.add_class::<NativeOutbox>()?;
    Ok(())
}
