//! Trace and span ids, and the context a request carries: whose trace it is, which span it
//! is in, and what the caller asked to pass on.

use std::cell::Cell;
use std::fmt;
use std::num::{NonZeroU128, NonZeroU64};

use http::{HeaderMap, HeaderValue};

use super::traceparent::{self, TRACEPARENT, TRACESTATE};

/// A W3C trace id: 16 bytes, never all zero, written as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(NonZeroU128);

/// A W3C span id (the `parent-id` of a `traceparent`): 8 bytes, never all zero, written as 16
/// lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(NonZeroU64);

impl TraceId {
    /// A random trace id (from a fast, non-cryptographic generator: ids must be unique, not
    /// secret).
    pub fn random() -> Self {
        let high = u128::from(random_u64());
        Self(NonZeroU128::from(random_nonzero()).saturating_add(high << 64))
    }

    /// The id of these 16 bytes (big-endian, as written); `None` when all are zero.
    pub fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        Self::from_u128(u128::from_be_bytes(bytes))
    }

    /// The id as a number; `None` for zero, which is not a trace id.
    pub fn from_u128(id: u128) -> Option<Self> {
        NonZeroU128::new(id).map(Self)
    }

    /// The id's 16 bytes, as OTLP sends them.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.get().to_be_bytes()
    }

    /// Writes the 32 hex digits into `out`.
    pub(crate) fn write_hex(self, out: &mut [u8]) {
        traceparent::write_hex(&self.to_bytes(), out);
    }
}

impl SpanId {
    /// A random span id.
    pub fn random() -> Self {
        Self(random_nonzero())
    }

    /// The id of these 8 bytes; `None` when all are zero.
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        Self::from_u64(u64::from_be_bytes(bytes))
    }

    /// The id as a number; `None` for zero, which is not a span id.
    pub fn from_u64(id: u64) -> Option<Self> {
        NonZeroU64::new(id).map(Self)
    }

    /// The id's 8 bytes, as OTLP sends them.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.get().to_be_bytes()
    }

    pub(crate) fn write_hex(self, out: &mut [u8]) {
        traceparent::write_hex(&self.to_bytes(), out);
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = [0u8; 32];
        self.write_hex(&mut hex);
        f.write_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"))
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = [0u8; 16];
        self.write_hex(&mut hex);
        f.write_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"))
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl std::str::FromStr for TraceId {
    type Err = InvalidId;

    /// 32 lowercase hex digits, not all zero (the `traceparent` form).
    fn from_str(text: &str) -> Result<Self, InvalidId> {
        let bytes = text.as_bytes();
        if bytes.len() != 32 {
            return Err(InvalidId);
        }
        let id = traceparent::parse_hex_u128(bytes).ok_or(InvalidId)?;
        Self::from_u128(id).ok_or(InvalidId)
    }
}

impl std::str::FromStr for SpanId {
    type Err = InvalidId;

    /// 16 lowercase hex digits, not all zero.
    fn from_str(text: &str) -> Result<Self, InvalidId> {
        let bytes = text.as_bytes();
        if bytes.len() != 16 {
            return Err(InvalidId);
        }
        let id = traceparent::parse_hex_u64(bytes).ok_or(InvalidId)?;
        Self::from_u64(id).ok_or(InvalidId)
    }
}

thread_local! {
    /// A wyrand state per thread, seeded once from fastrand: ids are drawn on every request,
    /// and one thread-local step is the cheapest way to draw them.
    static RNG: Cell<u64> = Cell::new(fastrand::u64(..));
}

/// 64 random bits (wyrand, as fastrand uses): unique, not unpredictable.
pub(crate) fn random_u64() -> u64 {
    RNG.with(|state| {
        let next = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(next);
        let wide = u128::from(next).wrapping_mul(u128::from(next ^ 0xe703_7ed1_a0b4_28db));
        (wide as u64) ^ ((wide >> 64) as u64)
    })
}

/// 64 random bits, not all zero.
fn random_nonzero() -> NonZeroU64 {
    loop {
        if let Some(id) = NonZeroU64::new(random_u64()) {
            return id;
        }
    }
}

/// Text that is not a trace or span id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidId;

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "not a trace or span id: lowercase hex digits of the right length, not all zero",
        )
    }
}

impl std::error::Error for InvalidId {}

/// Where a piece of work sits in a distributed trace: the trace, its own span, the span that
/// caused it (when the cause is known), the sampling flag and the caller's `tracestate`.
///
/// A server makes one per request with [`from_headers`](Self::from_headers); each outgoing
/// attempt is a [`child`](Self::child) whose `traceparent` goes downstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: SpanId,
    parent_id: Option<SpanId>,
    sampled: bool,
    /// Boxed: rarely sent, and the context is moved in and out of place on every poll.
    state: Option<Box<HeaderValue>>,
    /// Whether calls pass the context on: it came from a caller, or it is recorded here (a
    /// span of it, or its ids in a metric's exemplar). A trace that no caller started and
    /// nothing here records is not sent on: the next hop starts its own, as a proxy without
    /// tracing does, and a field fewer crosses the wire (the next hop's parser pays ~1.3k
    /// instructions for each).
    passed_on: bool,
}

/// The trace fields of a request, as a walk over its fields finds them: one pass instead of
/// two hashed lookups (most names are standard ones, told apart from these two by their
/// length before their bytes).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TraceFields<'h> {
    /// The last `traceparent`, and how many there are (more than one is malformed).
    parent: Option<&'h HeaderValue>,
    parents: usize,
    /// A `tracestate` is there.
    has_state: bool,
}

impl<'h> TraceFields<'h> {
    /// Notes the field `name` (its lowercase text) if it is one of the trace's.
    #[inline]
    pub(crate) fn see(&mut self, name: &str, value: &'h HeaderValue) {
        match name {
            "traceparent" => {
                self.parents += 1;
                self.parent = Some(value);
            }
            "tracestate" => self.has_state = true,
            _ => {}
        }
    }
}

impl TraceContext {
    /// The first span of a new trace.
    pub fn root() -> Self {
        Self {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_id: None,
            sampled: true,
            state: None,
            passed_on: false,
        }
    }

    /// The context of a request with these headers: a child of the caller's span when they
    /// carry one valid `traceparent` (and its `tracestate`, kept when well formed), the root of
    /// a new trace otherwise. Never fails: a malformed header only means a new trace.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut fields = TraceFields::default();
        for (name, value) in headers {
            fields.see(name.as_str(), value);
        }
        Self::from_fields(fields, headers)
    }

    /// [`Self::from_headers`] with the walk over the fields done: by the server, in the one
    /// it makes anyway.
    pub(crate) fn from_fields(fields: TraceFields<'_>, headers: &HeaderMap) -> Self {
        let TraceFields {
            parent,
            parents,
            has_state,
        } = fields;
        let parent = match (parents, parent) {
            (1, Some(value)) => traceparent::parse(value.as_bytes()),
            _ => None,
        };
        let Some(parent) = parent else {
            return Self::root();
        };
        let state = has_state
            .then(|| traceparent::tracestate(headers.get_all(&TRACESTATE)))
            .flatten()
            .map(Box::new);
        Self {
            trace_id: parent.trace_id,
            span_id: SpanId::random(),
            parent_id: Some(parent.span_id),
            sampled: parent.sampled,
            state,
            passed_on: true,
        }
    }

    /// A context for the work this span causes: same trace, flags and state, a new span id,
    /// this span as its parent.
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            parent_id: Some(self.span_id),
            sampled: self.sampled,
            state: self.state.clone(),
            passed_on: self.passed_on,
        }
    }

    /// Marks the context as recorded (a span of it is, or an exemplar names it): calls pass it
    /// on from now on, and so do its children.
    pub(crate) fn recorded(&mut self) {
        self.passed_on = true;
    }

    /// The trace's id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// This span's id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The id of the span that caused this one, if known.
    pub fn parent_id(&self) -> Option<SpanId> {
        self.parent_id
    }

    /// Whether the caller records this trace (the `sampled` flag).
    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// The `tracestate` to pass on, if the caller sent a well-formed one.
    pub fn tracestate(&self) -> Option<&HeaderValue> {
        self.state.as_deref()
    }

    /// The `traceparent` naming this span as the parent of the next hop.
    pub fn traceparent(&self) -> HeaderValue {
        traceparent::format(self.trace_id, self.span_id, self.sampled)
    }

    /// Writes `traceparent` (and `tracestate`, when there is one) as header lines, when the
    /// context is passed on at all (see [`recorded`](Self::recorded)); the request's own
    /// copies must be gone.
    pub(crate) fn write_lines(&self, lines: &mut crate::client::HeaderLines) {
        if !self.passed_on {
            return;
        }
        lines.push(
            &TRACEPARENT,
            &traceparent::text(self.trace_id, self.span_id, self.sampled),
        );
        if let Some(state) = &self.state {
            lines.push(&TRACESTATE, state.as_bytes());
        }
    }

    /// Puts `traceparent` (and `tracestate`, when there is one) on outgoing `headers`,
    /// replacing any already there.
    pub fn inject(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT, self.traceparent());
        match &self.state {
            Some(state) => {
                headers.insert(TRACESTATE, HeaderValue::clone(state));
            }
            None => {
                headers.remove(TRACESTATE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_as_lowercase_hex_and_parse_back() {
        let trace: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
        assert_eq!(trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let span: SpanId = "00f067aa0ba902b7".parse().unwrap();
        assert_eq!(span.to_string(), "00f067aa0ba902b7");
        assert!("00000000000000000000000000000000"
            .parse::<TraceId>()
            .is_err());
        assert!("4BF92F3577B34DA6A3CE929D0E0E4736"
            .parse::<TraceId>()
            .is_err());
        assert!("0000000000000000".parse::<SpanId>().is_err());
    }

    #[test]
    fn a_valid_traceparent_makes_a_child_of_the_callers_span() {
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        headers.insert(TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
        let context = TraceContext::from_headers(&headers);
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.parent_id().unwrap().to_string(), "00f067aa0ba902b7");
        assert_ne!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.sampled());
        assert_eq!(context.tracestate().unwrap(), "congo=t61rcWkgMzE");

        let child = context.child();
        let mut outgoing = HeaderMap::new();
        child.inject(&mut outgoing);
        let sent = outgoing[TRACEPARENT].to_str().unwrap().to_owned();
        assert_eq!(
            sent,
            format!("00-{}-{}-01", context.trace_id(), child.span_id())
        );
        assert_eq!(outgoing[TRACESTATE], "congo=t61rcWkgMzE");
    }

    #[test]
    fn two_traceparents_start_a_new_trace() {
        let mut headers = HeaderMap::new();
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.append(TRACEPARENT, HeaderValue::from_static(value));
        headers.append(TRACEPARENT, HeaderValue::from_static(value));
        let context = TraceContext::from_headers(&headers);
        assert_ne!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.parent_id(), None);
    }

    /// The lines a call made in `context` would send.
    fn sent(context: &TraceContext) -> String {
        let mut lines = crate::client::HeaderLines::new();
        context.child().write_lines(&mut lines);
        String::from_utf8(lines.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn a_trace_is_passed_on_when_a_caller_started_it_or_it_is_recorded() {
        let mut unrecorded = TraceContext::root();
        assert_eq!(
            sent(&unrecorded),
            "",
            "nobody records it, no caller started it"
        );
        unrecorded.recorded();
        assert!(
            sent(&unrecorded).starts_with(&format!("traceparent: 00-{}-", unrecorded.trace_id()))
        );

        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        let continued = TraceContext::from_headers(&headers);
        let lines = sent(&continued);
        assert!(
            lines.starts_with("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-")
                && lines.ends_with("-00\r\n"),
            "a caller's trace goes on, its sampling flag with it: {lines}"
        );
    }
}
