//! The database: SQLite (embedded, the default) or Postgres (for many
//! instances), picked by the URL's scheme, through sqlx's `Any` driver so one
//! set of queries serves both. Each backend has its migrations (`migrations/`
//! for SQLite, `migrations/postgres/` for Postgres: the same tables, in each
//! one's column types), applied at start. Runtime queries (no compile-time
//! database needed); the few statements that differ (JSON arrays) are picked
//! by [`Backend`]. Nothing above this module sees sqlx.

mod console_sessions;
pub mod journal;
mod pages;
mod products;
mod turns;

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use console_sessions::{ConsoleSessions, StoredLogin};
pub use journal::Journal;
pub use pages::{Pages, StoredPage};
pub use products::DbProducts;
pub use turns::TurnLog;

use crate::config::DatabaseSettings;

/// Migrations, embedded in the binary.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
/// The console's own SQLite database (on Postgres its tables are in the main one).
static CONSOLE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/console");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `database.url` is not a URL we can use.
    #[error("database.url '{url}' is not usable: {why}")]
    Url { url: String, why: String },
    /// The database file's folder could not be created.
    #[error("could not create {}: {source}", path.display())]
    Folder {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error("could not open the database '{url}': {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed (or the database is from a newer version).
    #[error("could not migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Which engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The pool and what it is.
#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    url: String,
    /// In memory: one pooled connection does all the work (see `open`).
    in_memory: bool,
    busy_timeout: Duration,
}

impl Db {
    /// A connection of its own for the journal's writer, so a commit is not
    /// also a pool checkout; `None` in memory, where one connection does all
    /// the work (see `open`).
    pub async fn writer_connection(&self) -> Result<Option<AnyConnection>, Error> {
        if self.in_memory {
            return Ok(None);
        }
        self.connect_writer()
            .await
            .map(Some)
            .map_err(|source| Error::Open {
                url: redacted(&self.url),
                source,
            })
    }

    /// Opens the writer's connection (again, after a failure).
    pub async fn connect_writer(&self) -> Result<AnyConnection, sqlx::Error> {
        let mut connection = AnyConnection::connect(&self.url).await?;
        if self.backend == Backend::Sqlite {
            sqlite_pragmas(&mut connection, self.busy_timeout, true).await?;
        }
        Ok(connection)
    }
}

/// A URL without its password, for errors and logs.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else {
        None
    }
}

/// WAL: readers never wait for the writer, and a CLI can write while the
/// server reads. NORMAL is durable across process crashes in WAL (commits are
/// not fsynced one by one; checkpoints are).
async fn sqlite_pragmas(
    connection: &mut AnyConnection,
    busy_timeout: Duration,
    file: bool,
) -> Result<(), sqlx::Error> {
    connection.execute("PRAGMA foreign_keys = ON").await?;
    // A second process (the CLI) may hold the write lock for a moment.
    let busy = format!("PRAGMA busy_timeout = {}", busy_timeout.as_millis());
    connection.execute(busy.as_str()).await?;
    if file {
        connection.execute("PRAGMA journal_mode = WAL").await?;
        connection.execute("PRAGMA synchronous = NORMAL").await?;
    }
    Ok(())
}

/// Opens (creating a SQLite file if needed) and migrates the database at
/// `settings.url`.
pub async fn connect(settings: &DatabaseSettings) -> Result<Db, Error> {
    open(settings, settings.url.trim(), false).await
}

/// The console's database: on SQLite one of its own (`console.db` beside the
/// main file, or another in memory), so recording turns never contends for
/// the journal's write lock; on Postgres, the main one.
pub async fn connect_console(settings: &DatabaseSettings, main: &Db) -> Result<Db, Error> {
    if main.backend == Backend::Postgres {
        return Ok(main.clone());
    }
    let raw = settings.url.trim();
    let url = match sqlite_file(raw) {
        Some(file) => {
            let console = file.with_file_name("console.db");
            let query = raw.split_once('?').map(|(_, q)| q);
            match query {
                Some(q) => format!("sqlite://{}?{q}", console.display()),
                None => format!("sqlite://{}", console.display()),
            }
        }
        None => "sqlite::memory:".to_owned(),
    };
    open(settings, &url, true).await
}

async fn open(settings: &DatabaseSettings, raw: &str, console: bool) -> Result<Db, Error> {
    sqlx::any::install_default_drivers();
    let backend = backend_of(raw).ok_or_else(|| Error::Url {
        url: redacted(raw),
        why: "use sqlite://path, sqlite::memory: or postgres://user:password@host/db".to_owned(),
    })?;
    let in_memory = backend == Backend::Sqlite && sqlite_file(raw).is_none();
    let mut url = raw.to_owned();
    if let Some(path) = sqlite_file(raw) {
        if let Some(folder) = path.parent()
            && !folder.as_os_str().is_empty()
        {
            std::fs::create_dir_all(folder).map_err(|source| Error::Folder {
                path: folder.to_owned(),
                source,
            })?;
        }
        // Created on first start.
        if !raw.contains("mode=") {
            url.push(if raw.contains('?') { '&' } else { '?' });
            url.push_str("mode=rwc");
        }
    }
    let busy_timeout = settings.busy_timeout_ms;
    // IMPORTANT: sqlx closes a connection whose query was abandoned (a client
    // went away mid-request) and opens another. In memory that would be a new,
    // empty database: the one in use is named and shared instead, and held
    // open by a connection of its own that never runs a query.
    let anchor = if in_memory {
        if raw.contains(":memory:") {
            let name = uuid::Uuid::new_v4().simple();
            url = format!("sqlite:file:copilot-{name}?mode=memory&cache=shared");
        }
        let anchor = AnyConnection::connect(&url)
            .await
            .map_err(|source| Error::Open {
                url: redacted(raw),
                source,
            })?;
        // In a mutex only because the pool's callback must be `Sync`.
        Some(std::sync::Mutex::new(anchor))
    } else {
        None
    };
    // In memory the pool stays one connection: more would contend for the
    // shared cache's table locks, which SQLite's busy timeout does not wait on.
    let options = if in_memory {
        AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        AnyPoolOptions::new().max_connections(settings.max_connections)
    };
    // A database that is down must fail a request within the same bound as a
    // lock (then ingest answers 503), not sqlx's default 30 s.
    let options = options.acquire_timeout(busy_timeout);
    let options = options.after_connect(move |connection, _| {
        // The pool keeps this closure as long as it lives, and with it the
        // in-memory database's anchor.
        let _anchor = &anchor;
        Box::pin(async move {
            if backend == Backend::Sqlite {
                sqlite_pragmas(connection, busy_timeout, !in_memory).await?;
            }
            Ok(())
        })
    });
    let pool = options.connect(&url).await.map_err(|source| Error::Open {
        url: redacted(raw),
        source,
    })?;
    match backend {
        Backend::Sqlite if console => CONSOLE_MIGRATIONS.run(&pool).await?,
        Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
        Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
    }
    Ok(Db {
        pool,
        backend,
        url,
        in_memory,
        busy_timeout,
    })
}

/// The file of a SQLite database URL; `None` for one in memory or another backend.
pub fn sqlite_file(url: &str) -> Option<&std::path::Path> {
    let url = url.trim();
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    Some(std::path::Path::new(path.split('?').next().unwrap_or(path)))
}
