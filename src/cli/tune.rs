//! `pith tune`: trains a LoRA adapter on the workspace from the installed GGUF model, offline.
//!
//! The Rust side prepares the data and runs the Python side. Data: `pith dataset export`'s
//! records (scrubbed, train split) and the scrubbed text of each training file, from every file
//! except those `pith eval` holds out (session memory is left out: it may quote held-out
//! code). The Python side (`scripts/finetune/tune.py`, embedded in the binary) runs in a
//! virtual environment created on first use under pith's cache from the pinned
//! `scripts/finetune/requirements.txt` (torch from the package index: about 5.6 GB on x86-64).
//! It loads the GGUF with transformers, trains LoRA on the attention's q/v projections with
//! checkpoints, and writes a GGUF LoRA that llama.cpp loads. At the end both the base model and
//! the adapter are evaluated on the held-out files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::assist::{canonical_root, load_config};
use super::eval;
use super::{Cli, TuneArgs};

const SCRIPT: &str = include_str!("../../scripts/finetune/tune.py");
const REQUIREMENTS: &str = include_str!("../../scripts/finetune/requirements.txt");
/// Free space the environment needs while pip installs it (torch's CUDA wheels included).
const VENV_NEEDS_BYTES: u64 = 8 << 30;

/// Where the training environment lives: `PITH_TUNE_VENV`, else
/// `<cache>/pith/tune/venv-<hash of the requirements>`.
pub fn venv_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PITH_TUNE_VENV").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let hash = hex::encode(Sha256::digest(REQUIREMENTS.as_bytes()));
    Ok(crate::dirs::cache_dir()
        .context("cannot find a cache directory (set HOME or XDG_CACHE_HOME)")?
        .join("tune")
        .join(format!("venv-{}", &hash[..12])))
}

/// Free bytes on the file system holding `path` (or its nearest existing ancestor).
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = path.ancestors().find(|p| p.exists())?;
    let name = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a valid C string and `stat` a writable statvfs.
    let rc = unsafe { libc::statvfs(name.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Refuses to start installing the environment where it cannot fit.
fn check_space(parent: &Path, free: Option<u64>) -> anyhow::Result<()> {
    if let Some(free) = free
        && free < VENV_NEEDS_BYTES
    {
        anyhow::bail!(
            "not enough disk space for the training environment in {}: {:.1} GB free, about {} GB \
             needed (torch alone is about 5.6 GB installed); free some space or set PITH_TUNE_VENV \
             to a directory on a larger disk",
            parent.display(),
            free as f64 / 1e9,
            VENV_NEEDS_BYTES >> 30
        );
    }
    Ok(())
}

/// The environment's Python, created on first use.
fn ensure_venv() -> anyhow::Result<PathBuf> {
    let dir = venv_dir()?;
    let python = dir.join("bin").join("python");
    if python.exists() && dir.join("pith-ready").exists() {
        return Ok(python);
    }
    let parent = dir
        .parent()
        .context("the environment needs a parent directory")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    check_space(parent, free_bytes(parent))?;
    eprintln!(
        "pith tune: creating the Python training environment in {} from pinned requirements \
         (torch, transformers, peft: about 5.6 GB; minutes with a fast connection)",
        dir.display()
    );
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&partial)
        .status()
        .context("cannot run python3 (needed to create the training environment)")?;
    anyhow::ensure!(
        status.success(),
        "python3 -m venv {} failed (on Debian: apt-get install python3-venv)",
        partial.display()
    );
    let requirements = partial.join("requirements.txt");
    std::fs::write(&requirements, REQUIREMENTS)?;
    let status = Command::new(partial.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .status()
        .context("cannot run pip in the new environment")?;
    if !status.success() {
        let free = free_bytes(parent).map_or(String::new(), |f| {
            format!(" ({:.1} GB free now)", f as f64 / 1e9)
        });
        anyhow::bail!(
            "installing the training environment failed{free}; see pip's output above. It is \
             retried from scratch on the next run."
        );
    }
    // A venv's python is a link to the system one: the renamed directory keeps working for
    // `python -m` and scripts run by path.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&partial, &dir)
        .with_context(|| format!("moving {} to {}", partial.display(), dir.display()))?;
    std::fs::write(dir.join("pith-ready"), REQUIREMENTS)?;
    Ok(python)
}

/// The training data of `root` in `dir`: the export's files and `code.jsonl`.
fn write_data(root: &Path, config: &crate::config::Config, dir: &Path) -> anyhow::Result<usize> {
    let files = crate::dataset::index_workspace(root, &config.index);
    let relatives: Vec<String> = files
        .iter()
        .map(|f| eval::relative(root, &f.path))
        .collect();
    let held = eval::held_out(&relatives);
    let train: Vec<_> = files
        .iter()
        .zip(&relatives)
        .filter(|(_, path)| !held.contains(*path))
        .map(|(file, _)| file.clone())
        .collect();
    anyhow::ensure!(
        !train.is_empty(),
        "no files to train on in {} ({} Python/Rust files, {} held out for evaluation)",
        root.display(),
        files.len(),
        held.len()
    );
    let summary = crate::dataset::export(
        root,
        &train,
        &[],
        dir,
        &crate::dataset::ExportOptions::default(),
    )?;
    let mut code = String::new();
    let mut redacted = summary.redactions.len();
    for file in &train {
        let (text, findings) = crate::scrub::scrub_file(&file.path, &file.text);
        redacted += findings.len();
        code.push_str(
            &serde_json::json!({"path": eval::relative(root, &file.path), "text": text})
                .to_string(),
        );
        code.push('\n');
    }
    std::fs::write(dir.join("code.jsonl"), code)?;
    eprintln!(
        "pith tune: training on {} of {} files ({} held out for `pith eval`): {} records, {} \
         secrets redacted; data in {}",
        train.len(),
        files.len(),
        held.len(),
        summary.train,
        redacted,
        dir.display()
    );
    Ok(train.len())
}

/// `pith tune [ROOT] --out ADAPTER.gguf`.
pub fn tune(cli: &Cli, args: &TuneArgs) -> anyhow::Result<()> {
    let root = canonical_root(args.root.as_ref())?;
    let config = load_config(&root)?;
    let model = crate::engine::llama::resolve_model(&super::assist::engine_settings(cli, &config))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = std::path::absolute(&args.out)?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let info = crate::engine::gguf::inspect(&model).map_err(|e| anyhow::anyhow!("{e}"))?;
    let architecture = info.architecture().unwrap_or("qwen2").to_string();
    let base_name = info
        .metadata
        .get("general.name")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let cache = eval::cache_dir(&root)?;
    let data = cache.join("tune-data");
    let work = cache.join("tune-work");
    write_data(&root, &config, &data)?;
    let python = ensure_venv()?;
    let script = venv_dir()?.join("pith-tune.py");
    std::fs::write(&script, SCRIPT).with_context(|| format!("writing {}", script.display()))?;
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--work")
        .arg(&work)
        .arg("--out")
        .arg(&out)
        .args(["--arch", &architecture])
        .args(["--epochs", &args.epochs.to_string()])
        .args(["--rank", &args.rank.to_string()])
        .args(["--lr", &args.lr.to_string()])
        .args(["--seq-len", &args.seq_len.to_string()])
        .args(["--checkpoint-every", &args.checkpoint_every.to_string()])
        // Offline: the model comes from the GGUF, never from a hub.
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .env("TOKENIZERS_PARALLELISM", "false");
    if let Some(name) = &base_name {
        command.args(["--base-name", name]);
    }
    if let Some(steps) = args.max_steps {
        command.args(["--max-steps", &steps.to_string()]);
    }
    if args.resume {
        command.arg("--resume");
    }
    // Ctrl-C reaches the trainer too (same process group): it saves a checkpoint and exits
    // 130, and this process waits for it rather than dying first.
    // SAFETY: setting a signal disposition to SIG_IGN and back installs no handler code.
    let previous = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let status = command.status();
    unsafe { libc::signal(libc::SIGINT, previous) };
    let status = status.with_context(|| format!("cannot run {}", python.display()))?;
    match status.code() {
        Some(0) => {}
        Some(130) | None => anyhow::bail!(
            "training was interrupted; the last checkpoint is kept in {}: run the same command \
             with --resume to continue",
            work.display()
        ),
        Some(code) => anyhow::bail!("training failed (exit status {code}); see the output above"),
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "adapter: {}", out.display())?;
    if args.eval_tasks == 0 {
        return Ok(());
    }
    drop(stdout);
    let tasks = eval::tasks_for(&root, &config, args.eval_tasks)?;
    let base = eval::run(
        cli,
        &root,
        eval::variant(&config, true, None),
        &tasks,
        "tune-base",
    )?;
    let tuned = eval::run(
        cli,
        &root,
        eval::variant(&config, true, Some(&out)),
        &tasks,
        "tune-adapter",
    )?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "held-out evaluation, {} tasks:\n  base     EM {:.3} ES {:.3}\n  adapter  EM {:.3} ES {:.3}",
        tasks.len(),
        base.em,
        base.es,
        tuned.em,
        tuned.es
    )?;
    writeln!(
        stdout,
        "use it: [model] lora = [{{ path = {:?} }}]",
        out.display().to_string()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_refused_before_installing() {
        let error = check_space(Path::new("/data"), Some(1 << 30)).unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("not enough disk space") && message.contains("/data"),
            "{message}"
        );
        assert!(message.contains("PITH_TUNE_VENV"), "{message}");
        check_space(Path::new("/data"), Some(20 << 30)).unwrap();
        check_space(Path::new("/data"), None).unwrap();
        assert!(free_bytes(Path::new("/")).is_some_and(|f| f > 0));
    }
}
