//! Canonical JSON for image configs, manifests and indexes: object keys
//! sorted by byte order, no whitespace, strings escaped as `serde_json` does.
//! Sorting happens here rather than through map types, so the output does not
//! depend on whether a dependency turns on `serde_json/preserve_order`.

use serde::Serialize;
use serde_json::Value;

/// Serializes `value` as canonical JSON.
pub(crate) fn to_canonical_json(value: &impl Serialize) -> serde_json::Result<Vec<u8>> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_value(&value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();

            out.push(b'{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_value(&map[key], out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_nested_keys() {
        let value = serde_json::json!({"b": 1, "a": {"z": [true, null], "m": "x"}});

        let json = to_canonical_json(&value).unwrap();

        assert_eq!(String::from_utf8(json).unwrap(), r#"{"a":{"m":"x","z":[true,null]},"b":1}"#);
    }

    #[test]
    fn canonical_json_escapes_control_characters() {
        let json = to_canonical_json(&serde_json::json!({"k": "line\nbreak"})).unwrap();

        assert_eq!(String::from_utf8(json).unwrap(), r#"{"k":"line\nbreak"}"#);
    }
}
