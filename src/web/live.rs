//! A live turn as server-sent events, for HTTP clients that ask for
//! `text/event-stream`: `bot_stream` events (`{message_id, status, text}`, as
//! the Socket.IO channel emits them) while the answer is written, then the
//! endpoint's own final events. A client that disconnects drops the stream,
//! which stops the LLM call.

use std::convert::Infallible;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::Value;

use crate::channels::payloads;
use crate::dialogue::TurnResult;
use crate::dialogue::live::{LiveEvent, LiveTurn};

/// Whether the request asked for server-sent events.
pub fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// One SSE event of `name` carrying `data` as JSON.
pub fn event(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// The turn's steps as `bot_stream` events, then what `finish` makes of the
/// result (given the drafted message's id).
pub fn sse<F>(
    turn: LiveTurn,
    finish: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<F>>
where
    F: FnOnce(TurnResult, &str) -> Vec<Event> + Send + 'static,
{
    let LiveTurn { message_id, events } = turn;
    let state = (events, Some(finish), message_id, Vec::<Event>::new());
    let stream = futures_util::stream::unfold(
        state,
        |(mut events, mut finish, message_id, mut pending)| async move {
            loop {
                if let Some(next) = pending.pop() {
                    return Some((Ok(next), (events, finish, message_id, pending)));
                }
                match events.recv().await? {
                    LiveEvent::Progress(progress) => {
                        let next = event("bot_stream", &payloads::progress_frame(&progress));
                        return Some((Ok(next), (events, finish, message_id, pending)));
                    }
                    LiveEvent::Done(result) => {
                        let finish = finish.take()?;
                        pending = finish(result, &message_id);
                        // Popped from the end: keep their order.
                        pending.reverse();
                    }
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
