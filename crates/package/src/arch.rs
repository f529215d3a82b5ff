//! The CPU a function runs on: Lambda offers x86_64 and arm64 (Graviton).

use object::elf::{EM_AARCH64, EM_X86_64};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Arch {
    #[default]
    X86_64,
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// As Lambda's `Architectures` and `--arch` name it.
    pub fn lambda_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The Rust target that builds for it: static musl, which runs on any Lambda runtime.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }

    pub fn parse(name: &str) -> Option<Arch> {
        Self::ALL.into_iter().find(|arch| arch.lambda_name() == name)
    }

    pub(crate) fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => EM_X86_64,
            Arch::Arm64 => EM_AARCH64,
        }
    }

    pub(crate) fn of_elf_machine(machine: u16) -> Option<Arch> {
        Self::ALL.into_iter().find(|arch| arch.elf_machine() == machine)
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.lambda_name())
    }
}
