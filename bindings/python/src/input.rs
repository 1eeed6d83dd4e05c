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
//! converter of `lib.rs`, which raises a `ValidationError` naming the place. So do the values
//! that only Python code can convert (an aware `datetime`, a `Decimal`): the strict converter
//! reads those.
//!
//! # Borrowed references
//!
//! Every node below an event is a *borrowed* reference (no reference counting: that was a
//! tenth of the call's time, each count a write to a cold object). This is sound because,
//! while a [`Walk`] is alive, no Python code runs and no object is freed:
//! - the caller holds the events and the GIL, and the reader calls nothing that runs Python
//!   code: no attribute, method, `__index__`, `__float__`, `__eq__` or `__hash__` (keys are
//!   compared by their text, values converted only from the built-in types and their
//!   subclasses, whose data the C API reads directly);
//! - the cyclic garbage collector is paused ([`Walk::new`]), so that an allocation (an
//!   exception for a value that cannot be read) cannot run a finalizer;
//! - the reader drops no reference but to objects it created (exceptions, which run no
//!   Python code when freed), so nothing it borrows loses its last reference;
//! - nothing releases the GIL: the reader calls the C API directly where PyO3 could set up
//!   state lazily on first use (PyO3 detaches from the interpreter to do so, which would let
//!   other threads run): errors are cleared with `PyErr_Clear`, never fetched as `PyErr`, and
//!   the interned `"consent"` is made before the walk.
//!
//! Once a value fails, the walk stops reading (every node reads as `null`, every container as
//! empty): the strict converter reads the events again anyway, and a self-referencing list
//! must not be walked to its depth limit along every path.

use freight::input::{Input, InputKey, View};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::Borrowed;
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// `PyUnicode_AsUTF8AndSize`: the UTF-8 of a `str`, without a copy.
type AsUtf8AndSize =
    unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::Py_ssize_t) -> *const std::os::raw::c_char;

/// When set, strings are read as on Python 3.9 (copied) whatever the interpreter: the test
/// suite runs on a later Python and reads the same events both ways (`_freight._copy_strings`).
pub(crate) static COPY_STRINGS: AtomicBool = AtomicBool::new(false);

/// `PyUnicode_AsUTF8AndSize`, looked up in the running interpreter. It is in the stable ABI
/// from Python 3.10 only, so this abi3 module cannot link to it (a `python3.dll` of 3.9 lacks
/// it, and PyPy names it differently): it is used when the interpreter is 3.10 or later and
/// exports it; otherwise each string's text is copied.
fn as_utf8_and_size(py: Python<'_>) -> Option<AsUtf8AndSize> {
    if COPY_STRINGS.load(Ordering::Relaxed) {
        return None;
    }
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

/// The reading of one call's events: the state its nodes share, and the pause of the cyclic
/// garbage collector that makes the nodes' borrowed references sound (module docs). Drop it
/// before running Python code again (the strict converter, building the results).
pub(crate) struct Walk<'py> {
    py: Python<'py>,
    utf8: Option<AsUtf8AndSize>,
    failed: Cell<bool>,
    /// The collector was running and is paused until the walk ends.
    paused: bool,
    /// The interned `"consent"`, made before the walk (see [`Node::get`]).
    consent: Bound<'py, PyString>,
    /// The UTF-8 of keys already read in this walk (the key's address, its text and the
    /// text's length), by the key's address: a caller's dicts mostly share their key objects
    /// (the constants of a dict display), so most keys are converted once per call.
    keys: [Cell<(usize, *const u8, usize)>; KEY_SLOTS],
}

/// Entries of [`Walk::keys`] (a power of two).
const KEY_SLOTS: usize = 64;

/// `gc.isenabled`, `gc.disable` and `gc.enable` (`PyGC_Disable` and co. are not in the
/// stable ABI of 3.9).
static GC: [PyOnceLock<Py<PyAny>>; 3] = [PyOnceLock::new(), PyOnceLock::new(), PyOnceLock::new()];

fn gc_call<'py>(py: Python<'py>, which: usize, name: &str) -> PyResult<Bound<'py, PyAny>> {
    GC[which].import(py, "gc", name)?.call0()
}

impl<'py> Walk<'py> {
    /// Pauses the cyclic garbage collector (if it runs) until the walk is dropped.
    pub(crate) fn new(py: Python<'py>) -> PyResult<Walk<'py>> {
        // Everything set up lazily is set up here, before anything is borrowed.
        let consent = pyo3::intern!(py, "consent").clone();
        let utf8 = as_utf8_and_size(py);
        // All three looked up before the collector's state is read: a first import may let
        // another thread run, which could change it in between.
        for (which, name) in [(0, "isenabled"), (1, "disable"), (2, "enable")] {
            GC[which].import(py, "gc", name)?;
        }
        let enabled = gc_call(py, 0, "isenabled")?.is_truthy()?;
        if enabled {
            gc_call(py, 1, "disable")?;
        }
        Ok(Walk {
            py,
            utf8,
            failed: Cell::new(false),
            paused: enabled,
            consent,
            keys: std::array::from_fn(|_| Cell::new((0, std::ptr::null(), 0))),
        })
    }

    /// True when some value could not be read: the results must not be used.
    pub(crate) fn failed(&self) -> bool {
        self.failed.get()
    }

    fn fail_null<T: Input>(&self) -> View<'static, T> {
        self.failed.set(true);
        View::Null
    }

    /// Clears the exception a C API call has just set, and fails the walk.
    fn fail_clear(&self) {
        // SAFETY: the GIL is held; clearing the error indicator runs no Python code.
        unsafe { ffi::PyErr_Clear() };
        self.failed.set(true);
    }

    /// True when the last C API call set an exception.
    fn error_set(&self) -> bool {
        // SAFETY: the GIL is held; this only reads the error indicator.
        !unsafe { ffi::PyErr_Occurred() }.is_null()
    }
}

impl Drop for Walk<'_> {
    fn drop(&mut self) {
        if self.paused {
            // `gc.enable()` cannot fail; if it ever did, the collector would stay paused,
            // which is safe, and the next call to `gc.enable()` restores it.
            let _ = gc_call(self.py, 2, "enable");
        }
    }
}

/// One Python value, borrowed (module docs).
pub(crate) struct Node<'a, 'py, 'w> {
    obj: Borrowed<'a, 'py, PyAny>,
    walk: &'w Walk<'py>,
    depth: u32,
}

impl<'a, 'py, 'w> Node<'a, 'py, 'w> {
    /// An event.
    ///
    /// # Safety
    ///
    /// `obj` must stay alive until `walk` is dropped, not only for `'a` (it is an item of the
    /// events list or tuple the caller holds): the walk remembers the text of the keys it has
    /// read by their address ([`Walk::keys`]), for the whole walk.
    pub(crate) unsafe fn new(obj: &'a Bound<'py, PyAny>, walk: &'w Walk<'py>) -> Self {
        Node {
            obj: obj.as_borrowed(),
            walk,
            depth: 0,
        }
    }

    /// An `int` or a subclass: the C API reads its value without `__index__`.
    fn int(&self) -> View<'static, Self> {
        let p = self.obj.as_ptr();
        // SAFETY: `p` is a live `int` and the GIL is held.
        let i = unsafe { ffi::PyLong_AsLongLong(p) };
        if i != -1 || !self.walk.error_set() {
            return View::Int(i);
        }
        // SAFETY: as above; the overflow error of the first call is cleared first.
        let u = unsafe {
            ffi::PyErr_Clear();
            ffi::PyLong_AsUnsignedLongLong(p)
        };
        if u != u64::MAX || !self.walk.error_set() {
            return View::UInt(u);
        }
        self.walk.fail_clear();
        View::Null
    }

    /// A `float` or a subclass: the C API reads its value without `__float__`.
    fn float(&self) -> View<'static, Self> {
        // SAFETY: the object is a live `float` and the GIL is held.
        let f = unsafe { ffi::PyFloat_AsDouble(self.obj.as_ptr()) };
        if f == -1.0 && self.walk.error_set() {
            self.walk.fail_clear();
            return View::Null;
        }
        if f.is_finite() {
            View::Float(f)
        } else {
            self.walk.fail_null()
        }
    }

    fn array(&self, seq: Seq<'a, 'py>) -> View<'static, Self> {
        View::Array(Items::new(seq, self))
    }

    fn dict(&self, d: Borrowed<'a, 'py, PyDict>) -> View<'static, Self> {
        View::Object(Entries {
            dict: d,
            pos: 0,
            parent_depth: self.depth,
            walk: self.walk,
        })
    }

    /// Subclasses of the JSON types, read as their base type (as the strict converter reads
    /// them) through the C API, which runs no Python code for them. Anything else (an aware
    /// `datetime`, a `Decimal`, …) needs Python code to convert: the call fails over to the
    /// strict converter, which converts what has a JSON meaning and names what has none.
    fn other(&self) -> View<'_, Self> {
        let o = self.obj;
        if o.is_instance_of::<PyString>() {
            return str_view(o, self.walk);
        }
        if o.is_instance_of::<PyInt>() {
            // `bool` cannot be subclassed: an exact `bool` was read by `view`.
            return self.int();
        }
        if o.is_instance_of::<PyFloat>() {
            return self.float();
        }
        if let Ok(d) = o.cast::<PyDict>() {
            return self.dict(d);
        }
        if let Ok(l) = o.cast::<PyList>() {
            return self.array(Seq::List(l));
        }
        if let Ok(t) = o.cast::<PyTuple>() {
            return self.array(Seq::Tuple(t));
        }
        self.walk.fail_null()
    }
}

/// The text of a `str`, borrowed when the interpreter allows it.
#[inline(always)]
fn str_view<'a, T: Input>(o: Borrowed<'a, '_, PyAny>, walk: &Walk<'_>) -> View<'a, T> {
    match str_of(o, walk) {
        Some(s) => View::Str(s),
        None => walk.fail_null(),
    }
}

#[inline(always)]
fn str_of<'a>(o: Borrowed<'a, '_, PyAny>, walk: &Walk<'_>) -> Option<Cow<'a, str>> {
    if let Some(as_utf8_and_size) = walk.utf8 {
        let mut size: ffi::Py_ssize_t = 0;
        // SAFETY: `o` is a live `str` (checked by every caller) and the GIL is held. The
        // function returns the string's UTF-8 buffer, owned by the string object and valid
        // for as long as it lives, which the borrow `'a` guarantees (module docs); or null
        // with an exception set (a lone surrogate), which is cleared here.
        let p = unsafe { as_utf8_and_size(o.as_ptr(), &mut size) };
        if p.is_null() {
            walk.fail_clear();
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
        // Python 3.9: the text is copied out of a UTF-8 `bytes` made for it.
        // SAFETY: `o` is a live `str` and the GIL is held; the function returns a new
        // reference, or null with an exception set.
        let bytes = unsafe { ffi::PyUnicode_AsUTF8String(o.as_ptr()) };
        if bytes.is_null() {
            walk.fail_clear();
            return None;
        }
        // SAFETY: `bytes` is a live `bytes` of `PyBytes_Size` bytes at `PyBytes_AsString`,
        // UTF-8 encoded by CPython; it is released right after the copy (freeing a `bytes`
        // runs no Python code).
        let text = unsafe {
            let len = usize::try_from(ffi::PyBytes_Size(bytes)).unwrap_or(0);
            let data = ffi::PyBytes_AsString(bytes).cast::<u8>();
            let text = String::from_utf8_lossy(std::slice::from_raw_parts(data, len)).into_owned();
            ffi::Py_DecRef(bytes);
            text
        };
        Some(Cow::Owned(text))
    }
}

impl<'a, 'py, 'w> Input for Node<'a, 'py, 'w> {
    type Items = Items<'a, 'py, 'w>;
    type Entries = Entries<'a, 'py, 'w>;
    type Key = Key<'a, 'py, 'w>;

    fn view(&self) -> View<'_, Self> {
        let o = self.obj;
        if self.walk.failed() {
            return View::Null; // the strict converter takes over (module docs)
        }
        if self.depth >= MAX_DEPTH {
            return self.walk.fail_null();
        }
        // Exact types first: one pointer comparison each.
        if o.is_none() {
            View::Null
        } else if o.is_exact_instance_of::<PyString>() {
            str_view(o, self.walk)
        } else if let Ok(d) = o.cast_exact::<PyDict>() {
            self.dict(d)
        } else if o.is_exact_instance_of::<PyFloat>() {
            self.float()
        } else if o.is_exact_instance_of::<PyBool>() {
            View::Bool(o.is(PyBool::new(o.py(), true)))
        } else if o.is_exact_instance_of::<PyInt>() {
            self.int()
        } else if let Ok(l) = o.cast_exact::<PyList>() {
            self.array(Seq::List(l))
        } else {
            self.other()
        }
    }

    /// A key looked up by its text through the entries: a hashed lookup could run a key's
    /// `__eq__` (module docs). The interned `"consent"` matches by identity, other keys by
    /// length first, so the usual event costs no text conversion.
    fn get(&self, key: &str) -> Option<Self> {
        let View::Object(entries) = self.view() else {
            return None;
        };
        let interned = (key == "consent").then_some(&self.walk.consent);
        let want = i64::try_from(key.chars().count()).ok()?;
        for (k, v) in entries {
            if interned.is_some_and(|i| k.obj.is(i)) {
                return Some(v);
            }
            if !(k.obj.is_exact_instance_of::<PyString>() || k.obj.is_instance_of::<PyString>()) {
                continue;
            }
            // SAFETY: `k` is a live `str`; `PyUnicode_GetLength` reads its length (or, for a
            // legacy string that cannot be made ready, sets an exception and returns -1).
            let len = unsafe { ffi::PyUnicode_GetLength(k.obj.as_ptr()) };
            if len < 0 {
                self.walk.fail_clear();
                return None;
            }
            if i64::try_from(len).ok() == Some(want) && k.text() == key {
                return Some(v);
            }
        }
        None
    }
}

/// A list or a tuple.
enum Seq<'a, 'py> {
    List(Borrowed<'a, 'py, PyList>),
    Tuple(Borrowed<'a, 'py, PyTuple>),
}

/// The items of a list or tuple (no Python code runs while they are read, so a list keeps
/// its length).
pub(crate) struct Items<'a, 'py, 'w> {
    seq: Seq<'a, 'py>,
    next: usize,
    len: usize,
    parent_depth: u32,
    walk: &'w Walk<'py>,
}

impl<'a, 'py, 'w> Items<'a, 'py, 'w> {
    fn new(seq: Seq<'a, 'py>, parent: &Node<'a, 'py, 'w>) -> Self {
        let len = match &seq {
            Seq::List(l) => l.len(),
            Seq::Tuple(t) => t.len(),
        };
        Items {
            seq,
            next: 0,
            len,
            parent_depth: parent.depth,
            walk: parent.walk,
        }
    }
}

impl<'a, 'py, 'w> Iterator for Items<'a, 'py, 'w> {
    type Item = Node<'a, 'py, 'w>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.len || self.walk.failed() {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let i = ffi::Py_ssize_t::try_from(i).ok()?;
        // SAFETY: the sequence is live and `i` is below its length, which cannot change
        // during the walk; both functions return a borrowed reference (null with an exception
        // only for a bad index).
        let (py, p) = unsafe {
            match &self.seq {
                Seq::List(l) => (l.py(), ffi::PyList_GetItem(l.as_ptr(), i)),
                Seq::Tuple(t) => (t.py(), ffi::PyTuple_GetItem(t.as_ptr(), i)),
            }
        };
        // SAFETY: a borrowed reference or null, valid for `'a` (module docs).
        match unsafe { Borrowed::from_ptr_or_opt(py, p) } {
            Some(obj) => Some(Node {
                obj,
                walk: self.walk,
                depth: self.parent_depth + 1,
            }),
            None => {
                self.walk.fail_clear();
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

impl ExactSizeIterator for Items<'_, '_, '_> {}

/// The entries of a dict, in insertion order.
pub(crate) struct Entries<'a, 'py, 'w> {
    dict: Borrowed<'a, 'py, PyDict>,
    pos: ffi::Py_ssize_t,
    parent_depth: u32,
    walk: &'w Walk<'py>,
}

impl<'a, 'py, 'w> Iterator for Entries<'a, 'py, 'w> {
    type Item = (Key<'a, 'py, 'w>, Node<'a, 'py, 'w>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.walk.failed() {
            return None;
        }
        let mut key: *mut ffi::PyObject = std::ptr::null_mut();
        let mut value: *mut ffi::PyObject = std::ptr::null_mut();
        // SAFETY: `dict` is a live dict and the GIL is held; `PyDict_Next` returns borrowed
        // references to its entries.
        let more =
            unsafe { ffi::PyDict_Next(self.dict.as_ptr(), &mut self.pos, &mut key, &mut value) };
        if more == 0 {
            return None;
        }
        let py = self.dict.py();
        // SAFETY: both pointers are non-null (`more != 0`) borrowed references, valid for
        // `'a`: the dict is not changed and keeps them during the walk (module docs).
        let (key, value) = unsafe { (Borrowed::from_ptr(py, key), Borrowed::from_ptr(py, value)) };
        Some((
            Key {
                obj: key,
                walk: self.walk,
            },
            Node {
                obj: value,
                walk: self.walk,
                depth: self.parent_depth + 1,
            },
        ))
    }
}

/// A dict key: a `str` (anything else fails the call).
pub(crate) struct Key<'a, 'py, 'w> {
    obj: Borrowed<'a, 'py, PyAny>,
    walk: &'w Walk<'py>,
}

impl<'a> Key<'a, '_, '_> {
    /// The entry of this key's address in [`Walk::keys`].
    fn slot(&self) -> &Cell<(usize, *const u8, usize)> {
        let addr = self.obj.as_ptr() as usize;
        // Fibonacci hashing: the top bits of the product depend on every bit of the address.
        let hash = (addr as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - KEY_SLOTS.ilog2());
        &self.walk.keys[hash as usize]
    }

    /// The text read earlier in this walk for this very key object.
    fn cached(&self) -> Option<&'a str> {
        let (addr, text, len) = self.slot().get();
        if addr != self.obj.as_ptr() as usize {
            return None;
        }
        // SAFETY: only `text` below stores entries, and only the UTF-8 buffer that
        // `PyUnicode_AsUTF8AndSize` returned for the key object at that address, a buffer the
        // `str` owns and keeps, unchanged, for its lifetime. The address still names that
        // object: every key read in the walk is held by its dict, and every dict by an event
        // that stays alive until the walk ends (the contract of `Node::new`), and nothing is
        // freed during the walk (module docs), so no other object can have taken the address.
        // This object is alive (it is `self.obj`), so its buffer is valid for `'a`.
        let bytes = unsafe { std::slice::from_raw_parts(text, len) };
        // SAFETY: CPython's UTF-8 buffer is valid UTF-8 (it was a `&str` when stored).
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }
}

impl InputKey for Key<'_, '_, '_> {
    fn text(&self) -> Cow<'_, str> {
        if let Some(s) = self.cached() {
            return Cow::Borrowed(s);
        }
        // The exact type first: a pointer comparison, where the subclass check is a call.
        if self.obj.is_exact_instance_of::<PyString>() || self.obj.is_instance_of::<PyString>() {
            if let Some(s) = str_of(self.obj, self.walk) {
                if let Cow::Borrowed(text) = s {
                    let entry = (self.obj.as_ptr() as usize, text.as_ptr(), text.len());
                    self.slot().set(entry);
                }
                return s;
            }
        } else {
            self.walk.failed.set(true);
        }
        Cow::Borrowed("")
    }
}

/// Reads every value under `node`. The pipeline stops reading an event it rejects or skips;
/// this makes a value without JSON meaning anywhere in such an event fail the call too, as it
/// does in an event that is sent.
pub(crate) fn read_all(node: &Node<'_, '_, '_>) {
    match node.view() {
        View::Array(items) => items.for_each(|item| read_all(&item)),
        View::Object(entries) => entries.for_each(|(key, value)| {
            key.text();
            read_all(&value);
        }),
        _ => {}
    }
}
