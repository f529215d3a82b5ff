//! Carries the token function into the CLI: each `embedded/bootstrap-<arch>` found (put there by
//! `scripts/build-function.sh`'s callers) is checked for its CPU and zipped, exactly as `package`
//! zips it, into `OUT_DIR`; `src/embedded.rs` includes the zips. Without them, the CLI builds
//! the function from a checkout instead.

use std::path::Path;

use tokendeploy_package::{Arch, check_lambda_binary, zip_bootstrap};

fn main() {
    let embedded = Path::new(env!("CARGO_MANIFEST_DIR")).join("embedded");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo::rerun-if-changed={}", embedded.display());
    for arch in Arch::ALL {
        let name = arch.lambda_name();
        println!("cargo::rustc-check-cfg=cfg(embedded_{name})");
        let binary_path = embedded.join(format!("bootstrap-{name}"));
        println!("cargo::rerun-if-changed={}", binary_path.display());
        let Ok(binary) = std::fs::read(&binary_path) else { continue };
        if let Err(error) = check_lambda_binary(&binary, arch) {
            panic!("{}: {error:#}", binary_path.display());
        }
        let zip = zip_bootstrap(&binary, arch).expect("zipping the function");
        zip.write_to(&Path::new(&out_dir).join(format!("bootstrap-{name}.zip"))).expect("writing the zip");
        println!("cargo::rustc-cfg=embedded_{name}");
    }
}
