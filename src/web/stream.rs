//! `GET /stream/{product_id}`: the activity stream as server-sent events, in
//! the hosted connector's format (autoplay-sdk's `ConnectorClient` and
//! `AsyncConnectorClient` read it unchanged). Order of checks: product (404),
//! stream key (401), subscriber limit (429); all answer JSON before any
//! event-stream byte, so a client cannot mistake a refusal for a stream.

use std::convert::Infallible;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use tokio_util::sync::CancellationToken;

use super::AppError;
use crate::state::AppState;
use crate::stream::{Item, SubscribeError, Subscription};

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
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::MissingStreamKey)?;
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
    let heartbeat = KeepAlive::new()
        .interval(state.settings.stream.heartbeat_seconds)
        .event(Event::default().event("heartbeat").data(""));
    let events = frames(subscription, state.shutdown.clone());
    let mut response = Sse::new(events).keep_alive(heartbeat).into_response();
    // Proxies (nginx) must pass frames on as they come.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(response)
}

/// The subscription as SSE events, ending when the server shuts down (an
/// endless response would hold graceful shutdown forever).
fn frames(
    subscription: Subscription,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (subscription, shutdown),
        |(mut subscription, shutdown)| async move {
            let item = tokio::select! {
                () = shutdown.cancelled() => None,
                item = subscription.next() => item,
            }?;
            let event = match item {
                Item::Frame(frame) => Event::default().id(frame.id.to_string()).data(&*frame.data),
                // No id: the client's Last-Event-ID stays on the last real frame.
                Item::Gap { missed, restarted } => {
                    Event::default().data(Item::gap_json(missed, restarted))
                }
            };
            Some((Ok(event), (subscription, shutdown)))
        },
    )
}
