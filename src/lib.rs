//! pith: a language server that gives a small local LLM the context of your own codebase.
//!
//! The crate is one library plus a thin binary. The core (`text`, `lang`, `index`, `retrieve`,
//! `prompt`, `engine`, `config`, `memory`, `dataset`, `terms`) knows nothing of LSP; `server` translates
//! the protocol into calls on the core; `cli` is the command line. See `ARCHITECTURE.md`.
#![deny(clippy::print_stdout)]

pub mod assist;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod engine;
pub mod index;
pub mod lang;
pub mod memory;
pub mod prompt;
pub mod retrieve;
pub mod server;
pub mod terms;
pub mod text;
