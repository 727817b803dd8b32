//! The eight payload types and what their serialized bytes must look like.
//!
//! The core works on serialized bytes (wire format §3); bindings convert host values. The core
//! still checks what it can, so bad input fails once at the sender (`INVALID_PAYLOAD`) instead of
//! at every receiver, and a receiver gets `DESERIALIZATION_ERROR` for bytes that do not match.

use crate::error::{Error, ErrorCode, Result};
use std::fmt;
use std::str::FromStr;

/// The type of a payload, as written in `payload_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    /// UTF-8 text.
    Text,
    /// Any JSON value (usually an object).
    Dictionary,
    /// An Arrow IPC stream (readers also accept the IPC file format).
    ArrowTable,
    /// A JSON array of row objects.
    JsonTable,
    /// Opaque image bytes.
    Image,
    /// Opaque audio bytes.
    Audio,
    /// Opaque video bytes.
    Video,
    /// Opaque bytes.
    Binary,
}

impl PayloadType {
    /// All eight, in the wire format's order.
    pub const ALL: [PayloadType; 8] = [
        PayloadType::Text,
        PayloadType::Dictionary,
        PayloadType::ArrowTable,
        PayloadType::JsonTable,
        PayloadType::Image,
        PayloadType::Audio,
        PayloadType::Video,
        PayloadType::Binary,
    ];

    /// The wire name (`"arrowtable"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadType::Text => "text",
            PayloadType::Dictionary => "dictionary",
            PayloadType::ArrowTable => "arrowtable",
            PayloadType::JsonTable => "jsontable",
            PayloadType::Image => "image",
            PayloadType::Audio => "audio",
            PayloadType::Video => "video",
            PayloadType::Binary => "binary",
        }
    }

    /// Checks bytes a caller wants to send. Fails with `INVALID_PAYLOAD`.
    pub fn validate_outgoing(self, bytes: &[u8]) -> Result<()> {
        self.check(bytes, true)
            .map_err(|why| Error::new(ErrorCode::InvalidPayload, why))
    }

    /// Checks bytes received for this type. Fails with `DESERIALIZATION_ERROR`.
    pub fn validate_incoming(self, bytes: &[u8]) -> Result<()> {
        self.check(bytes, false)
            .map_err(|why| Error::new(ErrorCode::DeserializationError, why))
    }

    /// Checks a received payload that was fetched into a file, reading it as a stream.
    /// Fails with `DESERIALIZATION_ERROR`.
    pub fn validate_incoming_file(self, path: &std::path::Path) -> Result<()> {
        self.check_file(path)
            .map_err(|why| Error::new(ErrorCode::DeserializationError, why))
    }

    fn check_file(self, path: &std::path::Path) -> std::result::Result<(), String> {
        use std::io::{BufReader, Read};
        let open = || {
            std::fs::File::open(path)
                .map(BufReader::new)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        // serde_json checks UTF-8 only in the strings it builds, not in those it skips.
        let text = || open().map(Utf8Checked::new);
        match self {
            PayloadType::Text => std::io::copy(&mut text()?, &mut std::io::sink())
                .map(|_| ())
                .map_err(|e| match NotUtf8::inside(&e) {
                    Some(why) => format!("text payload is {why}"),
                    None => format!("cannot read {}: {e}", path.display()),
                }),
            PayloadType::Dictionary => serde_json::from_reader::<_, serde::de::IgnoredAny>(text()?)
                .map(|_| ())
                .map_err(|e| format!("dictionary payload is not valid JSON: {e}")),
            PayloadType::JsonTable => {
                check_rows(&mut serde_json::Deserializer::from_reader(text()?))
            }
            PayloadType::ArrowTable => {
                use arrow_ipc::reader::{FileReader, StreamReader};
                let mut head = [0u8; 6];
                let is_file = open()?.read_exact(&mut head).is_ok() && head == ARROW_FILE_MAGIC;
                if is_file {
                    FileReader::try_new(open()?, None).map(|_| ()).map_err(|e| {
                        format!("arrowtable payload is not a readable Arrow IPC file: {e}")
                    })
                } else {
                    StreamReader::try_new(open()?, None)
                        .map(|_| ())
                        .map_err(|e| {
                            format!("arrowtable payload is not a readable Arrow IPC stream: {e}")
                        })
                }
            }
            PayloadType::Image | PayloadType::Audio | PayloadType::Video | PayloadType::Binary => {
                Ok(())
            }
        }
    }

    fn check(self, bytes: &[u8], sending: bool) -> std::result::Result<(), String> {
        match self {
            PayloadType::Text => std::str::from_utf8(bytes)
                .map(|_| ())
                .map_err(|e| format!("text payload is not valid UTF-8: {e}")),
            // serde_json checks UTF-8 only in the strings it builds, not in those it skips:
            // the bytes are checked once, then parsed as text.
            PayloadType::Dictionary => {
                serde_json::from_str::<serde::de::IgnoredAny>(utf8(bytes, "dictionary")?)
                    .map(|_| ())
                    .map_err(|e| format!("dictionary payload is not valid JSON: {e}"))
            }
            PayloadType::JsonTable => check_json_table(utf8(bytes, "jsontable")?),
            PayloadType::ArrowTable => check_arrow(bytes, sending),
            PayloadType::Image | PayloadType::Audio | PayloadType::Video | PayloadType::Binary => {
                Ok(())
            }
        }
    }
}

fn utf8<'a>(bytes: &'a [u8], type_name: &str) -> std::result::Result<&'a str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("{type_name} payload is not valid UTF-8: {e}"))
}

/// A jsontable is a JSON array whose elements are all objects.
fn check_json_table(text: &str) -> std::result::Result<(), String> {
    check_rows(&mut serde_json::Deserializer::from_str(text))
}

/// A reader passing on the bytes of `R` as long as they are UTF-8, failing with
/// `InvalidData` (a [`NotUtf8`] inside) at the first byte that is not, or at an end inside a
/// character. Chunk by chunk, without holding more.
struct Utf8Checked<R> {
    inner: R,
    buf: Box<[u8]>,
    /// `buf[start..valid]` is checked and not yet read; `buf[valid..filled]` is the start of a
    /// character cut by the chunk's end.
    start: usize,
    valid: usize,
    filled: usize,
    /// Bytes of the stream before `buf[0]`, for the offset in errors.
    before: u64,
}

/// What `Utf8Checked` found, carried in its `io::Error`: the offset and what is wrong there.
#[derive(Debug)]
struct NotUtf8(String);

impl NotUtf8 {
    /// The `NotUtf8` inside `e`, if it is one.
    fn inside(e: &std::io::Error) -> Option<&NotUtf8> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

impl fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not valid UTF-8 ({})", self.0)
    }
}

impl std::error::Error for NotUtf8 {}

impl<R> Utf8Checked<R> {
    fn new(inner: R) -> Self {
        Utf8Checked {
            inner,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            start: 0,
            valid: 0,
            filled: 0,
            before: 0,
        }
    }
}

impl<R: std::io::Read> std::io::Read for Utf8Checked<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.start == self.valid {
            // Keep the cut character's bytes, then read more after them.
            self.buf.copy_within(self.valid..self.filled, 0);
            self.before += self.valid as u64;
            self.filled -= self.valid;
            (self.start, self.valid) = (0, 0);
            let n = self.inner.read(&mut self.buf[self.filled..])?;
            self.filled += n;
            match std::str::from_utf8(&self.buf[..self.filled]) {
                Ok(_) if n == 0 => return Ok(0),
                Ok(_) => self.valid = self.filled,
                Err(e) if e.error_len().is_none() && n > 0 => self.valid = e.valid_up_to(),
                Err(e) => {
                    let at = self.before + e.valid_up_to() as u64;
                    let why = match e.error_len() {
                        Some(_) => format!("invalid byte at offset {at}"),
                        None => format!("ends inside a character at offset {at}"),
                    };
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        NotUtf8(why),
                    ));
                }
            }
        }
        let n = out.len().min(self.valid - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

fn check_rows<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
) -> std::result::Result<(), String> {
    use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    /// One row: any object; its values are skipped without being built.
    struct Row;
    impl<'de> Deserialize<'de> for Row {
        fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Row, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Row;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a row object")
                }
                fn visit_map<A: MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> std::result::Result<Row, A::Error> {
                    while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    Ok(Row)
                }
            }
            d.deserialize_map(V)
        }
    }
    struct Rows;
    impl<'de> Visitor<'de> for Rows {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON array of row objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
            while seq.next_element::<Row>()?.is_some() {}
            Ok(())
        }
    }
    de.deserialize_seq(Rows)
        .and_then(|_| de.end())
        .map_err(|e| format!("jsontable payload is not a JSON array of row objects: {e}"))
}

const ARROW_FILE_MAGIC: &[u8] = b"ARROW1";

/// Sending: the bytes must be a complete, readable Arrow IPC stream. Receiving: the stream
/// format or the file format (other implementations may write either); the schema must read.
fn check_arrow(bytes: &[u8], sending: bool) -> std::result::Result<(), String> {
    use arrow_ipc::reader::{FileReader, StreamReader};
    let is_file = bytes.len() >= 8 && bytes.starts_with(ARROW_FILE_MAGIC);
    if is_file {
        if sending {
            return Err(
                "arrowtable payload is in the Arrow IPC file format; send the IPC stream format"
                    .into(),
            );
        }
        let reader = FileReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| format!("arrowtable payload is not a readable Arrow IPC file: {e}"))?;
        let _ = reader.schema();
        return Ok(());
    }
    let reader = StreamReader::try_new(bytes, None)
        .map_err(|e| format!("arrowtable payload is not a readable Arrow IPC stream: {e}"))?;
    if sending {
        for batch in reader {
            batch.map_err(|e| format!("arrowtable payload has an unreadable record batch: {e}"))?;
        }
    }
    Ok(())
}

impl fmt::Display for PayloadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PayloadType {
    type Err = Error;
    fn from_str(s: &str) -> Result<PayloadType> {
        PayloadType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidPayloadType,
                    format!(
                        "unknown payload_type {s:?}; expected one of text, dictionary, arrowtable, \
                         jsontable, image, audio, video, binary"
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in PayloadType::ALL {
            assert_eq!(t.as_str().parse::<PayloadType>().unwrap(), t);
        }
        let e = "Text".parse::<PayloadType>().unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidPayloadType);
    }

    #[test]
    fn validation_per_type() {
        assert!(PayloadType::Text
            .validate_outgoing("héllo".as_bytes())
            .is_ok());
        let e = PayloadType::Text
            .validate_outgoing(&[0xff, 0xfe])
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidPayload);
        let e = PayloadType::Text.validate_incoming(&[0xff]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::DeserializationError);
        assert!(PayloadType::Dictionary
            .validate_outgoing(br#"{"a":[1,2]}"#)
            .is_ok());
        assert!(PayloadType::Dictionary.validate_outgoing(b"{oops").is_err());
        assert!(PayloadType::JsonTable
            .validate_outgoing(br#"[{"a":1},{"a":2}]"#)
            .is_ok());
        assert!(PayloadType::JsonTable.validate_outgoing(b"[]").is_ok());
        assert!(PayloadType::JsonTable
            .validate_outgoing(br#"[1,2]"#)
            .is_err());
        assert!(PayloadType::JsonTable
            .validate_outgoing(br#"{"a":1}"#)
            .is_err());
        assert!(PayloadType::JsonTable
            .validate_outgoing(br#"[{"a":1}] x"#)
            .is_err());
        assert!(PayloadType::ArrowTable
            .validate_outgoing(b"not arrow")
            .is_err());
        assert!(PayloadType::Binary.validate_outgoing(&[0, 1, 2]).is_ok());
    }

    /// JSON is UTF-8 throughout: in a value that is only skipped as well as in one read.
    #[test]
    fn json_payloads_must_be_utf8() {
        let dir = tempfile::tempdir().unwrap();
        for (t, bytes) in [
            (PayloadType::Dictionary, &b"{\"a\":\"\xff\"}"[..]),
            (PayloadType::Dictionary, b"{\"\xc3\":1}"),
            (PayloadType::JsonTable, b"[{\"a\":\"\xed\xa0\x80\"}]"),
            (PayloadType::JsonTable, b"[{\"\xff\":1}]"),
        ] {
            let shown = String::from_utf8_lossy(bytes);
            let e = t.validate_outgoing(bytes).expect_err(&shown);
            assert_eq!(e.code(), ErrorCode::InvalidPayload, "{shown}");
            let e = t.validate_incoming(bytes).expect_err(&shown);
            assert_eq!(e.code(), ErrorCode::DeserializationError, "{shown}");
            assert!(e.message().contains("UTF-8"), "{shown}: {e}");
            let path = dir.path().join("payload");
            std::fs::write(&path, bytes).unwrap();
            let e = t.validate_incoming_file(&path).expect_err(&shown);
            assert_eq!(e.code(), ErrorCode::DeserializationError, "{shown}");
            assert!(e.message().contains("UTF-8"), "{shown}: {e}");
        }
    }

    #[test]
    fn file_validation_matches_memory_validation() {
        let dir = tempfile::tempdir().unwrap();
        // A multi-byte character straddling the 64 KiB read boundary must not fail.
        let mut text = "a".repeat(64 * 1024 - 1).into_bytes();
        text.extend_from_slice("é✓".as_bytes());
        let cases: Vec<(PayloadType, Vec<u8>)> = vec![
            (PayloadType::Text, text.clone()),
            (PayloadType::Text, [&text[..], &[0xff]].concat()),
            (PayloadType::Text, text[..text.len() - 1].to_vec()),
            (PayloadType::Dictionary, br#"{"a":[1,{"b":null}]}"#.to_vec()),
            (PayloadType::Dictionary, b"{".to_vec()),
            (
                PayloadType::Dictionary,
                [&b"[\""[..], &text, b"\"]"].concat(),
            ),
            (
                PayloadType::Dictionary,
                [&b"[\""[..], &text, b"\xff\"]"].concat(),
            ),
            (
                PayloadType::Dictionary,
                [&b"[\""[..], &text[..text.len() - 1], b"\"]"].concat(),
            ),
            (
                PayloadType::JsonTable,
                [&b"[{\"a\":\""[..], &text, b"\xc3\"}]"].concat(),
            ),
            (PayloadType::JsonTable, br#"[{"a":1},{}]"#.to_vec()),
            (PayloadType::JsonTable, br#"[{"a":1},2]"#.to_vec()),
            (PayloadType::ArrowTable, b"nope".to_vec()),
            (PayloadType::Binary, vec![0xff; 10]),
        ];
        for (i, (t, bytes)) in cases.into_iter().enumerate() {
            let path = dir.path().join(i.to_string());
            std::fs::write(&path, &bytes).unwrap();
            let (file, memory) = (t.validate_incoming_file(&path), t.validate_incoming(&bytes));
            assert_eq!(
                file.is_ok(),
                memory.is_ok(),
                "case {i} ({t}): {file:?} {memory:?}"
            );
        }
    }
}
