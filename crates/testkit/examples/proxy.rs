//! Runs a recording proxy in front of a homeserver and prints each request as it completes.
//! Usage: cargo run -p lambda-matrix-testkit --example proxy -- http://127.0.0.1:8008

use lambda_matrix_testkit::RecordingProxy;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let upstream = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8008".into());
    let proxy = RecordingProxy::start(&upstream).await?;
    eprintln!("proxy {} -> {upstream}", proxy.url());
    let mut seen = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let requests = proxy.requests();
        for r in &requests[seen..] {
            eprintln!("{} {} {} ({} ms)", r.method, r.path, r.status, r.at_ms);
        }
        seen = requests.len();
    }
}
