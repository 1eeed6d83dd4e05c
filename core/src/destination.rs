//! Where events go: one advertiser's pixel (or dataset) and the credentials for it.
//!
//! Secrets (the access token, the app secret) live in [`Secret`], which has no `Display` and
//! no `Serialize`, and whose `Debug` prints `<redacted>`: they cannot end up in a log line, an
//! error message or a report by accident.

use serde::Deserialize;
use std::fmt;

/// A credential. It can be read on purpose ([`Secret::expose`]) but never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One advertiser's destination: `{pixel_id, access_token, test_event_code?, app_secret?}`.
///
/// ```
/// use freight::destination::Destination;
/// let d = Destination::new("1234567890", "EAAB-secret").unwrap();
/// assert!(!format!("{d:?}").contains("EAAB"));
/// assert!(Destination::new("my-pixel", "t").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Destination {
    pixel_id: String,
    access_token: Secret,
    test_event_code: Option<String>,
    app_secret: Option<Secret>,
}

/// A destination that cannot be used, and why (never showing the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationError(pub String);

impl fmt::Display for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DestinationError {}

fn check_secret(name: &str, value: &str) -> Result<(), DestinationError> {
    if value.is_empty() {
        return Err(DestinationError(format!("{name} is empty")));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DestinationError(format!(
            "{name} contains whitespace or control characters; copy it again without them"
        )));
    }
    // Meta's tokens and secrets are ASCII letters, digits and a few marks; anything else
    // (a typographic quote, a look-alike letter) is a copying error, and an HTTP header
    // cannot carry it: it would fail every attempt as if Meta were unreachable.
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DestinationError(format!(
            "{name} contains a character other than ASCII letters, digits and punctuation; \
             copy it again from Meta"
        )));
    }
    Ok(())
}

impl Destination {
    /// A destination for `pixel_id` (digits: a pixel or dataset id) with its access token.
    pub fn new(
        pixel_id: impl Into<String>,
        access_token: impl Into<String>,
    ) -> Result<Destination, DestinationError> {
        let pixel_id = pixel_id.into();
        if pixel_id.is_empty() || !pixel_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DestinationError(
                "pixel_id must be the numeric id of a pixel or dataset".into(),
            ));
        }
        let access_token = access_token.into();
        check_secret("access_token", &access_token)?;
        Ok(Destination {
            pixel_id,
            access_token: Secret(access_token),
            test_event_code: None,
            app_secret: None,
        })
    }

    /// Routes events to Events Manager's Test Events tab (they are still processed).
    pub fn with_test_event_code(mut self, code: impl Into<String>) -> Destination {
        let code = code.into();
        self.test_event_code = (!code.trim().is_empty()).then_some(code);
        self
    }

    /// Adds the app secret: requests then carry `appsecret_proof`.
    pub fn with_app_secret(
        mut self,
        app_secret: impl Into<String>,
    ) -> Result<Destination, DestinationError> {
        let s = app_secret.into();
        check_secret("app_secret", &s)?;
        self.app_secret = Some(Secret(s));
        Ok(self)
    }

    /// The pixel or dataset id.
    pub fn pixel_id(&self) -> &str {
        &self.pixel_id
    }

    /// The access token.
    pub fn access_token(&self) -> &Secret {
        &self.access_token
    }

    /// The test event code, if any.
    pub fn test_event_code(&self) -> Option<&str> {
        self.test_event_code.as_deref()
    }

    /// The app secret, if any.
    pub fn app_secret(&self) -> Option<&Secret> {
        self.app_secret.as_ref()
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("pixel_id", &self.pixel_id)
            .field("access_token", &self.access_token)
            .field("test_event_code", &self.test_event_code)
            .field("app_secret", &self.app_secret)
            .finish()
    }
}

impl Destination {
    /// Reads `{"pixel_id": "…"|123, "access_token": "…", "test_event_code"?, "app_secret"?}`.
    /// Unlike serde's own errors, the messages never quote a value: a token sent as the wrong
    /// type stays out of them.
    pub fn from_json(text: &str) -> Result<Destination, DestinationError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            DestinationError(format!(
                "the destination is not valid JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        Destination::from_value(&value)
    }

    /// [`Destination::from_json`] for an already parsed value.
    pub fn from_value(value: &serde_json::Value) -> Result<Destination, DestinationError> {
        let obj = value
            .as_object()
            .ok_or_else(|| DestinationError("the destination must be a JSON object".into()))?;
        for key in obj.keys() {
            if !["pixel_id", "access_token", "test_event_code", "app_secret"]
                .contains(&key.as_str())
            {
                return Err(DestinationError(format!(
                    "unknown destination field {key:?}; expected pixel_id, access_token, \
                     test_event_code, app_secret"
                )));
            }
        }
        let text = |key: &str| -> Result<Option<String>, DestinationError> {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(DestinationError(format!("{key} must be a string"))),
            }
        };
        let pixel_id = match obj.get("pixel_id") {
            Some(serde_json::Value::Number(n)) if n.is_u64() => n.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            None | Some(serde_json::Value::Null) => {
                return Err(DestinationError("pixel_id is required".into()))
            }
            Some(_) => {
                return Err(DestinationError(
                    "pixel_id must be a string of digits".into(),
                ))
            }
        };
        let token = text("access_token")?
            .ok_or_else(|| DestinationError("access_token is required".into()))?;
        let mut dest = Destination::new(pixel_id, token)?;
        if let Some(code) = text("test_event_code")? {
            dest = dest.with_test_event_code(code);
        }
        if let Some(secret) = text("app_secret")? {
            dest = dest.with_app_secret(secret)?;
        }
        Ok(dest)
    }
}

impl<'de> Deserialize<'de> for Destination {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Destination, D::Error> {
        // Through `from_value`, whose messages never quote a value (serde's would echo a
        // token given with the wrong type).
        let value = serde_json::Value::deserialize(d)?;
        Destination::from_value(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_errors_never_echo() {
        let d = Destination::new("123", "EAABtoken")
            .unwrap()
            .with_app_secret("appsecretvalue")
            .unwrap()
            .with_test_event_code("TEST1");
        let dbg = format!("{d:?}");
        assert!(
            !dbg.contains("EAABtoken") && !dbg.contains("appsecretvalue"),
            "{dbg}"
        );
        assert!(dbg.contains("TEST1"));
        let e = Destination::new("123", "EAAB token").unwrap_err();
        assert!(!e.to_string().contains("EAAB"));
        // A token or secret copied with a typographic quote or a look-alike letter.
        for bad in [
            "EAABtok\u{e9}n",
            "\u{201c}EAABtoken\u{201d}",
            "EAAB\u{0430}token",
        ] {
            let e = Destination::new("123", bad).unwrap_err().to_string();
            assert!(
                e.starts_with("access_token contains a character other than ASCII"),
                "{e}"
            );
            assert!(!e.contains("EAAB"), "{e}");
            let d = Destination::new("123", "EAABtoken").unwrap();
            let e = d.with_app_secret(bad).unwrap_err().to_string();
            assert!(e.starts_with("app_secret contains a character"), "{e}");
        }
        let e =
            serde_json::from_str::<Destination>(r#"{"pixel_id": "1", "access_token": 987654321}"#)
                .unwrap_err();
        assert!(!e.to_string().contains("987654321"), "{e}");
        let json = r#"{"pixel_id": 123, "access_token": "bad token"}"#;
        let e = serde_json::from_str::<Destination>(json).unwrap_err();
        assert!(!e.to_string().contains("bad token"), "{e}");
        let ok: Destination =
            serde_json::from_str(r#"{"pixel_id":"42","access_token":"T","test_event_code":""}"#)
                .unwrap();
        assert_eq!((ok.pixel_id(), ok.test_event_code()), ("42", None));
        for bad in [
            r#"{"pixel_id": "1", "access_token": 987654321}"#,
            r#"{"pixel_id": "1", "access_token": ["987654321"]}"#,
            r#"{"pixel_id": "1", "access_token": "9876 54321"}"#,
            r#"{"pixel_id": "1", "access_token": "987654321", "x": 1}"#,
            r#"{"pixel_id": "1", "access_token": "987654321""#,
        ] {
            let e = Destination::from_json(bad).unwrap_err().to_string();
            assert!(!e.contains("987654321") && !e.contains("9876 "), "{e}");
        }
        let d =
            Destination::from_json(r#"{"pixel_id": 7, "access_token": "T", "app_secret": "S"}"#)
                .unwrap();
        assert_eq!(d.pixel_id(), "7");
        assert!(d.app_secret().is_some());
    }
}
