//! One chat's own model and instructions (issue 31, point 4): chosen with `!model` and
//! `!instructions`, kept in the chat room's settings record on the homeserver, so they hold
//! after a restart that lost both the cache and the SDK store; other chats keep the defaults;
//! the person cannot write the record themselves; the OpenAI-compatible server receives the
//! chat's model and its instructions after the operator's prompt.

use super::common::World;
use lambda_matrix_platform::fake_openai::{FakeOpenAi, FakeOptions};
use serde_json::json;

const SETTINGS_RECORD: &str = "org.lambda.matrix.settings";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chats_model_and_instructions_hold_across_a_start_without_cache_or_store() {
    let world = World::new().await;
    let settings = || {
        world.settings(|raw| {
            raw.mock_models = Some("mock, fast,smart".into());
            raw.max_instructions_chars = Some("40".into());
        })
    };
    let bot = world.start_bot(settings()).await;
    let anna = world.person("anna").await;
    let first = world.first_contact(&anna, false).await;
    let (dm, c1) = (first.dm, first.c1);
    assert!(anna
        .room(&c1)
        .expect("c1")
        .encryption_state()
        .is_encrypted());

    let listed = anna.ask(&c1, "!model").await.expect("!model");
    assert!(
        listed.contains("mock ✅") && listed.contains("fast") && listed.contains("smart"),
        "{listed}"
    );
    let refused = anna.ask(&c1, "!model gpt-9").await.expect("!model gpt-9");
    assert!(
        refused.contains("gpt\\-9") && refused.contains("fast, smart"),
        "{refused}"
    );
    let chosen = anna.ask(&c1, "!model fast").await.expect("!model fast");
    assert!(chosen.contains("**fast**"), "{chosen}");
    let long = "x".repeat(41);
    let too_long = anna
        .ask(&c1, &format!("!instructions {long}"))
        .await
        .expect("too long");
    assert!(
        too_long.contains("41") && too_long.contains("40"),
        "{too_long}"
    );
    let saved = anna
        .ask(&c1, "!instructions Talk like a *pirate*.")
        .await
        .expect("saved");
    assert!(saved.contains("21 characters"), "{saved}");
    assert_eq!(
        anna.ask(&c1, "hi").await.expect("answer"),
        "[C1] echo: hi\nmodel: fast\ninstructions: Talk like a *pirate*."
    );
    // Only the bot writes the record: a person's own is refused by the room's power levels.
    let forged = anna
        .try_state(
            &c1,
            SETTINGS_RECORD,
            "",
            json!({"model": "smart", "version": 1}),
        )
        .await;
    assert!(
        forged.is_some(),
        "the person could write the settings record"
    );
    // Outside a chat room the commands say where they work; a new chat has the defaults.
    let where_ = anna.ask(&dm, "!model fast").await.expect("in the dm");
    assert!(where_.contains("`!model`"), "{where_}");
    let created = anna.ask(&dm, "!new Plain").await.expect("!new");
    assert!(created.contains("C2"), "{created}");
    let c2 = anna.accept_invites(1).await.expect("C2")[0].to_string();
    assert_eq!(anna.ask(&c2, "hi").await.expect("C2"), "[C2] echo: hi");

    bot.stop().await;
    world.lose_cache();
    world.lose_store();
    let bot = world.start_bot(settings()).await;
    assert_eq!(
        anna.ask(&c1, "again").await.expect("after the restart"),
        "[C1] echo: again\nmodel: fast\ninstructions: Talk like a *pirate*."
    );
    let shown = anna.ask(&c1, "!settings").await.expect("!settings");
    assert!(
        shown.contains("fast") && shown.contains("chosen") && shown.contains("pirate"),
        "{shown}"
    );
    let cleared = anna.ask(&c1, "!instructions clear").await.expect("clear");
    assert!(cleared.contains("Removed"), "{cleared}");
    assert_eq!(
        anna.ask(&c1, "plain").await.expect("answer"),
        "[C1] echo: plain\nmodel: fast"
    );
    let none = anna.ask(&c1, "!instructions").await.expect("show");
    assert!(none.contains("no instructions"), "{none}");
    assert_eq!(
        anna.ask(&c2, "still").await.expect("C2"),
        "[C2] echo: still"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_server_receives_the_chats_model_and_instructions() {
    let fake = FakeOpenAi::start(FakeOptions {
        models: vec!["llama".into(), "qwen".into(), "huge".into()],
        ..FakeOptions::default()
    })
    .await
    .expect("fake server");
    let world = World::new().await;
    let bot = world
        .start_bot(world.settings(|raw| {
            raw.platform = Some("openai".into());
            raw.openai_base_url = Some(fake.url());
            raw.openai_model = Some("llama".into());
            raw.openai_models = Some("llama,qwen".into());
            raw.openai_system_prompt = Some("Be brief.".into());
            raw.openai_stream = Some("false".into());
            raw.encrypt_rooms = Some("false".into());
        }))
        .await;
    let anna = world.person("anna").await;
    let c1 = world.first_contact(&anna, false).await.c1;
    assert!(!anna
        .room(&c1)
        .expect("c1")
        .encryption_state()
        .is_encrypted());

    let listed = anna.ask(&c1, "!model").await.expect("!model");
    assert!(
        listed.contains("llama ✅") && listed.contains("qwen") && !listed.contains("huge"),
        "{listed}"
    );
    let refused = anna.ask(&c1, "!model huge").await.expect("not allowed");
    assert!(
        refused.contains("huge") && refused.contains("llama, qwen"),
        "{refused}"
    );
    anna.ask(&c1, "!model qwen").await.expect("!model qwen");
    anna.ask(&c1, "!instructions Answer in French.")
        .await
        .expect("!instructions");
    let answer = anna.ask(&c1, "bonjour").await.expect("answer");
    assert!(answer.starts_with("openai: bonjour"), "{answer}");
    let sent = fake.requests();
    let last = &sent.last().expect("a request").body;
    assert_eq!(last["model"], "qwen");
    assert_eq!(
        last["messages"][0],
        json!({"role": "system", "content": "Be brief.\n\nAnswer in French."})
    );
    bot.stop().await;
}
