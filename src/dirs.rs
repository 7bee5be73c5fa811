//! Where pith keeps files outside the workspace: the cache directory (models, session memory,
//! generated explanations) and the user's config directory (`config.toml`, query overrides).
//! The one place that reads `XDG_CACHE_HOME`, `XDG_CONFIG_HOME` and `HOME` for them.

use std::path::PathBuf;

/// `$XDG_CACHE_HOME/pith`, else `~/.cache/pith`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("pith"))
}

/// Where the server writes generated markdown (explanations) to show it:
/// `$XDG_CACHE_HOME/pith/explanations` when that is absolute, else `~/.cache/pith/explanations`,
/// else the same under the temporary directory, so there is always a place.
pub fn explanations_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("pith").join("explanations")
}

/// `$XDG_CONFIG_HOME/pith`, else `~/.config/pith`.
pub fn config_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("pith"))
}
