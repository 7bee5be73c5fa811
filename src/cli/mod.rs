//! The command line: argument definitions and dispatch. Each command's body lives in its own
//! file beside this one; they print results on stdout and logs on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod adapt;
mod assist;
mod context;
mod engine;
pub mod eval;
mod index;
mod openmp;
mod serve;
pub mod tune;

#[derive(Debug, Parser)]
#[command(
    name = "pith",
    version,
    about = "A language server that puts a small local LLM to work on your own codebase"
)]
pub struct Cli {
    /// Log level or filter (tracing syntax); PITH_LOG overrides the default too.
    #[arg(long, global = true, env = "PITH_LOG")]
    pub log_level: Option<String>,
    /// Model GGUF file, or the name of an installed published model (`qwen2.5-coder-1.5b`);
    /// default: the installed default model.
    #[arg(long, global = true, env = "PITH_MODEL")]
    pub model: Option<PathBuf>,
    /// Model of ask, explanations and code actions (`[chat] model`): `auto`, `same`, a GGUF
    /// file or a published model's name.
    #[arg(long, global = true, env = "PITH_CHAT_MODEL")]
    pub chat_model: Option<String>,
    /// Draft model for speculative decoding of the chat model (`[chat] draft`): `auto`,
    /// `none`, a GGUF file or a published model's name. With `bench engine`: the model's draft.
    #[arg(long, global = true, env = "PITH_DRAFT")]
    pub draft: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the language server over stdio.
    Serve(ServeArgs),
    /// Index a tree and print a summary.
    Index(IndexArgs),
    /// Print the symbols of one file.
    Symbols(SymbolsArgs),
    /// Show the context pith would give the model at a position (or answer a batch of queries).
    Context(ContextArgs),
    /// Complete code at a position with the model (or a batch of queries).
    Complete(CompleteArgs),
    /// Chat with the model, streaming the answer.
    Chat(ChatArgs),
    /// Ask a question about the codebase; the answer cites files and lines.
    Ask(AskArgs),
    /// Install or inspect models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Write a starter `.pith/config.toml` drafted from the workspace.
    Init(InitArgs),
    /// Print the exact prompt that would be sent for a task at a position.
    Prompt(PromptArgs),
    /// Session memory: list, search, delete, clear.
    #[command(subcommand)]
    Memory(MemoryCommand),
    /// Fine-tuning data.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Measure completion quality on the workspace's own code (held-out files, EM and ES).
    Eval(EvalArgs),
    /// Train a LoRA adapter on the workspace from the installed model (CPU; CUDA when present).
    Tune(TuneArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Workspace root (default: the current directory).
    pub root: Option<PathBuf>,
    /// Number of next-line tasks.
    #[arg(long, default_value_t = 50)]
    pub tasks: usize,
    /// Complete from the buffer alone, without retrieved context.
    #[arg(long, conflicts_with = "compare")]
    pub no_context: bool,
    /// LoRA adapter (GGUF) to apply instead of the configured ones.
    #[arg(long)]
    pub lora: Option<PathBuf>,
    /// Context budget in tokens.
    #[arg(long)]
    pub budget_tokens: Option<usize>,
    /// Run with and without context, and with and without the adapter, and print a table.
    #[arg(long)]
    pub compare: bool,
    /// End with one JSON line: {"tasks","em","es","em_no_context","es_no_context","p50_ms",
    /// "p95_ms","model","lora"}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Workspace root (default: the current directory).
    pub root: Option<PathBuf>,
    /// Where to write the adapter (GGUF LoRA).
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this many optimizer steps (default: the epochs decide).
    #[arg(long)]
    pub max_steps: Option<u64>,
    #[arg(long, default_value_t = 1.0)]
    pub epochs: f64,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub rank: u32,
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Training sequence length in tokens.
    #[arg(long, default_value_t = 256)]
    pub seq_len: u32,
    /// Save a checkpoint every N steps.
    #[arg(long, default_value_t = 20)]
    pub checkpoint_every: u64,
    /// Continue from the last checkpoint of a run with the same output.
    #[arg(long)]
    pub resume: bool,
    /// Tasks for the evaluation at the end (0: skip it).
    #[arg(long, default_value_t = 50)]
    pub eval_tasks: usize,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Accepted for clients that append it; stdio is the only transport.
    #[arg(long)]
    pub stdio: bool,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Root of the tree (default: the current directory).
    pub root: Option<PathBuf>,
    /// Extra paths to leave out (gitignore glob syntax), repeatable.
    #[arg(long)]
    pub exclude: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SymbolsArgs {
    pub file: PathBuf,
}

/// A position in a file, or a batch of queries (`../shared/eval/INTERFACE.md`).
#[derive(Debug, Args)]
pub struct PositionArgs {
    /// The edited file (single-query mode).
    pub file: Option<PathBuf>,
    /// 0-based line.
    #[arg(long, default_value_t = 0)]
    pub line: u32,
    /// 0-based column in UTF-16 code units.
    #[arg(long, default_value_t = 0)]
    pub character: u32,
    /// Workspace root (default: found upwards from the file, else the current directory).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// JSON Lines file of queries; prints one JSON line per query.
    #[arg(long)]
    pub batch: Option<PathBuf>,
    /// Context budget in tokens.
    #[arg(long)]
    pub budget_tokens: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ContextArgs {
    #[command(flatten)]
    pub position: PositionArgs,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    #[command(flatten)]
    pub position: PositionArgs,
    /// Complete from the buffer alone, without retrieved context.
    #[arg(long)]
    pub no_context: bool,
    /// Decode without index-guided decoding (`completion.guided = false`).
    #[arg(long)]
    pub no_guide: bool,
    /// Add the prompt's parts and the model's raw output to each line (`"prompt"`, `"raw"`).
    #[arg(long)]
    pub show_prompt: bool,
    /// With `--batch`: take each query's context from this file (another retriever's output,
    /// `{"id","snippets":[{"path","start_line","end_line","text"}]}` per line) instead of
    /// retrieving it, to compare retrievers on completion quality.
    #[arg(long, conflicts_with = "no_context")]
    pub snippets: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    pub message: String,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    pub question: String,
    /// Workspace root (default: the current directory).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Print one JSON object: answer, citations, prompt tokens, time and model.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Install the default model, a published one by name (`qwen2.5-coder-1.5b`: better
    /// completions, about three times slower), or a GGUF from a local path or an http(s) URL.
    Install {
        source: Option<String>,
        /// With the default model, also install qwen2.5-coder-1.5b for ask, explanations and
        /// code actions where this machine has the memory for both (`[chat] model = "auto"`).
        #[arg(long, conflicts_with = "source")]
        with_chat: bool,
    },
    /// Print a GGUF's metadata, by path or published name (default: the configured model).
    Info { path: Option<PathBuf> },
    /// Print where the default model lives.
    Path,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Prompt and generation speed, time to first token cold and warm, peak RSS; with
    /// `--draft`: generation speed with the draft model against without, on chat prompts.
    Engine {
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Generation speed while other programs keep every core busy, with llama.cpp's OpenMP
    /// threads spinning as long as libgomp's default against as long as pith lets them.
    Load {
        #[arg(long)]
        threads: Option<usize>,
        /// Alternating rounds of each; the fastest is kept.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// One raw measurement for `bench load`, in this process: prompt and generation tokens/s
    /// as JSON.
    #[command(hide = true)]
    Raw {
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Cold indexing speed against a bare tree-sitter parse of the same files.
    Index {
        root: PathBuf,
        /// Alternating rounds of each; the fastest is kept, which on a busy machine is the
        /// one least slowed by the neighbours.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Inline completion latency cold and warm through the whole path.
    Complete { root: PathBuf },
    /// Cold and warm completion and chat latency against a model server, to size a box.
    Remote {
        /// The server's base URL, e.g. http://gpu-box:8080 (llama-server, Ollama, vLLM).
        url: String,
        /// `infill` (llama-server's /infill) or `openai` (/v1/completions).
        #[arg(long, default_value = "infill")]
        api: String,
        /// Model name sent to the server (Ollama and vLLM want one).
        #[arg(long, default_value = "")]
        model_name: String,
        /// Name of the environment variable that holds the API key, if the server wants one.
        #[arg(long)]
        api_key_env: Option<String>,
        /// Measured rounds of each; the median is printed.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    pub root: Option<PathBuf>,
    /// Overwrite an existing config.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PromptArgs {
    #[command(flatten)]
    pub position: PositionArgs,
    /// completion, hover, explain, docstring, tests, refactor, fix, ask
    #[arg(long, default_value = "completion")]
    pub task: String,
}

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    List {
        #[arg(long)]
        root: Option<PathBuf>,
    },
    Search {
        query: String,
        #[arg(long)]
        root: Option<PathBuf>,
    },
    Delete {
        id: i64,
        #[arg(long)]
        root: Option<PathBuf>,
    },
    Clear {
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Export Alpaca-format instruction/response JSONL from the codebase, secrets scrubbed.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    openmp::calm();
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    let result = match &cli.command {
        Command::Serve(args) => serve::run(&cli, args),
        Command::Index(args) => index::index(args),
        Command::Symbols(args) => index::symbols(args),
        Command::Context(args) => context::run(args),
        Command::Complete(args) if args.position.batch.is_some() => {
            assist::complete_batch(&cli, args)
        }
        Command::Complete(args) => engine::complete(&cli, args),
        Command::Chat(args) => engine::chat(&cli, args),
        Command::Ask(args) => engine::ask(&cli, args),
        Command::Model(command) => engine::model(&cli, command),
        Command::Bench(command) => match command {
            BenchCommand::Index { root, rounds } => index::bench(root, *rounds),
            BenchCommand::Complete { root } => assist::bench_complete(&cli, root),
            other => engine::bench(&cli, other),
        },
        Command::Init(args) => adapt::init(args),
        Command::Prompt(args) => adapt::prompt(&cli, args),
        Command::Memory(command) => adapt::memory(command),
        Command::Dataset(command) => adapt::dataset(command),
        Command::Eval(args) => eval::eval(&cli, args),
        Command::Tune(args) => tune::tune(&cli, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pith: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr only: in `serve`, stdout carries the protocol.
fn init_logging(level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_new(level.unwrap_or("info"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
