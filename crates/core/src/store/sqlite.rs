//! The SQLite cache: versioned migrations, one transaction per [`Store::apply`], files private to
//! the user, and recovery from a corrupt or foreign file by moving it aside and starting empty
//! (the cache is rebuilt from the homeserver).

use super::{Change, Store, StoreError};
use crate::ids::ChatId;
use crate::model::{CacheDump, Chat, ChatStatus, RoomKind, RoomRecord, UserRecord};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Marks a SQLite file as ours (`PRAGMA application_id`, "LMTX"), so a foreign file is recognised.
const APPLICATION_ID: i32 = 0x4C4D_5458;

/// Migrations in order; migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("migrations/001_init.sql")];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// One statement per table with the columns the cache reads: a file whose version says this
/// schema but that lacks one of them (cut by hand or by a tool) cannot serve as the cache.
const SCHEMA_PROBES: &[&str] = &[
    "SELECT user_id, space_id, dm_room_id, next_chat_index FROM matrix_user LIMIT 0",
    "SELECT room_id, owner, kind, chat_index FROM matrix_room LIMIT 0",
    "SELECT owner, chat_index, name, status, room_id FROM chat LIMIT 0",
];

/// The cache in one SQLite file (WAL mode).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// Why opening failed: a file to move aside, or a problem moving it would not solve.
enum OpenFailure {
    Unusable(String),
    Fatal(StoreError),
}

impl From<rusqlite::Error> for OpenFailure {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                OpenFailure::Unusable(err.to_string())
            }
            _ => OpenFailure::Fatal(err.into()),
        }
    }
}

impl SqliteStore {
    /// Opens (or creates) the cache at `path`.
    ///
    /// A corrupt, unreadable or foreign file is moved aside (with its `-wal`/`-shm`) with a log
    /// line, and an empty cache is created. A file with a newer schema is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        match Self::try_open(&path) {
            Ok(store) => Ok(store),
            Err(OpenFailure::Fatal(err)) => Err(err),
            Err(OpenFailure::Unusable(reason)) => {
                let moved_to = move_aside(&path)?;
                tracing::warn!(
                    path = %path.display(),
                    moved_to = %moved_to.display(),
                    %reason,
                    "cache file unusable; moved it aside and starting an empty cache (rebuilt from the homeserver)"
                );
                Self::try_open(&path).map_err(|failure| match failure {
                    OpenFailure::Fatal(err) => err,
                    OpenFailure::Unusable(reason) => StoreError::InvalidRow(format!(
                        "a fresh cache at {} is unusable: {reason}",
                        path.display()
                    )),
                })
            }
        }
    }

    /// Reads the whole cache at `path` without writing anything (no creation, migration or
    /// moving aside): for dry runs. A missing file reads as empty.
    pub fn read_only_dump(path: impl AsRef<Path>) -> Result<CacheDump, StoreError> {
        Ok(Self::read_only_check(path)?.0)
    }

    /// [`Self::read_only_dump`] with the cache's schema version (0 for a missing file; a start
    /// migrates an older one to [`SCHEMA_VERSION`]).
    pub fn read_only_check(path: impl AsRef<Path>) -> Result<(CacheDump, u32), StoreError> {
        let path = path.as_ref();
        if !path.exists() {
            return Ok((CacheDump::default(), 0));
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if app_id != APPLICATION_ID || version == 0 {
            return Err(StoreError::InvalidRow(format!(
                "{} is not a lambda-matrix cache",
                path.display()
            )));
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok((dump(&conn)?, version))
    }

    /// The file this cache lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn try_open(path: &Path) -> Result<Self, OpenFailure> {
        create_private(path).map_err(OpenFailure::Fatal)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(5))?;

        let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let objects: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if app_id == 0 && objects == 0 && version == 0 {
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        } else if app_id != APPLICATION_ID {
            return Err(OpenFailure::Unusable(format!(
                "not a lambda-matrix cache (application_id {app_id:#x}, {objects} schema objects)"
            )));
        }
        if version > SCHEMA_VERSION {
            return Err(OpenFailure::Fatal(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            }));
        }
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(OpenFailure::Unusable(format!(
                "integrity check failed: {check}"
            )));
        }
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&conn, version)?;
        for probe in SCHEMA_PROBES {
            if let Err(error) = conn.prepare(probe) {
                return Err(OpenFailure::Unusable(format!("schema damaged: {error}")));
            }
        }
        make_private(path).map_err(OpenFailure::Fatal)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied transaction (SQLite rolls
        // it back), so a poisoned lock is safe to reuse.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Applies the migrations after `from`, each in its own transaction with its version bump.
fn migrate(conn: &Connection, from: u32) -> Result<(), rusqlite::Error> {
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let to = index as u32 + 1;
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", to)?;
        tx.commit()?;
        tracing::info!(schema_version = to, "cache schema migrated");
    }
    Ok(())
}

/// The database file and its SQLite companions.
fn companions(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut os = path.as_os_str().to_owned();
        os.push(suffix);
        PathBuf::from(os)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

/// Creates the file as 0600 if it does not exist, so SQLite (which gives `-wal`/`-shm` the
/// database file's mode) never makes a readable file.
fn create_private(path: &Path) -> Result<(), StoreError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Sets 0600 on the database and companions that exist.
fn make_private(path: &Path) -> Result<(), StoreError> {
    for file in companions(path) {
        match fs::set_permissions(&file, fs::Permissions::from_mode(0o600)) {
            Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::Io { path: file, source })
            }
            _ => {}
        }
    }
    Ok(())
}

/// Renames the database and companions to `<name>.corrupt-<unix time>`; returns the new name.
fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let suffix = format!(".corrupt-{stamp}");
    let mut moved_db = path.to_path_buf();
    for file in companions(path) {
        let mut target = file.clone().into_os_string();
        target.push(&suffix);
        let target = PathBuf::from(target);
        match fs::rename(&file, &target) {
            Ok(()) if file == path => moved_db = target,
            Ok(()) => {}
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Io { path: file, source }),
        }
    }
    Ok(moved_db)
}

fn chat_id_column(row: &Row<'_>, index: usize) -> Result<ChatId, rusqlite::Error> {
    let n: i64 = row.get(index)?;
    u32::try_from(n)
        .ok()
        .and_then(|n| ChatId::new(n).ok())
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(index, n))
}

fn invalid(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?}").into(),
    )
}

fn user_row(row: &Row<'_>) -> Result<UserRecord, rusqlite::Error> {
    let next: i64 = row.get(3)?;
    Ok(UserRecord {
        user_id: row.get(0)?,
        space_id: row.get(1)?,
        dm_room_id: row.get(2)?,
        next_chat_index: u32::try_from(next)
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(3, next))?,
    })
}

fn room_row(row: &Row<'_>) -> Result<RoomRecord, rusqlite::Error> {
    let kind: String = row.get(2)?;
    let chat_id = match row.get::<_, Option<i64>>(3)? {
        None => None,
        Some(_) => Some(chat_id_column(row, 3)?),
    };
    Ok(RoomRecord {
        room_id: row.get(0)?,
        owner: row.get(1)?,
        kind: RoomKind::parse(&kind).ok_or_else(|| invalid("room kind", &kind))?,
        chat_id,
    })
}

fn chat_row(row: &Row<'_>) -> Result<Chat, rusqlite::Error> {
    let status: String = row.get(3)?;
    Ok(Chat {
        owner: row.get(0)?,
        id: chat_id_column(row, 1)?,
        name: row.get(2)?,
        status: ChatStatus::parse(&status).ok_or_else(|| invalid("chat status", &status))?,
        room_id: row.get(4)?,
    })
}

const USER_COLUMNS: &str = "user_id, space_id, dm_room_id, next_chat_index";
const ROOM_COLUMNS: &str = "room_id, owner, kind, chat_index";
const CHAT_COLUMNS: &str = "owner, chat_index, name, status, room_id";

fn apply_one(conn: &Connection, change: &Change) -> Result<(), rusqlite::Error> {
    match change {
        Change::PutUser(u) => conn.execute(
            &format!("INSERT OR REPLACE INTO matrix_user ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"),
            params![u.user_id, u.space_id, u.dm_room_id, u.next_chat_index],
        ),
        Change::PutRoom(r) => conn.execute(
            &format!("INSERT OR REPLACE INTO matrix_room ({ROOM_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"),
            params![
                r.room_id,
                r.owner,
                r.kind.as_str(),
                r.chat_id.map(ChatId::number)
            ],
        ),
        Change::PutChat(c) => conn.execute(
            &format!("INSERT OR REPLACE INTO chat ({CHAT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![c.owner, c.id.number(), c.name, c.status.as_str(), c.room_id],
        ),
        Change::DeleteUser(user_id) => conn.execute(
            "DELETE FROM matrix_user WHERE user_id = ?1",
            params![user_id],
        ),
        Change::DeleteRoom(room_id) => conn.execute(
            "DELETE FROM matrix_room WHERE room_id = ?1",
            params![room_id],
        ),
        Change::DeleteChat { owner, id } => conn.execute(
            "DELETE FROM chat WHERE owner = ?1 AND chat_index = ?2",
            params![owner, id.number()],
        ),
    }
    .map(drop)
}

impl Store for SqliteStore {
    fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM matrix_user WHERE user_id = ?1");
        Ok(self
            .conn()
            .query_row(&sql, [user_id], user_row)
            .optional()?)
    }

    fn room(&self, room_id: &str) -> Result<Option<RoomRecord>, StoreError> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM matrix_room WHERE room_id = ?1");
        Ok(self
            .conn()
            .query_row(&sql, [room_id], room_row)
            .optional()?)
    }

    fn chat(&self, owner: &str, id: ChatId) -> Result<Option<Chat>, StoreError> {
        let sql = format!("SELECT {CHAT_COLUMNS} FROM chat WHERE owner = ?1 AND chat_index = ?2");
        let row = self
            .conn()
            .query_row(&sql, params![owner, id.number()], chat_row)
            .optional()?;
        Ok(row)
    }

    fn chats(&self, owner: &str) -> Result<Vec<Chat>, StoreError> {
        let sql = format!("SELECT {CHAT_COLUMNS} FROM chat WHERE owner = ?1 ORDER BY chat_index");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map([owner], chat_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn rooms_of(&self, owner: &str) -> Result<Vec<RoomRecord>, StoreError> {
        let sql =
            format!("SELECT {ROOM_COLUMNS} FROM matrix_room WHERE owner = ?1 ORDER BY room_id");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map([owner], room_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for change in changes {
            apply_one(&tx, change)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn dump(&self) -> Result<CacheDump, StoreError> {
        dump(&self.conn())
    }
}

fn dump(conn: &Connection) -> Result<CacheDump, StoreError> {
    Ok(CacheDump {
        users: query_all(
            conn,
            &format!("SELECT {USER_COLUMNS} FROM matrix_user ORDER BY user_id"),
            user_row,
        )?,
        rooms: query_all(
            conn,
            &format!("SELECT {ROOM_COLUMNS} FROM matrix_room ORDER BY room_id"),
            room_row,
        )?,
        chats: query_all(
            conn,
            &format!("SELECT {CHAT_COLUMNS} FROM chat ORDER BY owner, chat_index"),
            chat_row,
        )?,
    })
}

fn query_all<T>(
    conn: &Connection,
    sql: &str,
    map: fn(&Row<'_>) -> Result<T, rusqlite::Error>,
) -> Result<Vec<T>, rusqlite::Error> {
    conn.prepare(sql)?.query_map([], map)?.collect()
}

#[cfg(test)]
mod tests;
