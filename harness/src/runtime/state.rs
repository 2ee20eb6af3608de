//! The `state` operation's output (runtime.md, State). Parsed leniently: the
//! cases judge each field, so a missing or mistyped field is an observation,
//! not a parse failure.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub oci_version: Option<String>,
    pub id: Option<String>,
    pub status: Option<String>,
    pub pid: Option<i64>,
    pub bundle: Option<String>,
    pub annotations: BTreeMap<String, String>,
    /// The whole document, for checks on fields not modelled here.
    pub raw: Value,
}

impl State {
    /// Parses the JSON a runtime printed; `Err` carries a readable reason.
    pub fn parse(text: &str) -> Result<State, String> {
        let raw: Value = serde_json::from_str(text.trim())
            .map_err(|e| format!("state output is not JSON ({e}): {:?}", truncate(text, 200)))?;
        let obj = raw
            .as_object()
            .ok_or_else(|| format!("state output is not a JSON object: {}", truncate(text, 200)))?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        let annotations = obj
            .get("annotations")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(State {
            oci_version: s("ociVersion"),
            id: s("id"),
            status: s("status"),
            pid: obj.get("pid").and_then(Value::as_i64),
            bundle: s("bundle"),
            annotations,
            raw,
        })
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_state() {
        let s = State::parse(
            r#"{"ociVersion":"1.0.2-dev","id":"a","pid":42,"status":"created","bundle":"/b","rootfs":"/b/rootfs","created":"x","owner":"","annotations":{"k":"v"}}"#,
        )
        .unwrap();
        assert_eq!(s.status.as_deref(), Some("created"));
        assert_eq!(s.pid, Some(42));
        assert_eq!(s.annotations.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn missing_fields_are_none_not_errors() {
        let s = State::parse(r#"{"id":"a","status":"stopped"}"#).unwrap();
        assert_eq!(s.pid, None);
        assert_eq!(s.bundle, None);
    }

    #[test]
    fn garbage_is_an_error_naming_the_text() {
        let e = State::parse("container not found").unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        assert!(e.contains("container not found"), "{e}");
    }
}
