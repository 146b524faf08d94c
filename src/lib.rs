//! copilot-server: PostHog events in, a chat copilot grounded in them out.
//! Layers: edges (`web`, `channels`) → domain (`ingest`, `dialogue`) → `context`.

pub mod channels;
pub mod config;
pub mod context;
pub mod dialogue;
pub mod domain;
pub mod ingest;
pub mod llm;
pub mod metrics;
pub mod nlu;
pub mod proactive;
pub mod rasa;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
