//! Fuzzy symbol search (`workspace/symbol`, `pith` pickers) with `nucleo-matcher`.
//!
//! The haystack (every definition's name, pre-converted to nucleo's UTF-32 form) is built once
//! per index generation and shared, so a query only scores; a memchr subsequence check rules
//! out most names before nucleo sees them (86k stdlib names: ~4 ms a query).

use std::cmp::Reverse;
use std::sync::{Arc, RwLock};

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str, Utf32String};

use super::{SymbolKind, SymbolRef, WorkspaceIndex};

/// The prebuilt haystack and the index generation it was built from.
#[derive(Debug, Default)]
pub(super) struct SearchCache {
    list: RwLock<Option<(u64, Haystack)>>,
}

/// Every searchable name in nucleo's form, beside the definition it names.
type Haystack = Arc<Vec<(Utf32String, SymbolRef)>>;

/// The characters a name must contain, in order and ignoring ASCII case, to possibly match a
/// query; None when the query is not a single plain ASCII word (nucleo's `!`, `^`, `'`, `$`
/// and several words, or non-ASCII that normalization may fold), so that nothing it would
/// match is filtered out.
fn required_subsequence(query: &str) -> Option<Vec<u8>> {
    let query = query.trim();
    let plain = query
        .bytes()
        .all(|byte| byte.is_ascii_graphic() && !matches!(byte, b'!' | b'^' | b'\'' | b'$' | b'\\'));
    plain.then(|| {
        query
            .bytes()
            .map(|byte| byte.to_ascii_lowercase())
            .collect()
    })
}

/// Whether `name` contains `wanted` (lower-case ASCII) as a case-insensitive subsequence; one
/// memchr per wanted byte.
fn contains_subsequence(name: &[u8], wanted: &[u8]) -> bool {
    let mut rest = name;
    for &byte in wanted {
        let found = if byte.is_ascii_lowercase() {
            memchr::memchr2(byte, byte.to_ascii_uppercase(), rest)
        } else {
            memchr::memchr(byte, rest)
        };
        match found {
            Some(at) => rest = &rest[at + 1..],
            None => return false,
        }
    }
    true
}

impl WorkspaceIndex {
    /// Definitions whose name fuzzy-matches `query`, best first (ties: shorter name, then
    /// name, then path). An empty query gives nothing.
    pub fn search_symbols(&self, query: &str, limit: usize) -> Vec<SymbolRef> {
        if query.trim().is_empty() || limit == 0 {
            return Vec::new();
        }
        let list = self.search_list();
        let pattern = Pattern::parse(query, CaseMatching::Smart, Normalization::Smart);
        let mut matcher = Matcher::new(Config::DEFAULT);
        // Scoring every name costs ~100 ns; most names lack the query's letters, which a
        // memchr pass rules out far cheaper.
        let required = required_subsequence(query);
        let mut scored: Vec<(u32, usize)> = list
            .iter()
            .enumerate()
            .filter(|(_, (haystack, _))| match (&required, haystack.slice(..)) {
                (Some(wanted), Utf32Str::Ascii(name)) => contains_subsequence(name, wanted),
                // Normalization may match `é` for `e`: only ASCII names are prefiltered.
                _ => true,
            })
            .filter_map(|(position, (haystack, _))| {
                pattern
                    .score(haystack.slice(..), &mut matcher)
                    .map(|score| (score, position))
            })
            .collect();
        let order = |a: &(u32, usize), b: &(u32, usize)| {
            let (left, right) = (&list[a.1].1, &list[b.1].1);
            (
                Reverse(a.0),
                left.symbol().name.len(),
                &left.symbol().name,
                &left.file.path,
            )
                .cmp(&(
                    Reverse(b.0),
                    right.symbol().name.len(),
                    &right.symbol().name,
                    &right.file.path,
                ))
        };
        // Only the best `limit` are wanted: a short query matches thousands of names.
        if scored.len() > limit {
            scored.select_nth_unstable_by(limit - 1, order);
            scored.truncate(limit);
        }
        scored.sort_by(order);
        scored
            .into_iter()
            .take(limit)
            .map(|(_, position)| list[position].1.clone())
            .collect()
    }

    fn search_list(&self) -> Haystack {
        let generation = self.generation();
        if let Ok(cache) = self.search_list.list.read()
            && let Some((cached, list)) = cache.as_ref()
            && *cached == generation
        {
            return list.clone();
        }
        let mut list = Vec::new();
        for file in self.files() {
            for (index, symbol) in file.symbols.iter().enumerate() {
                if symbol.kind != SymbolKind::Impl {
                    list.push((
                        Utf32String::from(&*symbol.name),
                        SymbolRef {
                            file: file.clone(),
                            index,
                        },
                    ));
                }
            }
        }
        let list = Arc::new(list);
        if let Ok(mut cache) = self.search_list.list.write() {
            *cache = Some((generation, list.clone()));
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::{contains_subsequence, required_subsequence};

    #[test]
    fn the_prefilter_keeps_every_name_nucleo_could_match() {
        let wanted = required_subsequence("HTTPConn").expect("plain query");
        assert!(contains_subsequence(b"HTTPConnection", &wanted));
        assert!(contains_subsequence(b"http_connect_now", &wanted));
        assert!(!contains_subsequence(b"HTTPServer", &wanted));
        let wanted = required_subsequence("reqhdl").expect("plain query");
        assert!(contains_subsequence(b"BaseRequestHandler", &wanted));
        for special in [
            "!test",
            "^start",
            "end$",
            "'exact",
            "two words",
            "caf\u{e9}",
        ] {
            assert_eq!(required_subsequence(special), None, "{special}");
        }
    }
}
