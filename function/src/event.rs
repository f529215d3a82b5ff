//! Lambda invocation events in, Lambda answers out.
//!
//! The function reads the events itself rather than through a general HTTP adapter: it needs
//! only the method, the path, the stage, two headers, the query and the body, and an adapter that rebuilds
//! a full HTTP request (URI from `Host`, `X-Forwarded-Proto`, query string, body) can fail on
//! inputs the token server does not even look at. Here every JSON value is accepted: an event
//! we cannot read as an HTTP request gets a `400` answer, never an error or a panic.
//!
//! Shapes read: API Gateway REST proxy events (payload 1.0, also HTTP APIs' 1.0), HTTP API
//! payload 2.0 and function-URL events, and ALB target events. The answer takes the shape of
//! the event; an event of no known shape is answered in the REST (1.0) shape.

use serde_json::{Map, Value, json};

use crate::TokenService;
use crate::request::{self, Request, Response};
use crate::response;

/// The shape an event came in, and so the shape of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// API Gateway REST proxy (and HTTP API payload 1.0): `httpMethod`, `path`.
    RestApi,
    /// HTTP API payload 2.0 and function URLs: `requestContext.http.method`, `rawPath`.
    HttpApi,
    /// An ALB target; answered with `multiValueHeaders` when the event has them.
    Alb { multi_value_headers: bool },
}

/// Why an event is not a request the function can serve, and the shape to answer it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotARequest {
    pub answer_as: EventKind,
    pub reason: &'static str,
}

/// Reads an HTTP request out of a Lambda event.
pub fn parse(event: &Value) -> Result<(EventKind, Request), NotARequest> {
    let unknown = |reason| NotARequest { answer_as: EventKind::RestApi, reason };
    let Some(event) = event.as_object() else {
        return Err(unknown("the event is not a JSON object"));
    };
    // Authorizer events carry a method and path too, but ask a different question.
    if event.contains_key("methodArn") || event.contains_key("routeArn") {
        return Err(unknown("the event is an authorizer request, not an HTTP request"));
    }
    let context = event.get("requestContext").and_then(Value::as_object);
    let http_context = context.and_then(|context| context.get("http")).and_then(Value::as_object);
    let kind = if context.is_some_and(|context| context.contains_key("elb")) {
        EventKind::Alb { multi_value_headers: event.get("multiValueHeaders").is_some_and(Value::is_object) }
    } else if http_context.is_some() || event.get("version").and_then(Value::as_str) == Some("2.0") {
        EventKind::HttpApi
    } else if event.contains_key("httpMethod") {
        EventKind::RestApi
    } else {
        return Err(unknown("the event is not an API Gateway, function URL or ALB request"));
    };
    let malformed = |reason| NotARequest { answer_as: kind, reason };

    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
    let (method, path) = match kind {
        EventKind::HttpApi => (
            text(http_context.and_then(|http| http.get("method"))),
            text(event.get("rawPath")).or_else(|| text(http_context.and_then(|http| http.get("path")))),
        ),
        EventKind::RestApi | EventKind::Alb { .. } => {
            (text(event.get("httpMethod")), text(event.get("path")))
        }
    };
    let method = method.ok_or(malformed("the event has no HTTP method"))?;
    let path = path.ok_or(malformed("the event has no path"))?;
    let stage = match kind {
        EventKind::Alb { .. } => None,
        _ => text(context.and_then(|context| context.get("stage"))),
    };
    let request = Request {
        method,
        path,
        stage,
        origin: header(event, "origin"),
        authorization: header(event, "authorization"),
        query: query(event, kind),
        body: body(event),
    };
    Ok((kind, request))
}

/// The query parameters, decoded. API Gateway REST events carry them decoded (every value in
/// `multiValueQueryStringParameters`); HTTP API events as sent in `rawQueryString`; ALB events
/// as sent, in either map. Anything that is not text is left out: it names nothing.
fn query(event: &Map<String, Value>, kind: EventKind) -> Vec<(String, String)> {
    if kind == EventKind::HttpApi
        && let Some(raw) = event.get("rawQueryString").and_then(Value::as_str)
    {
        return url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    }
    let pairs: Vec<(String, String)> = ["multiValueQueryStringParameters", "queryStringParameters"]
        .iter()
        .find_map(|field| event.get(*field).and_then(Value::as_object).filter(|map| !map.is_empty()))
        .into_iter()
        .flatten()
        .flat_map(|(name, value)| {
            let values = match value {
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                Value::String(text) => vec![text.as_str()],
                _ => vec![],
            };
            values.into_iter().map(move |value| (name.clone(), value.to_string()))
        })
        .collect();
    if matches!(kind, EventKind::Alb { .. }) {
        let raw: Vec<String> = pairs.iter().map(|(name, value)| format!("{name}={value}")).collect();
        return url::form_urlencoded::parse(raw.join("&").as_bytes()).into_owned().collect();
    }
    pairs
}

/// The body's bytes: base64-decoded when `isBase64Encoded` says so (undecodable base64 stands
/// as no JSON at all, so the request is refused as malformed, not read as empty).
fn body(event: &Map<String, Value>) -> Option<Vec<u8>> {
    let text = event.get("body").and_then(Value::as_str)?;
    if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        use base64::Engine;
        return Some(
            base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_else(|_| b"\xff".to_vec()),
        );
    }
    Some(text.as_bytes().to_vec())
}

/// The value of header `name` (case-insensitive), from `multiValueHeaders` if the event has
/// it there, else from `headers`. Several values are joined with `", "`; a value that is not
/// a string stands as its JSON text: either way, present, but no origin on any list.
fn header(event: &Map<String, Value>, name: &str) -> Option<String> {
    let matching = |field: &str| -> Vec<&Value> {
        event
            .get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
            .collect()
    };
    let mut values: Vec<&Value> = matching("multiValueHeaders")
        .into_iter()
        .flat_map(|value| match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        })
        .collect();
    values.retain(|value| !value.is_null());
    if values.is_empty() {
        values = matching("headers");
        values.retain(|value| !value.is_null());
    }
    let texts: Vec<String> = values
        .into_iter()
        .map(|value| match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join(", "))
}

/// `response` in the shape Lambda expects for an event of `kind`.
pub fn encode(kind: EventKind, response: &Response) -> Value {
    let headers: Map<String, Value> =
        response.headers.iter().map(|(name, value)| (name.to_string(), json!(value))).collect();
    let multi_value_headers: Map<String, Value> =
        response.headers.iter().map(|(name, value)| (name.to_string(), json!([value]))).collect();
    match kind {
        EventKind::RestApi => json!({
            "statusCode": response.status,
            "headers": headers,
            "multiValueHeaders": multi_value_headers,
            "body": response.body,
            "isBase64Encoded": false,
        }),
        EventKind::HttpApi => json!({
            "statusCode": response.status,
            "headers": headers,
            "body": response.body,
            "isBase64Encoded": false,
            "cookies": [],
        }),
        EventKind::Alb { multi_value_headers: multi } => {
            let description = format!("{} {}", response.status, request::reason_phrase(response.status));
            let mut answer = json!({
                "statusCode": response.status,
                "statusDescription": description.trim_end(),
                "body": response.body,
                "isBase64Encoded": false,
            });
            if multi {
                answer["multiValueHeaders"] = Value::Object(multi_value_headers);
            } else {
                answer["headers"] = Value::Object(headers);
            }
            answer
        }
    }
}

/// One invocation: the event in, the answer out. Never fails.
pub async fn handle(service: &TokenService, event: &Value) -> Value {
    match parse(event) {
        Ok((kind, request)) => encode(kind, &service.handle(&request).await),
        Err(NotARequest { answer_as, reason }) => {
            tracing::warn!(status = 400, reason, "not an HTTP request event");
            encode(answer_as, &response::bad_request(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_method_path_stage_and_origin_of_each_shape() {
        let rest = json!({
            "httpMethod": "GET", "path": "/token", "requestContext": { "stage": "prod" },
            "headers": { "ORIGIN": "https://h.example" },
            "multiValueHeaders": { "Origin": ["https://m.example"] },
        });
        assert_eq!(
            parse(&rest).unwrap(),
            (
                EventKind::RestApi,
                Request::new("GET", "/token").with_stage("prod").with_origin("https://m.example")
            )
        );
        let v2 = json!({
            "version": "2.0", "rawPath": "/token", "headers": { "origin": "https://h.example" },
            "requestContext": { "stage": "$default", "http": { "method": "OPTIONS", "path": "/x" } },
        });
        assert_eq!(
            parse(&v2).unwrap(),
            (
                EventKind::HttpApi,
                Request::new("OPTIONS", "/token").with_stage("$default").with_origin("https://h.example")
            )
        );
        let alb = json!({
            "httpMethod": "GET", "path": "/token", "requestContext": { "elb": {} },
            "multiValueHeaders": { "origin": ["https://a.example", "https://b.example"] },
        });
        assert_eq!(
            parse(&alb).unwrap(),
            (
                EventKind::Alb { multi_value_headers: true },
                Request::new("GET", "/token").with_origin("https://a.example, https://b.example")
            )
        );
    }

    #[test]
    fn reads_the_query_authorization_and_body_of_each_shape() {
        let rest = json!({
            "httpMethod": "GET", "path": "/token",
            "headers": { "Authorization": "Bearer t" },
            "queryStringParameters": { "identity": "only-the-last" },
            "multiValueQueryStringParameters": { "identity": ["a b", "a b"], "room": ["r"] },
        });
        let (_, request) = parse(&rest).unwrap();
        assert_eq!(request.authorization.as_deref(), Some("Bearer t"));
        assert_eq!(
            request.query,
            [
                ("identity".into(), "a b".into()),
                ("identity".into(), "a b".into()),
                ("room".into(), "r".into())
            ]
        );
        let v2 = json!({
            "version": "2.0", "rawPath": "/token", "rawQueryString": "identity=a%20b&room=r%2B1",
            "queryStringParameters": { "identity": "ignored" },
            "requestContext": { "http": { "method": "POST" } },
            "body": "eyJpZGVudGl0eSI6ImJvYiJ9", "isBase64Encoded": true,
        });
        let (_, request) = parse(&v2).unwrap();
        assert_eq!(request.query, [("identity".into(), "a b".into()), ("room".into(), "r+1".into())]);
        assert_eq!(request.body.as_deref(), Some(br#"{"identity":"bob"}"#.as_slice()));
        let alb = json!({
            "httpMethod": "GET", "path": "/token", "requestContext": { "elb": {} },
            "queryStringParameters": { "identity": "a%20b", "room": "x+y" },
        });
        let (_, request) = parse(&alb).unwrap();
        assert_eq!(request.query, [("identity".into(), "a b".into()), ("room".into(), "x y".into())]);
        let bad_base64 =
            json!({ "httpMethod": "POST", "path": "/token", "body": "!!", "isBase64Encoded": true });
        assert!(parse(&bad_base64).unwrap().1.parameters().unwrap_err().contains("JSON object"));
        let odd = json!({ "httpMethod": "GET", "path": "/", "queryStringParameters": { "identity": 5 }, "body": 7 });
        let (_, request) = parse(&odd).unwrap();
        assert!(request.query.is_empty() && request.body.is_none());
    }

    #[test]
    fn a_header_of_another_json_type_is_present_but_null_is_absent() {
        let event =
            |origin: Value| json!({ "httpMethod": "GET", "path": "/", "headers": { "Origin": origin } });
        assert_eq!(parse(&event(json!(5))).unwrap().1.origin.as_deref(), Some("5"));
        assert_eq!(parse(&event(json!(["x"]))).unwrap().1.origin.as_deref(), Some("[\"x\"]"));
        assert_eq!(parse(&event(Value::Null)).unwrap().1.origin, None);
    }

    #[test]
    fn what_is_no_request_is_answered_in_the_shape_it_seems_to_have() {
        for (event, answer_as) in [
            (json!({ "key1": "value1", "key2": "value2", "key3": "value3" }), EventKind::RestApi),
            (json!([1, 2]), EventKind::RestApi),
            (json!("GET /token"), EventKind::RestApi),
            (json!({ "httpMethod": 5, "path": "/token" }), EventKind::RestApi),
            (json!({ "version": "2.0", "rawPath": "/token" }), EventKind::HttpApi),
            (
                json!({ "type": "REQUEST", "methodArn": "arn", "httpMethod": "GET", "path": "/" }),
                EventKind::RestApi,
            ),
        ] {
            assert_eq!(parse(&event).unwrap_err().answer_as, answer_as, "{event}");
        }
    }

    #[test]
    fn answers_in_the_shape_of_the_event() {
        let mut response = Response::new(404, "{}");
        response.set_header("content-type", "application/json");
        let rest = encode(EventKind::RestApi, &response);
        assert_eq!(rest["statusCode"], 404);
        assert_eq!(rest["headers"]["content-type"], "application/json");
        assert_eq!(rest["multiValueHeaders"]["content-type"], json!(["application/json"]));
        assert_eq!(rest["isBase64Encoded"], false);
        let v2 = encode(EventKind::HttpApi, &response);
        assert_eq!(v2["cookies"], json!([]));
        assert!(v2.get("multiValueHeaders").is_none());
        let alb = encode(EventKind::Alb { multi_value_headers: false }, &response);
        assert_eq!(alb["statusDescription"], "404 Not Found");
        assert_eq!(alb["headers"]["content-type"], "application/json");
        let alb = encode(EventKind::Alb { multi_value_headers: true }, &response);
        assert!(alb.get("headers").is_none());
        assert_eq!(alb["multiValueHeaders"]["content-type"], json!(["application/json"]));
    }
}
