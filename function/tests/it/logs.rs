//! What the function logs, and what it never logs, read through a subscriber scoped to this
//! test's thread (a current-thread runtime: every line the service writes is on it).

use crate::common::*;
use serde_json::Value;
use wiremock::ResponseTemplate;

#[tokio::test]
async fn no_response_or_log_line_carries_the_secret() {
    let logs = LogBuffer::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());

    let answers = [
        voxeet_token("ok"),
        ResponseTemplate::new(401).set_body_string(format!("bad client {SECRET} UPSTREAM-RAW-BODY")),
        ResponseTemplate::new(200).set_body_string(format!("not json {SECRET} UPSTREAM-RAW-BODY")),
        ResponseTemplate::new(502).set_body_string("UPSTREAM-RAW-BODY"),
    ];
    let mut seen = String::new();
    for answer in answers {
        let upstream = upstream_answering(answer).await;
        let service = service(&upstream);
        for event in [
            rest_event("GET", "/token", Some(ORIGIN)),
            rest_event("GET", "/token", Some("https://evil.example")),
            rest_event("OPTIONS", "/token", Some(ORIGIN)),
            rest_event("DELETE", "/token", Some(ORIGIN)),
            rest_event("GET", &format!("/x\n{{\"forged\":1}}{}", "a".repeat(300)), None),
            console_sample_event(),
        ] {
            let response = call(&service, event).await;
            seen.push_str(&format!("{}\n", response.raw));
        }
    }

    let logs = logs.take();
    assert!(logs.lines().count() >= 24, "every request logs a line:\n{logs}");
    assert!(logs.lines().all(|line| serde_json::from_str::<Value>(line).is_ok()), "one JSON object a line");
    assert!(logs.contains("not an HTTP request event"), "{logs}");
    assert!(!logs.lines().any(|line| line.starts_with(r#"{"forged""#)), "a request forged a log line");
    assert!(!logs.contains(&"a".repeat(250)), "a request's path is logged at most 200 characters");
    assert!(logs.contains("upstream_rejected") || logs.contains("rejected the app's credentials"), "{logs}");
    for forbidden in [SECRET, basic_auth().as_str(), "UPSTREAM-RAW-BODY"] {
        assert!(!seen.contains(forbidden), "a response carries {forbidden:?}");
        assert!(!logs.contains(forbidden), "a log line carries {forbidden:?}");
    }
}
