//! The exclusive lock on the store: one lambda-matrix process per store at a time.
//!
//! Two processes on one store would split the bot's encryption messages between them and race
//! on the cache. The lock is an OS file lock on `<MATRIX_STORE_PATH>.lock`, released when the
//! process exits, however it exits; the file holds the owner's pid for the refusal message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "another lambda-matrix process{} is using the store {store}; stop it first (lock file {lock})",
        holder.as_ref().map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Held {
        /// The store folder.
        store: String,
        /// The lock file.
        lock: String,
        /// The pid written by the holder, if readable.
        holder: Option<String>,
    },
    /// The lock file could not be opened or written.
    #[error("cannot open the store lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// A held store lock; dropping it releases the lock.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

impl StoreLock {
    /// The lock file that guards `store`.
    pub fn path_for(store: &Path) -> PathBuf {
        let mut os = store.as_os_str().to_owned();
        os.push(".lock");
        PathBuf::from(os)
    }

    /// Takes the lock on `store` without waiting.
    pub fn acquire(store: &Path) -> Result<StoreLock, LockError> {
        let path = Self::path_for(store);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = Some(holder.trim().to_owned()).filter(|s| !s.is_empty());
                return Err(LockError::Held {
                    store: store.display().to_string(),
                    lock: path.display().to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(StoreLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds the lock on `store`, without keeping it or creating its file: `None` when it
    /// is free, else the holder's pid as written (or `"?"`).
    pub fn holder(store: &Path) -> Result<Option<String>, LockError> {
        let path = Self::path_for(store);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LockError::Io { path, source }),
        };
        match file.try_lock() {
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                Ok(Some(
                    if holder.is_empty() { "?" } else { holder }.to_owned(),
                ))
            }
            Err(TryLockError::Error(source)) => Err(LockError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_seen_without_taking_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("matrix_store");
        assert_eq!(StoreLock::holder(&store).expect("probe"), None);
        assert!(!StoreLock::path_for(&store).exists(), "nothing created");
        let held = StoreLock::acquire(&store).expect("lock");
        assert_eq!(
            StoreLock::holder(&store).expect("probe"),
            Some(std::process::id().to_string())
        );
        drop(held);
        assert_eq!(StoreLock::holder(&store).expect("probe"), None);
        StoreLock::acquire(&store).expect("still free after the probe");
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("matrix_store");
        let first = StoreLock::acquire(&store).expect("first lock");
        let err = StoreLock::acquire(&store).expect_err("second must fail");
        let message = err.to_string();
        assert!(
            message.contains("another lambda-matrix process"),
            "{message}"
        );
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        StoreLock::acquire(&store).expect("free again after release");
    }
}
