//! What the server remembers about an upload (the on-disk record) and what it shows
//! (the Plik JSON replies of plik.md §2). The two are kept apart so that secrets in the
//! record (upload token, password hash) never reach a reply by accident.

use std::time::SystemTime;

use rand::distr::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::time::rfc3339_nanos;

/// Length of upload and file IDs (Plik: 16 characters from `[a-zA-Z0-9]`).
pub(crate) const ID_LEN: usize = 16;
/// Length of an upload token.
pub(crate) const TOKEN_LEN: usize = 32;
/// Version of the `upload.json` layout, written so a later format can tell old files apart.
const RECORD_FORMAT: u32 = 1;

/// A fresh random `[a-zA-Z0-9]{len}` string from the thread CSPRNG.
pub(crate) fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// True for a well-formed upload or file ID. Only such IDs ever become path components.
pub(crate) fn is_valid_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Life cycle of one file: `missing` (declared) → `uploading` → `uploaded`, then
/// `removed` (claimed by a one-shot download, deleted, or a failed upload) → `deleted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FileStatus {
    Missing,
    Uploading,
    Uploaded,
    Removed,
    Deleted,
}

impl FileStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FileStatus::Missing => "missing",
            FileStatus::Uploading => "uploading",
            FileStatus::Uploaded => "uploaded",
            FileStatus::Removed => "removed",
            FileStatus::Deleted => "deleted",
        }
    }
}

/// One file of an upload, as stored in `upload.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    pub id: String,
    pub name: String,
    pub status: FileStatus,
    /// Lowercase hex MD5 of the data; empty until uploaded.
    pub md5: String,
    pub mime_type: String,
    pub size: i64,
    pub reference: String,
    pub created_at: SystemTime,
}

/// One upload, as stored in `data_dir/<id>/upload.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct UploadRecord {
    #[serde(default)]
    pub format: u32,
    pub id: String,
    pub upload_token: String,
    /// Seconds; negative means "never expires".
    pub ttl: i64,
    pub created_at: SystemTime,
    pub expire_at: Option<SystemTime>,
    pub comments: String,
    pub one_shot: bool,
    pub removable: bool,
    pub login: String,
    /// SHA-256 (hex) of `login:password` when the upload is password-protected.
    pub password_hash: Option<String>,
    pub files: Vec<FileRecord>,
}

impl UploadRecord {
    pub(crate) fn new(id: String, upload_token: String, created_at: SystemTime) -> Self {
        UploadRecord {
            format: RECORD_FORMAT,
            id,
            upload_token,
            ttl: 0,
            created_at,
            expire_at: None,
            comments: String::new(),
            one_shot: false,
            removable: false,
            login: String::new(),
            password_hash: None,
            files: Vec::new(),
        }
    }

    pub(crate) fn is_expired(&self, now: SystemTime) -> bool {
        self.expire_at.is_some_and(|at| now >= at)
    }

    /// Bytes of the files whose data is stored (`uploaded`).
    pub(crate) fn stored_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| f.status == FileStatus::Uploaded)
            .map(|f| f.size.max(0).unsigned_abs())
            .sum()
    }

    /// A file is stored or being received.
    pub(crate) fn holds_data(&self) -> bool {
        self.files
            .iter()
            .any(|f| matches!(f.status, FileStatus::Uploading | FileStatus::Uploaded))
    }

    /// The upload had files and every one of them is gone (`removed` or `deleted`).
    pub(crate) fn all_files_gone(&self) -> bool {
        !self.files.is_empty()
            && self
                .files
                .iter()
                .all(|f| matches!(f.status, FileStatus::Removed | FileStatus::Deleted))
    }

    pub(crate) fn file(&self, file_id: &str) -> Option<&FileRecord> {
        self.files.iter().find(|f| f.id == file_id)
    }

    pub(crate) fn file_mut(&mut self, file_id: &str) -> Option<&mut FileRecord> {
        self.files.iter_mut().find(|f| f.id == file_id)
    }

    /// A file ID not used by this upload yet.
    pub(crate) fn new_file_id(&self) -> String {
        loop {
            let id = random_alphanumeric(ID_LEN);
            if self.file(&id).is_none() {
                return id;
            }
        }
    }

    /// The Plik `Upload` JSON. `files: null` when `null_if_no_files` and there are none
    /// (what Plik's create reply does); the token only for the upload's admin.
    pub(crate) fn reply(&self, admin: bool, null_if_no_files: bool) -> UploadReply<'_> {
        let files = if null_if_no_files && self.files.is_empty() {
            None
        } else {
            Some(self.files.iter().map(FileRecord::reply).collect())
        };
        UploadReply {
            id: &self.id,
            ttl: self.ttl,
            extend_ttl: false,
            download_domain: "",
            comments: &self.comments,
            files,
            upload_token: admin.then_some(self.upload_token.as_str()),
            admin,
            stream: false,
            one_shot: self.one_shot,
            removable: self.removable,
            protected_by_password: self.password_hash.is_some(),
            created_at: rfc3339_nanos(self.created_at),
            expire_at: self.expire_at.map(rfc3339_nanos),
        }
    }
}

impl FileRecord {
    pub(crate) fn reply(&self) -> FileReply<'_> {
        FileReply {
            id: &self.id,
            file_name: &self.name,
            status: self.status.as_str(),
            file_md5: &self.md5,
            file_type: &self.mime_type,
            file_size: self.size,
            reference: &self.reference,
            created_at: rfc3339_nanos(self.created_at),
        }
    }
}

/// Plik's `File` JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileReply<'a> {
    id: &'a str,
    file_name: &'a str,
    status: &'static str,
    file_md5: &'a str,
    file_type: &'a str,
    file_size: i64,
    reference: &'a str,
    created_at: String,
}

/// Plik's `Upload` JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UploadReply<'a> {
    id: &'a str,
    ttl: i64,
    #[serde(rename = "extend_ttl")]
    extend_ttl: bool,
    download_domain: &'static str,
    comments: &'a str,
    files: Option<Vec<FileReply<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upload_token: Option<&'a str>,
    admin: bool,
    stream: bool,
    one_shot: bool,
    removable: bool,
    protected_by_password: bool,
    created_at: String,
    expire_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_alphanumeric_and_validated() {
        let id = random_alphanumeric(ID_LEN);
        assert!(is_valid_id(&id));
        assert_eq!(random_alphanumeric(TOKEN_LEN).len(), TOKEN_LEN);
        for bad in [
            "",
            "..",
            "../../etc/passwd",
            "abcdefghijklmno",
            "abcdefghijklmno/",
            "abcdefghijklmnop1",
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn reply_uses_plik_names() {
        let mut record = UploadRecord::new("a".repeat(16), "t".repeat(32), SystemTime::UNIX_EPOCH);
        let v = serde_json::to_value(record.reply(false, true)).unwrap();
        assert!(v["files"].is_null());
        assert!(v.get("uploadToken").is_none());
        assert_eq!(v["createdAt"], "1970-01-01T00:00:00.000000000Z");
        assert!(v["expireAt"].is_null());
        assert_eq!(v["extend_ttl"], false);
        record.files.push(FileRecord {
            id: "f".repeat(16),
            name: "x".into(),
            status: FileStatus::Missing,
            md5: String::new(),
            mime_type: String::new(),
            size: 0,
            reference: "r".into(),
            created_at: SystemTime::UNIX_EPOCH,
        });
        let v = serde_json::to_value(record.reply(true, true)).unwrap();
        assert_eq!(v["uploadToken"], "t".repeat(32));
        assert_eq!(v["files"][0]["fileName"], "x");
        assert_eq!(v["files"][0]["status"], "missing");
    }
}
