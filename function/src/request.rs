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
    /// The `Authorization` header, read as `origin` is.
    pub authorization: Option<String>,
    /// The query string's parameters, percent-decoded, in order; a name may repeat.
    pub query: Vec<(String, String)>,
    /// The body, base64-decoded if the event carried it so; `None` when there is none.
    pub body: Option<Vec<u8>>,
}

/// The most of a request body the function reads: a token request is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What a request asks for: the caller's identity and the room, either as named in it (for
/// `IDENTITY_MODE=trust`, or to be checked against a verified identity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameters {
    pub identity: Option<String>,
    pub room: Option<String>,
}

/// The longest identity or room name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 128;

impl Request {
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            stage: None,
            origin: None,
            authorization: None,
            query: Vec::new(),
            body: None,
        }
    }

    pub fn with_authorization(mut self, authorization: impl Into<String>) -> Self {
        self.authorization = Some(authorization.into());
        self
    }

    pub fn with_query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// `identity` and `room`: query parameters on GET, fields of a JSON object body on POST
    /// (the tutorials use both). Each must be a valid name ([`valid_name`]); the error says
    /// what is wrong, never repeating the value.
    pub fn parameters(&self) -> Result<Parameters, String> {
        let field = |name: &'static str| -> Result<Option<String>, String> {
            let value = if self.method == "POST" { self.body_field(name)? } else { self.query_value(name)? };
            match value {
                Some(value) if !valid_name(&value) => Err(format!(
                    "`{name}` must be 1 to {MAX_NAME_CHARS} letters, digits or any of - _ . @ + : = |"
                )),
                // A room named like a path step would read as one where it meets a URL.
                Some(value) if name == "room" && (value == "." || value == "..") => {
                    Err("`room` may not be `.` or `..`".into())
                }
                value => Ok(value),
            }
        };
        Ok(Parameters { identity: field("identity")?, room: field("room")? })
    }

    /// A query parameter's one value; named twice with different values is an error.
    fn query_value(&self, name: &str) -> Result<Option<String>, String> {
        let mut values = self.query.iter().filter(|(key, _)| key == name).map(|(_, value)| value);
        let first = values.next();
        if values.any(|value| Some(value) != first) {
            return Err(format!("`{name}` is given more than once with different values"));
        }
        Ok(first.cloned())
    }

    /// A string field of the JSON object body; no body (or an empty one) names nothing.
    fn body_field(&self, name: &str) -> Result<Option<String>, String> {
        let Some(body) = self.body.as_deref().filter(|body| !body.iter().all(u8::is_ascii_whitespace)) else {
            return Ok(None);
        };
        if body.len() > MAX_BODY_BYTES {
            return Err(format!("the body is larger than {} KiB", MAX_BODY_BYTES / 1024));
        }
        let json: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| "the body must be a JSON object".to_string())?;
        let object = json.as_object().ok_or_else(|| "the body must be a JSON object".to_string())?;
        match object.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(format!("`{name}` must be a string")),
        }
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

/// Whether `name` may be an identity or a room: 1 to [`MAX_NAME_CHARS`] characters, each a
/// letter or digit (any script) or one of `-_.@+:=|`: what the common sign-in services put in
/// `sub` (Auth0's `auth0|5f7c...` and `google-oauth2|1045...`, Cognito's and Supabase's UUIDs,
/// Google's digits, Entra ID's base64url, Okta's `00u...`, Clerk's `user_...`). No spaces,
/// slashes or control characters: the name ends up in tokens, logs and other services' URLs.
pub fn valid_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&chars)
        && name.chars().all(|c| c.is_alphanumeric() || "-_.@+:=|".contains(c))
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
        401 => "Unauthorized",
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

    #[test]
    fn names_are_letters_digits_and_a_few_marks_of_bounded_length() {
        for good in [
            "alice",
            "user@example.com",
            "Zoë",
            "東京",
            "a:b=c+d-e_f.g",
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "google-oauth2|104583291234567890123",
            &"x".repeat(128),
        ] {
            assert!(valid_name(good), "{good:?}");
        }
        let long = "é".repeat(129);
        for bad in ["", " ", "a b", "a/b", "a\nb", "a\u{0}b", "<script>", "a%20b", "\u{202e}x", &long] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn parameters_come_from_the_query_on_get_and_the_json_body_on_post() {
        let get = Request::new("GET", "/token").with_query("identity", "alice").with_query("room", "r1");
        assert_eq!(
            get.parameters(),
            Ok(Parameters { identity: Some("alice".into()), room: Some("r1".into()) })
        );
        let post = Request::new("POST", "/token").with_body(r#"{"identity":"bob","room":null}"#);
        assert_eq!(post.parameters(), Ok(Parameters { identity: Some("bob".into()), room: None }));
        let ignored = Request::new("POST", "/token").with_query("identity", "mallory");
        assert_eq!(ignored.parameters(), Ok(Parameters::default()), "a POST names them in its body");
        assert_eq!(Request::new("POST", "/token").with_body(" \n").parameters(), Ok(Parameters::default()));
    }

    #[test]
    fn bad_parameters_are_refused_without_repeating_them() {
        let twice = Request::new("GET", "/token").with_query("identity", "a").with_query("identity", "b");
        let same_twice = Request::new("GET", "/token").with_query("room", "a").with_query("room", "a");
        assert!(same_twice.parameters().is_ok());
        let huge = format!(r#"{{"identity":"{}"}}"#, "a".repeat(MAX_BODY_BYTES));
        for (request, expected) in [
            (twice, "more than once"),
            (Request::new("GET", "/token").with_query("room", "../admin"), "`room` must be"),
            (Request::new("GET", "/token").with_query("room", ".."), "may not be `.` or `..`"),
            (Request::new("POST", "/token").with_body(r#"{"room":"."}"#), "may not be `.` or `..`"),
            (Request::new("POST", "/token").with_body("identity=x"), "JSON object"),
            (Request::new("POST", "/token").with_body("[1]"), "JSON object"),
            (Request::new("POST", "/token").with_body(r#"{"identity":5}"#), "must be a string"),
            (Request::new("POST", "/token").with_body(vec![0xff, 0xfe]), "JSON object"),
            (Request::new("POST", "/token").with_body(huge), "larger than 16 KiB"),
        ] {
            let error = request.parameters().unwrap_err();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("../admin") && !error.contains("aaaa"), "{error}");
        }
    }
}
