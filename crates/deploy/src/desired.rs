//! What `up` wants to exist: derived from the stack, the account, the code and the
//! function's environment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use tokendeploy_config::{ProviderKind, SECRET_ARN, TOKEN_PATH};
use tokendeploy_package::{Arch, Artifact};

use crate::stack::{STAGE, Stack};

/// The function's environment variables as `up` sets them. Values may be secrets: `Debug`
/// shows names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FunctionEnvironment {
    pub variables: BTreeMap<String, String>,
    /// Every name `up` owns. One of these on the function but not in `variables` is left over
    /// from an earlier `up` and is removed; other names (added by hand) are kept.
    pub managed: BTreeSet<String>,
}

impl FunctionEnvironment {
    pub fn new(variables: BTreeMap<String, String>, managed: &[&str]) -> Self {
        Self { variables, managed: managed.iter().map(|name| name.to_string()).collect() }
    }

    /// The provider the function is deployed with (`up` always sets `TOKEN_PROVIDER`).
    pub fn provider(&self) -> ProviderKind {
        let named = self.variables.get("TOKEN_PROVIDER");
        named.and_then(|name| ProviderKind::parse(name)).unwrap_or(ProviderKind::Dolby)
    }
}

impl fmt::Debug for FunctionEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.variables.keys()).finish()
    }
}

/// The provider's secret variables, kept in the stack's Secrets Manager secret instead of the
/// function's environment. `Debug` shows names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValues(pub BTreeMap<String, String>);

impl SecretValues {
    /// The secret's `SecretString`: one JSON object of names and values.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    /// A `SecretString` as `up` writes it; `None` for anything else (not JSON, not all strings).
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok().map(Self)
    }

    /// The names whose values differ between `self` and `other`, or are in one only.
    pub fn differing(&self, other: &SecretValues) -> Vec<String> {
        let names: BTreeSet<&String> = self.0.keys().chain(other.0.keys()).collect();
        names.into_iter().filter(|name| self.0.get(*name) != other.0.get(*name)).cloned().collect()
    }
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Where the function's secret variables are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecretStore {
    /// In the function's environment, as the original tutorial does.
    #[default]
    Environment,
    /// In one Secrets Manager secret of the stack; the function gets its ARN.
    SecretsManager,
}

impl SecretStore {
    /// Where the secret is, in words.
    pub fn described(self) -> &'static str {
        match self {
            SecretStore::Environment => "the function's environment",
            SecretStore::SecretsManager => "Secrets Manager",
        }
    }
}

/// The stage's request limits, for every method.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// Requests a second, sustained.
    pub rate_limit: f64,
    /// Requests at once above the rate.
    pub burst_limit: i32,
}

// Limits are checked finite before they get here (and read back from AWS as numbers).
impl Eq for Throttle {}

impl Throttle {
    /// Sized for a token endpoint: a client asks once per session and again when its token
    /// expires, so 20 a second (72,000 tokens an hour) is far beyond an app's honest need,
    /// while a leaked URL in a loop costs at most that, upstream quota included. The burst lets
    /// a page of 40 clients load at once. (docs/security.md: "Throttling".)
    pub const DEFAULT: Throttle = Throttle { rate_limit: 20.0, burst_limit: 40 };
}

/// What stands between the internet and the function. Each kind is its own resources; a
/// stack has one, and `up` switching kinds makes the new one before it removes the old.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Gateway {
    /// An API Gateway REST API with `{proxy+}` (the tutorial's): API keys, usage plans, stage
    /// throttling.
    #[default]
    Rest,
    /// An API Gateway HTTP API: cheaper, with route throttling and the API's own CORS; no keys.
    Http,
    /// A Lambda function URL: no gateway to pay for; the function's reserved concurrency
    /// bounds the cost in place of throttling.
    Url,
}

impl Gateway {
    /// As `--gateway` names it.
    pub fn name(self) -> &'static str {
        match self {
            Gateway::Rest => "rest",
            Gateway::Http => "http",
            Gateway::Url => "url",
        }
    }

    /// In words.
    pub fn described(self) -> &'static str {
        match self {
            Gateway::Rest => "a REST API",
            Gateway::Http => "an HTTP API",
            Gateway::Url => "a function URL",
        }
    }
}

/// How many instances of the function may run at once behind a function URL, when not told:
/// Lambda serves at most 10 requests a second an instance, so 5 lets through 50 a second at
/// most (the REST API's default limit is 20, burst 40), while a token request of a few hundred
/// milliseconds still gets about 15 a second. (docs/gateways-and-costs.md.)
pub const DEFAULT_RESERVED_CONCURRENCY: i32 = 5;

/// How `up` guards the endpoint and the secret.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Security {
    pub secret_store: SecretStore,
    pub gateway: Gateway,
    /// Requests need an API key (`x-api-key`), issued through a usage plan bound to the stage.
    pub api_key: bool,
    /// The limits of the REST API's stage or the HTTP API's routes.
    pub throttle: Throttle,
    /// The function's reserved concurrency behind a function URL.
    pub reserved_concurrency: i32,
    /// Behind an HTTP API, its own JWT authorizer checks callers' tokens before the function
    /// runs, when the function checks them with a key set ([`Desired::jwt_authorizer`]).
    pub jwt_authorizer: bool,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            secret_store: SecretStore::Environment,
            gateway: Gateway::Rest,
            api_key: false,
            throttle: Throttle::DEFAULT,
            reserved_concurrency: DEFAULT_RESERVED_CONCURRENCY,
            jwt_authorizer: true,
        }
    }
}

/// What an HTTP API's JWT authorizer accepts: tokens of this issuer for this audience, signed
/// by a key of the issuer's OIDC discovery document (API Gateway reads
/// `{issuer}/.well-known/openid-configuration`, then its `jwks_uri`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthorizer {
    pub issuer: String,
    pub audience: String,
}

impl JwtAuthorizer {
    /// The one `up` makes: behind an HTTP API, unless `--no-jwt-authorizer`, for a provider
    /// that mints per caller with IDENTITY_MODE=jwt and a key set. With an HS256 secret there
    /// is none: API Gateway checks RSA signatures only, by keys it finds through the issuer.
    pub fn wanted(environment: &FunctionEnvironment, security: &Security) -> Option<Self> {
        let variables = &environment.variables;
        let mode =
            variables.get("IDENTITY_MODE").map_or("jwt".into(), |mode| mode.trim().to_ascii_lowercase());
        let wanted = security.gateway == Gateway::Http
            && security.jwt_authorizer
            && environment.provider().mints_per_identity()
            && mode == "jwt"
            && variables.contains_key("IDENTITY_JWKS_URL");
        if !wanted {
            return None;
        }
        let issuer = variables.get("IDENTITY_ISSUER")?.clone();
        let audience = variables.get("IDENTITY_AUDIENCE")?.clone();
        Some(Self { issuer, audience })
    }
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub stack: Stack,
    pub account: String,
    /// Lambda's `CodeSha256` of the zip to deploy.
    pub code_sha256: String,
    /// The CPU the zip's `bootstrap` is built for.
    pub arch: Arch,
    /// The function's variables, without the secret ones when [`Self::secret`] holds them.
    pub environment: FunctionEnvironment,
    /// The secret variables, when kept in Secrets Manager.
    pub secret: Option<SecretValues>,
    pub security: Security,
}

impl Desired {
    /// What `up` wants, from the variables it was given. With Secrets Manager, the secret ones
    /// move into [`Self::secret`] and the function gets [`SECRET_ARN`]: `secret_arn`, that of the
    /// existing secret, or a stand-in until the secret is made ([`Self::with_secret_arn`]).
    pub fn new(
        stack: Stack,
        account: String,
        code: &Artifact,
        environment: FunctionEnvironment,
        security: Security,
        secret_arn: Option<&str>,
    ) -> Self {
        let (code_sha256, arch) = (code.code_sha256.clone(), code.arch);
        // Keys are a REST API's: the CLI refuses --api-key with another gateway.
        let security =
            Security { api_key: security.api_key && security.gateway == Gateway::Rest, ..security };
        let mut desired = Self { stack, account, code_sha256, arch, environment, secret: None, security };
        if security.secret_store == SecretStore::SecretsManager {
            let provider = desired.provider();
            let variables = &mut desired.environment.variables;
            let secret =
                provider.secret_variables().filter_map(|variable| variables.remove_entry(variable.name));
            desired.secret = Some(SecretValues(secret.collect()));
            variables.insert(SECRET_ARN.into(), secret_arn.unwrap_or(NEW_SECRET_ARN).into());
        }
        desired.environment.managed.insert(SECRET_ARN.into());
        desired
    }

    /// As wanted once the secret's ARN is known.
    pub fn with_secret_arn(&self, arn: &str) -> Self {
        let mut desired = self.clone();
        if desired.secret.is_some() {
            desired.environment.variables.insert(SECRET_ARN.into(), arn.into());
        }
        desired
    }

    /// As wanted, with the secret (if any) that `snapshot`-time reads found: its ARN, or the
    /// stand-in of one yet to be made.
    pub fn with_found_secret(&self, arn: Option<&str>) -> Self {
        self.with_secret_arn(arn.unwrap_or(NEW_SECRET_ARN))
    }

    /// The ARN of the secret the function reads, when known.
    pub fn secret_arn(&self) -> Option<&str> {
        let arn = self.environment.variables.get(SECRET_ARN)?;
        (arn != NEW_SECRET_ARN).then_some(arn.as_str())
    }

    /// The provider the function is deployed with (`up` always sets `TOKEN_PROVIDER`).
    pub fn provider(&self) -> ProviderKind {
        self.environment.provider()
    }

    /// The methods API Gateway routes to the function.
    pub fn methods(&self) -> &'static [&'static str] {
        self.provider().methods()
    }

    pub fn gateway(&self) -> Gateway {
        self.security.gateway
    }

    /// The HTTP API's JWT authorizer, when it checks callers before the function does.
    pub fn jwt_authorizer(&self) -> Option<JwtAuthorizer> {
        JwtAuthorizer::wanted(&self.environment, &self.security)
    }

    pub fn role_arn(&self) -> String {
        self.stack.arn("iam", "", &self.account, &format!("role/{}", self.stack.role_name()))
    }

    /// Known before the function exists, so the API chain need not wait for it.
    pub fn function_arn(&self) -> String {
        let function = format!("function:{}", self.stack.function_name());
        self.stack.arn("lambda", &self.stack.region, &self.account, &function)
    }

    /// The URI API Gateway's Lambda proxy integration invokes.
    pub fn integration_uri(&self) -> String {
        let path = format!("path/2015-03-31/functions/{}/invocations", self.function_arn());
        self.stack.arn("apigateway", &self.stack.region, "lambda", &path)
    }
}

/// What a plan shows for the ARN of a secret yet to be made.
const NEW_SECRET_ARN: &str = "(the new secret's ARN)";

/// The stage's URL for token requests as API Gateway serves it, in the stack's partition.
pub fn aws_invoke_url(api_id: &str, stack: &Stack) -> String {
    let Stack { region, partition, .. } = stack;
    format!("https://{api_id}.execute-api.{region}.{}/{STAGE}{TOKEN_PATH}", partition.dns_suffix())
}

/// The URL that answers token requests: API Gateway's, or with an endpoint override (an
/// emulator) the path LocalStack and tokendeploy's emulator serve the stage at, which needs no
/// DNS: `ENDPOINT/restapis/{id}/{stage}/_user_request_/token`.
pub fn invoke_url(api_id: &str, stack: &Stack, endpoint: Option<&str>) -> String {
    match endpoint {
        Some(endpoint) => {
            format!("{}/restapis/{api_id}/{STAGE}/_user_request_{TOKEN_PATH}", endpoint.trim_end_matches('/'))
        }
        None => aws_invoke_url(api_id, stack),
    }
}

#[cfg(test)]
impl Desired {
    /// Stack `s` in us-west-1 of account 123456789012, for unit tests.
    pub fn example(code_sha256: &str, environment: &[(&str, &str)]) -> Self {
        Self::secured(code_sha256, environment, Security::default())
    }

    /// As [`Self::example`], with or without an API key.
    pub fn keyed(api_key: bool) -> Self {
        Self::secured("", &[], Security { api_key, ..Security::default() })
    }

    /// As [`Self::example`], guarded by `security`.
    pub fn secured(code_sha256: &str, environment: &[(&str, &str)], security: Security) -> Self {
        let code = Artifact { bytes: vec![], code_sha256: code_sha256.into(), arch: Arch::X86_64 };
        Self::new(
            Stack::new("s", "us-west-1").unwrap(),
            "123456789012".into(),
            &code,
            FunctionEnvironment::new(
                environment.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                &["CONSUMER_KEY", "CONSUMER_SECRET", "UPSTREAM_TIMEOUT_MS"],
            ),
            security,
            None,
        )
    }
}
