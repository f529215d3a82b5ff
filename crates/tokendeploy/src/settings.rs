//! The function's environment as `up` sets it: read from the process environment and an
//! optional dotenv file, checked by the function's own configuration code before any AWS call.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use tokendeploy_config::origins::AllowedOrigins;
use tokendeploy_config::{
    Config, ConfigError, IdentitySettings, ProviderKind, SECRET_ARN, Variable, all_variables,
};
use tokendeploy_deploy::FunctionEnvironment;

use crate::UsageError;
use crate::starting_files;

/// Every variable any provider reads: the names `up` manages on the function, so those of
/// another provider left from an earlier `up` are removed.
fn managed() -> Vec<&'static str> {
    all_variables().into_iter().map(|variable| variable.name).collect()
}

/// The names every function deployed with `provider` has: required, or given a default by `up`.
pub fn always_set(provider: ProviderKind) -> Vec<&'static str> {
    provider.variables().filter(Variable::always_set).map(|variable| variable.name).collect()
}

/// The provider `variables` name; Dolby when none is named (the function's own default).
pub fn provider_of(variables: &BTreeMap<String, String>) -> ProviderKind {
    variables.get("TOKEN_PROVIDER").and_then(|name| ProviderKind::parse(name)).unwrap_or(ProviderKind::Dolby)
}

/// What the command line says about the function's variables, over the environment and the
/// env file: `--provider` and `--allow-origin`.
#[derive(Debug, Clone, Copy)]
pub struct Flags<'a> {
    pub provider: Option<ProviderKind>,
    pub allow_origins: &'a [String],
    /// `--secret-store secrets-manager`: the function reads its secret on its first request.
    pub secret_in_store: bool,
}

/// For `up` and `plan`: complete and valid, or a usage error naming what is wrong.
pub fn function_environment(env_file: Option<&Path>, flags: Flags) -> Result<FunctionEnvironment> {
    validated(known_variables(env_file, flags)?, flags.secret_in_store)
}

/// For `status`: whatever is at hand (secrets may not be), with `up`'s defaults.
pub fn known_environment(env_file: Option<&Path>, flags: Flags) -> Result<FunctionEnvironment> {
    let mut known = known_variables(env_file, flags)?;
    with_defaults(&mut known);
    Ok(FunctionEnvironment::new(known, &managed()))
}

/// What `up` should say before it deploys: a function that mints a token for whoever a
/// request names gives anyone a token for anyone; one still holding the example values `init`
/// wrote gives no working token at all.
pub fn warnings(environment: &FunctionEnvironment) -> Vec<String> {
    let config = Config::from_lookup(|name| environment.variables.get(name).cloned());
    let mut warnings = Vec::new();
    let examples = starting_files::examples_left(provider_of(&environment.variables), &environment.variables);
    if !examples.is_empty() {
        let (holds, values) = if examples.len() == 1 { ("holds", "value") } else { ("hold", "values") };
        warnings.push(format!(
            "warning: {} still {holds} the example {values} `tokendeploy init` wrote: put your own in (docs/configuration.md), or no token will work",
            examples.join(", ")
        ));
    }
    if let Ok(Some(IdentitySettings::Trust)) = config.map(|config| config.identity) {
        warnings.push("warning: IDENTITY_MODE=trust: the function mints a token for whatever identity a request names, so anyone can get a token as anyone; for demos only, use IDENTITY_MODE=jwt in production".into());
    }
    if environment.variables.get("ALLOWED_ORIGINS").is_some_and(|origins| origins.trim() == "*") {
        warnings.push("warning: any web page may ask for tokens (allowed origins: *); name your app's origins with --allow-origin or ALLOWED_ORIGINS".into());
    }
    warnings
}

/// The variables of the provider in force, each from the first place that sets it (not
/// empty): a flag, the environment, the env file. Another provider's variables (and secrets)
/// stay on this machine.
fn known_variables(env_file: Option<&Path>, flags: Flags) -> Result<BTreeMap<String, String>> {
    let allowed_origins = allowed_origins(flags.allow_origins)?;
    let from_environment = from_environment();
    // The first variable this run would take from the environment that is not text.
    let not_text = std::cell::RefCell::new(None);
    let from_file = match env_file {
        Some(path) => read_env_file(path)?,
        None => BTreeMap::new(),
    };
    let lookup = |name: &str| -> Option<String> {
        let flag = match name {
            "TOKEN_PROVIDER" => flags.provider.map(|provider| provider.name().to_string()),
            "ALLOWED_ORIGINS" => allowed_origins.clone(),
            _ => None,
        };
        let set = |value: &String| !value.trim().is_empty();
        let from_environment = || match from_environment.get(name)? {
            Some(value) => Some(value.clone()).filter(set),
            None => {
                not_text.borrow_mut().get_or_insert_with(|| name.to_string());
                None
            }
        };
        let from_file = || from_file.get(name).filter(|value| set(value)).cloned();
        flag.or_else(from_environment).or_else(from_file)
    };
    let picked = pick(lookup);
    match not_text.into_inner() {
        Some(name) => Err(UsageError(format!(
            "{name} in the environment is not UTF-8 text: set it again as text (its value is not shown); nothing was deployed"
        ))
        .into()),
        None => Ok(picked),
    }
}

/// Every variable a provider reads that the process environment sets, read as the bytes it
/// is: `None` for one that is not UTF-8 text, so a run that would take it refuses, naming it
/// (never its value), rather than skip it; another provider's is no concern of this run's.
fn from_environment() -> BTreeMap<String, Option<String>> {
    let set = managed().into_iter().filter_map(|name| Some((name, std::env::var_os(name)?)));
    set.map(|(name, value)| (name.to_string(), value.into_string().ok())).collect()
}

/// `--allow-origin` values as `ALLOWED_ORIGINS` holds them, each checked on its own so the
/// error names the one that is wrong (an origin is no secret: it may be shown).
fn allowed_origins(flags: &[String]) -> Result<Option<String>> {
    for origin in flags {
        let star = origin.trim() == "*";
        if origin.contains(',') || (star && flags.len() > 1) || AllowedOrigins::parse(origin).is_none() {
            return Err(UsageError(format!(
                "--allow-origin {origin:?} is not an origin: give scheme://host[:port] such as https://app.example.com, once per origin (or * alone, for any)"
            ))
            .into());
        }
    }
    Ok((!flags.is_empty()).then(|| flags.iter().map(|origin| origin.trim()).collect::<Vec<_>>().join(",")))
}

/// The variables of the provider `lookup` names that it has; an empty value is as good as
/// none. An unknown provider picks only `TOKEN_PROVIDER`, for the configuration check to refuse.
fn pick(lookup: impl Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    let value = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let named = value("TOKEN_PROVIDER");
    let names: Vec<&str> = match named.as_deref().map(ProviderKind::parse) {
        Some(None) => vec!["TOKEN_PROVIDER"],
        Some(Some(provider)) => provider.variables().map(|variable| variable.name).collect(),
        None => ProviderKind::Dolby.variables().map(|variable| variable.name).collect(),
    };
    names.into_iter().filter_map(|name| value(name).map(|v| (name.to_string(), v))).collect()
}

/// The defaults `up` sets for the provider in force, so the deployed function states all it
/// runs with.
fn with_defaults(variables: &mut BTreeMap<String, String>) {
    for variable in provider_of(variables).variables() {
        if let Some(default) = variable.default {
            variables.entry(variable.name.into()).or_insert_with(|| default.into());
        }
    }
}

fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let shown = path.display();
    let metadata = std::fs::metadata(path)
        .map_err(|e| UsageError(format!("cannot read --env-file {shown}: {}", io_reason(&e))))?;
    if !metadata.is_file() {
        return Err(UsageError(format!("--env-file {shown} is not a file")).into());
    }
    if metadata.len() > ENV_FILE_LIMIT {
        return Err(UsageError(format!(
            "--env-file {shown} is {} bytes; a settings file is at most {ENV_FILE_LIMIT} bytes",
            metadata.len()
        ))
        .into());
    }
    let bytes = std::fs::read(path)
        .map_err(|e| UsageError(format!("cannot read --env-file {shown}: {}", io_reason(&e))))?;
    parse_env_file(&bytes).map_err(|e| UsageError(format!("--env-file {shown}: {e}")).into())
}

/// The OS's words for an I/O error, without Rust's debug dump.
fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => error.to_string(),
    }
}

/// Settings files are a few lines; anything bigger is a wrong path.
const ENV_FILE_LIMIT: u64 = 1024 * 1024;

/// Reads `NAME=value` lines literally: no `$VAR` expansion, no escapes, no inline comments,
/// so a secret with `$`, `#`, `\` or quotes inside arrives as written. Blank lines and lines
/// starting with `#` are skipped, a leading `export` and blanks are allowed, and one pair of matching
/// quotes around the whole value is removed. Errors name the line, never its content: it
/// may hold a secret.
pub(crate) fn parse_env_file(bytes: &[u8]) -> std::result::Result<BTreeMap<String, String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        format!("line {line} is not UTF-8 text")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut variables = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = match line.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
            _ => line,
        };
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("line {number} is not NAME=value"));
        };
        let name = name.trim_end();
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(format!(
                "line {number}: the name before `=` must be letters, digits and underscores"
            ));
        }
        let value = unquote(value.trim()).ok_or_else(|| {
            format!("line {number}: a value that starts with a quote must end with the same quote")
        })?;
        if value.chars().any(|c| c.is_control()) {
            return Err(format!("line {number}: the value holds a control character"));
        }
        variables.insert(name.to_string(), value.to_string());
    }
    Ok(variables)
}

/// `"v"` or `'v'` -> `v`; unquoted values as they are; `None` for an unmatched quote.
fn unquote(value: &str) -> Option<&str> {
    match value.chars().next() {
        Some(quote @ ('"' | '\'')) => value.strip_prefix(quote).and_then(|rest| rest.strip_suffix(quote)),
        _ => Some(value),
    }
}

/// Validates with the function's own parser, then fills the defaults in, so the deployed
/// function states all it runs with.
/// `secret_in_store`: checked as the function reads it then, with the secret's ARN beside.
fn validated(mut known: BTreeMap<String, String>, secret_in_store: bool) -> Result<FunctionEnvironment> {
    let lookup = |name: &str| match name {
        SECRET_ARN if secret_in_store => Some("the secret's ARN".to_string()),
        name => known.get(name).cloned(),
    };
    Config::from_lookup(lookup).map_err(|e| UsageError(usage_message(&e)))?;
    with_defaults(&mut known);
    // Lambda refuses more, and its refusal quotes every value: check here, naming no value.
    let size: usize = known.iter().map(|(name, value)| name.len() + value.len()).sum();
    if size > LAMBDA_ENVIRONMENT_LIMIT {
        return Err(UsageError(format!(
            "the function's variables take {size} bytes, names and values together; Lambda takes at most {LAMBDA_ENVIRONMENT_LIMIT}: shorten them; nothing was deployed"
        ))
        .into());
    }
    Ok(FunctionEnvironment::new(known, &managed()))
}

/// Lambda's limit on a function's environment, names and values together.
const LAMBDA_ENVIRONMENT_LIMIT: usize = 4096;

fn usage_message(error: &ConfigError) -> String {
    match error {
        ConfigError::Missing(name) => format!(
            "{name} is not set: export it or put it in a file passed with --env-file (see docs/configuration.md); nothing was deployed"
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
        validated(pick(|name| map.get(name).cloned()), false)
    }

    #[test]
    fn every_env_file_init_writes_is_a_complete_configuration_of_its_provider_with_its_examples_named() {
        for provider in ProviderKind::ALL {
            let text = starting_files::env_file(provider);
            let variables = parse_env_file(text.as_bytes()).unwrap();
            let environment = validated(pick(|name| variables.get(name).cloned()), false).unwrap();
            assert_eq!(provider_of(&environment.variables), provider, "{}", provider.name());
            assert!(text.contains(&format!("init --provider {}", provider.name())));
            // Its key and secret, at least, are examples to replace; the origins are a choice.
            let warned = warnings(&environment);
            assert_eq!(warned.len(), 1, "{warned:?}");
            let secret = provider.secret_variables().next().unwrap().name;
            assert!(warned[0].contains(secret), "{}: {}", provider.name(), warned[0]);
            assert!(!warned[0].contains("ALLOWED_ORIGINS"), "{}", warned[0]);
            // Values of one's own are not examples.
            let mut own = environment.variables.clone();
            own.insert(secret.to_string(), "mine".into());
            assert!(!starting_files::examples_left(provider, &own).contains(&secret));
        }
    }

    #[test]
    fn only_the_provider_in_force_has_its_variables_passed_and_trust_is_warned_about() {
        let env = from(&[
            ("TOKEN_PROVIDER", "livekit"),
            ("LIVEKIT_API_KEY", "k"),
            ("LIVEKIT_API_SECRET", "s"),
            ("IDENTITY_MODE", "trust"),
            ("ALLOWED_ORIGINS", "*"),
            ("CONSUMER_KEY", "dolby-key"),
            ("TWILIO_API_SECRET", "twilio-secret"),
        ])
        .unwrap();
        assert_eq!(
            env.variables.keys().collect::<Vec<_>>(),
            [
                "ALLOWED_ORIGINS",
                "IDENTITY_CLAIM",
                "IDENTITY_MODE",
                "LIVEKIT_API_KEY",
                "LIVEKIT_API_SECRET",
                "TOKEN_LIFETIME",
                "TOKEN_PROVIDER",
                "TOKEN_TTL_SECONDS"
            ]
        );
        assert!(env.managed.contains("CONSUMER_KEY") && env.managed.contains("TWILIO_API_SECRET"));
        assert!(warnings(&env)[0].contains("IDENTITY_MODE=trust"));
        assert_eq!(always_set(ProviderKind::Livekit).len(), 8);
    }

    #[test]
    fn allow_origin_flags_become_the_allowed_origins_and_a_bad_one_is_named() {
        let flags = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
        let two = allowed_origins(&flags(&["https://app.example.com", " http://localhost:8080 "])).unwrap();
        assert_eq!(two.as_deref(), Some("https://app.example.com,http://localhost:8080"));
        assert_eq!(allowed_origins(&[]).unwrap(), None);
        assert_eq!(allowed_origins(&flags(&["*"])).unwrap().as_deref(), Some("*"));
        for bad in [
            &["app.example.com"][..],
            &["https://a.example,https://b.example"],
            &["*", "https://a.example"],
            &["https://a.example/path"],
        ] {
            let message = allowed_origins(&flags(bad)).unwrap_err().to_string();
            assert!(message.starts_with("--allow-origin \""), "{message}");
            assert!(message.contains("is not an origin"), "{message}");
        }
        let env = from(&[("CONSUMER_KEY", "k"), ("CONSUMER_SECRET", "s"), ("ALLOWED_ORIGINS", "*")]).unwrap();
        assert!(warnings(&env)[0].contains("any web page may ask for tokens"), "{:?}", warnings(&env));
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
            env.variables.keys().collect::<Vec<_>>(),
            ["ALLOWED_ORIGINS", "CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN_PROVIDER", "TOKEN_URL"]
        );
        assert_eq!(env.variables["TOKEN_URL"], tokendeploy_config::DEFAULT_TOKEN_URL);
    }

    #[test]
    fn a_missing_or_empty_secret_is_a_usage_error_naming_it() {
        let err =
            from(&[("CONSUMER_KEY", "k"), ("CONSUMER_SECRET", " "), ("ALLOWED_ORIGINS", "*")]).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(err.to_string().starts_with("CONSUMER_SECRET is not set"), "{err}");
    }

    #[test]
    fn env_files_are_read_literally() {
        let file = b"\xef\xbb\xbf# comment\n\nexport CONSUMER_KEY = k$HOME\nCONSUMER_SECRET=\"a#b $X 'c' \\\\n\"\nexport\tALLOWED_ORIGINS='*'\nTOKEN_URL=https://x.example/t?a=b\nexported=1\n";
        let parsed = parse_env_file(file).unwrap();
        assert_eq!(parsed["CONSUMER_KEY"], "k$HOME");
        assert_eq!(parsed["CONSUMER_SECRET"], "a#b $X 'c' \\\\n");
        assert_eq!(parsed["ALLOWED_ORIGINS"], "*");
        assert_eq!(parsed["TOKEN_URL"], "https://x.example/t?a=b");
        assert_eq!(parsed["exported"], "1", "a name that starts with export is a name");
    }

    #[test]
    fn a_bad_line_is_named_by_number_never_echoed() {
        let secret = "p4ss\"w0rd";
        for (file, line) in [
            (format!("CONSUMER_KEY=k\nCONSUMER_SECRET=\"{secret}\n"), 2),
            (format!("CONSUMER_KEY=k\n\n{secret}\n"), 3),
            (format!("{secret}=x\n"), 1),
            (format!("CONSUMER_SECRET={secret}\u{7}\n"), 1),
        ] {
            let err = parse_env_file(file.as_bytes()).unwrap_err();
            assert!(err.starts_with(&format!("line {line}")), "{err}");
            assert!(!err.contains("p4ss") && !err.contains("w0rd"), "{err}");
        }
        let err = parse_env_file(b"A=1\nB=\xff\xfe\n").unwrap_err();
        assert_eq!(err, "line 2 is not UTF-8 text");
    }
}
