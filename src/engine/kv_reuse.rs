//! Which part of a slot's KV cache a new prompt can reuse: the common prefix, plus one later
//! run of cached tokens moved to where the new prompt has them.
//!
//! The moves pay off when text disappears from the middle of a prompt: a retrieved snippet that
//! drops out of the context, lines deleted above the cursor. Everything after the gap is shifted
//! back to its new positions (llama.cpp re-rotates the keys) instead of being decoded again: the
//! same greedy scan as llama-server's `--cache-reuse`, which llama.vim relies on. llama.cpp
//! only appends at the end of a sequence, so runs move back, never forward, and new tokens are
//! decoded after the last kept one. Moved tokens keep the attention they computed over the old
//! text, an approximation limited to runs of at least `min_run` tokens.

/// What to keep of the cache for new tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReusePlan {
    /// Leading tokens shared with the cache, kept in place.
    pub keep: usize,
    /// Later runs of cached tokens moved back, in order, each directly after the previous.
    pub moves: Vec<Move>,
}

/// `len` cached tokens at positions `from..` go to positions `to..` (`to < from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub from: usize,
    pub to: usize,
    pub len: usize,
}

impl ReusePlan {
    /// Leading tokens of the new prompt that need no decoding.
    pub fn reused(&self) -> usize {
        self.keep + self.moves.iter().map(|m| m.len).sum::<usize>()
    }
}

/// Plans the reuse of `cached` for `new`. The last token of `new` is always decoded (its logits
/// start generation). Runs shorter than `min_run` tokens are not moved (0: never move).
pub fn plan<T: Copy + Eq>(cached: &[T], new: &[T], min_run: usize) -> ReusePlan {
    let mut keep = cached.iter().zip(new).take_while(|(a, b)| a == b).count();
    if keep == new.len() {
        keep = keep.saturating_sub(1);
    }
    let mut plan = ReusePlan {
        keep,
        moves: Vec::new(),
    };
    if min_run == 0 {
        return plan;
    }
    let new_end = new.len().saturating_sub(1);
    let (mut head_cached, mut head_new) = (keep, keep);
    while head_cached < cached.len() && head_new + min_run <= new_end {
        let len = cached[head_cached..]
            .iter()
            .zip(&new[head_new..new_end])
            .take_while(|(a, b)| a == b)
            .count();
        if len >= min_run {
            plan.moves.push(Move {
                from: head_cached,
                to: head_new,
                len,
            });
            head_cached += len;
            head_new += len;
        } else {
            head_cached += 1;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<char> {
        text.chars().collect()
    }

    #[test]
    fn identical_prompt_decodes_only_its_last_token() {
        let t = tokens("abcdefghijklmnopqrstuvwxyz");
        let plan = plan(&t, &t, 8);
        assert_eq!(plan.keep, 25);
        assert!(plan.moves.is_empty());
    }

    #[test]
    fn a_snippet_dropped_from_the_context_moves_the_rest_back() {
        let old = tokens("SYSTEM|snippet-one|snippet-two|prefix-of-the-buffer|Mgenerated");
        let new = tokens("SYSTEM|snippet-two|prefix-of-the-buffer|typedM");
        let plan = plan(&old, &new, 8);
        assert_eq!(plan.keep, "SYSTEM|snippet-".len());
        let moved = &plan.moves[0];
        assert_eq!(moved.to, plan.keep);
        assert_eq!(moved.from, "SYSTEM|snippet-one|snippet-".len());
        assert_eq!(
            &new[moved.to..moved.to + moved.len],
            &tokens("two|prefix-of-the-buffer|")[..]
        );
        assert_eq!(plan.reused(), new.len() - "typedM".len());
    }

    #[test]
    fn several_gaps_give_several_moves_in_order() {
        let old = tokens("head|AAAA|first-run-text|BBBB|second-run-text|tail");
        let new = tokens("head|first-run-text|second-run-text|end");
        let plan = plan(&old, &new, 8);
        assert_eq!(plan.moves.len(), 2);
        assert!(plan.moves[0].to + plan.moves[0].len == plan.moves[1].to);
        assert!(plan.moves.iter().all(|m| m.to < m.from));
        assert_eq!(plan.reused(), new.len() - "end".len());
    }

    #[test]
    fn runs_shorter_than_the_minimum_are_decoded_again() {
        let old = tokens("prefixXshort-runYtail");
        let new = tokens("prefixshort-runW");
        assert!(plan(&old, &new, 32).moves.is_empty());
        assert!(plan(&old, &new, 0).moves.is_empty());
        assert_eq!(plan(&old, &new, 8).reused(), "prefixshort-run".len());
    }

    #[test]
    fn text_inserted_in_the_middle_cannot_move_anything_forward() {
        let old = tokens("prefix|the-rest-of-the-prompt|M");
        let new = tokens("prefix|INSERTED|the-rest-of-the-prompt|M");
        let plan = plan(&old, &new, 8);
        assert!(plan.moves.is_empty());
        assert_eq!(plan.keep, "prefix|".len());
    }

    #[test]
    fn the_last_new_token_is_never_covered_by_a_move() {
        let old = tokens("XYabcdefghijklmnop");
        let new = tokens("Xabcdefghijklmnop");
        let plan = plan(&old, &new, 8);
        assert_eq!(plan.reused(), new.len() - 1);
    }
}
