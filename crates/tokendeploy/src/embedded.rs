//! The token function this CLI version carries (see `build.rs`): what `up`, `plan`, `status` and
//! `package` deploy unless told `--zip` or `--build`.

use tokendeploy_package::{Arch, Artifact};

/// The function's zip for `arch`, when this build of the CLI carries one.
pub fn function(arch: Arch) -> Option<Artifact> {
    let bytes: Option<&'static [u8]> = match arch {
        #[cfg(embedded_x86_64)]
        Arch::X86_64 => Some(include_bytes!(concat!(env!("OUT_DIR"), "/bootstrap-x86_64.zip"))),
        #[cfg(embedded_arm64)]
        Arch::Arm64 => Some(include_bytes!(concat!(env!("OUT_DIR"), "/bootstrap-arm64.zip"))),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    // Checked when it was built in: only a broken build could fail here.
    bytes.map(|bytes| Artifact::new(bytes.to_vec(), arch).expect("the embedded function fits Lambda's limit"))
}
