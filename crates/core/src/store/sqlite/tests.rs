use super::*;
use std::os::unix::fs::PermissionsExt;

fn sample_changes() -> Vec<Change> {
    let c1 = ChatId::new(1).expect("id");
    vec![
        Change::PutUser(UserRecord {
            user_id: "@anna:x".into(),
            space_id: Some("!space".into()),
            dm_room_id: Some("!dm".into()),
            next_chat_index: 2,
        }),
        Change::PutRoom(RoomRecord {
            room_id: "!room1".into(),
            owner: "@anna:x".into(),
            kind: RoomKind::Chat,
            chat_id: Some(c1),
        }),
        Change::PutRoom(RoomRecord {
            room_id: "!space".into(),
            owner: "@anna:x".into(),
            kind: RoomKind::Space,
            chat_id: None,
        }),
        Change::PutChat(Chat {
            owner: "@anna:x".into(),
            id: c1,
            name: "Chat 1".into(),
            status: ChatStatus::Active,
            room_id: "!room1".into(),
        }),
    ]
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn corrupt_copies(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect();
    found.sort();
    found
}

#[test]
fn fresh_file_is_created_private_with_the_current_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.db");
    let store = SqliteStore::open(&path).expect("open");
    store.apply(&sample_changes()).expect("write");
    for file in companions(&path) {
        // -wal and -shm exist while the connection is open in WAL mode.
        assert_eq!(mode(&file), 0o600, "{} must be private", file.display());
    }
    let version: u32 = store
        .conn()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn rooms_of_a_person_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("cache.db")).expect("open");
    store.apply(&sample_changes()).expect("write");
    let rooms: Vec<String> = store
        .rooms_of("@anna:x")
        .expect("rooms")
        .into_iter()
        .map(|r| r.room_id)
        .collect();
    assert_eq!(rooms, ["!room1", "!space"]);
    assert!(store.rooms_of("@bob:x").expect("rooms").is_empty());
}

#[test]
fn rows_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.db");
    let before = {
        let store = SqliteStore::open(&path).expect("open");
        store.apply(&sample_changes()).expect("write");
        store.dump().expect("dump")
    };
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.dump().expect("dump"), before);
    assert_eq!(before.users.len(), 1);
    assert_eq!(before.rooms.len(), 2);
    assert_eq!(before.chats.len(), 1);
    assert!(corrupt_copies(dir.path()).is_empty());
}

#[test]
fn a_failing_change_rolls_back_the_whole_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("cache.db")).expect("open");
    let mut changes = sample_changes();
    // A user row with next_chat_index 0 violates the schema's CHECK.
    changes.push(Change::PutUser(UserRecord {
        next_chat_index: 0,
        ..UserRecord::new("@boris:x")
    }));
    assert!(store.apply(&changes).is_err());
    assert_eq!(store.dump().expect("dump"), CacheDump::default());
}

#[test]
fn migrates_a_file_left_at_an_older_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.db");
    {
        // A file that was created (ours) but never migrated, as a crash mid-migration leaves it.
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .expect("id");
    }
    let store = SqliteStore::open(&path).expect("open");
    store
        .apply(&sample_changes())
        .expect("tables exist after migration");
    assert!(corrupt_copies(dir.path()).is_empty());
}

#[test]
fn a_newer_schema_is_refused_and_left_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.db");
    drop(SqliteStore::open(&path).expect("open"));
    {
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
    }
    let err = SqliteStore::open(&path).expect_err("must refuse");
    assert!(matches!(err, StoreError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1));
    assert!(err.to_string().contains("newer than this binary"), "{err}");
    assert!(path.exists());
    assert!(corrupt_copies(dir.path()).is_empty());
}

#[test]
fn a_garbage_file_is_moved_aside_and_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.db");
    fs::write(&path, b"this is not an sqlite database, just some bytes ....................................................").expect("write");
    let store = SqliteStore::open(&path).expect("recovers");
    store.apply(&sample_changes()).expect("usable");
    let moved = corrupt_copies(dir.path());
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(fs::read(&moved[0])
        .expect("read")
        .starts_with(b"this is not"));
}

#[test]
fn a_damaged_database_is_moved_aside_and_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.db");
    {
        let store = SqliteStore::open(&path).expect("open");
        let many: Vec<_> = (0..400)
            .map(|i| Change::PutUser(UserRecord::new(format!("@user{i}:x"))))
            .collect();
        store.apply(&many).expect("write");
        store
            .conn()
            .pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .expect("checkpoint");
    }
    // Overwrite the middle of the file (table and index pages), keeping the header intact.
    let mut bytes = fs::read(&path).expect("read");
    assert!(
        bytes.len() > 8192,
        "file too small to damage: {}",
        bytes.len()
    );
    let len = bytes.len();
    for b in &mut bytes[4096..len - 1024] {
        *b = 0xA5;
    }
    fs::write(&path, &bytes).expect("write");
    let store = SqliteStore::open(&path).expect("recovers");
    assert_eq!(store.dump().expect("dump"), CacheDump::default());
    assert_eq!(corrupt_copies(dir.path()).len(), 1);
}

#[test]
fn a_cache_missing_a_table_is_moved_aside_and_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.db");
    {
        let store = SqliteStore::open(&path).expect("open");
        store.apply(&sample_changes()).expect("write");
        store
            .conn()
            .execute_batch("DROP TABLE chat")
            .expect("cut a table");
    }
    let store = SqliteStore::open(&path).expect("recovers");
    assert_eq!(store.dump().expect("dump"), CacheDump::default());
    store.apply(&sample_changes()).expect("usable");
    assert_eq!(corrupt_copies(dir.path()).len(), 1);
}

#[test]
fn a_foreign_database_is_moved_aside_not_written_into() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.db");
    {
        let conn = Connection::open(&path).expect("raw open");
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');")
            .expect("foreign schema");
    }
    let store = SqliteStore::open(&path).expect("recovers");
    store.apply(&sample_changes()).expect("usable");
    let moved = corrupt_copies(dir.path());
    let db = moved
        .iter()
        .find(|p| !p.to_string_lossy().contains("-wal"))
        .expect("moved db");
    let conn = Connection::open(db).expect("open moved copy");
    let kept: String = conn
        .query_row("SELECT body FROM notes", [], |r| r.get(0))
        .expect("foreign data intact");
    assert_eq!(kept, "keep me");
}

#[test]
fn invalid_stored_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("cache.db")).expect("open");
    store
        .conn()
        .execute_batch("INSERT INTO matrix_user VALUES ('@big:x', NULL, NULL, 99999999999)")
        .expect("insert");
    assert!(store.user("@big:x").is_err());
}
