//! What the model is asked to do: the `Task` list, the built-in prompt texts of each task
//! (`defaults`) and the template syntax their texts use (`template`). Plain data below `config`
//! and `prompt`: `config` checks and defaults the user's templates with it, `prompt` renders them.

pub mod defaults;
pub mod template;

use serde::{Deserialize, Serialize};

/// What the model is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Completion,
    Hover,
    Explain,
    Docstring,
    Tests,
    Refactor,
    Fix,
    Ask,
}

impl Task {
    pub const ALL: [Task; 8] = [
        Task::Completion,
        Task::Hover,
        Task::Explain,
        Task::Docstring,
        Task::Tests,
        Task::Refactor,
        Task::Fix,
        Task::Ask,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Task::Completion => "completion",
            Task::Hover => "hover",
            Task::Explain => "explain",
            Task::Docstring => "docstring",
            Task::Tests => "tests",
            Task::Refactor => "refactor",
            Task::Fix => "fix",
            Task::Ask => "ask",
        }
    }
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Task::ALL.iter().map(|t| t.name()).collect();
                format!("unknown task `{s}` (one of: {})", names.join(", "))
            })
    }
}
