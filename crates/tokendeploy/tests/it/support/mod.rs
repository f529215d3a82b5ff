//! Runs the real `tokendeploy` binary against a moto server started for each test, and
//! reads back what it made through the AWS SDK.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use tokendeploy_deploy::Aws;
use tokendeploy_testkit::fault_proxy::{Call, Effect, FaultProxy, Rule};
use tokendeploy_testkit::moto::Moto;

pub const REGION: &str = "us-west-1";
pub const SECRET: &str = "s3cr3t-value-never-printed";
pub const KEY: &str = "app-key-42";
pub const ORIGINS: &str = "https://app.example.com";

/// The deterministic zip of the real function, made once per test binary by `tokendeploy package`.
pub fn function_zip() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| {
        let out =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bootstrap-{}.zip", std::process::id()));
        let output = Command::new(env!("CARGO_BIN_EXE_tokendeploy"))
            .args(["package", "--quiet", "--out"])
            .arg(&out)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(output.status.success(), "package failed: {}", String::from_utf8_lossy(&output.stderr));
        out
    })
}

/// `up`'s steps, in the order its JSON report lists them.
pub const ALL_STEPS: [&str; 21] = [
    "role",
    "package",
    "log_group",
    "secret",
    "secret_access",
    "function",
    "environment",
    "rest_api",
    "proxy_resource",
    "methods",
    "integrations",
    "gateway_responses",
    "deployment",
    "throttling",
    "http_api",
    "http_routes",
    "http_stage",
    "api_key",
    "usage_plan",
    "function_url",
    "permission",
];

/// Steps that make something only when a flag asks (`--secret-store secrets-manager`,
/// `--api-key`, `--gateway url`, `--gateway http`); otherwise they report `unchanged`.
pub const FLAG_STEPS: [&str; 8] = [
    "secret",
    "secret_access",
    "api_key",
    "usage_plan",
    "function_url",
    "http_api",
    "http_routes",
    "http_stage",
];

/// The steps of the gateways other than the REST API.
pub const OTHER_GATEWAY_STEPS: [&str; 4] = ["function_url", "http_api", "http_routes", "http_stage"];

/// Every step with `action`, as `Run::actions` lists them, for an `up` without those flags.
pub fn all(action: &str) -> Vec<(String, String)> {
    let action_of = |step: &str| if FLAG_STEPS.contains(&step) { "unchanged" } else { action };
    ALL_STEPS.iter().map(|s| (s.to_string(), action_of(s).to_string())).collect()
}

/// Every step with `action`: for an `up` with every flag of the REST API (the other gateways'
/// steps: `unchanged`).
pub fn every(action: &str) -> Vec<(String, String)> {
    let action_of = |step: &str| if OTHER_GATEWAY_STEPS.contains(&step) { "unchanged" } else { action };
    ALL_STEPS.iter().map(|s| (s.to_string(), action_of(s).to_string())).collect()
}

pub fn all_unchanged() -> Vec<(String, String)> {
    all("unchanged")
}

pub struct Harness {
    pub moto: Moto,
    pub dir: PathBuf,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// `name -> action` of the JSON report's steps.
    pub fn actions(&self) -> Vec<(String, String)> {
        self.json()["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_string(), s["action"].as_str().unwrap().to_string()))
            .collect()
    }

    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.code, 0, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn assert_no_secret(&self) {
        for text in [&self.stdout, &self.stderr] {
            assert!(!text.contains(SECRET), "the secret was printed:\n{text}");
        }
    }
}

impl Harness {
    pub fn start() -> Self {
        Self::with(Moto::start().expect("moto starts"))
    }

    pub fn with(moto: Moto) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("t-{}", moto.endpoint().rsplit(':').next().unwrap()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { moto, dir }
    }

    /// The environment a user would have: AWS settings for moto plus the app's settings.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.moto.aws_environment(REGION);
        for (k, v) in [("CONSUMER_KEY", KEY), ("CONSUMER_SECRET", SECRET), ("ALLOWED_ORIGINS", ORIGINS)] {
            env.push((k.into(), v.into()));
        }
        env
    }

    pub fn command(&self, args: &[&str], env: &[(String, String)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokendeploy"));
        command.args(args).env_clear().current_dir(env!("CARGO_MANIFEST_DIR"));
        for name in
            ["PATH", "HOME", "CARGO", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO_TARGET_DIR"]
        {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        command.envs(env.iter().cloned());
        command
    }

    pub fn run_with(&self, args: &[&str], env: &[(String, String)]) -> Run {
        Run::from(self.command(args, env).output().unwrap())
    }

    /// Runs the binary with every AWS call going through `proxy`, off the test's runtime so
    /// the proxy keeps serving.
    pub async fn run_through(&self, proxy: &FaultProxy, args: &[&str]) -> Run {
        let mut env = self.env();
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
        let mut command = self.command(args, &env);
        Run::from(tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap())
    }

    /// `tokendeploy up --output json --zip <the function's zip> ARGS`.
    pub fn up(&self, args: &[&str]) -> Run {
        self.up_with(args, &self.env())
    }

    pub fn up_with(&self, args: &[&str], env: &[(String, String)]) -> Run {
        let zip = function_zip().to_str().unwrap().to_string();
        let mut all = vec!["up", "--output", "json", "--zip", &zip];
        all.extend_from_slice(args);
        self.run_with(&all, env)
    }

    /// `tokendeploy status --output json --zip <the function's zip> ARGS`.
    pub fn status(&self, args: &[&str]) -> Run {
        let zip = function_zip().to_str().unwrap().to_string();
        let mut all = vec!["status", "--output", "json", "--zip", &zip];
        all.extend_from_slice(args);
        self.run_with(&all, &self.env())
    }

    /// SDK clients on the same moto server, to read back what the binary made.
    pub async fn aws(&self, region: &str) -> Aws {
        self.aws_as(region, "testing", "testing").await
    }

    /// As [`Self::aws`], with an IAM user's access key.
    pub async fn aws_as(&self, region: &str, key_id: &str, secret: &str) -> Aws {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .endpoint_url(self.moto.endpoint())
            .credentials_provider(aws_sdk_iam::config::Credentials::new(key_id, secret, None, None, "tests"))
            .load()
            .await;
        Aws::from_config(&config).unwrap()
    }
}

/// Someone else's function named `name`, with a role of theirs: a resource with the stack's
/// name that `up` must not take.
pub async fn foreign_function(aws: &Aws, name: &str) {
    let role = aws.iam.create_role().role_name("someone-elses-role");
    let role = role.assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#);
    let role = role.send().await.unwrap();
    let zip = std::fs::read(function_zip()).unwrap();
    aws.lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role.role().unwrap().arn())
        .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(zip.into()).build())
        .send()
        .await
        .unwrap();
}

/// Every REST API in the region: (id, name, tags).
pub async fn rest_apis(aws: &Aws) -> Vec<(String, String, std::collections::HashMap<String, String>)> {
    let apis = aws.apigateway.get_rest_apis().limit(500).send().await.unwrap();
    apis.items()
        .iter()
        .map(|a| {
            (
                a.id().unwrap().to_string(),
                a.name().unwrap_or_default().to_string(),
                a.tags().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

pub async fn function_names(aws: &Aws) -> Vec<String> {
    let functions = aws.lambda.list_functions().send().await.unwrap();
    functions.functions().iter().map(|f| f.function_name().unwrap().to_string()).collect()
}

pub async fn role_names(aws: &Aws) -> Vec<String> {
    let roles = aws.iam.list_roles().send().await.unwrap();
    roles.roles().iter().map(|r| r.role_name().to_string()).collect()
}

pub async fn log_group_names(aws: &Aws) -> Vec<String> {
    let groups = aws.logs.describe_log_groups().send().await.unwrap();
    groups.log_groups().iter().map(|g| g.log_group_name().unwrap().to_string()).collect()
}

/// Everything in the account a test can see for a region, to compare before and after.
pub async fn snapshot(aws: &Aws) -> Vec<String> {
    let mut all = Vec::new();
    all.extend(role_names(aws).await.into_iter().map(|n| format!("role {n}")));
    all.extend(function_names(aws).await.into_iter().map(|n| format!("function {n}")));
    all.extend(rest_apis(aws).await.into_iter().map(|(id, n, _)| format!("api {id} {n}")));
    all.extend(log_group_names(aws).await.into_iter().map(|n| format!("log group {n}")));
    for name in function_names(aws).await {
        let config = aws.lambda.get_function_configuration().function_name(&name).send().await.unwrap();
        all.push(format!("function {name} modified {}", config.last_modified().unwrap()));
    }
    let secrets = aws.secretsmanager.list_secrets().send().await.unwrap();
    all.extend(secrets.secret_list().iter().map(|s| format!("secret {}", s.arn().unwrap())));
    let keys = aws.apigateway.get_api_keys().send().await.unwrap();
    all.extend(keys.items().iter().map(|k| format!("api key {}", k.id().unwrap())));
    let plans = aws.apigateway.get_usage_plans().send().await.unwrap();
    all.extend(plans.items().iter().map(|p| format!("usage plan {}", p.id().unwrap())));
    all.sort();
    all
}

/// Exactly one of each resource the stack has, and a REST API of exactly root + `{proxy+}`.
pub async fn assert_one_of_everything(harness: &Harness, name: &str, context: &str) {
    let aws = harness.aws(REGION).await;
    let apis: Vec<_> = rest_apis(&aws).await.into_iter().filter(|(_, n, _)| n == name).collect();
    assert_eq!(apis.len(), 1, "{context}: REST APIs {apis:?}");
    let resources = aws.apigateway.get_resources().rest_api_id(&apis[0].0).send().await.unwrap();
    let paths: Vec<_> = resources.items().iter().filter_map(|r| r.path()).collect();
    assert_eq!(paths.len(), 2, "{context}: resources {paths:?}");
    let functions = function_names(&aws).await.into_iter().filter(|f| f == name).count();
    assert_eq!(functions, 1, "{context}");
    let roles = role_names(&aws).await.into_iter().filter(|r| r.starts_with(&format!("{name}-"))).count();
    assert_eq!(roles, 1, "{context}");
}

/// What `serve` writes on stderr, line by line.
pub type ServeLog = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>;

/// `tokendeploy serve` with `env` and `args` (on a free loopback port unless they name one),
/// and its base URL once it listens.
pub async fn serve(env: &[(String, String)], args: &[&str]) -> (tokio::process::Child, String, ServeLog) {
    let (child, line, lines) = serve_listening(env, args).await;
    let base = line.split("serving tokens at ").nth(1).unwrap().split("/token").next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (child, base, lines)
}

/// `tokendeploy serve` as [`serve`] starts it, and the line it says it listens with.
pub async fn serve_listening(
    env: &[(String, String)],
    args: &[&str],
) -> (tokio::process::Child, String, ServeLog) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let port: &[&str] = if args.contains(&"--port") { &[] } else { &["--port", "0"] };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokendeploy"))
        .arg("serve")
        .args(port)
        .args(args)
        .env_clear()
        .envs(env.iter().cloned())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("serving tokens at ") {
                return line;
            }
        }
        panic!("serve stopped before it listened");
    })
    .await
    .expect("serve listens within 30 s");
    (child, started, lines)
}

/// Dolby.io's token endpoint, standing in on loopback: the token `upstream-token` for the app's
/// key and secret as Dolby.io documents the request, 401 `invalid_client` for any other.
pub async fn upstream() -> wiremock::MockServer {
    use base64::Engine;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}"));
    let token =
        serde_json::json!({"token_type": "Bearer", "access_token": "upstream-token", "expires_in": 3600});
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(token))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(serde_json::json!({"error": "invalid_client"})),
        )
        .mount(&server)
        .await;
    server
}

/// Through a fault proxy holding every call `held` matches for 3 s: `up` with the function's
/// zip and `args`, started in the background; returns once a held call has arrived (the run
/// is then inside that call).
pub async fn up_held(
    harness: &Harness,
    env: &[(String, String)],
    held: impl Fn(&Call) -> bool + Send + Sync + 'static,
    args: &[&str],
) -> (FaultProxy, std::process::Child) {
    let zip = function_zip().to_str().unwrap().to_string();
    let mut all = vec!["up", "--output", "json", "--zip", &zip];
    all.extend_from_slice(args);
    run_held(harness, env, held, &all).await
}

/// As [`up_held`], for any command line.
pub async fn run_held(
    harness: &Harness,
    env: &[(String, String)],
    held: impl Fn(&Call) -> bool + Send + Sync + 'static,
    args: &[&str],
) -> (FaultProxy, std::process::Child) {
    let rule = Rule::first(held, usize::MAX, Effect::Delay(std::time::Duration::from_secs(3)));
    let proxy = FaultProxy::start_with(&harness.moto.endpoint(), vec![rule]).await.unwrap();
    let mut env = env.to_vec();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
    let mut command = harness.command(args, &env);
    let stdio = std::process::Stdio::piped;
    let child = command.stdout(stdio()).stderr(stdio()).spawn().unwrap();
    while !proxy.calls().iter().any(|call| call.faulted) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (proxy, child)
}
