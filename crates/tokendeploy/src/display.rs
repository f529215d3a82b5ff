//! What a person or a pipeline sees on stderr while work runs, and the result on stdout.
//! On a terminal, a spinner a step (indicatif); elsewhere, one plain line a finished step.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokendeploy_deploy::{Progress, Step, StepReport};

use crate::cli::{OutputArgs, OutputFormat};

pub struct Console {
    mode: Mode,
}

enum Mode {
    Quiet,
    Lines,
    Bars { bars: MultiProgress, steps: Mutex<HashMap<Step, ProgressBar>> },
}

impl Console {
    pub fn new(args: &OutputArgs) -> Self {
        let mode = if args.quiet {
            Mode::Quiet
        } else if draws_in_place() {
            Mode::Bars {
                bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                steps: Mutex::default(),
            }
        } else {
            Mode::Lines
        };
        Self { mode }
    }

    /// A line of context before the steps (which code goes out); nothing when quiet.
    pub fn tell(&self, line: &str) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Lines => say(line),
            Mode::Bars { bars, .. } => {
                let _ = bars.println(line);
            }
        }
    }

    /// Removes the spinners of steps that never finished (on an error); finished steps stay
    /// on screen as a record of what was done.
    pub fn clear(&self) {
        if let Mode::Bars { steps, .. } = &self.mode {
            for (_, bar) in steps.lock().unwrap().drain() {
                bar.finish_and_clear();
            }
        }
    }
}

impl Progress for Console {
    fn started(&self, step: Step) {
        if let Mode::Bars { bars, steps } = &self.mode {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<26} {msg} {elapsed}")
                    .expect("a valid template"),
            );
            bar.set_prefix(step.title());
            bar.enable_steady_tick(Duration::from_millis(100));
            steps.lock().unwrap().insert(step, bar);
        }
    }

    fn note(&self, step: Step, message: &str) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Lines => say(&format!("{:<26} {message}", step.title())),
            Mode::Bars { steps, .. } => {
                if let Some(bar) = steps.lock().unwrap().get(&step) {
                    bar.set_message(message.to_string());
                }
            }
        }
    }

    fn finished(&self, report: &StepReport) {
        let line = format!("{:<26} {} ({:.1}s)", report.step.title(), report.outcome(), report.seconds);
        match &self.mode {
            Mode::Quiet => {}
            Mode::Lines => say(&line),
            Mode::Bars { steps, .. } => {
                if let Some(bar) = steps.lock().unwrap().remove(&report.step) {
                    bar.set_style(ProgressStyle::with_template("✔ {msg}").expect("a valid template"));
                    bar.finish_with_message(line);
                }
            }
        }
    }
}

/// Whether stderr is a terminal that redraws lines in place. One whose TERM is unset or
/// `dumb` (an editor's shell, some CI runners) gets plain lines: indicatif would draw nothing.
pub fn draws_in_place() -> bool {
    let dumb = std::env::var("TERM").map_or(true, |term| term == "dumb");
    std::io::stderr().is_terminal() && !dumb
}

/// One line on stderr. A closed stderr loses the line, not the run: progress is not worth
/// dying for (`eprintln!` would panic).
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Writes a command's result on stdout: the JSON form, or the text `text` makes of it. A
/// closed or full stdout is an error (exit 1), never a panic.
pub fn print_result<T: Serialize>(
    format: OutputFormat,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<()> {
    let mut output = match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)?,
        OutputFormat::Text => text(value),
    };
    if !output.ends_with('\n') {
        output.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the result to standard output")
}
