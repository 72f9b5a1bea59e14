//! A radix-tree path matcher: maps a request path to the route that matches
//! it, capturing the route's parameters.
//!
//! The matcher has the semantics of [matchit](https://docs.rs/matchit/0.9)
//! 0.9 (the router of axum 0.8); this documentation is its specification.
//!
//! # Route syntax
//!
//! A route is matched byte for byte against the path, except for:
//!
//! - `{name}`: a parameter, matching one non-empty run of bytes without a
//!   `/` (a segment, or part of one). A segment may hold a single parameter,
//!   optionally surrounded by a static prefix and/or suffix, as in
//!   `/files/img-{id}.png`. `/{a}-{b}` is rejected
//!   ([`InsertError::InvalidParamSegment`]).
//! - `{*name}`: a catch-all, matching the non-empty rest of the path,
//!   slashes included. It must end the route
//!   ([`InsertError::InvalidCatchAll`]) and may follow a static prefix, as in
//!   `/assets/v-{*path}`.
//! - `{{` and `}}`: a literal `{` or `}`.
//!
//! Names must be non-empty and may not contain `/` or `*`; braces must be
//! balanced ([`InsertError::InvalidParam`]). Routes need not start with `/`.
//!
//! ```
//! use microkit::router::matcher::Matcher;
//!
//! let mut matcher = Matcher::new();
//! matcher.insert("/users/{id}", "user")?;
//! matcher.insert("/files/{name}.txt", "text file")?;
//! matcher.insert("/static/{*path}", "asset")?;
//! matcher.insert("/{{braces}}", "literal")?;
//!
//! let matched = matcher.at("/users/42")?;
//! assert_eq!(*matched.value, "user");
//! assert_eq!(matched.params.get("id"), Some("42"));
//!
//! assert_eq!(matcher.at("/files/notes.txt")?.params.get("name"), Some("notes"));
//! assert_eq!(matcher.at("/static/css/site.css")?.params.get("path"), Some("css/site.css"));
//! assert_eq!(*matcher.at("/{braces}")?.value, "literal");
//!
//! // Parameters and catch-alls never match empty.
//! assert!(matcher.at("/users/").is_err());
//! assert!(matcher.at("/static/").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Priority
//!
//! Within a segment, candidates are tried in this order: static bytes, then
//! a parameter with a static prefix or suffix, then a plain parameter, then a
//! catch-all. The search backtracks: when the more specific branch fails
//! further down the path, the less specific one is tried.
//!
//! ```
//! use microkit::router::matcher::Matcher;
//!
//! let mut matcher = Matcher::new();
//! matcher.insert("/users/me/settings", "my settings")?;
//! matcher.insert("/users/{id}/profile", "profile")?;
//! matcher.insert("/{*rest}", "fallback")?;
//!
//! assert_eq!(*matcher.at("/users/me/settings")?.value, "my settings");
//! // `me` is tried as a static segment first, then as `{id}`.
//! assert_eq!(*matcher.at("/users/me/profile")?.value, "profile");
//! assert_eq!(*matcher.at("/users/me/other")?.value, "fallback");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Conflicts
//!
//! A route is rejected with [`InsertError::Conflict`] when it would make a
//! lookup ambiguous:
//!
//! - the same route, or one that only differs in parameter names
//!   (`/a/{x}` and `/a/{y}`), exists;
//! - a catch-all and another parameter start at the same position
//!   (`/src/{*path}` and `/src/{file}`), or a catch-all would have children;
//! - parameters at the same position in a segment mix static prefixes with
//!   static suffixes, e.g. `/{x}.txt` next to `img-{x}`, or `pre{x}` next to
//!   `pre{x}post` (several suffixes of one unprefixed parameter, like
//!   `/{x}.txt` and `/{x}.png`, are fine).
//!
//! Static routes never conflict with parameters (`/users/me` and
//! `/users/{id}` coexist), and a parameter with a suffix coexists with the
//! same parameter without one (`/{x}` and `/{x}.txt`). Which existing route
//! an error names may depend on insertion order. A failed insertion leaves
//! the matcher unchanged.
//!
//! ```
//! use microkit::router::matcher::{InsertError, Matcher};
//!
//! let mut matcher = Matcher::new();
//! matcher.insert("/a/{x}", ())?;
//! let error = matcher.insert("/a/{y}", ()).unwrap_err();
//! assert!(matches!(error, InsertError::Conflict { .. }));
//! assert_eq!(
//!     error.to_string(),
//!     "cannot insert route `/a/{y}`: it conflicts with the existing route `/a/{x}`"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Raw paths
//!
//! Matching is done on the raw path: nothing is percent-decoded or
//! normalized, so `/a%2Fb` is one segment and `/users/` does not match
//! `/users` (there is no trailing-slash redirection here; the router does
//! that with a second lookup). Parameter values are slices of the raw path;
//! decoding them is up to the caller.

mod error;
mod escape;
mod params;
mod tree;

pub use self::error::{InsertError, MatchError, MergeError};
pub(crate) use self::params::ParamRanges;
pub use self::params::Params;

use self::tree::Node;
use std::fmt;

/// A set of routes, each with a value, that paths are matched against.
///
/// See the [module documentation](self) for the route syntax and the
/// matching rules.
#[derive(Clone)]
pub struct Matcher<T> {
    root: Node,
    /// The values, indexed by the slots stored in the tree.
    slots: Vec<Option<T>>,
    /// Slots emptied by [`Matcher::remove`], reused by later insertions.
    free_slots: Vec<usize>,
    len: usize,
}

/// A successful lookup: the value of the matched route and its parameters.
#[derive(Debug)]
pub struct Match<'k, 'v, V> {
    /// The value of the matched route.
    pub value: V,
    /// The parameters of the matched route, captured from the path.
    pub params: Params<'k, 'v>,
}

impl<T> Default for Matcher<T> {
    fn default() -> Self {
        Self {
            root: Node::default(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            len: 0,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Matcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut routes = self.root.routes();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        f.debug_map()
            .entries(
                routes
                    .iter()
                    .filter_map(|(route, slot)| Some((route, self.slots.get(*slot)?.as_ref()?))),
            )
            .finish()
    }
}

impl<T> Matcher<T> {
    /// Creates an empty matcher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route with its value.
    ///
    /// Fails, leaving the matcher unchanged, if the route is malformed or
    /// conflicts with an existing route (see the [module documentation](self)).
    pub fn insert(&mut self, route: impl Into<String>, value: T) -> Result<(), InsertError> {
        let route = route.into();
        let slot = self.free_slots.last().copied().unwrap_or(self.slots.len());
        if let Err(failure) = self.root.insert(&route, slot) {
            return Err(failure.for_route(route));
        }
        if slot == self.slots.len() {
            self.slots.push(Some(value));
        } else {
            self.free_slots.pop();
            self.slots[slot] = Some(value);
        }
        self.len += 1;
        Ok(())
    }

    /// Finds the route matching `path` and returns its value and parameters.
    #[inline]
    pub fn at<'m, 'p>(&'m self, path: &'p str) -> Result<Match<'m, 'p, &'m T>, MatchError> {
        let (slot, names, values) = lookup(&self.root, path)?;
        let value = self
            .slots
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or(MatchError::NotFound)?;
        Ok(Match {
            value,
            params: Params::new(names, values),
        })
    }

    /// Like [`Matcher::at`], but returns the value mutably.
    #[inline]
    pub fn at_mut<'m, 'p>(
        &'m mut self,
        path: &'p str,
    ) -> Result<Match<'m, 'p, &'m mut T>, MatchError> {
        let (slot, names, values) = lookup(&self.root, path)?;
        let value = self
            .slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(MatchError::NotFound)?;
        Ok(Match {
            value,
            params: Params::new(names, values),
        })
    }

    /// Removes a route, written exactly as it was inserted (parameter names
    /// included), and returns its value.
    pub fn remove(&mut self, route: impl Into<String>) -> Option<T> {
        let slot = self.root.remove(&route.into())?;
        let value = self.slots.get_mut(slot)?.take()?;
        self.free_slots.push(slot);
        self.len -= 1;
        Some(value)
    }

    /// Inserts every route of `other`.
    ///
    /// Routes that cannot be inserted are reported together; the others are
    /// inserted anyway.
    pub fn merge(&mut self, mut other: Self) -> Result<(), MergeError> {
        let mut errors = Vec::new();
        for (route, slot) in other.root.routes() {
            let Some(value) = other.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            if let Err(error) = self.insert(route, value) {
                errors.push(error);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(MergeError(errors))
        }
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Looks `path` up in the tree.
///
/// A free function so that [`Matcher::at_mut`] can borrow the tree and the
/// values separately.
#[inline]
fn lookup<'m, 'p>(root: &'m Node, path: &'p str) -> Result<tree::Found<'m, 'p>, MatchError> {
    // Parameter values are stored as `u32` offsets; no real path is
    // anywhere near 4 GiB.
    if u32::try_from(path.len()).is_err() {
        return Err(MatchError::NotFound);
    }
    root.at(path).ok_or(MatchError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_mut_updates_the_value() {
        let mut matcher = Matcher::new();
        matcher.insert("/count/{n}", 0).unwrap();
        let matched = matcher.at_mut("/count/3").unwrap();
        assert_eq!(matched.params.get("n"), Some("3"));
        *matched.value += 1;
        assert_eq!(*matcher.at("/count/9").unwrap().value, 1);
    }

    #[test]
    fn remove_frees_the_slot_for_reuse() {
        let mut matcher = Matcher::new();
        matcher.insert("/a", 1).unwrap();
        matcher.insert("/b", 2).unwrap();
        assert_eq!(matcher.remove("/a"), Some(1));
        assert_eq!(matcher.remove("/a"), None);
        assert_eq!(matcher.len(), 1);
        matcher.insert("/c", 3).unwrap();
        assert_eq!(matcher.slots.len(), 2);
        assert_eq!(*matcher.at("/c").unwrap().value, 3);
        assert_eq!(*matcher.at("/b").unwrap().value, 2);
    }

    #[test]
    fn merge_inserts_what_it_can() {
        let mut matcher = Matcher::new();
        matcher.insert("/a", "a").unwrap();
        let mut other = Matcher::new();
        other.insert("/a", "other a").unwrap();
        other.insert("/b/{id}", "b").unwrap();
        let errors = matcher.merge(other).unwrap_err().into_errors();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].route(), "/a");
        assert_eq!(*matcher.at("/a").unwrap().value, "a");
        assert_eq!(*matcher.at("/b/1").unwrap().value, "b");
        assert_eq!(matcher.len(), 2);
    }

    #[test]
    fn failed_insert_keeps_the_matcher_unchanged() {
        let mut matcher = Matcher::new();
        matcher.insert("/x/{id}", 1).unwrap();
        assert!(matcher.insert("/x/{*rest}", 2).is_err());
        assert!(matcher.insert("/x/{a}{b}", 3).is_err());
        assert_eq!(matcher.len(), 1);
        assert_eq!(matcher.at("/x/7").unwrap().params.get("id"), Some("7"));
        assert!(matcher.at("/x/7/8").is_err());
    }
}
