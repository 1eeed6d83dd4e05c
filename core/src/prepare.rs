//! The pipeline up to the wire: each input event (CAPI JSON, customer information possibly in
//! plain text) is normalized, hashed and validated into a wire-ready [`ServerEvent`], or
//! rejected with every problem listed. Input order and indexes are kept.
//!
//! An event with an error never goes on the wire, so one bad event cannot make Meta reject a
//! whole batch. Warnings are reported and the event is sent.

use crate::hash::is_appendix;
use crate::input::{Input, InputKey, View};
use crate::model::{
    ActionSource, AppData, AttributionData, Content, CustomData, OriginalEventData, ServerEvent,
    UserData, UserValue, UserValues, USER_DATA_KEYS,
};
use crate::normalize::{self, normalize_into, Field, NormalizeOptions, Out};
use crate::validate::{Problem, ProblemKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// Options of [`prepare`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrepareOptions {
    /// The normalization options (`default_country`, `date_order`, `hash_external_id`,
    /// `md5_passthrough`); in JSON they sit at the top level of the options object.
    #[serde(flatten)]
    pub normalize: NormalizeOptions,
}

/// An event ready for the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreparedEvent {
    /// Position of the event in the input.
    pub index: usize,
    /// The wire event.
    pub event: ServerEvent,
    /// Warnings: the event is sent anyway.
    pub warnings: Vec<Problem>,
}

impl Default for PreparedEvent {
    /// An empty slot for [`Preparer::prepare_into`] (its event is not a valid one).
    fn default() -> PreparedEvent {
        PreparedEvent {
            index: 0,
            event: empty_event(),
            warnings: Vec::new(),
        }
    }
}

/// An event rejected locally: it is never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Position of the event in the input.
    pub index: usize,
    /// Every error found (at least one).
    pub errors: Vec<Problem>,
    /// Warnings found along the way.
    pub warnings: Vec<Problem>,
}

/// The outcome of [`prepare`]: each input index appears exactly once, in one of the lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Prepared {
    /// Wire-ready events, in input order.
    pub events: Vec<PreparedEvent>,
    /// Rejected events, in input order.
    pub rejected: Vec<Rejection>,
    /// Events not to be sent (e.g. `"consent": "denied"`), in input order.
    pub skipped: Vec<Skipped>,
}

/// An event deliberately not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Position of the event in the input.
    pub index: usize,
    /// Why: `consent_denied`.
    pub reason: String,
}

/// Why an event is not ready ([`Preparer::process_into`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// Rejected locally, with every problem.
    Rejected(Rejection),
    /// Not to be sent.
    Skipped(Skipped),
}

/// What becomes of one input event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Ready for the wire.
    Ready(Box<PreparedEvent>),
    /// Rejected locally, with every problem.
    Rejected(Rejection),
    /// Not to be sent.
    Skipped(Skipped),
}

/// True when the event says `"consent": "denied"` (or `false`): it is never sent, whatever
/// else it holds.
fn consent_denied<I: Input>(event: &I) -> bool {
    event.get("consent").is_some_and(|v| denies(&v.view()))
}

/// True when a `consent` value denies: `"denied"` or `false`.
fn denies<I: Input>(consent: &View<'_, I>) -> bool {
    match consent {
        View::Bool(granted) => !granted,
        View::Str(s) => s == "denied",
        _ => false,
    }
}

/// Prepares every event; `now` is the current Unix time in seconds.
pub fn prepare<I: Input>(
    events: impl IntoIterator<Item = I>,
    options: &PrepareOptions,
    now: i64,
) -> Prepared {
    let preparer = Preparer::new(options, now);
    let events = events.into_iter();
    let mut out = Prepared {
        events: Vec::with_capacity(events.size_hint().0),
        rejected: Vec::new(),
        skipped: Vec::new(),
    };
    for (index, event) in events.enumerate() {
        // As `Preparer::process`, but each event is filled in its place in the list.
        out.events.push(PreparedEvent::default());
        if let Some(slot) = out.events.last_mut() {
            if let Err(not_ready) = preparer.process_into(event, index, slot) {
                out.events.pop();
                match not_ready {
                    NotReady::Rejected(r) => out.rejected.push(r),
                    NotReady::Skipped(s) => out.skipped.push(s),
                }
            }
        }
    }
    out
}

/// Prepares events one at a time with fixed options and clock (for streaming).
#[derive(Debug, Clone)]
pub struct Preparer {
    norm: NormalizeOptions,
    now: i64,
}

/// Standard event names (web, app and business messaging); any other name is custom.
pub const STANDARD_EVENTS: &[&str] = &[
    "AddPaymentInfo",
    "AddToCart",
    "AddToWishlist",
    "CartAbandoned",
    "CompleteRegistration",
    "Contact",
    "CustomizeProduct",
    "Donate",
    "FindLocation",
    "InitiateCheckout",
    "Lead",
    "LeadSubmitted",
    "OrderCanceled",
    "OrderCreated",
    "OrderDelivered",
    "OrderReturned",
    "OrderShipped",
    "PageView",
    "Purchase",
    "QualifiedLead",
    "RatingProvided",
    "ReviewProvided",
    "Schedule",
    "Search",
    "StartTrial",
    "SubmitApplication",
    "Subscribe",
    "ViewContent",
];

const DAY: i64 = 86_400;
/// Meta's limit for future event times (Meta is silent; peers use one minute).
const MAX_FUTURE_SECS: i64 = 60;
/// Later than this many seconds since 1970 is taken for milliseconds (year 5138).
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

const CUSTOMER_SEGMENTATION: &[&str] = &[
    "new_customer_to_business",
    "new_customer_to_business_line",
    "new_customer_to_product_area",
    "new_customer_to_medium",
    "existing_customer_to_business",
    "existing_customer_to_business_line",
    "existing_customer_to_product_area",
    "existing_customer_to_medium",
    "customer_in_loyalty_program",
];

const DELIVERY_CATEGORIES: &[&str] = &["in_store", "curbside", "home_delivery"];

/// Where a problem is, built without allocating: only rendered (`data[3].user_data.em[0]`)
/// when a problem is reported.
#[derive(Clone, Copy)]
enum Loc<'a> {
    Event(usize),
    Key(&'a Loc<'a>, &'a str),
    Index(&'a Loc<'a>, usize),
}

impl<'a> Loc<'a> {
    fn key(&'a self, k: &'a str) -> Loc<'a> {
        Loc::Key(self, k)
    }

    fn index(&'a self, i: usize) -> Loc<'a> {
        Loc::Index(self, i)
    }
}

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Event(i) => write!(f, "data[{i}]"),
            Loc::Key(parent, k) => write!(f, "{parent}.{k}"),
            Loc::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// The scratch buffer is dropped after an event that grew it beyond this many bytes.
const SCRATCH_KEEP: usize = 4096;

thread_local! {
    /// Scratch space for normalizing customer values, reused across events.
    static SCRATCH: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(64));
}

/// At most this many spare strings are kept per thread, each of at most `SPARE_TEXT` bytes.
const SPARE_STRINGS: usize = 32;
const SPARE_TEXT: usize = 1024;
/// A spare `contents` list is kept when it holds at most this many items.
const SPARE_CONTENTS: usize = 64;

thread_local! {
    /// The emptied text and `contents` list of events recycled by [`Preparer::prepare_into`]
    /// on this thread, for the next events to fill: a stream of events then allocates no text.
    static SPARE: std::cell::Cell<Spare> = std::cell::Cell::new(Spare::default());
}

/// Allocations of an earlier event, emptied, to be filled again.
#[derive(Default)]
struct Spare {
    strings: Vec<String>,
    contents: Vec<Content>,
}

impl Spare {
    fn keep(&mut self, mut s: String) {
        if s.capacity() > 0 && s.capacity() <= SPARE_TEXT && self.strings.len() < SPARE_STRINGS {
            s.clear();
            self.strings.push(s);
        }
    }

    fn keep_opt(&mut self, s: &mut Option<String>) {
        if let Some(s) = s.take() {
            self.keep(s);
        }
    }

    /// Takes the allocations of `ev`'s common text fields and leaves `ev` empty.
    fn recycle(&mut self, ev: &mut ServerEvent) {
        self.keep(std::mem::take(&mut ev.event_name));
        self.keep_opt(&mut ev.event_id);
        self.keep_opt(&mut ev.event_source_url);
        self.keep_opt(&mut ev.referrer_url);
        let u = &mut ev.user_data;
        for s in [
            &mut u.client_ip_address,
            &mut u.client_user_agent,
            &mut u.fbc,
            &mut u.fbp,
        ] {
            self.keep_opt(s);
        }
        if let Some(cd) = &mut ev.custom_data {
            self.keep_opt(&mut cd.currency);
            self.keep_opt(&mut cd.order_id);
            if let Some(mut contents) = cd.contents.take() {
                if contents.capacity() > self.contents.capacity()
                    && contents.capacity() <= SPARE_CONTENTS
                {
                    for c in &mut contents {
                        self.empty(c);
                    }
                    self.contents = contents;
                } else {
                    for c in &mut contents {
                        self.keep(std::mem::take(&mut c.id));
                    }
                }
            }
        }
        *ev = empty_event();
    }

    /// Empties a `contents` item in place (an item is large: moving one costs more).
    fn empty(&mut self, c: &mut Content) {
        self.keep(std::mem::take(&mut c.id));
        c.quantity = None;
        c.item_price = None;
        for s in [
            &mut c.title,
            &mut c.description,
            &mut c.brand,
            &mut c.category,
            &mut c.delivery_category,
        ] {
            self.keep_opt(s);
        }
        c.extra.clear();
    }

    /// `s` as an owned string, in a spare allocation when there is one.
    fn own(&mut self, s: Cow<'_, str>) -> String {
        match s {
            Cow::Owned(s) => s,
            Cow::Borrowed(s) => match self.strings.pop() {
                Some(mut spare) => {
                    spare.push_str(s);
                    spare
                }
                None => s.to_owned(),
            },
        }
    }

    /// A list with room for `n` contents items, holding empty items to fill in place.
    fn contents(&mut self, n: usize) -> Vec<Content> {
        if self.contents.capacity() >= n {
            std::mem::take(&mut self.contents)
        } else {
            Vec::with_capacity(n)
        }
    }
}

/// The empty event a slot holds between events (not a valid one).
fn empty_event() -> ServerEvent {
    ServerEvent::new(String::new(), 0, ActionSource::Other)
}

/// The kinds that say a field is absent.
fn is_missing(kind: ProblemKind) -> bool {
    matches!(
        kind,
        ProblemKind::MissingEventName
            | ProblemKind::MissingEventTime
            | ProblemKind::MissingActionSource
            | ProblemKind::MissingClientUserAgent
            | ProblemKind::MissingEventSourceUrl
            | ProblemKind::MissingEventId
            | ProblemKind::MissingValue
            | ProblemKind::MissingCurrency
            | ProblemKind::MissingContentId
            | ProblemKind::MissingAppData
            | ProblemKind::MissingMessagingChannel
    )
}

/// Accumulates the problems of one event, and holds the spare allocations it may fill.
#[derive(Default)]
struct Problems {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    spare: Spare,
    /// Whether the event's own `consent` denies it, once its first `consent` key is read.
    consent: Option<bool>,
    /// The creation times (ms) of the event's `fbc` and `fbp`, checked against its
    /// `event_time` once that is read ([`cookie_time`]).
    cookies: [Option<i64>; 2],
}

impl Problems {
    fn own(&mut self, s: Cow<'_, str>) -> String {
        self.spare.own(s)
    }

    fn push(&mut self, kind: ProblemKind, loc: &Loc<'_>, msg: impl Into<String>) {
        let p = Problem::new(kind, loc.to_string(), msg);
        // A field given with the wrong type is reported as such, not also as missing.
        if is_missing(kind) && self.errors.iter().any(|e| e.loc == p.loc) {
            return;
        }
        if kind.is_error() {
            self.errors.push(p);
        } else {
            self.warnings.push(p);
        }
    }

    fn wrong_type(&mut self, loc: &Loc<'_>, expected: &str) {
        self.push(ProblemKind::InvalidType, loc, format!("must be {expected}"));
    }
}

/// An object's entries; `Some(None)` for an empty array, taken for an empty object (PHP
/// encodes an empty associative array as `[]`).
fn as_object<I: Input>(v: View<'_, I>) -> Option<Option<I::Entries>> {
    match v {
        View::Object(entries) => Some(Some(entries)),
        View::Array(items) if items.len() == 0 => Some(None),
        _ => None,
    }
}

impl Preparer {
    /// A preparer with `options` and the clock `now` (Unix seconds).
    pub fn new(options: &PrepareOptions, now: i64) -> Preparer {
        let mut norm = options.normalize.clone();
        norm.now = Some(now);
        Preparer { norm, now }
    }

    /// Decides what becomes of the event at input position `index`: skipped when consent is
    /// denied, else prepared or rejected.
    pub fn process<I: Input>(&self, event: I, index: usize) -> Outcome {
        self.process_with_consent(event, index, |_| true)
    }

    /// [`Preparer::process`] with the host's own consent decision: `consent(event)` returning
    /// false skips the event (`consent_denied`), as does a `"consent": "denied"` field.
    ///
    /// ```
    /// use freight::prepare::{Outcome, PrepareOptions, Preparer};
    /// let p = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
    /// let ev = serde_json::json!({"event_name": "Lead", "user_data": {"em": "a@b.co"}});
    /// let opted_out = |e: &&serde_json::Value| e["user_data"]["em"] != "a@b.co";
    /// assert!(matches!(p.process_with_consent(&ev, 0, opted_out), Outcome::Skipped(_)));
    /// ```
    pub fn process_with_consent<I: Input>(
        &self,
        event: I,
        index: usize,
        consent: impl Fn(&I) -> bool,
    ) -> Outcome {
        if let Some(s) = Preparer::skip(&event, index) {
            return Outcome::Skipped(s);
        }
        if !consent(&event) {
            return Outcome::Skipped(Skipped {
                index,
                reason: "consent_denied".into(),
            });
        }
        match self.prepare_one(event, index) {
            Ok(e) => Outcome::Ready(Box::new(e)),
            Err(r) => Outcome::Rejected(r),
        }
    }

    /// Why the event at `index` is not to be sent, if it says so itself (`"consent":
    /// "denied"`). [`Preparer::process`] checks this first; callers of
    /// [`Preparer::prepare_one`] must too.
    pub fn skip<I: Input>(event: &I, index: usize) -> Option<Skipped> {
        consent_denied(event).then(|| Skipped {
            index,
            reason: "consent_denied".into(),
        })
    }

    /// Prepares the event at input position `index`. Consent is not looked at: see
    /// [`Preparer::skip`] and [`Preparer::process`].
    pub fn prepare_one<I: Input>(
        &self,
        event: I,
        index: usize,
    ) -> Result<PreparedEvent, Rejection> {
        let mut out = PreparedEvent::default();
        self.prepare_into(event, index, &mut out).map(|()| out)
    }

    /// [`Preparer::prepare_one`] into `out`, reusing the allocations of the event it holds
    /// (as `Vec::clear` does). Consent is not looked at: a sender wants
    /// [`Preparer::process_into`], which is this plus the event's own consent. `out` is
    /// overwritten; after an `Err` it holds an empty event, never the rejected one.
    ///
    /// ```
    /// use freight::batch::{RequestBody, RequestFields};
    /// use freight::prepare::{PrepareOptions, PreparedEvent, Preparer};
    ///
    /// let events = [serde_json::json!({
    ///     "event_name": "Lead", "event_time": 1_795_391_000, "action_source": "system_generated",
    ///     "user_data": {"em": "jane@example.com"},
    /// })];
    /// let preparer = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
    /// let fields = RequestFields::default();
    /// let mut body = RequestBody::new(&fields);
    /// let mut slot = PreparedEvent::default();
    /// for (i, e) in events.iter().enumerate() {
    ///     if preparer.prepare_into(e, i, &mut slot).is_ok() {
    ///         body.push(&slot.event);
    ///     }
    /// }
    /// assert_eq!(body.len(), 1);
    /// ```
    ///
    /// (The same loop with [`Preparer::process_into`] also leaves out the events whose
    /// `consent` denies them.)
    pub fn prepare_into<I: Input>(
        &self,
        event: I,
        index: usize,
        out: &mut PreparedEvent,
    ) -> Result<(), Rejection> {
        self.fill(event, index, out, false).map_err(|(r, _)| r)
    }

    /// [`Preparer::process`] into `out`, reusing its allocations as
    /// [`Preparer::prepare_into`] does: the sender's path, where each ready event is written
    /// to a [`RequestBody`](crate::batch::RequestBody) at once, so a stream of events
    /// allocates nothing. The event's own `consent` is read in the same pass as the rest (a
    /// host's consent callback is for [`Preparer::process_with_consent`]). After an `Err`,
    /// `out` holds an empty event, never the rejected or skipped one.
    ///
    /// ```
    /// use freight::batch::{RequestBody, RequestFields};
    /// use freight::prepare::{NotReady, PrepareOptions, PreparedEvent, Preparer};
    ///
    /// let lead = serde_json::json!({
    ///     "event_name": "Lead", "event_time": 1_795_391_000, "action_source": "system_generated",
    ///     "user_data": {"em": "jane@example.com"},
    /// });
    /// let mut denied = lead.clone();
    /// denied["consent"] = "denied".into();
    /// let preparer = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
    /// let fields = RequestFields::default();
    /// let mut body = RequestBody::new(&fields);
    /// let mut slot = PreparedEvent::default();
    /// let mut skipped = Vec::new();
    /// for (i, e) in [lead, denied].iter().enumerate() {
    ///     match preparer.process_into(e, i, &mut slot) {
    ///         Ok(()) => body.push(&slot.event),
    ///         Err(NotReady::Skipped(s)) => skipped.push(s),
    ///         Err(NotReady::Rejected(r)) => panic!("{r:?}"),
    ///     }
    /// }
    /// assert_eq!((body.len(), skipped.len()), (1, 1));
    /// ```
    pub fn process_into<I: Input>(
        &self,
        event: I,
        index: usize,
        out: &mut PreparedEvent,
    ) -> Result<(), NotReady> {
        match self.fill(event, index, out, true) {
            Ok(()) => Ok(()),
            Err((_, true)) => Err(NotReady::Skipped(Skipped {
                index,
                reason: "consent_denied".into(),
            })),
            Err((r, false)) => Err(NotReady::Rejected(r)),
        }
    }

    /// Reads the event into `out`. With `consent`, an event whose own consent denies it is
    /// an error too, and the error tells so.
    fn fill<I: Input>(
        &self,
        event: I,
        index: usize,
        out: &mut PreparedEvent,
        consent: bool,
    ) -> Result<(), (Rejection, bool)> {
        let mut p = Problems {
            spare: SPARE.take(),
            ..Problems::default()
        };
        p.spare.recycle(&mut out.event);
        out.index = index;
        out.warnings.clear();
        let complete = self.read_one(event, index, &mut p, &mut out.event);
        let denied = consent && p.consent == Some(true);
        let ready = complete && p.errors.is_empty() && !denied;
        if !ready {
            // Nothing of an event that is not sent stays in the slot.
            p.spare.recycle(&mut out.event);
        }
        let Problems {
            errors,
            warnings,
            spare,
            ..
        } = p;
        SPARE.set(spare);
        if ready {
            out.warnings = warnings;
            Ok(())
        } else {
            let rejection = Rejection {
                index,
                errors,
                warnings,
            };
            Err((rejection, denied))
        }
    }

    /// Reads the event into `ev` (filled in place: the event is large, and moving it costs
    /// more than filling it); true when it is complete.
    fn read_one<I: Input>(
        &self,
        event: I,
        index: usize,
        p: &mut Problems,
        ev: &mut ServerEvent,
    ) -> bool {
        let root = Loc::Event(index);
        let view = event.view();
        let type_name = view.type_name();
        match as_object(view) {
            Some(entries) => self.read_event::<I>(entries, &root, p, ev),
            None => {
                p.push(
                    ProblemKind::NotAnObject,
                    &root,
                    format!("an event must be a JSON object, not {type_name}"),
                );
                false
            }
        }
    }

    /// Reads the event's fields into `ev`; true when every required field is there.
    fn read_event<I: Input>(
        &self,
        entries: Option<I::Entries>,
        root: &Loc<'_>,
        p: &mut Problems,
        ev: &mut ServerEvent,
    ) -> bool {
        let mut event_name: Option<String> = None;
        let mut event_time = None;
        let mut action_source = None;
        let mut event_id = None;
        let mut event_source_url = None;
        let mut referrer_url = None;
        let mut opt_out = None;
        let mut user_data_read = false;
        let mut user_data_errors = 0;
        let mut app_data = None;
        let mut dpo = None;
        let mut dpo_country = None;
        let mut dpo_state = None;
        let mut original_event_data = None;
        let mut attribution_data = None;
        let mut messaging_channel = None;
        let mut customer_segmentation = None;
        let mut advanced_measurement_table = None;
        // Keys given with a value (not null), for "missing" checks after the loop.
        let (mut has_time, mut has_source, mut has_user_data, mut has_app_data) =
            (false, false, false, false);
        let mut custom_keys = CustomKeys::default();

        let mut entries = entries;
        while let Some((key, node)) = entries.as_mut().and_then(Iterator::next) {
            let key = key.text();
            let k: &str = &key;
            let v = node.view();
            if matches!(v, View::Null) {
                continue; // Meta's Payload Helper emits nulls for absent values.
            }
            has_source |= k == "action_source";
            match k {
                // Surrounding spaces are no part of a name (" Purchase " is a Purchase).
                "event_name" => event_name = string(v, &root.key(k), p).map(trimmed),
                "event_time" => {
                    has_time = true;
                    event_time = self.event_time(v, &root.key(k), p);
                }
                "action_source" => match v {
                    View::Str(s) => match ActionSource::parse(&s) {
                        Some(a) => action_source = Some(a),
                        None => p.push(
                            ProblemKind::InvalidActionSource,
                            &root.key(k),
                            "must be one of email, website, app, phone_call, chat, \
                             physical_store, system_generated, business_messaging, other",
                        ),
                    },
                    _ => p.wrong_type(&root.key(k), "a string"),
                },
                // Blank is absent, as for the user agent: a website event then gets the
                // warning and the error it would get without them.
                "event_id" => event_id = id_string(v, &root.key(k), p).filter(|s| not_blank(s)),
                "event_source_url" => {
                    event_source_url = string(v, &root.key(k), p).filter(|s| not_blank(s))
                }
                "referrer_url" => referrer_url = string(v, &root.key(k), p),
                "opt_out" => match v {
                    View::Bool(b) => opt_out = Some(b),
                    _ => p.wrong_type(&root.key(k), "true or false"),
                },
                "user_data" => {
                    has_user_data = true;
                    match as_object(v) {
                        Some(m) => {
                            let before = p.errors.len();
                            self.read_user_data::<I>(m, &root.key(k), p, &mut ev.user_data);
                            user_data_read = true;
                            user_data_errors = p.errors.len() - before;
                        }
                        None => p.wrong_type(&root.key(k), "an object"),
                    }
                }
                "custom_data" => match as_object(v) {
                    Some(m) => {
                        let cd = ev.custom_data.insert(CustomData::default());
                        read_custom_data::<I>(m, &root.key(k), p, &mut custom_keys, cd);
                    }
                    None => p.wrong_type(&root.key(k), "an object"),
                },
                "app_data" => {
                    // Given (not null), even if unreadable: then its own error, no "missing".
                    has_app_data = true;
                    app_data = nested::<AppData, I>(&node, k, root, p).map(Box::new);
                }
                "data_processing_options" => dpo = read_dpo(v, root, p),
                "data_processing_options_country" => dpo_country = integer(v, &root.key(k), p),
                "data_processing_options_state" => dpo_state = integer(v, &root.key(k), p),
                "original_event_data" => {
                    original_event_data = nested::<OriginalEventData, I>(&node, k, root, p);
                    // The time of the original event: seconds, not in the future, as ours.
                    if let Some(t) = original_event_data.as_ref().and_then(|o| o.event_time) {
                        let loc = root.key("original_event_data.event_time");
                        self.event_time(View::<I>::Int(t), &loc, p);
                    }
                }
                "attribution_data" => {
                    attribution_data = nested::<AttributionData, I>(&node, k, root, p).map(Box::new)
                }
                "messaging_channel" => messaging_channel = string(v, &root.key(k), p),
                "customer_segmentation" => {
                    customer_segmentation = segmentation(v, &root.key(k), p);
                }
                "advanced_measurement_table" => {
                    advanced_measurement_table = string(v, &root.key(k), p)
                }
                // Freight's own field: never sent. "denied" is handled by `process`.
                "consent" => {
                    let ok = match &v {
                        View::Bool(_) => true,
                        View::Str(s) => matches!(s.as_ref(), "granted" | "denied"),
                        _ => false,
                    };
                    // As `consent_denied`: the first `consent` key decides.
                    if p.consent.is_none() {
                        p.consent = Some(denies(&v));
                    }
                    if !ok {
                        p.push(
                            ProblemKind::InvalidConsent,
                            &root.key(k),
                            "must be \"granted\" or \"denied\" (or true/false)",
                        );
                    }
                }
                // The Node SDK's legacy place for it.
                "advertiser_tracking_enabled" => p.push(
                    ProblemKind::UnknownField,
                    &root.key(k),
                    "belongs in app_data (app_data.advertiser_tracking_enabled)",
                ),
                _ => p.push(
                    ProblemKind::UnknownField,
                    &root.key(k),
                    "not a server event field; custom properties go in custom_data",
                ),
            }
        }

        match &event_name {
            None => p.push(
                ProblemKind::MissingEventName,
                &root.key("event_name"),
                "is required, e.g. \"Purchase\"",
            ),
            Some(n) if normalize::trim(n).is_empty() => p.push(
                ProblemKind::MissingEventName,
                &root.key("event_name"),
                "must not be empty",
            ),
            Some(n) if !STANDARD_EVENTS.contains(&n.as_str()) && n.chars().count() > 50 => p.push(
                ProblemKind::EventNameTooLong,
                &root.key("event_name"),
                "custom event names longer than 50 characters are refused by the pixel; \
                 shorten it so browser and server events match",
            ),
            _ => {}
        }
        // The cookies' times against the event's (an offline event is sent days later).
        for (i, key) in ["user_data.fbc", "user_data.fbp"].into_iter().enumerate() {
            if let Some(ms) = p.cookies[i] {
                cookie_time(
                    ms,
                    event_time.unwrap_or(self.now),
                    i == 0,
                    &root.key(key),
                    p,
                );
            }
        }
        if event_time.is_none() && !has_time {
            p.push(
                ProblemKind::MissingEventTime,
                &root.key("event_time"),
                "is required: the Unix time in seconds when the event happened",
            );
        }
        if action_source.is_none() && !has_source {
            p.push(
                ProblemKind::MissingActionSource,
                &root.key("action_source"),
                "is required, e.g. \"website\" or \"physical_store\"",
            );
        }
        if let (Some(t), Some(a)) = (event_time, action_source) {
            let days = if a == ActionSource::PhysicalStore {
                62
            } else {
                7
            };
            if t < self.now.saturating_sub(days * DAY) {
                p.push(
                    ProblemKind::EventTimeTooOld,
                    &root.key("event_time"),
                    format!(
                        "is more than {days} days in the past; Meta refuses the whole \
                         request for such an event"
                    ),
                );
            }
        }
        if action_source == Some(ActionSource::Website) {
            if ev.user_data.client_user_agent.is_none() {
                p.push(
                    ProblemKind::MissingClientUserAgent,
                    &root.key("user_data.client_user_agent"),
                    "is required for website events: send the browser's User-Agent",
                );
            }
            if event_source_url.is_none() {
                p.push(
                    ProblemKind::MissingEventSourceUrl,
                    &root.key("event_source_url"),
                    "is required for website events: send the page URL",
                );
            }
            if event_id.is_none() {
                p.push(
                    ProblemKind::MissingEventId,
                    &root.key("event_id"),
                    "no event_id: Meta cannot deduplicate this event against the browser \
                     pixel; send the pixel's eventID",
                );
            }
        }
        if action_source == Some(ActionSource::BusinessMessaging)
            && !messaging_channel.as_deref().is_some_and(not_blank)
        {
            p.push(
                ProblemKind::MissingMessagingChannel,
                &root.key("messaging_channel"),
                "is required for business_messaging events: whatsapp, messenger or instagram",
            );
        }
        if action_source == Some(ActionSource::App) && app_data.is_none() && !has_app_data {
            p.push(
                ProblemKind::MissingAppData,
                &root.key("app_data"),
                "is required for app events (advertiser_tracking_enabled and extinfo)",
            );
        }
        if let Some(app) = &app_data {
            check_app_data(app, root, p);
        }
        if event_name.as_deref() == Some("Purchase") {
            let cd = ev.custom_data.as_ref();
            if cd.and_then(|c: &CustomData| c.value).is_none() && !custom_keys.value {
                p.push(
                    ProblemKind::MissingValue,
                    &root.key("custom_data.value"),
                    "is required for Purchase: the order's monetary value, e.g. 19.99",
                );
            }
            if cd.and_then(|c| c.currency.as_ref()).is_none() && !custom_keys.currency {
                p.push(
                    ProblemKind::MissingCurrency,
                    &root.key("custom_data.currency"),
                    "is required for Purchase: an ISO 4217 code such as USD",
                );
            }
        }
        check_ldu(dpo.as_deref(), dpo_country, dpo_state, root, p);
        match user_data_read.then_some(&ev.user_data) {
            None if !has_user_data => p.push(
                ProblemKind::MissingUserData,
                &root.key("user_data"),
                "is required: send at least one customer information parameter",
            ),
            // With a broken value, "too little data" would only repeat that problem.
            Some(u) if user_data_errors == 0 => check_user_data_breadth(u, root, p),
            Some(_) => {}
            None => {}
        }

        ev.event_id = event_id;
        ev.event_source_url = event_source_url;
        ev.referrer_url = referrer_url;
        ev.opt_out = opt_out;
        ev.app_data = app_data;
        ev.data_processing_options = dpo;
        ev.data_processing_options_country = dpo_country;
        ev.data_processing_options_state = dpo_state;
        ev.original_event_data = original_event_data;
        ev.attribution_data = attribution_data;
        ev.messaging_channel = messaging_channel;
        ev.customer_segmentation = customer_segmentation;
        ev.advanced_measurement_table = advanced_measurement_table;
        match (event_name, event_time, action_source) {
            (Some(name), Some(time), Some(source)) if user_data_read => {
                ev.event_name = name;
                ev.event_time = time;
                ev.action_source = source;
                true
            }
            _ => false,
        }
    }

    fn event_time<I: Input>(&self, v: View<'_, I>, loc: &Loc<'_>, p: &mut Problems) -> Option<i64> {
        let View::Int(t) = v else {
            p.push(
                ProblemKind::InvalidEventTime,
                loc,
                "must be an integer: Unix time in seconds",
            );
            return None;
        };
        if t >= MILLIS_THRESHOLD {
            p.push(
                ProblemKind::EventTimeInMilliseconds,
                loc,
                "looks like milliseconds; send Unix time in seconds (divide by 1000)",
            );
            return None;
        }
        if t > self.now.saturating_add(MAX_FUTURE_SECS) {
            p.push(
                ProblemKind::EventTimeInFuture,
                loc,
                "is more than 60 seconds in the future; check the clock and the time zone \
                 (Unix time is UTC)",
            );
            return None;
        }
        Some(t)
    }

    fn read_user_data<I: Input>(
        &self,
        entries: Option<I::Entries>,
        ud_loc: &Loc<'_>,
        p: &mut Problems,
        ud: &mut UserData,
    ) {
        let Some(entries) = entries else { return };
        // The normalization buffer, reused across events on this thread.
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buf) => {
                self.read_user_values::<I>(entries, ud_loc, p, ud, &mut buf);
                // One huge value must not pin its memory for the thread's lifetime.
                if buf.capacity() > SCRATCH_KEEP {
                    *buf = String::with_capacity(64);
                }
            }
            Err(_) => self.read_user_values::<I>(entries, ud_loc, p, ud, &mut String::new()),
        });
    }

    fn read_user_values<I: Input>(
        &self,
        entries: I::Entries,
        ud_loc: &Loc<'_>,
        p: &mut Problems,
        ud: &mut UserData,
        buf: &mut String,
    ) {
        for (key, node) in entries {
            // The key first, even for a null value: an input whose keys cannot be read (the
            // Python binding's) learns of them here.
            let key = key.text();
            let k: &str = &key;
            let v = node.view();
            if matches!(v, View::Null) {
                continue;
            }
            let loc = ud_loc.key(k);
            let loc = &loc;
            if let Some(field) = Field::from_key(k) {
                let mut values = UserValues::new();
                match v {
                    View::Array(items) => {
                        for (i, item) in items.enumerate() {
                            let item = item.view();
                            if matches!(item, View::Null) {
                                continue;
                            }
                            let item_loc = loc.index(i);
                            if let Some(w) = self.hashed_value(field, item, &item_loc, buf, p) {
                                let w = w.value(buf);
                                if !values.contains(&w) {
                                    values.push(w);
                                }
                            }
                        }
                    }
                    _ => {
                        let ready = self.hashed_value(field, v, loc, buf, p);
                        // The common case, one value: its digest is computed in its place.
                        if let Some(list) = ud.list_of(field) {
                            match ready {
                                Some(Ready::Hash) => list.set_sha256(buf),
                                Some(Ready::Value(w)) => {
                                    list.clear();
                                    list.push(w);
                                }
                                None => list.clear(),
                            }
                        } else if let Some(slot) = ud.single_of(field) {
                            *slot = ready.map(|w| w.value(buf));
                        }
                        continue;
                    }
                }
                if let Some(list) = ud.list_of(field) {
                    *list = values;
                } else if values.len() > 1 {
                    p.push(ProblemKind::InvalidType, loc, "takes a single value");
                } else if let Some(slot) = ud.single_of(field) {
                    *slot = values.iter().next().cloned();
                }
                continue;
            }
            if let Some(slot) = ud.single_mut(k) {
                *slot = plain_value(k, v, loc, p);
                continue;
            }
            let msg = match crate::model::user_data_key_for(k) {
                Some(key) => format!("not a customer information parameter; did you mean {key}?"),
                None => "not a customer information parameter".to_owned(),
            };
            p.push(ProblemKind::UnknownField, loc, msg);
        }
    }

    /// Normalizes one value; `None` when it is dropped or has a problem. A value to hash is
    /// left in `buf`, for the caller to hash where the digest is to be kept.
    fn hashed_value<I: Input>(
        &self,
        field: Field,
        v: View<'_, I>,
        loc: &Loc<'_>,
        buf: &mut String,
        p: &mut Problems,
    ) -> Option<Ready> {
        let number = if numeric_ok(field) {
            v.number_text()
        } else {
            None
        };
        let raw: Cow<'_, str> = match (v, number) {
            (View::Str(s), _) => s,
            (_, Some(n)) => Cow::Owned(n),
            (View::Float(_), None) if numeric_ok(field) => {
                p.wrong_type(
                    loc,
                    "a string: a number this large has no exact digits in JSON (send it as text)",
                );
                return None;
            }
            _ => {
                p.wrong_type(
                    loc,
                    if numeric_ok(field) {
                        "a string or a number"
                    } else {
                        "a string"
                    },
                );
                return None;
            }
        };
        match normalize_into(field, &raw, &self.norm, buf) {
            Ok(Out::Empty) => {
                p.push(
                    ProblemKind::EmptyValue,
                    loc,
                    "empty value dropped (it is never hashed)",
                );
                None
            }
            Ok(Out::Hashed(h)) => Some(Ready::Value(UserValue::from(h))),
            Ok(Out::Plain(warning)) => {
                if let Some(w) = warning {
                    p.push(w, loc, warning_msg(w));
                }
                Some(if field.is_hashed(&self.norm) {
                    Ready::Hash
                } else {
                    Ready::Value(UserValue::from(buf.as_str()))
                })
            }
            Err(e) => {
                p.push(e.kind, loc, e.msg);
                None
            }
        }
    }
}

/// A customer value ready to keep.
enum Ready {
    /// The wire value.
    Value(UserValue),
    /// The digest of the normalized text in the scratch buffer.
    Hash,
}

impl Ready {
    fn value(self, buf: &str) -> UserValue {
        match self {
            Ready::Value(v) => v,
            Ready::Hash => UserValue::sha256(buf),
        }
    }
}

fn numeric_ok(field: Field) -> bool {
    matches!(
        field,
        Field::Ph
            | Field::Zp
            | Field::ExternalId
            | Field::Db
            | Field::Dobd
            | Field::Dobm
            | Field::Doby
    )
}

/// What a warning from [`normalize`](crate::normalize::normalize) means and what to do.
pub fn warning_msg(kind: ProblemKind) -> &'static str {
    match kind {
        ProblemKind::PhoneMissingCountryCode => {
            "phone number without country code, sent as digits; add the country code or \
             set the default_country option"
        }
        _ => "see the problem type",
    }
}

/// `s` without surrounding whitespace (the same allocation when it has none).
fn trimmed(s: String) -> String {
    let t = normalize::trim(&s);
    if t.len() == s.len() {
        s
    } else {
        t.to_owned()
    }
}

fn not_blank(s: &str) -> bool {
    !normalize::trim(s).is_empty()
}

fn string<I: Input>(v: View<'_, I>, loc: &Loc<'_>, p: &mut Problems) -> Option<String> {
    match v {
        View::Str(s) => Some(p.own(s)),
        _ => {
            p.wrong_type(loc, "a string");
            None
        }
    }
}

/// A string, or an integer taken as its decimal string (ids).
fn id_string<I: Input>(v: View<'_, I>, loc: &Loc<'_>, p: &mut Problems) -> Option<String> {
    match v {
        View::Str(s) => Some(p.own(s)),
        View::Int(i) => Some(i.to_string()),
        View::UInt(u) => Some(u.to_string()),
        _ => {
            p.wrong_type(loc, "a string");
            None
        }
    }
}

fn integer<I: Input>(v: View<'_, I>, loc: &Loc<'_>, p: &mut Problems) -> Option<i64> {
    match v {
        View::Int(i) => Some(i),
        _ => {
            p.wrong_type(loc, "an integer");
            None
        }
    }
}

/// A number, or a string holding a finite decimal number.
fn number<I: Input>(v: View<'_, I>, loc: &Loc<'_>, p: &mut Problems) -> Option<f64> {
    let n = match v {
        View::Int(i) => Some(i as f64),
        View::UInt(u) => Some(u as f64),
        View::Float(f) => Some(f),
        View::Str(s) => normalize::trim(&s).parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n.is_finite() => Some(n),
        _ => {
            p.push(
                ProblemKind::InvalidValue,
                loc,
                "must be a number, e.g. 19.99",
            );
            None
        }
    }
}

/// Deserializes a nested object with serde, reporting the first problem by its path and
/// without echoing the value.
fn nested<T: serde::de::DeserializeOwned, I: Input>(
    node: &I,
    key: &str,
    root: &Loc<'_>,
    p: &mut Problems,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(node.to_json()) {
        Ok(t) => Some(t),
        Err(e) => {
            let path = e.path().to_string();
            let loc = if path == "." || path.is_empty() {
                key.to_owned()
            } else {
                format!("{key}.{path}")
            };
            // serde's messages quote the value (`invalid type: string "…", expected i64`):
            // only what follows its last ", expected " is kept (the value may hold that
            // phrase too), or a message of Freight's own that starts with "expected".
            let msg = e.inner().to_string();
            let msg = if let Some(own) = msg.strip_prefix("expected ") {
                format!("invalid value; expected {own}")
            } else if let Some((head, exp)) = msg.rsplit_once(", expected ") {
                if head.starts_with("unknown field") {
                    format!("unknown field; expected {exp}")
                } else {
                    format!("invalid value; expected {exp}")
                }
            } else if msg.starts_with("missing field") {
                msg
            } else {
                "invalid value".to_owned()
            };
            let kind = if key == "app_data" {
                ProblemKind::InvalidAppData
            } else {
                ProblemKind::InvalidType
            };
            p.push(kind, &root.key(&loc), msg);
            None
        }
    }
}

/// A plain (never hashed) `user_data` value, checked where Meta gives a format.
fn plain_value<I: Input>(
    key: &str,
    v: View<'_, I>,
    loc: &Loc<'_>,
    p: &mut Problems,
) -> Option<String> {
    let numeric = key != "client_user_agent";
    let s = match v {
        View::Str(s) => p.own(Cow::Borrowed(normalize::trim(&s))),
        View::Int(i) if numeric && i >= 0 => i.to_string(),
        View::UInt(u) if numeric => u.to_string(),
        _ => {
            p.wrong_type(loc, "a string");
            return None;
        }
    };
    if s.is_empty() {
        p.push(ProblemKind::EmptyValue, loc, "empty value dropped");
        return None;
    }
    match key {
        "client_ip_address" if !is_ip(&s) => {
            p.push(
                ProblemKind::InvalidIpAddress,
                loc,
                "must be an IPv4 or IPv6 address",
            );
            None
        }
        "lead_id" if !(15..=16).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) => {
            p.push(
                ProblemKind::InvalidLeadId,
                loc,
                "must be the 15-16 digit id Meta Lead Ads gave the lead",
            );
            None
        }
        "fbc" | "fbp" => {
            let fbc = key == "fbc";
            match check_cookie(&s, fbc) {
                Cookie::Ok(ms) => {
                    p.cookies[usize::from(!fbc)] = Some(ms);
                    Some(s)
                }
                Cookie::Seconds(secs) => {
                    p.push(
                        ProblemKind::CookieTimeInSeconds,
                        loc,
                        "creation time is in seconds; Meta documents milliseconds \
                         (fb.1.<13-digit ms>.<id>)",
                    );
                    p.cookies[usize::from(!fbc)] = Some(secs.saturating_mul(1000));
                    Some(s)
                }
                Cookie::Bad => {
                    p.push(
                        if fbc {
                            ProblemKind::InvalidFbc
                        } else {
                            ProblemKind::InvalidFbp
                        },
                        loc,
                        if fbc {
                            "must be fb.<subdomain index>.<creation ms>.<fbclid>, as in the \
                             _fbc cookie"
                        } else {
                            "must be fb.<subdomain index>.<creation ms>.<random number>, as in \
                             the _fbp cookie"
                        },
                    );
                    None
                }
            }
        }
        _ => Some(s),
    }
}

fn is_ip(s: &str) -> bool {
    if s.parse::<IpAddr>().is_ok() {
        return true;
    }
    // A parameter-builder appendix may follow the address.
    match s.rsplit_once('.') {
        Some((ip, appendix)) => is_appendix(appendix) && ip.parse::<IpAddr>().is_ok(),
        None => false,
    }
}

pub(crate) enum Cookie {
    /// Well formed; its creation time in milliseconds.
    Ok(i64),
    /// Well formed but for its creation time, in seconds.
    Seconds(i64),
    Bad,
}

/// A byte of an fbclid: an ASCII letter, a digit, `_` or `-` (branch-free).
pub(crate) fn is_fbclid_byte(c: u8) -> bool {
    // `| 0x20` maps A-Z onto a-z and nothing else onto a-z.
    ((c | 0x20).wrapping_sub(b'a') < 26) | (c.wrapping_sub(b'0') < 10) | (c == b'_') | (c == b'-')
}

/// `fb.<index>.<creation time>.<payload>[.<appendix>]` (wire-contract §5.3).
pub(crate) fn check_cookie(s: &str, fbc: bool) -> Cookie {
    /// The leading ASCII digits of `b` and what follows them.
    fn digits(b: &[u8]) -> (&[u8], &[u8]) {
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        b.split_at(n)
    }
    let Some(rest) = s.as_bytes().strip_prefix(b"fb.") else {
        return Cookie::Bad;
    };
    let (index, rest) = digits(rest);
    let Some(rest) = rest.strip_prefix(b".").filter(|_| !index.is_empty()) else {
        return Cookie::Bad;
    };
    let (time, rest) = digits(rest);
    let Some(rest) = rest.strip_prefix(b".") else {
        return Cookie::Bad;
    };
    let (payload, appendix) = match memchr::memchr(b'.', rest) {
        Some(dot) => (&rest[..dot], Some(&rest[dot + 1..])),
        None => (rest, None),
    };
    // Without an early exit, so that the loops vectorize: payloads are 10-100 bytes.
    let payload_ok = !payload.is_empty()
        && if fbc {
            payload.iter().fold(true, |ok, &c| ok & is_fbclid_byte(c))
        } else {
            payload
                .iter()
                .fold(true, |ok, &c| ok & (c.wrapping_sub(b'0') < 10))
        };
    // An appendix holds no dot, so a sixth part fails here.
    let appendix_ok = appendix.is_none_or(|a| std::str::from_utf8(a).is_ok_and(is_appendix));
    if !payload_ok || !appendix_ok {
        return Cookie::Bad;
    }
    // At most 13 ASCII digits: the number fits.
    let number = || time.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    match time.len() {
        13 => Cookie::Ok(number()),
        10 => Cookie::Seconds(number()),
        _ => Cookie::Bad,
    }
}

/// Warns of a cookie created more than a day after the event (`at`, Unix seconds), or of a
/// click id older than the 90 days an `_fbc` cookie lives (wire-contract §5.3): the event is
/// sent, but the cookie was built wrong or kept too long, and Meta may not attribute it.
fn cookie_time(ms: i64, at: i64, fbc: bool, loc: &Loc<'_>, p: &mut Problems) {
    const DAY_MS: i64 = 86_400_000;
    let at_ms = at.saturating_mul(1000);
    if ms > at_ms.saturating_add(DAY_MS) {
        p.push(
            ProblemKind::CookieTimeImplausible,
            loc,
            "creation time is more than a day in the future; check how the cookie was built \
             (milliseconds since 1970)",
        );
    } else if fbc && ms < at_ms.saturating_sub(90 * DAY_MS) {
        p.push(
            ProblemKind::CookieTimeImplausible,
            loc,
            "the click is more than 90 days old (an _fbc cookie lives 90 days); Meta may not \
             attribute it",
        );
    }
}

/// A `customer_segmentation` value: one of Meta's, else a problem (kept, as given, for the
/// top level's check; the event is rejected either way).
fn segmentation<I: Input>(v: View<'_, I>, loc: &Loc<'_>, p: &mut Problems) -> Option<String> {
    let s = string(v, loc, p)?;
    if !CUSTOMER_SEGMENTATION.contains(&s.as_str()) {
        p.push(
            ProblemKind::InvalidEnumValue,
            loc,
            "must be one of Meta's customer segmentation values, e.g. new_customer_to_business",
        );
    }
    Some(s)
}

/// Which `custom_data` keys were given with a value, for the Purchase checks.
#[derive(Default)]
struct CustomKeys {
    value: bool,
    currency: bool,
}

fn read_custom_data<I: Input>(
    entries: Option<I::Entries>,
    cd_loc: &Loc<'_>,
    p: &mut Problems,
    keys: &mut CustomKeys,
    cd: &mut CustomData,
) {
    let Some(entries) = entries else { return };
    for (key, node) in entries {
        // The key first, even for a null value: an input whose keys cannot be read (the
        // Python binding's) learns of them here.
        let key = key.text();
        let k: &str = &key;
        let v = node.view();
        if matches!(v, View::Null) {
            continue;
        }
        let loc = cd_loc.key(k);
        let loc = &loc;
        match k {
            "value" => {
                keys.value = true;
                cd.value = number(v, loc, p);
            }
            "predicted_ltv" => cd.predicted_ltv = number(v, loc, p),
            "net_revenue" => cd.net_revenue = number(v, loc, p),
            "currency" => {
                keys.currency = true;
                cd.currency = currency(v, loc, p);
            }
            "content_name" => cd.content_name = string(v, loc, p),
            "content_category" => cd.content_category = string(v, loc, p),
            "content_type" => cd.content_type = string(v, loc, p),
            "order_id" => cd.order_id = id_string(v, loc, p),
            "search_string" => cd.search_string = string(v, loc, p),
            "item_number" => cd.item_number = id_string(v, loc, p),
            "status" => {
                cd.status = match v {
                    View::Bool(b) => Some(b.to_string()),
                    _ => string(v, loc, p),
                }
            }
            "num_items" => {
                cd.num_items = integer_or_text(v);
                if cd.num_items.is_none() {
                    p.wrong_type(loc, "an integer");
                }
            }
            "delivery_category" => cd.delivery_category = delivery_category(v, loc, p),
            "content_ids" => match v {
                View::Array(items) => {
                    let mut ids = Vec::with_capacity(items.len());
                    for (i, item) in items.enumerate() {
                        if let Some(id) = id_string(item.view(), &loc.index(i), p) {
                            ids.push(id);
                        }
                    }
                    cd.content_ids = Some(ids);
                }
                _ => p.wrong_type(loc, "an array of ids"),
            },
            "contents" => match v {
                View::Array(items) => {
                    let mut contents = p.spare.contents(items.len());
                    // Items are filled in place (an item is large): the empty ones of the
                    // spare list first, then new ones.
                    let mut filled = 0;
                    for (i, item) in items.enumerate() {
                        if filled == contents.len() {
                            contents.push(Content::default());
                        }
                        if let Some(c) = contents.get_mut(filled) {
                            if read_content(&item, &loc.index(i), p, c) {
                                filled += 1;
                            } else {
                                p.spare.empty(c);
                            }
                        }
                    }
                    contents.truncate(filled);
                    cd.contents = Some(contents);
                }
                _ => p.wrong_type(loc, "an array of objects"),
            },
            // Meta takes it here too (wire-contract §2.1), with the same values.
            "customer_segmentation" => {
                if let Some(s) = segmentation(v, loc, p) {
                    cd.extra.insert(k.to_owned(), Value::String(s));
                }
            }
            _ => {
                cd.extra.insert(k.to_owned(), node.to_json());
            }
        }
    }
}

/// An integer, or a string holding one (`"2"`).
fn integer_or_text<I: Input>(v: View<'_, I>) -> Option<i64> {
    match v {
        View::Str(s) => normalize::trim(&s).parse().ok(),
        View::Int(i) => Some(i),
        _ => None,
    }
}

fn currency<I: Input>(v: View<'_, I>, loc: &Loc<'_>, p: &mut Problems) -> Option<String> {
    let View::Str(s) = v else {
        p.wrong_type(loc, "a string");
        return None;
    };
    let code = normalize::trim(&s);
    if normalize::is_currency(code) {
        let mut code = p.own(Cow::Borrowed(code));
        code.make_ascii_uppercase();
        Some(code)
    } else {
        p.push(
            ProblemKind::InvalidCurrency,
            loc,
            "must be an ISO 4217 currency code such as USD or EUR",
        );
        None
    }
}

fn delivery_category<I: Input>(v: View<'_, I>, loc: &Loc<'_>, p: &mut Problems) -> Option<String> {
    let s = normalize::trim(&string(v, loc, p)?).to_ascii_lowercase();
    if DELIVERY_CATEGORIES.contains(&s.as_str()) {
        Some(s)
    } else {
        p.push(
            ProblemKind::InvalidEnumValue,
            loc,
            "must be in_store, curbside or home_delivery",
        );
        None
    }
}

/// Reads a `contents` item into the empty `c`; false when it is not sent.
fn read_content<I: Input>(node: &I, loc: &Loc<'_>, p: &mut Problems, c: &mut Content) -> bool {
    let View::Object(entries) = node.view() else {
        p.wrong_type(loc, "an object with id and quantity");
        return false;
    };
    let item_loc = loc;
    let mut id = None;
    // An id of the wrong type is reported as such, not as a missing id.
    let mut id_wrong_type = false;
    for (key, node) in entries {
        // The key first, even for a null value: an input whose keys cannot be read (the
        // Python binding's) learns of them here.
        let key = key.text();
        let k: &str = &key;
        let v = node.view();
        if matches!(v, View::Null) {
            continue;
        }
        let loc = item_loc.key(k);
        let loc = &loc;
        match k {
            "id" => {
                id_wrong_type = !matches!(
                    v,
                    View::Str(_) | View::Int(_) | View::UInt(_) | View::Float(_)
                );
                id = id_string(v, loc, p);
            }
            "quantity" => {
                c.quantity = integer_or_text(v);
                if c.quantity.is_none() {
                    p.wrong_type(loc, "an integer");
                }
            }
            "item_price" => c.item_price = number(v, loc, p),
            "title" => c.title = string(v, loc, p),
            "description" => c.description = string(v, loc, p),
            "brand" => c.brand = string(v, loc, p),
            "category" => c.category = string(v, loc, p),
            "delivery_category" => c.delivery_category = delivery_category(v, loc, p),
            _ => {
                c.extra.insert(k.to_owned(), node.to_json());
            }
        }
    }
    match id {
        Some(id) if !normalize::trim(&id).is_empty() => {
            c.id = id;
            true
        }
        _ => {
            if !id_wrong_type {
                p.push(
                    ProblemKind::MissingContentId,
                    &item_loc.key("id"),
                    "every contents item needs the product id",
                );
            }
            false
        }
    }
}

fn read_dpo<I: Input>(v: View<'_, I>, root: &Loc<'_>, p: &mut Problems) -> Option<Vec<String>> {
    let ok = match v {
        View::Array(mut items) => match items.len() {
            0 => Some(Vec::new()),
            1 => match items
                .next()
                .map(|i| matches!(i.view(), View::Str(s) if s == "LDU"))
            {
                Some(true) => Some(vec!["LDU".to_owned()]),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    if ok.is_none() {
        p.push(
            ProblemKind::InvalidDataProcessingOptions,
            &root.key("data_processing_options"),
            "must be [] (no Limited Data Use) or [\"LDU\"]",
        );
    }
    ok
}

fn check_ldu(
    dpo: Option<&[String]>,
    country: Option<i64>,
    state: Option<i64>,
    root: &Loc<'_>,
    p: &mut Problems,
) {
    if let Some(c) = country {
        if c != 0 && c != 1 {
            p.push(
                ProblemKind::InvalidLduLocation,
                &root.key("data_processing_options_country"),
                "must be 1 (United States) or 0 (let Meta geolocate)",
            );
        }
    }
    if let Some(s) = state {
        if s != 0 && !(1000..=1013).contains(&s) {
            p.push(
                ProblemKind::InvalidLduLocation,
                &root.key("data_processing_options_state"),
                "must be 0 (let Meta geolocate) or a state code 1000-1013",
            );
        }
    }
    let ldu = dpo.is_some_and(|d| d.len() == 1);
    if ldu && country.is_some() && state.is_none() {
        p.push(
            ProblemKind::InvalidLduLocation,
            &root.key("data_processing_options_state"),
            "is required with data_processing_options_country (0 lets Meta geolocate)",
        );
    }
    if ldu && state.is_some() && country.is_none() {
        p.push(
            ProblemKind::InvalidLduLocation,
            &root.key("data_processing_options_country"),
            "is required with data_processing_options_state (1 for a US state, 0 lets Meta \
             geolocate)",
        );
    }
}

fn check_app_data(app: &AppData, root: &Loc<'_>, p: &mut Problems) {
    let version_ok = app
        .extinfo
        .first()
        .and_then(Value::as_str)
        .is_some_and(|v| v == "a2" || v == "i2");
    if app.extinfo.len() != 16 || !version_ok {
        p.push(
            ProblemKind::InvalidAppData,
            &root.key("app_data.extinfo"),
            "must be an array of exactly 16 values starting with \"a2\" (Android) or \"i2\" \
             (iOS); use \"\" for unknown values",
        );
        return;
    }
    // Strings; numbers are accepted where Meta documents or its SDKs send them (the short
    // version, screen width and height, CPU cores, storage sizes).
    for (i, v) in app.extinfo.iter().enumerate() {
        let ok = match v {
            Value::String(_) => true,
            Value::Number(_) => matches!(i, 2 | 9 | 10 | 12..=14),
            _ => false,
        };
        if !ok {
            p.push(
                ProblemKind::InvalidAppData,
                &root.key(&format!("app_data.extinfo[{i}]")),
                "must be a string (\"\" when unknown)",
            );
        }
    }
    if app
        .extinfo
        .get(4)
        .and_then(Value::as_str)
        .is_some_and(|os| normalize::trim(os).is_empty())
    {
        p.push(
            ProblemKind::InvalidAppData,
            &root.key("app_data.extinfo[4]"),
            "the OS version is required (e.g. \"17.4\")",
        );
    }
}

/// Meta's baseline for matching: these sets alone are too broad (wire-contract §2.2).
const TOO_BROAD: [u64; 4] = [
    key_mask(&["ct", "country", "st", "zp", "ge", "client_user_agent"]),
    key_mask(&["db", "client_user_agent"]),
    key_mask(&["fn", "ge"]),
    key_mask(&["ln", "ge"]),
];

/// The bits of `keys` in a mask with bit `i` for `USER_DATA_KEYS[i]`.
const fn key_mask(keys: &[&str]) -> u64 {
    const fn same(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
    let mut mask = 0;
    let mut k = 0;
    while k < keys.len() {
        let mut i = 0;
        while !same(USER_DATA_KEYS[i], keys[k]) {
            i += 1; // Out of bounds (a compile error) for a key that does not exist.
        }
        mask |= 1 << i;
        k += 1;
    }
    mask
}

fn check_user_data_breadth(u: &UserData, root: &Loc<'_>, p: &mut Problems) {
    let present = present_keys(u);
    if present == 0 {
        p.push(
            ProblemKind::MissingUserData,
            &root.key("user_data"),
            "no usable customer information left; send at least one of em, ph, \
             external_id, client_ip_address with client_user_agent, fbc, fbp",
        );
    } else if TOO_BROAD.iter().any(|&set| present & !set == 0) {
        p.push(
            ProblemKind::InsufficientUserData,
            &root.key("user_data"),
            "this combination of customer information is too broad for Meta to match; \
             add em, ph, external_id, fbp or client_ip_address",
        );
    }
}

/// The keys that hold a value: bit `i` for `USER_DATA_KEYS[i]`.
fn present_keys(u: &UserData) -> u64 {
    let present: [bool; 33] = [
        !u.em.is_empty(),
        !u.ph.is_empty(),
        !u.r#fn.is_empty(),
        !u.ln.is_empty(),
        !u.ge.is_empty(),
        !u.db.is_empty(),
        !u.ct.is_empty(),
        !u.st.is_empty(),
        !u.zp.is_empty(),
        !u.country.is_empty(),
        !u.external_id.is_empty(),
        u.client_ip_address.is_some(),
        u.client_user_agent.is_some(),
        u.fbc.is_some(),
        u.fbp.is_some(),
        u.subscription_id.is_some(),
        u.fb_login_id.is_some(),
        u.lead_id.is_some(),
        u.anon_id.is_some(),
        u.madid.is_some(),
        u.page_id.is_some(),
        u.page_scoped_user_id.is_some(),
        u.ctwa_clid.is_some(),
        u.ig_account_id.is_some(),
        u.instagram_business_account_id.is_some(),
        u.ig_sid.is_some(),
        u.whatsapp_business_account_id.is_some(),
        u.f5first.is_some(),
        u.f5last.is_some(),
        u.fi.is_some(),
        u.dobd.is_some(),
        u.dobm.is_some(),
        u.doby.is_some(),
    ];
    present
        .iter()
        .enumerate()
        .fold(0, |mask, (i, &p)| mask | (u64::from(p) << i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_nested_objects_never_hold_the_value() {
        let p = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
        let secret = "Jane Doe, expected 555-1234";
        let cases = [
            serde_json::json!({"attribution_data": {"visit_time": secret}}),
            serde_json::json!({"original_event_data": {"event_time": secret}}),
            serde_json::json!({"attribution_data": {"attribution_share": [secret]}}),
            serde_json::json!({"action_source": "app", "app_data": {
                "advertiser_tracking_enabled": secret, "extinfo": []}}),
        ];
        for case in cases {
            let mut event = serde_json::json!({"event_name": "Lead", "event_time": 1_795_391_990,
                "action_source": "email", "user_data": {"em": "a@example.com"}});
            for (k, v) in case.as_object().unwrap() {
                event[k] = v.clone();
            }
            let Outcome::Rejected(r) = p.process(&event, 0) else {
                panic!("accepted: {case}");
            };
            for e in &r.errors {
                assert!(
                    !e.msg.contains("555") && !e.msg.contains("Jane"),
                    "{}",
                    e.msg
                );
            }
        }
        // Freight's own explanation comes through.
        let event = serde_json::json!({"event_name": "Lead", "event_time": 1_795_391_990,
            "action_source": "app", "user_data": {"em": "a@example.com"},
            "app_data": {"advertiser_tracking_enabled": 2, "extinfo": []}});
        let Outcome::Rejected(r) = p.process(&event, 0) else {
            panic!("accepted");
        };
        assert!(
            r.errors
                .iter()
                .any(|e| e.msg.contains("true, false, 0 or 1")),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn an_event_that_denies_consent_is_skipped_before_the_hosts_check() {
        let p = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
        let calls = std::cell::Cell::new(0);
        let host = |_: &&Value| {
            calls.set(calls.get() + 1);
            true
        };
        let denied = serde_json::json!({"consent": "denied", "event_name": "Lead"});
        assert!(matches!(
            p.process_with_consent(&denied, 0, host),
            Outcome::Skipped(_)
        ));
        assert_eq!(calls.get(), 0);
        let granted = serde_json::json!({"consent": "granted", "event_name": "Lead"});
        assert!(matches!(
            p.process_with_consent(&granted, 1, host),
            Outcome::Rejected(_)
        ));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn a_reused_slot_keeps_nothing_of_earlier_contents_items() {
        use serde_json::json;
        let p = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
        let with = |currency: &str, contents: serde_json::Value| {
            json!({
                "event_name": "Purchase", "event_time": 1_795_391_000, "action_source": "email",
                "user_data": {"em": "jane@example.com"},
                "custom_data": {"value": 10, "currency": currency, "contents": contents},
            })
        };
        let event = |contents| with("usd", contents);
        let full = json!({"id": "A", "quantity": 2, "item_price": 5, "title": "T",
                          "description": "D", "brand": "B", "category": "C",
                          "delivery_category": "home_delivery", "colour": "red"});
        let events = [
            event(json!([full, full, full, full])),
            // Fewer items, none of the earlier fields: the spare items must come back empty.
            event(json!([{"id": "B"}])),
            // Items without an id (in the middle and at the end) reject the event.
            event(
                json!([{"id": "C", "title": "x"}, {"title": "no id"}, {"id": "D"},
                         {"brand": "no id"}]),
            ),
            // So does a bad currency, with items read in full.
            with("dollars", json!([full, full])),
            event(json!([{"id": "E"}, {"id": "F", "colour": "blue"}])),
            event(json!([])),
            event(json!([full, full, full, full, full, full])),
            event(json!([{"id": "G"}])),
        ];
        let mut slot = PreparedEvent::default();
        let mut sent = Vec::new();
        for (i, e) in events.iter().enumerate() {
            // Alone: on a new thread, whose spare allocations (thread-local) are empty.
            let alone = std::thread::scope(|s| s.spawn(|| p.prepare_one(e, i)).join().unwrap());
            match (alone, p.prepare_into(e, i, &mut slot)) {
                (Ok(fresh), Ok(())) => {
                    assert_eq!(slot, fresh, "{e}");
                    sent.push(i);
                }
                (Err(fresh), Err(reused)) => assert_eq!(reused, fresh, "{e}"),
                (fresh, reused) => panic!("{e}: {fresh:?} vs {reused:?}"),
            }
        }
        assert_eq!(sent, [0, 1, 4, 5, 6, 7]);
        // The checks above compare with the model; the body of the last one, in full:
        let mut body = Vec::new();
        crate::batch::write_event(&mut body, &slot.event);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["custom_data"]["contents"], json!([{"id": "G"}]));
    }

    #[test]
    fn process_into_reads_consent_as_process_does() {
        let p = Preparer::new(&PrepareOptions::default(), 1_795_392_000);
        let valid = serde_json::json!({
            "event_name": "Lead", "event_time": 1_795_391_000, "action_source": "email",
            "user_data": {"em": "jane@example.com"},
        });
        let mut slot = PreparedEvent::default();
        for consent in [
            serde_json::json!("denied"),
            serde_json::json!(false),
            serde_json::json!("granted"),
            serde_json::json!(true),
            serde_json::json!(null),
            serde_json::json!("maybe"),
            serde_json::json!(0),
        ] {
            for base in [valid.clone(), serde_json::json!({"event_name": "Lead"})] {
                let mut e = base;
                e["consent"] = consent.clone();
                let expected = p.process(&e, 3);
                let got = match p.process_into(&e, 3, &mut slot) {
                    Ok(()) => Outcome::Ready(Box::new(slot.clone())),
                    Err(NotReady::Rejected(r)) => Outcome::Rejected(r),
                    Err(NotReady::Skipped(s)) => Outcome::Skipped(s),
                };
                if !matches!(got, Outcome::Ready(_)) {
                    // Nothing of an event that is not sent stays in the slot.
                    assert_eq!(slot.event, empty_event(), "{e}");
                }
                assert_eq!(got, expected, "{e}");
                // prepare_into leaves consent to the caller.
                let plain = p.prepare_one(&e, 3);
                match (plain, p.prepare_into(&e, 3, &mut slot)) {
                    (Ok(a), Ok(())) => assert_eq!(slot, a),
                    (Err(a), Err(b)) => {
                        assert_eq!(a, b);
                        assert_eq!(slot.event, empty_event(), "{e}");
                    }
                    (a, b) => panic!("{e}: {a:?} vs {b:?}"),
                }
            }
        }
    }

    #[test]
    fn fbclid_bytes() {
        for c in 0..=255u8 {
            let expected = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
            assert_eq!(is_fbclid_byte(c), expected, "{c}");
        }
    }

    #[test]
    fn cookie_shapes() {
        let fbc = "fb.1.1795300000000.IwAR2F4-dbP0l7Mn_1Iaw";
        for (cookie, is_fbc, ok) in [
            (fbc, true, "ok"),
            ("fb.1.1795300000.IwAR2F4", true, "seconds"),
            (&format!("{fbc}.AQICAQMC") as &str, true, "ok"),
            (&format!("{fbc}.AQICAQMC.x"), true, "bad"),
            (&format!("{fbc}.A"), true, "bad"),
            ("fb.1.1795300000000.", true, "bad"),
            ("fb..1795300000000.abc", true, "bad"),
            ("fb.1.17953000000001.abc", true, "bad"),
            ("fb.1.1795300000000", true, "bad"),
            ("fx.1.1795300000000.abc", true, "bad"),
            ("fb.1.1795300000000.ab c", true, "bad"),
            ("fb.2.1795200000000.1234567890", false, "ok"),
            ("fb.2.1795200000000.12345abc", false, "bad"),
            ("fb.2.1795200000.1234567890.Ag", false, "seconds"),
            ("fb.2.1795200000000.1234567890.zz", false, "bad"),
            ("", false, "bad"),
        ] {
            let got = match check_cookie(cookie, is_fbc) {
                Cookie::Ok(_) => "ok",
                Cookie::Seconds(_) => "seconds",
                Cookie::Bad => "bad",
            };
            assert_eq!(got, ok, "{cookie}");
        }
    }

    #[test]
    fn present_keys_bit_order_is_user_data_keys() {
        for (i, key) in USER_DATA_KEYS.iter().enumerate() {
            let mut u = UserData::default();
            if let Some(list) = u.list_mut(key) {
                list.push(UserValue::from("x"));
            } else if let Some(slot) = u.hashed_single_mut(key) {
                *slot = Some(UserValue::from("x"));
            } else if let Some(slot) = u.single_mut(key) {
                *slot = Some("x".into());
            } else {
                panic!("{key} has no slot");
            }
            assert_eq!(present_keys(&u), 1 << i, "{key}");
            assert_eq!(key_mask(&[key]), 1 << i, "{key}");
        }
        assert_eq!(present_keys(&UserData::default()), 0);
    }
}
