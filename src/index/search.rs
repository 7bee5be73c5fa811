//! Fuzzy symbol search (`workspace/symbol`, `pith` pickers) with `nucleo-matcher`.
//!
//! The haystack (every definition's name, pre-converted to nucleo's UTF-32 form) is built once
//! per index generation and shared, so a query only scores: about 40k names fit well under
//! 10 ms.

use std::cmp::Reverse;
use std::sync::{Arc, RwLock};

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32String};

use super::{SymbolKind, SymbolRef, WorkspaceIndex};

/// The prebuilt haystack and the index generation it was built from.
#[derive(Debug, Default)]
pub(super) struct SearchCache {
    list: RwLock<Option<(u64, Haystack)>>,
}

/// Every searchable name in nucleo's form, beside the definition it names.
type Haystack = Arc<Vec<(Utf32String, SymbolRef)>>;

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
        let mut scored: Vec<(u32, usize)> = list
            .iter()
            .enumerate()
            .filter_map(|(position, (haystack, _))| {
                pattern
                    .score(haystack.slice(..), &mut matcher)
                    .map(|score| (score, position))
            })
            .collect();
        scored.sort_by(|a, b| {
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
        });
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
                        Utf32String::from(symbol.name.as_str()),
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
