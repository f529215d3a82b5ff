//! What `up` wants to exist: derived from the stack, the account, the code and the
//! function's environment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use tokendeploy_config::{ProviderKind, TOKEN_PATH};

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
}

impl fmt::Debug for FunctionEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.variables.keys()).finish()
    }
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub stack: Stack,
    pub account: String,
    /// Lambda's `CodeSha256` of the zip to deploy.
    pub code_sha256: String,
    pub environment: FunctionEnvironment,
}

impl Desired {
    /// The provider the function is deployed with (`up` always sets `TOKEN_PROVIDER`).
    pub fn provider(&self) -> ProviderKind {
        let named = self.environment.variables.get("TOKEN_PROVIDER");
        named.and_then(|name| ProviderKind::parse(name)).unwrap_or(ProviderKind::Dolby)
    }

    /// The methods API Gateway routes to the function.
    pub fn methods(&self) -> &'static [&'static str] {
        self.provider().methods()
    }

    pub fn role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account, self.stack.role_name())
    }

    /// Known before the function exists, so the API chain need not wait for it.
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.stack.region,
            self.account,
            self.stack.function_name()
        )
    }

    /// The URI API Gateway's Lambda proxy integration invokes.
    pub fn integration_uri(&self) -> String {
        format!(
            "arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/{}/invocations",
            self.stack.region,
            self.function_arn()
        )
    }
}

pub fn invoke_url(api_id: &str, region: &str) -> String {
    format!("https://{api_id}.execute-api.{region}.amazonaws.com/{STAGE}{TOKEN_PATH}")
}

#[cfg(test)]
impl Desired {
    /// Stack `s` in us-west-1 of account 123456789012, for unit tests.
    pub fn example(code_sha256: &str, environment: &[(&str, &str)]) -> Self {
        Self {
            stack: Stack::new("s", "us-west-1").unwrap(),
            account: "123456789012".into(),
            code_sha256: code_sha256.into(),
            environment: FunctionEnvironment::new(
                environment.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                &["CONSUMER_KEY", "CONSUMER_SECRET", "UPSTREAM_TIMEOUT_MS"],
            ),
        }
    }
}
