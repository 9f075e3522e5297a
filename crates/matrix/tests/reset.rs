//! The dev/QA reset against a real homeserver: devices, memberships and what the next run does.

mod common;

use common::World;
use lambda_matrix_testkit::Person;
use std::process::Output;

fn reset(world: &World, args: &[&str]) -> Output {
    world
        .binary()
        .arg("reset")
        .args(args)
        .output()
        .expect("binary runs")
}

async fn joined(world: &World) -> Vec<String> {
    let body = world
        .synapse
        .admin_get(&format!(
            "/_synapse/admin/v1/users/{}/joined_rooms",
            world.bot_account.user_id
        ))
        .await
        .expect("joined rooms");
    let mut rooms: Vec<String> = body["joined_rooms"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    rooms.sort();
    rooms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_only_then_run_gives_a_clean_new_device_and_everything_back() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let common::Provisioned { dm, c1, .. } = world.first_contact(&anna, false).await;
    assert!(anna
        .ask(&dm, "!new Second")
        .await
        .expect("new")
        .contains("C2"));
    anna.accept_invites(1).await.expect("C2");

    // While the bot runs, reset refuses.
    let refused = reset(&world, &["--yes"]);
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("another lambda-matrix process")
    );
    bot.stop().await;

    let devices = world
        .synapse
        .devices(&world.bot_account.user_id)
        .await
        .expect("devices");
    let rooms = joined(&world).await;
    let plan = reset(&world, &["--dry-run", "--json"]);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("json");
    assert!(plan["device_id"].is_string(), "{plan}");
    assert_eq!(
        world
            .synapse
            .devices(&world.bot_account.user_id)
            .await
            .expect("devices"),
        devices,
        "dry run keeps the device"
    );
    assert!(world.dir.path().join("lambda_matrix.db").exists());

    let done = reset(&world, &["--yes", "--json"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let done: serde_json::Value = serde_json::from_slice(&done.stdout).expect("json");
    assert_eq!(done["device_removed"], true, "{done}");
    let old_device = done["device_id"].as_str().expect("device").to_owned();
    assert!(!world
        .synapse
        .devices(&world.bot_account.user_id)
        .await
        .expect("devices")
        .contains(&old_device));
    assert_eq!(joined(&world).await, rooms, "local-only leaves no room");

    // The next run: a new device, keys uploaded cleanly, everything restored, nothing created.
    let rooms_before = world.synapse.room_count().await.expect("count");
    world.proxy.clear();
    let bot = world.start_bot(world.settings(|_| {})).await;
    assert_eq!(world.proxy.matching("POST", "/login").len(), 1);
    assert!(world
        .proxy
        .matching("POST", "/keys/upload")
        .iter()
        .all(|r| r.status == 200 || r.status == 0));
    assert!(anna
        .ask(&dm, "!chats")
        .await
        .expect("chats")
        .contains("Second"));
    // Anna's client has synced meanwhile and knows the bot's new device: encryption works.
    assert_eq!(
        anna.ask(&c1, "after reset")
            .await
            .expect("encrypted answer"),
        "[C1] echo: after reset"
    );
    assert_eq!(
        world.synapse.room_count().await.expect("count"),
        rooms_before
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_leave_forget_leaves_only_managed_rooms_and_first_contact_works_again() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    world.first_contact(&anna, false).await;
    bot.stop().await;

    // An unrelated room the bot is in (joined from another device while the bot was down).
    let boris = world.person("boris").await;
    let unrelated = boris
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("room")
        .to_string();
    let other = Person::login(&world.synapse.url(), &world.bot_account)
        .await
        .expect("bot device");
    other
        .room(&unrelated)
        .expect("invited")
        .join()
        .await
        .expect("join");
    other.client.matrix_auth().logout().await.expect("logout");
    let managed = joined(&world).await.len() - 1;
    assert_eq!(managed, 3, "space, C1 and the direct chat");

    let plan = reset(
        &world,
        &[
            "--mode",
            "server-leave-forget",
            "--confirm",
            &world.bot_account.user_id,
            "--dry-run",
        ],
    );
    let shown = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert_eq!(
        shown.matches("would leave and forget").count(),
        3,
        "{shown}"
    );
    assert!(!shown.contains(&unrelated), "{shown}");
    assert_eq!(joined(&world).await.len(), 4, "a dry run leaves nothing");

    let done = reset(
        &world,
        &[
            "--mode",
            "server-leave-forget",
            "--confirm",
            &world.bot_account.user_id,
            "--yes",
        ],
    );
    let shown = String::from_utf8_lossy(&done.stdout).to_string();
    assert!(
        done.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        shown.contains("still exist for their other members"),
        "{shown}"
    );
    assert_eq!(
        joined(&world).await,
        vec![unrelated.clone()],
        "only the unrelated room stays"
    );

    // The next run starts from nothing; anna makes first contact again in a new direct chat.
    let bot = world.start_bot(world.settings(|_| {})).await;
    let dm = anna
        .create_dm(&world.bot_account.user_id, false)
        .await
        .expect("new dm")
        .to_string();
    let invited = anna.accept_invites(2).await.expect("a new space and C1");
    assert_eq!(invited.len(), 2);
    assert!(anna.ask(&dm, "!chats").await.expect("chats").contains("C1"));
    bot.stop().await;
}
