//! Model files: where the default model lives, installing it, and describing a GGUF.

use std::path::PathBuf;

/// File name of the default model (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M).
pub const DEFAULT_MODEL_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
pub const DEFAULT_MODEL_SIZE: u64 = 491_400_064;
pub const DEFAULT_MODEL_SHA256: &str =
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32";

/// `$XDG_CACHE_HOME/pith/models`, else `~/.cache/pith/models`.
pub fn models_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("pith").join("models"))
}

pub fn default_model_path() -> Option<PathBuf> {
    Some(models_dir()?.join(DEFAULT_MODEL_FILE))
}
