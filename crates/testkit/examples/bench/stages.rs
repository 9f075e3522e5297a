//! The serving bot's own account of where an answer's time went: the p50 (from the buckets)
//! and the mean of its `lambda_matrix_answer_stage_seconds` histograms (received, queued,
//! prepared, platform, first_sent, delivered), read from its `/metrics` after a round, printed
//! beside the yardstick's round trip. A mean is pulled by the burst of people at once; the
//! p50 is the single message's.

/// The stages, in the order an answer passes them.
pub use lambda_matrix_testkit::ANSWER_STAGES as STAGES;

/// One stage over the answers of one serving bot, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stage {
    /// The median, interpolated within its bucket (as Prometheus' `histogram_quantile`).
    pub p50: f64,
    /// The mean.
    pub mean: f64,
}

/// Each stage, in [`STAGES`] order.
pub async fn read(metrics: &str) -> anyhow::Result<[Stage; STAGES.len()]> {
    let text = reqwest::Client::new()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(parse(&text))
}

/// [`read`] from a `/metrics` text.
fn parse(text: &str) -> [Stage; STAGES.len()] {
    let value = |what: &str, stage: &str| -> f64 {
        let prefix = format!("lambda_matrix_answer_stage_seconds_{what}{{stage=\"{stage}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let mut stages = [Stage::default(); STAGES.len()];
    for (out, stage) in stages.iter_mut().zip(STAGES) {
        let count = value("count", stage);
        if count > 0.0 {
            out.mean = value("sum", stage) / count * 1000.0;
            out.p50 = median(&buckets(text, stage), count) * 1000.0;
        }
    }
    stages
}

/// A stage's cumulative buckets: (upper bound in seconds, count), in order, `+Inf` left out.
fn buckets(text: &str, stage: &str) -> Vec<(f64, f64)> {
    let prefix = format!("lambda_matrix_answer_stage_seconds_bucket{{stage=\"{stage}\",le=\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (bound, count) = rest.split_once("\"} ")?;
            Some((bound.parse().ok()?, count.trim().parse().ok()?))
        })
        .filter(|(bound, _): &(f64, f64)| bound.is_finite())
        .collect()
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
    #[test]
    fn the_median_is_read_from_the_buckets() {
        let text = "lambda_matrix_answer_stage_seconds_bucket{stage=\"queued\",le=\"0.001\"} 4\n\
            lambda_matrix_answer_stage_seconds_bucket{stage=\"queued\",le=\"0.005\"} 8\n\
            lambda_matrix_answer_stage_seconds_bucket{stage=\"queued\",le=\"+Inf\"} 10\n\
            lambda_matrix_answer_stage_seconds_sum{stage=\"queued\"} 0.1\n\
            lambda_matrix_answer_stage_seconds_count{stage=\"queued\"} 10\n";
        let queued = super::parse(text)[1];
        // Rank 5 of 10: one of the four between 1 ms and 5 ms.
        assert!((queued.p50 - 2.0).abs() < 1e-9, "{}", queued.p50);
        assert!((queued.mean - 10.0).abs() < 1e-9);
        assert_eq!(super::parse(text)[0].p50, 0.0, "no answers in that stage");
    }
}
