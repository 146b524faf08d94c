//! Prometheus metrics (prometheus-client): one registry per server, so tests
//! running several servers in one process never share counters.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntentLabels {
    pub intent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Which abuse limit refused a request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Limit {
    /// Chat messages per socket or per user per minute.
    Messages,
    /// LLM answers per user per hour.
    Llm,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: Limit,
}

/// The way a chat reached us.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Channel {
    Socketio,
    Rest,
}

// Lower-case label values, as Prometheus labels usually are (the derive
// would use the variant names as they are).
impl EncodeLabelValue for Limit {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        let value = match self {
            Limit::Messages => "messages",
            Limit::Llm => "llm",
        };
        EncodeLabelValue::encode(&value, encoder)
    }
}

impl EncodeLabelValue for Channel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        let value = match self {
            Channel::Socketio => "socketio",
            Channel::Rest => "rest",
        };
        EncodeLabelValue::encode(&value, encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: Channel,
}

/// Every counter the server keeps. Cheap to clone. IMPORTANT: label values
/// come from closed sets (enums, `&'static str`, the project's own intent
/// names), never from what a client sent, so no client can mint series.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Events by what became of them: accepted, ignored, duplicate.
    pub events: Family<OutcomeLabels, Counter>,
    /// Chat turns by classified intent.
    pub chat_turns: Family<IntentLabels, Counter>,
    /// Proactive evaluations by outcome: fired, cooldown, state, no_socket.
    pub proactive: Family<OutcomeLabels, Counter>,
    /// Refused deliveries and captures by reason (status class).
    pub rejected: Family<ReasonLabels, Counter>,
    /// Sessions and actions held by the store (set when scraped).
    pub store_sessions: Gauge,
    pub store_users: Gauge,
    pub store_actions: Gauge,
    /// Socket.IO connections open now.
    pub sockets: Gauge,
    /// LLM calls by outcome (ok, error, timeout, busy) and their latency.
    pub llm_calls: Family<OutcomeLabels, Counter>,
    pub llm_latency: Histogram,
    /// Rolling summaries stored, and failed.
    pub summaries: Family<OutcomeLabels, Counter>,
    /// Requests shed because the server was at capacity.
    pub overloaded: Counter,
    /// Turns the console did not record because its write queue was full.
    pub console_dropped: Counter,
    /// Requests refused by an abuse limit.
    pub rate_limited: Family<LimitLabels, Counter>,
    /// Chats that claimed a user id without a valid hash (answered anonymously).
    pub identity_unverified: Family<ChannelLabels, Counter>,
    /// Stream frames published, frames subscribers lost by falling behind, and
    /// SSE subscribers connected now.
    pub stream_frames: Counter,
    pub stream_dropped: Counter,
    pub stream_subscribers: Gauge,
    /// Push deliveries by product and outcome: delivered, retried, rejected, failed, dropped.
    pub forward: Family<ForwardLabels, Counter>,
    /// Round trips to Redis by purpose (a script call or a pipeline is one).
    pub redis_round_trips: Family<OpLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForwardLabels {
    pub product: String,
    pub outcome: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// One more round trip to Redis for `op`.
    pub fn redis(&self, op: &'static str) {
        self.redis_round_trips.get_or_create(&OpLabels { op }).inc();
    }

    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("copilot");
        let events = Family::<OutcomeLabels, Counter>::default();
        let chat_turns = Family::<IntentLabels, Counter>::default();
        let proactive = Family::<OutcomeLabels, Counter>::default();
        let rejected = Family::<ReasonLabels, Counter>::default();
        let store_sessions = Gauge::default();
        let store_users = Gauge::default();
        let store_actions = Gauge::default();
        let sockets = Gauge::default();
        let llm_calls = Family::<OutcomeLabels, Counter>::default();
        let llm_latency = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        let summaries = Family::<OutcomeLabels, Counter>::default();
        let overloaded = Counter::default();
        let console_dropped = Counter::default();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        let identity_unverified = Family::<ChannelLabels, Counter>::default();
        let stream_frames = Counter::default();
        let stream_dropped = Counter::default();
        let stream_subscribers = Gauge::default();
        let forward = Family::<ForwardLabels, Counter>::default();
        let redis_round_trips = Family::<OpLabels, Counter>::default();
        registry.register(
            "redis_round_trips",
            "Round trips to Redis by purpose (a script call or a pipeline is one)",
            redis_round_trips.clone(),
        );
        registry.register(
            "stream_frames",
            "Activity stream frames published",
            stream_frames.clone(),
        );
        registry.register(
            "stream_frames_dropped",
            "Stream frames subscribers lost by falling behind",
            stream_dropped.clone(),
        );
        registry.register(
            "stream_subscribers",
            "Activity stream (SSE) subscribers connected",
            stream_subscribers.clone(),
        );
        registry.register(
            "stream_push",
            "Stream push deliveries by product and outcome",
            forward.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by an abuse limit",
            rate_limited.clone(),
        );
        registry.register(
            "identity_unverified",
            "Chats whose claimed user id was not verified (answered as anonymous visitors)",
            identity_unverified.clone(),
        );
        registry.register(
            "events_rejected",
            "Refused event deliveries by reason",
            rejected.clone(),
        );
        registry.register(
            "store_sessions",
            "Sessions held in the context store",
            store_sessions.clone(),
        );
        registry.register(
            "store_users",
            "Users in the user index",
            store_users.clone(),
        );
        registry.register(
            "store_actions",
            "Raw actions held in the context store (not yet folded into a summary)",
            store_actions.clone(),
        );
        registry.register(
            "sockets_connected",
            "Open Socket.IO connections",
            sockets.clone(),
        );
        registry.register("llm_calls", "LLM calls by outcome", llm_calls.clone());
        registry.register(
            "llm_latency_seconds",
            "LLM call latency",
            llm_latency.clone(),
        );
        registry.register(
            "summaries",
            "Rolling summaries by outcome",
            summaries.clone(),
        );
        registry.register(
            "overloaded_requests",
            "Requests shed at capacity (503)",
            overloaded.clone(),
        );
        registry.register(
            "console_dropped",
            "Chat turns not recorded for the console (write queue full)",
            console_dropped.clone(),
        );
        registry.register("events", "Ingested events by outcome", events.clone());
        registry.register("chat_turns", "Chat turns by intent", chat_turns.clone());
        registry.register(
            "proactive_offers",
            "Proactive trigger evaluations by outcome",
            proactive.clone(),
        );
        Self {
            registry: Arc::new(registry),
            events,
            chat_turns,
            proactive,
            rejected,
            store_sessions,
            store_users,
            store_actions,
            sockets,
            llm_calls,
            llm_latency,
            summaries,
            overloaded,
            console_dropped,
            rate_limited,
            identity_unverified,
            stream_frames,
            stream_dropped,
            stream_subscribers,
            forward,
            redis_round_trips,
        }
    }

    pub fn forwarded(&self, product: &crate::domain::ProductId, outcome: &'static str, n: u64) {
        if n > 0 {
            self.forward
                .get_or_create(&ForwardLabels {
                    product: product.as_str().to_owned(),
                    outcome,
                })
                .inc_by(n);
        }
    }

    /// `outcome` is `'static`: a label can only be one the code names.
    pub fn count(family: &Family<OutcomeLabels, Counter>, outcome: &'static str, n: u64) {
        if n > 0 {
            family
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// The Prometheus text exposition.
    pub fn limited(&self, limit: Limit) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    pub fn unverified(&self, channel: Channel) {
        self.identity_unverified
            .get_or_create(&ChannelLabels { channel })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(error) = encode(&mut out, &self.registry) {
            tracing::error!(%error, "could not encode metrics");
        }
        out
    }
}
