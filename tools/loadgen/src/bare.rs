//! The baseline for ingest: a bare axum server that reads the webhook body,
//! parses it as JSON (into `serde_json::Value`, nothing else) and answers 200.
//! No auth, no store, no database: the most any HTTP + JSON server on this
//! machine can do with the same requests. Run as its own process
//! (`loadgen bare-server --port P`), so it competes for the cores as the
//! server under test does. `--durable FILE` runs the durable floor instead
//! (`floor.rs`).

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};

async fn webhook(body: Bytes) -> StatusCode {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

pub async fn serve(port: u16) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/webhook/{product}", post(webhook))
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
