//! Building and running the application: bind the listener (port 0 allowed, the
//! real port read back), wire the state, serve until the shutdown token fires,
//! then wait for background work. Tests start the server through this same path.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use socketioxide::layer::SocketIoLayer;

use crate::channels;
use crate::config::{Settings, StoreBackend};
use crate::context::{ContextStore, OfflineSummariser, Summariser};
use crate::db;
use crate::dialogue::{Bot, Conversations, Copilot, DialogueOptions, LlmSetup, prompt};
use crate::keeper::Keeper;
use crate::limits::{Limits, SharedCounts};
use crate::llm::{LlmClient, LlmSummariser, OpenAiClient};
use crate::metrics::Metrics;
use crate::nlu::Matcher;
use crate::proactive::Proactive;
use crate::products::{self, Products};
use crate::redis::bus::{Adapter, Bus};
use crate::state::{AppState, Shared};
use crate::stream::{Forwarders, Hub};
use crate::web;

/// How long shutdown waits for background work (summaries) to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The intent files could not be loaded.
    #[error("could not load intents: {0}")]
    Intents(#[from] crate::nlu::Error),
    /// The system prompt file exists but could not be read.
    #[error("could not read the system prompt {}: {source}", path.display())]
    SystemPrompt {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The settings do not make sense together.
    #[error(transparent)]
    Settings(#[from] Box<crate::config::Error>),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] db::Error),
    /// What the database kept could not be read back.
    #[error("could not read back the database's state: {0}")]
    Journal(db::journal::Error),
    /// Redis (`[store] backend = "redis"`) could not be used.
    #[error("could not use Redis: {0}")]
    Redis(#[from] crate::redis::Error),
    /// The Socket.IO namespace could not be set up on its adapter.
    #[error("could not set up Socket.IO: {0}")]
    Socket(String),
    /// The knowledge API's pages could not be read from the database.
    #[error("could not read knowledge pages: {0}")]
    KnowledgePages(sqlx::Error),
    /// The knowledge index could not be made.
    #[error("could not index knowledge: {0}")]
    Knowledge(#[from] crate::knowledge::Error),
    /// Products could not be read or seeded from the config file.
    #[error("could not load products: {0}")]
    Products(#[from] products::Error),
    /// The push-delivery HTTP client could not be built (TLS backend).
    #[error("could not build the stream push client: {0}")]
    PushClient(#[from] reqwest::Error),
    /// The listen address could not be bound.
    #[error("could not bind {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    socket_layer: SocketIoLayer<Adapter>,
    writer: Writer,
}

/// The task that writes what the keeper was given.
enum Writer {
    Journal(db::journal::JournalTask),
    Redis(Box<crate::redis::log::LogTask>),
}

impl Writer {
    async fn run(self) {
        match self {
            Writer::Journal(task) => task.run().await,
            Writer::Redis(task) => task.run().await,
        }
    }
}

/// What `[store]` chose, set up.
struct Backend {
    keeper: Keeper,
    writer: Writer,
    bus: Bus,
    /// With Redis: its client (for the replica's own connection), the log
    /// and the shared rate-limit counts.
    redis: Option<(::redis::Client, crate::redis::Log, Arc<dyn SharedCounts>)>,
}

async fn backend(
    settings: &Settings,
    db: &db::Db,
    metrics: &Metrics,
) -> Result<Backend, StartupError> {
    match settings.store.backend {
        StoreBackend::Memory => {
            let (journal, task) = db::Journal::start(db, settings.database.journal_queue).await?;
            Ok(Backend {
                keeper: Keeper::Journal(journal),
                writer: Writer::Journal(task),
                bus: Bus::Local,
                redis: None,
            })
        }
        StoreBackend::Redis => {
            let store = &settings.store;
            let client = crate::redis::client(store)?;
            let connection =
                crate::redis::manager(&client, store, ::redis::aio::ConnectionManagerConfig::new())
                    .await?;
            let keys = crate::redis::Keys::new(&store.key_prefix);
            let c = cutoffs(settings);
            let span =
                |cutoff: i64| Duration::from_millis(u64::try_from(c.now - cutoff).unwrap_or(0));
            let retention = crate::redis::log::Retention {
                log: [c.actions, c.conversations, c.proactive, c.emails]
                    .into_iter()
                    .map(span)
                    .max()
                    .unwrap_or_default(),
                deliveries: span(c.deliveries),
                alive: store.owner_timeout_ms,
                session: Duration::from_secs(settings.context.idle_seconds.max(1)),
            };
            let (log, task) = crate::redis::Log::start(
                connection.clone(),
                keys.clone(),
                retention,
                settings.database.journal_queue,
                metrics.clone(),
            );
            log.heartbeat().await?;
            let bus = Bus::connect(&client, store, metrics.clone()).await?;
            let counts: Arc<dyn SharedCounts> = Arc::new(crate::redis::counters::Counters::new(
                connection,
                keys,
                metrics.clone(),
            ));
            tracing::info!(
                instance = log.me(),
                "session state in Redis, shared by every instance"
            );
            Ok(Backend {
                keeper: Keeper::Redis(log.clone()),
                writer: Writer::Redis(Box::new(task)),
                bus,
                redis: Some((client, log, counts)),
            })
        }
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        settings.validate().map_err(Box::new)?;
        for product in settings.exposed_default_secrets() {
            tracing::warn!(
                product,
                address = %settings.address(),
                "product uses the public demo webhook secret or API key on a non-loopback \
                 address; set products[].webhook_secret and products[].api_key to secrets of \
                 your own"
            );
        }
        let address = settings.address();
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| StartupError::Bind { address, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { address, source })?
            .port();

        let db = db::connect(&settings.database).await?;
        let pool = db.pool.clone();
        let products = products_on(pool.clone(), &settings).await?;
        let metrics = Metrics::new();
        let Backend {
            keeper,
            writer,
            bus,
            redis,
        } = backend(&settings, &db, &metrics).await?;
        if settings.admin.open_registration && !settings.server.host.is_loopback() {
            tracing::warn!(
                "admin.open_registration is on off loopback: anyone who can reach this server \
                 can register a new product (never take over an existing one)"
            );
        }
        let per_minute =
            NonZeroU32::new(settings.chat.max_messages_per_minute).unwrap_or(NonZeroU32::MIN);
        let per_hour = settings.llm.max_calls_per_user_per_hour;
        let limits = match &redis {
            Some((_, _, counts)) => Limits::shared(per_minute, per_hour, Arc::clone(counts)),
            None => Limits::new(per_minute, per_hour),
        };
        let trainer = crate::nlu::trainer::Trainer::new(&settings.nlu);
        let project = trainer.project()?;
        let matcher = Matcher::train(&project, trainer.thresholds(&project));
        let bot = Bot::load(
            &project,
            &DialogueOptions {
                max_history: settings.nlu.max_history,
                action_endpoint: Some(settings.nlu.action_endpoint.clone()),
                action_timeout: std::time::Duration::from_millis(settings.nlu.action_timeout_ms),
            },
        );
        // A trigger offering a response this project does not have (the
        // default triggers with someone's own Rasa project) is turned off.
        let mut proactive_settings = settings.proactive.clone();
        proactive_settings
            .triggers
            .retain(|trigger| match &trigger.response {
                Some(response) if !bot.has_response(response) => {
                    tracing::warn!(
                        trigger = %trigger.id,
                        response,
                        "proactive trigger off: its response is not in the domain"
                    );
                    false
                }
                _ => true,
            });
        let llm: Option<Arc<dyn LlmClient>> = settings.llm.enabled().then(|| {
            Arc::new(OpenAiClient::new(&settings.llm, metrics.clone())) as Arc<dyn LlmClient>
        });
        let summariser: Arc<dyn Summariser> = match &llm {
            Some(client) => Arc::new(LlmSummariser::new(
                Arc::clone(client),
                settings.llm.summary_temperature,
                settings.llm.summary_max_tokens,
            )),
            None => Arc::new(OfflineSummariser),
        };
        let llm = match llm {
            Some(client) => {
                let path = &settings.llm.system_prompt_file;
                let system_prompt = prompt::load_system_prompt(path).map_err(|source| {
                    StartupError::SystemPrompt {
                        path: path.clone(),
                        source,
                    }
                })?;
                tracing::info!(model = %settings.llm.model, base_url = %settings.llm.base_url, "LLM enabled");
                Some(LlmSetup::new(client, system_prompt, &settings.llm))
            }
            None => {
                tracing::info!("no LLM API key: answering and summarising offline from templates");
                None
            }
        };

        let tasks = TaskTracker::new();
        let stream = Hub::new(
            settings.stream.replay_events,
            settings.stream.subscriber_queue,
            settings.stream.max_subscribers,
            settings.stream.batch,
            metrics.clone(),
        );
        let store = ContextStore::observed(
            &settings.context,
            summariser,
            vec![Arc::new(stream.clone()), Arc::new(keeper.clone())],
            tasks.clone(),
            metrics.clone(),
        );
        let conversations = Conversations::kept(&settings.chat, Arc::new(keeper.clone()));
        let index_dir = match &settings.knowledge.index_dir {
            dir if dir.as_os_str().is_empty() => db::sqlite_file(&settings.database.url)
                .map(|file| file.with_file_name("knowledge-index")),
            dir => Some(dir.clone()),
        };
        let knowledge = crate::knowledge::Knowledge::open(
            index_dir.as_deref(),
            settings.knowledge.max_sections,
        )?;
        let mut folders = settings.products.iter().fold(
            crate::knowledge::Folders::new(settings.knowledge.dir.clone(), knowledge.clone()),
            |folders, p| match &p.knowledge_dir {
                Some(dir) => folders.with_dir(&p.id, dir.clone()),
                None => folders,
            },
        );
        let ids: Vec<_> = products.all().iter().map(|p| p.id.clone()).collect();
        folders.refresh(&ids);
        let pages = db::Pages::new(pool.clone());
        let mut api_pages = ApiPages::new(pages.clone(), knowledge.clone());
        api_pages.refresh().await?;
        let shutdown = CancellationToken::new();
        let console_db = db::connect_console(&settings.database, &db).await?;
        let turns = db::TurnLog::start(
            console_db.pool.clone(),
            settings.console.queue,
            &tasks,
            shutdown.clone(),
            metrics.clone(),
        );
        let copilot = Copilot::new(
            store.clone(),
            conversations.clone(),
            bot,
            matcher,
            llm,
            limits.clone(),
            metrics.clone(),
        )
        .with_knowledge(knowledge.clone(), settings.knowledge.excerpts);
        let copilot = if settings.console.record {
            copilot.with_turn_sink(Arc::new(turns.clone()))
        } else {
            copilot
        };
        let proactive = Proactive::new(&proactive_settings, store.clone(), metrics.clone());
        let presence = redis.as_ref().map(|(_, log, _)| {
            crate::redis::presence::Presence::new(
                log.connection(),
                log.keys().clone(),
                metrics.clone(),
            )
        });
        match &redis {
            None => restore(&pool, &settings, &store, &conversations, &proactive).await?,
            Some((client, log, _)) => {
                store.set_owners(Arc::new(log.clone()));
                proactive.set_owners(Arc::new(log.clone()));
                let replica = crate::redis::replica::Replica {
                    log: log.clone(),
                    store: store.clone(),
                    conversations: conversations.clone(),
                    proactive: proactive.clone(),
                    stream: stream.clone(),
                    tasks: tasks.clone(),
                };
                let (last, applied) = replica.restore().await?;
                if applied.entries > 0 {
                    tracing::info!(
                        entries = applied.entries,
                        actions = applied.actions,
                        skipped = applied.skipped,
                        "restored from Redis"
                    );
                }
                tasks.spawn(replica.run(client.clone(), last, shutdown.clone()));
                tasks.spawn(heartbeat(
                    log.clone(),
                    settings.store.owner_timeout_ms,
                    shutdown.clone(),
                ));
            }
        }
        proactive.set_sink(Arc::new(keeper.clone()));
        let (socket_layer, io) = channels::socketio::layer(
            copilot.clone(),
            proactive.clone(),
            products.clone(),
            limits.clone(),
            metrics.clone(),
            &settings.socketio,
            bus.clone(),
            &settings.store.key_prefix,
            match &presence {
                Some(shared) => Arc::new(shared.clone()) as Arc<dyn crate::channels::Presence>,
                None => Arc::new(crate::channels::presence::LocalPresence::default()),
            },
        )
        .await
        .map_err(StartupError::Socket)?;
        tasks.spawn(bus.keep_alive(shutdown.clone()));
        if let Some(presence) = presence {
            tasks.spawn(presence.run(shutdown.clone()));
        }
        tasks.spawn(
            products
                .clone()
                .run_refresh(settings.database.product_refresh_seconds, shutdown.clone()),
        );
        tasks.spawn(limits.run_pruning(shutdown.clone()));
        tasks.spawn(reload_knowledge(
            folders,
            api_pages,
            products.clone(),
            settings.knowledge.reload_seconds,
            shutdown.clone(),
        ));
        let forwarders = Forwarders::new(
            stream.clone(),
            products.clone(),
            settings.stream.clone(),
            metrics.clone(),
        )?;
        forwarders.sync(&shutdown);
        tasks.spawn(
            forwarders
                .clone()
                .run(settings.database.product_refresh_seconds, shutdown.clone()),
        );
        if let Keeper::Journal(journal) = &keeper {
            tasks.spawn(expire(journal.clone(), settings.clone(), shutdown.clone()));
        }
        let console = crate::console::Console {
            turns,
            logins: db::ConsoleSessions::new(console_db.pool.clone()),
            trainer,
            labelling: tokio::sync::Mutex::new(()),
            logins_allowed: governor::RateLimiter::keyed(governor::Quota::per_minute(
                NonZeroU32::new(crate::console::LOGINS_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            )),
        };
        tasks.spawn(retrain_on_new_labels(
            console.trainer.clone(),
            copilot.clone(),
            settings.nlu.labels_reload_seconds,
            shutdown.clone(),
        ));
        tasks.spawn(expire_console(
            console.turns.clone(),
            console.logins.clone(),
            settings.console.retention_days,
            shutdown.clone(),
        ));
        let state = AppState::new(Shared {
            console,
            keeper,
            stream,
            forwarders,
            copilot,
            knowledge,
            pages,
            proactive,
            metrics,
            io,
            store,
            products,
            settings: Arc::new(settings),
            shutdown,
            tasks,
        });
        Ok(Self {
            listener,
            port,
            state,
            socket_layer,
            writer,
        })
    }

    /// The port actually bound (useful when the settings asked for 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancelling this token stops the server gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        let shutdown = self.state.shutdown.clone();
        let tasks = self.state.tasks.clone();
        tracing::info!(port = self.port, "copilot-server listening");
        let io = self.state.io.clone();
        let keeper = self.state.keeper.clone();
        // Outside `tasks`: it must outlive them, since they write to it.
        let writer = tokio::spawn(self.writer.run());
        tasks.spawn(self.state.proactive.clone().run(shutdown.clone()));
        let router = web::router(self.state, self.socket_layer);
        // Sockets are closed at the transport as soon as the stop is asked
        // for (not after the HTTP drain, which would wait for them): clients
        // see "transport close" and reconnect, to another instance if there
        // is one. A socket.io DISCONNECT would tell them to stay away.
        let closing = {
            let (io, shutdown) = (io.clone(), shutdown.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                io.close().await;
            })
        };
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        let _ = closing.await;
        tasks.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("background work still running at shutdown; abandoning it");
        }
        // Everything queued is committed before the process ends.
        keeper.close();
        if writer.await.is_err() {
            tracing::error!("the keeper's writer panicked at shutdown");
        }
        tracing::info!("copilot-server stopped");
        Ok(())
    }
}

/// Sleeps `period` for a periodic task; false if shutdown came first (the
/// task then ends).
async fn sleep_unless_stopped(period: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(period) => true,
        () = shutdown.cancelled() => false,
    }
}

/// Retrains when the labels file changes under us (an instance sharing the
/// folder labelled something), checked every `every`.
async fn retrain_on_new_labels(
    trainer: crate::nlu::trainer::Trainer,
    copilot: Copilot,
    every: Duration,
    shutdown: CancellationToken,
) {
    if every.is_zero() {
        return;
    }
    loop {
        if !sleep_unless_stopped(every, &shutdown).await {
            return;
        }
        // Checked here first so an unchanged file costs no blocking thread.
        if !trainer.labels_changed() {
            continue;
        }
        let (again, copilot) = (trainer.clone(), copilot.clone());
        let retrain = move || again.retrain_if_changed(|matcher| copilot.replace_matcher(matcher));
        match tokio::task::spawn_blocking(retrain).await {
            Ok(Ok(true)) => tracing::info!("labels file changed; classifier retrained"),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "labels file changed but does not load"),
            Err(error) => tracing::error!(%error, "retraining panicked"),
        }
    }
}

/// Deletes turns past the console's retention, and expired logins, hourly.
async fn expire_console(
    turns: db::TurnLog,
    logins: db::ConsoleSessions,
    retention_days: u64,
    shutdown: CancellationToken,
) {
    let retention_ms = i64::try_from(retention_days.max(1) * 86_400_000).unwrap_or(i64::MAX);
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        match turns.expire(now.saturating_sub(retention_ms)).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "console turns past retention deleted"),
            Err(error) => tracing::warn!(%error, "could not delete old console turns"),
        }
        if let Err(error) = logins.expire(now).await {
            tracing::warn!(%error, "could not delete expired console logins");
        }
        if !sleep_unless_stopped(Duration::from_secs(3600), &shutdown).await {
            return;
        }
    }
}

/// Indexes product folders again when their files change (and folders of
/// products added since), every `every`, off the async threads.
async fn reload_knowledge(
    mut folders: crate::knowledge::Folders,
    mut api_pages: ApiPages,
    products: Products,
    every: Duration,
    shutdown: CancellationToken,
) {
    if every.is_zero() {
        return;
    }
    loop {
        if !sleep_unless_stopped(every, &shutdown).await {
            return;
        }
        let ids: Vec<_> = products.all().iter().map(|p| p.id.clone()).collect();
        match tokio::task::spawn_blocking(move || {
            folders.refresh(&ids);
            folders
        })
        .await
        {
            Ok(back) => folders = back,
            Err(error) => {
                tracing::error!(%error, "knowledge reload panicked; reloading stopped");
                return;
            }
        }
        if let Err(error) = api_pages.refresh().await {
            tracing::warn!(%error, "knowledge pages not re-read from the database");
        }
    }
}

/// The API's pages as the database has them, indexed again when the table
/// changed (another instance's PUT or DELETE, with a shared database).
struct ApiPages {
    pages: db::Pages,
    knowledge: crate::knowledge::Knowledge,
    version: Option<(i64, i64)>,
    /// Products that had pages at the last read (so removed ones go too).
    products: Vec<crate::domain::ProductId>,
}

impl ApiPages {
    fn new(pages: db::Pages, knowledge: crate::knowledge::Knowledge) -> Self {
        Self {
            pages,
            knowledge,
            version: None,
            products: Vec::new(),
        }
    }

    async fn refresh(&mut self) -> Result<(), StartupError> {
        let version = self
            .pages
            .version()
            .await
            .map_err(StartupError::KnowledgePages)?;
        if self.version == Some(version) {
            return Ok(());
        }
        let mut by_product: std::collections::BTreeMap<String, Vec<_>> = Default::default();
        for page in self
            .pages
            .all()
            .await
            .map_err(StartupError::KnowledgePages)?
        {
            let sections =
                crate::knowledge::api_page(&page.title, &page.url, &page.body, page.html);
            by_product
                .entry(page.product)
                .or_default()
                .push((page.doc_id, sections));
        }
        let mut seen = Vec::new();
        for (product, pages) in &by_product {
            let Ok(id) = crate::domain::ProductId::parse(product) else {
                continue;
            };
            self.knowledge
                .replace_source(&id, crate::knowledge::Source::Api, pages)?;
            seen.push(id);
        }
        for gone in self.products.iter().filter(|p| !seen.contains(p)) {
            self.knowledge
                .replace_source(gone, crate::knowledge::Source::Api, &[])?;
        }
        self.products = seen;
        self.version = Some(version);
        Ok(())
    }
}

/// The database's products, with the config file's `[[products]]` upserted.
/// The CLI opens the same registry (without seeding: the file is the server's).
pub async fn open_products(settings: &Settings) -> Result<Products, StartupError> {
    products_on(db::connect(&settings.database).await?.pool, settings).await
}

async fn products_on(pool: sqlx::AnyPool, settings: &Settings) -> Result<Products, StartupError> {
    let products = Products::open(
        Arc::new(db::DbProducts::new(pool)),
        settings.admin.secret_grace_seconds,
    )
    .await?;
    products.seed(&settings.products).await?;
    Ok(products)
}

/// Rows older than these are of no use: past the lookback, the idle times.
fn cutoffs(settings: &Settings) -> db::journal::Cutoffs {
    let now = db::journal::now_ms();
    let ago = |d: Duration| now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let p = &settings.proactive;
    let proactive_idle = Duration::from_secs_f64(
        (p.interaction_timeout_seconds + p.cooldown_seconds).max(0.0) + 600.0,
    );
    db::journal::Cutoffs {
        actions: ago(Duration::from_secs_f64(settings.context.lookback_seconds)),
        deliveries: ago(Duration::from_secs(settings.context.dedupe_ttl_seconds)),
        conversations: ago(Duration::from_secs(settings.chat.conversation_idle_seconds)),
        proactive: ago(proactive_idle),
        emails: ago(Duration::from_secs(settings.context.idle_seconds)),
        now,
    }
}

/// Puts back what the journal kept: summaries before their sessions' raw
/// actions, delivery ids, emails, conversations, proactive states.
async fn restore(
    pool: &sqlx::AnyPool,
    settings: &Settings,
    store: &ContextStore,
    conversations: &Conversations,
    proactive: &Proactive,
) -> Result<(), StartupError> {
    let restored = db::journal::restore(pool, cutoffs(settings))
        .await
        .map_err(|e| StartupError::Journal(db::journal::Error::Database(Arc::new(e))))?;
    let counts = (
        restored.actions.len(),
        restored.summaries.len(),
        restored.conversations.len(),
    );
    for (product, session, text, next_index, age) in restored.summaries {
        store.restore_summary(&product, &session, text, next_index, age);
    }
    let mut actions = restored.actions.into_iter().peekable();
    while let Some((product, seq, action, age)) = actions.next() {
        let mut run = vec![crate::context::Restored { seq, action, age }];
        while let Some((_, seq, action, age)) = actions.next_if(|(p, ..)| p == &product) {
            run.push(crate::context::Restored { seq, action, age });
        }
        store.restore(&product, run);
    }
    for (product, key) in &restored.deliveries {
        store.restore_delivery(product, key);
    }
    for (product, user, email) in &restored.emails {
        store.note_email(product, user, email);
    }
    let mut skipped = restored.skipped;
    for (key, state, _age) in &restored.conversations {
        skipped += usize::from(!conversations.restore(key, state));
    }
    for (product, session, state, age) in restored.proactive {
        skipped += usize::from(!proactive.restore(product, session, &state, age));
    }
    if counts != (0, 0, 0) || skipped > 0 {
        tracing::info!(
            actions = counts.0,
            summaries = counts.1,
            conversations = counts.2,
            skipped,
            "restored from the database"
        );
    }
    Ok(())
}

/// Tells the other instances this one is alive, three times per timeout.
async fn heartbeat(log: crate::redis::Log, timeout: Duration, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval((timeout / 3).max(Duration::from_millis(100)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {
                if let Err(error) = log.heartbeat().await {
                    tracing::warn!(%error, "could not tell Redis this instance is alive");
                }
            }
        }
    }
}

/// Deletes rows past their time every `[database] expire_seconds`.
async fn expire(journal: db::Journal, settings: Settings, shutdown: CancellationToken) {
    let mut interval =
        tokio::time::interval(settings.database.expire_seconds.max(Duration::from_secs(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {
                if let Err(error) = journal.expire(cutoffs(&settings)).await {
                    tracing::warn!(%error, "could not delete expired rows; will try again");
                }
            }
        }
    }
}

/// The intents in `dir`, or the built-in ones when `dir` does not exist.
/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "could not listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
