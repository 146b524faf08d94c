//! A chat turn watched as it happens, for clients that show the answer while
//! it is written (Intercom's Fin agent API works this way): `thinking` when
//! the turn starts, `replying` with the whole text so far while the LLM
//! writes, `complete` with the final text, then the turn's messages. Channels
//! turn these events into their own wire frames (Socket.IO `bot_stream`, SSE);
//! a channel whose reader goes away drops the receiver, which stops the LLM.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::copilot::{Copilot, Live, TurnResult, UserMessage};

/// Where a live turn is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Thinking,
    Replying,
    Complete,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Thinking => "thinking",
            Status::Replying => "replying",
            Status::Complete => "complete",
        }
    }
}

/// One step of a live turn's answer. `text` is the whole text so far (empty
/// while thinking; at `complete`, the drafted message's final text, or empty
/// when the turn had no grounded answer, e.g. only a canned response), so a
/// reader that misses a step misses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub message_id: String,
    pub status: Status,
    pub text: String,
}

#[derive(Debug)]
pub enum LiveEvent {
    Progress(Progress),
    /// The turn is over; `drafted` says which message the draft became.
    Done(TurnResult),
}

/// At most one `replying` step per this long: each is the whole text, so a
/// fast model does not cost one frame per token.
const STEP_EVERY: Duration = Duration::from_millis(50);

/// A live turn under way.
pub struct LiveTurn {
    /// Names the drafted answer in every step and in its final message.
    pub message_id: String,
    /// Steps, ending with [`LiveEvent::Done`].
    pub events: mpsc::Receiver<LiveEvent>,
}

/// Runs `message` as a live turn on its own task. Dropping the events'
/// receiver, or cancelling `cancel`, stops the LLM call; the turn still ends
/// and is kept.
pub fn run(copilot: Copilot, message: UserMessage, cancel: CancellationToken) -> LiveTurn {
    let (events, receiver) = mpsc::channel(8);
    let message_id = uuid::Uuid::new_v4().simple().to_string();
    let id = message_id.clone();
    tokio::spawn(async move {
        let step = |status, text| {
            LiveEvent::Progress(Progress {
                message_id: message_id.clone(),
                status,
                text,
            })
        };
        if events
            .send(step(Status::Thinking, String::new()))
            .await
            .is_err()
        {
            cancel.cancel();
        }
        let (draft, mut written) = watch::channel(String::new());
        let live = Live {
            draft,
            cancel: cancel.clone(),
        };
        let turn = copilot.handle_live(&message, Some(&live));
        tokio::pin!(turn);
        let mut ticks = tokio::time::interval(STEP_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                result = &mut turn => break result,
                _ = ticks.tick() => {
                    if written.has_changed().unwrap_or(false) && !cancel.is_cancelled() {
                        let text = written.borrow_and_update().clone();
                        if events.send(step(Status::Replying, text)).await.is_err() {
                            cancel.cancel();
                        }
                    }
                }
                () = events.closed(), if !cancel.is_cancelled() => cancel.cancel(),
            }
        };
        let final_text = result
            .drafted
            .and_then(|i| result.messages.get(i))
            .and_then(|m| m.as_text())
            .unwrap_or_default()
            .to_owned();
        // A reader that left is not told; the turn is kept all the same.
        if events
            .send(step(Status::Complete, final_text))
            .await
            .is_ok()
        {
            let _ = events.send(LiveEvent::Done(result)).await;
        }
    });
    LiveTurn {
        message_id: id,
        events: receiver,
    }
}
