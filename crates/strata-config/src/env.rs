//! The environment, as a lookup a test can replace.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::ConfigError;

/// A variable lookup: the value of a name, if set.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where environment variables are read from: the process's environment, or a fixed map in
/// tests. An empty value counts as unset. Cheap to clone.
#[derive(Clone)]
pub struct Env {
    get: Arc<Lookup>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl Env {
    /// The process's environment.
    pub fn process() -> Self {
        Self::from_fn(|k| std::env::var(k).ok())
    }

    /// Variables from a function.
    pub fn from_fn(get: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self { get: Arc::new(get) }
    }

    /// Exactly these variables (for tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::from_fn(move |k| map.get(k).cloned())
    }

    /// The variable's value, `None` when unset or empty.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.get)(var).filter(|v| !v.is_empty())
    }

    /// The first of `vars` that is set.
    pub fn first(&self, vars: &[&str]) -> Option<String> {
        vars.iter().find_map(|v| self.get(v))
    }

    /// The variable parsed as `T`; an error names the variable, the value and `expected`
    /// (e.g. `a whole number`).
    pub fn parse<T: std::str::FromStr>(
        &self,
        var: &str,
        expected: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        self.get(var)
            .map(|v| {
                v.parse().map_err(|_| ConfigError::Env {
                    var: var.to_string(),
                    value: v.clone(),
                    expected,
                })
            })
            .transpose()
    }

    /// The variable as a flag: `true`/`1` (any case) is true, anything else false.
    pub fn flag(&self, var: &str) -> Option<bool> {
        self.get(var)
            .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_unset_and_bad_numbers_are_named() {
        let e = Env::from_pairs(&[("A", ""), ("B", "x"), ("C", "7"), ("D", "TRUE")]);
        assert_eq!(e.get("A"), None);
        assert_eq!(e.first(&["A", "C"]).as_deref(), Some("7"));
        assert_eq!(e.parse::<usize>("C", "a whole number").unwrap(), Some(7));
        let err = e.parse::<usize>("B", "a whole number").unwrap_err();
        assert_eq!(err.to_string(), "$B=\"x\" is not a whole number");
        assert_eq!(e.flag("D"), Some(true));
    }
}
