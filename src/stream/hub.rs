//! Per-product fan-out of stream frames. Each product that has ever been
//! subscribed to (or forwards) gets a channel with:
//! - a ring of recent frames, for clients that reconnect with `Last-Event-ID`;
//! - a `broadcast` queue of frames, for push delivery (`subscribe`);
//! - a batcher that seals the frames of every `batch` into one `Batch`, SSE
//!   bytes and deflated bytes made once, and a `broadcast` queue of batches
//!   for SSE subscribers (`subscribe_batches`).
//!
//! A queue's bounded buffer is each of its subscribers' queue: one that falls
//! behind loses its oldest frames and is told how many; the sender never
//! waits. Products nobody listens to cost ingest nothing: no channel, no JSON.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, broadcast};

use super::payload::summary_payload;
use crate::domain::ProductId;
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

/// Frames sealed together for SSE subscribers every `batch`: their SSE bytes,
/// once, and the same bytes deflated once (a full-flush block, which any
/// gzip stream can carry). Every subscriber writes these very bytes.
#[derive(Debug)]
pub struct Batch {
    pub first_id: u64,
    pub last_id: u64,
    pub raw: Bytes,
    pub deflated: Bytes,
}

/// Deflates `raw` as one self-contained block (full flush, no header), so
/// blocks from any compressor can follow each other in one gzip stream.
pub fn deflate_block(raw: &[u8]) -> Bytes {
    let mut compress = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut out = Vec::with_capacity(raw.len() / 4 + 64);
    loop {
        let consumed = compress.total_in() as usize;
        // Cannot fail for in-memory input with room to grow; a failure
        // would only cut the block short.
        if compress
            .compress_vec(&raw[consumed..], &mut out, flate2::FlushCompress::Full)
            .is_err()
        {
            break;
        }
        if compress.total_in() as usize == raw.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    Bytes::from(out)
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
    batch: Duration,
    /// Read on every ingest; written only when a product gets its channel.
    channels: RwLock<HashMap<ProductId, Arc<Channel>>>,
    metrics: Metrics,
}

struct Channel {
    state: Mutex<Ring>,
    sender: broadcast::Sender<Arc<Frame>>,
    batches: broadcast::Sender<Arc<Batch>>,
    /// Wakes the channel's batcher when the first frame of a batch arrives.
    wake: Notify,
    subscribers: AtomicUsize,
}

struct Ring {
    next_id: u64,
    frames: VecDeque<Arc<Frame>>,
    /// Published, not yet sealed into a batch.
    pending: Vec<Arc<Frame>>,
    /// The last id sealed into a batch (`boot - 1` before the first).
    sealed_upto: u64,
}

impl Hub {
    pub fn new(
        replay_events: usize,
        subscriber_queue: usize,
        max_subscribers: usize,
        batch: Duration,
        metrics: Metrics,
    ) -> Self {
        let boot = chrono::Utc::now().timestamp_micros().max(1) as u64;
        Self {
            inner: Arc::new(Inner {
                boot,
                replay_events,
                subscriber_queue: subscriber_queue.max(1),
                max_subscribers,
                batch,
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
        if let Some(channel) = channels.get(product) {
            return Arc::clone(channel);
        }
        let channel = Arc::new(Channel {
            state: Mutex::new(Ring {
                next_id: self.inner.boot,
                frames: VecDeque::new(),
                pending: Vec::new(),
                sealed_upto: self.inner.boot - 1,
            }),
            sender: broadcast::channel(self.inner.subscriber_queue).0,
            // A batch holds many frames: the queue is about as long in frames.
            batches: broadcast::channel(self.inner.subscriber_queue.div_ceil(64).max(4)).0,
            wake: Notify::new(),
            subscribers: AtomicUsize::new(0),
        });
        channels.insert(product.clone(), Arc::clone(&channel));
        tokio::spawn(seal_batches(Arc::downgrade(&channel), self.inner.batch));
        channel
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
            if ring.pending.is_empty() {
                channel.wake.notify_one();
            }
            ring.pending.push(Arc::clone(&frame));
            // IMPORTANT: sent under the ring's lock, so a new subscriber gets
            // each frame exactly once: from the ring or from the queue.
            // An error only means nobody listens right now.
            let _ = channel.sender.send(frame);
            self.inner.metrics.stream_frames.inc();
        }
    }

    /// An SSE subscriber: as `subscribe`, but live frames come in sealed
    /// batches, written as they are by every subscriber.
    pub fn subscribe_batches(
        &self,
        product: &ProductId,
        last_event_id: Option<u64>,
    ) -> Result<BatchSubscription, SubscribeError> {
        let channel = self.channel(product);
        let slot = self.admit(&channel)?;
        let ring = channel.state.lock();
        let backlog = self.backlog(&ring, last_event_id, ring.sealed_upto + 1);
        // Frames after the last sealed batch come in the next one.
        let last_sent = last_event_id
            .filter(|last| *last >= self.inner.boot)
            .map_or(ring.sealed_upto, |last| last.max(ring.sealed_upto));
        let receiver = channel.batches.subscribe();
        drop(ring);
        Ok(BatchSubscription {
            backlog,
            receiver,
            last_sent,
            held: None,
            _slot: slot,
            metrics: self.inner.metrics.clone(),
        })
    }

    /// One of the product's `max_subscribers` places, held until dropped.
    fn admit(&self, channel: &Arc<Channel>) -> Result<Slot, SubscribeError> {
        let before = channel.subscribers.fetch_add(1, Ordering::AcqRel);
        if before >= self.inner.max_subscribers {
            channel.subscribers.fetch_sub(1, Ordering::AcqRel);
            return Err(SubscribeError::TooMany(self.inner.max_subscribers));
        }
        self.inner.metrics.stream_subscribers.inc();
        Ok(Slot {
            channel: Arc::clone(channel),
            metrics: self.inner.metrics.clone(),
        })
    }

    /// What a client that saw `last_event_id` missed, up to (not including)
    /// `until`: a gap if some of it is gone, then the frames the ring holds.
    fn backlog(&self, ring: &Ring, last_event_id: Option<u64>, until: u64) -> VecDeque<Item> {
        let mut backlog = VecDeque::new();
        let Some(last) = last_event_id else {
            return backlog;
        };
        let restarted = last < self.inner.boot;
        let wanted_from = if restarted { self.inner.boot } else { last + 1 };
        if wanted_from < until {
            let oldest = ring.frames.front().map_or(until, |f| f.id);
            let missed = oldest.min(until).saturating_sub(wanted_from);
            if missed > 0 || restarted {
                backlog.push_back(Item::Gap { missed, restarted });
            }
            backlog.extend(
                ring.frames
                    .iter()
                    .filter(|f| f.id >= wanted_from && f.id < until)
                    .cloned()
                    .map(Item::Frame),
            );
        } else if restarted {
            backlog.push_back(Item::Gap {
                missed: 0,
                restarted,
            });
        }
        backlog
    }

    /// A subscriber to the product's frames one by one (push delivery), from
    /// now on, after the frames it missed since `last_event_id` as far as the
    /// ring still holds them. Not counted against `max_subscribers`, which is
    /// for SSE clients.
    pub fn subscribe(&self, product: &ProductId, last_event_id: Option<u64>) -> Subscription {
        let channel = self.channel(product);
        let ring = channel.state.lock();
        let backlog = self.backlog(&ring, last_event_id, ring.next_id);
        let receiver = channel.sender.subscribe();
        drop(ring);
        Subscription {
            backlog,
            receiver,
            metrics: self.inner.metrics.clone(),
        }
    }
}

/// A channel's batcher: after the first frame of a batch, waits `batch`,
/// seals what came in that time, and sends it to SSE subscribers. Ends with
/// its channel.
async fn seal_batches(channel: Weak<Channel>, batch: Duration) {
    loop {
        let Some(strong) = channel.upgrade() else {
            return;
        };
        strong.wake.notified().await;
        if !batch.is_zero() {
            tokio::time::sleep(batch).await;
        }
        let frames = std::mem::take(&mut strong.state.lock().pending);
        let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
            continue;
        };
        let mut raw = BytesMut::with_capacity(frames.iter().map(|f| f.sse.len()).sum());
        for frame in &frames {
            raw.extend_from_slice(&frame.sse);
        }
        let deflated = deflate_block(&raw);
        let sealed = Arc::new(Batch {
            first_id: first.id,
            last_id: last.id,
            raw: raw.freeze(),
            deflated,
        });
        let mut ring = strong.state.lock();
        ring.sealed_upto = sealed.last_id;
        // Under the lock, as frames are: see `subscribe_batches`.
        let _ = strong.batches.send(sealed);
    }
}

/// What an SSE subscriber writes next.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// Missed frames (or a gap) from the ring, for this subscriber alone.
    Item(Item),
    /// A sealed batch, shared by every subscriber.
    Batch(Arc<Batch>),
}

/// An SSE subscriber: its missed frames first, then sealed batches.
pub struct BatchSubscription {
    backlog: VecDeque<Item>,
    receiver: broadcast::Receiver<Arc<Batch>>,
    /// The last frame id this subscriber has been given.
    last_sent: u64,
    /// A batch to give after the gap frame that announces what it skipped.
    held: Option<Arc<Batch>>,
    _slot: Slot,
    metrics: Metrics,
}

impl BatchSubscription {
    /// The next chunk; `None` once the hub is gone.
    pub async fn next(&mut self) -> Option<Chunk> {
        if let Some(item) = self.backlog.pop_front() {
            return Some(Chunk::Item(item));
        }
        if let Some(batch) = self.held.take() {
            return Some(Chunk::Batch(batch));
        }
        loop {
            match self.receiver.recv().await {
                // Already given from the ring.
                Ok(batch) if batch.last_id <= self.last_sent => continue,
                Ok(batch) => {
                    let missed = batch.first_id.saturating_sub(self.last_sent + 1);
                    self.last_sent = batch.last_id;
                    if missed == 0 {
                        return Some(Chunk::Batch(batch));
                    }
                    // Fell behind: say how much is gone, then this batch.
                    self.metrics.stream_dropped.inc_by(missed);
                    self.held = Some(batch);
                    return Some(Chunk::Item(Item::Gap {
                        missed,
                        restarted: false,
                    }));
                }
                // The next batch's first id tells how many frames are gone.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl crate::context::SummaryObserver for Hub {
    fn summary_stored(&self, summary: &crate::context::StoredSummary<'_>) {
        if self.wanted(summary.product) {
            let payload = summary_payload(
                summary.product,
                summary.session,
                summary.text,
                summary.replaces,
                chrono::Utc::now(),
            );
            self.publish(summary.product, [payload]);
        }
    }
}

/// One subscriber: its missed frames first, then live ones.
pub struct Subscription {
    backlog: VecDeque<Item>,
    receiver: broadcast::Receiver<Arc<Frame>>,
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
}

/// A place among a product's SSE subscribers; given back when dropped.
struct Slot {
    channel: Arc<Channel>,
    metrics: Metrics,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.channel.subscribers.fetch_sub(1, Ordering::AcqRel);
        self.metrics.stream_subscribers.dec();
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
        let hub = Hub::new(10, 4, 10, Duration::ZERO, Metrics::new());
        let acme = product("acme");
        assert!(!hub.wanted(&acme));
        hub.publish(&acme, ["a".to_owned()]);
        let mut sub = hub.subscribe(&acme, None);
        assert!(hub.wanted(&acme));
        hub.publish(&acme, ["b".to_owned()]);
        assert_eq!(ids(&take(&mut sub, 1).await), ["b"]);
    }

    #[tokio::test]
    async fn a_reconnect_replays_what_it_missed_or_says_how_much_is_gone() {
        let hub = Hub::new(3, 16, 10, Duration::ZERO, Metrics::new());
        let acme = product("acme");
        let mut first = hub.subscribe(&acme, None);
        hub.publish(&acme, (0..5).map(|i| format!("f{i}")));
        let got = take(&mut first, 5).await;
        let Item::Frame(second) = &got[1] else {
            panic!()
        };
        // Saw f0 and f1: the ring (3) still holds f2..f4.
        let mut again = hub.subscribe(&acme, Some(second.id));
        assert_eq!(ids(&take(&mut again, 3).await), ["f2", "f3", "f4"]);
        // Saw only f0: f1 is gone.
        let Item::Frame(zeroth) = &got[0] else {
            panic!()
        };
        let mut late = hub.subscribe(&acme, Some(zeroth.id));
        assert_eq!(
            ids(&take(&mut late, 4).await),
            ["gap 1 false", "f2", "f3", "f4"]
        );
        // An id from before this process: say so, then what it has.
        let mut old = hub.subscribe(&acme, Some(5));
        assert_eq!(
            ids(&take(&mut old, 4).await),
            ["gap 2 true", "f2", "f3", "f4"]
        );
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_its_oldest_frames_and_is_told() {
        let metrics = Metrics::new();
        let hub = Hub::new(0, 4, 10, Duration::ZERO, metrics.clone());
        let acme = product("acme");
        let mut slow = hub.subscribe(&acme, None);
        let mut fast = hub.subscribe(&acme, None);
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

    async fn take_batches(sub: &mut BatchSubscription, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(match sub.next().await.unwrap() {
                Chunk::Batch(b) => {
                    let raw = String::from_utf8_lossy(&b.raw).to_string();
                    let inflated = {
                        use std::io::Write;
                        let mut d = flate2::write::DeflateDecoder::new(Vec::new());
                        d.write_all(&b.deflated).unwrap();
                        d.flush().unwrap();
                        String::from_utf8_lossy(d.get_ref()).to_string()
                    };
                    assert_eq!(raw, inflated, "the deflated block holds the same frames");
                    let datas: Vec<&str> = raw
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: "))
                        .collect();
                    format!("batch {}", datas.join(","))
                }
                Chunk::Item(Item::Gap { missed, restarted }) => format!("gap {missed} {restarted}"),
                Chunk::Item(Item::Frame(f)) => f.data.to_string(),
            });
        }
        out
    }

    #[tokio::test]
    async fn sse_subscribers_get_sealed_batches_and_are_told_what_they_lost() {
        let hub = Hub::new(10, 256, 10, Duration::from_millis(20), Metrics::new());
        let acme = product("acme");
        let mut sub = hub.subscribe_batches(&acme, None).unwrap();
        hub.publish(&acme, ["a".to_owned(), "b".to_owned()]);
        hub.publish(&acme, ["c".to_owned()]);
        // One batch: all three came within 20 ms.
        assert_eq!(take_batches(&mut sub, 1).await, ["batch a,b,c"]);

        // A reconnect after "a": the ring gives b and c, then live batches.
        let mut frames = hub.subscribe(&acme, None);
        hub.publish(&acme, ["d".to_owned()]);
        let Item::Frame(d) = frames.next().await.unwrap() else {
            panic!()
        };
        assert_eq!(take_batches(&mut sub, 1).await, ["batch d"]);
        let mut again = hub.subscribe_batches(&acme, Some(d.id - 3)).unwrap();
        hub.publish(&acme, ["e".to_owned()]);
        assert_eq!(
            take_batches(&mut again, 4).await,
            ["b", "c", "d", "batch e"]
        );

        // A subscriber more than its queue (4 batches) behind.
        let mut slow = hub.subscribe_batches(&acme, None).unwrap();
        for i in 0..6 {
            hub.publish(&acme, [format!("x{i}")]);
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        assert_eq!(
            take_batches(&mut slow, 3).await,
            ["gap 2 false", "batch x2", "batch x3"]
        );
    }

    #[tokio::test]
    async fn subscribers_are_limited_per_product_and_released_on_drop() {
        let hub = Hub::new(0, 4, 1, Duration::ZERO, Metrics::new());
        let acme = product("acme");
        let first = hub.subscribe_batches(&acme, None).unwrap();
        assert_eq!(
            hub.subscribe_batches(&acme, None)
                .err()
                .map(|e| e.to_string()),
            Some(SubscribeError::TooMany(1).to_string())
        );
        assert!(hub.subscribe_batches(&product("other"), None).is_ok());
        let _forwarder = hub.subscribe(&acme, None);
        drop(first);
        assert!(hub.subscribe_batches(&acme, None).is_ok());
    }
}
