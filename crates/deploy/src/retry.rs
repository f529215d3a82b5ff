//! Waiting out AWS's passing refusals: one loop, and a named classifier for each refusal
//! worth waiting out. A classifier says why a failure is worth another try (in words a person
//! sees in the progress display), or `None` to give up at once.
//!
//! The SDK's own retry already covers throttling, 5xx answers and broken connections, unseen;
//! this loop is for what it does not retry (AWS's eventual consistency, an update still being
//! applied) and for waits long enough that a person should see them.

use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{error_code, is_transient, message};

/// How long to pause between tries: doubling from `first` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// For waits of seconds: half a second, doubling up to five.
    pub const SHORT: Backoff = Backoff { first: Duration::from_millis(500), max: Duration::from_secs(5) };
    /// For waits on AWS's eventual consistency (a new role reaching Lambda): a quarter second,
    /// doubling up to one, so the run goes on within about a second of it being true.
    pub const PROPAGATION: Backoff =
        Backoff { first: Duration::from_millis(250), max: Duration::from_secs(1) };
    /// For API Gateway's rate limit on deletions (one every 30 s): five seconds up to thirty.
    pub const LONG: Backoff = Backoff { first: Duration::from_secs(5), max: Duration::from_secs(30) };
}

/// Makes `call` until it succeeds, fails in a way `retry_on` does not name, or `limit` has
/// passed; each wait is told to `waiting`, so a person sees it.
pub async fn retrying<T, E, Fut>(
    limit: Duration,
    backoff: Backoff,
    retry_on: impl Fn(&SdkError<E, HttpResponse>) -> Option<&'static str>,
    waiting: impl Fn(&str),
    mut call: impl FnMut() -> Fut,
) -> Result<T, SdkError<E, HttpResponse>>
where
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let started = Instant::now();
    let mut pause = backoff.first;
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(why) = retry_on(&error).filter(|_| started.elapsed() + pause < limit) else {
            return Err(error);
        };
        waiting(&format!("{why}; retrying in {}", seconds(pause)));
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(backoff.max);
    }
}

/// `5 s`, or `0.25 s` for a pause under a second.
fn seconds(pause: Duration) -> String {
    if pause.subsec_millis() == 0 {
        format!("{} s", pause.as_secs())
    } else {
        format!("{} s", pause.as_secs_f64())
    }
}

/// Lambda's answer while a new (or changed) role has not reached it yet: IAM is eventually
/// consistent, on creation and on configuration updates alike.
pub fn role_not_yet_assumable<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&'static str> {
    (error_code(error) == Some("InvalidParameterValueException")
        && message(error).contains("cannot be assumed"))
    .then_some("waiting for the new IAM role to reach Lambda")
}

/// Lambda's code for a change while another is still being applied; also its answer to
/// creating what exists, and to a statement id that is taken.
pub const LAMBDA_CONFLICT: &str = "ResourceConflictException";

/// Lambda is still applying another change to the function (ours, another run's, a console
/// edit). Not "already exists": that is an answer, not a wait.
pub fn lambda_update_in_progress<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&'static str> {
    (error_code(error) == Some(LAMBDA_CONFLICT) && !message(error).contains("already exists"))
        .then_some("another update of the function is in progress")
}

/// A configuration update can meet both: an update in progress, and a role not yet assumable.
pub fn lambda_configuration_busy<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&'static str> {
    lambda_update_in_progress(error).or_else(|| role_not_yet_assumable(error))
}

/// API Gateway's code for a concurrent change, and for making what exists.
pub const APIGATEWAY_CONFLICT: &str = "ConflictException";

/// How long API Gateway's refusals of one change may keep it waiting.
pub const APIGATEWAY_BUSY_LIMIT: Duration = Duration::from_secs(60);

/// API Gateway refuses a change while another to the same API is being made ("Unable to
/// complete operation due to concurrent modification. Please try again later."), or asks to
/// slow down. A conflict that says a thing exists is an answer, not a wait.
pub fn apigateway_busy<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&'static str> {
    match error_code(error) {
        Some(APIGATEWAY_CONFLICT) if message(error).contains("concurrent modification") => {
            Some("API Gateway is applying another change to the API")
        }
        Some("TooManyRequestsException") => Some("API Gateway asks to slow down"),
        _ => None,
    }
}

/// For a call made without the SDK's own retry: API Gateway busy, or any passing failure.
pub fn apigateway_passing_failure<E: ProvideErrorMetadata>(
    error: &SdkError<E, HttpResponse>,
) -> Option<&'static str> {
    apigateway_busy(error).or_else(|| match error.as_service_error() {
        _ if !is_transient(error) => None,
        Some(_) => Some("API Gateway answered an error"),
        None => Some("API Gateway did not answer"),
    })
}

/// For DeleteRestApi, whose rate limit is one deletion every 30 s: throttling, and any passing
/// failure (a 5xx, a dropped connection) on the way.
pub fn apigateway_deletion_refused<E: ProvideErrorMetadata>(
    error: &SdkError<E, HttpResponse>,
) -> Option<&'static str> {
    match error_code(error) {
        Some("TooManyRequestsException") => Some("API Gateway allows one deletion every 30 s"),
        _ if is_transient(error) && error.as_service_error().is_some() => {
            Some("API Gateway answered an error")
        }
        _ if is_transient(error) => Some("API Gateway did not answer"),
        _ => None,
    }
}

/// IAM refuses to delete a role while it still sees policies on it (DeleteConflict): right
/// after they were removed, the removal may not have reached every part of IAM yet (IAM is
/// eventually consistent).
pub fn role_policies_not_yet_gone<E: ProvideErrorMetadata, R>(
    error: &SdkError<E, R>,
) -> Option<&'static str> {
    (error_code(error) == Some("DeleteConflict"))
        .then_some("IAM does not see the role's policies removed yet")
}

/// UpdateUsagePlan is limited to one request every 20 s an account (API Gateway quotas): a
/// throttled one, or any passing failure, is tried again.
pub fn usage_plan_update_refused<E: ProvideErrorMetadata>(
    error: &SdkError<E, HttpResponse>,
) -> Option<&'static str> {
    match error_code(error) {
        Some("TooManyRequestsException") => Some("API Gateway allows one usage plan update every 20 s"),
        _ => apigateway_passing_failure(error),
    }
}

/// DeleteUsagePlan refused because API Gateway still counts the stages just removed from the
/// plan ("Cannot delete Usage Plan ... because there are API Stages associated with it"), or
/// busy.
pub fn usage_plan_still_bound<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&'static str> {
    let still_bound =
        error_code(error) == Some("BadRequestException") && message(error).contains("API Stages associated");
    if still_bound {
        Some("API Gateway still counts the plan's stages just removed")
    } else {
        apigateway_busy(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::operation::add_permission::AddPermissionError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(status: u16, code: &str, message: &str) -> SdkError<AddPermissionError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(AddPermissionError::generic(meta), raw)
    }

    #[test]
    fn a_conflict_that_says_something_exists_is_an_answer_not_a_wait() {
        let busy = answered(409, LAMBDA_CONFLICT, "An update is in progress for resource: arn:f");
        let taken = answered(409, LAMBDA_CONFLICT, "The statement id (get) provided already exists.");
        assert!(lambda_update_in_progress(&busy).is_some());
        assert_eq!(lambda_update_in_progress(&taken), None);
        let concurrent = answered(
            409,
            APIGATEWAY_CONFLICT,
            "Unable to complete operation due to concurrent modification. Please try again later.",
        );
        let exists = answered(409, APIGATEWAY_CONFLICT, "Method already exists for this resource");
        assert!(apigateway_busy(&concurrent).is_some());
        assert_eq!(apigateway_busy(&exists), None);
    }

    #[test]
    fn a_role_not_yet_assumable_is_told_apart_from_other_bad_parameters() {
        let fresh = answered(
            400,
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        );
        let bad = answered(
            400,
            "InvalidParameterValueException",
            "Unzipped size must be smaller than 262144000 bytes",
        );
        assert!(role_not_yet_assumable(&fresh).is_some() && lambda_configuration_busy(&fresh).is_some());
        assert_eq!(lambda_configuration_busy(&bad), None);
    }

    #[test]
    fn deletions_wait_out_the_rate_limit_and_passing_failures_only() {
        let throttled = answered(429, "TooManyRequestsException", "Too Many Requests");
        assert_eq!(
            apigateway_deletion_refused(&throttled),
            Some("API Gateway allows one deletion every 30 s")
        );
        assert!(
            apigateway_deletion_refused(&answered(503, "ServiceUnavailableException", "later")).is_some()
        );
        assert_eq!(apigateway_deletion_refused(&answered(400, "BadRequestException", "no")), None);
    }

    #[test]
    fn eventually_consistent_refusals_of_deletions_are_waited_out_and_nothing_else() {
        let conflict =
            answered(409, "DeleteConflict", "Cannot delete entity, must detach all policies first.");
        assert!(role_policies_not_yet_gone(&conflict).is_some());
        assert_eq!(role_policies_not_yet_gone(&answered(403, "AccessDenied", "no")), None);
        let bound = answered(
            400,
            "BadRequestException",
            "Cannot delete Usage Plan abc because there are API Stages associated with it, including x:prod",
        );
        assert!(usage_plan_still_bound(&bound).is_some());
        assert_eq!(usage_plan_still_bound(&answered(400, "BadRequestException", "Invalid id")), None);
        let throttled = answered(429, "TooManyRequestsException", "Too Many Requests");
        assert_eq!(
            usage_plan_update_refused(&throttled),
            Some("API Gateway allows one usage plan update every 20 s")
        );
    }

    #[test]
    fn pauses_read_as_whole_or_tenths_of_seconds() {
        assert_eq!(seconds(Duration::from_secs(5)), "5 s");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5 s");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25 s");
    }
}
