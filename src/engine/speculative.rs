//! Greedy speculative decoding: a small draft model (Qwen2.5-Coder-0.5B) proposes a few tokens,
//! the target model (the 1.5B) checks them all in one batch, and every proposal up to the first
//! one the target would not have chosen is kept, plus the target's own next token.
//!
//! **Lossless.** Only greedy requests take this path, and every kept token is the target's own
//! argmax at its position, so the text equals what the target generates alone; only the number
//! of target decode calls changes (one per accepted run instead of one per token).
//!
//! **Two caches.** The draft has its own llama.cpp context on the model thread, one sequence per
//! slot like the target's. Both caches keep the longest common prefix of the previous prompt
//! and are cut back (`kv_cache_seq_rm`) past the last accepted token after each check.
//!
//! **Draft length** adapts between [`MIN_DRAFT`] and the configured maximum: it grows while all
//! proposals are accepted and shrinks to just past the last accepted one when they are not.
//!
//! **Tokenizers must match**: the draft's token ids are fed to the target as they are. The
//! GGUF metadata is compared before loading ([`check_tokenizers`]) and every token's text after
//! ([`check_vocabularies`]); a mismatched draft is refused with a message that says why.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use super::gguf::{GgufInfo, Value};
use super::{EngineError, Event, Request};

/// Shortest draft once it has shrunk.
pub const MIN_DRAFT: usize = 2;
/// Draft length of the first step of a request.
const START_DRAFT: usize = 4;

/// Picks the target's token at a position instead of the argmax of its logits, given every
/// token generated before it in this request (accepted, or proposed and being checked); `None`
/// leaves the argmax. Guided decoding chooses here.
pub type LogitsHook<'a> = dyn FnMut(&[LlamaToken], &[f32]) -> Option<LlamaToken> + 'a;

/// The tokenizer fields of a GGUF that must agree between a target and its draft.
const TOKENIZER_KEYS: [&str; 6] = [
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
];

fn describe(value: Option<&Value>) -> String {
    match value {
        None => "absent".into(),
        Some(Value::Array { len }) => format!("{len} entries"),
        Some(Value::Str(s)) => format!("{s:?}"),
        Some(Value::Int(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
    }
}

/// Refuses a draft whose tokenizer metadata differs from the target's: same tokenizer model
/// and pre-tokenizer, same number of tokens and merges, same BOS/EOS. Returns the reason.
pub fn check_tokenizers(target: &GgufInfo, draft: &GgufInfo) -> Result<(), String> {
    if draft.get_str("tokenizer.ggml.model").is_none() {
        return Err("the draft model has no tokenizer (tokenizer.ggml.model is absent)".into());
    }
    for key in TOKENIZER_KEYS {
        let (t, d) = (target.metadata.get(key), draft.metadata.get(key));
        if t != d {
            return Err(format!(
                "the draft model's tokenizer differs from the model's ({key}: {} in the draft, \
                 {} in the model); a draft must share the model's tokenizer, e.g. \
                 qwen2.5-coder-0.5b for qwen2.5-coder-1.5b",
                describe(d),
                describe(t)
            ));
        }
    }
    Ok(())
}

/// After loading: every token's text must be the same in both vocabularies.
pub fn check_vocabularies(target: &LlamaModel, draft: &LlamaModel) -> Result<(), String> {
    let (tv, dv) = (target.vocab(), draft.vocab());
    if tv.n_tokens() != dv.n_tokens() {
        return Err(format!(
            "the draft model has {} tokens, the model {}",
            dv.n_tokens(),
            tv.n_tokens()
        ));
    }
    for id in 0..tv.n_tokens() {
        let token = LlamaToken(id);
        if tv.text(token) != dv.text(token) {
            return Err(format!(
                "token {id} is {:?} in the draft model but {:?} in the model",
                dv.text(token),
                tv.text(token)
            ));
        }
    }
    Ok(())
}

/// The draft model's state on the model thread.
pub struct Draft<'m> {
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    /// Tokens in each sequence of the draft's cache.
    cached: Vec<Vec<LlamaToken>>,
    max_draft: usize,
}

impl<'m> Draft<'m> {
    pub fn new(
        model: &'m LlamaModel,
        params: LlamaContextParams,
        slots: usize,
        n_batch: usize,
        max_draft: usize,
    ) -> Result<Self, EngineError> {
        let ctx = model
            .new_context(super::llama::backend()?, params)
            .map_err(|e| {
                EngineError::Stopped(format!("cannot create the draft model's context: {e}"))
            })?;
        Ok(Self {
            ctx,
            batch: LlamaBatch::new(n_batch.max(max_draft + 1), 1),
            n_batch,
            cached: vec![Vec::new(); slots],
            max_draft: max_draft.max(1),
        })
    }

    /// Makes the draft's sequence hold `history` and leaves the logits after its last token at
    /// batch index `self.batch.n_tokens() - 1`.
    fn sync(&mut self, seq: usize, history: &[LlamaToken]) -> Result<(), EngineError> {
        let cached = &mut self.cached[seq];
        let common = cached
            .iter()
            .zip(history)
            .take_while(|(a, b)| a == b)
            .count()
            // The last token is decoded again for its logits.
            .min(history.len().saturating_sub(1));
        self.ctx
            .kv_cache_seq_rm(seq as i32, Some(common as u32), None)
            .map_err(|e| EngineError::Stopped(format!("draft cache: {e}")))?;
        cached.truncate(common);
        for (c, chunk) in history[common..].chunks(self.n_batch).enumerate() {
            let start = common + c * self.n_batch;
            super::llama::decode_chunk(
                &mut self.ctx,
                &mut self.batch,
                (seq, start, history.len()),
                chunk,
                "draft decode",
            )?;
            cached.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// Up to `n` greedy proposals following `history`.
    fn propose(
        &mut self,
        seq: usize,
        history: &[LlamaToken],
        n: usize,
        is_end: impl Fn(LlamaToken) -> bool,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        let mut proposals = Vec::with_capacity(n);
        if n == 0 {
            return Ok(proposals);
        }
        self.sync(seq, history)?;
        let mut index = self.batch.n_tokens() - 1;
        loop {
            let token = argmax(self.ctx.get_logits_ith(index));
            proposals.push(token);
            if proposals.len() == n || is_end(token) {
                return Ok(proposals);
            }
            let position = history.len() + proposals.len() - 1;
            self.batch.clear();
            self.batch
                .add(token, position as i32, &[seq as i32], true)
                .map_err(|e| EngineError::Stopped(e.to_string()))?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| EngineError::Stopped(format!("draft decode failed: {e}")))?;
            self.cached[seq].push(token);
            index = 0;
        }
    }
}

/// The greedy choice.
pub fn argmax(logits: &[f32]) -> LlamaToken {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    LlamaToken(best as i32)
}

/// The hook's choice, else the greedy one; counts the positions where the hook overruled it.
fn choose(
    logits: &[f32],
    generated: &[LlamaToken],
    hook: &mut Option<&mut LogitsHook<'_>>,
    overruled: &mut usize,
) -> LlamaToken {
    let best = argmax(logits);
    match hook.as_mut().and_then(|hook| hook(generated, logits)) {
        Some(token) => {
            *overruled += usize::from(token != best);
            token
        }
        None => best,
    }
}

/// The target model's side of a request: its context, sequence and what it holds.
pub struct Target<'a, 'm> {
    pub model: &'m LlamaModel,
    /// The prompt, already in the cache.
    pub prompt: &'a [LlamaToken],
    pub ctx: &'a mut LlamaContext<'m>,
    pub batch: &'a mut LlamaBatch<'static>,
    /// Tokens in the target's cache for `seq`.
    pub cached: &'a mut Vec<LlamaToken>,
    pub seq: usize,
    pub stop_tokens: &'a [LlamaToken],
    /// Batch index of the logits after the prompt's last token.
    pub logits_index: i32,
    /// The request's turn on the gate it shares with another model ([`super::gate`]).
    pub turn: Option<&'a mut super::gate::Turn>,
}

/// What a speculative generation did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub generated: usize,
    /// Draft proposals checked by the target, and how many of them it kept.
    pub drafted: usize,
    pub accepted: usize,
    /// Tokens where the hook overruled the target's first choice.
    pub guided: usize,
    /// Times it stepped aside for the other model's more urgent request.
    pub yielded: usize,
    pub cancelled: bool,
}

/// Generates greedily after the prompt (already in the target's cache, its logits at
/// `target.logits_index`), at most `max_tokens` tokens, streaming through `text`.
pub(crate) fn generate(
    target: Target<'_, '_>,
    draft: &mut Draft<'_>,
    max_tokens: usize,
    request: &Request,
    events: &mpsc::UnboundedSender<Event>,
    text: &mut super::llama::TextStream,
    mut hook: Option<&mut LogitsHook<'_>>,
) -> Result<Counts, EngineError> {
    let Target {
        model,
        prompt,
        ctx,
        batch,
        cached,
        seq,
        stop_tokens,
        logits_index,
        mut turn,
    } = target;
    let vocab = model.vocab();
    let is_end = |t: LlamaToken| vocab.is_eog(t) || stop_tokens.contains(&t);
    let mut counts = Counts::default();
    // Prompt and accepted tokens; the target's cache holds all but the last once it is longer
    // than the prompt.
    let mut history = prompt.to_vec();
    let mut pending = vec![choose(
        ctx.get_logits_ith(logits_index),
        &[],
        &mut hook,
        &mut counts.guided,
    )];
    let mut draft_len = START_DRAFT.min(draft.max_draft);
    'outer: loop {
        // Emit what the last check produced.
        for token in pending.drain(..) {
            if is_end(token) {
                break 'outer;
            }
            counts.generated += 1;
            history.push(token);
            let piece = vocab.token_to_piece(token, false, None);
            if text.push(&piece, events) || counts.generated >= max_tokens {
                break 'outer;
            }
        }
        if request.cancel.is_cancelled() || events.is_closed() {
            counts.cancelled = true;
            break;
        }
        if turn.as_mut().is_some_and(|t| t.yield_to_higher()) {
            counts.yielded += 1;
        }
        // Proposals beyond what may still be generated are wasted work: the check itself
        // yields one token more than it accepts.
        let n = draft_len.min(max_tokens - counts.generated - 1);
        let proposals = draft.propose(seq, &history, n, is_end)?;
        // Check: the last accepted token and every proposal, logits at each.
        let start = history.len() - 1;
        batch.clear();
        for (i, token) in std::iter::once(history[start])
            .chain(proposals.iter().copied())
            .enumerate()
        {
            batch
                .add(token, (start + i) as i32, &[seq as i32], true)
                .map_err(|e| EngineError::Stopped(e.to_string()))?;
        }
        ctx.decode(batch)
            .map_err(|e| EngineError::Stopped(format!("decode failed: {e}")))?;
        let generated_before = history.len() - prompt.len();
        let mut accepted = 0;
        // Overrulings at the positions whose tokens are emitted.
        let mut guided = 0;
        let mut context = history[prompt.len()..].to_vec();
        loop {
            let choice = choose(
                ctx.get_logits_ith(accepted as i32),
                &context,
                &mut hook,
                &mut guided,
            );
            pending.push(choice);
            if accepted < proposals.len() && proposals[accepted] == choice && !is_end(choice) {
                context.push(choice);
                accepted += 1;
            } else {
                break;
            }
        }
        debug_assert_eq!(context.len(), generated_before + accepted);
        counts.guided += guided;
        counts.drafted += proposals.len();
        counts.accepted += accepted;
        // The target keeps the last token and the accepted proposals.
        let keep = start + 1 + accepted;
        ctx.kv_cache_seq_rm(seq as i32, Some(keep as u32), None)
            .map_err(|e| EngineError::Stopped(format!("cache: {e}")))?;
        cached.truncate(start);
        cached.push(history[start]);
        cached.extend_from_slice(&proposals[..accepted]);
        draft_len = if accepted == proposals.len() {
            (draft_len + 2).min(draft.max_draft)
        } else {
            (accepted + 1).clamp(MIN_DRAFT.min(draft.max_draft), draft.max_draft)
        };
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn info(pairs: &[(&str, Value)]) -> GgufInfo {
        GgufInfo {
            version: 3,
            file_size: 0,
            tensor_count: 1,
            parameters: 0,
            metadata: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn qwen(tokens: u64) -> GgufInfo {
        info(&[
            ("general.architecture", Value::Str("qwen2".into())),
            ("tokenizer.ggml.model", Value::Str("gpt2".into())),
            ("tokenizer.ggml.pre", Value::Str("qwen2".into())),
            ("tokenizer.ggml.tokens", Value::Array { len: tokens }),
            ("tokenizer.ggml.merges", Value::Array { len: 151_387 }),
            ("tokenizer.ggml.bos_token_id", Value::Int(151_643)),
            ("tokenizer.ggml.eos_token_id", Value::Int(151_645)),
        ])
    }

    #[test]
    fn a_draft_with_the_same_tokenizer_is_accepted() {
        assert_eq!(check_tokenizers(&qwen(151_936), &qwen(151_936)), Ok(()));
    }

    #[test]
    fn a_mismatched_draft_is_refused_with_the_reason() {
        let err = check_tokenizers(&qwen(151_936), &qwen(32_000)).unwrap_err();
        assert!(
            err.contains("tokenizer.ggml.tokens: 32000 entries in the draft, 151936 entries"),
            "{err}"
        );
        let mut llama = qwen(151_936);
        llama
            .metadata
            .insert("tokenizer.ggml.pre".into(), Value::Str("llama-bpe".into()));
        let err = check_tokenizers(&qwen(151_936), &llama).unwrap_err();
        assert!(err.contains("tokenizer.ggml.pre"), "{err}");
        let err = check_tokenizers(&qwen(151_936), &info(&[])).unwrap_err();
        assert!(err.contains("has no tokenizer"), "{err}");
    }

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[0.0, 2.0, -1.0, 2.0]), LlamaToken(1));
    }
}
