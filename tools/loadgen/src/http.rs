//! Closed-loop HTTP load: C workers on keep-alive connections, each sending the
//! next request as soon as the previous answer is read, for a fixed time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::stats::{Errors, Lat};

pub fn client(conns: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(conns.max(1))
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Builds one request; gets the worker's rng.
pub type MakeRequest =
    dyn Fn(&reqwest::Client, &mut StdRng) -> reqwest::RequestBuilder + Send + Sync;
/// Checks a 2xx body; false counts the request as "not accepted".
pub type CheckBody = dyn Fn(&[u8]) -> bool + Send + Sync;

#[derive(Default)]
pub struct LoadResult {
    pub ok: u64,
    pub not_accepted: u64,
    pub errors: Errors,
    pub lat: Lat,
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

pub async fn closed_loop(
    http: &reqwest::Client,
    conns: usize,
    duration: Duration,
    make: Arc<MakeRequest>,
    check: Option<Arc<CheckBody>>,
) -> LoadResult {
    load(http, conns, duration, make, check, None).await
}

/// As `closed_loop`, but each worker sends one request per `every` (an open
/// loop at `conns / every` requests per second, as long as answers keep up).
pub async fn paced_loop(
    http: &reqwest::Client,
    conns: usize,
    duration: Duration,
    every: Duration,
    make: Arc<MakeRequest>,
    check: Option<Arc<CheckBody>>,
) -> LoadResult {
    load(http, conns, duration, make, check, Some(every)).await
}

async fn load(
    http: &reqwest::Client,
    conns: usize,
    duration: Duration,
    make: Arc<MakeRequest>,
    check: Option<Arc<CheckBody>>,
    every: Option<Duration>,
) -> LoadResult {
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::with_capacity(conns);
    for _ in 0..conns {
        let http = http.clone();
        let make = make.clone();
        let check = check.clone();
        handles.push(tokio::spawn(async move {
            let mut rng = StdRng::from_os_rng();
            let mut r = LoadResult::default();
            let mut pace = every.map(|every| {
                let mut interval = tokio::time::interval(every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                interval
            });
            while Instant::now() < deadline {
                if let Some(pace) = &mut pace {
                    pace.tick().await;
                }
                let req = make(&http, &mut rng);
                let t0 = Instant::now();
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        match resp.bytes().await {
                            Ok(body) => {
                                r.lat.record(t0.elapsed());
                                if status.is_success() {
                                    r.ok += 1;
                                    if let Some(check) = &check
                                        && !check(&body)
                                    {
                                        r.not_accepted += 1;
                                    }
                                } else {
                                    r.errors.add(format!("HTTP {}", status.as_u16()));
                                }
                            }
                            Err(e) => r.errors.add(classify(&e)),
                        }
                    }
                    Err(e) => {
                        r.errors.add(classify(&e));
                        // A refused or reset connection fails fast: do not spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            r
        }));
    }
    let mut total = LoadResult::default();
    for h in handles {
        if let Ok(r) = h.await {
            total.ok += r.ok;
            total.not_accepted += r.not_accepted;
            total.errors.merge(&r.errors);
            total.lat.merge(&r.lat);
        } else {
            total.errors.add("worker panicked");
        }
    }
    total.elapsed = start.elapsed();
    total
}

pub fn classify(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connect error".to_owned()
    } else if e.is_body() || e.is_decode() {
        "body error".to_owned()
    } else {
        "request error".to_owned()
    }
}
