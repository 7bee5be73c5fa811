//! Where each KV-cache slot of the embedded engine is kept between runs, so that a new process
//! does not pay again for a prompt the last one already decoded: the chat slot's system prompt
//! and project prompt for the next `pith ask`, the completion slot's file for the first
//! completion after a restart. The files are named by everything that makes a cache valid —
//! the model file, its adapters and the slot size — so a stale one is never loaded; one
//! llama.cpp cannot read is deleted and the slot starts empty.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::EngineSettings;

/// The files of one engine's slots.
#[derive(Debug, Clone)]
pub struct KvFiles {
    dir: PathBuf,
    key: String,
}

/// Size and modification time of a file, which change when it is replaced.
fn identity(path: &Path) -> String {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let meta = std::fs::metadata(&canonical).ok();
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}|{}|{modified}",
        canonical.display(),
        meta.map_or(0, |m| m.len())
    )
}

impl KvFiles {
    /// The files for the model at `model` with `settings` (`None` when `settings.kv_dir` is
    /// not set).
    pub fn new(model: &Path, settings: &EngineSettings) -> Option<Self> {
        let dir = settings.kv_dir.clone()?;
        let mut parts = vec![identity(model), settings.context_size.to_string()];
        for lora in &settings.lora {
            parts.push(format!("{}*{}", identity(&lora.path), lora.scale));
        }
        let hash = xxhash_rust::xxh3::xxh3_64(parts.join("\n").as_bytes());
        let stem = model
            .file_stem()
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
        Some(Self {
            dir,
            key: format!("{stem}-{hash:016x}"),
        })
    }

    /// The file of slot `seq`.
    pub fn path(&self, seq: usize) -> PathBuf {
        self.dir.join(format!("{}-{seq}.kv", self.key))
    }

    /// A temporary file beside [`Self::path`], renamed over it once written, so that a reader
    /// never sees half a file.
    pub fn partial(&self, seq: usize) -> PathBuf {
        self.dir
            .join(format!("{}-{seq}.kv.{}", self.key, std::process::id()))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LoraSettings;

    #[test]
    fn the_key_changes_with_the_model_its_adapters_and_the_slot_size() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"one").unwrap();
        let settings = EngineSettings {
            kv_dir: Some(dir.path().join("kv")),
            ..EngineSettings::default()
        };
        let key = |settings: &EngineSettings| KvFiles::new(&model, settings).unwrap().path(1);
        let base = key(&settings);
        assert!(base.starts_with(dir.path().join("kv")));
        assert!(base.to_string_lossy().ends_with("-1.kv"), "{base:?}");
        assert_eq!(key(&settings), base, "stable");
        let smaller = EngineSettings {
            context_size: 1024,
            ..settings.clone()
        };
        assert_ne!(key(&smaller), base);
        let adapted = EngineSettings {
            lora: vec![LoraSettings {
                path: model.clone(),
                scale: 1.0,
            }],
            ..settings.clone()
        };
        assert_ne!(key(&adapted), base);
        std::fs::write(&model, b"other weights").unwrap();
        assert_ne!(key(&settings), base, "a replaced model file");
        let off = EngineSettings {
            kv_dir: None,
            ..settings
        };
        assert!(KvFiles::new(&model, &off).is_none());
    }
}
