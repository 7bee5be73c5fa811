//! Engine tests: the embedded llama.cpp backend with the real default model (skipped, loudly,
//! when it is not installed), GGUF validation, and the remote backend against a local server.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pith::engine::{
    ContextFile, Engine, EngineError, EngineSettings, Event, LlamaEngine, Message, Priority,
    Prompt, Request, RequestStats, Role, Sampling, Slot,
};
use tokio_util::sync::CancellationToken;

/// One engine for the whole file: loading the model is the slow part.
fn engine() -> Option<&'static LlamaEngine> {
    static ENGINE: OnceLock<Option<LlamaEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let installed = pith::engine::model::default_model_path().is_some_and(|p| p.exists());
            if !installed {
                eprintln!(
                    "\n\n*** SKIPPED: the default model is not installed; run `pith model install` ***\n"
                );
                return None;
            }
            let settings = EngineSettings {
                context_size: 1024,
                ..EngineSettings::default()
            };
            Some(LlamaEngine::open(&settings).expect("the default model loads"))
        })
        .as_ref()
}

fn request(prompt: Prompt, max_tokens: u32, slot: Slot) -> Request {
    Request {
        prompt,
        max_tokens,
        stop: Vec::new(),
        stop_when: None,
        sampling: Sampling::default(),
        priority: Priority::Interactive,
        slot,
        cancel: CancellationToken::new(),
        supersede_key: None,
    }
}

fn chat(text: &str) -> Prompt {
    Prompt::Chat(vec![Message {
        role: Role::User,
        content: text.into(),
    }])
}

/// Collects a request's events: (text, how it ended).
fn run(
    engine: &dyn Engine,
    request: Request,
) -> (String, Result<RequestStats, Option<EngineError>>) {
    let mut events = engine.submit(request);
    let mut text = String::new();
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::Done(stats) => return (text, Ok(stats)),
            Event::Cancelled => return (text, Err(None)),
            Event::Failed(e) => return (text, Err(Some(e))),
        }
    }
    panic!("the event stream ended without a final event");
}

#[test]
fn chat_template_is_applied_and_answers() {
    let Some(engine) = engine() else { return };
    let rendered = engine.render_prompt(&chat("Say hi")).unwrap();
    assert!(
        rendered.contains("<|im_start|>user\nSay hi<|im_end|>"),
        "{rendered}"
    );
    assert!(rendered.ends_with("<|im_start|>assistant\n"), "{rendered}");
    let (text, done) = run(
        engine,
        request(chat("What is 2+2? Answer with one number."), 8, Slot::Chat),
    );
    eprintln!("chat answer: {text:?} {done:?}");
    assert!(text.contains('4'), "{text:?}");
}
