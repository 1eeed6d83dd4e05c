//! Python objects read in place by the pipeline ([`freight::input::Input`]).
//!
//! `prepare`, `request_body` and `Client.send` walk the caller's dicts and lists directly,
//! with the GIL held, and borrow the UTF-8 of their strings: no intermediate JSON tree, no
//! copy of a string that is only hashed. What comes out is owned (wire events, a body), so a
//! send still releases the GIL for the network.
//!
//! Anything JSON has no value for (a `set`, an `int` beyond 64 bits, `nan`, a naive
//! `datetime`, a non-string key, a lone surrogate) is not guessed at: the node reads as
//! `null` and marks the call as failed; the caller then converts the events with the strict
//! converter of `lib.rs`, which raises a `ValidationError` naming the place.

use freight::input::{Input, InputKey, View};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::borrow::Cow;
use std::cell::Cell;

/// `PyUnicode_AsUTF8AndSize`: the UTF-8 of a `str`, without a copy.
type AsUtf8AndSize =
    unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::Py_ssize_t) -> *const std::os::raw::c_char;

/// `PyUnicode_AsUTF8AndSize`, looked up in the running interpreter. It is in the stable ABI
/// from Python 3.10 only, so this abi3 module cannot link to it (a `python3.dll` of 3.9 lacks
/// it, and PyPy names it differently): it is used when the interpreter is 3.10 or later and
/// exports it; otherwise each string's text is copied.
fn as_utf8_and_size(py: Python<'_>) -> Option<AsUtf8AndSize> {
    static FOUND: std::sync::OnceLock<Option<AsUtf8AndSize>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        if py.version_info() < (3, 10) {
            return None;
        }
        lookup()
    })
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
fn lookup() -> Option<AsUtf8AndSize> {
    extern "C" {
        fn dlsym(
            handle: *mut std::ffi::c_void,
            symbol: *const std::os::raw::c_char,
        ) -> *mut std::ffi::c_void;
    }
    // RTLD_DEFAULT: the symbols already loaded in the process (the interpreter's).
    #[cfg(target_os = "linux")]
    let default = std::ptr::null_mut();
    #[cfg(target_os = "macos")]
    let default = -2isize as *mut std::ffi::c_void;
    // SAFETY: dlsym with a NUL-terminated name only reads the process's symbol tables.
    let found = unsafe { dlsym(default, c"PyUnicode_AsUTF8AndSize".as_ptr()) };
    if found.is_null() {
        return None;
    }
    // SAFETY: the symbol is CPython's `PyUnicode_AsUTF8AndSize`, whose C signature is
    // `const char *(PyObject *, Py_ssize_t *)` (stable ABI, 3.10+).
    Some(unsafe { std::mem::transmute::<*mut std::ffi::c_void, AsUtf8AndSize>(found) })
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn lookup() -> Option<AsUtf8AndSize> {
    None
}

/// Values this deep or deeper are refused, as by the strict converter (the event itself is
/// at depth 0): custom properties are copied recursively.
const MAX_DEPTH: u32 = 64;

/// State shared by the nodes of one call.
pub(crate) struct Ctx {
    utf8: Option<AsUtf8AndSize>,
    failed: Cell<bool>,
}

impl Ctx {
    pub(crate) fn new(py: Python<'_>) -> Ctx {
        Ctx {
            utf8: as_utf8_and_size(py),
            failed: Cell::new(false),
        }
    }

    /// True when some value could not be read: the results must not be used.
    pub(crate) fn failed(&self) -> bool {
        self.failed.get()
    }

    fn fail<T>(&self, _why: PyErr) -> View<'static, T>
    where
        T: Input,
    {
        self.failed.set(true);
        View::Null
    }

    fn fail_null<T: Input>(&self) -> View<'static, T> {
        self.failed.set(true);
        View::Null
    }
}

/// One Python value.
pub(crate) struct Node<'py, 'c> {
    obj: Bound<'py, PyAny>,
    ctx: &'c Ctx,
    depth: u32,
}

impl<'py, 'c> Node<'py, 'c> {
    pub(crate) fn new(obj: Bound<'py, PyAny>, ctx: &'c Ctx) -> Self {
        Node { obj, ctx, depth: 0 }
    }

    fn int(&self) -> View<'static, Self> {
        if let Ok(i) = self.obj.extract::<i64>() {
            return View::Int(i);
        }
        match self.obj.extract::<u64>() {
            Ok(u) => View::UInt(u),
            Err(e) => self.ctx.fail(e),
        }
    }

    fn float(&self, f: PyResult<f64>) -> View<'static, Self> {
        match f {
            Ok(f) if f.is_finite() => View::Float(f),
            Ok(_) => self.ctx.fail_null(),
            Err(e) => self.ctx.fail(e),
        }
    }

    fn array(&self, seq: Seq<'py>) -> View<'static, Self> {
        View::Array(Items::new(seq, self))
    }

    fn dict(&self, d: &Bound<'py, PyDict>) -> View<'static, Self> {
        View::Object(Entries {
            dict: d.clone(),
            pos: 0,
            ctx: self.ctx,
            depth: self.depth + 1,
        })
    }

    /// Types JSON has no direct value for, as the strict converter reads them: aware
    /// datetimes as Unix seconds, `Decimal` as a float, str/int/float/dict/list subclasses.
    fn other(&self) -> View<'_, Self> {
        let o = &self.obj;
        if o.is_instance_of::<PyString>() {
            return str_view(o, self.ctx);
        }
        if o.is_instance_of::<PyBool>() {
            return match o.extract::<bool>() {
                Ok(b) => View::Bool(b),
                Err(e) => self.ctx.fail(e),
            };
        }
        if o.is_instance_of::<PyInt>() {
            return self.int();
        }
        if o.is_instance_of::<PyFloat>() {
            return self.float(o.extract::<f64>());
        }
        if let Ok(d) = o.cast::<PyDict>() {
            return self.dict(d);
        }
        if let Ok(l) = o.cast::<PyList>() {
            return self.array(Seq::List(l.clone()));
        }
        if let Ok(t) = o.cast::<PyTuple>() {
            return self.array(Seq::Tuple(t.clone()));
        }
        let type_name = match o.get_type().name() {
            Ok(n) => n,
            Err(e) => return self.ctx.fail(e),
        };
        if type_name == "datetime" {
            let aware = o.getattr("tzinfo").is_ok_and(|tz| !tz.is_none());
            if !aware {
                return self.ctx.fail_null();
            }
            return match o.call_method0("timestamp").and_then(|t| t.extract::<f64>()) {
                Ok(ts) if ts.is_finite() => View::Int(ts.floor() as i64),
                Ok(_) => self.ctx.fail_null(),
                Err(e) => self.ctx.fail(e),
            };
        }
        if type_name == "Decimal" {
            return self.float(o.call_method0("__float__").and_then(|f| f.extract::<f64>()));
        }
        self.ctx.fail_null()
    }
}

/// The text of a `str`, borrowed when the interpreter allows it.
fn str_view<'a, T: Input>(o: &'a Bound<'_, PyAny>, ctx: &Ctx) -> View<'a, T> {
    match str_of(o, ctx) {
        Some(s) => View::Str(s),
        None => ctx.fail_null(),
    }
}

fn str_of<'a>(o: &'a Bound<'_, PyAny>, ctx: &Ctx) -> Option<Cow<'a, str>> {
    if let Some(as_utf8_and_size) = ctx.utf8 {
        let mut size: ffi::Py_ssize_t = 0;
        // SAFETY: `o` is a live `str` (checked by every caller) and the GIL is held. The
        // function returns the string's UTF-8 buffer, owned by the string object and valid
        // for as long as it lives, which the returned borrow of `o` guarantees; or null with
        // an exception set (a lone surrogate), which is cleared here.
        let p = unsafe { as_utf8_and_size(o.as_ptr(), &mut size) };
        if p.is_null() {
            drop(PyErr::take(o.py()));
            ctx.failed.set(true);
            return None;
        }
        let len = usize::try_from(size).ok()?;
        // SAFETY: `p` points to `len` initialized bytes (see above).
        let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) };
        // SAFETY: CPython guarantees the buffer is valid UTF-8.
        Some(Cow::Borrowed(unsafe {
            std::str::from_utf8_unchecked(bytes)
        }))
    } else {
        match o.cast::<PyString>().map(|s| s.to_cow()) {
            Ok(Ok(s)) => Some(Cow::Owned(s.into_owned())),
            _ => {
                ctx.failed.set(true);
                None
            }
        }
    }
}

impl<'py, 'c> Input for Node<'py, 'c> {
    type Items = Items<'py, 'c>;
    type Entries = Entries<'py, 'c>;
    type Key = Key<'py, 'c>;

    fn view(&self) -> View<'_, Self> {
        let o = &self.obj;
        if self.depth >= MAX_DEPTH {
            return self.ctx.fail_null();
        }
        // Exact types first: one pointer comparison each.
        if o.is_none() {
            View::Null
        } else if o.is_exact_instance_of::<PyString>() {
            str_view(o, self.ctx)
        } else if let Ok(d) = o.cast_exact::<PyDict>() {
            self.dict(d)
        } else if o.is_exact_instance_of::<PyFloat>() {
            self.float(o.extract::<f64>())
        } else if o.is_exact_instance_of::<PyBool>() {
            View::Bool(o.is_truthy().unwrap_or(false))
        } else if o.is_exact_instance_of::<PyInt>() {
            self.int()
        } else if let Ok(l) = o.cast_exact::<PyList>() {
            self.array(Seq::List(l.clone()))
        } else {
            self.other()
        }
    }

    /// A hashed dict lookup (the pipeline asks an event for its `consent` before reading it).
    fn get(&self, key: &str) -> Option<Self> {
        if self.depth >= MAX_DEPTH {
            self.ctx.failed.set(true);
            return None;
        }
        let d = self.obj.cast::<PyDict>().ok()?;
        let py = d.py();
        let key = match key {
            "consent" => pyo3::intern!(py, "consent").clone(),
            _ => PyString::new(py, key),
        };
        match d.get_item(key) {
            Ok(value) => value.map(|obj| Node {
                obj,
                ctx: self.ctx,
                depth: self.depth + 1,
            }),
            Err(_) => {
                self.ctx.failed.set(true);
                None
            }
        }
    }
}

/// A list or a tuple.
enum Seq<'py> {
    List(Bound<'py, PyList>),
    Tuple(Bound<'py, PyTuple>),
}

/// The items of a list or tuple. A list that shrinks while it is read ends early (the
/// pipeline runs no Python code that could change it, bar a `Decimal` or `datetime`
/// subclass of the caller's).
pub(crate) struct Items<'py, 'c> {
    seq: Seq<'py>,
    next: usize,
    len: usize,
    ctx: &'c Ctx,
    depth: u32,
}

impl<'py, 'c> Items<'py, 'c> {
    fn new(seq: Seq<'py>, parent: &Node<'py, 'c>) -> Self {
        let len = match &seq {
            Seq::List(l) => l.len(),
            Seq::Tuple(t) => t.len(),
        };
        Items {
            seq,
            next: 0,
            len,
            ctx: parent.ctx,
            depth: parent.depth + 1,
        }
    }
}

impl<'py, 'c> Iterator for Items<'py, 'c> {
    type Item = Node<'py, 'c>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.len {
            return None;
        }
        let item = match &self.seq {
            Seq::List(l) => l.get_item(self.next),
            Seq::Tuple(t) => t.get_item(self.next),
        };
        self.next += 1;
        match item {
            Ok(obj) => Some(Node {
                obj,
                ctx: self.ctx,
                depth: self.depth,
            }),
            Err(_) => {
                self.ctx.failed.set(true);
                self.len = self.next;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Items<'_, '_> {}

/// The entries of a dict, in insertion order.
pub(crate) struct Entries<'py, 'c> {
    dict: Bound<'py, PyDict>,
    pos: ffi::Py_ssize_t,
    ctx: &'c Ctx,
    depth: u32,
}

impl<'py, 'c> Iterator for Entries<'py, 'c> {
    type Item = (Key<'py, 'c>, Node<'py, 'c>);

    fn next(&mut self) -> Option<Self::Item> {
        let mut key: *mut ffi::PyObject = std::ptr::null_mut();
        let mut value: *mut ffi::PyObject = std::ptr::null_mut();
        // SAFETY: `dict` is a live dict and the GIL is held. `PyDict_Next` stays memory-safe
        // even if the dict changes between calls (it then may skip or repeat entries); it
        // returns borrowed references, made owned right below.
        let more =
            unsafe { ffi::PyDict_Next(self.dict.as_ptr(), &mut self.pos, &mut key, &mut value) };
        if more == 0 {
            return None;
        }
        let py = self.dict.py();
        // SAFETY: both pointers are valid borrowed references (non-null when `more != 0`).
        let (key, value) = unsafe {
            (
                Bound::from_borrowed_ptr(py, key),
                Bound::from_borrowed_ptr(py, value),
            )
        };
        Some((
            Key {
                obj: key,
                ctx: self.ctx,
            },
            Node {
                obj: value,
                ctx: self.ctx,
                depth: self.depth,
            },
        ))
    }
}

/// A dict key: a `str` (anything else fails the call).
pub(crate) struct Key<'py, 'c> {
    obj: Bound<'py, PyAny>,
    ctx: &'c Ctx,
}

impl InputKey for Key<'_, '_> {
    fn text(&self) -> Cow<'_, str> {
        if self.obj.is_exact_instance_of::<PyString>() || self.obj.is_instance_of::<PyString>() {
            if let Some(s) = str_of(&self.obj, self.ctx) {
                return s;
            }
        } else {
            self.ctx.failed.set(true);
        }
        Cow::Borrowed("")
    }
}

/// Reads every value under `node`. The pipeline stops reading an event it rejects or skips;
/// this makes a value without JSON meaning anywhere in such an event fail the call too, as it
/// does in an event that is sent.
pub(crate) fn walk(node: &Node<'_, '_>) {
    match node.view() {
        View::Array(items) => items.for_each(|item| walk(&item)),
        View::Object(entries) => entries.for_each(|(key, value)| {
            key.text();
            walk(&value);
        }),
        _ => {}
    }
}
