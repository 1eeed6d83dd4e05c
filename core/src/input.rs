//! What [`crate::prepare`](mod@crate::prepare) reads: a read-only view of one JSON-like input value.
//!
//! The pipeline walks each input event once, in its own order, and copies only what goes on
//! the wire. [`Input`] lets it walk any tree that looks like JSON without first building a
//! [`serde_json::Value`]: the Python binding implements it over dicts and lists and borrows
//! their strings, so an event goes from Python objects to wire bytes without an intermediate
//! copy. `&serde_json::Value` implements it for everything else (JSON text, C, PHP, CLI).

use serde_json::{Map, Number, Value};
use std::borrow::Cow;

/// One input value, as [`crate::prepare`](mod@crate::prepare) sees it.
pub enum View<'a, I: Input> {
    /// `null` (Python `None`): treated as absent.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// An integer above `i64::MAX` (and at most `u64::MAX`).
    UInt(u64),
    /// A finite floating-point number.
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// An array, its items in order.
    Array(I::Items),
    /// An object, its entries in input order.
    Object(I::Entries),
}

impl<I: Input> View<'_, I> {
    /// "a string", "an object", …: for messages, which never show the value itself.
    pub fn type_name(&self) -> &'static str {
        match self {
            View::Null => "null",
            View::Bool(_) => "a boolean",
            View::Int(_) | View::UInt(_) | View::Float(_) => "a number",
            View::Str(_) => "a string",
            View::Array(_) => "an array",
            View::Object(_) => "an object",
        }
    }

    /// The text of a number given for a text field (a phone number, a postal code, an id):
    /// an integer, or a float holding a whole number (a spreadsheet's `16505550142.0`, PHP's
    /// floats), in digits (`16505550142`); other floats in serde_json's decimal form
    /// (`94025.5`). `None` for other values, and for a float of 2^53 or more: its digits
    /// are not exact (JSON's `12345678901234567890123` reads as `1.2345678901234568e22`), and a
    /// hashed id must not silently become another one.
    pub fn number_text(&self) -> Option<String> {
        /// 2^53: every whole float below it is exactly an integer.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        match self {
            View::Int(i) => Some(i.to_string()),
            View::UInt(u) => Some(u.to_string()),
            View::Float(f) if f.fract() == 0.0 && f.abs() < EXACT => Some((*f as i64).to_string()),
            View::Float(f) if f.abs() < EXACT => Number::from_f64(*f).map(|n| n.to_string()),
            _ => None,
        }
    }
}

/// A JSON-like value the pipeline can read.
pub trait Input: Sized {
    /// The items of an array.
    type Items: ExactSizeIterator<Item = Self>;
    /// The entries of an object, in input order.
    type Entries: Iterator<Item = (Self::Key, Self)>;
    /// An object key.
    type Key: InputKey;

    /// What the value is.
    fn view(&self) -> View<'_, Self>;

    /// The value under `key` when this is an object that has it (the first such entry). The
    /// default looks through the entries comparing their text; an input may override it
    /// with something cheaper (the Python binding compares interned keys by identity).
    fn get(&self, key: &str) -> Option<Self> {
        match self.view() {
            View::Object(mut entries) => entries.find(|(k, _)| k.text() == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as owned JSON, for what is passed through or deserialized whole
    /// (`custom_data` custom properties, `app_data`, `attribution_data`, …).
    fn to_json(&self) -> Value {
        match self.view() {
            View::Null => Value::Null,
            View::Bool(b) => Value::Bool(b),
            View::Int(i) => Value::from(i),
            View::UInt(u) => Value::from(u),
            View::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            View::Str(s) => Value::String(s.into_owned()),
            View::Array(items) => Value::Array(items.map(|i| i.to_json()).collect()),
            View::Object(entries) => Value::Object(
                entries
                    .map(|(k, v)| (k.text().into_owned(), v.to_json()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

/// An object key of an [`Input`].
pub trait InputKey {
    /// The key's text.
    fn text(&self) -> Cow<'_, str>;
}

impl InputKey for &String {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
}

impl<'v> Input for &'v Value {
    type Items = std::slice::Iter<'v, Value>;
    type Entries = serde_json::map::Iter<'v>;
    type Key = &'v String;

    fn view(&self) -> View<'_, Self> {
        match self {
            Value::Null => View::Null,
            Value::Bool(b) => View::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => View::Int(i),
                (None, Some(u)) => View::UInt(u),
                _ => View::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => View::Str(Cow::Borrowed(s)),
            Value::Array(a) => View::Array(a.iter()),
            Value::Object(m) => View::Object(m.iter()),
        }
    }

    fn to_json(&self) -> Value {
        (*self).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A second implementation over the same JSON, using the provided `to_json`.
    struct Wrapped<'v>(&'v Value);

    impl InputKey for String {
        fn text(&self) -> Cow<'_, str> {
            Cow::Borrowed(self)
        }
    }

    impl<'v> Input for Wrapped<'v> {
        type Items = std::iter::Map<std::slice::Iter<'v, Value>, fn(&'v Value) -> Wrapped<'v>>;
        type Entries = std::vec::IntoIter<(String, Wrapped<'v>)>;
        type Key = String;

        fn view(&self) -> View<'_, Self> {
            match self.0 {
                Value::Array(a) => View::Array(a.iter().map(Wrapped as fn(&'v Value) -> _)),
                Value::Object(m) => View::Object(
                    m.iter()
                        .map(|(k, v)| (k.clone(), Wrapped(v)))
                        .collect::<Vec<_>>()
                        .into_iter(),
                ),
                Value::Null => View::Null,
                Value::Bool(b) => View::Bool(*b),
                Value::String(s) => View::Str(Cow::Borrowed(s)),
                Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => View::Int(i),
                    (None, Some(u)) => View::UInt(u),
                    _ => View::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
            }
        }
    }

    #[test]
    fn provided_to_json_round_trips() {
        let v = json!({"a": [1, -2, 18446744073709551615u64, 2.5, "x", null, true],
                       "b": {"c": {}}, "d": []});
        assert_eq!(Wrapped(&v).to_json(), v);
        assert_eq!((&v).to_json(), v);
    }

    #[test]
    fn number_text_is_digits_for_whole_numbers() {
        for n in [
            json!(42),
            json!(-7),
            json!(18446744073709551615u64),
            json!(94025.5),
        ] {
            assert_eq!((&n).view().number_text().unwrap(), n.to_string());
        }
        for (n, text) in [
            (json!(16505550142.0), "16505550142"),
            (json!(1e5), "100000"),
            (json!(-0.0), "0"),
            (json!(9007199254740991.0), "9007199254740991"),
        ] {
            assert_eq!((&n).view().number_text().unwrap(), text);
        }
        assert_eq!((&json!("42")).view().number_text(), None);
        for inexact in [json!(1e300), json!(9007199254740992.0), json!(-1.5e22)] {
            assert_eq!((&inexact).view().number_text(), None, "{inexact}");
        }
        assert_eq!((&json!({})).view().type_name(), "an object");
    }
}
