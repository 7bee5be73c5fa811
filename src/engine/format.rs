//! Prompt layouts: fill-in-the-middle formats detected from a model's vocabulary, and a plain
//! chat layout for models without a usable chat template.
//!
//! A layout is a list of [`Piece`]s so that special tokens are inserted by name while user text
//! is tokenized as plain text (a file that happens to contain `<|fim_prefix|>` cannot inject a
//! control token). Context files come first: they change least between keystrokes, so they form
//! a KV-cache prefix that the next request reuses.

use super::{ContextFile, Message, Role};

/// The FIM conventions pith knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FimLayout {
    /// Qwen2.5-Coder: `<|fim_prefix|>`…, repo-level `<|repo_name|>`/`<|file_sep|>`.
    Qwen,
    /// StarCoder2: `<fim_prefix>`…, repo-level `<repo_name>`/`<file_sep>`.
    StarCoder2,
    /// CodeLlama: `▁<PRE>`, `▁<SUF>`, `▁<MID>`.
    CodeLlama,
    /// DeepSeek-Coder: `<｜fim▁begin｜>`, `<｜fim▁hole｜>`, `<｜fim▁end｜>`.
    DeepSeek,
}

/// A part of a laid-out prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The text of one special token.
    Special(&'static str),
    /// Plain text, never parsed for special tokens.
    Text(String),
}

impl FimLayout {
    /// Every layout, in detection order.
    pub const ALL: [FimLayout; 4] = [
        FimLayout::Qwen,
        FimLayout::StarCoder2,
        FimLayout::CodeLlama,
        FimLayout::DeepSeek,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FimLayout::Qwen => "qwen2.5-coder",
            FimLayout::StarCoder2 => "starcoder2",
            FimLayout::CodeLlama => "codellama",
            FimLayout::DeepSeek => "deepseek-coder",
        }
    }

    /// (prefix, suffix, middle) token texts.
    pub fn fim_tokens(self) -> [&'static str; 3] {
        match self {
            FimLayout::Qwen => ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
            FimLayout::StarCoder2 => ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
            FimLayout::CodeLlama => ["▁<PRE>", "▁<SUF>", "▁<MID>"],
            FimLayout::DeepSeek => ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
        }
    }

    /// (repo name, file separator) token texts for repo-level layouts.
    fn repo_tokens(self) -> Option<[&'static str; 2]> {
        match self {
            FimLayout::Qwen => Some(["<|repo_name|>", "<|file_sep|>"]),
            FimLayout::StarCoder2 => Some(["<repo_name>", "<file_sep>"]),
            _ => None,
        }
    }

    /// Special tokens that end a completion besides the model's end-of-generation tokens: a
    /// model that starts a new file or pads is done with the middle.
    pub fn stop_tokens(self) -> &'static [&'static str] {
        match self {
            FimLayout::Qwen => &[
                "<|fim_pad|>",
                "<|file_sep|>",
                "<|repo_name|>",
                "<|fim_prefix|>",
                "<|endoftext|>",
            ],
            FimLayout::StarCoder2 => &["<file_sep>", "<fim_pad>", "<fim_prefix>", "<|endoftext|>"],
            FimLayout::CodeLlama => &["▁<EOT>", "▁<PRE>"],
            FimLayout::DeepSeek => &["<｜fim▁begin｜>", "<｜end▁of▁sentence｜>"],
        }
    }

    /// The first layout whose three FIM tokens are all single special tokens in the vocabulary.
    pub fn detect(is_special_token: impl Fn(&str) -> bool) -> Option<FimLayout> {
        Self::ALL
            .into_iter()
            .find(|layout| layout.fim_tokens().iter().all(|t| is_special_token(t)))
    }

    /// Lays out a FIM request. With context files, repo-level layouts name the project and each
    /// file; the others put the files in the prefix as commented sections.
    pub fn layout(
        self,
        repo: &str,
        context: &[ContextFile],
        path: &str,
        prefix: &str,
        suffix: &str,
    ) -> Vec<Piece> {
        let [pre, suf, mid] = self.fim_tokens();
        let mut pieces = Vec::new();
        let mut prefix_text = String::new();
        match self.repo_tokens() {
            Some([repo_token, sep]) if !context.is_empty() => {
                pieces.push(Piece::Special(repo_token));
                pieces.push(Piece::Text(format!("{repo}\n")));
                for file in context {
                    pieces.push(Piece::Special(sep));
                    pieces.push(Piece::Text(format!("{}\n{}\n", file.path, file.text)));
                }
                pieces.push(Piece::Special(sep));
                pieces.push(Piece::Text(format!("{path}\n")));
            }
            _ => prefix_text.push_str(&commented_context(context, path)),
        }
        prefix_text.push_str(prefix);
        pieces.push(Piece::Special(pre));
        pieces.push(Piece::Text(prefix_text));
        pieces.push(Piece::Special(suf));
        pieces.push(Piece::Text(suffix.to_string()));
        pieces.push(Piece::Special(mid));
        pieces
    }
}

/// Context files as the start of the prefix of `path`: each under a comment (in `path`'s
/// language: it is all one file to the model) that names it, then a comment naming `path`.
/// Empty without context.
pub fn commented_context(context: &[ContextFile], path: &str) -> String {
    let mut text = String::new();
    let comment = line_comment(path);
    for file in context {
        text.push_str(&format!("{comment} {}\n{}\n", file.path, file.text));
    }
    if !context.is_empty() {
        text.push_str(&format!("{comment} {path}\n"));
    }
    text
}

fn line_comment(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "py" | "sh" | "rb" | "toml" | "yaml" | "yml" | "r" | "pl" => "#",
        "lua" | "sql" | "hs" => "--",
        _ => "//",
    }
}

/// Joins pieces into one string (for servers that take FIM as raw text).
pub fn render(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Special(s) => *s,
            Piece::Text(t) => t.as_str(),
        })
        .collect()
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// The chat layout used when the model has no chat template llama.cpp can apply.
pub fn plain_chat(messages: &[Message]) -> String {
    let mut out = String::new();
    for m in messages {
        let who = match m.role {
            Role::System => "System",
            Role::User => "User",
            Role::Assistant => "Assistant",
        };
        out.push_str(&format!("{who}: {}\n\n", m.content));
    }
    out.push_str("Assistant:");
    out
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(layout: FimLayout, context: &[(&str, &str)], expect: Expect) {
        let context: Vec<ContextFile> = context
            .iter()
            .map(|(p, t)| ContextFile {
                path: p.to_string(),
                text: t.to_string(),
            })
            .collect();
        let pieces = layout.layout("proj", &context, "src/a.py", "def f():\n    ", "\n");
        expect.assert_eq(&render(&pieces));
    }

    #[test]
    fn qwen_repo_level_layout_puts_context_first() {
        check(
            FimLayout::Qwen,
            &[("src/b.py", "X = 1")],
            expect![[r#"
                <|repo_name|>proj
                <|file_sep|>src/b.py
                X = 1
                <|file_sep|>src/a.py
                <|fim_prefix|>def f():
                    <|fim_suffix|>
                <|fim_middle|>"#]],
        );
        check(
            FimLayout::Qwen,
            &[],
            expect![[r#"
                <|fim_prefix|>def f():
                    <|fim_suffix|>
                <|fim_middle|>"#]],
        );
    }

    #[test]
    fn other_layouts() {
        check(
            FimLayout::StarCoder2,
            &[("b.rs", "fn g() {}")],
            expect![[r#"
                <repo_name>proj
                <file_sep>b.rs
                fn g() {}
                <file_sep>src/a.py
                <fim_prefix>def f():
                    <fim_suffix>
                <fim_middle>"#]],
        );
        check(
            FimLayout::DeepSeek,
            &[("b.py", "X = 1")],
            expect![[r#"
                <｜fim▁begin｜># b.py
                X = 1
                # src/a.py
                def f():
                    <｜fim▁hole｜>
                <｜fim▁end｜>"#]],
        );
        check(
            FimLayout::CodeLlama,
            &[],
            expect![[r#"
                ▁<PRE>def f():
                    ▁<SUF>
                ▁<MID>"#]],
        );
    }

    #[test]
    fn detects_layout_from_vocabulary() {
        let vocab = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"];
        assert_eq!(
            FimLayout::detect(|t| vocab.contains(&t)),
            Some(FimLayout::StarCoder2)
        );
        assert_eq!(FimLayout::detect(|_| false), None);
    }

    #[test]
    fn plain_chat_ends_with_assistant_turn() {
        let text = plain_chat(&[Message {
            role: Role::User,
            content: "hi".into(),
        }]);
        assert_eq!(text, "User: hi\n\nAssistant:");
    }
}
