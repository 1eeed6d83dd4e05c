//! The values of hashed customer-information keys (`em`, `ph`, … `external_id`, `f5first`, …).
//!
//! A digest Freight computed is kept as its 32 bytes, inline, and written as 64 lowercase hex
//! digits; a key almost always holds one value, kept inline too. Preparing the standard
//! Purchase event thus allocates nothing for its nine hashed keys.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::OnceLock;

/// One value of a hashed customer-information key, as it goes on the wire.
///
/// ```
/// use freight::model::UserValue;
/// let v = UserValue::sha256("john_smith@gmail.com");
/// assert_eq!(v.to_string(), "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f");
/// // A bare lowercase digest read from wire JSON is the same value.
/// assert_eq!(UserValue::from(v.to_string()), v);
/// assert_eq!(v, *"62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f");
/// ```
///
/// Values compare and hash by their wire text, whichever variant holds them.
#[derive(Clone)]
pub enum UserValue {
    /// A SHA-256 digest, sent as 64 lowercase hex digits.
    Sha256([u8; 32]),
    /// Sent as given: a digest with a parameter-builder appendix, an MD5 digest, or an
    /// `external_id` sent unhashed. (Freight keeps a bare lowercase SHA-256 digest as
    /// [`UserValue::Sha256`]; [`From<String>`](UserValue#impl-From<String>-for-UserValue) does
    /// so too.)
    Text(String),
}

impl UserValue {
    /// The SHA-256 digest of `text`'s UTF-8 bytes.
    pub fn sha256(text: &str) -> UserValue {
        let mut d = [0; 32];
        digest_into(text, &mut d);
        UserValue::Sha256(d)
    }

    /// Appends the wire text (no quotes) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            UserValue::Sha256(d) => write_hex64(out, d),
            UserValue::Text(t) => out.extend_from_slice(t.as_bytes()),
        }
    }

    /// True when the wire text is `s`.
    fn eq_str(&self, s: &str) -> bool {
        match self {
            UserValue::Sha256(d) => s.as_bytes() == hex64(d),
            UserValue::Text(t) => t == s,
        }
    }
}

/// Digests of the one- and two-letter values (`us`, `ca`, `f`), computed once per process:
/// country and gender always normalize to one of them, US and Canadian states mostly do, so
/// they repeat in nearly every event.
static SHORT_DIGESTS: [OnceLock<[u8; 32]>; 26 + 26 * 26] = [const { OnceLock::new() }; 702];

/// The place in [`SHORT_DIGESTS`] of one or two lowercase ASCII letters.
fn short_slot(b: &[u8]) -> Option<usize> {
    let letter = |c: u8| c.is_ascii_lowercase().then(|| usize::from(c - b'a'));
    match *b {
        [a] => letter(a),
        [a, b] => Some(26 + letter(a)? * 26 + letter(b)?),
        _ => None,
    }
}

/// Writes the SHA-256 digest of `text` into `out`, where it stays: a digest that is moved
/// right after it is written costs a store-forwarding stall on every copy.
fn digest_into(text: &str, out: &mut [u8; 32]) {
    match short_slot(text.as_bytes()) {
        Some(slot) => *out = *SHORT_DIGESTS[slot].get_or_init(|| sha256(text.as_bytes())),
        None => sha256_into(text.as_bytes(), out),
    }
}

/// SHA-256 of `data`.
fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    sha256_into(data, &mut out);
    out
}

/// SHA-256 of `data`, into `out`. Normalized customer values are short: one that fits a single block
/// with its padding (up to 55 bytes) is compressed directly, without the streaming hasher's
/// buffering; longer ones go through it.
fn sha256_into(data: &[u8], out: &mut [u8; 32]) {
    use sha2::digest::generic_array::GenericArray;
    use sha2::Digest;
    const INIT: [u32; 8] = [
        0x6a09_e667,
        0xbb67_ae85,
        0x3c6e_f372,
        0xa54f_f53a,
        0x510e_527f,
        0x9b05_688c,
        0x1f83_d9ab,
        0x5be0_cd19,
    ];
    if data.len() > 55 {
        *out = sha2::Sha256::digest(data).into();
        return;
    }
    let mut block = [0u8; 64];
    block[..data.len()].copy_from_slice(data);
    block[data.len()] = 0x80;
    block[56..].copy_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    let mut state = INIT;
    sha2::compress256(&mut state, &[GenericArray::from(block)]);
    for (o, word) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&word.to_be_bytes());
    }
}

/// Appends the 64 lowercase hex digits of `d` to `out`, computed in place.
pub(crate) fn write_hex64(out: &mut Vec<u8>, d: &[u8; 32]) {
    let start = out.len();
    out.resize(start + 64, 0);
    if let Some(digits) = out[start..].first_chunk_mut::<64>() {
        hex_into(d, digits);
    }
}

/// 64 lowercase hex digits.
pub(crate) fn hex64(d: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    hex_into(d, &mut out);
    out
}

/// The hex digits of `d`: each byte's nibbles spread over two bytes, then each mapped to its
/// digit by arithmetic, not by table: a few SIMD instructions per 16 digits.
#[inline(always)]
fn hex_into(d: &[u8; 32], out: &mut [u8; 64]) {
    for (pair, &byte) in out.chunks_exact_mut(2).zip(d) {
        pair[0] = byte >> 4;
        pair[1] = byte & 0x0f;
    }
    for c in out.iter_mut() {
        *c += if *c > 9 { b'a' - 10 } else { b'0' };
    }
}

/// The digest of 64 lowercase hex digits.
fn parse_hex64(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

impl From<String> for UserValue {
    /// The value whose wire text is `s`.
    fn from(s: String) -> UserValue {
        match parse_hex64(&s) {
            Some(d) => UserValue::Sha256(d),
            None => UserValue::Text(s),
        }
    }
}

impl From<&str> for UserValue {
    fn from(s: &str) -> UserValue {
        match parse_hex64(s) {
            Some(d) => UserValue::Sha256(d),
            None => UserValue::Text(s.to_owned()),
        }
    }
}

impl PartialEq for UserValue {
    fn eq(&self, other: &UserValue) -> bool {
        match (self, other) {
            (UserValue::Sha256(a), UserValue::Sha256(b)) => a == b,
            (UserValue::Text(a), UserValue::Text(b)) => a == b,
            (UserValue::Sha256(d), UserValue::Text(t))
            | (UserValue::Text(t), UserValue::Sha256(d)) => t.as_bytes() == hex64(d),
        }
    }
}

impl Eq for UserValue {}

impl std::hash::Hash for UserValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes: the wire bytes, then a terminator.
        match self {
            UserValue::Sha256(d) => state.write(&hex64(d)),
            UserValue::Text(t) => state.write(t.as_bytes()),
        }
        state.write_u8(0xff);
    }
}

impl PartialEq<str> for UserValue {
    fn eq(&self, other: &str) -> bool {
        self.eq_str(other)
    }
}

impl PartialEq<&str> for UserValue {
    fn eq(&self, other: &&str) -> bool {
        self.eq_str(other)
    }
}

impl fmt::Display for UserValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserValue::Sha256(d) => {
                let hex = hex64(d);
                f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
            }
            UserValue::Text(t) => f.write_str(t),
        }
    }
}

impl fmt::Debug for UserValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl Serialize for UserValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UserValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UserValue, D::Error> {
        String::deserialize(d).map(UserValue::from)
    }
}

/// The values of one multi-valued hashed key, in order, without duplicates when built by
/// [`crate::prepare`](mod@crate::prepare). The first value is kept inline.
///
/// ```
/// use freight::model::{UserValue, UserValues};
/// let mut v = UserValues::new();
/// assert!(v.is_empty());
/// v.push(UserValue::sha256("a@example.com"));
/// v.push(UserValue::sha256("b@example.com"));
/// assert_eq!(v.len(), 2);
/// assert_eq!(serde_json::to_value(&v).unwrap().as_array().unwrap().len(), 2);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct UserValues(Repr);

#[derive(Clone, Default, PartialEq, Eq, Hash)]
enum Repr {
    #[default]
    Empty,
    One(UserValue),
    Many(Vec<UserValue>),
}

impl UserValues {
    /// No values.
    pub const fn new() -> UserValues {
        UserValues(Repr::Empty)
    }

    /// The values, in order.
    pub fn as_slice(&self) -> &[UserValue] {
        match &self.0 {
            Repr::Empty => &[],
            Repr::One(v) => std::slice::from_ref(v),
            Repr::Many(v) => v,
        }
    }

    /// An iterator over the values.
    pub fn iter(&self) -> std::slice::Iter<'_, UserValue> {
        self.as_slice().iter()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True without values.
    pub fn is_empty(&self) -> bool {
        matches!(self.0, Repr::Empty)
    }

    /// True when `v` is one of the values.
    pub fn contains(&self, v: &UserValue) -> bool {
        self.as_slice().contains(v)
    }

    /// Appends a value.
    pub fn push(&mut self, v: UserValue) {
        match &mut self.0 {
            Repr::Empty => self.0 = Repr::One(v),
            Repr::Many(all) => all.push(v),
            Repr::One(_) => {
                if let Repr::One(first) = std::mem::take(&mut self.0) {
                    self.0 = Repr::Many(vec![first, v]);
                }
            }
        }
    }

    /// Makes the digest of `text` the only value, computed in its place.
    pub(crate) fn set_sha256(&mut self, text: &str) {
        self.0 = Repr::One(UserValue::Sha256([0; 32]));
        if let Repr::One(UserValue::Sha256(d)) = &mut self.0 {
            digest_into(text, d);
        }
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.0 = Repr::Empty;
    }
}

impl fmt::Debug for UserValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<Vec<UserValue>> for UserValues {
    fn from(mut v: Vec<UserValue>) -> UserValues {
        UserValues(match v.len() {
            0 => Repr::Empty,
            1 => Repr::One(v.remove(0)),
            _ => Repr::Many(v),
        })
    }
}

impl FromIterator<UserValue> for UserValues {
    fn from_iter<I: IntoIterator<Item = UserValue>>(iter: I) -> UserValues {
        let mut out = UserValues::new();
        for v in iter {
            out.push(v);
        }
        out
    }
}

impl<'a> IntoIterator for &'a UserValues {
    type Item = &'a UserValue;
    type IntoIter = std::slice::Iter<'a, UserValue>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Serialize for UserValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for UserValues {
    /// One string or an array of strings (wire-contract §2.2 accepts both).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UserValues, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(UserValue),
            Many(Vec<UserValue>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(v) => UserValues(Repr::One(v)),
            OneOrMany::Many(v) => UserValues::from(v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_digests_of_short_values_are_their_sha256() {
        use sha2::Digest;
        let mut texts = vec![
            String::new(),
            "A".into(),
            "aé".into(),
            "abc".into(),
            "{".into(),
        ];
        for a in b'a'..=b'z' {
            texts.push(char::from(a).to_string());
            for b in b'a'..=b'z' {
                texts.push(String::from_utf8(vec![a, b]).unwrap());
            }
        }
        // Twice: computed, then remembered.
        for _ in 0..2 {
            for t in &texts {
                let expected: [u8; 32] = sha2::Sha256::digest(t.as_bytes()).into();
                assert_eq!(UserValue::sha256(t), UserValue::Sha256(expected), "{t}");
            }
        }
    }

    #[test]
    fn hex_digits_of_every_byte_in_every_position() {
        for start in 0..=255u8 {
            let d: [u8; 32] = std::array::from_fn(|i| start.wrapping_add((i * 37) as u8));
            let expected: String = d.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(std::str::from_utf8(&hex64(&d)).unwrap(), expected);
            let mut written = b"x".to_vec();
            write_hex64(&mut written, &d);
            assert_eq!(written, format!("x{expected}").into_bytes());
        }
    }

    #[test]
    fn wire_text_round_trips() {
        for text in [
            "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
            "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f.AQICAQMC",
            "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F",
            "5d41402abc4b2a76b9719d911017c592",
            "cust-42",
            "",
        ] {
            let v = UserValue::from(text);
            assert_eq!(v.to_string(), text);
            let mut out = Vec::new();
            v.write_to(&mut out);
            assert_eq!(out, text.as_bytes());
            assert_eq!(serde_json::to_value(&v).unwrap(), text);
            assert_eq!(v, *text);
        }
        assert!(matches!(
            UserValue::from("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            UserValue::Sha256(_)
        ));
        assert!(matches!(
            UserValue::from("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
            UserValue::Text(_)
        ));
    }

    #[test]
    fn single_block_digests_match_the_streaming_hasher() {
        use sha2::Digest;
        let text: String = (0..200u32)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        for len in 0..=130 {
            let data = &text.as_bytes()[..len];
            let expected: [u8; 32] = sha2::Sha256::digest(data).into();
            assert_eq!(sha256(data), expected, "{len} bytes");
        }
    }

    #[test]
    fn hex_of_every_byte() {
        for start in 0..=255u8 {
            let d: [u8; 32] = std::array::from_fn(|i| start.wrapping_add(i as u8 * 8));
            let naive: String = d.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex64(&d), naive.as_bytes());
        }
    }

    #[test]
    fn equality_and_hash_follow_the_wire_text() {
        use std::collections::hash_map::DefaultHasher;
        use std::hash::{Hash, Hasher};
        let digest = UserValue::sha256("a@example.com");
        let text = UserValue::Text(digest.to_string());
        assert_eq!(digest, text);
        let hash = |v: &UserValue| {
            let mut h = DefaultHasher::new();
            v.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&digest), hash(&text));
        assert_ne!(digest, UserValue::Text(digest.to_string().to_uppercase()));
        let mut list = UserValues::new();
        list.push(text);
        assert!(list.contains(&digest));
    }

    #[test]
    fn values_keep_order_and_serialize_as_arrays() {
        let mut v = UserValues::new();
        assert_eq!(serde_json::to_string(&v).unwrap(), "[]");
        v.push("a".into());
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["a"]"#);
        v.push("b".into());
        v.push("c".into());
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["a","b","c"]"#);
        assert!(v.contains(&"b".into()));
        assert!(!v.contains(&"d".into()));
        let back: UserValues = serde_json::from_str(r#"["a","b","c"]"#).unwrap();
        assert_eq!(back, v);
        let one: UserValues = serde_json::from_str(r#""a""#).unwrap();
        assert_eq!(one.as_slice(), [UserValue::from("a")]);
        assert!(serde_json::from_str::<UserValues>("1").is_err());
        v.clear();
        assert!(v.is_empty());
        assert_eq!(format!("{:?}", one), r#"["a"]"#);
    }
}
