//! The errors callers of the crate tell apart. Inside, failures carry their context as
//! `anyhow` chains; at the boundary ([`Error`]) each is sorted by the typed cause at its root,
//! so a caller (the CLI's exit codes) decides on a kind, never on words.

use std::fmt;

use crate::stack::STACK_TAG;

/// Input the user must fix (a region, an endpoint, a profile, a stack name): nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// An AWS call that failed: what we were doing, AWS's code and request id when it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCallFailed {
    pub doing: String,
    /// `None` when no answer came (the network, a timeout) or the answer had no code.
    pub code: Option<String>,
    pub request_id: Option<String>,
    /// The failure in words: AWS's code and message (unless it may quote a secret), or why no
    /// answer came.
    pub description: String,
}

impl fmt::Display for AwsCallFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.doing, self.description)
    }
}

impl std::error::Error for AwsCallFailed {}

impl AwsCallFailed {
    /// Whether `error` is, at its root, an AWS call answered with `code`.
    pub fn answered(error: &anyhow::Error, code: &str) -> bool {
        let failed = error.chain().find_map(|cause| cause.downcast_ref::<AwsCallFailed>());
        failed.is_some_and(|failed| failed.code.as_deref() == Some(code))
    }
}

/// A resource that did not reach a usable state in time, with AWS's stated reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    pub what: String,
    pub reason: String,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} did not become ready: {}", self.what, self.reason)
    }
}

impl std::error::Error for NotReady {}

/// The function's code could not be built or read.
#[derive(Debug)]
pub struct PackageFailed(pub anyhow::Error);

impl fmt::Display for PackageFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for PackageFailed {}

/// A resource with our name that this stack did not make: refused, never touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignResource {
    pub kind: String,
    pub name: String,
    pub stack: String,
}

impl fmt::Display for ForeignResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} already exists but is not tagged {STACK_TAG}={}: it belongs to someone else and was left untouched; deploy under another --name",
            self.kind, self.name, self.stack
        )
    }
}

impl std::error::Error for ForeignResource {}

/// A twin `up` run of the same stack changed it at the same moment, in a way this run leaves
/// to that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConcurrentRun {
    /// It made the stack's gateway of `kind` (`kept`) too; this run removed its own copies.
    MadeGateway { stack: String, kind: &'static str, kept: String, removed: Vec<String> },
    /// It changed settings this run also sets (`changed`, such as where the secret is kept);
    /// the stack works as it left it.
    ChangedSettings { stack: String, changed: Vec<String> },
    /// Twin runs with other settings kept undoing each other: the stack may not answer.
    KeptDisagreeing { stack: String, broken: Vec<String> },
    /// It removed the gateway of `kind` this run had just made (it asks for another gateway).
    RemovedGateway { stack: String, kind: &'static str, id: String },
    /// It removed the gateway of `kind` this run found and was building on (it kept another
    /// copy, made at the same moment).
    RemovedFoundGateway { stack: String, kind: &'static str, id: String },
}

impl fmt::Display for ConcurrentRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConcurrentRun::MadeGateway { stack, kind, kept, removed } => write!(
                f,
                "another tokendeploy up of stack {stack} made its {kind} ({kept}) at the same moment; this run removed its own copy ({}) and stopped before changing the API: run up again once the other has finished",
                removed.join(", ")
            ),
            ConcurrentRun::ChangedSettings { stack, changed } => write!(
                f,
                "another tokendeploy up of stack {stack} with other settings changed it meanwhile ({}); the stack works as that run left it: run up again once the other has finished to have this run's settings",
                changed.join("; ")
            ),
            ConcurrentRun::RemovedGateway { stack, kind, id } => write!(
                f,
                "another tokendeploy up of stack {stack} removed the {kind} {id} this run had just made (it asks for another gateway): run up again once the other has finished"
            ),
            ConcurrentRun::RemovedFoundGateway { stack, kind, id } => write!(
                f,
                "another tokendeploy up of stack {stack} removed the {kind} {id} this run found and was building on (it kept another copy made at the same moment): run up again once the other has finished"
            ),
            ConcurrentRun::KeptDisagreeing { stack, broken } => write!(
                f,
                "another tokendeploy up of stack {stack} with other settings kept undoing this run's changes, and the stack may not answer ({}): run up again once the other has finished",
                broken.join("; ")
            ),
        }
    }
}

impl std::error::Error for ConcurrentRun {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Usage,
    /// A resource with the stack's name that is someone else's.
    ForeignResource,
    AwsCall,
    NotReady,
    Package,
    /// A twin `up` run of the same stack changed it at the same moment.
    ConcurrentRun,
    /// Anything else: a bug, or an answer AWS should not have given.
    Other,
}

/// A failed `up`, `plan`, `status` or `down`, sorted by kind; shown as one line with its
/// whole context.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    inner: anyhow::Error,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The failed AWS call, for a [`ErrorKind::AwsCall`].
    pub fn aws_call(&self) -> Option<&AwsCallFailed> {
        self.inner.chain().find_map(|cause| cause.downcast_ref())
    }
}

impl ErrorKind {
    /// Its name in JSON output: a stable interface.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::ForeignResource => "foreign_resource",
            ErrorKind::AwsCall => "aws_call",
            ErrorKind::NotReady => "not_ready",
            ErrorKind::Package => "package",
            ErrorKind::ConcurrentRun => "concurrent_run",
            ErrorKind::Other => "other",
        }
    }

    /// The kind of the typed cause at the root of `error`'s chain (or of a boundary [`Error`]
    /// in it).
    pub fn of(error: &anyhow::Error) -> ErrorKind {
        let is = |cause: &(dyn std::error::Error + 'static), kind| {
            let found = match kind {
                ErrorKind::Usage => cause.is::<UsageError>(),
                ErrorKind::ForeignResource => cause.is::<ForeignResource>(),
                ErrorKind::AwsCall => cause.is::<AwsCallFailed>(),
                ErrorKind::NotReady => cause.is::<NotReady>(),
                ErrorKind::Package => cause.is::<PackageFailed>(),
                ErrorKind::ConcurrentRun => cause.is::<ConcurrentRun>(),
                ErrorKind::Other => false,
            };
            found.then_some(kind)
        };
        const KINDS: [ErrorKind; 6] = [
            ErrorKind::Usage,
            ErrorKind::ForeignResource,
            ErrorKind::ConcurrentRun,
            ErrorKind::NotReady,
            ErrorKind::Package,
            ErrorKind::AwsCall,
        ];
        let typed = |cause: &(dyn std::error::Error + 'static)| {
            cause
                .downcast_ref::<Error>()
                .map(Error::kind)
                .or_else(|| KINDS.into_iter().find_map(|kind| is(cause, kind)))
        };
        error.chain().find_map(typed).unwrap_or(ErrorKind::Other)
    }
}

impl From<anyhow::Error> for Error {
    fn from(inner: anyhow::Error) -> Self {
        Self { kind: ErrorKind::of(&inner), inner }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:#}` keeps the whole context chain on one line.
        write!(f, "{:#}", self.inner)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_sorted_by_the_typed_cause_under_its_context() {
        let usage = anyhow::Error::new(UsageError("bad region".into())).context("connecting");
        assert_eq!(Error::from(usage).kind(), ErrorKind::Usage);
        let call = AwsCallFailed {
            doing: "creating IAM role r".into(),
            code: Some("AccessDenied".into()),
            request_id: Some("req-1".into()),
            description: "AccessDenied: no (request id req-1)".into(),
        };
        let error = Error::from(anyhow::Error::new(call.clone()).context("execution role (create)"));
        assert_eq!(error.kind(), ErrorKind::AwsCall);
        assert_eq!(error.aws_call(), Some(&call));
        assert_eq!(
            error.to_string(),
            "execution role (create): creating IAM role r: AccessDenied: no (request id req-1)"
        );
        assert_eq!(Error::from(anyhow::anyhow!("odd")).kind(), ErrorKind::Other);
        let wrapped = anyhow::Error::new(call).context("reading the stack");
        assert!(AwsCallFailed::answered(&wrapped, "AccessDenied"));
        assert!(!AwsCallFailed::answered(&wrapped, "NotFoundException"));
        assert!(!AwsCallFailed::answered(&anyhow::anyhow!("AccessDenied"), "AccessDenied"));
    }
}
