//! `GET /stream/{product_id}`: the activity stream as server-sent events, in
//! the hosted connector's format (autoplay-sdk's `ConnectorClient` and
//! `AsyncConnectorClient` read it unchanged). Order of checks: product (404),
//! stream key (401), subscriber limit (429); all answer JSON before any
//! event-stream byte, so a client cannot mistake a refusal for a stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, Stream};
use tokio_util::sync::CancellationToken;

use super::AppError;
use crate::state::AppState;
use crate::stream::{SubscribeError, Subscription};

pub fn routes() -> Router<AppState> {
    Router::new().route("/stream/{product_id}", get(stream_subscribe))
}

async fn stream_subscribe(
    State(state): State<AppState>,
    Path(product_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    tracing::Span::current().record("product", product_id.as_str());
    let product = state
        .products
        .find(&product_id)
        .ok_or(AppError::UnknownProduct(product_id))?;
    let presented = super::auth::bearer(&headers).ok_or(AppError::MissingStreamKey)?;
    if !product
        .stream_key
        .is_some_and(|digest| digest.matches(presented))
    {
        return Err(AppError::BadStreamKey(product.id.clone()));
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let subscription = state
        .stream
        .subscribe(&product.id, last_event_id, true)
        .map_err(|SubscribeError::TooMany(n)| {
            AppError::TooManySubscribers(format!(
                "product '{}' already has {n} stream subscribers ([stream] max_subscribers)",
                product.id
            ))
        })?;
    let body = Body::from_stream(frames(
        subscription,
        state.settings.stream.heartbeat_seconds,
        state.settings.stream.batch,
        state.shutdown.clone(),
    ));
    let response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // Proxies (nginx) must pass frames on as they come.
            (
                HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response();
    Ok(response)
}

/// Most bytes put into one write.
const MAX_WRITE_BYTES: usize = 64 * 1024;

const HEARTBEAT: &[u8] = b"event: heartbeat\ndata: \n\n";

/// The subscription as SSE bytes. Once a frame is there, the stream waits
/// `batch`, then sends every frame queued by then as one chunk: under load a
/// subscriber wakes and writes once per batch instead of once per frame
/// (frames are encoded once, at publish, for every subscriber; copying them
/// into one buffer is cheaper than handing hyper many small ones). A
/// heartbeat goes out after `heartbeat` without frames; the stream ends when
/// the server shuts down (an endless response would hold graceful shutdown
/// forever).
fn frames(
    subscription: Subscription,
    heartbeat: Duration,
    batch: Duration,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let heartbeat = heartbeat.max(Duration::from_millis(10));
    stream::unfold(
        (subscription, shutdown),
        move |(mut subscription, shutdown)| async move {
            let next = tokio::select! {
                () = shutdown.cancelled() => return None,
                item = tokio::time::timeout(heartbeat, subscription.next()) => item,
            };
            let chunk = match next {
                Err(_elapsed) => Bytes::from_static(HEARTBEAT),
                Ok(None) => return None,
                Ok(Some(item)) => {
                    if !batch.is_zero() {
                        tokio::select! {
                            () = shutdown.cancelled() => return None,
                            () = tokio::time::sleep(batch) => {}
                        }
                    }
                    let mut out = BytesMut::with_capacity(MAX_WRITE_BYTES);
                    item.write_sse(&mut out);
                    while out.len() < MAX_WRITE_BYTES {
                        let Some(item) = subscription.try_next() else {
                            break;
                        };
                        item.write_sse(&mut out);
                    }
                    out.freeze()
                }
            };
            Some((Ok(chunk), (subscription, shutdown)))
        },
    )
}
