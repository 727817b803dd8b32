//! Settings as data: a client's [`Config`] and one send's [`SendOptions`] read from one JSON
//! object each. This is the one place that decides what a setting is called, what values it
//! takes and what it defaults to; every binding hands its user's settings here as JSON and
//! gets back an error naming the setting at fault.
//!
//! Keys are snake_case; durations are whole milliseconds in keys ending `_ms` (seconds in
//! `link_ttl_s`); sizes are bytes. A key set to `null` keeps its default. Unknown keys are
//! refused, so a misspelt setting never goes silently unused. The keys are listed in
//! [`CONFIG_KEYS`] and [`SEND_OPTION_KEYS`] and described in the README ("Settings").

use crate::bridge::SendOptions;
use crate::config::{AllowedOrigins, Config, Credentials};
use crate::envelope::validate_msg_purpose;
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Every key of a client's settings object.
pub const CONFIG_KEYS: &[&str] = &[
    "use_env",
    "nats_url",
    "fileserver_url",
    "fileserver_token",
    "size_threshold",
    "sender_name",
    "client_name",
    "connect_timeout_ms",
    "operation_timeout_ms",
    "http_idle_timeout_ms",
    "subscription_queue",
    "ordered_subscriptions",
    "token",
    "user",
    "password",
    "creds_file",
    "tls_required",
    "tls_root_certificates",
    "tls_client_certificate",
    "tls_client_key",
    "link_oneshot",
    "link_ttl_s",
    "fallback_to_direct",
    "allowed_origins",
    "max_download_bytes",
    "download_attempts",
    "download_base_delay_ms",
    "download_max_delay_ms",
    "parallel_downloads",
    "download_timeout_ms",
    "min_transfer_rate",
    "download_dir",
];

/// Every key of one send's options object.
pub const SEND_OPTION_KEYS: &[&str] = &[
    "correlation_id",
    "msg_id",
    "msg_purpose",
    "sender_name",
    "sender_id",
    "receiver_name",
    "receiver_id",
    "reply_to",
    "reply_to_msg_id",
    "metadata",
    "size_threshold",
    "fallback_to_direct",
    "confirm",
];

fn invalid(key: &str, what: &str, got: &Value) -> Error {
    let mut shown = got.to_string();
    if shown.len() > 80 {
        let mut end = 77;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push_str("...");
    }
    Error::invalid_argument(format!("setting {key:?} must be {what}, got {shown}"))
}

fn unknown(key: &str, known: &[&str], what: &str) -> Error {
    let hint = known
        .iter()
        .find(|k| k.replace('_', "") == key.to_ascii_lowercase().replace(['_', '-'], ""))
        .map(|k| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default();
    Error::invalid_argument(format!("unknown {what} {key:?}{hint}"))
}

/// Parses `json` as an object; empty text or `null` is an empty object.
fn object(json: &str, what: &str) -> Result<Map<String, Value>> {
    if json.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(Error::invalid_argument(format!(
            "{what} must be a JSON object, got {}",
            kind(&other)
        ))),
        Err(e) => Err(Error::invalid_argument(format!(
            "{what} are not valid JSON: {e}"
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string(key: &str, v: &Value) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid(key, "a string", v))
}

/// A string; `""` reads as unset.
fn optional_string(key: &str, v: &Value) -> Result<Option<String>> {
    Ok(Some(string(key, v)?).filter(|s| !s.is_empty()))
}

fn boolean(key: &str, v: &Value) -> Result<bool> {
    v.as_bool().ok_or_else(|| invalid(key, "true or false", v))
}

fn count(key: &str, v: &Value, min: u64) -> Result<u64> {
    match v.as_u64() {
        Some(n) if n >= min => Ok(n),
        _ => Err(invalid(key, &format!("an integer of at least {min}"), v)),
    }
}

fn size(key: &str, v: &Value, min: u64) -> Result<usize> {
    usize::try_from(count(key, v, min)?).map_err(|_| invalid(key, "a smaller integer", v))
}

fn millis(key: &str, v: &Value, min: u64) -> Result<Duration> {
    Ok(Duration::from_millis(count(key, v, min)?))
}

fn strings(key: &str, v: &Value) -> Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(key, "an array of strings", v))
            })
            .collect(),
        _ => Err(invalid(key, "a string or an array of strings", v)),
    }
}

impl Config {
    /// A client's settings from a JSON object (see the module docs and the README's
    /// "Settings"): the built-in defaults — with the environment applied first when
    /// `"use_env": true` (see [`Config::from_env`]) — then every key given, then
    /// [`Config::validate`]. `""`, `"{}"` and `"null"` give the defaults.
    ///
    /// Errors: `INVALID_ARGUMENT` naming the setting (unknown key, wrong type, value out of
    /// range).
    pub fn from_json(json: &str) -> Result<Config> {
        let map = object(json, "settings")?;
        let use_env = match map.get("use_env") {
            None | Some(Value::Null) => false,
            Some(v) => boolean("use_env", v)?,
        };
        let mut c = if use_env {
            Config::from_env()?
        } else {
            Config::default()
        };
        let (mut user, mut password) = (None, None);
        let (mut cert, mut key) = (None, None);
        for (k, v) in &map {
            if v.is_null() {
                if !CONFIG_KEYS.contains(&k.as_str()) {
                    return Err(unknown(k, CONFIG_KEYS, "setting"));
                }
                continue;
            }
            match k.as_str() {
                "use_env" => {}
                "nats_url" => {
                    let urls = strings(k, v)?;
                    if urls.is_empty() || urls.iter().any(|u| u.trim().is_empty()) {
                        return Err(invalid(k, "a non-empty URL or array of URLs", v));
                    }
                    c.nats_url = urls.join(",");
                }
                "fileserver_url" => c.fileserver_url = optional_string(k, v)?,
                "fileserver_token" => c.fileserver_token = optional_string(k, v)?,
                "size_threshold" => c.size_threshold = size(k, v, 1)?,
                "sender_name" => c.sender_name = string(k, v)?,
                "client_name" => c.client_name = optional_string(k, v)?,
                "connect_timeout_ms" => c.connect_timeout = millis(k, v, 1)?,
                "operation_timeout_ms" => c.operation_timeout = millis(k, v, 1)?,
                "http_idle_timeout_ms" => c.http_idle_timeout = millis(k, v, 1)?,
                "subscription_queue" => c.subscription_queue = size(k, v, 1)?,
                "ordered_subscriptions" => c.ordered_subscriptions = boolean(k, v)?,
                "token" => c.credentials = Credentials::Token(string(k, v)?),
                "user" => user = Some(string(k, v)?),
                "password" => password = Some(string(k, v)?),
                "creds_file" => c.credentials = Credentials::CredsFile(string(k, v)?.into()),
                "tls_required" => c.tls.required = boolean(k, v)?,
                "tls_root_certificates" => {
                    c.tls.root_certificates =
                        strings(k, v)?.into_iter().map(PathBuf::from).collect()
                }
                "tls_client_certificate" => cert = Some(PathBuf::from(string(k, v)?)),
                "tls_client_key" => key = Some(PathBuf::from(string(k, v)?)),
                "link_oneshot" => c.link.oneshot = boolean(k, v)?,
                "link_ttl_s" => c.link.ttl = Duration::from_secs(count(k, v, 1)?),
                "fallback_to_direct" => c.link.fallback_to_direct = boolean(k, v)?,
                "allowed_origins" => {
                    let origins = strings(k, v)?;
                    if origins.iter().any(String::is_empty) {
                        return Err(invalid(k, "origins that are not empty", v));
                    }
                    c.link.allowed_origins = if origins.iter().any(|o| o == "*") {
                        AllowedOrigins::Any
                    } else if origins.is_empty() {
                        AllowedOrigins::FileServerOnly
                    } else {
                        AllowedOrigins::These(origins)
                    };
                }
                "max_download_bytes" => c.link.max_download_bytes = count(k, v, 1)?,
                "download_attempts" => {
                    c.link.retry.max_attempts = u32::try_from(count(k, v, 1)?)
                        .map_err(|_| invalid(k, "a smaller integer", v))?
                }
                "download_base_delay_ms" => c.link.retry.base_delay = millis(k, v, 0)?,
                "download_max_delay_ms" => c.link.retry.max_delay = millis(k, v, 0)?,
                "parallel_downloads" => c.link.parallel_downloads = size(k, v, 1)?,
                "download_timeout_ms" => c.link.download_timeout = millis(k, v, 1)?,
                "min_transfer_rate" => c.link.min_transfer_rate = count(k, v, 1)?,
                "download_dir" => c.link.download_dir = optional_string(k, v)?.map(PathBuf::from),
                _ => return Err(unknown(k, CONFIG_KEYS, "setting")),
            }
        }
        match (user, password) {
            (None, None) => {}
            (Some(user), Some(password)) => {
                c.credentials = Credentials::UserPassword { user, password }
            }
            _ => {
                return Err(Error::invalid_argument(
                    "settings \"user\" and \"password\" go together: give both or neither",
                ))
            }
        }
        let kinds = ["token", "user", "creds_file"]
            .iter()
            .filter(|k| map.get(**k).is_some_and(|v| !v.is_null()))
            .count();
        if kinds > 1 {
            return Err(Error::invalid_argument(
                "give one kind of NATS credentials: \"token\", \"user\"/\"password\" or \"creds_file\"",
            ));
        }
        match (cert, key) {
            (None, None) => {}
            (Some(cert), Some(key)) => c.tls.client_certificate = Some((cert, key)),
            _ => {
                return Err(Error::invalid_argument(
                    "settings \"tls_client_certificate\" and \"tls_client_key\" go together",
                ))
            }
        }
        c.validate()?;
        Ok(c)
    }
}

impl SendOptions {
    /// One send's options from a JSON object (see the module docs): envelope fields
    /// (`correlation_id`, `msg_id`, `msg_purpose`, `sender_name`, `sender_id`,
    /// `receiver_name`, `receiver_id`, `reply_to`, `reply_to_msg_id` as strings, `metadata` an
    /// object) and per-send settings (`size_threshold`, `fallback_to_direct`, `confirm`).
    /// Anything not given is the client's default. `""`, `"{}"` and `"null"` give the
    /// defaults.
    ///
    /// Errors: `INVALID_ARGUMENT` naming the option.
    pub fn from_json(json: &str) -> Result<SendOptions> {
        let map = object(json, "send options")?;
        let mut o = SendOptions::default();
        for (k, v) in map {
            if v.is_null() {
                if !SEND_OPTION_KEYS.contains(&k.as_str()) {
                    return Err(unknown(&k, SEND_OPTION_KEYS, "send option"));
                }
                continue;
            }
            match k.as_str() {
                "correlation_id" => o.correlation_id = Some(string(&k, &v)?),
                "msg_id" => o.msg_id = Some(string(&k, &v)?),
                "msg_purpose" => {
                    let p = string(&k, &v)?;
                    validate_msg_purpose(&p)?;
                    o.msg_purpose = Some(p);
                }
                "sender_name" => o.sender_name = Some(string(&k, &v)?),
                "sender_id" => o.sender_id = Some(string(&k, &v)?),
                "receiver_name" => o.receiver_name = Some(string(&k, &v)?),
                "receiver_id" => o.receiver_id = Some(string(&k, &v)?),
                "reply_to" => o.reply_to = Some(string(&k, &v)?),
                "reply_to_msg_id" => o.reply_to_msg_id = Some(string(&k, &v)?),
                "metadata" => match v {
                    Value::Object(m) => o.metadata = Some(m),
                    other => return Err(invalid(&k, "a JSON object", &other)),
                },
                "size_threshold" => o.size_threshold = Some(size(&k, &v, 1)?),
                "fallback_to_direct" => o.fallback_to_direct = Some(boolean(&k, &v)?),
                "confirm" => o.confirm = boolean(&k, &v)?,
                _ => return Err(unknown(&k, SEND_OPTION_KEYS, "send option")),
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn err(json: &str) -> String {
        let e = Config::from_json(json).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        e.message().to_owned()
    }

    #[test]
    fn empty_is_the_defaults() {
        for j in ["", "{}", "null", " "] {
            assert_eq!(Config::from_json(j).unwrap(), Config::default());
        }
        assert!(!SendOptions::from_json("{}").unwrap().confirm);
    }

    #[test]
    fn every_key_is_read() {
        let c = Config::from_json(
            r#"{"nats_url":["nats://a:1","nats://b:2"],"fileserver_url":"","size_threshold":7,
            "connect_timeout_ms":1500,"link_ttl_s":60,"allowed_origins":["http://x:1"],
            "download_attempts":2,"download_base_delay_ms":0,"download_max_delay_ms":10,
            "user":"u","password":"p","tls_client_certificate":"c.pem","tls_client_key":"k.pem",
            "ordered_subscriptions":false,"download_dir":"/tmp","client_name":null}"#,
        )
        .unwrap();
        assert_eq!(c.nats_url, "nats://a:1,nats://b:2");
        assert_eq!(c.fileserver_url, None);
        assert_eq!(c.size_threshold, 7);
        assert_eq!(c.connect_timeout, Duration::from_millis(1500));
        assert_eq!(c.link.ttl, Duration::from_secs(60));
        assert_eq!(
            c.link.allowed_origins,
            AllowedOrigins::These(vec!["http://x:1".into()])
        );
        assert_eq!(c.link.retry.max_attempts, 2);
        assert!(!c.ordered_subscriptions);
        assert!(matches!(c.credentials, Credentials::UserPassword { .. }));
        assert!(c.tls.client_certificate.is_some());
        assert_eq!(c.link.download_dir, Some(PathBuf::from("/tmp")));
        let star = Config::from_json(r#"{"allowed_origins":"*"}"#).unwrap();
        assert_eq!(star.link.allowed_origins, AllowedOrigins::Any);
    }

    #[test]
    fn errors_name_the_setting() {
        assert!(err(r#"{"size_threshold":0}"#).contains("\"size_threshold\""));
        assert!(err(r#"{"size_threshold":"big"}"#).contains("\"size_threshold\""));
        assert!(err(r#"{"connect_timeout_ms":-1}"#).contains("\"connect_timeout_ms\""));
        assert!(err(r#"{"sizeThreshold":5}"#).contains("did you mean \"size_threshold\""));
        assert!(err(r#"{"user":"u"}"#).contains("\"password\""));
        assert!(err(r#"{"token":"t","creds_file":"f"}"#).contains("one kind"));
        assert!(err("[1]").contains("JSON object"));
        assert!(err("{").contains("not valid JSON"));
        assert!(!err(r#"{"fileserver_url":"ftp://x"}"#).is_empty());
        let e = SendOptions::from_json(r#"{"confirm":1}"#).unwrap_err();
        assert!(e.message().contains("\"confirm\""), "{}", e.message());
        let e = SendOptions::from_json(r#"{"msg_purpose":"nope"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        let e = SendOptions::from_json(r#"{"reply_subject":"x"}"#).unwrap_err();
        assert!(
            e.message().contains("unknown send option"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn send_options_are_read() {
        let o = SendOptions::from_json(
            r#"{"correlation_id":"c","msg_purpose":"ACK","metadata":{"a":1},
            "size_threshold":10,"fallback_to_direct":false,"confirm":true,"reply_to":null}"#,
        )
        .unwrap();
        assert_eq!(o.correlation_id.as_deref(), Some("c"));
        assert_eq!(o.msg_purpose.as_deref(), Some("ACK"));
        assert_eq!(o.size_threshold, Some(10));
        assert_eq!(o.fallback_to_direct, Some(false));
        assert!(o.confirm);
        assert!(o.reply_to.is_none());
        assert_eq!(o.metadata.unwrap()["a"], 1);
    }
}
