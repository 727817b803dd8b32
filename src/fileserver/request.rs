//! The body of `POST /upload`, read the way Go's `encoding/json` reads it into Plik's
//! `Upload`: keys match case-insensitively, unknown keys and `null` values are ignored,
//! a wrong type is an error.

use serde_json::{Map, Value};

/// What a client may ask for when creating an upload (plik.md §3).
#[derive(Debug, Default)]
pub(crate) struct CreateRequest {
    pub one_shot: bool,
    pub removable: bool,
    pub stream: bool,
    pub extend_ttl: bool,
    pub ttl: i64,
    pub comments: String,
    pub login: String,
    pub password: String,
    pub files: Vec<DeclaredFile>,
}

/// A file declared up front, to be uploaded later under its assigned ID.
#[derive(Debug, Default)]
pub(crate) struct DeclaredFile {
    pub name: String,
    pub mime_type: String,
    pub size: i64,
    pub reference: String,
}

/// Parse the (possibly empty) request body; the error text follows
/// `unable to deserialize request body : `.
pub(crate) fn parse_create_request(body: &[u8]) -> Result<CreateRequest, String> {
    if body.is_empty() {
        return Ok(CreateRequest::default());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let fields = match value {
        Value::Null => return Ok(CreateRequest::default()),
        Value::Object(map) => lowercase_keys(map),
        _ => return Err("expected a JSON object".to_string()),
    };
    let files = match fields.get("files") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(parse_declared_file)
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("invalid value for files: expected an array".to_string()),
    };
    Ok(CreateRequest {
        one_shot: get_bool(&fields, "oneshot", "oneShot")?,
        removable: get_bool(&fields, "removable", "removable")?,
        stream: get_bool(&fields, "stream", "stream")?,
        extend_ttl: get_bool(&fields, "extend_ttl", "extend_ttl")?,
        ttl: get_int(&fields, "ttl", "ttl")?,
        comments: get_string(&fields, "comments", "comments")?,
        login: get_string(&fields, "login", "login")?,
        password: get_string(&fields, "password", "password")?,
        files,
    })
}

fn parse_declared_file(item: &Value) -> Result<DeclaredFile, String> {
    let fields = match item {
        Value::Null => return Ok(DeclaredFile::default()),
        Value::Object(map) => lowercase_keys(map.clone()),
        _ => return Err("invalid value in files: expected an object".to_string()),
    };
    Ok(DeclaredFile {
        name: get_string(&fields, "filename", "fileName")?,
        mime_type: get_string(&fields, "filetype", "fileType")?,
        size: get_int(&fields, "filesize", "fileSize")?,
        reference: get_string(&fields, "reference", "reference")?,
    })
}

/// Later keys win when two differ only by case, as with any duplicate key.
fn lowercase_keys(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| (k.to_lowercase(), v))
        .collect()
}

fn get_bool(fields: &Map<String, Value>, key: &str, shown: &str) -> Result<bool, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("invalid value for {shown}: expected a boolean")),
    }
}

fn get_int(fields: &Map<String, Value>, key: &str, shown: &str) -> Result<i64, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("invalid value for {shown}: expected a 64-bit integer")),
        Some(_) => Err(format!("invalid value for {shown}: expected an integer")),
    }
}

fn get_string(fields: &Map<String, Value>, key: &str, shown: &str) -> Result<String, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("invalid value for {shown}: expected a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_null_bodies_are_defaults() {
        for body in [&b""[..], b"null", b"{}"] {
            let r = parse_create_request(body).unwrap();
            assert!(!r.one_shot && r.ttl == 0 && r.files.is_empty());
        }
    }

    #[test]
    fn keys_are_case_insensitive() {
        let r = parse_create_request(
            br#"{"OneShot":true,"TTL":60,"REMOVABLE":true,"Comments":"c","files":[{"FILENAME":"a","fileSize":3,"Reference":"r"}],"unknown":1}"#,
        )
        .unwrap();
        assert!(r.one_shot && r.removable);
        assert_eq!(r.ttl, 60);
        assert_eq!(r.comments, "c");
        assert_eq!(r.files[0].name, "a");
        assert_eq!(r.files[0].size, 3);
        assert_eq!(r.files[0].reference, "r");
    }

    #[test]
    fn wrong_types_are_errors() {
        for body in [
            &br#"{"oneShot":1}"#[..],
            br#"{"ttl":"60"}"#,
            br#"{"ttl":1.5}"#,
            br#"{"ttl":18446744073709551615}"#,
            br#"{"files":{"a":{}}}"#,
            br#"[1]"#,
            br#"{"#,
        ] {
            assert!(
                parse_create_request(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
