//! Checking that a binary can run on Lambda's `provided.al2023` runtime, on the CPU asked for.

use anyhow::{Result, bail};
use object::elf::PT_INTERP;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, FileKind};

use crate::Arch;

/// The newest glibc Amazon Linux 2023 ships: 2.34.
pub const GLIBC_LIMIT: (u32, u32) = (2, 34);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryLinkage {
    /// Needs no dynamic loader (musl, or static glibc).
    Static,
    /// Needs glibc; the newest symbol version it asks for.
    Glibc { newest: (u32, u32) },
}

/// Refuses anything that is not a Linux ELF executable for `arch` that Lambda's runtime can load.
pub fn check_lambda_binary(bytes: &[u8], arch: Arch) -> Result<BinaryLinkage> {
    let target = arch.rust_target();
    if FileKind::parse(bytes).ok() != Some(FileKind::Elf64) {
        bail!("bootstrap is not a 64-bit Linux (ELF) executable; build it with --target {target}");
    }
    let elf = ElfFile64::<Endianness>::parse(bytes)
        .map_err(|e| anyhow::anyhow!("bootstrap is not a readable ELF file: {e}"))?;
    let endian = elf.endian();
    let header = elf.elf_header();
    let machine = header.e_machine(endian);
    if machine != arch.elf_machine() {
        match Arch::of_elf_machine(machine) {
            Some(built) => bail!(
                "bootstrap is built for {built}, but the function is deployed for {arch}: pass --arch {built}, or build it with --target {target}"
            ),
            None => bail!("bootstrap is built for another CPU; Lambda runs {arch} here (--target {target})"),
        }
    }
    let needs_loader =
        header.program_headers(endian, bytes)?.iter().any(|segment| segment.p_type(endian) == PT_INTERP);
    if !needs_loader {
        return Ok(BinaryLinkage::Static);
    }
    let newest = newest_glibc_version(&elf)?.unwrap_or((2, 0));
    if newest > GLIBC_LIMIT {
        bail!(
            "bootstrap needs glibc {}.{}, newer than the {}.{} on Lambda's provided.al2023; build it with --target {target}",
            newest.0,
            newest.1,
            GLIBC_LIMIT.0,
            GLIBC_LIMIT.1
        );
    }
    Ok(BinaryLinkage::Glibc { newest })
}

/// The highest `GLIBC_x.y` among the binary's needed symbol versions.
fn newest_glibc_version(elf: &ElfFile64<'_, Endianness>) -> Result<Option<(u32, u32)>> {
    let endian = elf.endian();
    let sections = elf.elf_section_table();
    let Some((mut needs, strings_index)) = sections.gnu_verneed(endian, elf.data())? else {
        return Ok(None);
    };
    let strings = sections.strings(endian, elf.data(), strings_index)?;
    let mut newest = None;
    while let Some((_, mut auxiliaries)) = needs.next()? {
        while let Some(auxiliary) = auxiliaries.next()? {
            let name = String::from_utf8_lossy(auxiliary.name(endian, strings)?).into_owned();
            if let Some(version) = parse_glibc_version(&name) {
                newest = newest.max(Some(version));
            }
        }
    }
    Ok(newest)
}

fn parse_glibc_version(name: &str) -> Option<(u32, u32)> {
    let mut parts = name.strip_prefix("GLIBC_")?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_glibc_version_names() {
        assert_eq!(parse_glibc_version("GLIBC_2.34"), Some((2, 34)));
        assert_eq!(parse_glibc_version("GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(parse_glibc_version("GLIBC_PRIVATE"), None);
        assert!((2, 35) > GLIBC_LIMIT && (2, 9) < GLIBC_LIMIT);
    }

    #[test]
    fn refuses_what_is_not_elf() {
        let err = check_lambda_binary(b"#!/bin/sh\necho hi\n", Arch::X86_64).unwrap_err();
        assert!(err.to_string().contains("not a 64-bit Linux"), "{err}");
    }

    #[test]
    fn accepts_the_cpu_asked_for_and_refuses_the_other() {
        let mut sh = std::fs::read("/bin/sh").unwrap();
        sh[18..20].copy_from_slice(&object::elf::EM_AARCH64.to_le_bytes()); // e_machine
        let err = check_lambda_binary(&sh, Arch::X86_64).unwrap_err().to_string();
        assert!(
            err.contains("built for arm64, but the function is deployed for x86_64: pass --arch arm64"),
            "{err}"
        );
        // Asked for arm64, the CPU passes (what remains is the glibc check's to say).
        let as_arm64 = check_lambda_binary(&sh, Arch::Arm64).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!as_arm64.contains("built for"), "{as_arm64}");
        sh[18..20].copy_from_slice(&object::elf::EM_RISCV.to_le_bytes());
        let err = check_lambda_binary(&sh, Arch::Arm64).unwrap_err().to_string();
        assert!(err.contains("built for another CPU; Lambda runs arm64"), "{err}");
    }

    #[test]
    fn refuses_a_binary_that_needs_a_newer_glibc() {
        // The machine's `sh` with one of its needed versions renamed to GLIBC_2.99, same length.
        let mut sh = std::fs::read("/bin/sh").unwrap();
        let at = sh
            .windows(11)
            .position(|w| w.starts_with(b"GLIBC_2.") && w[8..10].iter().all(u8::is_ascii_digit) && w[10] == 0)
            .expect("sh needs some GLIBC_2.xx");
        sh[at + 8..at + 10].copy_from_slice(b"99");
        let err = check_lambda_binary(&sh, Arch::X86_64).unwrap_err().to_string();
        assert!(err.contains("needs glibc 2.99, newer than the 2.34"), "{err}");
    }

    #[test]
    fn accepts_a_host_binary_on_this_x86_64_machine() {
        // The machine's own `sh` is an x86_64 glibc ELF; whatever its glibc, the check reads it.
        let sh = std::fs::read("/bin/sh").unwrap();
        let other_cpu = check_lambda_binary(&sh, Arch::Arm64).unwrap_err().to_string();
        assert!(
            other_cpu.contains("built for x86_64, but the function is deployed for arm64"),
            "{other_cpu}"
        );
        match check_lambda_binary(&sh, Arch::X86_64) {
            Ok(BinaryLinkage::Glibc { newest }) => assert!(newest <= GLIBC_LIMIT),
            Ok(BinaryLinkage::Static) => panic!("/bin/sh is dynamically linked"),
            Err(e) => assert!(e.to_string().contains("needs glibc 2."), "{e}"),
        }
    }
}
