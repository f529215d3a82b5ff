//! The words every part of the deployer shares: the steps of `up`, what a step does
//! ([`Action`]) and why ([`Summary`]), and how progress is told. A leaf: it depends on no other
//! module of the crate, and every other module may depend on it.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Declares [`Step`] from one table: each step with its JSON name and its title, in the order
/// `up` shows them. [`Step::ALL`], [`Step::name`] and [`Step::title`] come from the same line,
/// so a new step is one line here, and the compiler then points at every `match` that must
/// handle it (the plan's summary, `status`'s identifiers, `down`).
macro_rules! steps {
    ($($step:ident => $name:literal, $title:literal;)+) => {
        /// The steps of `up`, in the order they are shown.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        pub enum Step {
            $(#[serde(rename = $name)] $step,)+
        }

        impl Step {
            /// Every step, in `up`'s order.
            pub const ALL: [Step; [$($name),+].len()] = [$(Step::$step),+];

            /// The stable name used in JSON output.
            pub fn name(self) -> &'static str {
                match self {
                    $(Step::$step => $name,)+
                }
            }

            /// What a person reads.
            pub fn title(self) -> &'static str {
                match self {
                    $(Step::$step => $title,)+
                }
            }
        }
    };
}

steps! {
    Role => "role", "execution role";
    Package => "package", "package bootstrap";
    LogGroup => "log_group", "log group";
    Secret => "secret", "Secrets Manager secret";
    SecretAccess => "secret_access", "secret read policy";
    Function => "function", "Lambda function";
    Environment => "environment", "function environment";
    RestApi => "rest_api", "REST API";
    ProxyResource => "proxy_resource", "{proxy+} resource";
    Methods => "methods", "methods";
    Integrations => "integrations", "Lambda proxy integrations";
    GatewayResponses => "gateway_responses", "gateway responses (CORS)";
    Deployment => "deployment", "stage prod";
    Throttling => "throttling", "stage limits and settings";
    HttpApi => "http_api", "HTTP API";
    HttpRoutes => "http_routes", "HTTP API integration and routes";
    HttpStage => "http_stage", "HTTP API stage $default and limits";
    ApiKey => "api_key", "API key";
    UsagePlan => "usage_plan", "usage plan";
    FunctionUrl => "function_url", "function URL and reserved concurrency";
    Permission => "permission", "invoke permission";
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "created")]
    Create,
    #[serde(rename = "updated")]
    Update,
    #[serde(rename = "unchanged")]
    Unchanged,
    /// `down` deletes everything; `up` what it made and is no longer asked for.
    #[serde(rename = "deleted")]
    Delete,
}

impl Action {
    /// As a plan reads: what `up` would do.
    pub fn planned(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "no change",
            Action::Delete => "delete",
        }
    }

    /// As a report reads: what `up` did.
    pub fn done(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Unchanged => "unchanged",
            Action::Delete => "deleted",
        }
    }
}

/// Why a step is unchanged, unless it says otherwise (such as "not asked for").
const AS_WANTED: &str = "as wanted";
const NOT_ASKED_FOR: &str = "not asked for";

/// One step's decision as a person reads it: the action, and why (never a secret value:
/// variable names at most). Each resource's own typed change says exactly what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub action: Action,
    pub reason: String,
}

impl Summary {
    pub fn create(reason: impl Into<String>) -> Self {
        Self { action: Action::Create, reason: reason.into() }
    }
    pub fn update(reason: impl Into<String>) -> Self {
        Self { action: Action::Update, reason: reason.into() }
    }
    pub fn unchanged() -> Self {
        Self { action: Action::Unchanged, reason: AS_WANTED.into() }
    }
    pub fn unchanged_because(reason: impl Into<String>) -> Self {
        Self { action: Action::Unchanged, reason: reason.into() }
    }
    /// Not part of this stack as asked for: nothing to make, nothing there.
    pub fn not_asked_for() -> Self {
        Self::unchanged_because(NOT_ASKED_FOR)
    }
    /// `up` removes what it made and is no longer asked for.
    pub fn delete(reason: impl Into<String>) -> Self {
        Self { action: Action::Delete, reason: reason.into() }
    }
}

/// A resource's typed change, summed up for plans, reports and `status`.
pub trait Planned {
    fn summary(&self) -> Summary;

    fn action(&self) -> Action {
        self.summary().action
    }
}

/// One finished step, as reported in JSON output.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    #[serde(serialize_with = "serialize_step_name", rename = "name")]
    pub step: Step,
    pub action: Action,
    /// Why nothing was done, when it is not that the resource is as wanted: "not asked for"
    /// says the resource is not part of this stack, rather than that it exists unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub seconds: f64,
}

impl StepReport {
    /// `seconds` to the millisecond.
    pub fn new(step: Step, summary: &Summary, took: Duration) -> Self {
        let Summary { action, reason } = summary;
        let reason = (*action == Action::Unchanged && reason != AS_WANTED).then(|| reason.clone());
        Self { step, action: *action, reason, seconds: (took.as_secs_f64() * 1000.0).round() / 1000.0 }
    }

    /// What was done, as a progress line says it: "created", or "not asked for".
    pub fn outcome(&self) -> &str {
        self.reason.as_deref().unwrap_or(self.action.done())
    }
}

fn serialize_step_name<S: serde::Serializer>(step: &Step, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(step.name())
}

/// Receives step events; the CLI draws progress bars or plain lines from them.
pub trait Progress: Send + Sync {
    fn started(&self, step: Step);
    /// Something slow is happening inside the step (waiting for AWS, retrying).
    fn note(&self, step: Step, message: &str);
    fn finished(&self, report: &StepReport);
}

/// Reports nothing: for library callers and tests that do not watch.
pub struct Silent;

impl Progress for Silent {
    fn started(&self, _: Step) {}
    fn note(&self, _: Step, _: &str) {}
    fn finished(&self, _: &StepReport) {}
}
