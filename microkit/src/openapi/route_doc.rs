//! What a router keeps about each routed method for the document: how its handler's types
//! describe it, and what the route adds by hand.

use std::sync::Arc;

use super::Operation;

/// An edit of an operation, given with [`MethodRouter::describe`](crate::router::MethodRouter::describe).
pub(crate) type OperationEdit = Arc<dyn Fn(&mut Operation) + Send + Sync>;

/// The documentation of one routed method.
#[derive(Clone)]
pub(crate) struct RouteDoc {
    /// The handler's types, describing themselves.
    pub(crate) from_types: fn(&mut Operation),
    /// The route's own notes, applied in order after the types.
    pub(crate) edits: Vec<OperationEdit>,
    /// Whether the route is left out of the document.
    pub(crate) hidden: bool,
}

impl RouteDoc {
    pub(crate) fn new(from_types: fn(&mut Operation)) -> Self {
        Self {
            from_types,
            edits: Vec::new(),
            hidden: false,
        }
    }

    /// Fills `operation`: types first, then the edits.
    pub(crate) fn describe(&self, operation: &mut Operation) {
        (self.from_types)(operation);
        for edit in &self.edits {
            edit(operation);
        }
    }
}

impl std::fmt::Debug for RouteDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteDoc")
            .field("edits", &self.edits.len())
            .field("hidden", &self.hidden)
            .finish()
    }
}
