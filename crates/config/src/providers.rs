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
    /// A secret needed only in some settings (checked by the configuration code, not here).
    const fn optional_secret(name: &'static str) -> Self {
        Self { name, required: false, secret: true, default: None }
    }
    const fn with_default(name: &'static str, default: &'static str) -> Self {
        Self { name, required: false, secret: false, default: Some(default) }
    }

    /// Set on every function `up` deploys with this provider: given by the user, or defaulted.
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

// OAuth2 client credentials (`dolby`, `oauth2`).
pub(crate) const CONSUMER_KEY: Variable = Variable::secret("CONSUMER_KEY");
pub(crate) const CONSUMER_SECRET: Variable = Variable::secret("CONSUMER_SECRET");
/// Dolby's preset: its endpoint unless told otherwise.
pub(crate) const DOLBY_TOKEN_URL: Variable = Variable::with_default("TOKEN_URL", DEFAULT_TOKEN_URL);
/// Any other OAuth2 server: no endpoint can be guessed.
pub(crate) const TOKEN_URL: Variable = Variable::required("TOKEN_URL");
pub(crate) const TOKEN_SCOPE: Variable = Variable::optional("TOKEN_SCOPE");
pub(crate) const TOKEN_AUDIENCE: Variable = Variable::optional("TOKEN_AUDIENCE");
/// `basic` (HTTP Basic, RFC 6749's preferred way) or `body` (client_id and client_secret in the form).
pub(crate) const TOKEN_CLIENT_AUTH: Variable = Variable::with_default("TOKEN_CLIENT_AUTH", "basic");

// Tokens minted in the function (`twilio`, `livekit`), for a caller's identity.
pub(crate) const TOKEN_TTL_SECONDS: Variable = Variable::with_default("TOKEN_TTL_SECONDS", "3600");
/// `jwt`: the caller proves who they are with a bearer token; `trust`: they name themselves.
pub(crate) const IDENTITY_MODE: Variable = Variable::with_default("IDENTITY_MODE", "jwt");
pub(crate) const IDENTITY_JWKS_URL: Variable = Variable::optional("IDENTITY_JWKS_URL");
pub(crate) const IDENTITY_HS256_SECRET: Variable = Variable::optional_secret("IDENTITY_HS256_SECRET");
pub(crate) const IDENTITY_ISSUER: Variable = Variable::optional("IDENTITY_ISSUER");
pub(crate) const IDENTITY_AUDIENCE: Variable = Variable::optional("IDENTITY_AUDIENCE");
pub(crate) const IDENTITY_CLAIM: Variable = Variable::with_default("IDENTITY_CLAIM", "sub");
/// `sign-in`: a minted token expires no later than the caller's own; `ttl`: TOKEN_TTL_SECONDS.
pub(crate) const TOKEN_LIFETIME: Variable = Variable::with_default("TOKEN_LIFETIME", "sign-in");
const IDENTITY: [Variable; 7] = [
    IDENTITY_MODE,
    IDENTITY_JWKS_URL,
    IDENTITY_HS256_SECRET,
    IDENTITY_ISSUER,
    IDENTITY_AUDIENCE,
    IDENTITY_CLAIM,
    TOKEN_LIFETIME,
];

pub(crate) const TWILIO_ACCOUNT_SID: Variable = Variable::required("TWILIO_ACCOUNT_SID");
pub(crate) const TWILIO_API_KEY: Variable = Variable::required("TWILIO_API_KEY");
pub(crate) const TWILIO_API_SECRET: Variable = Variable::secret("TWILIO_API_SECRET");
/// Comma list of `video`, `chat`, `voice`.
pub(crate) const TWILIO_GRANTS: Variable = Variable::with_default("TWILIO_GRANTS", "video");
pub(crate) const TWILIO_CHAT_SERVICE_SID: Variable = Variable::optional("TWILIO_CHAT_SERVICE_SID");
pub(crate) const TWILIO_OUTGOING_APPLICATION_SID: Variable =
    Variable::optional("TWILIO_OUTGOING_APPLICATION_SID");
pub(crate) const TWILIO_INCOMING_ALLOW: Variable = Variable::optional("TWILIO_INCOMING_ALLOW");

pub(crate) const LIVEKIT_API_KEY: Variable = Variable::required("LIVEKIT_API_KEY");
pub(crate) const LIVEKIT_API_SECRET: Variable = Variable::secret("LIVEKIT_API_SECRET");

/// Which upstream token API the function talks to, or which token it mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Dolby.io (Communications `session.voxeet.com` or `api.dolby.io`): OAuth2 client
    /// credentials, a preset of `Oauth2`.
    Dolby,
    /// Any OAuth2 client-credentials endpoint.
    Oauth2,
    /// A Twilio Access Token (Video, Conversations, Voice), minted in the function.
    Twilio,
    /// A LiveKit access token, minted in the function.
    Livekit,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] =
        [ProviderKind::Dolby, ProviderKind::Oauth2, ProviderKind::Twilio, ProviderKind::Livekit];

    /// Its value in `TOKEN_PROVIDER`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dolby => "dolby",
            Self::Oauth2 => "oauth2",
            Self::Twilio => "twilio",
            Self::Livekit => "livekit",
        }
    }

    /// Whether its tokens are minted for one caller: then the caller's identity is checked,
    /// and tokens are never shared between callers.
    pub fn mints_per_identity(self) -> bool {
        matches!(self, Self::Twilio | Self::Livekit)
    }

    /// Whether a request must name a room: a LiveKit token admits to one room (LiveKit's own
    /// libraries refuse to mint a join token without one).
    pub fn needs_room(self) -> bool {
        self == Self::Livekit
    }

    /// The methods the function answers, and API Gateway routes to it: GET serves tokens,
    /// OPTIONS answers CORS preflights, and for minted tokens POST too (the request may name
    /// its identity and room in a JSON body, as some tutorials do).
    pub fn methods(self) -> &'static [&'static str] {
        if self.mints_per_identity() { &["GET", "POST", "OPTIONS"] } else { &["GET", "OPTIONS"] }
    }

    /// Every method any provider's function answers: what `up` recognises as its own on an
    /// API or a policy, to keep or to remove.
    pub fn every_method() -> Vec<&'static str> {
        let mut all: Vec<&'static str> = Vec::new();
        for method in Self::ALL.into_iter().flat_map(Self::methods) {
            if !all.contains(method) {
                all.push(method);
            }
        }
        all
    }

    /// The `Allow` header's value.
    pub fn allowed_methods(self) -> String {
        self.methods().join(", ")
    }

    /// The variables this provider reads, beyond the common ones.
    fn own_variables(self) -> &'static [Variable] {
        const OAUTH2: [Variable; 6] =
            [CONSUMER_KEY, CONSUMER_SECRET, TOKEN_URL, TOKEN_SCOPE, TOKEN_AUDIENCE, TOKEN_CLIENT_AUTH];
        const TWILIO: [Variable; 8] = [
            TWILIO_ACCOUNT_SID,
            TWILIO_API_KEY,
            TWILIO_API_SECRET,
            TWILIO_GRANTS,
            TWILIO_CHAT_SERVICE_SID,
            TWILIO_OUTGOING_APPLICATION_SID,
            TWILIO_INCOMING_ALLOW,
            TOKEN_TTL_SECONDS,
        ];
        const LIVEKIT: [Variable; 3] = [LIVEKIT_API_KEY, LIVEKIT_API_SECRET, TOKEN_TTL_SECONDS];
        match self {
            Self::Dolby => &[CONSUMER_KEY, CONSUMER_SECRET, DOLBY_TOKEN_URL],
            Self::Oauth2 => &OAUTH2,
            Self::Twilio => &TWILIO,
            Self::Livekit => &LIVEKIT,
        }
    }

    /// Every variable a function with this provider reads, in the order they are checked.
    pub fn variables(self) -> impl Iterator<Item = Variable> {
        let identity: &[Variable] = if self.mints_per_identity() { &IDENTITY } else { &[] };
        COMMON[..1].iter().chain(self.own_variables()).chain(identity).chain(&COMMON[1..]).copied()
    }

    /// The variables whose values must never be shown: what a secrets store holds.
    pub fn secret_variables(self) -> impl Iterator<Item = Variable> {
        self.variables().filter(|variable| variable.secret)
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The value `TOKEN_PROVIDER` takes, for error messages.
    pub fn choices() -> String {
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
    fn the_credentials_are_secrets_and_only_the_identity_secret_is_optional() {
        let all = all_variables();
        let secrets: Vec<_> = all.iter().filter(|v| v.secret).map(|v| v.name).collect();
        assert_eq!(
            secrets,
            [
                "CONSUMER_KEY",
                "CONSUMER_SECRET",
                "TWILIO_API_SECRET",
                "IDENTITY_HS256_SECRET",
                "LIVEKIT_API_SECRET"
            ]
        );
        assert!(all.iter().filter(|v| v.secret).all(|v| v.default.is_none()));
        let optional: Vec<_> = all.iter().filter(|v| v.secret && !v.required).map(|v| v.name).collect();
        assert_eq!(optional, ["IDENTITY_HS256_SECRET"]);
    }

    #[test]
    fn a_variable_has_one_meaning_per_provider_and_the_same_secrecy_in_all() {
        for kind in ProviderKind::ALL {
            let names: Vec<_> = kind.variables().map(|v| v.name).collect();
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{kind:?} reads a variable twice: {names:?}");
        }
        let everywhere: Vec<_> = ProviderKind::ALL.into_iter().flat_map(ProviderKind::variables).collect();
        for variable in &everywhere {
            assert!(
                everywhere.iter().filter(|v| v.name == variable.name).all(|v| v.secret == variable.secret)
            );
        }
    }
}
