//! The env files `init` writes, one a provider (a checkout's examples/ links to them), and the
//! example values in them that `up` and `serve` warn about while they are still there.

use std::collections::BTreeMap;

use tokendeploy_config::ProviderKind;

use crate::settings::parse_env_file;

/// The env file `init` writes for `provider`.
pub fn env_file(provider: ProviderKind) -> &'static str {
    match provider {
        ProviderKind::Dolby => include_str!("../env/dolby.env"),
        ProviderKind::Oauth2 => include_str!("../env/oauth2.env"),
        ProviderKind::Twilio => include_str!("../env/twilio.env"),
        ProviderKind::Livekit => include_str!("../env/livekit.env"),
    }
}

/// The variables of `provider` that `variables` still sets to the example value its file gives:
/// its own and the sign-in's that have no default (a key, a secret, the sign-in's addresses),
/// for which the file's value only shows the shape. Their stack deploys, and gives no working
/// token. (Variables every provider reads, such as the origins, are choices, not credentials.)
pub fn examples_left(provider: ProviderKind, variables: &BTreeMap<String, String>) -> Vec<&'static str> {
    let examples = parse_env_file(env_file(provider).as_bytes())
        .expect("the files init writes parse (a test reads each)");
    let every_providers =
        |name: &str| ProviderKind::ALL.iter().all(|kind| kind.variables().any(|v| v.name == name));
    provider
        .variables()
        .filter(|variable| variable.default.is_none() && !every_providers(variable.name))
        .filter(|variable| {
            let example = examples.get(variable.name);
            example.is_some() && example == variables.get(variable.name)
        })
        .map(|variable| variable.name)
        .collect()
}
