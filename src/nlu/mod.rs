//! Natural-language understanding with no model download: Rasa project files
//! in (`project`, `domain`, `stories`), a matcher out (`features` → `classifier`,
//! `entities`, `/intent` `command`s), trained at start-up in milliseconds.

pub mod classifier;
pub mod command;
pub mod domain;
pub mod entities;
pub mod features;
pub mod matcher;
pub mod overrides;
pub mod project;
pub mod stories;
pub mod trainer;
mod yaml;

pub use domain::{Button, ResponseVariant};
pub use entities::Entity;
pub use matcher::{Classification, Doubt, FALLBACK, IntentScore, Matcher, Thresholds};
pub use project::{EMBEDDED, Error, Project};
