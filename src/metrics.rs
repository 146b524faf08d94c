//! Prometheus metrics (prometheus-client): one registry per server, so tests
//! running several servers in one process never share counters.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntentLabels {
    pub intent: String,
}

/// Every counter the server keeps. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Events by what became of them: accepted, ignored, duplicate.
    pub events: Family<OutcomeLabels, Counter>,
    /// Chat turns by classified intent.
    pub chat_turns: Family<IntentLabels, Counter>,
    /// Proactive evaluations by outcome: fired, cooldown, state, no_socket.
    pub proactive: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("copilot");
        let events = Family::<OutcomeLabels, Counter>::default();
        let chat_turns = Family::<IntentLabels, Counter>::default();
        let proactive = Family::<OutcomeLabels, Counter>::default();
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
        }
    }

    pub fn count(family: &Family<OutcomeLabels, Counter>, outcome: &str, n: u64) {
        if n > 0 {
            family
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.to_owned(),
                })
                .inc_by(n);
        }
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
