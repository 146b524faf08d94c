//! Group commit, for the journal's writer and the Redis log's: whatever
//! queued while one batch was being written goes into the next, so under
//! load one write carries many requests and an idle server writes each at
//! once (no timer to wait for).

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Writes one batch (and tells its jobs how it went).
pub trait Batches<J> {
    fn write(&mut self, batch: &mut Vec<J>) -> impl Future<Output = ()> + Send;
}

/// Writes batches of at most `max` jobs from `rx` until `closed`, then what
/// is still queued, and returns.
pub async fn run<J>(
    mut rx: mpsc::Receiver<J>,
    closed: CancellationToken,
    max: usize,
    mut sink: impl Batches<J>,
) {
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => batch.push(job),
                None => break,
            },
            () = closed.cancelled() => {
                rx.close();
                while let Ok(job) = rx.try_recv() {
                    batch.push(job);
                }
                if !batch.is_empty() {
                    sink.write(&mut batch).await;
                }
                break;
            }
        }
        while batch.len() < max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        sink.write(&mut batch).await;
    }
}
