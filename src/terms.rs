//! Search terms of a piece of text: its words and their snake_case and camelCase parts, lower
//! case, lightly stemmed, without stop words. Shared by `ask`'s symbol search and the session
//! memory's recall, so a question matches code and earlier questions the same way.

/// Splits text into lower-case search terms: words, their snake_case and camelCase parts,
/// lightly stemmed.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric() && c != '_') {
        if word.is_empty() {
            continue;
        }
        let mut parts = Vec::new();
        for piece in word.split('_').filter(|p| !p.is_empty()) {
            let mut start = 0;
            let chars: Vec<(usize, char)> = piece.char_indices().collect();
            for window in chars.windows(2) {
                let ((_, a), (i, b)) = (window[0], window[1]);
                if a.is_lowercase() && b.is_uppercase() {
                    parts.push(&piece[start..i]);
                    start = i;
                }
            }
            parts.push(&piece[start..]);
        }
        let whole = word.to_lowercase();
        if parts.len() > 1 && whole.len() > 2 {
            out.push(stem(&whole.replace('_', "")));
        }
        for part in parts {
            let part = part.to_lowercase();
            if part.len() >= 2 && !STOPWORDS.contains(&part.as_str()) {
                out.push(stem(&part));
            }
        }
    }
    out
}

fn stem(word: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if word.len() > suffix.len() + 3 && word.ends_with(suffix) && !word.ends_with("ss") {
            return word[..word.len() - suffix.len()].to_string();
        }
    }
    word.to_string()
}

const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "is",
    "are",
    "was",
    "be",
    "been",
    "how",
    "what",
    "where",
    "which",
    "when",
    "who",
    "why",
    "does",
    "do",
    "did",
    "of",
    "in",
    "on",
    "to",
    "and",
    "or",
    "for",
    "with",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "from",
    "by",
    "as",
    "at",
    "can",
    "could",
    "should",
    "would",
    "will",
    "there",
    "here",
    "me",
    "my",
    "we",
    "our",
    "you",
    "your",
    "about",
    "into",
    "code",
    "codebase",
    "function",
    "functions",
    "method",
    "class",
    "file",
    "files",
    "get",
    "self",
    "py",
    "rs",
    "if",
    "then",
    "else",
    "not",
    "no",
    "any",
    "all",
    "some",
    "happen",
    "happens",
    "work",
    "works",
    "used",
    "use",
    "uses",
    "using",
    "explain",
    "tell",
    "show",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_split_identifiers_and_drop_stopwords() {
        assert_eq!(
            terms("How does parseHeaderLine handle max_retries?"),
            [
                "parseheaderline",
                "parse",
                "header",
                "line",
                "handle",
                "maxretri",
                "max",
                "retri"
            ]
        );
    }
}
