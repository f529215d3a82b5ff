//! The function's environment as `up` sets it: read from the process environment and an
//! optional dotenv file, checked by the function's own configuration code before any AWS call.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use token_function::config::{Config, ConfigError, DEFAULT_TOKEN_URL};
use tokendeploy_deploy::FunctionEnvironment;

use crate::UsageError;

/// The variables `up` passes to the function; the rest of the environment stays local.
const PASSED: [&str; 6] = [
    "TOKEN_PROVIDER",
    "CONSUMER_KEY",
    "CONSUMER_SECRET",
    "TOKEN_URL",
    "ALLOWED_ORIGINS",
    "UPSTREAM_TIMEOUT_MS",
];

/// The names every deployed function has: required, or given a default by `up`.
pub const ALWAYS_SET: [&str; 5] =
    ["TOKEN_PROVIDER", "CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN_URL", "ALLOWED_ORIGINS"];

/// For `up` and `plan`: complete and valid, or a usage error naming what is wrong.
pub fn function_environment(env_file: Option<&Path>) -> Result<FunctionEnvironment> {
    let known = known_variables(env_file)?;
    collect(|name| known.get(name).cloned())
}

/// For `status`: whatever is at hand (secrets may not be), with `up`'s defaults.
pub fn known_environment(env_file: Option<&Path>) -> Result<FunctionEnvironment> {
    let mut known = known_variables(env_file)?;
    with_defaults(&mut known);
    Ok(FunctionEnvironment(known))
}

/// The passed variables set in the environment or, failing that, in the env file.
fn known_variables(env_file: Option<&Path>) -> Result<BTreeMap<String, String>> {
    let from_file = match env_file {
        Some(path) => read_env_file(path)?,
        None => BTreeMap::new(),
    };
    Ok(PASSED
        .iter()
        .filter_map(|name| {
            let value = std::env::var(name).ok().or_else(|| from_file.get(*name).cloned());
            value.filter(|v| !v.trim().is_empty()).map(|v| (name.to_string(), v))
        })
        .collect())
}

fn with_defaults(variables: &mut BTreeMap<String, String>) {
    variables.entry("TOKEN_PROVIDER".into()).or_insert_with(|| "dolby".into());
    variables.entry("TOKEN_URL".into()).or_insert_with(|| DEFAULT_TOKEN_URL.into());
}

fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let entries = dotenvy::from_path_iter(path)
        .map_err(|e| UsageError(format!("cannot read --env-file {}: {e}", path.display())))?;
    let mut variables = BTreeMap::new();
    for entry in entries {
        // dotenvy's parse errors name the line, not the value.
        let (name, value) =
            entry.map_err(|e| UsageError(format!("--env-file {} is not dotenv: {e}", path.display())))?;
        variables.insert(name, value);
    }
    Ok(variables)
}

/// Validates with the function's own parser, then fills the defaults in, so the deployed
/// function states all it runs with.
fn collect(lookup: impl Fn(&str) -> Option<String>) -> Result<FunctionEnvironment> {
    let lookup = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    Config::from_lookup(lookup).map_err(|e| UsageError(usage_message(&e)))?;
    let mut variables: BTreeMap<String, String> =
        PASSED.iter().filter_map(|name| lookup(name).map(|v| (name.to_string(), v))).collect();
    with_defaults(&mut variables);
    Ok(FunctionEnvironment(variables))
}

fn usage_message(error: &ConfigError) -> String {
    match error {
        ConfigError::Missing(name) => format!(
            "{name} is not set: export it or put it in a file passed with --env-file (see README: Configuration); nothing was deployed"
        ),
        ConfigError::Invalid { variable, expected } => {
            format!("{variable} must be {expected}; nothing was deployed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<FunctionEnvironment> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        collect(|name| map.get(name).cloned())
    }

    #[test]
    fn fills_defaults_and_passes_only_the_function_variables() {
        let env = from(&[
            ("CONSUMER_KEY", "k"),
            ("CONSUMER_SECRET", "s"),
            ("ALLOWED_ORIGINS", "*"),
            ("HOME", "/root"),
        ])
        .unwrap();
        assert_eq!(
            env.0.keys().collect::<Vec<_>>(),
            ["ALLOWED_ORIGINS", "CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN_PROVIDER", "TOKEN_URL"]
        );
        assert_eq!(env.0["TOKEN_URL"], DEFAULT_TOKEN_URL);
    }

    #[test]
    fn a_missing_or_empty_secret_is_a_usage_error_naming_it() {
        let err =
            from(&[("CONSUMER_KEY", "k"), ("CONSUMER_SECRET", " "), ("ALLOWED_ORIGINS", "*")]).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(err.to_string().starts_with("CONSUMER_SECRET is not set"), "{err}");
    }
}
