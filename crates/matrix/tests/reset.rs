//! The dev/QA reset against a real homeserver: devices, memberships and what the next run does.

mod common;

use common::World;
use lambda_matrix_testkit::Person;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn reset(world: &World, args: &[&str]) -> Output {
    world
        .binary()
        .arg("reset")
        .args(args)
        .output()
        .expect("binary runs")
}

/// `reset` with `args` on a terminal (a pseudo-terminal from Python's `pty`), typing `answer`.
fn reset_on_a_terminal(world: &World, args: &[&str], answer: &str) -> Output {
    use std::io::Write;
    let binary = world.binary();
    let mut argv = vec!["env".to_owned(), "-i".to_owned()];
    for (name, value) in binary.get_envs() {
        if let Some(value) = value {
            argv.push(format!(
                "{}={}",
                name.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    argv.push(binary.get_program().to_string_lossy().into_owned());
    argv.push("reset".to_owned());
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut child = Command::new("python3")
        .arg("-c")
        .arg("import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))")
        .args(&argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{answer}\n").as_bytes())
        .expect("type the answer");
    child.wait_with_output().expect("finishes")
}

/// The names in the store folder, with each file's contents, sorted.
fn store_listing(world: &World) -> Vec<(String, Vec<u8>)> {
    let mut listing: Vec<(String, Vec<u8>)> = std::fs::read_dir(store(world))
        .expect("the store folder")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).unwrap_or_default())
        })
        .collect();
    listing.sort();
    listing
}

fn store(world: &World) -> PathBuf {
    world.dir.path().join("matrix_store")
}

/// Removes the SDK's crypto database: the saved session can no longer be restored (a new
/// login would be needed), but its file and the rest of the store are there.
fn make_the_session_unusable(world: &World) {
    for entry in std::fs::read_dir(store(world)).expect("the store folder") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("matrix-sdk-crypto.sqlite3"))
        {
            std::fs::remove_file(path).expect("remove");
        }
    }
    assert!(store(world).join("session.json").exists());
}

fn saved_device(world: &World) -> String {
    let text = std::fs::read_to_string(store(world).join("session.json")).expect("session");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["session"]["device_id"]
        .as_str()
        .expect("device")
        .to_owned()
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_even_when_the_saved_session_is_unusable() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    world.first_contact(&anna, false).await;
    bot.stop().await;
    make_the_session_unusable(&world);
    let device = saved_device(&world);
    let listing = store_listing(&world);
    let devices_before = world.bot_devices().await;
    let rooms = joined(&world).await;
    world.proxy.clear();

    let plan = json_of(&reset(&world, &["--dry-run", "--json"]));
    assert_eq!(plan["device_id"], device.as_str(), "{plan}");
    assert!(
        world.proxy.requests().is_empty(),
        "local-only needs no server for its plan: {:?}",
        world.proxy.requests()
    );
    assert_eq!(store_listing(&world), listing, "no file removed or changed");

    // Reading the rooms needs a login: a device kept in memory, logged out again.
    let bot_id = world.bot_account.user_id.clone();
    let plan = json_of(&reset(
        &world,
        &[
            "--mode",
            "server-leave-forget",
            "--confirm",
            &bot_id,
            "--dry-run",
            "--json",
        ],
    ));
    assert_eq!(plan["rooms"].as_array().expect("rooms").len(), 3, "{plan}");
    assert!(plan["one_shot_device"].is_string(), "{plan}");
    assert_eq!(world.proxy.matching("POST", "/logout").len(), 1);
    assert_eq!(store_listing(&world), listing, "no file removed or changed");
    assert_eq!(
        world.bot_devices().await,
        devices_before,
        "no device left behind"
    );
    assert_eq!(joined(&world).await, rooms);
    assert!(world.dir.path().join("lambda_matrix.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_only_removes_only_the_bots_files_and_the_device_it_names() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    bot.stop().await;
    std::fs::write(store(&world).join("notes.txt"), b"not the bot's").expect("write");
    std::fs::create_dir(store(&world).join("keep")).expect("mkdir");
    make_the_session_unusable(&world);
    let old_device = saved_device(&world);
    let devices_before = world.bot_devices().await;
    assert!(devices_before.contains(&old_device));

    let done = json_of(&reset(&world, &["--yes", "--json"]));
    assert_eq!(done["device_id"], old_device.as_str(), "{done}");
    assert_eq!(done["device_removed"], true, "{done}");
    assert_eq!(done["one_shot_device"], serde_json::Value::Null, "{done}");
    let expected: Vec<String> = devices_before
        .iter()
        .filter(|d| **d != old_device)
        .cloned()
        .collect();
    assert_eq!(
        world.bot_devices().await,
        expected,
        "the named device is the one removed, and no other device is left"
    );
    let left: Vec<String> = store_listing(&world).into_iter().map(|(n, _)| n).collect();
    assert_eq!(left, ["keep", "notes.txt"], "only the bot's files went");
    assert_eq!(done["kept"].as_array().expect("kept").len(), 2, "{done}");
    assert!(!world.dir.path().join("lambda_matrix.db").exists());
    assert!(!world.dir.path().join("matrix_store.lock").exists());
    assert!(
        world
            .dir
            .path()
            .join("lambda_matrix.db.recovery-key")
            .exists(),
        "the recovery key file is the operator's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_no_at_the_prompt_changes_nothing_and_leaves_no_device() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    world.first_contact(&anna, false).await;
    bot.stop().await;
    make_the_session_unusable(&world);
    let listing = store_listing(&world);
    let devices_before = world.bot_devices().await;
    let rooms = joined(&world).await;
    let bot_id = world.bot_account.user_id.clone();

    for args in [
        vec![],
        vec!["--mode", "server-leave-forget", "--confirm", &bot_id],
    ] {
        let out = reset_on_a_terminal(&world, &args, "no");
        let shown = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(!out.status.success(), "{shown}");
        assert!(shown.contains("Type yes to go ahead"), "asked: {shown}");
        assert!(
            shown.contains("reset cancelled; nothing was changed"),
            "{shown}"
        );
        assert_eq!(store_listing(&world), listing, "{args:?}: no file touched");
        assert_eq!(
            world.bot_devices().await,
            devices_before,
            "{args:?}: no new device"
        );
        assert_eq!(joined(&world).await, rooms);
    }
}

#[test]
fn reset_refuses_the_root_the_home_and_the_working_folder_as_the_store() {
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work");
    for dir in [home.path(), work.path()] {
        std::fs::write(dir.join("notes.txt"), b"mine").expect("write");
    }
    let run = |store: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lambda-matrix"))
            .arg("reset")
            .args(args)
            .env_clear()
            .env("HOME", home.path())
            .env("MATRIX_HOMESERVER", "http://127.0.0.1:9")
            .env("MATRIX_USER", "@lambda:localhost")
            .env("MATRIX_PASSWORD", "unused")
            .env("MATRIX_DB_PATH", work.path().join("lambda_matrix.db"))
            .env("MATRIX_STORE_PATH", store)
            .env("RUST_LOG", "warn")
            .current_dir(work.path())
            .stdin(Stdio::null())
            .output()
            .expect("runs")
    };
    // The root folder only with --dry-run: an old binary would plan, not act.
    for (store, args, why) in [
        (Path::new("/"), &["--dry-run"][..], "the root folder"),
        (home.path(), &["--yes"][..], "the home folder"),
        (Path::new("."), &["--yes"][..], "the current working folder"),
    ] {
        let out = run(store, args);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{store:?}");
        assert!(
            said.contains(why) && said.contains("MATRIX_STORE_PATH"),
            "{said}"
        );
    }
    for dir in [home.path(), work.path()] {
        assert!(dir.join("notes.txt").exists(), "nothing removed");
    }
    assert!(!work.path().join("..lock").exists(), "not even a lock file");
}
