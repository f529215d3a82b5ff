//! The fault proxy against a real moto and against a stand-in upstream that counts what reaches
//! it. Error bodies are read with the parsers the AWS SDK for Rust generates into each service
//! crate (copied below, over the same `aws-smithy-xml` / `aws-smithy-json` they use).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_smithy_types::error::metadata::ErrorMetadata;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;
use tokendeploy_testkit::fault_proxy::{Call, Effect, ErrorKind, Fault, FaultProxy, Rule};
use tokendeploy_testkit::moto::Moto;

/// An upstream that answers every request `200 upstream` and counts them.
struct StandIn {
    address: SocketAddr,
    seen: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl StandIn {
    async fn start() -> Self {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        let router = axum::Router::new().fallback(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                "upstream"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { address, seen, server }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn authorization(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20261123/us-west-1/{service}/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef"
    )
}

/// A query-protocol call (IAM, STS) as the SDK sends it.
fn query(client: &Client, endpoint: &str, service: &str, body: &str) -> RequestBuilder {
    client
        .post(format!("{endpoint}/"))
        .header("authorization", authorization(service))
        .header("x-amz-date", "20261123T120000Z")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
}

/// An awsJson 1.1 call (Logs) as the SDK sends it.
fn logs(client: &Client, endpoint: &str, operation: &str, body: &str) -> RequestBuilder {
    client
        .post(format!("{endpoint}/"))
        .header("authorization", authorization("logs"))
        .header("x-amz-date", "20261123T120000Z")
        .header("x-amz-target", format!("Logs_20140328.{operation}"))
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.to_string())
}

/// A REST-JSON call (Lambda, API Gateway) as the SDK sends it.
fn rest(client: &Client, endpoint: &str, service: &str, method: &str, path: &str) -> RequestBuilder {
    client
        .request(method.parse().unwrap(), format!("{endpoint}{path}"))
        .header("authorization", authorization(service))
        .header("x-amz-date", "20261123T120000Z")
        .header("content-type", "application/json")
}

/// A call as [`summary`] gives it: everything but when it came.
fn call(service: &str, operation: &str, mutating: bool, faulted: bool) -> (String, String, bool, bool) {
    (service.into(), operation.into(), mutating, faulted)
}

fn summary(calls: &[Call]) -> Vec<(String, String, bool, bool)> {
    calls.iter().map(|c| (c.service.clone(), c.operation.clone(), c.mutating, c.faulted)).collect()
}

const CREATE_ROLE: &str = "Action=CreateRole&Version=2010-05-08&RoleName=tokendeploy-test\
    &AssumeRolePolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";

#[tokio::test]
#[ignore = "needs the emulator (moto): scripts/test.sh runs it"]
async fn recording_names_each_call_through_moto() {
    let moto = Moto::start().expect("moto starts (set TOKENDEPLOY_TEST_PYTHON to a python with moto)");
    let proxy = FaultProxy::recording(&moto.endpoint()).await.unwrap();
    let endpoint = proxy.endpoint();
    let client = Client::new();

    let role = query(&client, &endpoint, "iam", CREATE_ROLE).send().await.unwrap();
    assert_eq!(role.status(), 200, "{}", role.text().await.unwrap());
    let identity = query(&client, &endpoint, "sts", "Action=GetCallerIdentity&Version=2011-06-15");
    assert_eq!(identity.send().await.unwrap().status(), 200);
    let group = logs(&client, &endpoint, "CreateLogGroup", r#"{"logGroupName":"/aws/lambda/t"}"#);
    assert_eq!(group.send().await.unwrap().status(), 200);
    let groups = logs(&client, &endpoint, "DescribeLogGroups", "{}");
    assert_eq!(groups.send().await.unwrap().status(), 200);
    let functions = rest(&client, &endpoint, "lambda", "GET", "/2015-03-31/functions/");
    assert_eq!(functions.send().await.unwrap().status(), 200);
    let policy = rest(&client, &endpoint, "lambda", "GET", "/2015-03-31/functions/tokendeploy-test/policy");
    assert_eq!(policy.send().await.unwrap().status(), 404);
    let created = rest(&client, &endpoint, "apigateway", "POST", "/restapis").body(r#"{"name":"t"}"#);
    let created: Value =
        serde_json::from_slice(&created.send().await.unwrap().bytes().await.unwrap()).unwrap();
    let id = created["id"].as_str().expect("moto created a REST API");
    let deleted = rest(&client, &endpoint, "apigateway", "DELETE", &format!("/restapis/{id}"));
    assert!(deleted.send().await.unwrap().status().is_success());

    assert_eq!(
        summary(&proxy.calls()),
        vec![
            call("iam", "CreateRole", true, false),
            call("sts", "GetCallerIdentity", false, false),
            call("logs", "CreateLogGroup", true, false),
            call("logs", "DescribeLogGroups", false, false),
            call("lambda", "GET /2015-03-31/functions", false, false),
            call("lambda", "GET /2015-03-31/functions/{name}/policy", false, false),
            call("apigateway", "POST /restapis", true, false),
            call("apigateway", "DELETE /restapis/{id}", true, false),
        ]
    );
    assert_eq!(proxy.injected(), 0);
}

#[tokio::test]
async fn rest_paths_become_stable_operations() {
    let upstream = StandIn::start().await;
    let proxy = FaultProxy::recording(&upstream.endpoint()).await.unwrap();
    let (client, endpoint) = (Client::new(), proxy.endpoint());
    let requests = [
        ("lambda", "POST", "/2015-03-31/functions"),
        ("lambda", "PUT", "/2015-03-31/functions/tokendeploy-a1b2/configuration"),
        ("lambda", "DELETE", "/2015-03-31/functions/tokendeploy-a1b2/policy/allow-api"),
        ("lambda", "GET", "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-west-1%3A1%3Afunction%3Ax"),
        ("apigateway", "PUT", "/restapis/a1b2c3/resources/d4e5f6/methods/POST/integration/responses/200"),
        ("apigateway", "POST", "/restapis/a1b2c3/deployments?x=1"),
        ("apigateway", "PATCH", "/restapis/a1b2c3/stages/prod"),
        // Unsigned: the service is guessed from the protocol.
        ("", "DELETE", "/restapis/a1b2c3"),
        ("", "POST", "/2015-03-31/functions/"),
    ];
    for (service, method, path) in requests {
        let mut request = client.request(method.parse().unwrap(), format!("{endpoint}{path}"));
        if !service.is_empty() {
            request = request.header("authorization", authorization(service));
        }
        assert_eq!(request.send().await.unwrap().status(), 200);
    }
    let unsigned =
        client.post(format!("{endpoint}/")).header("content-type", "application/x-www-form-urlencoded");
    unsigned.body("Action=AssumeRole&Version=2011-06-15").send().await.unwrap();

    assert_eq!(
        summary(&proxy.calls()),
        [
            call("lambda", "POST /2015-03-31/functions", true, false),
            call("lambda", "PUT /2015-03-31/functions/{name}/configuration", true, false),
            call("lambda", "DELETE /2015-03-31/functions/{name}/policy/{sid}", true, false),
            call("lambda", "GET /2017-03-31/tags/{arn}", false, false),
            call(
                "apigateway",
                "PUT /restapis/{id}/resources/{id}/methods/{http_method}/integration/responses/{status_code}",
                true,
                false,
            ),
            call("apigateway", "POST /restapis/{id}/deployments", true, false),
            call("apigateway", "PATCH /restapis/{id}/stages/{name}", true, false),
            call("apigateway", "DELETE /restapis/{id}", true, false),
            call("lambda", "POST /2015-03-31/functions", true, false),
            call("sts", "AssumeRole", true, false),
        ]
    );
}

// The error parsers the AWS SDK for Rust generates into aws-sdk-iam / aws-sdk-sts
// (`rest_xml_wrapped_errors.rs`) and aws-sdk-lambda / -apigateway / -cloudwatchlogs
// (`json_errors.rs`), version 1.x, copied verbatim but for the headers type.

fn sdk_xml_error(body: &[u8]) -> Result<ErrorMetadata, aws_smithy_xml::decode::XmlDecodeError> {
    use aws_smithy_xml::decode::{Document, try_data};
    let mut doc = Document::try_from(body)?;
    let mut root = doc.root_element()?;
    let mut err_builder = ErrorMetadata::builder();
    while let Some(mut tag) = root.next_tag() {
        if tag.start_el().local() == "Error" {
            while let Some(mut error_field) = tag.next_tag() {
                match error_field.start_el().local() {
                    "Code" => {
                        err_builder = err_builder.code(try_data(&mut error_field)?);
                    }
                    "Message" => {
                        err_builder = err_builder.message(try_data(&mut error_field)?);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(err_builder.build())
}

fn sdk_json_error(
    payload: &[u8],
    error_type_header: Option<&str>,
) -> Result<ErrorMetadata, aws_smithy_json::deserialize::error::DeserializeError> {
    use aws_smithy_json::deserialize::error::DeserializeError;
    use aws_smithy_json::deserialize::token::skip_value;
    use aws_smithy_json::deserialize::{Token, json_token_iter};
    fn sanitize_error_code(error_code: &str) -> &str {
        let error_code = match error_code.find(':') {
            Some(idx) => &error_code[..idx],
            None => error_code,
        };
        match error_code.find('#') {
            Some(idx) => &error_code[idx + 1..],
            None => error_code,
        }
    }
    let mut tokens = json_token_iter(payload).peekable();
    let (mut typ, mut code, mut message) = (None, None, None);
    if let Some(Token::StartObject { .. }) = tokens.next().transpose()? {
        loop {
            match tokens.next().transpose()? {
                Some(Token::EndObject { .. }) => break,
                Some(Token::ObjectKey { key, .. }) => {
                    if let Some(Ok(Token::ValueString { value, .. })) = tokens.peek() {
                        match key.as_escaped_str() {
                            "code" => code = Some(value.to_unescaped()?),
                            "__type" => typ = Some(value.to_unescaped()?),
                            "message" | "Message" | "errorMessage" => message = Some(value.to_unescaped()?),
                            _ => {}
                        }
                    }
                    skip_value(&mut tokens)?;
                }
                _ => return Err(DeserializeError::custom("expected object key or end object")),
            }
        }
        if tokens.next().is_some() {
            return Err(DeserializeError::custom("found more JSON tokens after completing parsing"));
        }
    }
    let code = code.or(typ);
    let mut err_builder = ErrorMetadata::builder();
    if let Some(code) = error_type_header.or(code.as_deref()).map(sanitize_error_code) {
        err_builder = err_builder.code(code);
    }
    if let Some(message) = message {
        err_builder = err_builder.message(message);
    }
    Ok(err_builder.build())
}

struct Answer {
    status: u16,
    content_type: String,
    error_type: Option<String>,
    request_id: Option<String>,
    body: String,
}

async fn answer(response: Response) -> Answer {
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (content_type, error_type, request_id) =
        (header("content-type").unwrap_or_default(), header("x-amzn-errortype"), header("x-amzn-requestid"));
    let status = response.status().as_u16();
    Answer { status, content_type, error_type, request_id, body: response.text().await.unwrap() }
}

/// Sends one call of `service` through a proxy that answers everything with `kind`.
async fn error_from(service: &str, kind: ErrorKind) -> Answer {
    let upstream = StandIn::start().await;
    let rule = Rule::first(|_: &Call| true, usize::MAX, Effect::Error(kind));
    let proxy = FaultProxy::start_with(&upstream.endpoint(), vec![rule]).await.unwrap();
    let (client, endpoint) = (Client::new(), proxy.endpoint());
    let request = match service {
        "iam" => query(&client, &endpoint, "iam", CREATE_ROLE),
        "sts" => query(&client, &endpoint, "sts", "Action=AssumeRole&Version=2011-06-15"),
        "logs" => logs(&client, &endpoint, "CreateLogGroup", r#"{"logGroupName":"g"}"#),
        "lambda" => rest(&client, &endpoint, "lambda", "POST", "/2015-03-31/functions").body("{}"),
        "apigateway" => rest(&client, &endpoint, "apigateway", "DELETE", "/restapis/a1b2c3"),
        _ => unreachable!(),
    };
    let answer = answer(request.send().await.unwrap()).await;
    assert_eq!(upstream.seen(), 0, "an error answer never reaches the upstream");
    assert_eq!(proxy.injected(), 1);
    assert!(proxy.calls()[0].faulted);
    answer
}

#[tokio::test]
async fn errors_have_each_services_shape() {
    use ErrorKind::{Internal, Throttling, Unavailable};
    let custom = || ErrorKind::custom(409, "EntityAlreadyExists", "Role with name t & <u> already exists.");
    let cases = [
        ("iam", Internal, 500, "ServiceFailure"),
        ("iam", Unavailable, 503, "ServiceUnavailable"),
        ("iam", Throttling, 400, "Throttling"),
        ("iam", custom(), 409, "EntityAlreadyExists"),
        ("sts", Internal, 500, "InternalFailure"),
        ("sts", Unavailable, 503, "ServiceUnavailable"),
        ("sts", Throttling, 400, "Throttling"),
        ("sts", custom(), 409, "EntityAlreadyExists"),
        ("lambda", Internal, 500, "ServiceException"),
        ("lambda", Unavailable, 503, "ServiceUnavailableException"),
        ("lambda", Throttling, 429, "TooManyRequestsException"),
        ("lambda", custom(), 409, "EntityAlreadyExists"),
        ("apigateway", Internal, 500, "InternalFailure"),
        ("apigateway", Unavailable, 503, "ServiceUnavailableException"),
        ("apigateway", Throttling, 429, "TooManyRequestsException"),
        ("apigateway", custom(), 409, "EntityAlreadyExists"),
        ("logs", Internal, 500, "ServiceUnavailableException"),
        ("logs", Unavailable, 503, "ServiceUnavailableException"),
        ("logs", Throttling, 400, "ThrottlingException"),
        ("logs", custom(), 409, "EntityAlreadyExists"),
    ];
    for (service, kind, status, code) in cases {
        let context = format!("{service} {kind:?}");
        let (_, _, message) = kind.shape(service);
        let answer = error_from(service, kind.clone()).await;
        assert_eq!(answer.status, status, "{context}");
        assert!(answer.request_id.is_some_and(|id| id.len() == 36), "{context}");
        let parsed = match service {
            "iam" | "sts" => {
                assert_eq!(answer.content_type, "text/xml", "{context}");
                assert_eq!(answer.error_type, None, "{context}");
                let namespace = if service == "iam" { "iam.amazonaws.com/doc/2010-05-08" } else { "sts" };
                assert!(answer.body.starts_with("<ErrorResponse xmlns=\"https://"), "{context}");
                assert!(answer.body.contains(namespace), "{context}: {}", answer.body);
                let party = if status >= 500 { "<Type>Receiver</Type>" } else { "<Type>Sender</Type>" };
                assert!(answer.body.contains(party), "{context}: {}", answer.body);
                assert!(answer.body.contains("<RequestId>"), "{context}");
                sdk_xml_error(answer.body.as_bytes()).unwrap()
            }
            "logs" => {
                assert_eq!(answer.content_type, "application/x-amz-json-1.1", "{context}");
                assert_eq!(answer.error_type, None, "{context}");
                let body: Value = serde_json::from_str(&answer.body).unwrap();
                assert_eq!(body, serde_json::json!({"__type": code, "message": message}), "{context}");
                sdk_json_error(answer.body.as_bytes(), None).unwrap()
            }
            _ => {
                assert_eq!(answer.content_type, "application/json", "{context}");
                assert_eq!(answer.error_type.as_deref(), Some(code), "{context}");
                let body: Value = serde_json::from_str(&answer.body).unwrap();
                let expected = match (service, &kind) {
                    ("lambda", Throttling) => serde_json::json!({
                        "Reason": "CallerRateLimitExceeded", "Type": "User", "message": "Rate exceeded"
                    }),
                    ("lambda", _) => serde_json::json!({
                        "Type": if status >= 500 { "Service" } else { "User" }, "message": message
                    }),
                    _ => serde_json::json!({"message": message}),
                };
                assert_eq!(body, expected, "{context}");
                sdk_json_error(answer.body.as_bytes(), answer.error_type.as_deref()).unwrap()
            }
        };
        assert_eq!(parsed.code(), Some(code), "{context}");
        assert_eq!(parsed.message(), Some(message.as_str()), "{context}");
    }
    let (_, _, message) = ErrorKind::Throttling.shape("apigateway");
    assert_eq!(message, "Too Many Requests");
    let (_, _, message) = ErrorKind::Throttling.shape("logs");
    assert_eq!(message, "Rate exceeded");
}

#[tokio::test]
async fn nth_counts_only_the_calls_its_predicate_matches() {
    let upstream = StandIn::start().await;
    let rules = vec![
        Rule::nth(
            |call: &Call| call.service == "iam" && call.mutating,
            2,
            Effect::Error(ErrorKind::Throttling),
        ),
        // Also picks the 2nd mutating IAM call: the first rule in the plan wins.
        Rule::first(|call: &Call| call.service == "iam", 3, Effect::Drop),
    ];
    let proxy = FaultProxy::start_with(&upstream.endpoint(), rules).await.unwrap();
    let (client, endpoint) = (Client::new(), proxy.endpoint());
    let bodies = [
        "Action=GetRole&RoleName=t",
        "Action=CreateRole&RoleName=t",
        "Action=AttachRolePolicy&RoleName=t",
        "Action=PutRolePolicy&RoleName=t",
    ];
    let mut outcomes = Vec::new();
    for body in bodies {
        let outcome = query(&client, &endpoint, "iam", body).send().await;
        outcomes.push(outcome.map(|response| response.status().as_u16()).map_err(|_| "closed"));
    }
    assert_eq!(outcomes, [Err("closed"), Err("closed"), Ok(400), Ok(200)]);
    assert_eq!(
        summary(&proxy.calls()),
        [
            call("iam", "GetRole", false, true),
            call("iam", "CreateRole", true, true),
            call("iam", "AttachRolePolicy", true, true),
            call("iam", "PutRolePolicy", true, false),
        ]
    );
    assert_eq!(proxy.injected(), 3);
    assert_eq!(upstream.seen(), 1);
}

/// The error reqwest (hyper underneath, as in the AWS SDK) reports for a connection that closed
/// without an answer.
fn assert_closed_without_answer(error: reqwest::Error) {
    assert!(error.is_request() && !error.is_timeout() && error.status().is_none(), "{error:?}");
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    while let Some(error) = source {
        chain.push_str(&format!("{error}; "));
        source = error.source();
    }
    assert!(chain.contains("connection closed before message completed"), "{chain}");
}

#[tokio::test]
async fn drop_closes_the_connection_before_the_upstream() {
    let upstream = StandIn::start().await;
    let rule = Rule::nth(|call: &Call| call.is("logs", "CreateLogGroup"), 1, Effect::Drop);
    let proxy = FaultProxy::start_with(&upstream.endpoint(), vec![rule]).await.unwrap();
    let (client, endpoint) = (Client::new(), proxy.endpoint());

    let error = logs(&client, &endpoint, "CreateLogGroup", "{}").send().await.unwrap_err();
    assert_closed_without_answer(error);
    assert_eq!(upstream.seen(), 0);
    assert_eq!(proxy.injected(), 1);

    let retried = logs(&client, &endpoint, "CreateLogGroup", "{}").send().await.unwrap();
    assert_eq!(retried.text().await.unwrap(), "upstream");
    assert_eq!(upstream.seen(), 1);
    assert_eq!(
        summary(&proxy.calls()),
        [call("logs", "CreateLogGroup", true, true), call("logs", "CreateLogGroup", true, false)]
    );
}

#[tokio::test]
async fn lost_reply_reaches_the_upstream_then_closes() {
    let upstream = StandIn::start().await;
    let rule = Rule::nth(|call: &Call| call.is("lambda", "POST /2015-03-31/functions"), 1, Effect::LostReply);
    let proxy = FaultProxy::start_with(&upstream.endpoint(), vec![rule]).await.unwrap();
    let (client, endpoint) = (Client::new(), proxy.endpoint());

    let body = vec![b'x'; 256 * 1024];
    let request = rest(&client, &endpoint, "lambda", "POST", "/2015-03-31/functions").body(body);
    assert_closed_without_answer(request.send().await.unwrap_err());
    assert_eq!(upstream.seen(), 1, "the lost call took effect");
    assert_eq!(proxy.injected(), 1);

    let again = rest(&client, &endpoint, "lambda", "POST", "/2015-03-31/functions").send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(upstream.seen(), 2);
}

#[tokio::test]
async fn hang_holds_one_connection_while_others_pass() {
    let upstream = StandIn::start().await;
    let rule = Rule::nth(|call: &Call| call.is("sts", "GetCallerIdentity"), 1, Effect::Hang);
    let proxy = FaultProxy::start_with(&upstream.endpoint(), vec![rule]).await.unwrap();
    let endpoint = proxy.endpoint();

    let impatient = Client::builder().timeout(Duration::from_millis(1500)).build().unwrap();
    let hanging = tokio::spawn(query(&impatient, &endpoint, "sts", "Action=GetCallerIdentity").send());
    while proxy.calls().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = query(&Client::new(), &endpoint, "sts", "Action=GetCallerIdentity").send().await.unwrap();
    assert_eq!(other.text().await.unwrap(), "upstream");
    assert!(!hanging.is_finished(), "the hung call is still waiting after another one passed");

    let error = hanging.await.unwrap().unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(upstream.seen(), 1);
    assert_eq!(proxy.injected(), 1);
    assert_eq!(
        summary(&proxy.calls()),
        [call("sts", "GetCallerIdentity", false, true), call("sts", "GetCallerIdentity", false, false)]
    );

    // Dropping the proxy closes the held connection.
    let patient = Client::new();
    let rule = Rule::first(|_: &Call| true, 1, Effect::Hang);
    let proxy = FaultProxy::start_with(&upstream.endpoint(), vec![rule]).await.unwrap();
    let held = tokio::spawn(query(&patient, &proxy.endpoint(), "sts", "Action=GetCallerIdentity").send());
    while proxy.calls().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(proxy);
    let closed = tokio::time::timeout(Duration::from_secs(5), held).await.expect("dropping ends the hang");
    assert!(closed.unwrap().is_err());
}

#[tokio::test]
async fn the_ready_made_faults_answer_the_first_matching_calls() {
    let upstream = StandIn::start().await;
    let proxy = FaultProxy::start(&upstream.endpoint(), Fault::delete_rest_api_throttled(), 1).await.unwrap();
    let (client, endpoint) = (Client::new(), proxy.endpoint());
    let other = rest(&client, &endpoint, "apigateway", "DELETE", "/restapis/a1b2c3/stages/prod");
    assert_eq!(other.send().await.unwrap().status(), 200);
    let first =
        answer(rest(&client, &endpoint, "apigateway", "DELETE", "/restapis/a1b2c3").send().await.unwrap());
    let first = first.await;
    assert_eq!(first.status, 429);
    assert_eq!(first.error_type.as_deref(), Some("TooManyRequestsException"));
    assert_eq!(first.body, r#"{"message":"Too Many Requests"}"#);
    let second = rest(&client, &endpoint, "apigateway", "DELETE", "/restapis/a1b2c3").send().await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(proxy.injected(), 1);

    let proxy = FaultProxy::start(&upstream.endpoint(), Fault::role_not_yet_assumable(), 2).await.unwrap();
    let endpoint = proxy.endpoint();
    for _ in 0..2 {
        let create = rest(&client, &endpoint, "lambda", "POST", "/2015-03-31/functions").body("{}");
        let answer = answer(create.send().await.unwrap()).await;
        assert_eq!(answer.status, 400);
        let parsed = sdk_json_error(answer.body.as_bytes(), answer.error_type.as_deref()).unwrap();
        assert_eq!(parsed.code(), Some("InvalidParameterValueException"));
        assert_eq!(parsed.message(), Some("The role defined for the function cannot be assumed by Lambda."));
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["Type"], "User");
    }
    let create = rest(&client, &endpoint, "lambda", "POST", "/2015-03-31/functions/").body("{}");
    assert_eq!(create.send().await.unwrap().status(), 200);
    assert_eq!(proxy.injected(), 2);
}
