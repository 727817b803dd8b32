//! Uploads on disk and in memory.
//!
//! Layout under `data_dir`:
//! - `<uploadId>/upload.json`: the [`UploadRecord`], replaced atomically (temp file + rename).
//! - `<uploadId>/<fileId>`: the data of an uploaded file.
//! - `<uploadId>/.<fileId>.part`: a file being received; renamed into place when complete.
//!
//! Only validated `[a-zA-Z0-9]{16}` IDs become path components; file names never do.
//!
//! Each upload has its own async mutex. Every change of a file's status happens under it
//! and is persisted before the lock is released, so a one-shot claim is a true
//! compare-and-swap even with many concurrent downloaders.
//!
//! The [`Quota`] counts the bytes of every `uploaded` file plus what files being received
//! have got so far; whoever takes a file out of `uploaded` (delete, one-shot download
//! finished, upload removed) gives its bytes back.
//!
//! An upload whose files have all gone (`removed` or `deleted`) is removed at once
//! ([`Store::retire_if_done`]); one holding no data `empty_grace` after its creation is
//! removed by [`Store::sweep`].

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::model::{is_valid_id, random_alphanumeric, FileStatus, UploadRecord, ID_LEN};

const RECORD_FILE: &str = "upload.json";
const RECORD_TEMP: &str = "upload.json.tmp";

/// An upload and where it lives; guarded by the upload's own lock (see [`Slot`]).
pub(crate) struct UploadState {
    pub record: UploadRecord,
    dir: PathBuf,
    /// Set once the upload has been deleted or swept; a request holding an old
    /// [`Slot`] then sees "not found", and nothing is written to the removed directory.
    pub gone: bool,
}

/// Shared handle on one upload.
pub(crate) type Slot = Arc<tokio::sync::Mutex<UploadState>>;

impl UploadState {
    /// Where the data of an uploaded file lives.
    pub(crate) fn data_path(&self, file_id: &str) -> PathBuf {
        data_path(&self.dir, file_id)
    }

    /// Where a file is written while it is being received.
    pub(crate) fn part_path(&self, file_id: &str) -> PathBuf {
        part_path(&self.dir, file_id)
    }

    /// Write `upload.json` atomically. Does nothing once the upload is gone.
    pub(crate) async fn persist(&self) -> io::Result<()> {
        if self.gone {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(&self.record)?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_record(&dir, &json))
            .await
            .map_err(io::Error::other)?
    }
}

fn write_record(dir: &Path, json: &[u8]) -> io::Result<()> {
    let temp = dir.join(RECORD_TEMP);
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(json)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, dir.join(RECORD_FILE))
}

/// Bytes of file data held on disk, against a limit.
pub(crate) struct Quota {
    /// 0 means no limit.
    limit: u64,
    used: AtomicU64,
}

impl Quota {
    fn new(limit: u64, used: u64) -> Quota {
        Quota {
            limit,
            used: AtomicU64::new(used),
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes `bytes` more, or nothing (false) if that would pass the limit.
    pub(crate) fn try_reserve(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes)
                    .filter(|&total| self.limit == 0 || total <= self.limit)
            })
            .is_ok()
    }

    /// Gives `bytes` back.
    pub(crate) fn release(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// Nothing more fits.
    pub(crate) fn is_full(&self) -> bool {
        self.limit > 0 && self.used.load(Ordering::SeqCst) >= self.limit
    }
}

/// All live uploads.
pub(crate) struct Store {
    root: PathBuf,
    uploads: Mutex<HashMap<String, Slot>>,
    pub quota: Quota,
    /// `ZERO`: uploads without data are kept until their TTL.
    empty_grace: Duration,
}

impl Store {
    /// Create `root` if needed and load every upload found in it; the quota starts with
    /// the bytes of the files found.
    pub(crate) async fn open(
        root: PathBuf,
        max_total_size: u64,
        empty_grace: Duration,
    ) -> io::Result<Store> {
        let loaded = {
            let root = root.clone();
            tokio::task::spawn_blocking(move || load_all(&root))
                .await
                .map_err(io::Error::other)??
        };
        let used = loaded.iter().map(|s| s.record.stored_bytes()).sum();
        let uploads = loaded
            .into_iter()
            .map(|state| {
                (
                    state.record.id.clone(),
                    Arc::new(tokio::sync::Mutex::new(state)),
                )
            })
            .collect();
        Ok(Store {
            root,
            uploads: Mutex::new(uploads),
            quota: Quota::new(max_total_size, used),
            empty_grace,
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // Nothing panics while holding this lock; recover the map anyway if it ever did.
        self.uploads.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, upload_id: &str) -> Option<Slot> {
        self.map().get(upload_id).cloned()
    }

    /// Store a new upload: give `record` a fresh ID, create its directory and first
    /// `upload.json`, then make it visible.
    pub(crate) async fn create(&self, mut record: UploadRecord) -> io::Result<(String, Slot)> {
        loop {
            let id = random_alphanumeric(ID_LEN);
            if self.map().contains_key(&id) {
                continue;
            }
            let dir = self.root.join(&id);
            match tokio::fs::create_dir(&dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
            record.id = id.clone();
            let state = UploadState {
                record,
                dir,
                gone: false,
            };
            if let Err(e) = state.persist().await {
                let _ = tokio::fs::remove_dir_all(&state.dir).await;
                return Err(e);
            }
            let slot = Arc::new(tokio::sync::Mutex::new(state));
            self.map().insert(id.clone(), slot.clone());
            return Ok((id, slot));
        }
    }

    /// Delete an upload with all its data, giving the bytes of its `uploaded` files back
    /// to the quota (files being received or streamed give theirs back when they end). The
    /// caller holds the upload's lock.
    pub(crate) async fn remove(&self, state: &mut UploadState) {
        if state.gone {
            return;
        }
        state.gone = true;
        self.map().remove(&state.record.id);
        self.quota.release(state.record.stored_bytes());
        // Open download handles keep streaming; the data is unlinked underneath them.
        let _ = tokio::fs::remove_dir_all(&state.dir).await;
    }

    /// Remove the upload if every file it had is gone. The caller holds its lock.
    pub(crate) async fn retire_if_done(&self, state: &mut UploadState) {
        if !state.gone && state.record.all_files_gone() {
            self.remove(state).await;
        }
    }

    /// Delete every upload whose TTL has passed, or that holds no data `empty_grace`
    /// after its creation.
    pub(crate) async fn sweep(&self, now: SystemTime) {
        let slots: Vec<Slot> = self.map().values().cloned().collect();
        for slot in slots {
            let mut state = slot.lock().await;
            if state.gone {
                continue;
            }
            let unused = !self.empty_grace.is_zero()
                && !state.record.holds_data()
                && state
                    .record
                    .created_at
                    .checked_add(self.empty_grace)
                    .is_some_and(|limit| now >= limit);
            if unused || state.record.is_expired(now) {
                self.remove(&mut state).await;
            }
        }
    }
}

/// Read every `<id>/upload.json` under `root`, repairing what a crash may have left:
/// half-received files are discarded, claimed one-shot data is deleted, temp files are
/// removed, and uploads left with no file at all are deleted. Directories that are not
/// ours, or unreadable records, are left alone.
fn load_all(root: &Path) -> io::Result<Vec<UploadState>> {
    std::fs::create_dir_all(root)?;
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_valid_id(&name) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        match load_one(&entry.path(), &name) {
            Some(state) if state.record.all_files_gone() => {
                let _ = std::fs::remove_dir_all(&state.dir);
            }
            Some(state) => loaded.push(state),
            None => {}
        }
    }
    Ok(loaded)
}

fn load_one(dir: &Path, id: &str) -> Option<UploadState> {
    let bytes = std::fs::read(dir.join(RECORD_FILE)).ok()?;
    let mut record: UploadRecord = serde_json::from_slice(&bytes).ok()?;
    if record.id != id || record.files.iter().any(|f| !is_valid_id(&f.id)) {
        return None;
    }
    let mut changed = false;
    for file in &mut record.files {
        let data = data_path(dir, &file.id);
        let _ = std::fs::remove_file(part_path(dir, &file.id));
        match file.status {
            FileStatus::Uploading | FileStatus::Removed => {
                let _ = std::fs::remove_file(&data);
                file.status = FileStatus::Deleted;
                changed = true;
            }
            FileStatus::Uploaded if !data.is_file() => {
                file.status = FileStatus::Deleted;
                changed = true;
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_file(dir.join(RECORD_TEMP));
    if changed {
        let json = serde_json::to_vec_pretty(&record).ok()?;
        write_record(dir, &json).ok()?;
    }
    Some(UploadState {
        record,
        dir: dir.to_path_buf(),
        gone: false,
    })
}

fn data_path(dir: &Path, file_id: &str) -> PathBuf {
    debug_assert!(is_valid_id(file_id));
    dir.join(file_id)
}

fn part_path(dir: &Path, file_id: &str) -> PathBuf {
    debug_assert!(is_valid_id(file_id));
    dir.join(format!(".{file_id}.part"))
}
