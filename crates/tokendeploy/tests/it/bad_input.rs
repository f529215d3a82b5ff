//! The table of bad inputs in docs/errors.md, as a test: each gets exit 2 and one line saying what is
//! wrong, before any AWS call, changing nothing in the account and printing no secret.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::support::*;
use tokendeploy_testkit::fault_proxy::FaultProxy;

/// One row: what the user gives, and the words the one line must contain.
struct Case {
    args: Vec<String>,
    /// Variables set (a value) or removed (`None`) on top of a complete environment.
    env: Vec<(&'static str, Option<String>)>,
    /// A variable set to bytes that are not UTF-8 text.
    raw: Option<(&'static str, Vec<u8>)>,
    says: String,
}

fn case(args: &[&str], env: &[(&'static str, Option<&str>)], says: &str) -> Case {
    Case {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: env.iter().map(|(k, v)| (*k, v.map(str::to_string))).collect(),
        raw: None,
        says: says.to_string(),
    }
}

/// A case with variable `name` set to `bytes`.
fn case_raw(args: &[&str], name: &'static str, bytes: &[u8], says: &str) -> Case {
    Case { raw: Some((name, bytes.to_vec())), ..case(args, &[], says) }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// A zip holding `entry` with the Python bytes expression `python_body`, made with Python's
/// zipfile (fast even for a bomb), deflated.
fn zip_with(dir: &Path, name: &str, entry: &str, python_body: &str, mode: u32) -> String {
    zip_compressed(dir, name, entry, python_body, mode, "ZIP_DEFLATED")
}

/// As [`zip_with`], compressed with zipfile's `method`.
fn zip_compressed(dir: &Path, name: &str, entry: &str, python_body: &str, mode: u32, method: &str) -> String {
    let path: PathBuf = dir.join(name);
    let script = format!(
        "import zipfile\nz = zipfile.ZipFile({path:?}, 'w', zipfile.ZIP_DEFLATED)\ni = zipfile.ZipInfo({entry:?}, (1980, 1, 1, 0, 0, 0))\ni.external_attr = 0o{mode:o} << 16\ni.compress_type = zipfile.{method}\nz.writestr(i, {python_body})\nz.close()\n",
        path = path.to_str().unwrap()
    );
    let python = std::env::var("TOKENDEPLOY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = std::process::Command::new(python).args(["-c", &script]).status().unwrap();
    assert!(status.success());
    path.to_str().unwrap().to_string()
}

fn cases(dir: &Path) -> Vec<Case> {
    let many_origins: Vec<String> = (0..101).map(|i| format!("https://o{i}.example")).collect();
    let many_origins = many_origins.join(",");
    let stray_quote = write(
        dir,
        "quote.env",
        format!("CONSUMER_KEY=k\nCONSUMER_SECRET=\"{SECRET}\nALLOWED_ORIGINS=*\n").as_bytes(),
    );
    let no_equals = write(dir, "noeq.env", format!("{SECRET}\n").as_bytes());
    let two_words = write(dir, "bearer.txt", b"one two\n");
    let filled_in = write(dir, "filled-in.env", b"CONSUMER_KEY=mine\n");
    let not_zip = write(dir, "not.zip", b"plain text");
    let big = dir.join("big.zip");
    std::fs::File::create(&big).unwrap().set_len(51 * 1024 * 1024).unwrap();
    let big = big.to_str().unwrap().to_string();
    let no_bootstrap = zip_with(dir, "nobootstrap.zip", "handler", "b'x'", 0o100755);
    let not_executable = zip_with(dir, "noexec.zip", "bootstrap", "b'\\x7fELF'", 0o100644);
    let script = zip_with(dir, "script.zip", "bootstrap", "b'#!/bin/sh\\necho hi\\n'", 0o100755);
    let bomb = zip_with(dir, "bomb.zip", "bootstrap", "bytes(300 * 1024 * 1024)", 0o100755);
    let bzip2 = zip_compressed(dir, "bzip2.zip", "bootstrap", "b'\\x7fELF'", 0o100755, "ZIP_BZIP2");
    let complete = write(
        dir,
        "complete.env",
        format!("CONSUMER_KEY=k\nCONSUMER_SECRET={SECRET}\nALLOWED_ORIGINS=*\n").as_bytes(),
    );
    let not_text = [SECRET.as_bytes(), b"\xff"].concat();
    vec![
        case_raw(
            &["up"],
            "CONSUMER_SECRET",
            &not_text,
            "CONSUMER_SECRET in the environment is not UTF-8 text",
        ),
        case_raw(
            &["up", "--env-file", &complete],
            "CONSUMER_SECRET",
            &not_text,
            "CONSUMER_SECRET in the environment is not UTF-8 text",
        ),
        case_raw(
            &["status"],
            "TOKEN_PROVIDER",
            b"\xfe",
            "TOKEN_PROVIDER in the environment is not UTF-8 text",
        ),
        case(
            &["up", "--env-file", &stray_quote],
            &[("CONSUMER_SECRET", None)],
            "line 2: a value that starts with a quote must end with the same quote",
        ),
        case(&["up", "--quiet", "--env-file", &stray_quote], &[], "line 2: a value that starts with a quote"),
        case(&["status", "--env-file", &stray_quote], &[], "line 2: a value that starts with a quote"),
        case(&["up", "--env-file", &no_equals], &[], "line 1 is not NAME=value"),
        case(
            &["up", "--env-file", "/nonexistent/token.env"],
            &[],
            "cannot read --env-file /nonexistent/token.env: no such file",
        ),
        case(&["up"], &[("CONSUMER_SECRET", None)], "CONSUMER_SECRET is not set"),
        case(&["up"], &[("CONSUMER_SECRET", Some("  "))], "CONSUMER_SECRET is not set"),
        case(
            &["up"],
            &[("CONSUMER_SECRET", Some(&format!("{SECRET}{}", "x".repeat(5000))))],
            "Lambda takes at most 4096",
        ),
        case(&["up"], &[("ALLOWED_ORIGINS", Some("app.example.com"))], "ALLOWED_ORIGINS must be"),
        case(&["up"], &[("TOKEN_URL", Some("https://"))], "TOKEN_URL must be"),
        case(&["up"], &[("TOKEN_URL", Some("https://a b.example/token"))], "TOKEN_URL must be"),
        case(&["up"], &[("TOKEN_URL", Some("http://tokens.example.com/token"))], "TOKEN_URL must be"),
        case(&["up"], &[("TOKEN_PROVIDER", Some("acme"))], "TOKEN_PROVIDER must be"),
        case(&["up"], &[("UPSTREAM_TIMEOUT_MS", Some("soon"))], "UPSTREAM_TIMEOUT_MS must be"),
        // The function has 10 s: an upstream timeout above 8 s would leave it no time for its 504.
        case(
            &["up"],
            &[("UPSTREAM_TIMEOUT_MS", Some("9000"))],
            "UPSTREAM_TIMEOUT_MS must be a whole number of milliseconds from 1 to 8000",
        ),
        // With the secret in Secrets Manager, a first request also spends up to 3 s reading it.
        case(
            &["up", "--secret-store", "secrets-manager"],
            &[("UPSTREAM_TIMEOUT_MS", Some("6000"))],
            "from 1 to 5000: the function has 10 s to answer, and keeps 2 s to answer its own 504, and a first request may spend 3 s reading the secret",
        ),
        case(&["up", "--name", "Bad_Name"], &[], "stack name \"Bad_Name\" is not valid"),
        case(&["up"], &[("AWS_REGION", None)], "no AWS region: pass --region"),
        case(&["up", "--region", "mars"], &[], "region \"mars\" is not an AWS region name"),
        case(
            &["up", "--region", "us-iso-east-1"],
            &[],
            "region us-iso-east-1 is in the aws-iso partition, which tokendeploy does not deploy to",
        ),
        case(&["up", "--profile", "nope"], &[], "--profile nope: no such profile"),
        case(&["down", "--yes", "--profile", "nope"], &[], "--profile nope: no such profile"),
        case(&["up"], &[("AWS_ENDPOINT_URL", Some(""))], "the endpoint URL is empty"),
        case(&["status", "--endpoint-url", "localhost:4566"], &[], "is not an http(s) URL"),
        case(&["up", "--zip", "/nonexistent.zip"], &[], "--zip /nonexistent.zip: no such file"),
        case(&["up", "--zip", &not_zip], &[], "is not a zip file"),
        case(&["up", "--zip", &big], &[], "over Lambda's 52428800-byte limit for a direct upload"),
        case(&["up", "--zip", &no_bootstrap], &[], "has no `bootstrap` at its top"),
        case(&["up", "--zip", &not_executable], &[], "is not executable"),
        case(&["up", "--zip", &bzip2], &[], "Lambda unzips only stored or deflated entries"),
        case(&["plan", "--zip", &script], &[], "is not a 64-bit Linux (ELF) executable"),
        case(&["up", "--zip", &bomb], &[], "over Lambda's 262144000-byte limit"),
        case(&["up", "--output", "yaml"], &[], "invalid value 'yaml'"),
        case(
            &["up", "--arch", "arm64"],
            &[],
            "bootstrap is built for x86_64, but the function is deployed for arm64: pass --arch x86_64",
        ),
        case(&["up", "--arch", "sparc"], &[], "[possible values: x86_64, arm64]"),
        case(&["up", "--rate-limit", "0"], &[], "must be from 0.1 to 10000 requests a second"),
        case(&["plan", "--rate-limit", "NaN"], &[], "must be from 0.1 to 10000 requests a second"),
        case(&["up", "--rate-limit", "fast"], &[], "must be a number of requests a second"),
        case(&["up", "--burst-limit", "0"], &[], "0 is not in 1..=5000"),
        case(&["status", "--burst-limit", "99999"], &[], "99999 is not in 1..=5000"),
        case(&["up", "--secret-store", "vault"], &[], "[possible values: env, secrets-manager]"),
        case(&["up", "--gateway", "soap"], &[], "[possible values: rest, http, url]"),
        case(
            &["up", "--gateway", "http", "--api-key"],
            &[],
            "--api-key does not apply to --gateway http: it goes with --gateway rest (only a REST API has API keys)",
        ),
        case(
            &["up", "--gateway", "url", "--api-key"],
            &[],
            "--api-key does not apply to --gateway url: it goes with --gateway rest",
        ),
        case(
            &["plan", "--gateway", "url", "--rate-limit", "5"],
            &[],
            "--rate-limit does not apply to --gateway url: it goes with --gateway rest or http",
        ),
        case(
            &["status", "--reserved-concurrency", "3"],
            &[],
            "--reserved-concurrency does not apply to --gateway rest: it goes with --gateway url",
        ),
        case(&["up", "--gateway", "url", "--reserved-concurrency", "0"], &[], "0 is not in 1..=10000"),
        case(
            &["up", "--region", "us-west-1,us-west-1"],
            &[],
            "--region names us-west-1 twice: list each region once",
        ),
        case(
            &["status", "--region", "us-west-1,cn-north-1"],
            &[],
            "--region mixes partitions (us-west-1 is in aws, cn-north-1 is not)",
        ),
        case(&["down", "--yes", "--region", "us-west-1,"], &[], "has an empty name in its list"),
        case(
            &["plan", "--region", "us-west-1,mars-1"],
            &[],
            "--region: region \"mars-1\" is not an AWS region name",
        ),
        case(&["logs", "--region", "us-west-1,us-west-1"], &[], "--region names us-west-1 twice"),
        case(
            &["down", "--all-regions", "--region", "us-west-1"],
            &[],
            "the argument '--all-regions' cannot be used with '--region <REGION>'",
        ),
        case(
            &["up", "--no-jwt-authorizer"],
            &[],
            "--no-jwt-authorizer does not apply to --gateway rest: it goes with --gateway http (only an HTTP API has a JWT authorizer)",
        ),
        case(
            &["plan", "--gateway", "http"],
            &[
                ("TOKEN_PROVIDER", Some("livekit")),
                ("LIVEKIT_API_KEY", Some("APIkey")),
                ("LIVEKIT_API_SECRET", Some("livekit-secret-0123456789abcdef0123")),
                ("IDENTITY_JWKS_URL", Some("https://issuer.example/jwks.json")),
                ("IDENTITY_ISSUER", Some("issuer.example")),
                ("IDENTITY_AUDIENCE", Some("app")),
            ],
            "IDENTITY_ISSUER must be an https URL for the HTTP API's JWT authorizer",
        ),
        case(
            &["up", "--gateway", "url"],
            &[("ALLOWED_ORIGINS", Some(many_origins.as_str()))],
            "a function URL's CORS takes at most 100",
        ),
        case(&["up", "--show-api-key"], &[], "required arguments were not provided: --api-key"),
        case(&["up", "--no-such-flag"], &[], "unexpected argument '--no-such-flag'"),
        case(&["down"], &[], "pass --yes to delete without a terminal"),
        case(
            &["verify", "--bearer-file", "/nonexistent/bearer"],
            &[],
            "cannot read --bearer-file /nonexistent/bearer: No such file or directory",
        ),
        case(
            &["verify", "--bearer-file", &two_words],
            &[],
            "must hold one token from the app's sign-in, and nothing else",
        ),
        case(&["verify", "--wait", "5000"], &[], "5000 is not in 0..=900"),
        case(&["logs", "--since", "10y"], &[], "must end in s, m, h or d, such as 10m"),
        case(&["logs", "--since", "30d"], &[], "must be from 1s to 14d"),
        case(&["init", "--provider", "zoom"], &[], "invalid value 'zoom' for '--provider <PROVIDER>'"),
        case(
            &["init", "--provider", "dolby", "--file", &filled_in],
            &[],
            "exists already and was left as it is: pass --force to overwrite it",
        ),
        case(
            &["init", "--provider", "dolby", "--file", dir.to_str().unwrap(), "--force"],
            &[],
            "is a directory: name a file, such as",
        ),
        case(
            &["init", "--provider", "dolby", "--file", "-", "--force"],
            &[],
            "--file - prints the file itself on stdout: --force and --output json have no use with it",
        ),
        case(
            &["init", "--provider", "dolby", "--file", "a\nb"],
            &[],
            "name a file with no control character in its name",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn each_bad_input_gets_exit_2_one_line_and_changes_nothing() {
    let harness = Harness::start();
    harness.up(&[]).assert_success();
    let aws = harness.aws(REGION).await;
    let before = snapshot(&aws).await;
    // Every AWS call goes through a recorder: a bad input must be refused before the first.
    let recorder = FaultProxy::recording(&harness.moto.endpoint()).await.unwrap();
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md");
    let table = std::fs::read_to_string(table).unwrap();
    let cases = cases(&harness.dir);
    for case in &cases {
        let mut env = harness.env();
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), recorder.endpoint()));
        for (name, value) in &case.env {
            env.retain(|(k, _)| k != name);
            if let Some(value) = value {
                env.push((name.to_string(), value.clone()));
            }
        }
        // Everything else as a user would give it: the function's zip unless the case names one.
        let mut args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let zip = function_zip().to_str().unwrap();
        if matches!(args[0], "up" | "plan" | "status") && !args.contains(&"--zip") {
            args.extend(["--zip", zip]);
        }
        let calls_before = recorder.calls().len();
        let mut command = harness.command(&args, &env);
        if let Some((name, bytes)) = &case.raw {
            use std::os::unix::ffi::OsStrExt;
            command.env(name, std::ffi::OsStr::from_bytes(bytes));
        }
        let run = Run::from(tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap());
        let shown = format!("{args:?} {:?}", case.env);
        // `down` reads the stack to say what it would delete, then refuses to go on.
        if args[0] != "down" {
            assert_eq!(
                recorder.calls().len(),
                calls_before,
                "{shown}: AWS was called: {:?}",
                recorder.calls()
            );
        }
        assert_eq!(run.code, 2, "{shown}: {}", run.stderr);
        let line = run.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{shown}: one line, got:\n{line}");
        assert!(line.starts_with("error: "), "{shown}: {line}");
        assert!(line.contains(&case.says), "{shown}: wanted {:?} in {line}", case.says);
        assert!(run.stdout.is_empty(), "{shown}: {}", run.stdout);
        run.assert_no_secret();
        assert!(table.contains(&case.says.replace('\\', "")), "docs/errors.md's table lacks {:?}", case.says);
    }
    assert_eq!(snapshot(&aws).await, before, "no bad input changed the account");
    let filled_in = std::fs::read(harness.dir.join("filled-in.env")).unwrap();
    assert_eq!(filled_in, b"CONSUMER_KEY=mine\n", "init left an existing file as it was");
    eprintln!("{} bad inputs tried, each refused with one line and no change", cases.len());
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn a_closed_stdout_is_a_failure_not_a_panic() {
    let harness = Harness::start();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let zip = function_zip().to_str().unwrap().to_string();
    let mut command = harness.command(&["up", "--quiet", "--zip", &zip], &harness.env());
    let output = command.stdout(writer).output().unwrap();
    let run = Run::from(output);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("writing the result to standard output"), "{}", run.stderr);
    let _ = std::io::stderr().flush();
}

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn status_of_a_stack_blocked_by_someone_elses_resource_exits_3() {
    let harness = Harness::start();
    let aws = harness.aws(REGION).await;
    // A REST API with the stack's name, not ours.
    aws.apigateway.create_rest_api().name("token-server").send().await.unwrap();
    let run = harness.status(&[]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["in_sync"], false);
    assert!(report["problem"].as_str().unwrap().contains("belongs to someone else"), "{report}");
}
