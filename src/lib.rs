//! copilot-server: PostHog events in, a chat copilot grounded in them out.
//!
//! Data path, in the order a request travels:
//! - `web`        HTTP edge: router, layers, `AppError`, every HTTP handler
//! - `channels`   Socket.IO channel, Rasa wire payloads, chat identity claims
//! - `identity`   who a chat is: verified user, trusted id, or anonymous visitor
//! - `products`   the product registry: keys, onboarding, rotation (storage behind a trait)
//! - `db`         SQLite through sqlx: migrations and the storage traits' SQL
//! - `ingest`     pure: bytes → `Event` → `Action` (wire shapes, elements_chain, URLs, auth)
//! - `context`    bounded store of actions, summaries, the user index, de-duplication
//! - `stream`     the activity stream: SSE fan-out with replay, push delivery
//! - `proactive`  per-session state machine + triggers over `context`
//! - `nlu`        Rasa project files, the intent classifier, entities
//! - `dialogue`   one chat turn: rules → responses or an activity answer (prompt, offline)
//! - `llm`        the `LlmClient` trait, the OpenAI-compatible client, the LLM summariser
//! - `limits`     abuse limits (messages per minute, LLM calls per hour)
//!
//! Cross-cutting: `config`, `domain`, `metrics`, `telemetry`, `state`, `startup`, `cli`.

pub mod channels;
pub mod cli;
pub mod config;
pub mod console;
pub mod context;
pub mod db;
pub mod dialogue;
pub mod domain;
pub mod group_commit;
pub mod identity;
pub mod ingest;
pub mod keeper;
pub mod knowledge;
pub mod limits;
pub mod llm;
pub mod metrics;
pub mod nlu;
pub mod proactive;
pub mod products;
pub mod redis;
pub mod startup;
pub mod state;
pub mod stream;
pub mod telemetry;
pub mod web;
