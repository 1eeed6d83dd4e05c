//! Stage 3 of the pipeline: SHA-256 as Meta expects it (lowercase hex of the UTF-8 bytes),
//! and recognition of values that arrive already hashed.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// SHA-256 of `text`'s UTF-8 bytes as 64 lowercase hex characters.
///
/// ```
/// assert_eq!(
///     freight::hash::sha256_hex("john_smith@gmail.com"),
///     "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
/// );
/// ```
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// `appsecret_proof`: lowercase hex of HMAC-SHA256 with the app secret as key and the
/// access token as message (Graph API "Securing requests").
///
/// ```
/// assert_eq!(
///     freight::hash::appsecret_proof("SECRET", "TOKEN"),
///     "9bcde7f1d5e226d86e4692a62e5ec88f99306fb302d74b2dc3bff8a03770b63d"
/// );
/// ```
pub fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(access_token.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    for (pair, &byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    // Only ASCII hex digits were written.
    String::from_utf8(out).unwrap_or_default()
}

/// True when `s` is exactly `len` hexadecimal digits (either case).
fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True for a parameter-builder appendix: one of the legacy 2-character language tokens
/// (`AQ`, `Ag`, `Aw`, `BA`, `BQ`, `Bg`) or an 8-character base64url token (`AQICAQMC`).
/// (Any two characters would make `203.0.113.5.77`, five octets, an address.)
pub fn is_appendix(s: &str) -> bool {
    matches!(s, "AQ" | "Ag" | "Aw" | "BA" | "BQ" | "Bg")
        || (s.len() == 8
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// If `value` (already trimmed) is a SHA-256 digest — 64 hex digits in any case, optionally
/// followed by `.<appendix>` from Meta's parameter builder — returns it in wire form: the
/// digest lowercased, the appendix kept as given. With `md5` also 32-hex digests pass.
///
/// ```
/// use freight::hash::already_hashed;
/// let h = "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F";
/// assert_eq!(already_hashed(h, false).unwrap(), h.to_ascii_lowercase());
/// assert!(already_hashed(&format!("{h}.AQICAQMC"), false).is_some());
/// assert!(already_hashed("0123456789abcdef0123456789abcdef", false).is_none());
/// ```
pub fn already_hashed(value: &str, md5: bool) -> Option<String> {
    // Digest (64 or 32 hex), optionally followed by a 2- or 8-character appendix.
    let plausible = |n: usize| matches!(value.len().checked_sub(n), Some(0 | 3 | 9));
    if !(plausible(64) || (md5 && plausible(32))) {
        return None;
    }
    let (digest, appendix) = match value.split_once('.') {
        Some((d, a)) if is_appendix(a) => (d, Some(a)),
        Some(_) => return None,
        None => (value, None),
    };
    if !(is_hex(digest, 64) || (md5 && is_hex(digest, 32))) {
        return None;
    }
    let mut out = digest.to_ascii_lowercase();
    if let Some(a) = appendix {
        out.push('.');
        out.push_str(a);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_string_digest() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn md5_only_with_option() {
        let md5 = "5d41402abc4b2a76b9719d911017c592";
        assert_eq!(already_hashed(md5, false), None);
        assert_eq!(already_hashed(md5, true).as_deref(), Some(md5));
    }

    #[test]
    fn rejects_bad_appendix_and_non_hex() {
        let h = "a".repeat(64);
        assert_eq!(already_hashed(&format!("{h}.A"), false), None);
        assert_eq!(already_hashed(&format!("{h}.AQICAQMC.x"), false), None);
        assert_eq!(already_hashed(&"g".repeat(64), false), None);
        assert_eq!(already_hashed(&"a".repeat(63), false), None);
    }
}
