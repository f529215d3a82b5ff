//! The upstream token APIs the function can talk to, and the variables each one reads.
//!
//! Declared once here: the function reads them, and the CLI derives from them which variables
//! `up` passes, which it fills with defaults, and which every deployed function has.

/// One environment variable of the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    /// The function cannot serve tokens without it.
    pub required: bool,
    /// Its value must never be shown: not in plans, logs, errors or `Debug` output.
    pub secret: bool,
    /// What `up` sets when the user gives none.
    pub default: Option<&'static str>,
}

impl Variable {
    const fn optional(name: &'static str) -> Self {
        Self { name, required: false, secret: false, default: None }
    }
    const fn required(name: &'static str) -> Self {
        Self { name, required: true, secret: false, default: None }
    }
    const fn secret(name: &'static str) -> Self {
        Self { name, required: true, secret: true, default: None }
    }
    const fn with_default(name: &'static str, default: &'static str) -> Self {
        Self { name, required: false, secret: false, default: Some(default) }
    }

    /// Set on every function `up` deploys: given by the user, or defaulted.
    pub fn always_set(&self) -> bool {
        self.required || self.default.is_some()
    }
}

/// Dolby.io Communications' token endpoint, the one the original tutorial used.
pub const DEFAULT_TOKEN_URL: &str = "https://session.voxeet.com/v1/oauth2/token";

pub(crate) const TOKEN_PROVIDER: Variable = Variable::with_default("TOKEN_PROVIDER", "dolby");
pub(crate) const ALLOWED_ORIGINS: Variable = Variable::required("ALLOWED_ORIGINS");
pub(crate) const UPSTREAM_TIMEOUT_MS: Variable = Variable::optional("UPSTREAM_TIMEOUT_MS");

/// What every provider reads, whichever it is.
const COMMON: [Variable; 3] = [TOKEN_PROVIDER, ALLOWED_ORIGINS, UPSTREAM_TIMEOUT_MS];

pub(crate) const CONSUMER_KEY: Variable = Variable::secret("CONSUMER_KEY");
pub(crate) const CONSUMER_SECRET: Variable = Variable::secret("CONSUMER_SECRET");
pub(crate) const TOKEN_URL: Variable = Variable::with_default("TOKEN_URL", DEFAULT_TOKEN_URL);

/// Which upstream token API the function talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Dolby.io (Communications `session.voxeet.com` or `api.dolby.io`): OAuth2 client credentials.
    Dolby,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 1] = [ProviderKind::Dolby];

    /// Its value in `TOKEN_PROVIDER`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dolby => "dolby",
        }
    }

    /// The variables this provider reads, beyond the common ones.
    fn own_variables(self) -> &'static [Variable] {
        match self {
            Self::Dolby => &[CONSUMER_KEY, CONSUMER_SECRET, TOKEN_URL],
        }
    }

    /// Every variable a function with this provider reads, in the order they are checked.
    pub fn variables(self) -> impl Iterator<Item = Variable> {
        COMMON[..1].iter().chain(self.own_variables()).chain(&COMMON[1..]).copied()
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The value `TOKEN_PROVIDER` takes, for error messages.
    pub(crate) fn choices() -> String {
        format!("one of: {}", Self::ALL.map(Self::name).join(", "))
    }
}

/// Every variable any provider reads, each once: what `up` may pass to the function.
pub fn all_variables() -> Vec<Variable> {
    let mut all: Vec<Variable> = Vec::new();
    for variable in ProviderKind::ALL.into_iter().flat_map(ProviderKind::variables) {
        if !all.iter().any(|known| known.name == variable.name) {
            all.push(variable);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_reads_the_common_variables_first_its_kind() {
        for kind in ProviderKind::ALL {
            let names: Vec<_> = kind.variables().map(|v| v.name).collect();
            assert_eq!(names[0], "TOKEN_PROVIDER");
            assert!(COMMON.iter().all(|common| names.contains(&common.name)), "{names:?}");
            assert_eq!(ProviderKind::parse(&format!(" {} ", kind.name().to_uppercase())), Some(kind));
        }
    }

    #[test]
    fn the_key_and_secret_are_secrets_and_required() {
        let all = all_variables();
        let secrets: Vec<_> = all.iter().filter(|v| v.secret).map(|v| v.name).collect();
        assert_eq!(secrets, ["CONSUMER_KEY", "CONSUMER_SECRET"]);
        assert!(all.iter().filter(|v| v.secret).all(|v| v.required && v.default.is_none()));
        assert_eq!(all.len(), 6);
    }
}
