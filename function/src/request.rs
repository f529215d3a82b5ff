//! The function's own request and response types: only what the token server looks at.
//!
//! Lambda events are turned into a [`Request`] by [`crate::event`]; a local HTTP server can
//! build one from its own request type just as well. Nothing here can fail or panic: every
//! field is plain text, taken as it came.

/// One HTTP request, reduced to what the token server decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// As received (`GET`, `OPTIONS`, or anything else; methods are case-sensitive).
    pub method: String,
    /// As received, possibly with the API Gateway stage in front (`/prod/token`).
    pub path: String,
    /// The API Gateway stage the request came through, if any (`prod`, `$default`).
    pub stage: Option<String>,
    /// The `Origin` header: `None` when absent. A header that is present but unreadable
    /// (not visible ASCII, several values, not text) must be passed as `Some` with whatever
    /// text stands for it (e.g. lossy UTF-8): it is then an origin not on any list.
    pub origin: Option<String>,
}

impl Request {
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self { method: method.into(), path: path.into(), stage: None, origin: None }
    }

    pub fn with_stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = Some(stage.into());
        self
    }

    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// The path with any API Gateway stage prefix removed and no trailing slash.
    ///
    /// Behind a REST API the path may arrive as `/prod/token` (custom domains and some
    /// clients add the stage); HTTP APIs' `$default` stage and function URLs carry none.
    pub fn route_path(&self) -> &str {
        let path = self.path.as_str();
        let path = self
            .stage
            .as_deref()
            .filter(|stage| !stage.is_empty() && *stage != "$default")
            .and_then(|stage| path.strip_prefix('/')?.strip_prefix(stage))
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(path);
        match path.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        }
    }
}

/// One HTTP answer: status, headers (lowercase names) and a body (empty for `204`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Response {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self { status, headers: Vec::new(), body: body.into() }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Sets header `name` (lowercase), replacing any value it had.
    pub fn set_header(&mut self, name: &'static str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
    }
}

/// The reason phrase of the statuses the function answers with (ALB wants one).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_path_drops_the_stage_and_trailing_slashes() {
        let cases = [
            ("/token", Some("prod"), "/token"),
            ("/prod/token", Some("prod"), "/token"),
            ("/prod/token/", Some("prod"), "/token"),
            ("/prod", Some("prod"), "/prod"),
            ("/production/token", Some("prod"), "/production/token"),
            ("/$default/token", Some("$default"), "/$default/token"),
            ("/token", Some(""), "/token"),
            ("//token", Some(""), "//token"),
            ("", None, "/"),
            ("///", None, "/"),
            ("/tökén", Some("tö"), "/tökén"),
            ("/tö/token", Some("tö"), "/token"),
        ];
        for (path, stage, expected) in cases {
            let mut request = Request::new("GET", path);
            request.stage = stage.map(str::to_string);
            assert_eq!(request.route_path(), expected, "{path:?} at stage {stage:?}");
        }
    }
}
