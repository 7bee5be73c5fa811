//! The turn two embedded engines take on the CPU (see [`super::route`]): one computes at a
//! time, because each would use every core. Unlike a plain mutex, the gate knows the priority
//! of who waits, so that a request running on one model can step aside, between two decode
//! steps, for a more urgent one on the other (an inline completion while the chat model writes
//! an explanation), and resume where it was: each model keeps its own KV cache, so pausing
//! costs nothing but the wait.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::Priority;

const LEVELS: usize = 3;

fn level(priority: Priority) -> usize {
    match priority {
        Priority::Background => 0,
        Priority::Interactive => 1,
        Priority::Completion => 2,
    }
}

#[derive(Default)]
struct State {
    held: bool,
    /// Threads waiting for a turn, by priority level.
    waiting: [usize; LEVELS],
}

impl State {
    fn outranked(&self, priority: Priority) -> bool {
        self.waiting[level(priority) + 1..].iter().any(|&n| n > 0)
    }
}

/// Shared by the engines that must not compute at once.
#[derive(Default)]
pub struct Gate {
    state: Mutex<State>,
    turn: Condvar,
}

/// A turn on the gate; the gate is free again when it is dropped.
pub struct Turn {
    gate: Arc<Gate>,
    priority: Priority,
}

impl Gate {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the gate is free and nobody of higher priority waits for it.
    fn wait_turn<'s>(&'s self, mut state: MutexGuard<'s, State>, priority: Priority) {
        state.waiting[level(priority)] += 1;
        while state.held || state.outranked(priority) {
            state = self.turn.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.waiting[level(priority)] -= 1;
        state.held = true;
    }

    /// Takes a turn at `priority`, waiting for it.
    pub fn enter(self: &Arc<Self>, priority: Priority) -> Turn {
        self.wait_turn(self.state(), priority);
        Turn {
            gate: self.clone(),
            priority,
        }
    }
}

impl Turn {
    /// Whether someone of higher priority waits for the gate.
    pub fn outranked(&self) -> bool {
        self.gate.state().outranked(self.priority)
    }

    /// Steps aside for whoever of higher priority waits, then takes the turn back. True when
    /// it stepped aside.
    pub fn yield_to_higher(&mut self) -> bool {
        let mut state = self.gate.state();
        if !state.outranked(self.priority) {
            return false;
        }
        state.held = false;
        self.gate.turn.notify_all();
        self.gate.wait_turn(state, self.priority);
        true
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.gate.state().held = false;
        self.gate.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    fn wait_until(what: impl Fn() -> bool) {
        for _ in 0..500 {
            if what() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("timed out");
    }

    /// A thread that takes a turn at `priority`; the flag says it got it.
    fn take_turn(
        gate: &Arc<Gate>,
        priority: Priority,
    ) -> (std::thread::JoinHandle<()>, Arc<AtomicBool>) {
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (gate, done) = (gate.clone(), done.clone());
            std::thread::spawn(move || {
                let _turn = gate.enter(priority);
                done.store(true, Ordering::SeqCst);
            })
        };
        (thread, done)
    }

    #[test]
    fn a_turn_steps_aside_for_a_higher_priority_and_takes_the_gate_back() {
        let gate = Arc::new(Gate::default());
        let mut explanation = gate.enter(Priority::Background);
        assert!(!explanation.yield_to_higher(), "nobody waits");
        let (completion, done) = take_turn(&gate, Priority::Completion);
        wait_until(|| explanation.outranked());
        assert!(!done.load(Ordering::SeqCst), "the gate is held");
        assert!(explanation.yield_to_higher());
        // Back in turn: the completion ran in between.
        assert!(done.load(Ordering::SeqCst));
        assert!(!explanation.outranked());
        drop(explanation);
        completion.join().unwrap();
    }

    #[test]
    fn equal_or_lower_priority_waits_for_the_turn_to_end() {
        let gate = Arc::new(Gate::default());
        let turn = gate.enter(Priority::Interactive);
        let (other, done) = take_turn(&gate, Priority::Interactive);
        wait_until(|| gate.state().waiting[level(Priority::Interactive)] == 1);
        assert!(!turn.outranked());
        assert!(!done.load(Ordering::SeqCst));
        drop(turn);
        other.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
    }
}
