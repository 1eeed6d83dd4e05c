//! Stage 4 of the pipeline: the problems an event can have.
//!
//! Every problem is `{type, loc, msg}`: a stable snake_case slug ([`ProblemKind`]), a path
//! such as `data[3].user_data.em[0]`, and a message that names the fix. Messages name the
//! field, never its value: raw customer data and tokens never appear in a problem.
//! Whether a problem is an error (the event is rejected locally and never sent) or a warning
//! (reported, the event is sent) is fixed per kind: see [`ProblemKind::is_error`].
//!
//! The checks themselves run inside [`crate::prepare`](mod@crate::prepare), where each event is read once.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use std::fmt;

macro_rules! problem_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $slug:literal, $error:literal; )*) => {
        /// The stable identifier of a problem, serialized as its snake_case slug.
        ///
        /// Slugs are part of the public contract: they never change meaning and are never
        /// reused. New kinds may be added.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ProblemKind {
            $( $(#[$doc])* $variant, )*
        }

        impl ProblemKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ProblemKind] = &[$(ProblemKind::$variant,)*];

            /// The snake_case slug, e.g. `invalid_email`.
            pub fn as_str(self) -> &'static str {
                match self { $(ProblemKind::$variant => $slug,)* }
            }

            /// True for errors (the event is rejected), false for warnings.
            pub fn is_error(self) -> bool {
                match self { $(ProblemKind::$variant => $error,)* }
            }
        }
    };
}

problem_kinds! {
    /// The input line is not valid JSON.
    InvalidJson = "invalid_json", true;
    /// A CSV record is malformed (or the header is, or the file is not comma-separated).
    InvalidCsv = "invalid_csv", true;
    /// An input line or record could not be read: an I/O error, or longer than the limit.
    UnreadableInput = "unreadable_input", true;
    /// The event is not a JSON object.
    NotAnObject = "not_an_object", true;
    /// A field has the wrong JSON type.
    InvalidType = "invalid_type", true;
    /// A field the Conversions API does not know (only `custom_data` takes free keys).
    UnknownField = "unknown_field", true;
    /// `event_name` is missing or empty.
    MissingEventName = "missing_event_name", true;
    /// A custom event name is longer than 50 characters.
    EventNameTooLong = "event_name_too_long", false;
    /// `event_time` is missing.
    MissingEventTime = "missing_event_time", true;
    /// `event_time` is not an integer number of seconds.
    InvalidEventTime = "invalid_event_time", true;
    /// `event_time` looks like milliseconds.
    EventTimeInMilliseconds = "event_time_in_milliseconds", true;
    /// `event_time` is older than Meta accepts (7 days; 62 for `physical_store`).
    EventTimeTooOld = "event_time_too_old", true;
    /// `event_time` is more than 60 seconds in the future.
    EventTimeInFuture = "event_time_in_future", true;
    /// `action_source` is missing.
    MissingActionSource = "missing_action_source", true;
    /// `action_source` is not one of Meta's nine values.
    InvalidActionSource = "invalid_action_source", true;
    /// A `website` event without `user_data.client_user_agent`.
    MissingClientUserAgent = "missing_client_user_agent", true;
    /// A `website` event without `event_source_url`.
    MissingEventSourceUrl = "missing_event_source_url", true;
    /// A `website` event without `event_id`: browser/server deduplication is impossible.
    MissingEventId = "missing_event_id", false;
    /// `user_data` is missing, or no usable customer information key is left.
    MissingUserData = "missing_user_data", true;
    /// `user_data` holds only a combination Meta considers too broad to match.
    InsufficientUserData = "insufficient_user_data", true;
    /// A value was empty or whitespace only; it was dropped, not hashed.
    EmptyValue = "empty_value", false;
    /// A value that looks like a digest other than SHA-256 (MD5 without `md5_passthrough`,
    /// SHA-1, a SHA-256 missing a digit): normalized and hashed again, it would match nobody.
    UnrecognizedDigest = "unrecognized_digest", true;
    /// Not a plausible email address.
    InvalidEmail = "invalid_email", true;
    /// Not a usable phone number.
    InvalidPhone = "invalid_phone", true;
    /// A phone number without country code, sent as digits (set `default_country`).
    PhoneMissingCountryCode = "phone_missing_country_code", false;
    /// No letters left in a first or last name.
    InvalidName = "invalid_name", true;
    /// Not a recognised gender.
    InvalidGender = "invalid_gender", true;
    /// Not a real date of birth.
    InvalidDateOfBirth = "invalid_date_of_birth", true;
    /// No letters left in a city.
    InvalidCity = "invalid_city", true;
    /// No letters left in a state.
    InvalidState = "invalid_state", true;
    /// A postal code shorter than 2 characters.
    InvalidZip = "invalid_zip", true;
    /// Not a recognised country.
    InvalidCountry = "invalid_country", true;
    /// Not a day of birth 01–31.
    InvalidDobDay = "invalid_dob_day", true;
    /// Not a month of birth 01–12.
    InvalidDobMonth = "invalid_dob_month", true;
    /// Not a 4-digit year of birth.
    InvalidDobYear = "invalid_dob_year", true;
    /// `client_ip_address` is not an IPv4 or IPv6 address.
    InvalidIpAddress = "invalid_ip_address", true;
    /// `lead_id` is not a 15–16 digit Meta lead id.
    InvalidLeadId = "invalid_lead_id", true;
    /// `fbc` is not `fb.<index>.<ms>.<fbclid>[.<appendix>]`.
    InvalidFbc = "invalid_fbc", true;
    /// `fbp` is not `fb.<index>.<ms>.<random>[.<appendix>]`.
    InvalidFbp = "invalid_fbp", true;
    /// The creation time in `fbc`/`fbp` is in seconds; Meta documents milliseconds.
    CookieTimeInSeconds = "cookie_time_in_seconds", false;
    /// The creation time in `fbc`/`fbp` is more than a day ahead, or an `fbc` is older than
    /// the 90 days its cookie lives.
    CookieTimeImplausible = "cookie_time_implausible", false;
    /// A `Purchase` without `custom_data.value`.
    MissingValue = "missing_value", true;
    /// A monetary value that is not a finite number.
    InvalidValue = "invalid_value", true;
    /// A `Purchase` without `custom_data.currency`.
    MissingCurrency = "missing_currency", true;
    /// Not an ISO 4217 currency code.
    InvalidCurrency = "invalid_currency", true;
    /// A `contents[]` item without `id`.
    MissingContentId = "missing_content_id", true;
    /// `data_processing_options` other than `[]` or `["LDU"]`.
    InvalidDataProcessingOptions = "invalid_data_processing_options", true;
    /// A Limited Data Use country or state code outside Meta's list.
    InvalidLduLocation = "invalid_ldu_location", true;
    /// An `app` event without `app_data`.
    MissingAppData = "missing_app_data", true;
    /// A `business_messaging` event without `messaging_channel`.
    MissingMessagingChannel = "missing_messaging_channel", true;
    /// `app_data` without the fields Meta requires.
    InvalidAppData = "invalid_app_data", true;
    /// A value outside the documented set of an enumerated field.
    InvalidEnumValue = "invalid_enum_value", true;
    /// `consent` is not `granted`/`denied`/`true`/`false`.
    InvalidConsent = "invalid_consent", true;
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProblemKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem with one event: `{type, loc, msg}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The stable slug.
    pub kind: ProblemKind,
    /// Where: `data[3].user_data.em[0]`.
    pub loc: String,
    /// What is wrong and how to fix it; never contains the offending value.
    pub msg: String,
}

impl Problem {
    /// A problem at `loc`.
    pub fn new(kind: ProblemKind, loc: impl Into<String>, msg: impl Into<String>) -> Problem {
        Problem {
            kind,
            loc: loc.into(),
            msg: msg.into(),
        }
    }

    /// True when this problem rejects the event.
    pub fn is_error(&self) -> bool {
        self.kind.is_error()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.loc, self.msg, self.kind)
    }
}

impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Problem", 3)?;
        st.serialize_field("type", self.kind.as_str())?;
        st.serialize_field("loc", &self.loc)?;
        st.serialize_field("msg", &self.msg)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn slugs_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for kind in ProblemKind::ALL {
            let slug = kind.as_str();
            assert!(seen.insert(slug), "duplicate slug {slug}");
            assert!(slug.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn serializes_as_type_loc_msg() {
        let p = Problem::new(ProblemKind::InvalidEmail, "data[0].user_data.em", "fix it");
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"type":"invalid_email","loc":"data[0].user_data.em","msg":"fix it"}"#
        );
    }
}
