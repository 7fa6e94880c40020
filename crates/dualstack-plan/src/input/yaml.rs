//! Untyped YAML reading (via serde-saphyr into `serde_json::Value`) and small tree helpers.

use serde_json::Value;

use super::InputError;

/// Parses every document of a (possibly multi-document) YAML stream. Empty documents are dropped.
pub fn documents(file: &str, text: &str) -> Result<Vec<Value>, InputError> {
    let docs: Vec<Option<Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| InputError::Yaml {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
    Ok(docs
        .into_iter()
        .flatten()
        .filter(|v| !v.is_null())
        .collect())
}

/// Follows a path of object keys.
pub fn get<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// A scalar as text: strings as they are, numbers and booleans in their YAML spelling.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The string at `path`, if it is a scalar.
pub fn get_text(value: &Value, path: &[&str]) -> Option<String> {
    get(value, path).and_then(scalar_text)
}

/// The 1-based line of the first line in `text` that contains `needle`, if any.
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multi_document_streams_and_skips_empty_ones() {
        let docs = documents("x.yaml", "---\na: 1\n---\n---\nb: [x, z]\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(get_text(&docs[0], &["a"]).as_deref(), Some("1"));
        assert_eq!(docs[1]["b"][1], "z");
    }

    #[test]
    fn syntax_errors_name_the_file_and_place() {
        let err = documents("bad.yaml", "a: [1, 2\nb: c\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("bad.yaml: not valid YAML"), "{text}");
        assert!(text.contains("line"), "{text}");
    }
}
