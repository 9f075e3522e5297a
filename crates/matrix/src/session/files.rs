//! The files the bot owns in the store folder: the SDK's databases and the saved session. Only
//! these are ever removed there, so a store folder pointed at the wrong place loses nothing
//! else.

use super::SESSION_FILE;
use anyhow::Context;
use std::fs;
use std::path::{Path, PathBuf};

/// Whether `name` (a file in the store folder) is the SDK's or the session's: the only files
/// the bot removes there.
fn is_ours(name: &str) -> bool {
    (name.starts_with("matrix-sdk-") && name.contains(".sqlite3"))
        || name == SESSION_FILE
        || name == "session.json.tmp"
}

/// The SDK's databases and the session file in `store` (see [`is_ours`]), and everything else
/// there, each sorted.
pub fn store_files(store: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut ours, mut others) = (Vec::new(), Vec::new());
    let entries = match fs::read_dir(store) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((ours, others)),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", store.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", store.display()))?;
        if is_ours(&entry.file_name().to_string_lossy()) && !entry.path().is_dir() {
            ours.push(entry.path());
        } else {
            others.push(entry.path());
        }
    }
    ours.sort();
    others.sort();
    Ok((ours, others))
}

/// Removes the SDK's databases and the session from `store`, and nothing else, so a store
/// folder pointed at the wrong place never loses unrelated files.
pub fn clear_sdk_files(store: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let (ours, _) = store_files(store)?;
    for path in &ours {
        fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    if !ours.is_empty() {
        tracing::info!(store = %store.display(), files = ours.len(), "cleared the old SDK store");
    }
    Ok(ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sdks_files_and_the_session_are_the_bots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path();
        for name in [
            "matrix-sdk-state.sqlite3",
            "matrix-sdk-crypto.sqlite3-wal",
            "session.json",
            "session.json.tmp",
            "notes.txt",
            "lambda_matrix.db",
        ] {
            fs::write(store.join(name), b"x").expect("write");
        }
        fs::create_dir(store.join("matrix-sdk-backup.sqlite3")).expect("a folder");
        let (ours, others) = store_files(store).expect("list");
        let names = |paths: &[PathBuf]| -> Vec<String> {
            paths
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect()
        };
        assert_eq!(
            names(&ours),
            [
                "matrix-sdk-crypto.sqlite3-wal",
                "matrix-sdk-state.sqlite3",
                "session.json",
                "session.json.tmp"
            ]
        );
        assert_eq!(
            names(&others),
            ["lambda_matrix.db", "matrix-sdk-backup.sqlite3", "notes.txt"]
        );
        clear_sdk_files(store).expect("clear");
        let (ours, others) = store_files(store).expect("list");
        assert!(ours.is_empty());
        assert_eq!(others.len(), 3, "the rest stays");
    }
}
