//! Settings: one struct loaded from the embedded `config/default.toml`, an optional
//! file, `COPILOT__SECTION__KEY` env vars and the seed's env names. Validation of
//! values lives here too; nothing else reads the environment.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The defaults, embedded so the binary starts anywhere with no file.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The demo product's public secret; using it off loopback earns a warning.
pub const DEMO_WEBHOOK_SECRET: &str = "demo-secret-change-me";
/// The demo product's public API key (so the README's curl examples work);
/// using it off loopback earns a warning too.
pub const DEMO_API_KEY: &str = "demo-api-key-change-me";
const DEMO_STREAM_KEY: &str = "demo-stream-key-change-me";

/// Time kept back from the HTTP timeout for answering after the LLM gave up.
const REPLY_MARGIN_MS: u64 = 1_000;

/// The seed's env names (the Python bridge used them) and the keys they set.
const SEED_ENV: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "llm.api_key"),
    ("OPENAI_BASE_URL", "llm.base_url"),
    ("LLM_MODEL", "llm.model"),
    ("SUMMARY_THRESHOLD", "context.summary_threshold"),
    ("LOOKBACK_SECONDS", "context.lookback_seconds"),
    ("MAX_ACTIONS", "context.max_actions"),
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source could not be read or a value has the wrong type; the message names
    /// the file and key.
    #[error("configuration error: {0}")]
    Load(#[from] config::ConfigError),
    /// The `--config` file is unreadable, or a key in it is unknown or mistyped.
    #[error("configuration error in {}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        #[source]
        source: config::ConfigError,
    },
    /// Values parsed but do not make sense together.
    #[error("configuration error: {key}: {message}")]
    Invalid { key: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub store: StoreSettings,
    pub admin: AdminSettings,
    pub products: Vec<ProductSettings>,
    pub capture: CaptureSettings,
    pub context: ContextSettings,
    pub chat: ChatSettings,
    pub nlu: NluSettings,
    pub socketio: SocketIoSettings,
    pub proactive: ProactiveSettings,
    pub llm: LlmSettings,
    pub stream: StreamSettings,
    pub knowledge: KnowledgeSettings,
    pub console: ConsoleSettings,
}

/// `[console]`: the team console at `/admin`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    pub record: bool,
    pub session_hours: u64,
    pub retention_days: u64,
    pub resolved_after_minutes: u64,
    #[serde(deserialize_with = "seconds")]
    pub live_seconds: Duration,
    pub secure_cookie: SecureCookie,
    pub queue: usize,
}

/// When the console's cookie is marked Secure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookie {
    Auto,
    Always,
    Never,
}

/// `[knowledge]`: each product's help pages, for how-to answers that cite them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// One folder per product id under it (`knowledge/demo/…`).
    pub dir: PathBuf,
    /// Sections put in the LLM's prompt (and cited) per answer.
    pub excerpts: usize,
    /// Sections one product may have indexed.
    pub max_sections: usize,
    /// Where the index's files go; empty: `knowledge-index/` beside a SQLite
    /// database file, in memory otherwise.
    pub index_dir: PathBuf,
    /// How often the folders are checked for changed files (0: only at start).
    #[serde(deserialize_with = "seconds")]
    pub reload_seconds: Duration,
}

/// `[stream]`: the activity stream (`GET /stream/{product}`) and push delivery.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// An `event: heartbeat` frame after this long without frames.
    #[serde(deserialize_with = "seconds")]
    pub heartbeat_seconds: Duration,
    /// Recent frames kept per product for clients reconnecting with `Last-Event-ID`.
    pub replay_events: usize,
    /// Frames a subscriber may fall behind by before it loses the oldest.
    pub subscriber_queue: usize,
    /// SSE subscribers one product may have at once.
    pub max_subscribers: usize,
    /// Frames published within this long of the first are sealed into one
    /// batch, encoded and deflated once for every subscriber.
    #[serde(rename = "batch_ms", deserialize_with = "millis")]
    pub batch: Duration,
    /// Let `forward_url` point at loopback and private addresses.
    pub allow_private_forward: bool,
    /// One push attempt's time limit.
    #[serde(rename = "forward_timeout_seconds", deserialize_with = "seconds")]
    pub forward_timeout: Duration,
    /// Wait before the first retry; doubled per retry up to `forward_max_retry_seconds`.
    #[serde(rename = "forward_first_retry_seconds", deserialize_with = "seconds")]
    pub forward_first_retry: Duration,
    #[serde(rename = "forward_max_retry_seconds", deserialize_with = "seconds")]
    pub forward_max_retry: Duration,
    /// Attempts per payload before it is dropped.
    pub forward_max_attempts: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProactiveSettings {
    pub enabled: bool,
    pub interaction_timeout_seconds: f64,
    pub cooldown_seconds: f64,
    pub tick_seconds: f64,
    pub max_sessions: u64,
    #[serde(default)]
    pub triggers: Vec<TriggerSettings>,
}

/// One proactive trigger (`[[proactive.triggers]]`).
#[derive(Debug, Clone, Deserialize)]
pub struct TriggerSettings {
    pub id: String,
    #[serde(flatten)]
    pub rule: TriggerRule,
    /// A domain response to offer (e.g. `utter_offer_bulk_edit`); it becomes
    /// the bot's last action, so rules can follow on from it.
    #[serde(default)]
    pub response: Option<String>,
    /// The offer's text when no `response` is named.
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub quick_replies: Vec<QuickReplySettings>,
    #[serde(default)]
    pub interaction_timeout_seconds: Option<f64>,
    #[serde(default)]
    pub cooldown_seconds: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerRule {
    RepeatedAction {
        min_count: usize,
        within_seconds: f64,
        #[serde(default)]
        action_type: Option<String>,
        #[serde(default)]
        labels: Vec<String>,
    },
    PagePingPong {
        within_seconds: f64,
    },
    Dwell {
        dwell_seconds: f64,
        #[serde(default = "default_dwell_actions")]
        max_actions: usize,
    },
}

fn default_dwell_actions() -> usize {
    5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickReplySettings {
    pub title: String,
    pub payload: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: IpAddr,
    pub port: u16,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub max_concurrent_requests: usize,
    pub cors_allowed_origins: Vec<String>,
    pub log_format: LogFormat,
    /// Threads of the async runtime; 0: one per core.
    pub worker_threads: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// `[database]`: where products (and, later, durable state) live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (created on first start) or `sqlite::memory:`.
    pub url: String,
    pub max_connections: u32,
    /// How often the server re-reads products, so changes made by the CLI (or
    /// another process) take effect without a restart.
    #[serde(deserialize_with = "seconds")]
    pub product_refresh_seconds: Duration,
    /// How long a write waits for a lock another process holds before it
    /// fails (and ingest answers 503).
    #[serde(deserialize_with = "millis")]
    pub busy_timeout_ms: Duration,
    /// Writes waiting for the journal's writer at most; beyond, ingest waits.
    pub journal_queue: usize,
    /// How often rows past the lookback / idle settings are deleted.
    #[serde(deserialize_with = "seconds")]
    pub expire_seconds: Duration,
}

/// `[store]`: where session state lives: this process (with the journal in
/// `[database]`) or Redis, shared by every instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    /// `redis://host:port/db` or `redis+unix:///path`; a password in it is a secret.
    pub redis_url: SecretString,
    /// Prefix of every key and channel, so several deployments can share a Redis.
    pub key_prefix: String,
    /// How long an instance that stopped answering still owns its sessions'
    /// proactive offers and summaries.
    #[serde(deserialize_with = "millis")]
    pub owner_timeout_ms: Duration,
    /// How long a Redis command may take before it counts as failed.
    #[serde(deserialize_with = "millis")]
    pub redis_timeout_ms: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// In this process; durable through `[database]`'s journal.
    Memory,
    /// In Redis, shared by every instance pointing at it.
    Redis,
}

/// `[admin]`: who may register and manage products.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// `Authorization: Bearer <token>` for the admin API; empty = no admin token.
    pub token: SecretString,
    /// New products may register without a token (the hosted connector's way,
    /// which autoplay-sdk's `onboard_product` relies on). Never re-registration.
    pub open_registration: bool,
    /// After a rotation the previous webhook secret keeps working this long.
    #[serde(deserialize_with = "seconds")]
    pub secret_grace_seconds: Duration,
    /// Base URL put into `webhook_url` and `stream_url`; empty = the request's
    /// own scheme and Host (the CLI uses `http://{server.host}:{server.port}`).
    pub public_url: String,
}

impl AdminSettings {
    /// The admin token, if one is configured.
    pub fn token(&self) -> Option<&str> {
        Some(self.token.expose_secret().trim()).filter(|t| !t.is_empty())
    }
}

/// One `[[products]]` entry. Only `id` and `webhook_secret` are required; every
/// other field, when set, overrides what the database holds (keys in clear here,
/// stored as digests where they are only compared).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSettings {
    pub id: String,
    pub webhook_secret: String,
    #[serde(default)]
    pub posthog_api_key: String,
    #[serde(default)]
    pub contact_email: Option<String>,
    /// The product backend's key for `/reply`, `/context` and user deletion.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// The key stream subscribers present (`unkey_key` in onboarding).
    #[serde(default)]
    pub stream_key: Option<SecretString>,
    /// Signs user ids: `userHash = hex(HMAC-SHA256(identity_secret, userId))`.
    #[serde(default)]
    pub identity_secret: Option<SecretString>,
    /// Default: on when an identity secret is set.
    #[serde(default)]
    pub identity_required: Option<bool>,
    /// Browser origins allowed for sockets and captures; empty = any.
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// The product's help pages; default `<[knowledge] dir>/<id>/`.
    #[serde(default)]
    pub knowledge_dir: Option<PathBuf>,
}

/// Whole milliseconds as a `Duration`.
fn millis<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    Ok(Duration::from_millis(u64::deserialize(deserializer)?))
}

/// Seconds (fractions allowed, so tests can use short windows) as a `Duration`;
/// negative, NaN and infinite values are refused with the key named.
fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let value = f64::deserialize(deserializer)?;
    Duration::try_from_secs_f64(value).map_err(|_| {
        serde::de::Error::custom(format!("{value} is not a number of seconds (0 or more)"))
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSettings {
    pub max_decoded_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSettings {
    /// Fractions are allowed so tests can use sub-second windows.
    pub lookback_seconds: f64,
    pub max_actions: usize,
    pub summary_threshold: usize,
    /// After a failed summary, wait this long before trying again (doubling
    /// per consecutive failure, at most 16×), so a down LLM is not called on
    /// every new action.
    pub summary_retry_seconds: f64,
    pub max_sessions: u64,
    pub max_users: u64,
    pub max_sessions_per_user: usize,
    pub idle_seconds: u64,
    pub sessions_per_answer: usize,
    pub dedupe_capacity: u64,
    pub dedupe_ttl_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSettings {
    pub conversation_idle_seconds: u64,
    pub history_turns: usize,
    pub max_conversations: u64,
    /// Messages one socket, or one user across sockets, may send per minute.
    pub max_messages_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NluSettings {
    pub intents_dir: PathBuf,
    /// Unset: the project's config.yml FallbackClassifier, else Rasa's 0.3.
    #[serde(default)]
    pub fallback_threshold: Option<f32>,
    /// Unset: the project's config.yml FallbackClassifier, else Rasa's 0.1.
    #[serde(default)]
    pub ambiguity_threshold: Option<f32>,
    /// Unset: the project's config.yml MemoizationPolicy, else 5.
    #[serde(default)]
    pub max_history: Option<usize>,
    /// The action server's webhook; empty: the project's endpoints.yml.
    #[serde(default)]
    pub action_endpoint: String,
    /// How long one custom action may take before the user gets a polite reply.
    pub action_timeout_ms: u64,
    /// The console's labels; empty: `nlu-overrides.yml` beside `intents_dir`.
    #[serde(default)]
    pub overrides_file: PathBuf,
    /// How often the labels file is checked for changes made elsewhere.
    #[serde(deserialize_with = "seconds")]
    pub labels_reload_seconds: Duration,
}

impl NluSettings {
    /// Where the console's labels are kept.
    pub fn overrides_path(&self) -> PathBuf {
        if !self.overrides_file.as_os_str().is_empty() {
            return self.overrides_file.clone();
        }
        let beside = self
            .intents_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        beside.join("nlu-overrides.yml")
    }

    /// These settings, else the project's config.yml, else Rasa's defaults.
    pub fn thresholds(
        &self,
        project: &crate::nlu::project::ProjectConfig,
    ) -> crate::nlu::Thresholds {
        let defaults = crate::nlu::Thresholds::default();
        crate::nlu::Thresholds {
            fallback: self
                .fallback_threshold
                .or(project.fallback_threshold)
                .unwrap_or(defaults.fallback),
            ambiguity: self
                .ambiguity_threshold
                .or(project.ambiguity_threshold)
                .unwrap_or(defaults.ambiguity),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketIoSettings {
    pub user_message_evt: String,
    pub bot_message_evt: String,
    pub metadata_key: String,
    pub session_persistence: bool,
    pub jwt_secret: String,
    pub jwt_method: String,
    pub max_payload_bytes: u64,
    pub max_buffer_packets: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    pub api_key: String,
    pub base_url: String,
    pub model: String,
    pub temperature: f32,
    pub max_tokens: u32,
    pub timeout_ms: u64,
    pub retries: u32,
    /// One LLM answer's whole budget: slot wait, attempts and backoff. Must
    /// end before `server.request_timeout_ms`, so the polite reply always
    /// goes out before the HTTP layer gives up.
    pub turn_deadline_ms: u64,
    pub max_concurrent_requests: usize,
    pub summary_temperature: f32,
    pub summary_max_tokens: u32,
    pub system_prompt_file: PathBuf,
    /// LLM answers one user may cause per hour (0 = no limit); past it the
    /// offline responder answers.
    pub max_calls_per_user_per_hour: u32,
}

impl LlmSettings {
    /// An LLM is used only when a key is set; otherwise answers are offline.
    pub fn enabled(&self) -> bool {
        !self.api_key.trim().is_empty()
    }
}

impl Settings {
    /// Loads defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Error> {
        Self::load_with_env(file, |name| std::env::var(name).ok())
    }

    /// As [`Settings::load`], with the seed env names read through `env` (tests
    /// pass a map instead of touching the process environment).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let defaults = || File::from_str(DEFAULT_TOML, FileFormat::Toml);
        let mut builder = Config::builder().add_source(defaults());
        if let Some(path) = file {
            // Checked on its own first (the defaults are valid), so any error
            // here is the file's and the message can name it.
            let file_error = |source| Error::File {
                path: path.to_owned(),
                source,
            };
            Config::builder()
                .add_source(defaults())
                .add_source(File::from(path).required(true))
                .build()
                .and_then(Config::try_deserialize::<Settings>)
                .map_err(file_error)?;
            builder = builder.add_source(File::from(path).required(true));
        }
        builder = builder.add_source(
            Environment::with_prefix("COPILOT")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.cors_allowed_origins"),
        );
        for (name, key) in SEED_ENV {
            if let Some(value) = env(name).filter(|v| !v.trim().is_empty()) {
                builder = builder.set_override(*key, value)?;
            }
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The address to bind.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.server.host, self.server.port)
    }

    /// Products still using the public demo secret while reachable off this machine.
    pub fn exposed_default_secrets(&self) -> Vec<&str> {
        if self.server.host.is_loopback() {
            return Vec::new();
        }
        self.products
            .iter()
            .filter(|p| {
                p.webhook_secret == DEMO_WEBHOOK_SECRET
                    || p.api_key
                        .as_ref()
                        .is_some_and(|k| k.expose_secret() == DEMO_API_KEY)
                    || p.stream_key
                        .as_ref()
                        .is_some_and(|k| k.expose_secret() == DEMO_STREAM_KEY)
            })
            .map(|p| p.id.as_str())
            .collect()
    }

    /// Checks that span several values. `load` runs it; callers that change
    /// settings afterwards (tests) get it again from `Application::build`.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |key: &str, message: &str| Error::Invalid {
            key: key.to_owned(),
            message: message.to_owned(),
        };
        let prefix = &self.store.key_prefix;
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "store.key_prefix",
                "must be letters, digits, '-' or '_' (it names Redis keys and channels)",
            ));
        }
        let c = &self.context;
        if !(c.lookback_seconds.is_finite() && c.lookback_seconds > 0.0) {
            return Err(invalid(
                "context.lookback_seconds",
                "must be greater than 0",
            ));
        }
        // 16 × this must still be a valid duration.
        if !(c.summary_retry_seconds.is_finite()
            && (0.0..=86_400.0).contains(&c.summary_retry_seconds))
        {
            return Err(invalid(
                "context.summary_retry_seconds",
                "must be between 0 and 86400",
            ));
        }
        for (key, value) in [
            ("context.max_actions", c.max_actions),
            ("context.summary_threshold", c.summary_threshold),
            ("context.max_sessions_per_user", c.max_sessions_per_user),
            ("context.sessions_per_answer", c.sessions_per_answer),
            ("chat.history_turns", self.chat.history_turns),
            (
                "chat.max_messages_per_minute",
                self.chat.max_messages_per_minute as usize,
            ),
            (
                "database.max_connections",
                self.database.max_connections as usize,
            ),
            ("server.body_limit_bytes", self.server.body_limit_bytes),
            (
                "server.max_concurrent_requests",
                self.server.max_concurrent_requests,
            ),
            (
                "llm.max_concurrent_requests",
                self.llm.max_concurrent_requests,
            ),
            (
                "socketio.max_buffer_packets",
                self.socketio.max_buffer_packets,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        for (key, value) in [
            ("nlu.fallback_threshold", self.nlu.fallback_threshold),
            ("nlu.ambiguity_threshold", self.nlu.ambiguity_threshold),
        ] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(invalid(key, "must be between 0 and 1"));
            }
        }
        if self.llm.turn_deadline_ms == 0
            || self.llm.turn_deadline_ms + REPLY_MARGIN_MS > self.server.request_timeout_ms
        {
            return Err(invalid(
                "llm.turn_deadline_ms",
                &format!(
                    "must be at least {REPLY_MARGIN_MS} ms below server.request_timeout_ms ({} ms), \
                     so the polite reply goes out before the HTTP layer answers 408",
                    self.server.request_timeout_ms
                ),
            ));
        }
        if self.socketio.user_message_evt.is_empty() || self.socketio.bot_message_evt.is_empty() {
            return Err(invalid("socketio", "event names must not be empty"));
        }
        if !self.socketio.jwt_secret.is_empty()
            && self
                .socketio
                .jwt_method
                .parse::<jsonwebtoken::Algorithm>()
                .is_err()
        {
            return Err(invalid(
                "socketio.jwt_method",
                "is not a known JWT algorithm",
            ));
        }
        let p = &self.proactive;
        for (key, value) in [
            (
                "proactive.interaction_timeout_seconds",
                p.interaction_timeout_seconds,
            ),
            ("proactive.cooldown_seconds", p.cooldown_seconds),
            ("proactive.tick_seconds", p.tick_seconds),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        for (i, trigger) in p.triggers.iter().enumerate() {
            let seconds = [
                trigger.interaction_timeout_seconds,
                trigger.cooldown_seconds,
            ]
            .into_iter()
            .flatten()
            .chain(match trigger.rule {
                TriggerRule::RepeatedAction { within_seconds, .. }
                | TriggerRule::PagePingPong { within_seconds } => Some(within_seconds),
                TriggerRule::Dwell { dwell_seconds, .. } => Some(dwell_seconds),
            });
            for value in seconds {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(invalid(
                        &format!("proactive.triggers[{i}]"),
                        "durations must be 0 or more seconds",
                    ));
                }
            }
            if trigger.message.trim().is_empty() && trigger.response.is_none() {
                return Err(invalid(
                    &format!("proactive.triggers[{i}].message"),
                    "must not be empty (or name a domain `response`)",
                ));
            }
        }
        let mut keys = HashSet::new();
        for (i, product) in self.products.iter().enumerate() {
            if !product.posthog_api_key.is_empty() && !keys.insert(product.posthog_api_key.as_str())
            {
                return Err(invalid(
                    &format!("products[{i}].posthog_api_key"),
                    "is used by another product",
                ));
            }
        }
        let mut ids = HashSet::new();
        for (i, product) in self.products.iter().enumerate() {
            if crate::domain::ProductId::parse(&product.id).is_err() {
                return Err(invalid(
                    &format!("products[{i}].id"),
                    "must be 1-64 characters of a-z, 0-9, '-' or '_'",
                ));
            }
            if product.webhook_secret.is_empty() {
                return Err(invalid(
                    &format!("products[{i}].webhook_secret"),
                    "must not be empty",
                ));
            }
            if !ids.insert(product.id.as_str()) {
                return Err(invalid(
                    &format!("products[{i}].id"),
                    &format!("duplicate product id '{}'", product.id),
                ));
            }
        }
        Ok(())
    }
}
