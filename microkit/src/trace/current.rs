//! The current trace context: a thread-local slot that a request's future fills while it is
//! polled and empties after, as tokio's task-locals do, with less machinery (one swap in, one
//! swap out, no allocation), since every request pays for it.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::TraceContext;

thread_local! {
    static CURRENT: RefCell<Option<TraceContext>> = const { RefCell::new(None) };
}

/// Runs `f` with `slot`'s context current, then puts it back (also when `f` panics); what was
/// current before is current again after.
///
/// Always inlined: it runs twice per request, and called it costs as much again as its swaps.
#[inline(always)]
pub(super) fn with_slot<R>(slot: &mut Option<TraceContext>, f: impl FnOnce() -> R) -> R {
    let _entered = Entered::new(slot);
    f()
}

/// `slot`'s context made current until this drops (also when unwinding), when it goes back
/// into the slot and what was current before is current again: for code that runs once in a
/// context without moving what it works on into a closure. The context is moved, not cloned:
/// while entered, the slot holds what was current before.
pub(super) struct Entered<'a> {
    slot: &'a mut Option<TraceContext>,
}

impl<'a> Entered<'a> {
    #[inline(always)]
    pub(super) fn new(slot: &'a mut Option<TraceContext>) -> Self {
        swap(slot);
        Self { slot }
    }
}

impl Drop for Entered<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        swap(self.slot);
    }
}

#[inline(always)]
fn swap(slot: &mut Option<TraceContext>) {
    CURRENT.with(|current| std::mem::swap(&mut *current.borrow_mut(), slot));
}

/// Reads the current context, if any.
pub(super) fn with_current<R>(f: impl FnOnce(Option<&TraceContext>) -> R) -> R {
    CURRENT.with(|current| f(current.borrow().as_ref()))
}

/// Changes the current context, if any: the change stays with the future whose slot it is.
pub(super) fn with_current_mut<R>(f: impl FnOnce(Option<&mut TraceContext>) -> R) -> R {
    CURRENT.with(|current| f(current.borrow_mut().as_mut()))
}

pin_project_lite::pin_project! {
    /// A future polled with a trace context current: see [`scope`](super::scope).
    pub struct InTrace<F> {
        #[pin]
        inner: F,
        context: Option<TraceContext>,
    }
}

impl<F> InTrace<F> {
    pub(super) fn new(context: Option<TraceContext>, inner: F) -> Self {
        Self { inner, context }
    }
}

impl<F: Future> Future for InTrace<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        with_slot(this.context, || inner.poll(cx))
    }
}

impl<F> std::fmt::Debug for InTrace<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InTrace")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::current;

    fn current_trace() -> Option<crate::trace::TraceId> {
        current().map(|context| context.trace_id())
    }

    #[test]
    fn an_entered_context_is_current_until_dropped_then_the_one_before_is() {
        let (outer, inner) = (TraceContext::root(), TraceContext::root());
        let (mut outer_slot, mut inner_slot) = (Some(outer.clone()), Some(inner.clone()));
        let entered_outer = Entered::new(&mut outer_slot);
        {
            let _inner = Entered::new(&mut inner_slot);
            assert_eq!(current_trace(), Some(inner.trace_id()));
        }
        assert_eq!(current_trace(), Some(outer.trace_id()));
        drop(entered_outer);
        assert_eq!(current_trace(), None);
        // Each context is back in its slot.
        assert_eq!(
            outer_slot.map(|context| context.trace_id()),
            Some(outer.trace_id())
        );
        assert_eq!(
            inner_slot.map(|context| context.trace_id()),
            Some(inner.trace_id())
        );
    }

    #[test]
    fn a_panic_inside_leaves_the_context_that_was_current() {
        let outer = TraceContext::root();
        let mut outer_slot = Some(outer.clone());
        let _outer = Entered::new(&mut outer_slot);
        let panicked = std::panic::catch_unwind(|| {
            let mut inner_slot = Some(TraceContext::root());
            let _inner = Entered::new(&mut inner_slot);
            panic!("on purpose");
        });
        assert!(panicked.is_err());
        assert_eq!(current_trace(), Some(outer.trace_id()));
    }
}
