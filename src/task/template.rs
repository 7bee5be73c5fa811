//! Prompt templates: text with named `{placeholders}`, checked against the task's known names
//! at config load and rendered when a prompt is built. `{{` and `}}` are literal braces; a brace
//! not around a plain name (`{}`, `{ x }`, code) is literal too, so code in a template is safe.

use super::Task;

/// Placeholders every chat task knows.
const COMMON: &[&str] = &[
    "language", "path", "context", "memories", "examples", "style",
];

/// The placeholders `task`'s template may use.
pub fn placeholders(task: Task) -> Vec<&'static str> {
    let own: &[&str] = match task {
        Task::Completion => return vec!["language", "path", "system", "style", "examples"],
        Task::Hover | Task::Explain | Task::Docstring | Task::Tests => {
            &["symbol", "signature", "code"]
        }
        Task::Refactor => &["symbol", "code", "instruction"],
        Task::Fix => &["symbol", "code", "diagnostics"],
        Task::Ask => &["question"],
    };
    COMMON.iter().chain(own).copied().collect()
}

/// A template that names a placeholder its task does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown placeholder `{{{}}}` (known for {}: {})", .placeholder.as_deref().unwrap_or(""), .task.name(), known(*.task))]
pub struct TemplateError {
    pub placeholder: Option<String>,
    pub task: Task,
}

fn known(task: Task) -> String {
    placeholders(task)
        .iter()
        .map(|p| format!("{{{p}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let bytes = template.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'}' if bytes.get(i + 1) == Some(&bytes[i]) => {
                out.push(Piece::Text(&template[start..=i]));
                i += 2;
                start = i;
            }
            b'{' => {
                let name_len = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                if name_len > 0 && bytes.get(i + 1 + name_len) == Some(&b'}') {
                    out.push(Piece::Text(&template[start..i]));
                    out.push(Piece::Placeholder(&template[i + 1..i + 1 + name_len]));
                    i += name_len + 2;
                    start = i;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.push(Piece::Text(&template[start..]));
    out
}

/// Checks that every placeholder of `template` is known to `task`.
pub fn check(template: &str, task: Task) -> Result<(), TemplateError> {
    let allowed = placeholders(task);
    for piece in pieces(template) {
        if let Piece::Placeholder(name) = piece
            && !allowed.contains(&name)
        {
            return Err(TemplateError {
                placeholder: Some(name.to_string()),
                task,
            });
        }
    }
    Ok(())
}

/// Renders `template`, asking `value` for each placeholder; unknown names render empty (they
/// were rejected at load already).
pub fn render(template: &str, value: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    for piece in pieces(template) {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Placeholder(name) => out.push_str(&value(name)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_and_escapes() {
        let out = render("{{x}} {symbol}: fn f() {} { a } {nope", &|name| {
            format!("<{name}>")
        });
        assert_eq!(out, "{x} <symbol>: fn f() {} { a } {nope");
    }

    #[test]
    fn check_rejects_unknown_and_accepts_known() {
        assert!(check("{question} {context}", Task::Ask).is_ok());
        let error = check("{question} {symbol}", Task::Ask).unwrap_err();
        assert_eq!(error.placeholder.as_deref(), Some("symbol"));
        assert!(check("{{symbol}}", Task::Ask).is_ok());
    }
}
