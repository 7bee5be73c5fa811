//! Index-guided decoding, the engine's half. A request may carry a [`Guide`]: the caller's
//! knowledge of which identifiers may come next (the members of a resolved receiver, the names
//! of the retrieved code). At each step the engine asks it for a [`Rule`] and picks the best
//! token the rule allows among the model's most likely candidates; when it forbids them all, the
//! best token that starts an allowed name, found through a byte trie of the vocabulary
//! ([`VocabTrie`], built once per model).
//!
//! The engine knows nothing of languages: what an identifier is and which names exist is the
//! guide's business. A rule judges a token by the text it would add, so a token that spans a
//! member access (`.norm(`) is judged as a whole.

use std::collections::HashMap;

/// Decides what may follow the text generated so far. Implementations must be cheap: the engine
/// asks once per generated token.
pub trait Guide: Send + Sync {
    /// The rule for the next token after `generated` (everything this request generated so
    /// far); `None` when anything goes.
    fn rule<'g>(&'g self, generated: &str) -> Option<Box<dyn Rule + 'g>>;
}

/// What may come next at one step.
pub trait Rule {
    /// Adjustment to the logit of a token that would add `piece`: 0.0 is neutral,
    /// `f32::NEG_INFINITY` forbids it, a positive value favours it.
    fn score(&self, piece: &str) -> f32;
    /// When every likely token is forbidden: texts that may come next (the rest of each allowed
    /// name). The engine picks the likeliest token that starts one of them.
    fn continuations(&self) -> Vec<String>;
    /// Whether [`Rule::score`] ever returns a positive value: when it does not, the model's
    /// favourite is kept whenever the rule allows it, without ranking the rest.
    fn favours(&self) -> bool {
        false
    }
}

/// How many of the model's best tokens are judged before falling back to the trie.
pub const CANDIDATES: usize = 40;

/// A byte trie of the vocabulary: which tokens spell a prefix of a given text.
#[derive(Debug, Default)]
pub struct VocabTrie {
    /// Node 0 is the root. Children by byte.
    children: Vec<HashMap<u8, u32>>,
    /// Tokens that end at each node.
    tokens: Vec<Vec<u32>>,
}

impl VocabTrie {
    /// Builds the trie over `pieces` (token id = position). Empty pieces are left out.
    pub fn new<'p>(pieces: impl IntoIterator<Item = &'p [u8]>) -> Self {
        let mut trie = VocabTrie {
            children: vec![HashMap::new()],
            tokens: vec![Vec::new()],
        };
        for (id, piece) in pieces.into_iter().enumerate() {
            if piece.is_empty() {
                continue;
            }
            let mut node = 0usize;
            for &byte in piece {
                node = match trie.children[node].get(&byte) {
                    Some(&next) => next as usize,
                    None => {
                        let next = trie.children.len();
                        trie.children.push(HashMap::new());
                        trie.tokens.push(Vec::new());
                        trie.children[node].insert(byte, next as u32);
                        next
                    }
                };
            }
            trie.tokens[node].push(id as u32);
        }
        trie
    }

    /// Tokens whose whole piece is a non-empty prefix of `text`.
    pub fn prefixes_of(&self, text: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut node = 0usize;
        for byte in text {
            match self.children[node].get(byte) {
                Some(&next) => node = next as usize,
                None => break,
            }
            out.extend_from_slice(&self.tokens[node]);
        }
        out
    }
}

/// The `k` best token ids of `logits`, best first.
pub fn top_k(logits: &[f32], k: usize) -> Vec<u32> {
    let k = k.min(logits.len());
    if k == 0 {
        return Vec::new();
    }
    if k == 1 {
        let best =
            (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)));
        return best.map(|b| vec![b as u32]).unwrap_or_default();
    }
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
    if k < ids.len() {
        ids.select_nth_unstable_by(k - 1, by_logit);
        ids.truncate(k);
    }
    ids.sort_unstable_by(by_logit);
    ids
}

/// The tokens `rule` allows among `candidates`, with their adjusted logits, best first; when
/// it allows none, the likeliest tokens that start one of its continuations (at most one per
/// continuation's best). Empty when the rule allows nothing reachable: the caller then decodes
/// without it.
pub fn allowed(
    logits: &[f32],
    candidates: &[u32],
    piece: &dyn Fn(u32) -> String,
    rule: &dyn Rule,
    trie: &VocabTrie,
) -> Vec<(u32, f32)> {
    let mut out: Vec<(u32, f32)> = candidates
        .iter()
        .filter_map(|&token| {
            let adjust = rule.score(&piece(token));
            let logit = logits[token as usize] + adjust;
            logit.is_finite().then_some((token, logit))
        })
        .collect();
    if out.is_empty() {
        for continuation in rule.continuations().iter().take(512) {
            for token in trie.prefixes_of(continuation.as_bytes()) {
                if (token as usize) < logits.len() && !out.iter().any(|(t, _)| *t == token) {
                    out.push((token, logits[token as usize]));
                }
            }
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allows identifiers that are prefixes of `names` right after the text `"x."`.
    struct Members(&'static [&'static str]);

    impl Rule for Members {
        fn score(&self, piece: &str) -> f32 {
            let ident: String = piece
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let complete = ident.len() < piece.len();
            let ok = self.0.iter().any(|name| {
                if complete {
                    *name == ident
                } else {
                    name.starts_with(&ident)
                }
            });
            if ok { 0.0 } else { f32::NEG_INFINITY }
        }
        fn continuations(&self) -> Vec<String> {
            self.0.iter().map(|s| s.to_string()).collect()
        }
    }

    const VOCAB: &[&str] = &[
        "no", "norm", "n", "orm", "(", "rm", "normal", "len", "norm(",
    ];

    fn trie() -> VocabTrie {
        VocabTrie::new(VOCAB.iter().map(|s| s.as_bytes()))
    }

    fn piece(token: u32) -> String {
        VOCAB[token as usize].to_string()
    }

    #[test]
    fn the_trie_finds_every_token_that_spells_a_prefix() {
        let mut found = trie().prefixes_of(b"norm()");
        found.sort();
        let names: Vec<&str> = found.iter().map(|&t| VOCAB[t as usize]).collect();
        assert_eq!(names, ["no", "norm", "n", "norm("]);
        assert!(trie().prefixes_of(b"xyz").is_empty());
    }

    #[test]
    fn top_k_is_ordered_best_first() {
        assert_eq!(top_k(&[0.5, 3.0, -1.0, 2.0], 2), [1, 3]);
        assert_eq!(top_k(&[1.0], 5), [0]);
    }

    #[test]
    fn a_forbidden_favourite_gives_way_to_the_best_allowed_token() {
        // The model prefers "normal" (not a member), then "norm(".
        let mut logits = vec![0.0; VOCAB.len()];
        logits[6] = 5.0;
        logits[8] = 4.0;
        let candidates = top_k(&logits, 3);
        let picked = allowed(&logits, &candidates, &piece, &Members(&["norm"]), &trie());
        assert_eq!(picked[0].0, 8, "{picked:?}");
    }

    #[test]
    fn when_every_candidate_is_forbidden_the_trie_starts_an_allowed_name() {
        let mut logits = vec![0.0; VOCAB.len()];
        logits[7] = 9.0; // "len": not a member
        logits[1] = 1.0; // "norm"
        logits[0] = 2.0; // "no"
        let picked = allowed(&logits, &[7], &piece, &Members(&["norm"]), &trie());
        assert_eq!(VOCAB[picked[0].0 as usize], "no", "{picked:?}");
        assert!(
            picked
                .iter()
                .all(|(t, _)| ["no", "norm", "n", "norm("].contains(&VOCAB[*t as usize]))
        );
    }
}
