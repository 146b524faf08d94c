//! A light raw Socket.IO client for holding many idle sockets: the Engine.IO v4
//! websocket handshake (`/socket.io/?EIO=4&transport=websocket`), `40` to join
//! the `/` namespace, and `3` in answer to every server ping `2`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::stats::Errors;

#[derive(Default)]
pub struct Counters {
    /// Sockets whose namespace connect was answered and that are still open.
    pub live: AtomicU64,
    /// Sockets the server closed (or that failed) after connecting.
    pub dropped: AtomicU64,
    /// Pings answered.
    pub pongs: AtomicU64,
}

pub struct Pool {
    pub counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

fn ws_url(base: &str) -> String {
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("ws://"))
        .unwrap_or(base);
    format!("ws://{rest}/socket.io/?EIO=4&transport=websocket")
}

impl Pool {
    pub fn new() -> Self {
        let (stop, _) = watch::channel(false);
        Self {
            counters: Arc::new(Counters::default()),
            stop,
            handles: Vec::new(),
        }
    }

    /// Opens `n` sockets, `batch` at a time, waiting for each batch's namespace
    /// answers before the next (no SYN flood). Returns failures by kind and time taken.
    pub async fn open(&mut self, base: &str, n: usize, batch: usize) -> (Errors, Duration) {
        let url = ws_url(base);
        let start = Instant::now();
        let mut errors = Errors::default();
        let mut i = 0;
        while i < n {
            let end = (i + batch.max(1)).min(n);
            let mut waits = Vec::with_capacity(end - i);
            for _ in i..end {
                let (tx, rx) = oneshot::channel();
                let url = url.clone();
                let stop = self.stop.subscribe();
                let counters = self.counters.clone();
                self.handles
                    .push(tokio::spawn(hold_one(url, stop, counters, tx)));
                waits.push(rx);
            }
            for r in join_all(waits).await {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errors.add(e),
                    Err(_) => errors.add("task ended"),
                }
            }
            i = end;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (errors, start.elapsed())
    }

    /// Closes every socket and waits (bounded) for the tasks to end.
    pub async fn close(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), join_all(self.handles)).await;
    }
}

async fn hold_one(
    url: String,
    mut stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
    ready: oneshot::Sender<Result<(), String>>,
) {
    let config = WebSocketConfig {
        // Idle sockets: keep buffers small.
        write_buffer_size: 0,
        ..WebSocketConfig::default()
    };
    let connected = tokio::time::timeout(Duration::from_secs(15), async {
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                .await
                .map_err(|e| format!("ws connect: {}", short(&e.to_string())))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if t.starts_with("40") {
                        return Ok(ws);
                    } else if t.starts_with("44") {
                        return Err("namespace connect refused".to_owned());
                    } else if t.starts_with('0') {
                        // Engine.IO open packet: join the `/` namespace.
                        ws.send(Message::Text("40".into()))
                            .await
                            .map_err(|e| format!("send: {}", short(&e.to_string())))?;
                    } else if t == "2" {
                        let _ = ws.send(Message::Text("3".into())).await;
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Err("closed in handshake".to_owned()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("ws: {}", short(&e.to_string()))),
            }
        }
    })
    .await;
    let mut ws = match connected {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            let _ = ready.send(Err(e));
            return;
        }
        Err(_) => {
            let _ = ready.send(Err("handshake timeout (15 s)".to_owned()));
            return;
        }
    };
    counters.live.fetch_add(1, Ordering::SeqCst);
    let _ = ready.send(Ok(()));
    loop {
        tokio::select! {
            _ = stop.changed() => {
                counters.live.fetch_sub(1, Ordering::SeqCst);
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return;
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) if t == "2" => {
                    if ws.send(Message::Text("3".into())).await.is_err() {
                        break;
                    }
                    counters.pongs.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    }
    counters.live.fetch_sub(1, Ordering::SeqCst);
    counters.dropped.fetch_add(1, Ordering::SeqCst);
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}
