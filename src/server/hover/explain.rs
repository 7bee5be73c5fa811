//! The model's explanation under a hover (`assist::explain`): from the cache when the symbol's
//! code has been explained before, else generated while the hover waits up to
//! `hover.timeout_ms`; past that the hover returns without it and generation goes on in the
//! background into the cache, so the next hover shows it. At most `ai::MAX_EXPLAINING` run at
//! once: hovering across a file cancels the oldest rather than queueing minutes of model time.
//! A hover is a glance: its explanation is background work, which gives the model up to
//! anything a user asks for (an ask, a code action) and is generated again on a later hover.

use std::time::Duration;

use crate::assist::{AssistError, explain};
use crate::engine::Priority;
use crate::index::SymbolRef;
use crate::server::session::Session;

/// The explanation of `target` for a hover, if one is ready in time. Blocking: call it from a
/// blocking task (hover handlers run in one).
pub fn hover_explanation(session: &Session, target: &SymbolRef) -> Option<String> {
    let config = session.ai.config();
    if !config.hover.explain {
        return None;
    }
    let timeout_ms = config.hover.timeout_ms;
    let key = explain::explanation_key(target);
    if let Some(text) = session.ai.cached_explanation(&key) {
        return Some(text);
    }
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    if let Some(cancel) = session.ai.start_explaining(&key) {
        let ai = session.ai.clone();
        let index = session.index.clone();
        let target = target.clone();
        let key = key.clone();
        runtime.spawn(async move {
            let engine = tokio::task::spawn_blocking({
                let ai = ai.clone();
                move || ai.engine()
            })
            .await;
            if let Ok(Ok(engine)) = engine {
                let result = explain::explain(
                    &*engine,
                    &config,
                    &index,
                    &target,
                    Priority::Background,
                    cancel,
                )
                .await;
                match result {
                    Ok(explanation) if !explanation.text.is_empty() => {
                        ai.store_explanation(&key, &explanation.text);
                        let _ = done_tx.send(explanation.text);
                    }
                    Ok(_) => {}
                    Err(AssistError::Cancelled) => tracing::debug!("hover explanation cancelled"),
                    Err(error) => tracing::warn!(%error, "hover explanation failed"),
                }
            }
            ai.done_explaining(&key);
        });
    }
    done_rx.recv_timeout(Duration::from_millis(timeout_ms)).ok()
}
