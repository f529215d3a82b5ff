//! `init`: an env file to start from, commented, for the provider asked for: what a `cargo
//! install` user has no checkout's examples/ to copy from.

use std::io::Write;
use std::path::Path;

use crate::cli::{InitArgs, OutputFormat};
use crate::display::{print_result, say};
use crate::starting_files;
use crate::{Outcome, UsageError};
use anyhow::Result;
use serde::Serialize;

/// What `init --output json` prints.
#[derive(Serialize)]
struct InitReport<'a> {
    path: &'a Path,
    provider: &'static str,
}

pub async fn run(args: InitArgs) -> Result<Outcome> {
    let text = starting_files::env_file(args.provider);
    if args.file == Path::new("-") {
        if args.force || args.output.output == OutputFormat::Json {
            let refusal =
                "--file - prints the file itself on stdout: --force and --output json have no use with it";
            return Err(UsageError(refusal.into()).into());
        }
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(Outcome::Done);
    }
    // Its comments say how to pass it: by the name it is written as.
    let shown = shell_word(&args.file)?;
    write_file(
        &args.file,
        &text.replace("--env-file token.env", &format!("--env-file {shown}")),
        args.force,
    )?;
    if !args.output.quiet {
        say(&format!(
            "wrote {shown} for {}: put your values in it, then `tokendeploy serve --env-file {shown}` tries it here and `tokendeploy up --region REGION --env-file {shown}` deploys it",
            args.provider.name()
        ));
    }
    let report = InitReport { path: &args.file, provider: args.provider.name() };
    print_result(args.output.output, &report, |report| report.path.display().to_string())?;
    Ok(Outcome::Done)
}

/// `path` as a shell takes it back, quoted when it holds a blank or a character a shell reads;
/// one with a control character (a newline would end the comment it is written in) is refused.
fn shell_word(path: &Path) -> Result<String> {
    let Some(text) = path.to_str().filter(|text| !text.chars().any(char::is_control)) else {
        let refusal = format!("--file {path:?}: name a file with no control character in its name");
        return Err(UsageError(refusal).into());
    };
    let plain = text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./+:@%,=".contains(c));
    Ok(if plain { text.to_string() } else { format!("'{}'", text.replace('\'', r"'\''")) })
}

/// Writes `text` to `path`, readable by its owner alone (it is about to hold secrets). An
/// existing file (or link) is left as it is unless `force`; then the new file is written
/// beside it and renamed over it, so the old one is replaced whole (never followed through a
/// link, never left part written, its looser mode not kept). A directory is refused.
fn write_file(path: &Path, text: &str, force: bool) -> Result<()> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(found) if found.is_dir() => {
            let example = path.join("token.env");
            let refusal = format!("{shown} is a directory: name a file, such as {}", example.display());
            return Err(UsageError(refusal).into());
        }
        Ok(_) if !force => {
            let refusal = format!(
                "{shown} exists already and was left as it is: pass --force to overwrite it, or --file for another name"
            );
            return Err(UsageError(refusal).into());
        }
        Ok(_) => {}
        Err(_) => return create_new(path, text).map_err(|e| cannot_write(path, e)),
    }
    let name = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
    let beside = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let replaced = create_new(&beside, text).and_then(|()| std::fs::rename(&beside, path));
    if let Err(e) = replaced {
        let _ = std::fs::remove_file(&beside);
        return Err(cannot_write(path, e));
    }
    Ok(())
}

/// A new file at `path` (none may be there), mode 0600 from its first byte.
fn create_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn cannot_write(path: &Path, error: std::io::Error) -> anyhow::Error {
    UsageError(format!("cannot write {}: {error}", path.display())).into()
}
