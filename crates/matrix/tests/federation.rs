//! People on other homeservers: two Synapses federating over loopback (TLS with self-signed
//! certificates). A person on the second server is allowed by a `MATRIX_ALLOWED_USERS` pattern,
//! gets a Space and C1 on the bot's server across federation, and talks to the bot there.

mod common;

use common::World;
use lambda_matrix::markers::CHAT_MARKER;
use lambda_matrix_testkit::{Person, Synapse};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_on_another_homeserver_is_served_across_federation() {
    let home = Synapse::start_federating().await.expect("bot's server");
    let other = Synapse::start_federating().await.expect("person's server");
    let world = World::on(home).await;
    let home_name = world.synapse.server_name().to_owned();
    let other_name = other.server_name().to_owned();
    let settings = world.settings(|raw| {
        // The bot's own server and the other one, by pattern.
        raw.allowed_users = Some("@*:127.0.0.1:*".into());
    });
    let bot = world.start_bot(settings).await;
    let bob = Person::login(&other.url(), &other.register("bob").await.expect("bob"))
        .await
        .expect("login");
    assert!(bob.user_id().as_str().ends_with(&other_name));

    let p = world.first_contact(&bob, false).await;
    // The rooms live on the bot's server; the Space links C1 with the bot's server as `via`.
    assert!(
        p.c1.ends_with(&home_name) || !p.c1.contains(':'),
        "{}",
        p.c1
    );
    let link = bob
        .until("the Space's link to C1", || async {
            bob.state(&p.space, "m.space.child", &p.c1).await.ok()?
        })
        .await
        .expect("link");
    assert_eq!(link["content"]["via"], serde_json::json!([home_name]));
    let marker = bob
        .until("C1's marker", || async {
            bob.state(&p.c1, CHAT_MARKER, "").await.ok()?
        })
        .await
        .expect("marker");
    assert_eq!(marker["content"]["owner"], bob.user_id().as_str());

    assert_eq!(
        bob.ask(&p.c1, "hello from afar").await.expect("answer"),
        "[C1] echo: hello from afar"
    );
    assert!(bob
        .ask(&p.dm, "!new Far")
        .await
        .expect("created")
        .contains("C2"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_on_a_server_not_allowed_is_refused() {
    let home = Synapse::start_federating().await.expect("bot's server");
    let other = Synapse::start_federating().await.expect("person's server");
    let world = World::on(home).await;
    // Default: only people on the bot's own server.
    let bot = world.start_bot(world.settings(|_| {})).await;
    let eve = Person::login(&other.url(), &other.register("eve").await.expect("eve"))
        .await
        .expect("login");
    let dm = eve
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("dm")
        .to_string();
    // The bot declines: it never joins, and no Space comes.
    let member = eve
        .until("the bot declined", || async {
            let member = eve
                .state(&dm, "m.room.member", &world.bot_account.user_id)
                .await
                .ok()??;
            (member["content"]["membership"] != "invite").then_some(member)
        })
        .await
        .expect("the bot's membership");
    assert_eq!(member["content"]["membership"], "leave", "{member}");
    assert!(eve.client.invited_rooms().is_empty());
    bot.stop().await;
}
