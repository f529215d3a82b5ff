//! The deployment zip: one file, `bootstrap`, stored so that equal code gives equal bytes.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::{Arch, check_lambda_binary};

/// Lambda's limit for a zip uploaded directly in the API call (not through S3).
pub const DIRECT_UPLOAD_LIMIT: usize = 50 * 1024 * 1024;

/// A zip ready for Lambda, with its hash in Lambda's `CodeSha256` form.
#[derive(Clone)]
pub struct Artifact {
    pub bytes: Vec<u8>,
    /// Base64 of the SHA-256 of `bytes`, as Lambda reports `CodeSha256`.
    pub code_sha256: String,
    /// The CPU its `bootstrap` is built for.
    pub arch: Arch,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifact")
            .field("len", &self.bytes.len())
            .field("code_sha256", &self.code_sha256)
            .field("arch", &self.arch)
            .finish()
    }
}

impl Artifact {
    /// A zip's bytes, hashed as Lambda hashes them; refused over the direct-upload limit.
    pub fn new(bytes: Vec<u8>, arch: Arch) -> Result<Self> {
        if bytes.len() > DIRECT_UPLOAD_LIMIT {
            bail!(
                "the zip is {} bytes, over Lambda's {DIRECT_UPLOAD_LIMIT}-byte limit for a direct upload; build with the release profile",
                bytes.len()
            );
        }
        let code_sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
        Ok(Self { bytes, code_sha256, arch })
    }

    pub fn write_to(&self, path: &Path) -> Result<()> {
        std::fs::write(path, &self.bytes).with_context(|| format!("writing {}", path.display()))
    }
}

/// Zips `binary`, built for `arch`, as `bootstrap` with a fixed timestamp (1980-01-01, zip's
/// epoch) and mode 0755.
pub fn zip_bootstrap(binary: &[u8], arch: Arch) -> Result<Artifact> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(DateTime::default())
        .unix_permissions(0o755);
    writer.start_file("bootstrap", options).context("starting the zip entry")?;
    writer.write_all(binary).context("compressing bootstrap")?;
    let bytes = writer.finish().context("finishing the zip")?.into_inner();
    Artifact::new(bytes, arch)
}

/// Lambda's limit for the unzipped code of a function.
pub const UNZIPPED_LIMIT: u64 = 250 * 1024 * 1024;

/// Reads a zip made by `tokendeploy package` (for `up --zip`) and checks what it holds,
/// reading no more than Lambda would take: a zip bomb is refused, not inflated.
pub fn read_zip(path: &Path, arch: Arch) -> Result<Artifact> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("--zip {shown}: no such file"),
        _ => anyhow::anyhow!("--zip {shown}: {e}"),
    })?;
    if !metadata.is_file() {
        bail!("--zip {shown} is not a file");
    }
    if metadata.len() > DIRECT_UPLOAD_LIMIT as u64 {
        bail!(
            "--zip {shown} is {} bytes, over Lambda's {DIRECT_UPLOAD_LIMIT}-byte limit for a direct upload",
            metadata.len()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading --zip {shown}"))?;
    let remake = "make it with `tokendeploy package --out PATH`";
    let mut archive = ZipArchive::new(Cursor::new(&bytes))
        .map_err(|_| anyhow::anyhow!("--zip {shown} is not a zip file; {remake}"))?;
    let declared: u64 = (0..archive.len())
        .filter_map(|i| archive.by_index_raw(i).ok().map(|entry| entry.size()))
        .fold(0u64, u64::saturating_add);
    if declared > UNZIPPED_LIMIT {
        bail!("--zip {shown} unzips to {declared} bytes, over Lambda's {UNZIPPED_LIMIT}-byte limit");
    }
    let index = archive
        .index_for_name("bootstrap")
        .ok_or_else(|| anyhow::anyhow!("--zip {shown} has no `bootstrap` at its top; {remake}"))?;
    let method = archive.by_index_raw(index).map(|entry| entry.compression()).ok();
    let mut entry = archive.by_index(index).map_err(|_| match method {
        Some(method) if !matches!(method, CompressionMethod::Stored | CompressionMethod::Deflated) => anyhow::anyhow!(
            "bootstrap in --zip {shown} is compressed with {method}; Lambda unzips only stored or deflated entries: {remake}"
        ),
        _ => anyhow::anyhow!("--zip {shown}: bootstrap cannot be unzipped (damaged); {remake}"),
    })?;
    if entry.unix_mode().is_some_and(|mode| mode & 0o111 == 0) {
        bail!("bootstrap in --zip {shown} is not executable; Lambda could not start it");
    }
    // The sizes in a zip's directory are claims: read one byte past the limit to catch a lie.
    let mut binary = Vec::new();
    (&mut entry)
        .take(UNZIPPED_LIMIT + 1)
        .read_to_end(&mut binary)
        .map_err(|_| anyhow::anyhow!("--zip {shown}: bootstrap cannot be unzipped (damaged); {remake}"))?;
    if binary.len() as u64 > UNZIPPED_LIMIT {
        bail!("bootstrap in --zip {shown} unzips to more than Lambda's {UNZIPPED_LIMIT}-byte limit");
    }
    drop(entry);
    check_lambda_binary(&binary, arch).with_context(|| format!("checking bootstrap in --zip {shown}"))?;
    Artifact::new(bytes, arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_binary_gives_the_same_bytes_and_hash() {
        let first = zip_bootstrap(b"binary", Arch::X86_64).unwrap();
        let second = zip_bootstrap(b"binary", Arch::X86_64).unwrap();
        assert_eq!(first.bytes, second.bytes);
        assert_eq!(first.code_sha256, second.code_sha256);
        assert_ne!(zip_bootstrap(b"other", Arch::X86_64).unwrap().code_sha256, first.code_sha256);
    }

    #[test]
    fn stores_bootstrap_executable_with_a_fixed_time() {
        let artifact = zip_bootstrap(b"binary", Arch::X86_64).unwrap();
        let mut archive = ZipArchive::new(Cursor::new(&artifact.bytes)).unwrap();
        assert_eq!(archive.len(), 1);
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name(), "bootstrap");
        assert_eq!(entry.unix_mode().unwrap() & 0o777, 0o755);
        let time = entry.last_modified().unwrap();
        assert_eq!((time.year(), time.month(), time.day()), (1980, 1, 1));
    }

    #[test]
    fn hash_is_base64_sha256_as_lambda_reports_it() {
        let artifact = zip_bootstrap(b"x", Arch::X86_64).unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&artifact.bytes));
        assert_eq!(artifact.code_sha256, expected);
        assert_eq!(artifact.code_sha256.len(), 44);
    }

    #[test]
    fn read_zip_refuses_a_zip_without_bootstrap_and_a_non_zip() {
        let dir = std::env::temp_dir().join(format!("tokendeploy-zip-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_zip = dir.join("not.zip");
        std::fs::write(&not_zip, b"hello").unwrap();
        assert!(read_zip(&not_zip, Arch::X86_64).unwrap_err().to_string().contains("is not a zip file"));

        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer.start_file("handler", SimpleFileOptions::default()).unwrap();
        writer.write_all(b"x").unwrap();
        let other = dir.join("other.zip");
        std::fs::write(&other, writer.finish().unwrap().into_inner()).unwrap();
        assert!(read_zip(&other, Arch::X86_64).unwrap_err().to_string().contains("has no `bootstrap`"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
