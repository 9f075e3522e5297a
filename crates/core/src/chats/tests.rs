use super::*;
use crate::store::sqlite::SqliteStore;

const ANNA: &str = "@anna:example.org";
const BORIS: &str = "@boris:example.org";

fn manager() -> (tempfile::TempDir, ChatManager) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("cache.db")).expect("open store");
    (dir, ChatManager::new(Arc::new(store)))
}

fn name(s: &str) -> ChatName {
    ChatName::parse(s).expect("valid name")
}

fn new_chat(m: &ChatManager, owner: &str, label: &str, room: &str) -> Chat {
    let id = m.reserve_id(owner).expect("reserve");
    m.create(owner, id, &name(label), room).expect("create")
}

#[test]
fn ids_count_up_per_person() {
    let (_dir, m) = manager();
    assert_eq!(new_chat(&m, ANNA, "Chat 1", "!a1").id.to_string(), "C1");
    assert_eq!(new_chat(&m, ANNA, "Chat 2", "!a2").id.to_string(), "C2");
    assert_eq!(new_chat(&m, BORIS, "Chat 1", "!b1").id.to_string(), "C1");
    let anna: Vec<_> = m
        .list(ANNA)
        .expect("list")
        .into_iter()
        .map(|c| c.room_id)
        .collect();
    assert_eq!(anna, ["!a1", "!a2"]);
}

#[test]
fn a_reserved_id_is_never_reused_even_if_its_room_never_appears() {
    let (_dir, m) = manager();
    new_chat(&m, ANNA, "one", "!a1");
    let lost = m.reserve_id(ANNA).expect("reserve");
    assert_eq!(lost.to_string(), "C2");
    // The process died before the room existed: C2 never got a row.
    assert_eq!(new_chat(&m, ANNA, "three", "!a3").id.to_string(), "C3");
}

#[test]
fn a_stale_counter_never_hands_out_an_existing_id() {
    let (_dir, m) = manager();
    new_chat(&m, ANNA, "one", "!a1");
    new_chat(&m, ANNA, "two", "!a2");
    // The counter is set back, as a half-restored cache might have it.
    let mut user = m.store().user(ANNA).expect("read").expect("row");
    user.next_chat_index = 1;
    m.store().apply(&[Change::PutUser(user)]).expect("write");
    assert_eq!(m.next_id(ANNA).expect("next").to_string(), "C3");
}

#[test]
fn create_is_idempotent_for_the_same_room_and_refuses_another() {
    let (_dir, m) = manager();
    let chat = new_chat(&m, ANNA, "one", "!a1");
    let again = m
        .create(ANNA, chat.id, &name("other"), "!a1")
        .expect("same room");
    assert_eq!(again, chat);
    let clash = m.create(ANNA, chat.id, &name("x"), "!elsewhere");
    assert!(matches!(clash, Err(ChatError::IdTaken { room_id, .. }) if room_id == "!a1"));
}

#[test]
fn rename_archive_unarchive_change_what_list_shows() {
    let (_dir, m) = manager();
    let c1 = new_chat(&m, ANNA, "Chat 1", "!a1").id;
    m.rename(ANNA, c1, &name("Trip to Riga")).expect("rename");
    m.archive(ANNA, c1).expect("archive");
    assert!(matches!(m.archive(ANNA, c1), Err(ChatError::AlreadyArchived(id)) if id == c1));
    let listed = m.list(ANNA).expect("list");
    assert_eq!(listed[0].name, "Trip to Riga");
    assert_eq!(listed[0].status, ChatStatus::Archived);
    m.unarchive(ANNA, c1).expect("unarchive");
    assert!(matches!(
        m.unarchive(ANNA, c1),
        Err(ChatError::NotArchived(_))
    ));
    assert_eq!(m.get(ANNA, c1).expect("get").status, ChatStatus::Active);
}

#[test]
fn chat_ids_belong_to_their_owner() {
    let (_dir, m) = manager();
    let c1 = new_chat(&m, ANNA, "Anna's", "!a1").id;
    assert!(matches!(
        m.rename(BORIS, c1, &name("mine now")),
        Err(ChatError::NotFound(_))
    ));
    assert_eq!(m.get(ANNA, c1).expect("get").name, "Anna's");
}

#[test]
fn rooms_resolve_to_their_chat() {
    let (_dir, m) = manager();
    let chat = new_chat(&m, ANNA, "one", "!a1");
    assert_eq!(m.by_room("!a1").expect("lookup"), Some(chat));
    assert_eq!(m.by_room("!unknown").expect("lookup"), None);
}
