//! pith: a language server that gives a small local LLM the context of your own codebase.
//!
//! The crate is one library plus a thin binary. The core (`syntax`, `dirs`, `scrub`, `terms`,
//! `task`, `lang`, `engine`, `memory`, `text`, `index`, `retrieve`, `config`, `prompt`, `dataset`,
//! `assist`) knows nothing of LSP; `server` translates the protocol into calls on the core; `cli`
//! is the command line. `ARCHITECTURE.md` gives the layer order, which `tests/layers.rs` enforces.
#![deny(clippy::print_stdout)]

pub mod assist;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod dirs;
pub mod engine;
pub mod index;
pub mod lang;
pub mod memory;
pub mod prompt;
pub mod retrieve;
pub mod scrub;
pub mod server;
pub mod syntax;
pub mod task;
pub mod terms;
pub mod text;
