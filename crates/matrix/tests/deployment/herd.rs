//! A herd after downtime against a platform that answers one at a time: every waiting message
//! is answered (the platform timeout counts from a call's start, not from its wait), no more
//! than `LAMBDA_MAX_CONCURRENT_ANSWERS` calls run at once, and a person writing during the herd
//! is served before the herd's owner gets another turn (issue 30, point 4).

use super::common::World;
use lambda_matrix_platform::{Answer, MockPlatform, Platform, PlatformError, Progress, Request};
use lambda_matrix_testkit::Person;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The mock platform, counting the calls that run at once and noting who each call is for.
#[derive(Debug)]
pub(super) struct Counting {
    inner: MockPlatform,
    running: AtomicUsize,
    pub(super) peak: AtomicUsize,
    calls: Mutex<Vec<String>>,
}

impl Counting {
    /// Counting calls to the mock `settings` describe.
    pub(super) fn new(settings: &lambda_matrix::Settings) -> Counting {
        Counting {
            inner: MockPlatform::new(settings.platform.mock.clone()),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Forgets the calls noted so far.
    pub(super) fn forget_calls(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Which call (from 0) was the first for a user id starting with `who`, and every call's user.
    pub(super) fn turn_of(&self, who: &str) -> (usize, Vec<String>) {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let turn = calls
            .iter()
            .position(|user| user.starts_with(who))
            .unwrap_or_else(|| panic!("no call for {who}: {calls:?}"));
        (turn, calls)
    }
}

#[async_trait::async_trait]
impl Platform for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }

    async fn answer(&self, request: Request, progress: &Progress) -> Result<Answer, PlatformError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.user_id.clone());
        let answer = self.inner.answer(request, progress).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        answer
    }

    fn accepts(
        &self,
        kind: lambda_matrix_platform::AttachmentKind,
        mime: &str,
    ) -> Result<(), lambda_matrix_platform::Refusal> {
        self.inner.accepts(kind, mime)
    }

    async fn forget_person(&self, user_id: &str) -> Result<(), PlatformError> {
        self.inner.forget_person(user_id).await
    }
}

/// `person`'s first contact and two more chats: their three chat rooms.
pub(super) async fn three_rooms(world: &World, person: &Person) -> Vec<String> {
    let first = world.first_contact(person, false).await;
    let mut rooms = vec![first.c1];
    for name in ["two", "three"] {
        let new = person
            .send(&first.dm, &format!("!new {name}"))
            .await
            .expect("send");
        person.replies_to(&first.dm, &new).await.expect("created");
    }
    rooms.extend(
        person
            .accept_invites(2)
            .await
            .expect("invited")
            .iter()
            .map(|r| r.to_string()),
    );
    rooms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_is_answered_in_turns_and_a_newcomer_is_not_left_behind_it() {
    let world = World::new().await;
    let settings = world.settings(|raw| {
        raw.encrypt_rooms = Some("false".into());
        raw.max_concurrent_answers = Some("1".into());
        raw.mock_delay = Some("1s".into());
        raw.platform_timeout = Some("3s".into());
    });
    let platform = Arc::new(Counting::new(&settings));
    let bot = world
        .start_bot_with(settings.clone(), platform.clone())
        .await;
    let anna = world.person("anna").await;
    let rooms = three_rooms(&world, &anna).await;
    let bob = world.person("bob").await;
    let bobs = world.first_contact(&bob, false).await.c1;
    bot.stop().await;

    // Six messages in three rooms wait for the bot; a call takes 1 s, one at a time, and may
    // take 3 s at most: six in a row would time out if their wait counted.
    let mut herd = Vec::new();
    for room in &rooms {
        for n in 0..2 {
            let text = format!("herd {n}");
            herd.push((
                room.clone(),
                anna.send(room, &text).await.expect("send"),
                text,
            ));
        }
    }
    platform.forget_calls();
    let bot = world.start_bot_with(settings, platform.clone()).await;
    let question = bob.send(&bobs, "me too").await.expect("send");

    let answered = bob
        .replies_to(&bobs, &question)
        .await
        .expect("bob answered");
    assert_eq!(answered[0].body, "[C1] echo: me too");
    for (room, message, text) in &herd {
        let replies = anna.replies_to(room, message).await.expect("answered");
        assert!(
            replies[0].body.ends_with(&format!("echo: {text}")),
            "{}",
            replies[0].body
        );
    }
    assert_eq!(
        platform.peak.load(Ordering::SeqCst),
        1,
        "one call at a time"
    );
    let (bobs_turn, calls) = platform.turn_of("@bob");
    assert!(
        bobs_turn < calls.len() - 3,
        "bob was served before most of the herd, not after it: {calls:?}"
    );
    bot.stop().await;
}
