//! Carries the token function into the CLI: each `embedded/bootstrap-<arch>` found (put there by
//! `scripts/build-function.sh`'s callers) is checked for its CPU and zipped, exactly as `package`
//! zips it, into `OUT_DIR`; `src/embedded.rs` includes the zips.
//!
//! In a checkout, a missing one means the CLI builds `function/` when it needs that CPU, and a
//! function whose sources changed after it was embedded is warned about. Outside a checkout (the
//! crate as published), both are required: a CLI that carries no function could deploy nothing.

use std::path::Path;
use std::time::SystemTime;

use tokendeploy_package::{Arch, check_lambda_binary, zip_bootstrap};

fn main() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let embedded = manifest_dir.join("embedded");
    let function_dir = manifest_dir.join("../../function");
    let in_checkout = function_dir.join("Cargo.toml").is_file();
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo::rerun-if-changed={}", embedded.display());
    if in_checkout {
        for watched in ["src", "Cargo.toml"] {
            println!("cargo::rerun-if-changed={}", function_dir.join(watched).display());
        }
    }
    let function_changed = in_checkout.then(|| newest_change(&function_dir.join("src"))).flatten();
    for arch in Arch::ALL {
        let name = arch.lambda_name();
        println!("cargo::rustc-check-cfg=cfg(embedded_{name})");
        let binary_path = embedded.join(format!("bootstrap-{name}"));
        println!("cargo::rerun-if-changed={}", binary_path.display());
        let Ok(binary) = std::fs::read(&binary_path) else {
            if !in_checkout {
                panic!(
                    "{} is missing: a published tokendeploy must carry the function for both CPUs (scripts/release.sh puts them there before packaging)",
                    binary_path.display()
                );
            }
            continue;
        };
        if let Err(error) = check_lambda_binary(&binary, arch) {
            panic!("{}: {error:#}", binary_path.display());
        }
        let embedded_at = std::fs::metadata(&binary_path).and_then(|m| m.modified()).ok();
        if let (Some(changed), Some(embedded_at)) = (function_changed, embedded_at)
            && changed > embedded_at
        {
            println!(
                "cargo::warning=function/src changed after embedded/bootstrap-{name} was built: this CLI deploys the function as it was then; pass --build to deploy function/ as it is, or run scripts/build-function.sh {name} and copy its binary there"
            );
        }
        let zip = zip_bootstrap(&binary, arch).expect("zipping the function");
        zip.write_to(&Path::new(&out_dir).join(format!("bootstrap-{name}.zip"))).expect("writing the zip");
        println!("cargo::rustc-cfg=embedded_{name}");
    }
}

/// The latest modification time of any file under `dir`.
fn newest_change(dir: &Path) -> Option<SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let kind = entry.file_type().ok()?;
            if kind.is_dir() { newest_change(&entry.path()) } else { entry.metadata().ok()?.modified().ok() }
        })
        .max()
}
