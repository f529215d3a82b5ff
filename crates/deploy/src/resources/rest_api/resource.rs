//! The API's resources: the root, and the `{proxy+}` resource under it that catches every
//! path. Any other resource is one `up` did not make (a route added by hand): removed.

use anyhow::{Context, Result, bail};
use aws_config::retry::RetryConfig;
use aws_sdk_apigateway::types::Resource;

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt, MAX_PAGES, error_code};
use crate::retry::{
    APIGATEWAY_BUSY_LIMIT, APIGATEWAY_CONFLICT, Backoff, apigateway_passing_failure, retrying,
};
use crate::vocabulary::{Planned, Progress, Step, Summary};

pub const PROXY_PATH: &str = "/{proxy+}";
const PROXY_PART: &str = "{proxy+}";

/// A resource `up` did not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraResource {
    pub id: String,
    pub path: String,
}

/// The resources of an API, as `up` sorts them.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    pub root_id: String,
    /// With several `{proxy+}` (a twin run's), the lowest id; the others are extra.
    pub proxy_id: Option<String>,
    /// Children before parents, so each deletion finds its resource still there.
    pub extra: Vec<ExtraResource>,
    /// Every resource, with the methods on it, for the methods' own reading.
    pub all: Vec<Resource>,
}

/// Every resource of the API, with its methods embedded.
pub async fn read(aws: &Aws, api_id: &str) -> Result<Resources> {
    let mut all = Vec::new();
    let mut position: Option<String> = None;
    for page in 0.. {
        if page == MAX_PAGES {
            bail!("reading the resources of REST API {api_id}: still more after {MAX_PAGES} pages");
        }
        let answer = aws
            .apigateway
            .get_resources()
            .rest_api_id(api_id)
            .limit(500)
            .embed("methods")
            .set_position(position.clone())
            .send()
            .await
            .aws_context(format!("reading the resources of REST API {api_id}"))?;
        all.extend(answer.items().iter().cloned());
        match answer.position() {
            Some(next) if Some(next) != position.as_deref() => position = Some(next.to_string()),
            _ => break,
        }
    }
    let root_id = all
        .iter()
        .find(|r| r.path() == Some("/"))
        .and_then(|r| r.id().map(str::to_string))
        .with_context(|| format!("REST API {api_id} has no root resource"))?;
    let proxy_id =
        all.iter().filter(|r| r.path() == Some(PROXY_PATH)).filter_map(|r| r.id()).min().map(str::to_string);
    let mut extra: Vec<ExtraResource> = all
        .iter()
        .filter(|r| r.id() != Some(root_id.as_str()) && r.id() != proxy_id.as_deref())
        .map(|r| ExtraResource {
            id: r.id().unwrap_or_default().into(),
            path: r.path().unwrap_or_default().into(),
        })
        .collect();
    extra.sort_by_key(|e| std::cmp::Reverse(e.path.len()));
    Ok(Resources { root_id, proxy_id, extra, all })
}

/// What `up` does to the API's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChange {
    pub remove: Vec<ExtraResource>,
    pub create_proxy: bool,
}

impl Planned for ResourceChange {
    fn summary(&self) -> Summary {
        if self.create_proxy {
            Summary::create(format!("no {PROXY_PATH} resource yet"))
        } else if !self.remove.is_empty() {
            let paths: Vec<&str> = self.remove.iter().map(|e| e.path.as_str()).collect();
            Summary::update(format!("resources up did not make: {}", paths.join(", ")))
        } else {
            Summary::unchanged()
        }
    }
}

/// `None` for an API yet to be made.
pub fn plan(observed: Option<&Resources>) -> ResourceChange {
    ResourceChange {
        remove: observed.map(|r| r.extra.clone()).unwrap_or_default(),
        create_proxy: observed.is_none_or(|r| r.proxy_id.is_none()),
    }
}

/// Carries out `change`; returns the `{proxy+}` resource's id.
pub async fn apply(
    aws: &Aws,
    api_id: &str,
    observed: &Resources,
    change: &ResourceChange,
    progress: &dyn Progress,
) -> Result<String> {
    for resource in &change.remove {
        remove(aws, api_id, resource).await?;
    }
    if let (false, Some(proxy_id)) = (change.create_proxy, &observed.proxy_id) {
        return Ok(proxy_id.clone());
    }
    // Our own retry, not the SDK's: a retried call may have made a copy (a lost answer; API
    // Gateway refuses the second with a conflict, moto makes it), so only then is the API read
    // again to keep the one `read` picks and remove the others.
    let attempts = std::cell::Cell::new(0);
    let create = || {
        attempts.set(attempts.get() + 1);
        let resource = aws.apigateway.create_resource().rest_api_id(api_id).parent_id(&observed.root_id);
        let once = aws_sdk_apigateway::config::Builder::default().retry_config(RetryConfig::disabled());
        resource.path_part(PROXY_PART).customize().config_override(once).send()
    };
    let note = |message: &str| progress.note(Step::ProxyResource, message);
    let created =
        retrying(APIGATEWAY_BUSY_LIMIT, Backoff::SHORT, apigateway_passing_failure, note, create).await;
    match created {
        Ok(made) if attempts.get() == 1 => {
            return made.id().map(str::to_string).with_context(|| format!("{PROXY_PATH} made without an id"));
        }
        Err(e) if error_code(&e) != Some(APIGATEWAY_CONFLICT) => {
            return Err(e).aws_context(format!("creating resource {PROXY_PATH} in REST API {api_id}"));
        }
        _ => {}
    }
    let now = read(aws, api_id).await?;
    for copy in now.extra.iter().filter(|e| e.path == PROXY_PATH) {
        remove(aws, api_id, copy).await?;
    }
    now.proxy_id.with_context(|| format!("REST API {api_id} has no {PROXY_PATH} after making it"))
}

async fn remove(aws: &Aws, api_id: &str, resource: &ExtraResource) -> Result<()> {
    let ExtraResource { id, path } = resource;
    let deleted = aws.apigateway.delete_resource().rest_api_id(api_id).resource_id(id).send().await;
    deleted
        .or_absent(APIGATEWAY_NOT_FOUND, format!("removing resource {path} from REST API {api_id}"))
        .map(drop)
}
