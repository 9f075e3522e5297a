//! The serving bot's own account of where an answer's time went: the means of its
//! `lambda_matrix_answer_stage_seconds` histograms (received, queued, prepared, platform,
//! first_sent, delivered),
//! read from its `/metrics` after a round, printed beside the yardstick's round trip.

/// The stages, in the order an answer passes them.
pub use lambda_matrix_testkit::ANSWER_STAGES as STAGES;

/// Mean milliseconds per stage, in [`STAGES`] order, over the answers of one serving bot.
pub async fn means(metrics: &str) -> anyhow::Result<[f64; STAGES.len()]> {
    let text = reqwest::Client::new()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let value = |what: &str, stage: &str| -> f64 {
        let prefix = format!("lambda_matrix_answer_stage_seconds_{what}{{stage=\"{stage}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let mut means = [0.0; STAGES.len()];
    for (mean, stage) in means.iter_mut().zip(STAGES) {
        let count = value("count", stage);
        if count > 0.0 {
            *mean = value("sum", stage) / count * 1000.0;
        }
    }
    Ok(means)
}
