//! Memory stays bounded over invites (issue 30, point 5): the bot as its own process, strangers
//! inviting it into direct chats it declines, and an allowed person opening extra direct chats
//! and leaving each once answered, at the same time. Every stranger's room is left and
//! forgotten, every extra chat is answered "hello again" once and then left and forgotten, and
//! the bot's resident memory afterwards is within 10 % of where it was after a warm-up. The
//! long version is `scripts/bench --invites N` (docs/BENCHMARKS.md).

use super::common::World;
use lambda_matrix_testkit::invites::{self, Plan};
use std::process::{Child, Stdio};

/// Rooms of each kind measured, and before the baseline.
const N: usize = 80;
const WARM_UP: usize = 20;

/// The bot's process, killed when dropped (also when the test fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_from_strangers_and_extra_chats_leave_the_memory_where_it_was() {
    let world = World::new().await;
    let person = world.synapse.register("anna").await.expect("register");
    let mut strangers = Vec::new();
    for i in 0..3 {
        let stranger = world.synapse.register(&format!("stranger{i}")).await;
        strangers.push(stranger.expect("register"));
    }
    let log = world.dir.path().join("bot.log");
    let mut bot = Killed(
        world
            .binary()
            .arg("run")
            .env("MATRIX_ALLOWED_USERS", &person.user_id)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn the bot"),
    );
    let serving = world
        .serving(0, || matches!(bot.0.try_wait(), Ok(None)))
        .await;
    let tail = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(serving, "the bot stopped early: {}", tail());
    let plan = Plan {
        homeserver: world.synapse.url(),
        bot: world.bot_account.user_id.clone(),
        person,
        strangers,
        warm_up: WARM_UP,
        n: N,
        open_at_once: 2, // MATRIX_MAX_DMS_PER_USER is 3, the first contact's included
        stranger_window: 16,
        pid: bot.0.id(),
    };
    let measured = invites::measure(&plan, &world.synapse, &world.proxy).await;
    drop(bot);
    let measured = measured.unwrap_or_else(|error| panic!("{error:#}\n{}", tail()));
    let (before, after) = (measured.baseline, measured.after);
    eprintln!(
        "{N} + {N} invites in {:.1} s: RSS {} KiB after the warm-up, {} KiB after ({:.3}x), peak {} KiB; not file-backed {} -> {} KiB",
        measured.seconds,
        before.rss,
        after.rss,
        measured.ratio(),
        after.peak,
        before.anon,
        after.anon
    );

    assert_eq!(
        measured.stranger_rooms.len(),
        N,
        "every stranger's room left and forgotten"
    );
    assert_eq!(measured.stranger_sends, 0, "nothing said to strangers");
    assert_eq!(
        measured.extra.len(),
        N,
        "every extra chat left and forgotten"
    );
    for extra in &measured.extra {
        assert!(
            extra.answered_once("Hello again"),
            "one \"hello again\" in {}: {:?}, {} sent",
            extra.room,
            extra.said,
            extra.sends
        );
    }
    assert_eq!(
        (measured.joined_before, measured.joined_after),
        (0, 3),
        "the bot is left in the person's direct chat, Space and C1 only"
    );
    assert!(
        measured.ratio() <= 1.10,
        "RSS {} KiB after, {} KiB before: more than 10 % over",
        after.rss,
        before.rss
    );
}
