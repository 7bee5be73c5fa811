//! Index-guided decoding, pith's half (the engine's half is `engine::guide`): which
//! identifiers the model may write, from what the index knows.
//!
//! - [`CodeGuide`] (completion): after `receiver.` or `Type::`, where the index knows every
//!   member of what the receiver denotes (`retrieve::receivers`), the name must be one of
//!   them; a bare identifier that starts a name in scope gets a small bias, and a new name stays
//!   possible.
//! - [`AnswerGuide`] (ask, explain, actions): inside `inline code`, each identifier must be a
//!   name that the index, the excerpts shown or the question hold.
//!
//! Both judge a token by the text it would add to the current line, with strings and comments
//! left alone, so a token that spans a member access (`.norm(`) is judged whole.

use std::collections::HashSet;
use std::sync::Arc;

use crate::engine::{Guide, Prompt, Rule};
use crate::lang::Lang;
use crate::retrieve::receivers::Receivers;

/// Logit bonus for a token that starts or continues a name in scope at a bare identifier.
pub const SCOPE_BIAS: f32 = 0.0;

/// A sorted list of names with prefix search.
#[derive(Debug, Clone, Default)]
pub struct Names(Arc<[String]>);

impl Names {
    pub fn new(mut names: Vec<String>) -> Self {
        names.sort();
        names.dedup();
        Names(names.into())
    }

    fn from_sorted(names: Arc<[String]>) -> Self {
        Names(names)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|n| n.as_str().cmp(name)).is_ok()
    }

    pub fn has_prefix(&self, prefix: &str) -> bool {
        let at = self.0.partition_point(|n| n.as_str() < prefix);
        self.0.get(at).is_some_and(|n| n.starts_with(prefix))
    }

    /// The rest of each name that starts with `prefix` (non-empty rests only).
    fn rests(&self, prefix: &str) -> Vec<String> {
        let at = self.0.partition_point(|n| n.as_str() < prefix);
        self.0[at..]
            .iter()
            .take_while(|n| n.starts_with(prefix))
            .filter(|n| n.len() > prefix.len())
            .map(|n| n[prefix.len()..].to_string())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An identifier found on a line, with the receiver written before it (`v` in `v.norm`).
#[derive(Debug, PartialEq, Eq)]
struct Ident {
    start: usize,
    end: usize,
    receiver: Option<(usize, usize)>,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifiers of one line of code, outside strings and comments. `stop_at_backtick` ends
/// the scan at a backtick (inline code in prose).
fn scan(text: &str, lang: Lang, stop_at_backtick: bool) -> Vec<Ident> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let c = text[i..].chars().next().unwrap_or(' ');
        match c {
            '`' if stop_at_backtick => break,
            '#' if lang == Lang::Python => break,
            '/' if lang == Lang::Rust && bytes.get(i + 1) == Some(&b'/') => break,
            '\'' if lang == Lang::Rust => {
                // A char literal ('x', '\n') or a lifetime ('a).
                let close = if bytes.get(i + 1) == Some(&b'\\') {
                    text[i + 2..].find('\'').map(|j| i + 2 + j)
                } else {
                    let next = text[i + 1..].chars().next().map_or(0, char::len_utf8);
                    (bytes.get(i + 1 + next) == Some(&b'\'')).then_some(i + 1 + next)
                };
                i = match close {
                    Some(close) => close + 1,
                    None => i + 1,
                };
            }
            '"' | '\'' => {
                // Skip the string; an unterminated one runs to the end of the line.
                let mut j = i + 1;
                while j < text.len() {
                    match bytes[j] {
                        b'\\' => j += 2,
                        b if b == c as u8 => break,
                        _ => j += 1,
                    }
                }
                i = (j + 1).min(text.len().max(j));
            }
            c if is_ident_start(c) => {
                let end = text[i..]
                    .char_indices()
                    .find(|&(_, c)| !is_ident_char(c))
                    .map_or(text.len(), |(j, _)| i + j);
                out.push(Ident {
                    start: i,
                    end,
                    receiver: receiver_before(text, i),
                });
                i = end;
            }
            c => i += c.len_utf8(),
        }
    }
    out
}

/// The receiver written right before `start` (`self.session` in `self.session.get`,
/// `Vec2` in `Vec2::new`), when the identifier follows `.` or `::`.
fn receiver_before(text: &str, start: usize) -> Option<(usize, usize)> {
    let before = &text[..start];
    let end = before
        .strip_suffix('.')
        .or_else(|| before.strip_suffix("::"))?
        .len();
    let begin = text[..end]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident_char(c) || c == '.' || c == ':')
        .last()
        .map_or(end, |(i, _)| i);
    let receiver = text[begin..end].trim_start_matches(['.', ':']);
    let begin = end - receiver.len();
    (!receiver.is_empty() && receiver.starts_with(is_ident_start)).then_some((begin, end))
}

/// The last line of `before` followed by `generated`: what the next token continues.
fn current_line(before: &str, generated: &str) -> String {
    match generated.rfind('\n') {
        Some(at) => generated[at + 1..].to_string(),
        None => {
            let line = before.rsplit('\n').next().unwrap_or("");
            format!("{line}{generated}")
        }
    }
}

/// Completion's guide: members after a resolved receiver, a bias towards names in scope.
#[derive(Debug, Clone)]
pub struct CodeGuide {
    lang: Lang,
    /// The cursor's line before the cursor: what generation continues.
    line_before: String,
    receivers: Receivers,
    scope: Names,
    bias: f32,
}

impl CodeGuide {
    pub fn new(
        lang: Lang,
        line_before: &str,
        receivers: Receivers,
        scope: Vec<String>,
        bias: f32,
    ) -> Self {
        CodeGuide {
            lang,
            line_before: line_before.to_string(),
            receivers,
            scope: Names::new(scope),
            bias,
        }
    }

    /// The member list of `receiver`: as written, else (for a type path such as
    /// `geometry::Vec2`) by its last segment when that names a type.
    fn members(&self, receiver: &str) -> Option<Names> {
        if let Some(members) = self.receivers.get(receiver) {
            return Some(Names::from_sorted(members.clone()));
        }
        let last = receiver.rsplit(['.', ':']).next()?;
        if last.len() < receiver.len() && last.starts_with(char::is_uppercase) {
            return self.receivers.get(last).cloned().map(Names::from_sorted);
        }
        None
    }
}

impl Guide for CodeGuide {
    fn rule<'g>(&'g self, generated: &str) -> Option<Box<dyn Rule + 'g>> {
        if self.receivers.is_empty() && self.bias == 0.0 {
            return None;
        }
        Some(Box::new(CodeRule {
            guide: self,
            line: current_line(&self.line_before, generated),
        }))
    }
}

struct CodeRule<'g> {
    guide: &'g CodeGuide,
    line: String,
}

impl Rule for CodeRule<'_> {
    fn score(&self, piece: &str) -> f32 {
        let split = self.line.len();
        let text = format!("{}{piece}", self.line);
        let mut bonus = 0.0;
        for ident in scan(&text, self.guide.lang, false) {
            // An identifier the piece ends (`no` + `rm(`, `norm` + `(`) is judged complete, and
            // so is the last one when the piece is empty (the end of generation ends it too).
            if ident.end < split {
                continue;
            }
            let word = &text[ident.start..ident.end];
            let complete = ident.end < text.len() || piece.is_empty();
            match ident
                .receiver
                .and_then(|(b, e)| self.guide.members(&text[b..e]))
            {
                Some(members) => {
                    let ok = if complete {
                        members.contains(word)
                    } else {
                        members.has_prefix(word)
                    };
                    if !ok {
                        return f32::NEG_INFINITY;
                    }
                }
                None if ident.receiver.is_none() && ident.start >= split => {
                    let known = if complete {
                        self.guide.scope.contains(word)
                    } else {
                        self.guide.scope.has_prefix(word)
                    };
                    if known {
                        bonus = self.guide.bias;
                    }
                }
                None => {}
            }
        }
        bonus
    }

    fn continuations(&self) -> Vec<String> {
        let idents = scan(&self.line, self.guide.lang, false);
        let (partial, receiver) = match idents.last() {
            Some(ident) if ident.end == self.line.len() => {
                (&self.line[ident.start..ident.end], ident.receiver)
            }
            _ => ("", receiver_before(&self.line, self.line.len())),
        };
        receiver
            .and_then(|(b, e)| self.guide.members(&self.line[b..e]))
            .map(|members| members.rests(partial))
            .unwrap_or_default()
    }

    fn favours(&self) -> bool {
        self.guide.bias > 0.0
    }
}

/// Answers' guide: identifiers in `inline code` must exist.
#[derive(Debug, Clone)]
pub struct AnswerGuide {
    names: Names,
}

impl AnswerGuide {
    /// `names`: what an answer may name (the identifiers of the excerpts shown and of the
    /// question); both languages' keywords and common builtins are added.
    pub fn new(names: Vec<String>) -> Self {
        let mut names = names;
        for lang in [Lang::Python, Lang::Rust] {
            names.extend(keywords(lang).iter().map(|s| s.to_string()));
        }
        AnswerGuide {
            names: Names::new(names),
        }
    }
}

/// The guide of an answer to `prompt`: names in inline code must be ones the prompt shows (the
/// excerpts' code and the question). The index would allow more, but a
/// near miss of the right name (`get_same_origin` for `_same_origin`) is nearly always a name
/// the index holds too; the excerpts are what the answer is grounded in.
pub fn answer_guide(prompt: &Prompt) -> Arc<dyn Guide> {
    let mut names = HashSet::new();
    if let Prompt::Chat(messages) = prompt {
        for message in messages {
            identifiers_of(&message.content, &mut names);
        }
    }
    Arc::new(AnswerGuide::new(names.into_iter().collect()))
}

/// Identifiers of `text` (prose or code), for an [`AnswerGuide`]'s names.
pub fn identifiers_of(text: &str, into: &mut HashSet<String>) {
    for word in text.split(|c: char| !is_ident_char(c)) {
        if word.starts_with(is_ident_start) {
            into.insert(word.to_string());
        }
    }
}

impl Guide for AnswerGuide {
    fn rule<'g>(&'g self, generated: &str) -> Option<Box<dyn Rule + 'g>> {
        // Fenced blocks are left alone; an odd number of single backticks after the last fence
        // means the answer is inside inline code.
        let fences = generated.matches("```").count();
        if fences % 2 == 1 {
            return None;
        }
        let after_fence = generated.rfind("```").map_or(0, |at| at + 3);
        let prose = &generated[after_fence..];
        // A backtick run at the very end may be the start of a fence: decide next step.
        let open = prose.matches('`').count() % 2 == 1;
        let span = if open {
            let at = prose.rfind('`').map_or(0, |at| at + 1);
            prose[at..].to_string()
        } else {
            String::new()
        };
        if span.contains('\n') {
            return None;
        }
        Some(Box::new(AnswerRule {
            guide: self,
            span,
            open,
        }))
    }
}

struct AnswerRule<'g> {
    guide: &'g AnswerGuide,
    /// The inline code written so far (empty when not inside inline code).
    span: String,
    open: bool,
}

impl AnswerRule<'_> {
    /// `word` at `start..end` of `text` is part of a path (`src/app.py`), a number or a
    /// citation, which the check afterwards handles.
    fn is_path_part(text: &str, start: usize, end: usize) -> bool {
        let before = text[..start].chars().next_back();
        let after = &text[end..];
        before == Some('/')
            || after.starts_with('/')
            || after.starts_with(".py")
            || after.starts_with(".rs")
            || (before == Some('.') && (after.starts_with(':') || after.is_empty()))
    }
}

impl Rule for AnswerRule<'_> {
    fn score(&self, piece: &str) -> f32 {
        // Outside inline code: only a piece that opens it and writes a name is judged.
        let (text, split) = if self.open {
            (format!("{}{piece}", self.span), self.span.len())
        } else {
            match piece.find('`') {
                Some(at) if !piece[at..].starts_with("``") => (piece[at + 1..].to_string(), 0),
                _ => return 0.0,
            }
        };
        // Prose has no `#` comments; Rust's rules also read lifetimes.
        for ident in scan(&text, Lang::Rust, true) {
            if self.open && ident.end < split {
                continue;
            }
            let complete = ident.end < text.len() || piece.is_empty();
            if Self::is_path_part(&text, ident.start, ident.end) {
                continue;
            }
            let word = &text[ident.start..ident.end];
            let ok = if complete {
                self.guide.names.contains(word)
            } else {
                self.guide.names.has_prefix(word)
            };
            if !ok {
                return f32::NEG_INFINITY;
            }
        }
        0.0
    }

    fn continuations(&self) -> Vec<String> {
        if !self.open {
            return Vec::new();
        }
        let partial = self
            .span
            .rsplit(|c: char| !is_ident_char(c))
            .next()
            .unwrap_or("");
        let mut rests = self.guide.names.rests(partial);
        rests.truncate(256);
        rests
    }
}

/// Keywords and builtins, always allowed in inline code.
fn keywords(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Python => &[
            "False",
            "None",
            "True",
            "and",
            "as",
            "assert",
            "async",
            "await",
            "bool",
            "break",
            "bytes",
            "class",
            "continue",
            "def",
            "del",
            "dict",
            "elif",
            "else",
            "except",
            "float",
            "for",
            "from",
            "global",
            "if",
            "import",
            "in",
            "int",
            "is",
            "isinstance",
            "lambda",
            "len",
            "list",
            "not",
            "object",
            "or",
            "pass",
            "print",
            "raise",
            "return",
            "self",
            "set",
            "str",
            "super",
            "try",
            "tuple",
            "type",
            "while",
            "with",
            "yield",
        ],
        Lang::Rust => &[
            "Err", "None", "Ok", "Option", "Result", "Self", "Some", "String", "Vec", "as", "bool",
            "const", "crate", "dyn", "else", "enum", "false", "fn", "for", "if", "impl", "in",
            "let", "loop", "match", "mod", "mut", "pub", "ref", "return", "self", "static", "str",
            "struct", "super", "trait", "true", "type", "u8", "u32", "u64", "usize", "i32", "i64",
            "f32", "f64", "unsafe", "use", "where", "while",
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receivers(entries: &[(&str, &[&str])]) -> Receivers {
        entries
            .iter()
            .map(|(k, v)| {
                let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
                v.sort();
                (k.to_string(), Arc::from(v))
            })
            .collect()
    }

    fn code_guide(line: &str) -> CodeGuide {
        CodeGuide::new(
            Lang::Python,
            line,
            receivers(&[("v", &["norm", "scaled", "x"]), ("self.origin", &["norm"])]),
            vec!["describe".into(), "vectors".into()],
            1.0,
        )
    }

    fn score(guide: &dyn Guide, generated: &str, piece: &str) -> f32 {
        guide.rule(generated).map_or(0.0, |rule| rule.score(piece))
    }

    #[test]
    fn a_member_after_a_resolved_receiver_must_exist() {
        let guide = code_guide("    return v.");
        assert_eq!(score(&guide, "", "norm"), 0.0);
        assert_eq!(score(&guide, "", "no"), 0.0, "a prefix of a member");
        assert_eq!(score(&guide, "", "norm()"), 0.0);
        assert_eq!(score(&guide, "", "length"), f32::NEG_INFINITY);
        assert_eq!(score(&guide, "no", "rmal()"), f32::NEG_INFINITY);
        assert_eq!(score(&guide, "no", "rm()"), 0.0);
        assert_eq!(
            score(&guide, "no", " + 1"),
            f32::NEG_INFINITY,
            "`no` is no member"
        );
        assert_eq!(score(&guide, "norm", "()"), 0.0);
        assert_eq!(
            score(&guide, "no", ""),
            f32::NEG_INFINITY,
            "no end inside a member"
        );
        assert_eq!(score(&guide, "norm", ""), 0.0);
    }

    #[test]
    fn a_token_spanning_the_dot_is_judged_whole() {
        let guide = code_guide("    total = v");
        assert_eq!(score(&guide, "", ".norm("), 0.0);
        assert_eq!(score(&guide, "", ".length("), f32::NEG_INFINITY);
        let guide = code_guide("    d = self.origin");
        assert_eq!(score(&guide, "", ".length"), f32::NEG_INFINITY);
        assert_eq!(score(&guide, "", ".norm"), 0.0);
    }

    #[test]
    fn unknown_receivers_strings_and_comments_are_free() {
        let guide = code_guide("    w.");
        assert_eq!(score(&guide, "", "anything"), 0.0);
        let guide = code_guide("    print(\"v.");
        assert_eq!(score(&guide, "", "length"), 0.0);
        let guide = code_guide("    # see v.");
        assert_eq!(score(&guide, "", "length"), 0.0);
    }

    #[test]
    fn names_in_scope_get_the_bias_and_new_names_stay_possible() {
        let guide = code_guide("    return max(");
        assert_eq!(score(&guide, "", "vec"), 1.0);
        assert_eq!(score(&guide, "", "items"), 0.0);
    }

    #[test]
    fn continuations_are_the_rests_of_matching_members() {
        let guide = code_guide("    return v.");
        let rule = guide.rule("n").expect("a rule");
        assert_eq!(rule.continuations(), ["orm"]);
        let rule = guide.rule("").expect("a rule");
        assert_eq!(rule.continuations(), ["norm", "scaled", "x"]);
    }

    #[test]
    fn rust_paths_and_lifetimes() {
        let guide = CodeGuide::new(
            Lang::Rust,
            "    let v = Vec2::",
            receivers(&[("Vec2", &["new", "norm"])]),
            Vec::new(),
            0.0,
        );
        assert_eq!(score(&guide, "", "new("), 0.0);
        assert_eq!(score(&guide, "", "zero()"), f32::NEG_INFINITY);
        let guide = CodeGuide::new(
            Lang::Rust,
            "fn f<'a>(x: &'a str) -> geo::Vec2::",
            receivers(&[("Vec2", &["new"])]),
            Vec::new(),
            0.0,
        );
        assert_eq!(score(&guide, "", "zero"), f32::NEG_INFINITY);
    }

    #[test]
    fn answer_names_in_inline_code_must_exist() {
        let guide = AnswerGuide::new(vec!["_same_origin".into(), "Session".into()]);
        assert_eq!(score(&guide, "It is `", "get"), f32::NEG_INFINITY);
        assert_eq!(score(&guide, "It is `", "_same"), 0.0);
        assert_eq!(score(&guide, "It is ", " `get"), f32::NEG_INFINITY);
        assert_eq!(score(&guide, "It is ", "anything"), 0.0);
        assert_eq!(score(&guide, "It is `_same_origin", "` in"), 0.0);
        assert_eq!(score(&guide, "It is `_same", "` in"), f32::NEG_INFINITY);
        assert_eq!(score(&guide, "See `", "requests/sessions.py:42`"), 0.0);
        assert_eq!(score(&guide, "```python\n", "whatever"), 0.0);
        let rule = guide.rule("It is `_same").expect("a rule");
        assert_eq!(rule.continuations(), ["_origin"]);
    }
}
