//! Where a run keeps what it must not lose: checkpoints, finished models, evaluations. Paths are
//! relative, `/`-separated (`step_grpo/checkpoint-50/model.safetensors`). A directory on disk on
//! the command line ([`DirStore`]); memory in a browser tab ([`MemoryStore`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::model::write_atomic;

/// Files by relative path, written so that a crash never leaves half of one.
pub trait Store: Send + Sync {
    /// Writes one file whole (replacing it).
    fn write(&self, path: &str, bytes: &[u8]) -> Result<()>;
    /// A file's bytes; `None` when it does not exist.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// Writes the directory `dir` with exactly `files`, replacing it whole: after a crash it is
    /// the old directory or the new one, never a mix.
    fn write_dir(&self, dir: &str, files: &[(String, Vec<u8>)]) -> Result<()>;
    /// The names of the directories directly under `dir`, sorted (none when it does not exist).
    fn dirs(&self, dir: &str) -> Result<Vec<String>>;
    /// Deletes the directory `dir` and everything in it.
    fn remove_dir(&self, dir: &str) -> Result<()>;
    /// Where `path` lives, for messages.
    fn describe(&self, path: &str) -> String;
}

/// A store in a directory on disk: files through a temporary file and a rename, directories built
/// under a temporary name and renamed into place.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// A store rooted at `root` (created when first written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStore { root: root.into() }
    }

    /// The path of `rel` on disk.
    pub fn path(&self, rel: &str) -> PathBuf {
        rel.split('/').filter(|p| !p.is_empty()).fold(self.root.clone(), |p, part| p.join(part))
    }
}

/// Creates directory `dir` holding `files` (names may hold a subdirectory, a model's `adapter/`).
fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (file, bytes) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent().filter(|p| !p.exists()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    Ok(())
}

/// Deletes the hidden directories beside `path` whose names end in `suffix` (`.x.tmp`).
fn sweep(path: &Path, suffix: &str) -> Result<()> {
    let Some(parent) = path.parent().filter(|p| p.exists()) else { return Ok(()) };
    let entries = std::fs::read_dir(parent).map_err(|e| Error::io(parent, e))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let hidden = name.to_str().is_some_and(|n| n.starts_with('.') && n.ends_with(suffix));
        if hidden && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let p = entry.path();
            std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e)),
        None => Ok(()),
    }
}

impl Store for DirStore {
    fn write(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(path);
        create_parent(&path)?;
        write_atomic(&path, bytes)
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(path);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn write_dir(&self, dir: &str, files: &[(String, Vec<u8>)]) -> Result<()> {
        let target = self.path(dir);
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("dir");
        let tmp = target.with_file_name(format!(".{name}.tmp"));
        let old = target.with_file_name(format!(".{name}.old"));
        // A crash between the two renames below left only the old directory: it is the last whole one.
        if old.exists() && !target.exists() {
            std::fs::rename(&old, &target).map_err(|e| Error::io(&old, e))?;
        }
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        // Half-written directories of this one or its siblings, left by a crash.
        sweep(&target, ".tmp")?;
        if let Err(cause) = write_files(&tmp, files) {
            // A full disk, say: give the space back; the target was not touched.
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::WriteDir { path: target, cause });
        }
        // The old directory steps aside before the new one takes its name, and is deleted after.
        if target.exists() {
            std::fs::rename(&target, &old).map_err(|e| Error::io(&target, e))?;
        }
        std::fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        Ok(())
    }

    fn dirs(&self, dir: &str) -> Result<Vec<String>> {
        let path = self.path(dir);
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    fn remove_dir(&self, dir: &str) -> Result<()> {
        let path = self.path(dir);
        // Out of sight first, so that a crash while deleting never leaves a partial checkpoint
        // under its name; such a leftover is swept by the next removal.
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("dir");
        let doomed = path.with_file_name(format!(".{name}.removed"));
        std::fs::rename(&path, &doomed).map_err(|e| Error::io(&path, e))?;
        sweep(&path, ".removed")
    }

    fn describe(&self, path: &str) -> String {
        self.path(path).display().to_string()
    }
}

/// A store in memory (a browser tab has no filesystem): what a page can export.
#[derive(Debug, Default)]
pub struct MemoryStore {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.files.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn under(dir: &str) -> String {
    format!("{}/", dir.trim_end_matches('/'))
}

impl Store for MemoryStore {
    fn write(&self, path: &str, bytes: &[u8]) -> Result<()> {
        self.files().insert(path.to_string(), bytes.to_vec());
        Ok(())
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.files().get(path).cloned())
    }

    fn write_dir(&self, dir: &str, files: &[(String, Vec<u8>)]) -> Result<()> {
        let prefix = under(dir);
        let mut all = self.files();
        all.retain(|k, _| !k.starts_with(&prefix));
        for (name, bytes) in files {
            all.insert(format!("{prefix}{name}"), bytes.clone());
        }
        Ok(())
    }

    fn dirs(&self, dir: &str) -> Result<Vec<String>> {
        let prefix = under(dir);
        let mut names: Vec<String> = self
            .files()
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix)?.split_once('/').map(|(d, _)| d.to_string()))
            .collect();
        names.dedup();
        Ok(names)
    }

    fn remove_dir(&self, dir: &str) -> Result<()> {
        let prefix = under(dir);
        self.files().retain(|k, _| !k.starts_with(&prefix));
        Ok(())
    }

    fn describe(&self, path: &str) -> String {
        format!("memory:{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &dyn Store) {
        store.write("a/x.json", b"1").unwrap();
        store.write_dir("a/checkpoint-2", &[("m".into(), b"old".to_vec())]).unwrap();
        store.write_dir("a/checkpoint-2", &[("n".into(), b"new".to_vec())]).unwrap();
        store.write_dir("a/checkpoint-10", &[("n".into(), b"10".to_vec())]).unwrap();
        assert_eq!(store.read("a/x.json").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(store.read("a/checkpoint-2/m").unwrap(), None, "a directory is replaced whole");
        assert_eq!(store.read("a/checkpoint-2/n").unwrap().as_deref(), Some(&b"new"[..]));
        assert_eq!(store.dirs("a").unwrap(), ["checkpoint-10", "checkpoint-2"]);
        store.remove_dir("a/checkpoint-2").unwrap();
        assert_eq!(store.dirs("a").unwrap(), ["checkpoint-10"]);
        assert!(store.dirs("nowhere").unwrap().is_empty());
    }

    #[test]
    fn directory_and_memory_stores_behave_alike() {
        let root = std::env::temp_dir().join(format!("stepgrpo-store-{}", std::process::id()));
        exercise(&DirStore::new(&root));
        exercise(&MemoryStore::default());
        std::fs::remove_dir_all(root).unwrap();
    }
}
