//! The names an expression uses, read off its text instead of its syntax tree (Python, Rust).
//!
//! The index's reference walk visits every node of a file, and two thirds of a file's nodes sit
//! inside expressions (calls, operators, literals): the walk cost about a fifth of what parsing
//! the file did, most of it stepping a tree cursor through their punctuation. Inside a Python
//! expression the only identifiers that are not uses are keyword-argument names (`f(key=…)`)
//! and lambda parameters, both plain to see in the text; a Rust expression without a block or
//! closure (no `{`, no `|`) binds nothing. So the walk hands such expressions to these lexers,
//! which skip literals and comments (but look inside f-string fields) and find exactly the uses
//! the walk would (a test checks it on the Python stdlib and on the crates pith depends on).

use std::ops::Range;

/// Python's hard keywords, and `await`/`async`, which are keywords in all modern code (a
/// `match` compiles to a switch on length, not a scan of the list per identifier).
fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "False"
            | "None"
            | "True"
            | "and"
            | "as"
            | "assert"
            | "async"
            | "await"
            | "break"
            | "class"
            | "continue"
            | "def"
            | "del"
            | "elif"
            | "else"
            | "except"
            | "finally"
            | "for"
            | "from"
            | "global"
            | "if"
            | "import"
            | "in"
            | "is"
            | "lambda"
            | "nonlocal"
            | "not"
            | "or"
            | "pass"
            | "raise"
            | "return"
            | "try"
            | "while"
            | "with"
            | "yield"
    )
}

/// Appends the byte range of every identifier in `range` of `text` that is a use: not a
/// keyword, keyword-argument name or lambda parameter, and not inside a string (but inside an
/// f-string's `{…}`) or comment. `range` should hold a whole expression.
pub(crate) fn python_uses(text: &str, range: Range<usize>, out: &mut Vec<Range<usize>>) -> bool {
    Lexer::new(text, range, out).tokens(false);
    true
}

struct Lexer<'a, 'o> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    end: usize,
    out: &'o mut Vec<Range<usize>>,
    /// f-string replacement fields open around `pos`, each a level of recursion.
    nested_fields: usize,
}

/// Replacement fields nested deeper than this (in f-strings inside fields, or in format specs)
/// are read as plain text: real code nests two or three, and a hostile file must not exhaust
/// the stack.
const MAX_NESTED_FIELDS: usize = 16;

/// Where a `lambda`'s parameter list is: the bracket depth it opened at, and whether the next
/// name would be a parameter (not a default value).
struct LambdaParameters {
    depth: usize,
    expects_name: bool,
}

impl<'a, 'o> Lexer<'a, 'o> {
    fn new(text: &'a str, range: Range<usize>, out: &'o mut Vec<Range<usize>>) -> Self {
        let end = range.end.min(text.len());
        Lexer {
            text,
            bytes: text.as_bytes(),
            pos: range.start.min(end),
            end,
            out,
            nested_fields: 0,
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        let at = self.pos + ahead;
        (at < self.end).then(|| self.bytes[at])
    }

    /// The last byte before `start` that is not whitespace (`*` in `for a, *rest in …`, `&`
    /// in `&raw const x`).
    fn previous_byte(&self, start: usize) -> Option<u8> {
        self.bytes[..start]
            .iter()
            .rev()
            .find(|byte| !byte.is_ascii_whitespace())
            .copied()
    }

    /// Lexes to the end of the range, or inside an f-string replacement field to where the
    /// expression ends (at depth 0: `}`, a `!r` conversion or a `:` format spec), left there.
    fn tokens(&mut self, in_replacement_field: bool) {
        let mut depth = 0usize;
        let mut lambdas: Vec<LambdaParameters> = Vec::new();
        // Depths of open `for … in` targets, where `*rest` binds.
        let mut for_targets: Vec<usize> = Vec::new();
        while self.pos < self.end {
            let byte = self.bytes[self.pos];
            let in_lambda = lambdas.last_mut().filter(|lambda| lambda.depth == depth);
            match byte {
                b'#' => {
                    self.pos = memchr::memchr(b'\n', &self.bytes[self.pos..self.end])
                        .map_or(self.end, |newline| self.pos + newline);
                }
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' | b']' | b'}' => {
                    if in_replacement_field && depth == 0 {
                        return;
                    }
                    depth = depth.saturating_sub(1);
                    self.pos += 1;
                }
                b'!' if in_replacement_field && depth == 0 && self.peek(1) != Some(b'=') => {
                    return;
                }
                b':' if self.peek(1) != Some(b'=') && in_lambda.is_some() => {
                    lambdas.pop();
                    self.pos += 1;
                }
                b':' if in_replacement_field && depth == 0 && self.peek(1) != Some(b'=') => {
                    return;
                }
                b',' | b'=' => {
                    if let Some(lambda) = in_lambda {
                        lambda.expects_name = byte == b',';
                    }
                    self.pos += 1;
                }
                // (tree-sitter-python reads Python 2's `repr` backticks as a string too.)
                b'"' | b'\'' | b'`' => self.string(""),
                b'0'..=b'9' => self.number(),
                b'.' if self.peek(1).is_some_and(|next| next.is_ascii_digit()) => self.number(),
                _ if byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80 => {
                    let start = self.pos;
                    if !self.identifier() {
                        continue;
                    }
                    let word = &self.text[start..self.pos];
                    if matches!(self.peek(0), Some(b'"' | b'\'')) && is_string_prefix(word) {
                        self.string(word);
                        continue;
                    }
                    if is_keyword(word) {
                        match word {
                            "lambda" => lambdas.push(LambdaParameters {
                                depth,
                                expects_name: true,
                            }),
                            "for" => for_targets.push(depth),
                            "in" if for_targets.last() == Some(&depth) => {
                                for_targets.pop();
                            }
                            _ => {}
                        }
                        continue;
                    }
                    let binds = match in_lambda {
                        Some(lambda) => std::mem::replace(&mut lambda.expects_name, false),
                        // `f(name=…)`; at depth 0 `{x=}` is an f-string's debug form.
                        None => {
                            (depth > 0 && self.assigned_next())
                                || (!for_targets.is_empty()
                                    && self.previous_byte(start) == Some(b'*'))
                        }
                    };
                    if !binds {
                        self.out.push(start..self.pos);
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Moves past an identifier starting at `pos`; false (having moved past one character)
    /// when the character there cannot start one.
    fn identifier(&mut self) -> bool {
        let Some(first) = self.text[self.pos..self.end].chars().next() else {
            self.pos = self.end;
            return false;
        };
        self.pos += first.len_utf8();
        if !(first == '_' || unicode_ident::is_xid_start(first)) {
            return false;
        }
        while self.pos < self.end {
            let byte = self.bytes[self.pos];
            if byte.is_ascii_alphanumeric() || byte == b'_' {
                self.pos += 1;
            } else if byte >= 0x80 {
                match self.text[self.pos..self.end].chars().next() {
                    Some(next) if unicode_ident::is_xid_continue(next) => {
                        self.pos += next.len_utf8()
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        true
    }

    /// Whether the next token is a lone `=` (a keyword argument), not `==`.
    fn assigned_next(&self) -> bool {
        let rest = &self.bytes[self.pos..self.end];
        let Some(at) = rest
            .iter()
            .position(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\\'))
        else {
            return false;
        };
        rest[at] == b'=' && rest.get(at + 1) != Some(&b'=')
    }

    /// Moves past a number: `1_000`, `0x1F`, `1.5e-10j`; not the `.attr` after `1.5.attr`.
    fn number(&mut self) {
        let radix_prefixed = self.bytes[self.pos] == b'0'
            && self.peek(1).is_some_and(|byte| b"xXoObB".contains(&byte));
        let mut seen_dot_or_exponent = false;
        while self.pos < self.end {
            let byte = self.bytes[self.pos];
            if byte == b'.' && !seen_dot_or_exponent {
                seen_dot_or_exponent = true;
            } else if matches!(byte, b'e' | b'E') && !radix_prefixed {
                seen_dot_or_exponent = true;
                if matches!(self.peek(1), Some(b'+' | b'-')) {
                    self.pos += 1;
                }
            } else if !(byte.is_ascii_alphanumeric() || byte == b'_') {
                break;
            }
            self.pos += 1;
        }
    }

    /// Moves past a string literal whose quote is at `pos`, lexing the replacement fields of
    /// an f-string (or t-string).
    fn string(&mut self, prefix: &str) {
        let formatted =
            prefix.contains(['f', 'F', 't', 'T']) && self.nested_fields < MAX_NESTED_FIELDS;
        let raw = prefix.contains(['r', 'R']);
        let quote = self.bytes[self.pos];
        let triple = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
        self.pos += if triple { 3 } else { 1 };
        while self.pos < self.end {
            let byte = self.bytes[self.pos];
            match byte {
                // `\N{NAME}` names a character.
                b'\\' if !raw && self.peek(1) == Some(b'N') && self.peek(2) == Some(b'{') => {
                    self.pos = memchr::memchr(b'}', &self.bytes[self.pos..self.end])
                        .map_or(self.end, |close| self.pos + close + 1);
                }
                // Even in a raw string a backslash keeps the quote or line end after it in the
                // string, but there a `{` after it still opens a field.
                b'\\'
                    if raw
                        && !matches!(self.peek(1), Some(b'\\' | b'\'' | b'"' | b'\n' | b'\r')) =>
                {
                    self.pos += 1
                }
                b'\\' => self.pos += 2,
                _ if byte == quote => {
                    if !triple {
                        self.pos += 1;
                        return;
                    }
                    if self.peek(1) == Some(quote) && self.peek(2) == Some(quote) {
                        self.pos += 3;
                        return;
                    }
                    self.pos += 1;
                }
                // An unterminated one-line string ends at the line's end.
                b'\n' if !triple => return,
                b'{' if formatted => {
                    if self.peek(1) == Some(b'{') {
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        self.replacement_field();
                    }
                }
                _ => self.pos += 1,
            }
        }
        self.pos = self.pos.min(self.end);
    }

    /// `{expression!conversion:format spec}` after its `{`; the spec may hold nested fields.
    fn replacement_field(&mut self) {
        self.nested_fields += 1;
        self.tokens(true);
        if self.peek(0) == Some(b'!') {
            self.pos += 1;
            while self.peek(0).is_some_and(|byte| byte.is_ascii_alphabetic()) {
                self.pos += 1;
            }
        }
        if self.peek(0) == Some(b':') {
            self.pos += 1;
            while let Some(byte) = self.peek(0) {
                match byte {
                    b'{' if self.nested_fields < MAX_NESTED_FIELDS => {
                        self.pos += 1;
                        self.replacement_field();
                    }
                    b'}' => break,
                    _ => self.pos += 1,
                }
            }
        }
        if self.peek(0) == Some(b'}') {
            self.pos += 1;
        }
        self.nested_fields -= 1;
    }
}

/// Whether a word is a keyword, not a name, to tree-sitter-rust: inside a macro's token tree
/// only its short list is (there `in`, `dyn` or `else` are identifiers, and `_` is not one);
/// elsewhere `_` in a type (`Vec<_>`) is an identifier.
fn is_rust_keyword(word: &str, in_token_tree: bool) -> bool {
    let everywhere = matches!(
        word,
        "as" | "async"
            | "await"
            | "break"
            | "const"
            | "continue"
            | "crate"
            | "enum"
            | "false"
            | "fn"
            | "for"
            | "if"
            | "impl"
            | "let"
            | "loop"
            | "match"
            | "mod"
            | "mut"
            | "pub"
            | "return"
            | "self"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "type"
            | "unsafe"
            | "use"
            | "where"
            | "while"
    );
    everywhere
        || if in_token_tree {
            matches!(word, "_" | "default" | "gen" | "union")
        } else {
            matches!(
                word,
                "dyn" | "else" | "extern" | "in" | "move" | "ref" | "yield"
            )
        }
}

/// Rust's primitive types: a type node, not a name, except where `primitive_role` says.
fn is_rust_primitive(word: &str) -> bool {
    matches!(
        word,
        "bool"
            | "char"
            | "str"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "isize"
            | "f32"
            | "f64"
    )
}

/// Appends the byte ranges of the identifiers in `range` of `text` (a Rust expression), or
/// appends nothing and returns false when the expression holds a block or a closure (`{`,
/// `|`), which may bind names: the walk descends into those.
pub(crate) fn rust_uses(text: &str, range: Range<usize>, out: &mut Vec<Range<usize>>) -> bool {
    let kept = out.len();
    let mut lexer = Lexer::new(text, range, out);
    let lexed = lexer.rust_tokens();
    if !lexed {
        lexer.out.truncate(kept);
    }
    lexed
}

impl Lexer<'_, '_> {
    fn rust_tokens(&mut self) -> bool {
        let mut depth = 0usize;
        // Depth of the innermost macro token tree open (`name!(…)`), if any.
        let mut token_trees: Vec<usize> = Vec::new();
        let mut after_name = false;
        while self.pos < self.end {
            let byte = self.bytes[self.pos];
            let was_after_name = std::mem::replace(&mut after_name, false);
            match byte {
                b'{' | b'|' => return false,
                b'/' if self.peek(1) == Some(b'/') => {
                    self.pos = memchr::memchr(b'\n', &self.bytes[self.pos..self.end])
                        .map_or(self.end, |newline| self.pos + newline);
                }
                b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
                b' ' | b'\t' | b'\n' | b'\r' => {
                    after_name = was_after_name;
                    self.pos += 1;
                }
                b'!' if was_after_name
                    && matches!(
                        self.text[self.pos + 1..self.end]
                            .trim_start()
                            .as_bytes()
                            .first(),
                        Some(b'(' | b'[')
                    ) =>
                {
                    self.pos += 1;
                    while !matches!(self.bytes[self.pos], b'(' | b'[') {
                        self.pos += 1;
                    }
                    self.pos += 1;
                    depth += 1;
                    token_trees.push(depth);
                }
                b'(' | b'[' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' | b']' => {
                    if token_trees.last() == Some(&depth) {
                        token_trees.pop();
                    }
                    depth = depth.saturating_sub(1);
                    self.pos += 1;
                }
                b'"' => self.rust_string(None),
                b'\'' => self.quote(!token_trees.is_empty()),
                b'0'..=b'9' => self.rust_number(),
                _ if byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80 => {
                    let start = self.pos;
                    if !self.identifier() {
                        continue;
                    }
                    let word = &self.text[start..self.pos];
                    match (word, self.peek(0)) {
                        ("b" | "c", Some(b'"')) => {
                            self.rust_string(None);
                            continue;
                        }
                        ("r" | "br" | "cr", Some(b'"')) => {
                            self.rust_string(Some(0));
                            continue;
                        }
                        ("r" | "br" | "cr", Some(b'#')) => {
                            let hashes = self.bytes[self.pos..self.end]
                                .iter()
                                .take_while(|&&byte| byte == b'#')
                                .count();
                            if self.peek(hashes) == Some(b'"') {
                                self.pos += hashes;
                                self.rust_string(Some(hashes));
                                continue;
                            }
                            if word == "r" && self.peek(1).is_some_and(is_identifier_start) {
                                // A raw identifier, `r#type`: the name includes the `r#`.
                                self.pos += 1;
                                self.identifier();
                                self.out.push(start..self.pos);
                                after_name = true;
                                continue;
                            }
                        }
                        ("b", Some(b'\'')) => {
                            self.quote(false);
                            continue;
                        }
                        _ => {}
                    }
                    let in_token_tree = !token_trees.is_empty();
                    // A function type (`as fn(_) -> _`) has its own rules for `_`.
                    if word == "fn" && !in_token_tree {
                        return false;
                    }
                    if is_rust_keyword(word, in_token_tree) {
                        continue;
                    }
                    if is_rust_primitive(word) {
                        match self.primitive_role(start, in_token_tree) {
                            Some(true) => {}
                            Some(false) => continue,
                            None => return false,
                        }
                    }
                    // `&raw const x`, `&raw mut x`: a raw borrow, not a name.
                    if word == "raw"
                        && !in_token_tree
                        && self.previous_byte(start) == Some(b'&')
                        && matches!(
                            self.text[self.pos..self.end]
                                .trim_start()
                                .split(|c: char| !c.is_ascii_alphabetic())
                                .next(),
                            Some("mut" | "const")
                        )
                    {
                        continue;
                    }
                    self.out.push(start..self.pos);
                    after_name = true;
                }
                _ => self.pos += 1,
            }
        }
        true
    }

    /// Whether the primitive type's name at `start..pos` is a name to tree-sitter-rust: in a
    /// path (`u32::MAX`, `std::str`), as a field (`x.u64`) or a called function (`bool()`),
    /// not after `as` nor in a token tree; None when only the tree can tell (`Vec<u8>`).
    fn primitive_role(&self, start: usize, in_token_tree: bool) -> Option<bool> {
        if in_token_tree {
            return Some(false);
        }
        let after = self.text[self.pos..self.end].trim_start();
        let before = self.text[..start].trim_end();
        if after.starts_with("::") || after.starts_with('(') || before.ends_with("::") {
            return Some(true);
        }
        if before.ends_with('.') && !before.ends_with("..") {
            return Some(true);
        }
        if before.ends_with(" as") || before.ends_with("\tas") || before.ends_with("\nas") {
            return Some(false);
        }
        None
    }

    /// `/* … */`, nested.
    fn block_comment(&mut self) {
        let mut open = 0usize;
        while self.pos < self.end {
            if self.bytes[self.pos..self.end].starts_with(b"/*") {
                open += 1;
                self.pos += 2;
            } else if self.bytes[self.pos..self.end].starts_with(b"*/") {
                open -= 1;
                self.pos += 2;
                if open == 0 {
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
    }

    /// A string whose `"` is at `pos`; a raw one (`raw_hashes`: the `#`s before the quote)
    /// has no escapes.
    fn rust_string(&mut self, raw_hashes: Option<usize>) {
        self.pos += 1;
        let hashes = raw_hashes.unwrap_or(0);
        while self.pos < self.end {
            match self.bytes[self.pos] {
                b'\\' if raw_hashes.is_none() => self.pos += 2,
                b'"' if self.bytes[self.pos + 1..self.end]
                    .iter()
                    .take(hashes)
                    .filter(|&&byte| byte == b'#')
                    .count()
                    == hashes =>
                {
                    self.pos += 1 + hashes;
                    return;
                }
                _ => self.pos += 1,
            }
        }
        self.pos = self.pos.min(self.end);
    }

    /// A `'` at `pos`: a character literal (`'a'`, `'\n'`), or a lifetime or label, whose
    /// name is a use (inside a token tree, unless it is a keyword there: `'static`, `'_`).
    fn quote(&mut self, in_token_tree: bool) {
        self.pos += 1;
        if self.peek(0) == Some(b'\\') {
            self.pos += 2;
            self.pos = memchr::memchr(b'\'', &self.bytes[self.pos..self.end])
                .map_or(self.end, |close| self.pos + close + 1);
            return;
        }
        let Some(next) = self.text[self.pos..self.end].chars().next() else {
            return;
        };
        if self.peek(next.len_utf8()) == Some(b'\'') {
            self.pos += next.len_utf8() + 1;
            return;
        }
        let start = self.pos;
        if !self.identifier() {
            return;
        }
        // A raw lifetime, `'r#async`.
        if &self.text[start..self.pos] == "r"
            && self.peek(0) == Some(b'#')
            && self.peek(1).is_some_and(is_identifier_start)
        {
            self.pos += 1;
            self.identifier();
        }
        if !(in_token_tree && is_rust_keyword(&self.text[start..self.pos], true)) {
            self.out.push(start..self.pos);
        }
    }

    /// `1_000`, `0xFF_u8`, `1.5e-3f64`; not the `.0` of `x.0` nor the `..` of `1..2`.
    fn rust_number(&mut self) {
        let radix_prefixed =
            self.bytes[self.pos] == b'0' && self.peek(1).is_some_and(|byte| b"xob".contains(&byte));
        let mut seen_dot = false;
        while self.pos < self.end {
            let byte = self.bytes[self.pos];
            if byte == b'.' && !seen_dot && self.peek(1).is_some_and(|next| next.is_ascii_digit()) {
                seen_dot = true;
            } else if matches!(byte, b'e' | b'E')
                && !radix_prefixed
                && matches!(self.peek(1), Some(b'+' | b'-'))
            {
                self.pos += 1;
            } else if !(byte.is_ascii_alphanumeric() || byte == b'_') {
                break;
            }
            self.pos += 1;
        }
    }
}

fn is_identifier_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80
}

fn is_string_prefix(word: &str) -> bool {
    word.len() <= 3 && word.bytes().all(|byte| b"rRbBuUfFtT".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        python_uses(text, 0..text.len(), &mut out);
        out.into_iter().map(|range| &text[range]).collect()
    }

    fn rust(text: &str) -> Option<Vec<&str>> {
        // A range already there, which a declined lexing must leave alone.
        let mut out: Vec<Range<usize>> = std::iter::once(0..0).collect();
        if !rust_uses(text, 0..text.len(), &mut out) {
            assert_eq!(out.len(), 1, "a declined lexing appends nothing");
            return None;
        }
        Some(out.into_iter().skip(1).map(|range| &text[range]).collect())
    }

    #[test]
    fn rust_names_paths_macros_lifetimes_and_literals() {
        assert_eq!(
            rust(
                "g::<T>(Self::new(), self.x, 'a', b'c', r#\"s{|\"#, r\"\\\", 1.0e-3f64, 1..n, x.0)"
            ),
            Some(vec!["g", "T", "Self", "new", "x", "n", "x"])
        );
        assert_eq!(
            rust("u32::MAX + x as u32 + r#type /* a /* b */ c */ // d\n"),
            Some(vec!["u32", "MAX", "x", "r#type"])
        );
        assert_eq!(
            rust("println!(\"{}\", y as u8::MAX, default, in, \"\\\"\") + union(&'static s, _)"),
            Some(vec![
                "println", "y", "MAX", "in", "union", "static", "s", "_"
            ])
        );
        // Blocks and closures may bind names: the walk descends into them instead.
        assert_eq!(rust("f(|x| x + 1)"), None);
        assert_eq!(rust("f(S { a })"), None);
        // Only the tree knows whether `u8` is a type or a name here.
        assert_eq!(rust("Vec::<u8>::new()"), None);
        assert_eq!(
            rust("x.u64 + bool() + u8::MAX + x as u8"),
            Some(vec!["x", "u64", "bool", "u8", "MAX", "x"])
        );
    }

    #[test]
    fn names_in_calls_attributes_and_operators() {
        assert_eq!(
            uses("self.pool.get(key, timeout=t or DEFAULT) == None and not é_x"),
            ["self", "pool", "get", "key", "t", "DEFAULT", "é_x"]
        );
        assert_eq!(uses("a[1:n] + 0x1F + 1e-5 + .5j"), ["a", "n"]);
        assert_eq!(uses("(y := f(x))"), ["y", "f", "x"]);
        assert_eq!(
            uses("[v for k, v in d.items() if k]"),
            ["v", "k", "v", "d", "items", "k"]
        );
    }

    #[test]
    fn strings_and_comments_hold_no_names() {
        assert_eq!(
            uses("f(a, 'b c', \"\"\"d\n'e'\"\"\", rb'\\'g' # h i\n, j)"),
            ["f", "a", "j"]
        );
        // An unterminated one-line string stops at the end of its line.
        assert_eq!(uses("f('abc\n, k)"), ["f", "k"]);
        assert_eq!(uses("1.5e100.__format__('e')"), ["__format__"]);
        assert_eq!(
            uses("1.5e-100.__format__('e') + 0xE-e"),
            ["__format__", "e"]
        );
    }

    #[test]
    fn f_string_fields_are_lexed() {
        assert_eq!(
            uses("f'{name!r:>{width}} {{literal}} {obj.attr = }' + F\"{x:%Y}\""),
            ["name", "width", "obj", "attr", "x"]
        );
        assert_eq!(uses("f'{d[\"k\"]:{w}.{p}f}'"), ["d", "w", "p"]);
        assert_eq!(uses("f'\\N{GREEK CAPITAL LETTER DELTA} {x}'"), ["x"]);
        assert_eq!(uses("rf'C:\\Python\\{tag}\\Install'"), ["tag"]);
    }

    #[test]
    fn deeply_nested_replacement_fields_do_not_exhaust_the_stack() {
        let depth = 100_000;
        let text = format!("{}x{}", "f'{".repeat(depth), "}'".repeat(depth));
        // Past the limit the strings read as plain ones, so what is found is a guess, but it
        // is found without a stack overflow (which would abort the server).
        assert!(uses(&text).iter().all(|name| *name == "x"));
        assert_eq!(uses("f'{f\"{f'{a}'}\"}'"), ["a"]);
        // Fields nested in format specs, `f'{x:{x:{x…'`, recurse with less stack per level.
        let specs = format!("f'{{x{}'", ":{x".repeat(10 * depth));
        assert!(uses(&specs).iter().all(|name| *name == "x"));
    }

    #[test]
    fn keyword_arguments_and_lambda_parameters_bind() {
        assert_eq!(
            uses("f(key=lambda k, *r, d=D: k.name, flag = x == y)"),
            ["f", "D", "k", "name", "x", "y"]
        );
        assert_eq!(uses("sorted(v, key=lambda: 0)"), ["sorted", "v"]);
        assert_eq!(
            uses("[a for a, *rest in f(*args)]"),
            ["a", "a", "f", "args"]
        );
    }
}
