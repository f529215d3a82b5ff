//! The API's gateway responses: the answers API Gateway gives by itself, before the function runs
//! or when it fails (a missing or wrong API key 403, throttled 429, the function failed 502 or
//! timed out 504, ...). By default they carry no CORS headers, so a browser app reading one sees
//! an opaque network error, and cannot tell "throttled" or "bad key" from an outage (API Gateway
//! developer guide, "Gateway response types", "Enable CORS for a REST API resource"). `up` sets
//! DEFAULT_4XX and DEFAULT_5XX, to which every 4XX and 5XX type falls back, to carry
//! `Access-Control-Allow-Origin` for the allowed origins; any other type customised by hand would
//! shadow them, and is reset. A change is served once the API is redeployed (updating-api).

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use aws_sdk_apigateway::types::GatewayResponseType;
use futures::future::try_join_all;
use tokendeploy_config::origins::AllowedOrigins;

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt};
use crate::desired::Desired;
use crate::retry::{APIGATEWAY_BUSY_LIMIT, Backoff, apigateway_busy, retrying};
use crate::vocabulary::{Planned, Progress, Step, Summary};

pub const KIND: &str = "gateway responses";

/// The fallbacks of every 4XX and 5XX answer API Gateway gives by itself.
pub const TYPES: [GatewayResponseType; 2] =
    [GatewayResponseType::Default4Xx, GatewayResponseType::Default5Xx];

/// A gateway response's `responseParameters`: header mappings.
pub type Parameters = BTreeMap<String, String>;

/// The gateway responses customised on the API (API Gateway lists the defaults too, marked as
/// such: those are left out), by type.
pub type GatewayResponses = BTreeMap<String, Parameters>;

fn header(name: &str) -> String {
    format!("gatewayresponse.header.{name}")
}

/// The headers DEFAULT_4XX and DEFAULT_5XX carry: the one allowed origin, or `*`, as a static
/// value; with several, the request's own `Origin` (a gateway response cannot choose among
/// them), which reveals nothing to another origin but that API Gateway refused its request.
pub fn wanted(desired: &Desired) -> Parameters {
    let origins = desired.environment.variables.get("ALLOWED_ORIGINS");
    let allow_origin = match origins.and_then(|value| AllowedOrigins::parse(value)) {
        None => return Parameters::new(),
        Some(AllowedOrigins::Any) => "'*'".to_string(),
        Some(AllowedOrigins::List(one)) if one.len() == 1 => format!("'{}'", one[0]),
        Some(AllowedOrigins::List(_)) => "method.request.header.Origin".to_string(),
    };
    let mut parameters = Parameters::from([(header("Access-Control-Allow-Origin"), allow_origin.clone())]);
    if allow_origin != "'*'" {
        parameters.insert(header("Vary"), "'Origin'".into());
    }
    parameters
}

/// The API's customised gateway responses.
pub async fn read(aws: &Aws, api_id: &str) -> Result<GatewayResponses> {
    let listed = aws.apigateway.get_gateway_responses().rest_api_id(api_id).limit(500).send().await;
    let listed = listed.aws_context(format!("reading the gateway responses of REST API {api_id}"))?;
    let customised = listed.items().iter().filter(|response| !response.default_response());
    Ok(customised
        .filter_map(|response| {
            let kind = response.response_type()?.as_str().to_string();
            let parameters = response.response_parameters().cloned().unwrap_or_default();
            Some((kind, parameters.into_iter().collect()))
        })
        .collect())
}

/// What `up` does to the gateway responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayResponseChange {
    /// Of [`TYPES`], those to set (missing or different).
    pub put: Vec<GatewayResponseType>,
    /// Other types customised by hand, reset to API Gateway's default.
    pub reset: Vec<String>,
    /// None of ours set yet.
    first: bool,
}

impl Planned for GatewayResponseChange {
    fn summary(&self) -> Summary {
        let names =
            |types: &[GatewayResponseType]| types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ");
        let mut wrong = Vec::new();
        if !self.put.is_empty() && !self.first {
            wrong.push(format!("{} without the CORS headers up sets", names(&self.put)));
        }
        if !self.reset.is_empty() {
            wrong.push(format!("responses up did not make: {}", self.reset.join(", ")));
        }
        match (self.first, wrong.is_empty()) {
            (true, true) => Summary::create("API Gateway's own answers carry no CORS headers yet"),
            (_, true) => Summary::unchanged(),
            (_, false) => Summary::update(wrong.join("; ")),
        }
    }
}

/// `observed`: `None` for an API yet to be made.
pub fn plan(desired: &Desired, observed: Option<&GatewayResponses>) -> GatewayResponseChange {
    let none = GatewayResponses::new();
    let observed = observed.unwrap_or(&none);
    let wanted = wanted(desired);
    let put: Vec<GatewayResponseType> =
        TYPES.into_iter().filter(|kind| observed.get(kind.as_str()) != Some(&wanted)).collect();
    let ours = |kind: &String| TYPES.iter().any(|t| t.as_str() == kind);
    let reset = observed.keys().filter(|kind| !ours(kind)).cloned().collect();
    let first = !TYPES.iter().any(|kind| observed.contains_key(kind.as_str()));
    GatewayResponseChange { put, reset, first }
}

pub async fn apply(
    aws: &Aws,
    desired: &Desired,
    api_id: &str,
    change: &GatewayResponseChange,
    progress: &dyn Progress,
) -> Result<()> {
    let note = |message: &str| progress.note(Step::GatewayResponses, message);
    let parameters: HashMap<String, String> = wanted(desired).into_iter().collect();
    let put = change.put.iter().map(|kind| {
        let call = || {
            let response =
                aws.apigateway.put_gateway_response().rest_api_id(api_id).response_type(kind.clone());
            response.set_response_parameters(Some(parameters.clone())).send()
        };
        async move {
            let put = retrying(APIGATEWAY_BUSY_LIMIT, Backoff::SHORT, apigateway_busy, note, call).await;
            put.aws_context(format!("setting gateway response {} of REST API {api_id}", kind.as_str()))
                .map(drop)
        }
    });
    let reset = change.reset.iter().map(|kind| async move {
        let kind = GatewayResponseType::from(kind.as_str());
        let call = || {
            aws.apigateway.delete_gateway_response().rest_api_id(api_id).response_type(kind.clone()).send()
        };
        let reset = retrying(APIGATEWAY_BUSY_LIMIT, Backoff::SHORT, apigateway_busy, note, call).await;
        let doing = format!("resetting gateway response {} of REST API {api_id}", kind.as_str());
        reset.or_absent(APIGATEWAY_NOT_FOUND, doing).map(drop)
    });
    tokio::try_join!(try_join_all(put), try_join_all(reset))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::Action;

    fn desired(origins: &str) -> Desired {
        Desired::example("", &[("ALLOWED_ORIGINS", origins)])
    }

    fn allow_origin(desired: &Desired) -> String {
        wanted(desired)[&header("Access-Control-Allow-Origin")].clone()
    }

    #[test]
    fn api_gateways_own_answers_name_the_allowed_origin() {
        assert_eq!(allow_origin(&desired("https://app.example.com")), "'https://app.example.com'");
        assert_eq!(allow_origin(&desired("*")), "'*'");
        assert!(!wanted(&desired("*")).contains_key(&header("Vary")));
        let several = desired("https://a.example, https://b.example");
        assert_eq!(allow_origin(&several), "method.request.header.Origin");
        assert_eq!(wanted(&several)[&header("Vary")], "'Origin'");
    }

    #[test]
    fn plans_both_fallbacks_and_resets_what_would_shadow_them() {
        let desired = desired("https://app.example.com");
        let fresh = plan(&desired, None);
        assert_eq!((fresh.action(), fresh.put.len()), (Action::Create, 2));
        let set: GatewayResponses =
            TYPES.iter().map(|t| (t.as_str().to_string(), wanted(&desired))).collect();
        assert_eq!(plan(&desired, Some(&set)).action(), Action::Unchanged);
        let mut shadowed = set.clone();
        shadowed.insert("THROTTLED".into(), Parameters::new());
        let change = plan(&desired, Some(&shadowed));
        assert_eq!(change.summary(), Summary::update("responses up did not make: THROTTLED"));
        let moved = plan(&super::tests::desired("https://other.example"), Some(&set));
        assert_eq!(
            moved.summary(),
            Summary::update("DEFAULT_4XX, DEFAULT_5XX without the CORS headers up sets")
        );
    }
}
