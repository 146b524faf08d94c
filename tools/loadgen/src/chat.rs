//! Socket.IO chat clients (rust_socketio, protocol v5 over a websocket): connect,
//! `session_request` → `session_confirm`, then timed `user_uttered` → `bot_uttered` turns.

use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::join_all;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::stats::Errors;

pub const MESSAGE: &str = "what did I just do?";
const WAIT: Duration = Duration::from_secs(10);
/// How long to wait for `session_confirm` before asking again.
pub const RETRY_AFTER: Duration = Duration::from_secs(3);

#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Error(String),
    Close,
    Confirm,
    /// A reply (`bot_uttered` without `metadata.forceOpen`).
    Reply,
    /// A proactive offer (`bot_uttered` with `metadata.forceOpen`).
    Offer,
    Other,
}

pub struct ChatClient {
    client: Client,
    rx: mpsc::UnboundedReceiver<(Kind, Instant)>,
    pub session: String,
    pub user: String,
    /// `bot_uttered` messages one turn brings (learned in the warm-up).
    pub replies_per_turn: usize,
    pub offers: u64,
    /// The first `session_request` got no `session_confirm` within [`RETRY_AFTER`].
    pub session_request_retried: bool,
}

fn first_value(payload: &Payload) -> Option<&Value> {
    match payload {
        Payload::Text(values) => values.first(),
        _ => None,
    }
}

fn classify(event: &str, payload: &Payload) -> Kind {
    match event {
        "session_confirm" => Kind::Confirm,
        "bot_uttered" => {
            let offer = first_value(payload)
                .and_then(|v| v.get("metadata"))
                .and_then(|m| m.get("forceOpen"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if offer { Kind::Offer } else { Kind::Reply }
        }
        _ => Kind::Other,
    }
}

impl ChatClient {
    /// Connects, waits for the namespace's `connect` (rust_socketio does not buffer
    /// emits before it), then `session_request` and waits for `session_confirm`.
    pub async fn connect(base: &str, user: String, session: String) -> Result<Self, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let any_tx = tx.clone();
        let mut builder = ClientBuilder::new(base)
            .namespace("/")
            .transport_type(TransportType::Websocket)
            .reconnect(false)
            .on_any(move |event, payload, _| {
                let at = Instant::now();
                let _ = any_tx.send((classify(event.as_str(), &payload), at));
                async {}.boxed()
            });
        for event in [Event::Error, Event::Connect, Event::Close] {
            let tx = tx.clone();
            builder = builder.on(event.clone(), move |payload, _| {
                let at = Instant::now();
                let kind = match &event {
                    Event::Connect => Kind::Connect,
                    Event::Close => Kind::Close,
                    _ => Kind::Error(
                        first_value(&payload).map_or_else(|| "error".to_owned(), Value::to_string),
                    ),
                };
                let _ = tx.send((kind, at));
                async {}.boxed()
            });
        }
        let client = tokio::time::timeout(WAIT, builder.connect())
            .await
            .map_err(|_| "engine.io connect timeout".to_owned())?
            .map_err(|e| format!("connect: {}", short(&e.to_string())))?;
        let mut c = ChatClient {
            client,
            rx,
            session,
            user,
            replies_per_turn: 1,
            offers: 0,
            session_request_retried: false,
        };
        c.wait_for(|k| *k == Kind::Connect, "namespace connect")
            .await?;
        c.session_request().await?;
        // A `session_request` sent right after the namespace's CONNECT can be lost
        // by the server (socketioxide sends CONNECT before the spawned async connect
        // handler has registered the event handlers). Ask once more, and count it.
        if c.wait_for_within(|k| *k == Kind::Confirm, "session_confirm", RETRY_AFTER)
            .await
            .is_err()
        {
            c.session_request_retried = true;
            c.session_request().await?;
            c.wait_for(|k| *k == Kind::Confirm, "session_confirm (retried)")
                .await?;
        }
        Ok(c)
    }

    async fn session_request(&self) -> Result<(), String> {
        self.client
            .emit("session_request", json!({ "session_id": self.session }))
            .await
            .map_err(|e| format!("emit: {}", short(&e.to_string())))
    }

    async fn wait_for(&mut self, want: impl Fn(&Kind) -> bool, what: &str) -> Result<(), String> {
        self.wait_for_within(want, what, WAIT).await
    }

    async fn wait_for_within(
        &mut self,
        want: impl Fn(&Kind) -> bool,
        what: &str,
        within: Duration,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some((kind, _))) if want(&kind) => return Ok(()),
                Ok(Some((Kind::Error(e), _))) => {
                    return Err(format!("error before {what}: {}", short(&e)));
                }
                Ok(Some((Kind::Close, _))) | Ok(None) => {
                    return Err(format!("closed before {what}"));
                }
                Ok(Some((Kind::Offer, _))) => self.offers += 1,
                Ok(Some(_)) => {}
                Err(_) => return Err(format!("no {what} within {within:?}")),
            }
        }
    }

    async fn send(&self, message: &str) -> Result<(), String> {
        self.client
            .emit(
                "user_uttered",
                json!({ "message": message, "session_id": self.session,
                        "customData": { "userId": self.user } }),
            )
            .await
            .map_err(|e| format!("emit: {}", short(&e.to_string())))
    }

    fn drain(&mut self) {
        while let Ok((kind, _)) = self.rx.try_recv() {
            if kind == Kind::Offer {
                self.offers += 1;
            }
        }
    }

    /// A warm-up turn: every reply until 300 ms of quiet; learns `replies_per_turn`.
    pub async fn warm_up(&mut self) -> Result<(), String> {
        self.drain();
        self.send(MESSAGE).await?;
        let mut got = 0;
        let mut wait = WAIT;
        loop {
            match tokio::time::timeout(wait, self.rx.recv()).await {
                Ok(Some((Kind::Reply, _))) => {
                    got += 1;
                    wait = Duration::from_millis(300);
                }
                Ok(Some((Kind::Offer, _))) => self.offers += 1,
                Ok(Some((Kind::Close, _))) | Ok(None) => return Err("closed in warm-up".to_owned()),
                Ok(Some(_)) => {}
                Err(_) => break,
            }
        }
        if got == 0 {
            return Err("no reply in warm-up".to_owned());
        }
        self.replies_per_turn = got;
        Ok(())
    }

    /// One timed turn: (time to first reply, time to the turn's last reply).
    pub async fn turn(&mut self, message: &str) -> Result<(Duration, Duration), String> {
        self.drain();
        let t0 = Instant::now();
        self.send(message).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut first = None;
        let mut last = Duration::ZERO;
        let mut got = 0;
        while got < self.replies_per_turn {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some((Kind::Reply, at))) => {
                    got += 1;
                    let d = at.saturating_duration_since(t0);
                    first.get_or_insert(d);
                    last = d;
                }
                Ok(Some((Kind::Offer, _))) => self.offers += 1,
                Ok(Some((Kind::Close, _))) | Ok(None) => return Err("closed".to_owned()),
                Ok(Some(_)) => {}
                Err(_) => {
                    return Err(if got == 0 {
                        "reply timeout"
                    } else {
                        "incomplete reply"
                    }
                    .to_owned());
                }
            }
        }
        Ok((first.unwrap_or(last), last))
    }

    pub async fn disconnect(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.disconnect()).await;
    }
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Opens `n` clients, `batch` at a time (each batch's connects run concurrently).
pub async fn connect_many(
    base: &str,
    n: usize,
    batch: usize,
    ids: impl Fn(usize) -> (String, String),
) -> (Vec<ChatClient>, Errors, Duration) {
    let start = Instant::now();
    let mut clients = Vec::with_capacity(n);
    let mut errors = Errors::default();
    let mut i = 0;
    while i < n {
        let end = (i + batch.max(1)).min(n);
        let futs = (i..end).map(|k| {
            let (user, session) = ids(k);
            ChatClient::connect(base, user, session)
        });
        for r in join_all(futs).await {
            match r {
                Ok(c) => clients.push(c),
                Err(e) => errors.add(e),
            }
        }
        i = end;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (clients, errors, start.elapsed())
}

pub async fn disconnect_all(clients: Vec<ChatClient>) {
    let futs = clients.into_iter().map(ChatClient::disconnect);
    let _ = tokio::time::timeout(Duration::from_secs(20), join_all(futs)).await;
}
