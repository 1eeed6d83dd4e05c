//! Platform features of the source documents: partner attribution (`partner_agent`),
//! browser/server deduplication ids (`event_id`), and the `fbc`/`fbp` click and browser ids
//! from a page request, following the rules of Meta's parameter builder.
//!
//! Like the rest of the core these functions do no IO and read no clock: the time and the
//! randomness are parameters (with the `os-random` feature, [`new_event_id`] draws from the
//! operating system).

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use std::fmt;

/// A `partner_agent` or id that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError(pub String);

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlatformError {}

/// The documented `partner_agent` format `pl<partner>-<platform version>-<app version>`
/// (seed 000: "Setup Server-Side As A Platform"). The partner name is lowercased, as in the
/// document's example ("DataPartner" → `pldatapartner-1.0-2.0`); the app version (of the
/// platform's Facebook integration) is optional ("if applicable"): empty, it is left out.
///
/// ```
/// use freight::platform::partner_agent;
/// assert_eq!(partner_agent("DataPartner", "1.0", "2.0").unwrap(), "pldatapartner-1.0-2.0");
/// assert_eq!(partner_agent("shopbuilder", "4.2", "").unwrap(), "plshopbuilder-4.2");
/// assert!(partner_agent("shop builder", "4", "1").is_err());
/// ```
pub fn partner_agent(
    partner: &str,
    platform_version: &str,
    app_version: &str,
) -> Result<String, PlatformError> {
    let ok_partner = !partner.is_empty()
        && partner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok_partner {
        return Err(PlatformError(
            "partner must be letters, digits or _ (the name Meta agreed with your platform)".into(),
        ));
    }
    for (name, v, required) in [
        ("platform_version", platform_version, true),
        ("app_version", app_version, false),
    ] {
        let ok = (!v.is_empty() || !required)
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        if !ok {
            return Err(PlatformError(format!(
                "{name} must be letters, digits, dots or _ (a dash separates the fields){}",
                if required { "" } else { ", or empty" }
            )));
        }
    }
    let partner = partner.to_ascii_lowercase();
    Ok(if app_version.is_empty() {
        format!("pl{partner}-{platform_version}")
    } else {
        format!("pl{partner}-{platform_version}-{app_version}")
    })
}

/// A random `event_id` (UUID version 4) from 16 random bytes.
///
/// ```
/// let id = freight::platform::event_id_from_random([0xab; 16]);
/// assert_eq!(id, "abababab-abab-4bab-abab-abababababab");
/// ```
pub fn event_id_from_random(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid_text(&bytes)
}

/// A random `event_id` (UUID version 4) from the operating system's randomness.
#[cfg(feature = "os-random")]
pub fn new_event_id() -> Result<String, PlatformError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| PlatformError(format!("no randomness from the operating system: {e}")))?;
    Ok(event_id_from_random(bytes))
}

/// The random part of a new `fbp` (31 bits, as the pixel's own: `fb.1.<ms>.1116446470`),
/// from the operating system's randomness.
#[cfg(feature = "os-random")]
pub fn new_fbp_random() -> Result<u32, PlatformError> {
    let mut bytes = [0u8; 4];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| PlatformError(format!("no randomness from the operating system: {e}")))?;
    Ok(u32::from_le_bytes(bytes) & 0x7fff_ffff)
}

/// A deterministic `event_id` for `key` (an order id, a lead id…): a UUID (version 8) made
/// from `HMAC-SHA256(secret, pixel_id | event_name | key)`. The platform computes it when it
/// renders the page (for the browser's `fbq('track', name, data, {eventID})`) and again when
/// it sends the server event, so both carry the same id and Meta keeps one. The secret keeps
/// ids unguessable from order numbers.
///
/// Refused: an empty secret; a blank key (every order without an id would share one id, and
/// Meta would keep only the first of them); a `|` in `pixel_id` or `event_name` (the parts
/// are joined by `|`: `"Custom|A"` + `"B"` would be `"Custom"` + `"A|B"`). `pixel_id` and
/// `event_name` may be empty when the key alone is unique.
///
/// ```
/// use freight::platform::event_id_for;
/// let a = event_id_for(b"platform-secret", "1234567890", "Purchase", "order-10423").unwrap();
/// assert_eq!(a, event_id_for(b"platform-secret", "1234567890", "Purchase", "order-10423").unwrap());
/// assert_ne!(a, event_id_for(b"platform-secret", "1234567890", "Purchase", "order-10424").unwrap());
/// assert_eq!(&a[14..15], "8");
/// assert!(event_id_for(b"platform-secret", "1234567890", "Purchase", " ").is_err());
/// ```
pub fn event_id_for(
    secret: &[u8],
    pixel_id: &str,
    event_name: &str,
    key: &str,
) -> Result<String, PlatformError> {
    if secret.is_empty() {
        return Err(PlatformError(
            "a deterministic event id needs the platform's secret (it is empty)".into(),
        ));
    }
    if key.trim().is_empty() {
        return Err(PlatformError(
            "key is blank: give the order (or lead) id the event is about".into(),
        ));
    }
    for (name, part) in [("pixel_id", pixel_id), ("event_name", event_name)] {
        if part.contains('|') {
            return Err(PlatformError(format!(
                "{name} must not contain | (it separates the parts of the id)"
            )));
        }
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC takes keys of any length")
    };
    for (i, part) in [pixel_id, event_name, key].iter().enumerate() {
        if i > 0 {
            mac.update(b"|");
        }
        mac.update(part.as_bytes());
    }
    let digest = mac.finalize().into_bytes();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(uuid_text(&bytes))
}

fn uuid_text(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The page request a browser made: what [`click_ids`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext<'a> {
    /// The `Host` (a port is ignored).
    pub host: &'a str,
    /// The requested URL or just its query string (`fbclid` is looked for there).
    pub url: Option<&'a str>,
    /// The `Referer` header (looked at when the URL has no `fbclid`).
    pub referrer: Option<&'a str>,
    /// The `_fbc` cookie.
    pub fbc_cookie: Option<&'a str>,
    /// The `_fbp` cookie.
    pub fbp_cookie: Option<&'a str>,
}

/// A cookie the host should set on its response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CookieToSet {
    /// `_fbc` or `_fbp`.
    pub name: &'static str,
    /// The value.
    pub value: String,
    /// For `Domain=`: the registrable domain (eTLD+1, by the Public Suffix List), or the host
    /// itself when it has none (an IP address, a single label, a public suffix), which makes
    /// a host-only cookie.
    pub domain: String,
    /// Seconds: 90 days, as Meta recommends.
    pub max_age: u64,
}

/// What [`click_ids`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClickIds {
    /// For `user_data.fbc`, when the visitor came from a Meta ad (now or earlier).
    pub fbc: Option<String>,
    /// For `user_data.fbp`.
    pub fbp: String,
    /// The cookies to set (new or changed values only).
    pub cookies_to_set: Vec<CookieToSet>,
}

/// Cookie lifetime: 90 days.
pub const COOKIE_MAX_AGE: u64 = 90 * 24 * 3600;

/// Builds `fbc`/`fbp` for a request, by the parameter builder's rules (wire-contract §5.3):
/// the `fbclid` of the URL (else of the referrer) makes a new `fbc`
/// `fb.<subdomain index>.<now_ms>.<fbclid>` (the fbclid's case kept) unless the `_fbc`
/// cookie already carries the same fbclid; a valid cookie is kept otherwise; a missing or
/// malformed `_fbp` is replaced by `fb.<subdomain index>.<now_ms>.<random>`. New values are
/// returned as cookies to set for 90 days on the registrable domain. Unlike the parameter
/// builder, Freight adds no appendix to the values it creates (the appendix names the library
/// that made them); appendices on existing cookies are kept.
///
/// ```
/// use freight::platform::{click_ids, RequestContext};
/// let ids = click_ids(
///     &RequestContext { host: "www.shop.example.com", url: Some("/p?fbclid=IwAR2F4-dbP0"),
///                       ..Default::default() },
///     1_795_392_000_123,
///     1_234_567,
/// );
/// assert_eq!(ids.fbc.as_deref(), Some("fb.1.1795392000123.IwAR2F4-dbP0"));
/// assert_eq!(ids.fbp, "fb.1.1795392000123.1234567");
/// assert_eq!(ids.cookies_to_set[0].domain, "example.com");
/// ```
pub fn click_ids(ctx: &RequestContext<'_>, now_ms: i64, random: u32) -> ClickIds {
    let (domain, index) = registrable_domain(ctx.host);
    let fbclid = ctx
        .url
        .and_then(|u| query_param(u, "fbclid"))
        .or_else(|| ctx.referrer.and_then(|r| query_param(r, "fbclid")))
        .filter(|f| !f.is_empty() && f.bytes().all(crate::prepare::is_fbclid_byte));
    let mut cookies = Vec::new();
    let cookie_fbc = ctx
        .fbc_cookie
        .map(str::trim)
        .filter(|c| valid_cookie(c, true));
    let fbc = match (fbclid, cookie_fbc) {
        (Some(id), Some(c)) if c.split('.').nth(3) == Some(id.as_str()) => Some(c.to_owned()),
        (Some(id), _) => {
            let v = format!("fb.{index}.{now_ms}.{id}");
            cookies.push(CookieToSet {
                name: "_fbc",
                value: v.clone(),
                domain: domain.clone(),
                max_age: COOKIE_MAX_AGE,
            });
            Some(v)
        }
        (None, Some(c)) => Some(c.to_owned()),
        (None, None) => None,
    };
    let fbp = match ctx
        .fbp_cookie
        .map(str::trim)
        .filter(|c| valid_cookie(c, false))
    {
        Some(c) => c.to_owned(),
        None => {
            let v = format!("fb.{index}.{now_ms}.{random}");
            cookies.push(CookieToSet {
                name: "_fbp",
                value: v.clone(),
                domain,
                max_age: COOKIE_MAX_AGE,
            });
            v
        }
    };
    ClickIds {
        fbc,
        fbp,
        cookies_to_set: cookies,
    }
}

/// `fb.<index>.<time>.<payload>[.<appendix>]`, as the validation takes it (a cookie it would
/// reject is not handed on: the event would be rejected for it).
fn valid_cookie(c: &str, fbc: bool) -> bool {
    !matches!(
        crate::prepare::check_cookie(c, fbc),
        crate::prepare::Cookie::Bad
    )
}

/// The value of `name` in a URL's (or a bare) query string, percent-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = match url.split_once('?') {
        Some((_, q)) => q,
        None if url.contains('=') => url,
        None => return None,
    };
    let query = query.split('#').next().unwrap_or("");
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The registrable domain (eTLD+1) of a host and the subdomain index Meta uses (the number of
/// its labels minus one; 0 for IP addresses and single labels such as `localhost`).
///
/// Public suffixes are those of the Public Suffix List, its private section included: a
/// client's site on a platform's subdomain (`shop.myshopify.com`, `name.github.io`) is its
/// own registrable domain, since a browser refuses a cookie for the platform's whole domain.
/// A host that is itself a public suffix is returned as is (a host-only cookie). A Unicode host
/// is looked up as given: pass the ASCII (punycode) form a `Host` header carries.
/// (Meta's parameter builder takes the eTLD+1 from a resolver, its example one the Public
/// Suffix List; its index is the same count of labels, and 0 for an IP address.)
pub fn registrable_domain(host: &str) -> (String, usize) {
    let host = host.trim().to_ascii_lowercase();
    let host = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or("")
    } else {
        &host
    };
    // After the port: `example.com.:443` is `example.com`.
    let host = host.trim_end_matches('.');
    if host.parse::<std::net::IpAddr>().is_ok() || !host.contains('.') {
        return (host.to_owned(), 0);
    }
    let domain = psl::domain_str(host).unwrap_or(host);
    let index = domain.split('.').count() - 1;
    (domain.to_owned(), index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains() {
        for (host, domain, index) in [
            ("www.example.com", "example.com", 1),
            ("example.com", "example.com", 1),
            ("shop.example.co.uk:8443", "example.co.uk", 2),
            ("localhost", "localhost", 0),
            ("127.0.0.1:8080", "127.0.0.1", 0),
            ("[::1]:80", "::1", 0),
            // The Public Suffix List, private section included.
            ("www.example.com.au", "example.com.au", 2),
            ("a.b.example.ac.jp", "example.ac.jp", 2),
            ("shop.myshopify.com", "shop.myshopify.com", 2),
            ("www.jane.github.io", "jane.github.io", 2),
            ("Shop.Example.CO.UK.", "example.co.uk", 2),
            ("www.example.io", "example.io", 1),
            // A host that is itself a public suffix: a host-only cookie.
            ("myshopify.com", "myshopify.com", 1),
            ("co.uk", "co.uk", 1),
            // A trailing dot before the port.
            ("myshopify.com.:8443", "myshopify.com", 1),
            ("localhost.:3000", "localhost", 0),
            ("www.example.com.:443", "example.com", 1),
            // A TLD the list does not know: the last label is the suffix.
            ("www.example.internal-tld", "example.internal-tld", 1),
        ] {
            assert_eq!(registrable_domain(host), (domain.into(), index), "{host}");
        }
    }

    #[test]
    fn partner_agent_rules() {
        assert!(partner_agent("", "1", "2").is_err());
        assert!(partner_agent("x", "1-2", "2").is_err());
        assert!(partner_agent("x", "", "2").is_err());
        assert!(partner_agent("x", "1", "2 ").is_err());
        assert_eq!(partner_agent("x", "1", "").unwrap(), "plx-1");
        assert_eq!(
            partner_agent("DataPartner", "1.0", "2.0").unwrap(),
            "pldatapartner-1.0-2.0"
        );
        assert_eq!(
            partner_agent("wp_shop", "6.4.2", "2.0").unwrap(),
            "plwp_shop-6.4.2-2.0"
        );
    }

    #[test]
    fn deterministic_ids_refuse_what_would_collide() {
        // The id the first version of this function gave (HMAC-SHA256 of "777|Purchase|
        // order-10423", computed apart with Python's hmac): ids already rendered into pages
        // must still match.
        let id = event_id_for(b"platform-secret", "777", "Purchase", "order-10423").unwrap();
        assert_eq!(id, "579466fb-692c-806c-bf9e-18b1feabce8e");
        assert!(event_id_for(b"s", "", "", "order-1").is_ok());
        for (secret, pixel, name, key) in [
            (&b""[..], "1", "Purchase", "order-1"),
            (b"s", "1", "Purchase", ""),
            (b"s", "1", "Purchase", " \t"),
            (b"s", "1", "Custom|A", "B"),
            (b"s", "1|2", "Purchase", "order-1"),
        ] {
            let e = event_id_for(secret, pixel, name, key).unwrap_err();
            assert!(!e.0.is_empty());
        }
        // A `|` in the key is fine: the key is the last part.
        assert!(event_id_for(b"s", "1", "Custom", "A|B").is_ok());
    }

    #[test]
    fn uuids_have_version_and_variant() {
        let r = event_id_from_random([0; 16]);
        assert_eq!(r, "00000000-0000-4000-8000-000000000000");
        let d = event_id_for(b"k", "1", "Purchase", "order-1").unwrap();
        assert_eq!(d.len(), 36);
        assert_eq!(&d[14..15], "8");
        assert!(matches!(&d[19..20], "8" | "9" | "a" | "b"));
    }
}
