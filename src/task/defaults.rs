//! The built-in prompt texts: the system prompt and one template per task. Written for a
//! 0.5B-parameter model: short, concrete, the instruction last, right before the answer.

use super::Task;

pub const SYSTEM: &str = "You are a coding assistant working inside the user's own project. \
Answer briefly and precisely. Use the project's code shown to you; do not invent APIs.";

/// The built-in template of `task`.
pub fn template(task: Task) -> &'static str {
    match task {
        // The FIM instructions file: empty by default, so a plain FIM prompt is what the model
        // was trained on; style rules and examples turn it on.
        Task::Completion => "{style}",
        Task::Hover => {
            "{context}{memories}In one or two sentences, explain what `{symbol}` does.\n\n```{language}\n{code}\n```"
        }
        Task::Explain => {
            "{context}{memories}Explain this {language} code step by step, briefly.\n\n```{language}\n{code}\n```"
        }
        Task::Docstring => {
            "{context}{examples}Write the docstring for `{symbol}`. Reply with the docstring text only, no quotes or comment markers.\n\n```{language}\n{code}\n```"
        }
        Task::Tests => {
            "{context}{examples}Write unit tests for `{symbol}`. Reply with one {language} code block.\n\n```{language}\n{code}\n```"
        }
        Task::Refactor => {
            "{context}{examples}Rewrite this {language} code: {instruction}. Reply with the new code in one code block.\n\n```{language}\n{code}\n```"
        }
        Task::Fix => {
            "{context}Fix this {language} code.\nProblems:\n{diagnostics}\nReply with the corrected code in one code block.\n\n```{language}\n{code}\n```"
        }
        Task::Ask => {
            "{context}{memories}Question about this project: {question}\nCite files as path:line."
        }
    }
}
