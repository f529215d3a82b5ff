//! A moto server (a real AWS API emulator over HTTP) on a free loopback port, one per test,
//! so tests share no state. Installed by the test command (`pip install 'moto[server]'`).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// moto's server with the fixes that make it answer as AWS does (see its docstring).
const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/moto_server.py");

pub struct Moto {
    port: u16,
    process: Child,
}

impl Moto {
    /// A moto server on a free loopback port, its IAM and STS loaded. Tried afresh, on another
    /// port, up to three times: tests start servers side by side, and two may be handed the
    /// same free port (the loser's first calls then reach a server that is not its own).
    pub fn start() -> Result<Self> {
        Self::start_as(&[SERVER], &[])
    }

    /// A moto server that checks every call against the caller's IAM policies once
    /// [`Self::enforce_iam`] is called (`moto_server.py` makes its signature check work for
    /// every request; see its docstring).
    /// Each decision it makes is appended to `decisions` as a JSON line (action, allowed).
    pub fn start_enforcing(decisions: &std::path::Path) -> Result<Self> {
        let log = decisions.to_str().context("the decisions file's path is not UTF-8")?;
        Self::start_as(&[SERVER], &[("MOTO_ENFORCING_LOG", log)])
    }

    /// From now on, every call is checked against its caller's policies: the dummy credentials
    /// of [`Self::aws_environment`] no longer pass, only an IAM user's access key.
    pub async fn enforce_iam(&self) -> Result<()> {
        let answer = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint()))
            .header("content-type", "text/plain")
            .body("0")
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("moto refused to turn IAM enforcement on: {}", answer.status());
        }
        Ok(())
    }

    fn start_as(server: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(server, env) {
                Ok(moto) => return Ok(moto),
                Err(error) if attempt < 3 => {
                    eprintln!("moto did not start cleanly ({error:#}); trying another port");
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn start_once(server: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let port = free_port()?;
        let python = std::env::var("TOKENDEPLOY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut process = Command::new(&python)
            .args(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting moto with {python}; install it with: pip install 'moto[server]'")
            })?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = process.try_wait()? {
                bail!("moto exited at start ({status}); is moto[server] installed?");
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = process.kill();
                bail!("moto did not listen on port {port} within a minute");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut moto = Self { port, process };
        moto.warm_up()?;
        if let Some(status) = moto.process.try_wait()? {
            bail!("moto exited at start ({status}): its port was taken");
        }
        Ok(moto)
    }

    /// Makes moto load its IAM backend (with every AWS managed policy, which takes seconds)
    /// before a test's first call, so no call a test times or counts pays for it.
    fn warm_up(&self) -> Result<()> {
        use std::io::{Read, Write};
        for (service, body) in [
            ("iam", "Action=ListRoles&Version=2010-05-08"),
            ("sts", "Action=GetCallerIdentity&Version=2011-06-15"),
        ] {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
            stream.set_read_timeout(Some(Duration::from_secs(120)))?;
            write!(
                stream,
                "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: {}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.port,
                unsigned_authorization(service, "us-east-1"),
                body.len()
            )?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).with_context(|| format!("warming moto's {service} up"))?;
            if !answer.starts_with("HTTP/1.1 200") {
                bail!(
                    "moto did not answer {service} at start: {}",
                    answer.lines().next().unwrap_or_default()
                );
            }
        }
        Ok(())
    }

    /// Does to Lambda function `name` in `region` what AWS does over time (`moto_server.py`'s
    /// hook): `{"State": "Inactive"}` makes it idle, `{"LastUpdateStatus": "Failed",
    /// "LastUpdateStatusReason": "..."}` its last update failed.
    pub async fn set_function_state(
        &self,
        region: &str,
        name: &str,
        mut state: serde_json::Value,
    ) -> Result<()> {
        state["Region"] = region.into();
        state["FunctionName"] = name.into();
        let answer = reqwest::Client::new()
            .post(format!("{}/_tokendeploy/lambda-state", self.endpoint()))
            .body(state.to_string())
            .send()
            .await?;
        let status = answer.status();
        if !status.is_success() {
            bail!("moto refused to set the state of function {name}: {status} {}", answer.text().await?);
        }
        Ok(())
    }

    /// Creates a Secrets Manager secret `name` holding `secret_string` in `region`; returns its
    /// ARN.
    pub async fn create_secret(&self, region: &str, name: &str, secret_string: &str) -> Result<String> {
        let body = serde_json::json!({ "Name": name, "SecretString": secret_string });
        let answer = self.secrets_manager(region, "CreateSecret", body).await?;
        answer["ARN"].as_str().map(str::to_string).context("moto's CreateSecret answered no ARN")
    }

    /// Gives secret `secret_id` (its name or ARN) a new current value.
    pub async fn put_secret_value(&self, region: &str, secret_id: &str, secret_string: &str) -> Result<()> {
        let body = serde_json::json!({ "SecretId": secret_id, "SecretString": secret_string });
        self.secrets_manager(region, "PutSecretValue", body).await.map(drop)
    }

    /// One Secrets Manager (awsJson 1.1) call; its answer's JSON.
    async fn secrets_manager(
        &self,
        region: &str,
        operation: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let answer = reqwest::Client::new()
            .post(self.endpoint())
            .header("authorization", unsigned_authorization("secretsmanager", region))
            .header("x-amz-target", format!("secretsmanager.{operation}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(body.to_string())
            .send()
            .await?;
        let status = answer.status();
        let text = answer.text().await?;
        if !status.is_success() {
            bail!("moto answered {operation} with {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("moto's {operation} answer is not JSON: {text}"))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment an AWS SDK client needs to talk to this server with dummy credentials.
    pub fn aws_environment(&self, region: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", region.into()),
            // Keep a developer's own profile and IMDS out of the tests.
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// An `Authorization` header that looks signed: moto reads the service and region from its
/// credential scope, and checks no signature.
fn unsigned_authorization(service: &str, region: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, \
         SignedHeaders=host, Signature=0"
    )
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}
