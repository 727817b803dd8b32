//! The golden vectors in tests/vectors/: every implementation decodes them the same way.

use natsbridge::{Config, ErrorCode, PayloadType};
use serde_json::Value;
use sha2::Digest;
use std::path::PathBuf;

fn vectors() -> Vec<(PathBuf, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 15,
        "expected the golden vectors in {}",
        dir.display()
    );
    out
}

/// The exact message of a vector: its `raw` text, its `raw_hex` bytes, or its `envelope`.
fn message(v: &Value) -> Vec<u8> {
    if let Some(raw) = v.get("raw") {
        return raw.as_str().unwrap().as_bytes().to_vec();
    }
    if let Some(raw) = v.get("raw_hex") {
        return hex::decode(raw.as_str().unwrap()).unwrap();
    }
    serde_json::to_vec(&v["envelope"]).unwrap()
}

/// The arrowtable value as {"column": [values...]}.
fn arrow_columns(bytes: &[u8]) -> Value {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes, None).unwrap();
    let schema = reader.schema();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let mut cols = serde_json::Map::new();
    for (i, field) in schema.fields().iter().enumerate() {
        let mut values = Vec::new();
        for b in &batches {
            let col = b.column(i);
            match field.data_type() {
                arrow_schema::DataType::Int64 => values.extend(
                    col.as_primitive::<Int64Type>()
                        .iter()
                        .map(|x| x.map(Value::from).unwrap_or(Value::Null)),
                ),
                arrow_schema::DataType::Utf8 => values.extend(
                    col.as_string::<i32>()
                        .iter()
                        .map(|x| x.map(Value::from).unwrap_or(Value::Null)),
                ),
                other => panic!("vector column type {other} not handled"),
            }
        }
        cols.insert(field.name().clone(), Value::Array(values));
    }
    Value::Object(cols)
}

#[tokio::test]
async fn golden_vectors_decode_as_expected() {
    let config = Config::default().with_fileserver_url(None);
    for (path, v) in vectors() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let result = natsbridge::smartreceive(&message(&v), &config).await;
        if let Some(code) = v.get("expect_error") {
            let e = result.expect_err(&name);
            assert_eq!(
                e.code(),
                ErrorCode::from_wire(code.as_str().unwrap()).unwrap(),
                "{name}: {e}"
            );
            continue;
        }
        let env = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let expect = &v["expect"];
        let header = env.header_json();
        for (k, want) in expect.as_object().unwrap() {
            if k != "payloads" {
                assert_eq!(&header[k], want, "{name}: {k}");
            }
        }
        let want = expect["payloads"].as_array().unwrap();
        assert_eq!(env.payloads.len(), want.len(), "{name}");
        for (p, w) in env.payloads.iter().zip(want) {
            let bytes = p.bytes().unwrap();
            assert_eq!(p.dataname, w["dataname"].as_str().unwrap(), "{name}");
            assert_eq!(p.payload_type.as_str(), w["payload_type"], "{name}");
            assert_eq!(p.transport.as_str(), w["transport"], "{name}");
            assert_eq!(p.size, w["size"].as_u64().unwrap(), "{name}");
            assert_eq!(
                hex::encode(sha2::Sha256::digest(bytes)),
                w["sha256"].as_str().unwrap(),
                "{name} {}",
                p.dataname
            );
            if let Some(value) = w.get("value") {
                let got = match p.payload_type {
                    PayloadType::Text => Value::from(std::str::from_utf8(bytes).unwrap()),
                    PayloadType::Dictionary | PayloadType::JsonTable => {
                        serde_json::from_slice(bytes).unwrap()
                    }
                    PayloadType::ArrowTable => arrow_columns(bytes),
                    _ => panic!("{name}: no value form for {}", p.payload_type),
                };
                assert_eq!(&got, value, "{name} {}", p.dataname);
            }
        }
    }
}

#[test]
fn vectors_are_what_the_generator_writes() {
    // The generator is deterministic: a vector edited by hand would drift from it.
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/make_vectors.py"
        ))
        .arg("--check")
        .output()
        .expect("python3 is needed to check the vectors");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
