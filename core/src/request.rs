//! Stage 6 of the pipeline, without IO: the HTTP request for one batch.
//!
//! `POST {graph_url}/{api_version}/{pixel_id}/events` with a JSON body, the token in the
//! `Authorization: Bearer` header (never in the URL), `appsecret_proof` in the body when an
//! app secret is given, and `User-Agent: freight/<version>`. Any HTTP client can send it: the
//! ureq [`crate::client::Client`] is one driver of this builder.

use crate::batch::{RequestBody, RequestFields};
use crate::destination::Destination;
use crate::hash::appsecret_proof;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Meta's Graph API host.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com";
/// The Graph API version used unless configured.
pub const DEFAULT_API_VERSION: &str = "v25.0";

/// Where and how requests are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphConfig {
    /// Base URL: `https://…`, or `http://` to a loopback host only (a local sandbox).
    pub graph_url: String,
    /// `vNN.N`.
    pub api_version: String,
    /// The platform's identifier, sent top-level on every request.
    pub partner_agent: Option<String>,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            graph_url: DEFAULT_GRAPH_URL.into(),
            api_version: DEFAULT_API_VERSION.into(),
            partner_agent: None,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl GraphConfig {
    /// Checks the URL (TLS unless loopback; no credentials, query or fragment in it), the
    /// version (`^v\d+\.\d+$`) and `partner_agent`.
    pub fn check(&self) -> Result<(), ConfigError> {
        check_graph_url(&self.graph_url)?;
        let v = self.api_version.strip_prefix('v').unwrap_or("");
        let ok = v.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        });
        if !ok {
            return Err(ConfigError(format!(
                "api_version {:?} is not of the form v25.0",
                self.api_version
            )));
        }
        if let Some(p) = &self.partner_agent {
            if p.trim().is_empty() || p.len() > 256 || p.chars().any(char::is_control) {
                return Err(ConfigError(
                    "partner_agent must be a non-empty string without control characters".into(),
                ));
            }
        }
        Ok(())
    }

    /// The events URL of a pixel.
    pub fn events_url(&self, pixel_id: &str) -> String {
        format!(
            "{}/{}/{}/events",
            self.graph_url.trim_end_matches('/'),
            self.api_version,
            pixel_id
        )
    }
}

/// `https://host[:port][/path]`, or `http://` when the host is loopback.
pub fn check_graph_url(url: &str) -> Result<(), ConfigError> {
    // The URL is never echoed: a rejected one may carry a token (in its query or userinfo).
    let bad = |why: &str| Err(ConfigError(format!("graph_url: {why}")));
    let (scheme, rest) = match url.split_once("://") {
        Some(p) => p,
        None => return bad("not an absolute URL"),
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return bad("no host");
    }
    if authority.contains('@') {
        return bad("credentials do not belong in the URL");
    }
    if rest.contains('?') || rest.contains('#') {
        return bad("no query or fragment: the token travels in a header");
    }
    // `host`, `host:port`, `[v6]` or `[v6]:port`, and nothing else after the host.
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        match h.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, rest)) => match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return bad("malformed host"),
            },
            None => return bad("malformed host"),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("malformed host");
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if is_loopback(host) => Ok(()),
        "http" if host.eq_ignore_ascii_case("localhost") => bad(
            "plain http needs a loopback address (127.0.0.1 or [::1]), not the name localhost, \
             which the system resolves and may send elsewhere",
        ),
        "http" => bad("plain http is only allowed to a loopback address (127.0.0.1, [::1])"),
        _ => bad("the scheme must be https"),
    }
}

fn is_loopback(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// One HTTP request, ready for any client. `Debug` redacts the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Always `POST`.
    pub method: &'static str,
    /// The events URL (no credentials in it).
    pub url: String,
    /// Headers, including `Authorization: Bearer …`.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case("authorization") {
                    (*k, "Bearer <redacted>")
                } else {
                    (*k, v.as_str())
                }
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// The top-level fields of a request to `dest`: its test event code, the configured partner
/// agent, and `appsecret_proof` when the destination has an app secret.
pub fn request_fields(
    config: &GraphConfig,
    dest: &Destination,
    extra: &RequestFields,
) -> RequestFields {
    let mut fields = extra.clone();
    if let Some(code) = dest.test_event_code() {
        fields.test_event_code = Some(code.to_owned());
    }
    if fields.partner_agent.is_none() {
        fields.partner_agent = config.partner_agent.clone();
    }
    fields.appsecret_proof = dest
        .app_secret()
        .map(|s| appsecret_proof(s.expose(), dest.access_token().expose()));
    fields
}

/// The request that sends `body` (built with [`request_fields`]) to `dest`; an error when
/// `config`'s URL would carry the token where [`check_graph_url`] does not allow it.
pub fn build_request(
    config: &GraphConfig,
    dest: &Destination,
    body: &mut RequestBody,
) -> Result<HttpRequest, ConfigError> {
    check_graph_url(&config.graph_url)?;
    Ok(HttpRequest {
        method: "POST",
        url: config.events_url(dest.pixel_id()),
        headers: vec![
            (
                "Authorization",
                format!("Bearer {}", dest.access_token().expose()),
            ),
            ("Content-Type", "application/json".to_owned()),
            ("Accept", "application/json".to_owned()),
            ("User-Agent", format!("freight/{}", crate::VERSION)),
        ],
        body: body.finish().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_tls_unless_loopback() {
        for ok in [
            "https://graph.facebook.com",
            "http://127.0.0.1:8080",
            "HTTP://127.0.0.1:8080/graph",
            "http://[::1]:9",
            "http://[::1]",
            "http://127.3.4.5",
            "https://localhost:8443",
        ] {
            assert!(check_graph_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://graph.facebook.com",
            "http://10.0.0.1",
            "ftp://x",
            "graph.facebook.com",
            "https://user:pw@host",
            "https://host/?access_token=EAAB-secret",
            "https://user:EAAB-secret@graph.facebook.com",
            "http://127.0.0.1.evil.com",
            // The system resolves the name: it may not be loopback.
            "http://localhost:1",
            "http://LOCALHOST",
            // Anything after the host but a port.
            "http://[::1]evil.com:18099",
            "http://[::1]:",
            "http://127.0.0.1:80:80",
            "http://127.0.0.1:8o",
            "http://[::1",
        ] {
            let e = check_graph_url(bad).unwrap_err().to_string();
            assert!(!e.contains(bad), "the URL is echoed: {e}");
        }
    }

    #[test]
    fn a_request_is_never_built_for_plain_http_elsewhere() {
        // The fields are public: a config never checked must not send the token in clear.
        let config = GraphConfig {
            graph_url: "http://graph.example.com".into(),
            ..Default::default()
        };
        let dest = Destination::new("42", "EAABsecret").unwrap();
        let mut body = RequestBody::new(&RequestFields::default());
        let e = build_request(&config, &dest, &mut body).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }

    #[test]
    fn versions_are_checked() {
        let mut c = GraphConfig::default();
        assert!(c.check().is_ok());
        for v in ["25.0", "v25", "vx.0", "v25.0/"] {
            c.api_version = v.into();
            assert!(c.check().is_err(), "{v}");
        }
    }

    #[test]
    fn request_carries_token_in_header_only() {
        let dest = Destination::new("42", "EAABsecret")
            .unwrap()
            .with_app_secret("SECRET")
            .unwrap()
            .with_test_event_code("TEST9");
        let config = GraphConfig {
            partner_agent: Some("plfreight-1-0.1".into()),
            ..Default::default()
        };
        let fields = request_fields(&config, &dest, &RequestFields::default());
        let mut body = RequestBody::new(&fields);
        let req = build_request(&config, &dest, &mut body).unwrap();
        assert_eq!(req.url, "https://graph.facebook.com/v25.0/42/events");
        assert!(!req.url.contains("EAAB"));
        assert!(!String::from_utf8_lossy(&req.body).contains("EAABsecret"));
        let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(v["test_event_code"], "TEST9");
        assert_eq!(v["partner_agent"], "plfreight-1-0.1");
        assert_eq!(
            v["appsecret_proof"],
            appsecret_proof("SECRET", "EAABsecret")
        );
        assert!(!format!("{req:?}").contains("EAABsecret"));
    }
}
