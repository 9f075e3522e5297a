//! Memory over many invites (issue 30, point 5): the bot, serving behind the proxy with one
//! allowed person, gets `n` direct chats from strangers (declined, left, forgotten) and `n`
//! extra direct chats from the person (answered "hello again", left by the person, then by the
//! bot), at the same time, after a warm-up of each kind; its resident memory before and after,
//! its peak, and the time taken. The driving is `lambda_matrix_testkit::invites`, shared with
//! the `deployment::memory` test.

use crate::startup::{self, BotRunner};
use lambda_matrix_testkit::invites::{self, Measured, Plan};
use lambda_matrix_testkit::{RecordingProxy, Synapse};
use std::fmt::Write as _;

/// Strangers taking turns inviting the bot.
const STRANGERS: usize = 4;

/// Runs `n` invites of each kind against a bot started for it, then stops the bot.
pub async fn run(
    synapse: &Synapse,
    proxy: &RecordingProxy,
    runner: &BotRunner,
    n: usize,
) -> anyhow::Result<Measured> {
    let person = synapse.register("invites-person").await?;
    let mut strangers = Vec::new();
    for i in 0..STRANGERS {
        strangers.push(synapse.register(&format!("invites-stranger{i}")).await?);
    }
    proxy.clear();
    let allowed = [("MATRIX_ALLOWED_USERS", person.user_id.as_str())];
    let (mut bot, _metrics) = runner.serve_with(&proxy.url(), &allowed).await?;
    let plan = Plan {
        homeserver: synapse.url(),
        bot: runner.account.user_id.clone(),
        person,
        strangers,
        warm_up: (n / 10).clamp(20, 200),
        n,
        // MATRIX_MAX_DMS_PER_USER is 3, the first contact's direct chat included.
        open_at_once: 2,
        stranger_window: 16,
        pid: bot.id(),
    };
    eprintln!(
        "invites: first contact, {} of each kind to warm up, then {n} of each kind ...",
        plan.warm_up
    );
    let measured = invites::measure(&plan, synapse, proxy).await;
    startup::stop(&mut bot)?;
    let measured = measured?;
    let once = measured
        .extra
        .iter()
        .filter(|e| e.answered_once("Hello again"));
    let (answered, rooms) = (once.count(), measured.joined_after - measured.joined_before);
    anyhow::ensure!(
        measured.stranger_sends == 0 && answered == n && rooms == 3,
        "{} messages to strangers, {answered} of {n} extra chats answered \"hello again\" once, {rooms} rooms more joined (3 expected: the person's)",
        measured.stranger_sends,
    );
    Ok(measured)
}

/// The result as a Markdown table of one row.
pub fn write(out: &mut String, m: &Measured) -> std::fmt::Result {
    let mib = |kib: u64| kib as f64 / 1024.0;
    writeln!(out, "\n| invites from strangers | extra direct chats, left by the person | RSS after warm-up (MiB) | RSS after (MiB) | ratio | peak RSS (MiB) | of which not file-backed, before / after (MiB) | time (s) |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    writeln!(
        out,
        "| {} | {} | {:.1} | {:.1} | {:.3} | {:.1} | {:.1} / {:.1} | {:.0} |",
        m.stranger_rooms.len(),
        m.extra.len(),
        mib(m.baseline.rss),
        mib(m.after.rss),
        m.ratio(),
        mib(m.after.peak),
        mib(m.baseline.anon),
        mib(m.after.anon),
        m.seconds
    )
}
