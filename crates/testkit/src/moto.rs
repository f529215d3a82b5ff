//! A moto server (a real AWS API emulator over HTTP) on a free loopback port, one per test,
//! so tests share no state. Installed by the test command (`pip install 'moto[server]'`).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct Moto {
    port: u16,
    process: Child,
}

impl Moto {
    /// A moto server on a free loopback port, its IAM and STS loaded. Tried afresh, on another
    /// port, up to three times: tests start servers side by side, and two may be handed the
    /// same free port (the loser's first calls then reach a server that is not its own).
    pub fn start() -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once() {
                Ok(moto) => return Ok(moto),
                Err(error) if attempt < 3 => {
                    eprintln!("moto did not start cleanly ({error:#}); trying another port");
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn start_once() -> Result<Self> {
        let port = free_port()?;
        let python = std::env::var("TOKENDEPLOY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut process = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
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
            // moto reads the service from the credential scope; it checks no signature.
            write!(
                stream,
                "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: AWS4-HMAC-SHA256 \
                 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, \
                 Signature=0\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.port,
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

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}
