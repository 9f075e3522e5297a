//! Runtime repair is one room and insert-only: a command in a room whose cache rows are gone
//! repairs that room from its records and works; nothing else in the cache is touched.

mod common;

use common::World;
use lambda_matrix_core::{Change, ChatId, SqliteStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_in_a_room_whose_chat_row_is_gone_repairs_it_and_works() {
    let world = World::new().await;
    let bot = world.start_bot(world.settings(|_| {})).await;
    let anna = world.person("anna").await;
    let p = world.first_contact(&anna, false).await;
    assert!(anna
        .ask(&p.dm, "!new Second")
        .await
        .expect("new")
        .contains("C2"));

    // C1's chat row disappears from the cache while the bot runs.
    let owner = anna.user_id().to_string();
    let c1 = ChatId::new(1).expect("id");
    let cache = SqliteStore::open(world.dir.path().join("lambda_matrix.db")).expect("open");
    cache
        .apply(&[Change::DeleteChat {
            owner: owner.clone(),
            id: c1,
        }])
        .expect("delete");
    assert!(cache.chat(&owner, c1).expect("read").is_none());

    let renamed = anna.ask(&p.c1, "!rename Fresh").await.expect("rename");
    assert!(renamed.contains("Renamed C1 to **Fresh**"), "{renamed}");
    let row = cache.chat(&owner, c1).expect("read").expect("repaired");
    assert_eq!(row.name, "Fresh");
    assert_eq!(row.room_id, p.c1);
    // The repair touched only that room: C2 is still there, and listing shows both.
    let list = anna.ask(&p.dm, "!chats").await.expect("chats");
    assert!(list.contains("C1") && list.contains("C2"), "{list}");
    bot.stop().await;
}
