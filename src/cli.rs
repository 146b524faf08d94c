//! The command line beyond `serve`: `copilot-server products add|list|rotate|remove`.
//! The same registry code path as `POST /products`, on the same database as a
//! running server (SQLite in WAL mode; the server re-reads products every
//! `database.product_refresh_seconds`). Returns the text to print.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::config::Settings;
use crate::domain::{IdError, ProductId};
use crate::products::{self, Registration, Rotation};
use crate::startup::{StartupError, open_products};
use crate::web::products::{Onboarded, ProductView};

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Onboard and manage products.
    #[command(subcommand)]
    Products(ProductsCommand),
}

#[derive(Subcommand)]
pub enum ProductsCommand {
    /// Register a product; prints its URLs and keys (shown once).
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        contact_email: String,
        /// Use this webhook secret instead of a generated one.
        #[arg(long)]
        webhook_secret: Option<String>,
        /// Push every stream payload to this URL (http or https, public address).
        #[arg(long)]
        forward_url: Option<String>,
        /// Sign pushes with this secret (`X-Connector-Signature`).
        #[arg(long, requires = "forward_url")]
        forward_secret: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Set (or, with an empty --url, stop) push delivery of a product's stream.
    Forward {
        #[arg(long)]
        id: String,
        #[arg(long)]
        url: String,
        /// Sign pushes with this secret (`X-Connector-Signature`).
        #[arg(long)]
        secret: Option<String>,
    },
    /// List products (no secrets).
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Issue a new webhook secret (the old one works for
    /// `admin.secret_grace_seconds`), and the other keys asked for.
    Rotate {
        #[arg(long)]
        id: String,
        /// Use this webhook secret instead of a generated one.
        #[arg(long)]
        webhook_secret: Option<String>,
        #[arg(long)]
        stream_key: bool,
        #[arg(long)]
        api_key: bool,
        #[arg(long)]
        identity_secret: bool,
        #[arg(long)]
        posthog_api_key: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Remove a product.
    Remove {
        #[arg(long)]
        id: String,
    },
}

#[derive(Args)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database or the config's products could not be opened.
    #[error(transparent)]
    Open(#[from] StartupError),
    /// The product operation was refused or failed.
    #[error(transparent)]
    Products(#[from] products::Error),
    /// `--forward-url` / `--url` was refused.
    #[error("forward url {0}")]
    ForwardUrl(#[from] crate::domain::UrlError),
    /// `--id` is not a product id.
    #[error("--id {0}; use 1-64 characters of a-z, 0-9, '-' or '_'")]
    Id(#[from] IdError),
}

/// Base URL for printed URLs: `admin.public_url`, else the bind address.
fn base_url(settings: &Settings) -> String {
    let configured = settings.admin.public_url.trim().trim_end_matches('/');
    if configured.is_empty() {
        format!("http://{}", settings.address())
    } else {
        configured.to_owned()
    }
}

/// A checked push target; `None` for an empty URL (push off).
async fn forward(
    settings: &Settings,
    url: &str,
    secret: Option<String>,
) -> Result<Option<products::Forward>, Error> {
    if url.trim().is_empty() {
        return Ok(None);
    }
    let url = crate::domain::ForwardUrl::parse(url)?;
    crate::stream::check_forward_url(&url, settings.stream.allow_private_forward).await?;
    Ok(Some(products::Forward { url, secret }))
}

/// Runs one products command; the result is what to print on stdout.
pub async fn run_products(settings: &Settings, command: ProductsCommand) -> Result<String, Error> {
    let products = open_products(settings).await?;
    let base = base_url(settings);
    let onboarded = |id: &ProductId, credentials, output: &Output| {
        let onboarded = Onboarded::new(&base, id, credentials);
        if output.json {
            serde_json::to_string_pretty(&onboarded).unwrap_or_default()
        } else {
            describe(&onboarded)
        }
    };
    match command {
        ProductsCommand::Add {
            id,
            contact_email,
            webhook_secret,
            forward_url,
            forward_secret,
            output,
        } => {
            let id = ProductId::parse(&id)?;
            let forward = match forward_url {
                Some(url) => forward(settings, &url, forward_secret).await?,
                None => None,
            };
            let credentials = products
                .register(Registration {
                    id: id.clone(),
                    contact_email,
                    webhook_secret,
                    forward,
                })
                .await?;
            Ok(onboarded(&id, credentials, &output))
        }
        ProductsCommand::Forward { id, url, secret } => {
            let id = ProductId::parse(&id)?;
            let target = forward(settings, &url, secret).await?;
            let on = target.is_some();
            products
                .update(
                    &id,
                    products::Changes {
                        forward: Some(target),
                        ..Default::default()
                    },
                )
                .await?;
            Ok(if on {
                format!("{id}: stream payloads are pushed to {url}")
            } else {
                format!("{id}: push delivery off")
            })
        }
        ProductsCommand::List { output } => {
            let all = products.list().await?;
            let views: Vec<ProductView> = all.iter().map(|p| ProductView::new(&base, p)).collect();
            if output.json {
                Ok(serde_json::to_string_pretty(&views).unwrap_or_default())
            } else {
                let lines: Vec<String> = all
                    .iter()
                    .map(|p| {
                        format!(
                            "{}\t{}\tidentity_required={}\t{}/webhook/{}",
                            p.id,
                            p.contact_email.as_deref().unwrap_or("-"),
                            p.identity_required,
                            base,
                            p.id
                        )
                    })
                    .collect();
                Ok(lines.join("\n"))
            }
        }
        ProductsCommand::Rotate {
            id,
            webhook_secret,
            stream_key,
            api_key,
            identity_secret,
            posthog_api_key,
            output,
        } => {
            let id = ProductId::parse(&id)?;
            let credentials = products
                .rotate(
                    &id,
                    Rotation {
                        webhook_secret,
                        stream_key,
                        api_key,
                        identity_secret,
                        posthog_api_key,
                    },
                )
                .await?;
            Ok(onboarded(&id, credentials, &output))
        }
        ProductsCommand::Remove { id } => {
            let id = ProductId::parse(&id)?;
            products.remove(&id).await?;
            Ok(json!({ "removed": id }).to_string())
        }
    }
}

/// `key: value` lines, keys that were not issued left out.
fn describe(onboarded: &Onboarded) -> String {
    let value = serde_json::to_value(onboarded).unwrap_or_default();
    let mut lines = Vec::new();
    if let Some(map) = value.as_object() {
        for key in [
            "product_id",
            "webhook_url",
            "webhook_secret",
            "stream_url",
            "stream_key",
            "unkey_key_id",
            "api_key",
            "identity_secret",
            "posthog_api_key",
        ] {
            if let Some(text) = map.get(key).and_then(|v| v.as_str()) {
                lines.push(format!("{key}: {text}"));
            }
        }
    }
    lines.push("Keys are shown once; store them now.".to_owned());
    lines.join("\n")
}
