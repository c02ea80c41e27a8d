//! [`Scraper`]: a thread that GETs a server's `/metrics` at a fixed rate, as Prometheus
//! would (only much more often), until stopped; for `ocm-load --scrape`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a scraper saw.
#[derive(Clone, Debug, Default)]
pub struct Scraped {
    /// Scrapes answered 200.
    pub ok: u64,
    /// Scrapes that failed or were not 200.
    pub failed: u64,
    /// Bytes of the last body.
    pub bytes: usize,
    /// Every `ocm_metrics_snapshot_seconds` seen: how long the owner loop spent copying
    /// the snapshot for each scrape.
    pub copies: Vec<Duration>,
    /// The longest a scrape took, from request to the end of the body.
    pub max_latency: Duration,
}

/// A running scraper; [`Scraper::stop`] ends it.
pub struct Scraper {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Scraped>,
}

impl Scraper {
    /// Starts GETting `http://addr/metrics` `per_second` times a second.
    pub fn start(addr: SocketAddr, per_second: u32) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let every = Duration::from_secs(1) / per_second.max(1);
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into();
            let url = format!("http://{addr}/metrics");
            let mut seen = Scraped::default();
            let mut next = Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                let started = Instant::now();
                match agent.get(&url).call() {
                    Ok(mut response) if response.status() == 200 => {
                        let body = response.body_mut().read_to_string().unwrap_or_default();
                        seen.max_latency = seen.max_latency.max(started.elapsed());
                        seen.ok += 1;
                        seen.bytes = body.len();
                        if let Some(copy) = snapshot_seconds(&body) {
                            seen.copies.push(copy);
                        }
                    }
                    _ => seen.failed += 1,
                }
                next += every;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            seen
        });
        Scraper { stop, thread }
    }

    /// Stops and says what was seen.
    pub fn stop(self) -> Scraped {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .expect("the scraper thread does not panic")
    }
}

impl Scraped {
    /// The `q` quantile (0 to 1) of the copy times (zero when there are none).
    pub fn copy_quantile(&self, q: f64) -> Duration {
        let mut copies = self.copies.clone();
        copies.sort();
        let i = ((copies.len() as f64 - 1.0) * q).round().max(0.0) as usize;
        copies.get(i).copied().unwrap_or_default()
    }

    /// Adds what `other` saw.
    pub fn add(&mut self, other: Scraped) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.bytes = other.bytes;
        self.copies.extend(other.copies);
        self.max_latency = self.max_latency.max(other.max_latency);
    }
}

/// `ocm_metrics_snapshot_seconds` in a scrape.
fn snapshot_seconds(body: &str) -> Option<Duration> {
    let line = body
        .lines()
        .find(|l| l.starts_with("ocm_metrics_snapshot_seconds "))?;
    let value: f64 = line.split(' ').nth(1)?.parse().ok()?;
    Duration::try_from_secs_f64(value).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_snapshot_time_is_read_from_its_line() {
        let body =
            "# TYPE ocm_metrics_snapshot_seconds gauge\nocm_metrics_snapshot_seconds 0.0000025\n";
        let copy = super::snapshot_seconds(body).unwrap();
        assert_eq!(copy, std::time::Duration::from_nanos(2500));
        assert_eq!(super::snapshot_seconds("ocm_rooms 1\n"), None);
    }
}
