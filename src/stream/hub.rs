//! Per-product fan-out of stream frames. Each product that has ever been
//! subscribed to (or forwards) gets a channel: a `broadcast` queue, whose
//! bounded buffer is each subscriber's queue (a subscriber that falls behind
//! loses its oldest frames and is told how many; the sender never waits), and a
//! ring of recent frames for clients that reconnect with `Last-Event-ID`.
//! Products nobody listens to cost ingest nothing: no channel, no JSON.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use tokio::sync::broadcast;

use super::payload::summary_payload;
use crate::domain::{ProductId, SessionId};
use crate::metrics::Metrics;

/// One event-stream frame: its id, its JSON payload, and the frame as SSE
/// bytes (`id: …\ndata: …\n\n`), encoded once for every subscriber.
#[derive(Debug)]
pub struct Frame {
    pub id: u64,
    pub data: Arc<str>,
    pub sse: Bytes,
}

impl Frame {
    fn new(id: u64, data: String) -> Self {
        // Payloads are single-line JSON, so one `data:` line holds them.
        let sse = Bytes::from(format!("id: {id}\ndata: {data}\n\n"));
        Self {
            id,
            data: data.into(),
            sse,
        }
    }
}

/// What a subscriber reads next.
#[derive(Debug, Clone)]
pub enum Item {
    Frame(Arc<Frame>),
    /// Frames this subscriber will never see: `missed` of them (fell behind,
    /// or reconnected after they left the replay ring); `restarted` when its
    /// `Last-Event-ID` is from before this process started.
    Gap {
        missed: u64,
        restarted: bool,
    },
}

impl Item {
    /// The gap frame's JSON.
    pub fn gap_json(missed: u64, restarted: bool) -> String {
        if restarted {
            format!(r#"{{"type":"gap","missed":{missed},"restarted":true}}"#)
        } else {
            format!(r#"{{"type":"gap","missed":{missed}}}"#)
        }
    }

    /// Appends the item as SSE. A gap has no `id:`, so a client's
    /// `Last-Event-ID` stays on the last frame it really got.
    pub fn write_sse(&self, out: &mut BytesMut) {
        match self {
            Item::Frame(frame) => out.extend_from_slice(&frame.sse),
            Item::Gap { missed, restarted } => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(Self::gap_json(*missed, *restarted).as_bytes());
                out.extend_from_slice(b"\n\n");
            }
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubscribeError {
    #[error("this product already has {0} stream subscribers")]
    TooMany(usize),
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    /// The first frame id of this process (Unix microseconds at start), so ids
    /// keep growing across restarts and an id from before one is recognised.
    boot: u64,
    replay_events: usize,
    subscriber_queue: usize,
    max_subscribers: usize,
    /// Read on every ingest; written only when a product gets its channel.
    channels: RwLock<HashMap<ProductId, Arc<Channel>>>,
    metrics: Metrics,
}

struct Channel {
    state: Mutex<Ring>,
    sender: broadcast::Sender<Arc<Frame>>,
    subscribers: AtomicUsize,
}

struct Ring {
    next_id: u64,
    frames: VecDeque<Arc<Frame>>,
}

impl Hub {
    pub fn new(
        replay_events: usize,
        subscriber_queue: usize,
        max_subscribers: usize,
        metrics: Metrics,
    ) -> Self {
        let boot = chrono::Utc::now().timestamp_micros().max(1) as u64;
        Self {
            inner: Arc::new(Inner {
                boot,
                replay_events,
                subscriber_queue: subscriber_queue.max(1),
                max_subscribers,
                channels: RwLock::new(HashMap::new()),
                metrics,
            }),
        }
    }

    /// True when someone listens to (or forwards) this product's stream, or
    /// did: only then are payloads worth building.
    pub fn wanted(&self, product: &ProductId) -> bool {
        self.inner.channels.read().contains_key(product)
    }

    fn channel(&self, product: &ProductId) -> Arc<Channel> {
        if let Some(channel) = self.inner.channels.read().get(product) {
            return Arc::clone(channel);
        }
        let mut channels = self.inner.channels.write();
        let channel = channels.entry(product.clone()).or_insert_with(|| {
            Arc::new(Channel {
                state: Mutex::new(Ring {
                    next_id: self.inner.boot,
                    frames: VecDeque::new(),
                }),
                sender: broadcast::channel(self.inner.subscriber_queue).0,
                subscribers: AtomicUsize::new(0),
            })
        });
        Arc::clone(channel)
    }

    /// Sends `payloads` (JSON) to the product's subscribers, if it has a channel.
    pub fn publish(&self, product: &ProductId, payloads: impl IntoIterator<Item = String>) {
        let Some(channel) = self.inner.channels.read().get(product).cloned() else {
            return;
        };
        let mut ring = channel.state.lock();
        for data in payloads {
            let frame = Arc::new(Frame::new(ring.next_id, data));
            ring.next_id += 1;
            if self.inner.replay_events > 0 {
                if ring.frames.len() == self.inner.replay_events {
                    ring.frames.pop_front();
                }
                ring.frames.push_back(Arc::clone(&frame));
            }
            // IMPORTANT: sent under the ring's lock, so a new subscriber gets
            // each frame exactly once: from the ring or from the queue.
            // An error only means nobody listens right now.
            let _ = channel.sender.send(frame);
            self.inner.metrics.stream_frames.inc();
        }
    }

    /// A subscriber to the product's frames from now on, after the frames it
    /// missed since `last_event_id`, as far as the ring still holds them.
    /// `limited`: counts against `max_subscribers` (push forwarders do not).
    pub fn subscribe(
        &self,
        product: &ProductId,
        last_event_id: Option<u64>,
        limited: bool,
    ) -> Result<Subscription, SubscribeError> {
        let channel = self.channel(product);
        if limited {
            let before = channel.subscribers.fetch_add(1, Ordering::AcqRel);
            if before >= self.inner.max_subscribers {
                channel.subscribers.fetch_sub(1, Ordering::AcqRel);
                return Err(SubscribeError::TooMany(self.inner.max_subscribers));
            }
            self.inner.metrics.stream_subscribers.inc();
        }
        let ring = channel.state.lock();
        let mut backlog = VecDeque::new();
        if let Some(last) = last_event_id {
            let restarted = last < self.inner.boot;
            // Frames after `last` that this process has published.
            let wanted_from = if restarted { self.inner.boot } else { last + 1 };
            if wanted_from < ring.next_id {
                let oldest = ring.frames.front().map_or(ring.next_id, |f| f.id);
                let missed = oldest.saturating_sub(wanted_from);
                if missed > 0 || restarted {
                    backlog.push_back(Item::Gap { missed, restarted });
                }
                backlog.extend(
                    ring.frames
                        .iter()
                        .filter(|f| f.id >= wanted_from)
                        .cloned()
                        .map(Item::Frame),
                );
            } else if restarted {
                backlog.push_back(Item::Gap {
                    missed: 0,
                    restarted,
                });
            }
        }
        let receiver = channel.sender.subscribe();
        drop(ring);
        Ok(Subscription {
            backlog,
            receiver,
            channel,
            limited,
            metrics: self.inner.metrics.clone(),
        })
    }
}

impl crate::context::SummaryObserver for Hub {
    fn summary_stored(
        &self,
        product: &ProductId,
        session: &SessionId,
        summary: &str,
        replaces: usize,
    ) {
        if self.wanted(product) {
            let payload = summary_payload(product, session, summary, replaces, chrono::Utc::now());
            self.publish(product, [payload]);
        }
    }
}

/// One subscriber: its missed frames first, then live ones.
pub struct Subscription {
    backlog: VecDeque<Item>,
    receiver: broadcast::Receiver<Arc<Frame>>,
    channel: Arc<Channel>,
    limited: bool,
    metrics: Metrics,
}

impl Subscription {
    /// The next frame or gap; `None` once the hub is gone.
    pub async fn next(&mut self) -> Option<Item> {
        if let Some(item) = self.backlog.pop_front() {
            return Some(item);
        }
        match self.receiver.recv().await {
            Ok(frame) => Some(Item::Frame(frame)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                self.metrics.stream_dropped.inc_by(missed);
                Some(Item::Gap {
                    missed,
                    restarted: false,
                })
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next item if one is ready now, without waiting: lets a writer put
    /// every queued frame into one write.
    pub fn try_next(&mut self) -> Option<Item> {
        if let Some(item) = self.backlog.pop_front() {
            return Some(item);
        }
        match self.receiver.try_recv() {
            Ok(frame) => Some(Item::Frame(frame)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                self.metrics.stream_dropped.inc_by(missed);
                Some(Item::Gap {
                    missed,
                    restarted: false,
                })
            }
            Err(_) => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.limited {
            self.channel.subscribers.fetch_sub(1, Ordering::AcqRel);
            self.metrics.stream_subscribers.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str) -> ProductId {
        ProductId::parse(id).unwrap()
    }

    fn ids(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Frame(f) => f.data.to_string(),
                Item::Gap { missed, restarted } => format!("gap {missed} {restarted}"),
            })
            .collect()
    }

    async fn take(sub: &mut Subscription, n: usize) -> Vec<Item> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(sub.next().await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn products_nobody_listens_to_get_no_frames() {
        let hub = Hub::new(10, 4, 10, Metrics::new());
        let acme = product("acme");
        assert!(!hub.wanted(&acme));
        hub.publish(&acme, ["a".to_owned()]);
        let mut sub = hub.subscribe(&acme, None, true).unwrap();
        assert!(hub.wanted(&acme));
        hub.publish(&acme, ["b".to_owned()]);
        assert_eq!(ids(&take(&mut sub, 1).await), ["b"]);
    }

    #[tokio::test]
    async fn a_reconnect_replays_what_it_missed_or_says_how_much_is_gone() {
        let hub = Hub::new(3, 16, 10, Metrics::new());
        let acme = product("acme");
        let mut first = hub.subscribe(&acme, None, true).unwrap();
        hub.publish(&acme, (0..5).map(|i| format!("f{i}")));
        let got = take(&mut first, 5).await;
        let Item::Frame(second) = &got[1] else {
            panic!()
        };
        // Saw f0 and f1: the ring (3) still holds f2..f4.
        let mut again = hub.subscribe(&acme, Some(second.id), true).unwrap();
        assert_eq!(ids(&take(&mut again, 3).await), ["f2", "f3", "f4"]);
        // Saw only f0: f1 is gone.
        let Item::Frame(zeroth) = &got[0] else {
            panic!()
        };
        let mut late = hub.subscribe(&acme, Some(zeroth.id), true).unwrap();
        assert_eq!(
            ids(&take(&mut late, 4).await),
            ["gap 1 false", "f2", "f3", "f4"]
        );
        // An id from before this process: say so, then what it has.
        let mut old = hub.subscribe(&acme, Some(5), true).unwrap();
        assert_eq!(
            ids(&take(&mut old, 4).await),
            ["gap 2 true", "f2", "f3", "f4"]
        );
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_its_oldest_frames_and_is_told() {
        let metrics = Metrics::new();
        let hub = Hub::new(0, 4, 10, metrics.clone());
        let acme = product("acme");
        let mut slow = hub.subscribe(&acme, None, true).unwrap();
        let mut fast = hub.subscribe(&acme, None, true).unwrap();
        for i in 0..6 {
            hub.publish(&acme, [format!("f{i}")]);
            assert_eq!(ids(&take(&mut fast, 1).await), [format!("f{i}")]);
        }
        assert_eq!(
            ids(&take(&mut slow, 5).await),
            ["gap 2 false", "f2", "f3", "f4", "f5"]
        );
        assert_eq!(metrics.stream_dropped.get(), 2);
    }

    #[tokio::test]
    async fn subscribers_are_limited_per_product_and_released_on_drop() {
        let hub = Hub::new(0, 4, 1, Metrics::new());
        let acme = product("acme");
        let first = hub.subscribe(&acme, None, true).unwrap();
        assert_eq!(
            hub.subscribe(&acme, None, true).err(),
            Some(SubscribeError::TooMany(1))
        );
        assert!(hub.subscribe(&product("other"), None, true).is_ok());
        assert!(hub.subscribe(&acme, None, false).is_ok(), "forwarders");
        drop(first);
        assert!(hub.subscribe(&acme, None, true).is_ok());
    }
}
