//! The embedded database: a SQLite pool in WAL mode with the migrations in
//! `migrations/` applied, and the SQL behind the domain's storage traits.
//! Runtime queries (no compile-time database needed); nothing above this
//! module sees sqlx.

pub mod journal;
mod products;

use std::str::FromStr;

use sqlx::ConnectOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

pub use journal::Journal;
pub use products::SqliteProducts;
pub use sqlx::sqlite::SqlitePool as Pool;

use crate::config::DatabaseSettings;

/// Migrations, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `database.url` is not a SQLite URL we can use.
    #[error("database.url '{url}' is not usable: {source}")]
    Url {
        url: String,
        #[source]
        source: sqlx::Error,
    },
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
    /// A migration failed (or the file is from a newer version).
    #[error("could not migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A connection of its own for the journal's writer, on a file database
/// (`None` in memory: there every connection is a database of its own).
/// Opened after `connect`, so the file exists and is migrated.
pub async fn writer_connection(
    settings: &DatabaseSettings,
) -> Result<Option<SqliteConnection>, Error> {
    let url = settings.url.trim();
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| Error::Url {
            url: url.to_owned(),
            source,
        })?
        .foreign_keys(true)
        .busy_timeout(settings.busy_timeout_ms)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    options
        .connect()
        .await
        .map(Some)
        .map_err(|source| Error::Open {
            url: url.to_owned(),
            source,
        })
}

/// Opens (creating if needed) and migrates the database at `settings.url`.
pub async fn connect(settings: &DatabaseSettings) -> Result<SqlitePool, Error> {
    let url = settings.url.trim();
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| Error::Url {
            url: url.to_owned(),
            source,
        })?
        .create_if_missing(true)
        .foreign_keys(true)
        // A second process (the CLI) may hold the write lock for a moment.
        .busy_timeout(settings.busy_timeout_ms);
    let options = if in_memory {
        options
    } else {
        if let Some(folder) = options.get_filename().parent()
            && !folder.as_os_str().is_empty()
        {
            std::fs::create_dir_all(folder).map_err(|source| Error::Folder {
                path: folder.to_owned(),
                source,
            })?;
        }
        // WAL: readers never wait for the writer, and a CLI can write while
        // the server reads. NORMAL is durable across process crashes in WAL.
        options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
    };
    // IMPORTANT: every connection to `sqlite::memory:` is a database of its
    // own, so an in-memory pool is one connection that never closes.
    let pool_options = if in_memory {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(settings.max_connections)
    };
    let pool = pool_options
        .connect_with(options)
        .await
        .map_err(|source| Error::Open {
            url: url.to_owned(),
            source,
        })?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
