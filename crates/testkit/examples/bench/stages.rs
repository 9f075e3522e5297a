//! The serving bot's own account of where an answer's time went: its
//! `lambda_matrix_answer_stage_seconds` histograms (received, queued, prepared, platform,
//! first_sent, delivered), read from its `/metrics`, as a p50 (from the buckets) and a mean per
//! stage, beside the yardstick's round trip. A mean is pulled by the burst of people at once;
//! the p50 is the single message's. Two reads of one process give the answers between them.

/// The stages, in the order an answer passes them.
pub use lambda_matrix_testkit::ANSWER_STAGES as STAGES;

/// One stage over some answers, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stage {
    /// The median, interpolated within its bucket (as Prometheus' `histogram_quantile`).
    pub p50: f64,
    /// The mean.
    pub mean: f64,
}

/// One stage's histogram as read: cumulative buckets (upper bound in seconds, count; `+Inf`
/// left out), the sum in seconds and the count.
#[derive(Clone, Debug, Default)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

/// Every stage's histogram, in [`STAGES`] order.
#[derive(Clone, Debug, Default)]
pub struct Histograms([Histogram; STAGES.len()]);

impl Histograms {
    /// The answers counted here and not in `earlier` (a read of the same process before).
    pub fn since(&self, earlier: &Histograms) -> Histograms {
        let mut out = self.clone();
        for (now, before) in out.0.iter_mut().zip(&earlier.0) {
            for ((_, count), (_, was)) in now.buckets.iter_mut().zip(&before.buckets) {
                *count -= was;
            }
            now.sum -= before.sum;
            now.count -= before.count;
        }
        out
    }

    /// Adds the answers of `other` (another process: the same buckets).
    pub fn add(&mut self, other: &Histograms) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            if mine.buckets.is_empty() {
                mine.buckets = theirs
                    .buckets
                    .iter()
                    .map(|(bound, _)| (*bound, 0.0))
                    .collect();
            }
            for ((_, count), (_, more)) in mine.buckets.iter_mut().zip(&theirs.buckets) {
                *count += more;
            }
            mine.sum += theirs.sum;
            mine.count += theirs.count;
        }
    }

    /// Whether no answer is counted.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|h| h.count == 0.0)
    }

    /// Each stage's p50 and mean.
    pub fn summary(&self) -> [Stage; STAGES.len()] {
        let mut stages = [Stage::default(); STAGES.len()];
        for (out, h) in stages.iter_mut().zip(&self.0) {
            if h.count > 0.0 {
                out.mean = h.sum / h.count * 1000.0;
                out.p50 = median(&h.buckets, h.count) * 1000.0;
            }
        }
        stages
    }
}

/// Reads the histograms of the bot serving `/metrics` at `metrics`.
pub async fn read(metrics: &str) -> anyhow::Result<Histograms> {
    let text = reqwest::Client::new()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(parse(&text))
}

/// [`read`] from a `/metrics` text.
fn parse(text: &str) -> Histograms {
    let value = |what: &str, stage: &str| -> f64 {
        let prefix = format!("lambda_matrix_answer_stage_seconds_{what}{{stage=\"{stage}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let mut out = Histograms::default();
    for (h, stage) in out.0.iter_mut().zip(STAGES) {
        let prefix = format!("lambda_matrix_answer_stage_seconds_bucket{{stage=\"{stage}\",le=\"");
        h.buckets = text
            .lines()
            .filter_map(|line| line.strip_prefix(prefix.as_str()))
            .filter_map(|rest| {
                let (bound, count) = rest.split_once("\"} ")?;
                Some((bound.parse().ok()?, count.trim().parse().ok()?))
            })
            .filter(|(bound, _): &(f64, f64)| bound.is_finite())
            .collect();
        h.sum = value("sum", stage);
        h.count = value("count", stage);
    }
    out
}

/// The median of `count` observations in cumulative `buckets`: linear within the bucket that
/// holds it (the last bound if it lies beyond them).
fn median(buckets: &[(f64, f64)], count: f64) -> f64 {
    let rank = count / 2.0;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(bound, cumulative) in buckets {
        if cumulative >= rank {
            let inside = cumulative - below;
            return if inside > 0.0 {
                lower + (bound - lower) * (rank - below) / inside
            } else {
                bound
            };
        }
        (lower, below) = (bound, cumulative);
    }
    lower
}

#[cfg(test)]
mod tests {
    fn metrics(below_1ms: u32, below_5ms: u32, all: u32, sum: f64) -> super::Histograms {
        super::parse(&format!(
            "lambda_matrix_answer_stage_seconds_bucket{{stage=\"queued\",le=\"0.001\"}} {below_1ms}\n\
             lambda_matrix_answer_stage_seconds_bucket{{stage=\"queued\",le=\"0.005\"}} {below_5ms}\n\
             lambda_matrix_answer_stage_seconds_bucket{{stage=\"queued\",le=\"+Inf\"}} {all}\n\
             lambda_matrix_answer_stage_seconds_sum{{stage=\"queued\"}} {sum}\n\
             lambda_matrix_answer_stage_seconds_count{{stage=\"queued\"}} {all}\n"
        ))
    }

    #[test]
    fn the_median_is_read_from_the_buckets_and_between_two_reads() {
        let first = metrics(4, 8, 10, 0.1);
        let queued = first.summary()[1];
        // Rank 5 of 10: one of the four between 1 ms and 5 ms.
        assert!((queued.p50 - 2.0).abs() < 1e-9, "{}", queued.p50);
        assert!((queued.mean - 10.0).abs() < 1e-9);
        assert_eq!(first.summary()[0].p50, 0.0, "no answers in that stage");
        // Ten more, all between 1 and 5 ms: their median is the middle of that bucket.
        let later = metrics(4, 18, 20, 0.13).since(&first);
        assert!((later.summary()[1].p50 - 3.0).abs() < 1e-9);
        assert!((later.summary()[1].mean - 3.0).abs() < 1e-9);
        let mut pooled = super::Histograms::default();
        pooled.add(&first);
        pooled.add(&later);
        assert!((pooled.summary()[1].mean - 6.5).abs() < 1e-9);
        assert!(!pooled.is_empty() && super::Histograms::default().is_empty());
    }
}
