//! `down`: delete exactly what `up` made for the stack, as found in its [`Snapshot`].

use serde::Serialize;

use crate::aws::Aws;
use crate::error::Result;
use crate::resources::rest_api::{api_key, usage_plan};
use crate::resources::{Lookup, function, http_api, log_group, rest_api, role, secret};
use crate::snapshot::Snapshot;
use crate::stack::{STACK_TAG, Stack};
use crate::steps::run_step;
use crate::vocabulary::{Progress, Step, Summary};

/// Why `down` deletes each resource.
const TAKEN_DOWN: &str = "the stack is taken down";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// The step name of the resource kind, as in `up`'s report.
    pub kind: &'static str,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub kind: &'static str,
    pub id: String,
    pub reason: String,
}

/// What `down --output json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    pub name: String,
    pub region: String,
    pub deleted: Vec<Resource>,
    pub skipped: Vec<Skipped>,
}

/// Ours, in the order `down` deletes them.
pub fn to_delete(snapshot: &Snapshot, stack: &Stack) -> Vec<Resource> {
    let ours = snapshot.found(stack).into_iter().filter(|found| found.ours);
    ours.map(|found| Resource { kind: found.step.name(), id: found.id }).collect()
}

/// Resources with the stack's names that are not ours, left alone.
fn skipped(snapshot: &Snapshot, stack: &Stack) -> Vec<Skipped> {
    let reason = format!("not tagged {STACK_TAG}={}", stack.name);
    let foreign = snapshot.found(stack).into_iter().filter(|found| !found.ours);
    foreign.map(|found| Skipped { kind: found.step.name(), id: found.id, reason: reason.clone() }).collect()
}

/// Deletes what [`to_delete`] lists, four chains side by side: the usage plans (API Gateway
/// will not delete an API a plan binds), then the APIs and keys (the APIs' rate limit is
/// slowest); the function (its resource policy, our permissions, goes with it), then its logs;
/// the role (its policies go with it); the secret.
pub async fn down(
    aws: &Aws,
    stack: &Stack,
    snapshot: &Snapshot,
    progress: &dyn Progress,
) -> Result<DownReport> {
    let delete_apis = async {
        for api in &snapshot.apis.ours {
            run_step(
                progress,
                Step::RestApi,
                Summary::delete(TAKEN_DOWN),
                rest_api::delete(aws, &api.id, progress),
            )
            .await?;
        }
        anyhow::Ok(())
    };
    let apis = async {
        if !snapshot.usage_plans.is_empty() {
            let plans = usage_plan::delete(aws, &snapshot.usage_plans, progress);
            run_step(progress, Step::UsagePlan, Summary::delete(TAKEN_DOWN), plans).await?;
        }
        let ids: Vec<String> = snapshot.api_keys.iter().map(|key| key.id.clone()).collect();
        let keys = async {
            if !ids.is_empty() {
                run_step(progress, Step::ApiKey, Summary::delete(TAKEN_DOWN), api_key::delete(aws, &ids))
                    .await?;
            }
            anyhow::Ok(())
        };
        let http_apis = async {
            for api in &snapshot.http_apis.ours {
                let delete = http_api::delete(aws, &api.id);
                run_step(progress, Step::HttpApi, Summary::delete(TAKEN_DOWN), delete).await?;
            }
            anyhow::Ok(())
        };
        tokio::try_join!(keys, delete_apis, http_apis)?;
        anyhow::Ok(())
    };
    let function_side = async {
        if let Lookup::Ours(_) = snapshot.function {
            run_step(progress, Step::Function, Summary::delete(TAKEN_DOWN), function::delete(aws, stack))
                .await?;
        }
        // After the function: an invocation in between would make Lambda write to it again.
        if let Lookup::Ours(_) = snapshot.log_group {
            run_step(progress, Step::LogGroup, Summary::delete(TAKEN_DOWN), log_group::delete(aws, stack))
                .await?;
        }
        anyhow::Ok(())
    };
    let role = async {
        if let Lookup::Ours(observed) = &snapshot.role {
            run_step(
                progress,
                Step::Role,
                Summary::delete(TAKEN_DOWN),
                role::delete(aws, stack, observed, progress),
            )
            .await?;
        }
        anyhow::Ok(())
    };
    let secret = async {
        if let Lookup::Ours(secret) = &snapshot.secret {
            run_step(progress, Step::Secret, Summary::delete(TAKEN_DOWN), secret::delete(aws, &secret.arn))
                .await?;
        }
        anyhow::Ok(())
    };
    tokio::try_join!(apis, function_side, role, secret)?;
    Ok(DownReport {
        name: stack.name.clone(),
        region: stack.region.clone(),
        deleted: to_delete(snapshot, stack),
        skipped: skipped(snapshot, stack),
    })
}
