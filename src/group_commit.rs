//! Group commit, for the journal's writer and the Redis log's: whatever
//! queued while one batch was being written goes into the next, so under
//! load one write carries many requests and an idle server writes each at
//! once (no timer to wait for).

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How many times the writer lets the scheduler run other tasks before it
/// takes a batch. The first job wakes the writer at once (tokio runs a task
/// woken by another next, on the same worker), so without this a batch held
/// the one request that woke it and the few that queued during the last
/// write; requests parsed a moment later waited for the next write. Under
/// ingest load on 2 cores, 4 passes took the batches from about 4 requests
/// to about 15 and cut the server's CPU per durable request by a fifth
/// (BENCHMARKS.md); 16 cost more than they saved. An idle server pays a few
/// microseconds: each pass finds nothing else to run.
const FILL_PASSES: usize = 4;

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
        for pass in 0..=FILL_PASSES {
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if batch.len() >= max || pass == FILL_PASSES {
                break;
            }
            tokio::task::yield_now().await;
        }
        sink.write(&mut batch).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::oneshot;

    use super::*;

    /// Records each batch's size and answers its jobs.
    struct Sizes(Arc<Mutex<Vec<usize>>>);

    impl Batches<oneshot::Sender<()>> for Sizes {
        async fn write(&mut self, batch: &mut Vec<oneshot::Sender<()>>) {
            self.0.lock().unwrap().push(batch.len());
            for done in batch.drain(..) {
                let _ = done.send(());
            }
        }
    }

    /// Requests that become ready together, as a burst of handlers does,
    /// share a write, though the first of them wakes the writer on its own.
    #[test]
    fn a_burst_of_ready_requests_shares_one_write() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let sizes = Arc::new(Mutex::new(Vec::new()));
        runtime.block_on(async {
            let (tx, rx) = mpsc::channel(64);
            let closed = CancellationToken::new();
            let writer = tokio::spawn(run(rx, closed.clone(), 64, Sizes(sizes.clone())));
            for _round in 0..20 {
                let go = Arc::new(tokio::sync::Barrier::new(8));
                let requests: Vec<_> = (0..8)
                    .map(|_| {
                        let (tx, go) = (tx.clone(), go.clone());
                        tokio::spawn(async move {
                            go.wait().await;
                            let (done, wait) = oneshot::channel();
                            tx.send(done).await.unwrap();
                            wait.await.unwrap();
                        })
                    })
                    .collect();
                for request in requests {
                    request.await.unwrap();
                }
            }
            closed.cancel();
            writer.await.unwrap();
        });
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 160);
        assert_eq!(sizes.len(), 20, "one write per burst: {sizes:?}");
    }

    /// Nothing else to run: the one job is written at once, and everything
    /// queued before the close is still written.
    #[tokio::test]
    async fn a_lone_job_is_written_and_the_close_writes_what_is_queued() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel(64);
        let closed = CancellationToken::new();
        let writer = tokio::spawn(run(rx, closed.clone(), 64, Sizes(sizes.clone())));
        let (done, wait) = oneshot::channel();
        tx.send(done).await.unwrap();
        wait.await.unwrap();
        assert_eq!(*sizes.lock().unwrap(), [1]);
        let (late, late_wait) = oneshot::channel();
        tx.send(late).await.unwrap();
        closed.cancel();
        writer.await.unwrap();
        late_wait.await.unwrap();
        assert_eq!(sizes.lock().unwrap().iter().sum::<usize>(), 2);
    }
}
