//! Latency histograms and Markdown tables.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

const MAX_US: u64 = 300_000_000;

/// Latencies in microseconds (3 significant digits, 1 µs .. 300 s).
#[derive(Clone)]
pub struct Lat(Histogram<u64>);

impl Default for Lat {
    fn default() -> Self {
        Self::new()
    }
}

impl Lat {
    pub fn new() -> Self {
        #[allow(clippy::expect_used)]
        Self(Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"))
    }

    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        let _ = self.0.record(us);
    }

    pub fn merge(&mut self, other: &Lat) {
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// A quantile in milliseconds, as text ("-" when empty).
    pub fn q_ms(&self, q: f64) -> String {
        if self.0.is_empty() {
            return "-".to_owned();
        }
        ms(self.0.value_at_quantile(q))
    }

    pub fn max_ms(&self) -> String {
        if self.0.is_empty() {
            return "-".to_owned();
        }
        ms(self.0.max())
    }

    pub fn mean_ms(&self) -> String {
        if self.0.is_empty() {
            return "-".to_owned();
        }
        format!("{:.3}", self.0.mean() / 1000.0)
    }

    pub fn p99_us(&self) -> Option<u64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(0.99))
    }
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// Error counts by kind.
#[derive(Default, Clone)]
pub struct Errors(pub BTreeMap<String, u64>);

impl Errors {
    pub fn add(&mut self, kind: impl Into<String>) {
        *self.0.entry(kind.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Errors) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn summary(&self) -> String {
        if self.0.is_empty() {
            return "0".to_owned();
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{v} {k}")).collect();
        format!("{} ({})", self.total(), parts.join(", "))
    }
}

/// A Markdown table, columns padded so it reads in a terminal too.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        let cols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = (0..cols)
                .map(|i| {
                    let cell = cells.get(i).map_or("", String::as_str);
                    format!("{cell:<w$}", w = widths[i])
                })
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        println!("{}", line(&self.headers));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        println!("|-{}-|", rule.join("-|-"));
        for row in &self.rows {
            println!("{}", line(row));
        }
        println!();
    }
}

/// Two-column key/value table.
pub fn kv(title: &str, pairs: Vec<(&str, String)>) {
    println!("{title}");
    println!();
    let mut t = Table::new(&["metric", "value"]);
    for (k, v) in pairs {
        t.row(vec![k.to_owned(), v]);
    }
    t.print();
}

/// Least-squares slope of (x, y) points.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}
