//! Twin `up` runs of one fresh stack at the same moment, as two CI jobs or two colleagues
//! would start them: they end with one of everything, each run finishes or stops with a
//! clear message, and the stack is never stuck.

use std::process::Stdio;

use crate::support::*;

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn concurrent_ups_of_a_fresh_stack_end_with_one_of_everything() {
    let harness = Harness::start();
    let zip = function_zip().to_str().unwrap().to_string();
    let mut runs = 0;
    for (twins, name) in
        [(2, "pair-a"), (2, "pair-b"), (2, "pair-c"), (3, "trio-a"), (3, "trio-b"), (3, "trio-c")]
    {
        let args = ["up", "--output", "json", "--zip", &zip, "--name", name];
        let children: Vec<_> = (0..twins)
            .map(|_| {
                let mut command = harness.command(&args, &harness.env());
                command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
            })
            .collect();
        let finished: Vec<Run> =
            children.into_iter().map(|c| Run::from(c.wait_with_output().unwrap())).collect();
        for run in &finished {
            run.assert_no_secret();
            let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
            let stopped_clearly = run.code == 1
                && errors.len() == 1
                && errors[0].contains(&format!("another tokendeploy up of stack {name}"));
            assert!(run.code == 0 || stopped_clearly, "{name}: exit {}:\n{}", run.code, run.stderr);
        }
        assert!(finished.iter().any(|r| r.code == 0), "{name}: no run finished");
        assert_one_of_everything(&harness, name, name).await;
        let again = harness.up(&["--name", name]);
        again.assert_success();
        assert_eq!(again.actions(), all_unchanged(), "{name}: a following up changes nothing");
        runs += twins;
    }
    eprintln!("{runs} concurrent up runs in 6 rounds, each ended with one of everything");
}
