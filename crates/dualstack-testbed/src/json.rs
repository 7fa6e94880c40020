//! Comparing Kubernetes objects after a round trip through `k8s-openapi` types.

use serde_json::Value;

/// `value` with every integral float written as an integer: `k8s-openapi` keeps a schema's
/// `minimum`/`maximum` as `f64`, so a `64` in a manifest comes back as `64.0`, which is the
/// same bound. Compare both sides of a round trip through it.
pub fn integral_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, integral_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_that_are_integers_compare_equal_to_integers() {
        let a = serde_json::json!({"minimum": 0.0, "maximum": 64.0, "x": [1.5, 2.0]});
        let b = serde_json::json!({"minimum": 0, "maximum": 64, "x": [1.5, 2]});
        assert_eq!(integral_numbers(a), integral_numbers(b));
    }
}
