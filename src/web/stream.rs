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
use crate::stream::{BatchSubscription, Chunk, SubscribeError, deflate_block};

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
        .subscribe_batches(&product.id, last_event_id)
        .map_err(|SubscribeError::TooMany(n)| {
            AppError::TooManySubscribers(format!(
                "product '{}' already has {n} stream subscribers ([stream] max_subscribers)",
                product.id
            ))
        })?;
    let gzip = accepts_gzip(&headers);
    let body = Body::from_stream(frames(
        subscription,
        state.settings.stream.heartbeat_seconds,
        gzip,
        state.shutdown.clone(),
    ));
    let mut response = (
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
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

const HEARTBEAT: &[u8] = b"event: heartbeat\ndata: \n\n";

/// A gzip member header (RFC 1952: deflate, no name, no time, unknown OS);
/// deflate blocks follow. The stream never ends normally, so no trailer.
const GZIP_HEADER: &[u8] = &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// `Accept-Encoding` names gzip (with a q-value other than 0).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let q_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !q_zero
        })
}

/// The subscription as SSE bytes. Live frames come in batches that the hub
/// sealed once for every subscriber, as plain SSE or as one deflated block,
/// and are written as they are: fanning a frame out costs a subscriber no
/// encoding, no copy and no compression. Frames missed before a reconnect,
/// gap frames and heartbeats are this subscriber's own (compressed alone
/// when it takes gzip). A heartbeat goes out after `heartbeat` without
/// frames; the stream ends when the server shuts down (an endless response
/// would hold graceful shutdown forever).
fn frames(
    subscription: BatchSubscription,
    heartbeat: Duration,
    gzip: bool,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let heartbeat = heartbeat.max(Duration::from_millis(10));
    let own = move |raw: &[u8]| {
        if gzip {
            deflate_block(raw)
        } else {
            Bytes::copy_from_slice(raw)
        }
    };
    stream::unfold(
        (subscription, shutdown, gzip),
        move |(mut subscription, shutdown, header_due)| async move {
            if header_due {
                return Some((
                    Ok(Bytes::from_static(GZIP_HEADER)),
                    (subscription, shutdown, false),
                ));
            }
            let next = tokio::select! {
                () = shutdown.cancelled() => return None,
                chunk = tokio::time::timeout(heartbeat, subscription.next()) => chunk,
            };
            let bytes = match next {
                Err(_elapsed) => own(HEARTBEAT),
                Ok(None) => return None,
                Ok(Some(Chunk::Batch(batch))) if gzip => batch.deflated.clone(),
                Ok(Some(Chunk::Batch(batch))) => batch.raw.clone(),
                Ok(Some(Chunk::Item(item))) => {
                    let mut raw = BytesMut::new();
                    item.write_sse(&mut raw);
                    own(&raw)
                }
            };
            Some((Ok(bytes), (subscription, shutdown, false)))
        },
    )
}
