//! Where the function's configuration comes from: its environment alone, or, when
//! `TOKEN_SECRET_ARN` is set, its environment and a Secrets Manager secret that holds the
//! provider's secret variables.

use std::collections::HashMap;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::config::origins::{AllowedOrigins, OriginCheck};
use crate::config::{Config, ConfigError, SECRET_ARN, Secret, all_variables};
use crate::secrets_manager::{ReadError, SecretsManager};

/// Reads one variable of the function's environment.
pub(crate) type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Always in the environment, never in the secret: the allow-list is known before the secret
/// is read, so that error answers can carry their CORS headers.
const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";

#[expect(clippy::large_enum_variant, reason = "one per warm instance, made once at start")]
pub(crate) enum Configuration {
    /// Read at start. A warm instance's environment never changes, so an error in it stands.
    Environment(Result<Config, ConfigError>),
    /// Completed with the secret on the first request that needs it.
    WithSecret(WithSecret),
}

pub(crate) struct WithSecret {
    arn: String,
    secrets_manager: SecretsManager,
    environment: Lookup,
    /// `None` when the environment's allow-list is missing or invalid: then no answer carries
    /// CORS headers, and the configuration fails naming the variable.
    allowed_origins: Option<AllowedOrigins>,
    /// Set once the secret is read and completes a valid configuration. A failure leaves it
    /// empty and the next request tries again: the secret may be readable, or fixed, by then.
    config: OnceCell<Config>,
}

/// Why a request finds no configuration to serve with. Names what is wrong, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfigurationError {
    /// A variable is missing or invalid, in the environment or in the secret.
    Invalid(String),
    /// The secret could not be read.
    SecretUnavailable(String),
}

impl Configuration {
    /// The environment `lookup` reads, completed by the secret `TOKEN_SECRET_ARN` names if set.
    pub(crate) fn from_lookup(lookup: Lookup) -> Self {
        let Some(arn) = lookup(SECRET_ARN).map(|arn| arn.trim().to_string()).filter(|arn| !arn.is_empty())
        else {
            return Self::Environment(Config::from_lookup(lookup));
        };
        if let Some(error) = environment_error(&lookup) {
            return Self::Environment(Err(error));
        }
        match SecretsManager::from_lookup(&lookup) {
            Ok(secrets_manager) => Self::WithSecret(WithSecret {
                arn,
                secrets_manager,
                allowed_origins: lookup(ALLOWED_ORIGINS).and_then(|origins| AllowedOrigins::parse(&origins)),
                environment: lookup,
                config: OnceCell::new(),
            }),
            Err(error) => Self::Environment(Err(error)),
        }
    }

    /// What CORS allows a request from `origin`, known whether or not the secret is read yet.
    pub(crate) fn cors(&self, origin: Option<&str>) -> OriginCheck {
        let allowed_origins = match self {
            Self::Environment(config) => config.as_ref().ok().map(|config| &config.allowed_origins),
            Self::WithSecret(with_secret) => with_secret.allowed_origins.as_ref(),
        };
        allowed_origins.map_or(OriginCheck::NoOrigin, |allowed| allowed.check(origin))
    }

    /// The complete configuration. Concurrent first calls share one read of the secret.
    pub(crate) async fn get(&self) -> Result<&Config, ConfigurationError> {
        match self {
            Self::Environment(config) => {
                config.as_ref().map_err(|error| ConfigurationError::Invalid(error.to_string()))
            }
            Self::WithSecret(with_secret) => with_secret.config.get_or_try_init(|| with_secret.read()).await,
        }
    }
}

impl WithSecret {
    async fn read(&self) -> Result<Config, ConfigurationError> {
        let arn = &self.arn;
        let content = self.secrets_manager.secret_string(arn).await.map_err(|error| match error {
            ReadError::NoSecretString => ConfigurationError::Invalid(MergeError::NotAnObject.describe(arn)),
            error => {
                ConfigurationError::SecretUnavailable(format!("could not read the secret {arn}: {error}"))
            }
        })?;
        merge(&content, &self.environment).map_err(|error| ConfigurationError::Invalid(error.describe(arn)))
    }
}

/// What is wrong with the environment whatever the secret holds: a warm instance's environment
/// never changes, so such an error stands, and reading the secret on every request to find it
/// again would only cost a Secrets Manager call each time. The secret's variables are unknown
/// before it is read, so the environment is checked with each of them given a stand-in: once
/// with the optional ones absent and once with them present (they change what else is needed,
/// as IDENTITY_HS256_SECRET does IDENTITY_JWKS_URL). It is at fault only if both fail, on a
/// variable the secret does not hold.
fn environment_error(environment: &dyn Fn(&str) -> Option<String>) -> Option<ConfigError> {
    const STAND_IN: &str = "a stand-in for the secret's value, long enough for any check";
    let secrets: Vec<_> = all_variables().into_iter().filter(|variable| variable.secret).collect();
    let check = |with_optional: bool| {
        Config::from_lookup(|name| match secrets.iter().find(|secret| secret.name == name) {
            Some(secret) => (secret.required || with_optional).then(|| STAND_IN.to_string()),
            None => environment(name),
        })
    };
    let names_a_secret = |error: &ConfigError| match error {
        ConfigError::Missing(variable) | ConfigError::Invalid { variable, .. } => is_secret(variable),
    };
    match (check(false), check(true)) {
        (Err(error), Err(_)) if !names_a_secret(&error) => Some(error),
        _ => None,
    }
}

/// What is wrong with the secret's content, or with the configuration it completes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MergeError {
    NotAnObject,
    NotAString(&'static str),
    Config(ConfigError),
}

impl MergeError {
    /// The message for the secret `arn`. A variable the secret holds is named as the secret's.
    fn describe(&self, arn: &str) -> String {
        match self {
            Self::NotAnObject => {
                format!("the secret {arn} must hold a JSON object of variable names and their values")
            }
            Self::NotAString(variable) => format!("{variable} in the secret {arn} must be a string"),
            Self::Config(ConfigError::Missing(variable)) if is_secret(variable) => {
                format!("the secret {arn} has no value for {variable}")
            }
            Self::Config(ConfigError::Invalid { variable, expected }) if is_secret(variable) => {
                format!("{variable} in the secret {arn} must be {expected}")
            }
            Self::Config(error) => error.to_string(),
        }
    }
}

/// The configuration with the secret variables from the secret's `content` and every other
/// variable from the `environment`. A secret variable left in the environment is not read:
/// there, anyone who may read the function's settings can read it too.
fn merge(content: &Secret, environment: &dyn Fn(&str) -> Option<String>) -> Result<Config, MergeError> {
    let secrets = secret_variables(content.expose())?;
    Config::from_lookup(|name| {
        if is_secret(name) {
            secrets.get(name).map(|value| value.expose().to_string())
        } else {
            environment(name)
        }
    })
    .map_err(MergeError::Config)
}

/// The secret variables in `content`, by name. Its other keys are no concern of the function's.
fn secret_variables(content: &str) -> Result<HashMap<&'static str, Secret>, MergeError> {
    let Ok(Value::Object(mut object)) = serde_json::from_str(content) else {
        return Err(MergeError::NotAnObject);
    };
    let mut variables = HashMap::new();
    for name in secret_names() {
        match object.remove(name) {
            None => {}
            Some(Value::String(value)) => {
                variables.insert(name, Secret::new(value));
            }
            Some(_) => return Err(MergeError::NotAString(name)),
        }
    }
    Ok(variables)
}

fn secret_names() -> impl Iterator<Item = &'static str> {
    all_variables().into_iter().filter(|variable| variable.secret).map(|variable| variable.name)
}

fn is_secret(name: &str) -> bool {
    secret_names().any(|secret| secret == name)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;
    use tokendeploy_testkit::fault_proxy::{Call, Effect, ErrorKind, FaultProxy, Rule};
    use tokendeploy_testkit::moto::Moto;

    use super::*;
    use crate::config::ProviderSettings;
    use crate::secrets_manager::READ_TIMEOUT;

    const ARN: &str = "arn:aws:secretsmanager:us-west-1:123456789012:secret:token-AbCdEf";
    const REGION: &str = "us-west-1";
    const KEY: &str = "key-from-the-secret";
    const SECRET: &str = "secret-from-the-secret";

    fn environment(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let pairs: HashMap<String, String> =
            pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
        move |name| pairs.get(name).cloned()
    }

    const DOLBY: &[(&str, &str)] =
        &[("ALLOWED_ORIGINS", "https://app.example"), ("TOKEN_URL", "https://token.example/oauth2/token")];

    /// Twilio's environment without its secrets: they are in the secret.
    const TWILIO: &[(&str, &str)] = &[
        ("TOKEN_PROVIDER", "twilio"),
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
        ("IDENTITY_ISSUER", "https://issuer.example/"),
        ("IDENTITY_AUDIENCE", "app"),
        ("ALLOWED_ORIGINS", "*"),
    ];

    fn merged(content: &str, env: &[(&str, &str)]) -> Result<Config, MergeError> {
        merge(&Secret::new(content), &environment(env))
    }

    #[test]
    fn the_secret_variables_come_from_the_secret_and_all_others_from_the_environment() {
        let content = json!({
            "CONSUMER_KEY": KEY,
            "CONSUMER_SECRET": SECRET,
            "TOKEN_URL": "https://not-from-the-secret.example/token",
            "SOMETHING_ELSE": 42,
        });
        let env = [DOLBY, &[("CONSUMER_SECRET", "left-in-the-environment")]].concat();
        let config = merged(&content.to_string(), &env).unwrap();
        let ProviderSettings::ClientCredentials(settings) = &config.settings else { panic!("{config:?}") };
        assert_eq!(settings.credentials.key, KEY);
        assert_eq!(settings.credentials.secret.expose(), SECRET);
        assert_eq!(settings.token_url, "https://token.example/oauth2/token");
        assert!(!format!("{config:?}").contains(SECRET), "{config:?}");
    }

    #[test]
    fn a_secret_variable_only_in_the_environment_is_missing_from_the_secret() {
        let env = [DOLBY, &[("CONSUMER_SECRET", "left-in-the-environment")]].concat();
        let error = merged(&json!({ "CONSUMER_KEY": KEY }).to_string(), &env).unwrap_err();
        assert_eq!(error, MergeError::Config(ConfigError::Missing("CONSUMER_SECRET")));
        assert_eq!(error.describe(ARN), format!("the secret {ARN} has no value for CONSUMER_SECRET"));
        let error =
            merged(&json!({ "CONSUMER_KEY": KEY, "CONSUMER_SECRET": SECRET }).to_string(), &DOLBY[1..])
                .unwrap_err();
        assert_eq!(
            error.describe(ARN),
            ConfigError::Missing("ALLOWED_ORIGINS").to_string(),
            "the environment's"
        );
    }

    #[test]
    fn content_that_is_no_object_of_strings_is_named_never_repeated() {
        for content in ["", "not json", "[\"CONSUMER_KEY\"]", "\"CONSUMER_KEY=k\"", "null"] {
            let error = merged(content, DOLBY).unwrap_err();
            assert_eq!(error, MergeError::NotAnObject, "{content:?}");
            assert!(error.describe(ARN).contains("must hold a JSON object"), "{content:?}");
        }
        let content = json!({ "CONSUMER_KEY": KEY, "CONSUMER_SECRET": [SECRET] }).to_string();
        let message = merged(&content, DOLBY).unwrap_err().describe(ARN);
        assert_eq!(message, format!("CONSUMER_SECRET in the secret {ARN} must be a string"));
    }

    #[test]
    fn an_invalid_secret_value_is_named_as_the_secrets_and_never_repeated() {
        let short = "too-short-hs256";
        let content = json!({ "TWILIO_API_SECRET": SECRET, "IDENTITY_HS256_SECRET": short }).to_string();
        let error = merged(&content, TWILIO).unwrap_err();
        let message = error.describe(ARN);
        assert!(
            message.starts_with(&format!("IDENTITY_HS256_SECRET in the secret {ARN} must be")),
            "{message}"
        );
        assert!(!message.contains(short) && !format!("{error:?}").contains(short), "{message}");
        let long = "0123456789abcdef0123456789abcdef";
        let content = json!({ "TWILIO_API_SECRET": SECRET, "IDENTITY_HS256_SECRET": long }).to_string();
        assert!(merged(&content, TWILIO).is_ok());
    }

    /// moto holding the secret `content`, a fault proxy in front of it with `rules`, and the
    /// configuration of a function that reads the secret through the proxy.
    async fn reading_through_a_proxy(
        content: Value,
        rules: Vec<Rule>,
    ) -> (Moto, FaultProxy, String, Configuration) {
        let moto = Moto::start().unwrap();
        let arn = moto.create_secret(REGION, "token-secret", &content.to_string()).await.unwrap();
        let proxy = FaultProxy::start_with(&moto.endpoint(), rules).await.unwrap();
        let mut env = moto.aws_environment(REGION);
        env.extend([
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER".to_string(), proxy.endpoint()),
            (SECRET_ARN.to_string(), arn.clone()),
        ]);
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .chain(DOLBY.iter().copied())
            .collect();
        let configuration = Configuration::from_lookup(Box::new(environment(&env)));
        (moto, proxy, arn, configuration)
    }

    fn get_secret_value(call: &Call) -> bool {
        call.is("secretsmanager", "GetSecretValue")
    }

    fn credentials() -> Value {
        json!({ "CONSUMER_KEY": KEY, "CONSUMER_SECRET": SECRET })
    }

    #[tokio::test]
    #[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
    async fn a_failed_read_is_tried_again_by_the_next_request_and_a_good_one_kept() {
        let rules = vec![
            Rule::nth(get_secret_value, 1, Effect::Error(ErrorKind::Internal)),
            Rule::nth(get_secret_value, 2, Effect::Error(ErrorKind::Throttling)),
            Rule::nth(get_secret_value, 3, Effect::Drop),
            Rule::nth(get_secret_value, 4, Effect::Hang),
        ];
        let (_moto, proxy, arn, configuration) = reading_through_a_proxy(credentials(), rules).await;
        assert_eq!(
            configuration.cors(Some("https://app.example")),
            OriginCheck::Allowed { allow_origin: "https://app.example".into(), vary: true }
        );

        for expected in [
            "Secrets Manager answered InternalServiceError (HTTP 500)",
            "Secrets Manager answered ThrottlingException (HTTP 400)",
            "Secrets Manager could not be reached",
            "Secrets Manager did not answer within 3 s",
        ] {
            let started = Instant::now();
            let error = configuration.get().await.unwrap_err();
            let message = format!("could not read the secret {arn}: {expected}");
            assert_eq!(error, ConfigurationError::SecretUnavailable(message));
            assert!(started.elapsed() < READ_TIMEOUT + Duration::from_secs(1), "{expected}");
        }
        let config = configuration.get().await.unwrap();
        let ProviderSettings::ClientCredentials(settings) = &config.settings else { panic!("{config:?}") };
        assert_eq!(settings.credentials.secret.expose(), SECRET);
        configuration.get().await.unwrap();
        assert_eq!(
            proxy.calls().iter().filter(|call| get_secret_value(call)).count(),
            5,
            "read once it worked"
        );
    }

    #[tokio::test]
    #[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
    async fn a_secret_that_completes_no_configuration_is_read_again_by_the_next_request() {
        let (moto, _proxy, arn, configuration) =
            reading_through_a_proxy(json!({ "CONSUMER_KEY": KEY }), vec![]).await;
        let expected = format!("the secret {arn} has no value for CONSUMER_SECRET");
        assert_eq!(configuration.get().await.unwrap_err(), ConfigurationError::Invalid(expected));
        moto.put_secret_value(REGION, &arn, "[]").await.unwrap();
        let expected = format!("the secret {arn} must hold a JSON object of variable names and their values");
        assert_eq!(configuration.get().await.unwrap_err(), ConfigurationError::Invalid(expected));

        moto.put_secret_value(REGION, &arn, &credentials().to_string()).await.unwrap();
        assert!(configuration.get().await.is_ok());
    }

    #[tokio::test]
    #[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
    async fn concurrent_first_requests_share_one_read() {
        let (_moto, proxy, _arn, configuration) = reading_through_a_proxy(credentials(), vec![]).await;
        let (first, second) = tokio::join!(configuration.get(), configuration.get());
        assert!(std::ptr::eq(first.unwrap(), second.unwrap()));
        assert_eq!(proxy.calls().iter().filter(|call| get_secret_value(call)).count(), 1);
    }

    #[tokio::test]
    async fn without_the_secrets_arn_only_the_environment_is_read() {
        let env = [DOLBY, &[("CONSUMER_KEY", KEY), ("CONSUMER_SECRET", SECRET)]].concat();
        let configuration = Configuration::from_lookup(Box::new(environment(&env)));
        assert!(matches!(configuration, Configuration::Environment(Ok(_))));
        let configuration = Configuration::from_lookup(Box::new(environment(DOLBY)));
        let expected = ConfigError::Missing("CONSUMER_KEY").to_string();
        assert_eq!(configuration.get().await.unwrap_err(), ConfigurationError::Invalid(expected));
        assert_eq!(configuration.cors(Some("https://app.example")), OriginCheck::NoOrigin);
    }

    #[test]
    fn an_environment_wrong_whatever_the_secret_holds_is_an_error_that_stands_without_a_read() {
        let reads = [
            (SECRET_ARN, ARN),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
        ];
        let with_secret = |env: &[(&str, &str)]| {
            Configuration::from_lookup(Box::new(environment(&[&reads[..], env].concat())))
        };
        let oauth2 = [("TOKEN_PROVIDER", "oauth2"), ("ALLOWED_ORIGINS", "*")];
        let Configuration::Environment(Err(error)) = with_secret(&oauth2) else { panic!("reads the secret") };
        assert_eq!(error, ConfigError::Missing("TOKEN_URL"));
        let timeout = [DOLBY, &[("UPSTREAM_TIMEOUT_MS", "6000")]].concat();
        let Configuration::Environment(Err(error)) = with_secret(&timeout) else {
            panic!("reads the secret")
        };
        assert!(matches!(error, ConfigError::Invalid { variable: "UPSTREAM_TIMEOUT_MS", .. }), "{error:?}");

        // The secret may hold what the environment lacks: the credentials, or the identity
        // key that stands in for IDENTITY_JWKS_URL.
        assert!(matches!(with_secret(DOLBY), Configuration::WithSecret(_)));
        assert!(matches!(with_secret(TWILIO), Configuration::WithSecret(_)));
        let jwks = [TWILIO, &[("IDENTITY_JWKS_URL", "https://issuer.example/jwks")]].concat();
        assert!(matches!(with_secret(&jwks), Configuration::WithSecret(_)));
        let Configuration::Environment(Err(error)) = with_secret(&TWILIO[..5]) else {
            panic!("reads the secret")
        };
        assert_eq!(error, ConfigError::Missing("ALLOWED_ORIGINS"));
    }

    #[tokio::test]
    async fn an_environment_that_cannot_reach_secrets_manager_is_an_error_that_stands() {
        let env = [DOLBY, &[(SECRET_ARN, ARN), ("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")]]
            .concat();
        let configuration = Configuration::from_lookup(Box::new(environment(&env)));
        assert!(matches!(configuration, Configuration::Environment(Err(ConfigError::Missing("AWS_REGION")))));
    }
}
