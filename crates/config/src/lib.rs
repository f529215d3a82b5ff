//! The token function's configuration, shared by the function (which runs with it) and the
//! CLI (which checks it before any AWS call and deploys it): the variables each provider
//! declares, how they are read and checked, and the limits both sides must agree on.

mod config;
pub mod origins;
mod providers;
pub mod settings;

use std::time::Duration;

pub use config::{Config, ConfigError, Credentials, MintedLifetime, Secret, is_valid_upstream_url};
pub use providers::{DEFAULT_TOKEN_URL, ProviderKind, Variable, all_variables};
pub use settings::{IdentitySettings, ProviderSettings};

/// Set by `up --secret-store secrets-manager` in place of the provider's secret variables
/// ([`Variable::secret`]): the ARN of the stack's Secrets Manager secret, whose `SecretString`
/// is a JSON object of those variables' names and values. The function reads it once per
/// instance, on its first request.
pub const SECRET_ARN: &str = "TOKEN_SECRET_ARN";

/// The one path the function serves tokens at, after any stage prefix.
pub const TOKEN_PATH: &str = "/token";

/// How long Lambda lets the function run (`tokendeploy up` sets it): under API Gateway's 29 s
/// integration limit.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Time the function keeps, after giving up on the upstream, to answer its own 504 before
/// Lambda stops it (which API Gateway would turn into a bare 502).
pub const ANSWER_MARGIN: Duration = Duration::from_secs(2);

/// The longest `UPSTREAM_TIMEOUT_MS` may be.
pub const UPSTREAM_TIMEOUT_CEILING: Duration = FUNCTION_TIMEOUT.saturating_sub(ANSWER_MARGIN);

/// How long the function waits for Secrets Manager when it reads its secret (on an instance's
/// first request), leaving the rest of that request's time to the token API.
pub const SECRET_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest `UPSTREAM_TIMEOUT_MS` may be when the secret is in Secrets Manager: the first
/// request reads the secret, then calls the token API, inside the same time.
pub const UPSTREAM_TIMEOUT_CEILING_WITH_SECRET: Duration =
    UPSTREAM_TIMEOUT_CEILING.saturating_sub(SECRET_READ_TIMEOUT);

/// How long the function waits for the upstream when `UPSTREAM_TIMEOUT_MS` is not set.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

const _: () =
    assert!(DEFAULT_UPSTREAM_TIMEOUT.as_millis() <= UPSTREAM_TIMEOUT_CEILING_WITH_SECRET.as_millis());
