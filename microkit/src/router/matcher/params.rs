//! The parameters captured by a successful lookup.

use std::fmt;
use std::sync::{Arc, LazyLock};

/// How many parameter values are stored without a heap allocation.
const INLINE_CAPACITY: usize = 4;

/// The values captured while walking the tree, in route order, as byte
/// ranges of the looked-up path.
///
/// Ranges rather than `&str`s keep this small and leave the UTF-8 boundary
/// checks to the (rarer) accesses. The first [`INLINE_CAPACITY`] ranges live
/// inline so that typical lookups never allocate; further ones spill into a
/// vector. Offsets are `u32`: [`Matcher::at`](super::Matcher::at) rejects
/// paths of 4 GiB or more.
#[derive(Clone, Default)]
pub(crate) struct ParamRanges {
    inline: [(u32, u32); INLINE_CAPACITY],
    spilled: Vec<(u32, u32)>,
    len: usize,
}

impl ParamRanges {
    /// Captures `start..end`.
    #[inline]
    fn push(&mut self, start: usize, end: usize) {
        // Lossless: the path is shorter than 4 GiB.
        let range = (start as u32, end as u32);
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = range,
            None => self.spilled.push(range),
        }
        self.len += 1;
    }

    /// Forgets the ranges captured after the first `len`, when backtracking.
    #[inline]
    fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.spilled.truncate(len.saturating_sub(INLINE_CAPACITY));
            self.len = len;
        }
    }

    /// How many values were captured.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The values, cut out of `path`: the path these ranges were captured in.
    pub(crate) fn values<'a, 'p: 'a>(
        &'a self,
        path: &'p str,
    ) -> impl Iterator<Item = &'p str> + 'a {
        let inline_len = self.len.min(INLINE_CAPACITY);
        self.inline[..inline_len]
            .iter()
            .chain(self.spilled.iter())
            // Ranges end at `/`, at the end of the path, or around static
            // bytes copied from a route, so they lie on char boundaries.
            .map(move |&(start, end)| path.get(start as usize..end as usize).unwrap_or_default())
    }
}

/// The values captured while walking the tree, with the path they are cut from.
#[derive(Clone, Default)]
pub(super) struct ParamValues<'v> {
    path: &'v str,
    ranges: ParamRanges,
}

impl<'v> ParamValues<'v> {
    /// Starts capturing values from `path`, which must be shorter than 4 GiB.
    #[inline]
    pub(super) fn new(path: &'v str) -> Self {
        Self {
            path,
            ranges: ParamRanges::default(),
        }
    }

    /// Captures `path[start..end]`.
    #[inline]
    pub(super) fn push(&mut self, start: usize, end: usize) {
        self.ranges.push(start, end);
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Forgets the values captured after the first `len`, when backtracking.
    #[inline]
    pub(super) fn truncate(&mut self, len: usize) {
        self.ranges.truncate(len);
    }

    fn iter(&self) -> impl Iterator<Item = &'v str> + '_ {
        self.ranges.values(self.path)
    }
}

/// The parameters of a matched route: names from the route, values from the
/// path.
///
/// Values are raw slices of the looked-up path; they are *not*
/// percent-decoded.
///
/// ```
/// use microkit::router::matcher::Matcher;
///
/// let mut matcher = Matcher::new();
/// matcher.insert("/users/{id}/files/{*path}", ()).unwrap();
/// let matched = matcher.at("/users/7/files/a%20b/c").unwrap();
/// assert_eq!(matched.params.get("id"), Some("7"));
/// assert_eq!(matched.params.get("path"), Some("a%20b/c"));
/// let pairs: Vec<_> = matched.params.iter().collect();
/// assert_eq!(pairs, [("id", "7"), ("path", "a%20b/c")]);
/// ```
#[derive(Clone)]
pub struct Params<'k, 'v> {
    keys: &'k Arc<[Box<str>]>,
    values: ParamValues<'v>,
}

impl<'k, 'v> Params<'k, 'v> {
    /// Pairs the parameter names of a route with the captured values.
    pub(super) fn new(keys: &'k Arc<[Box<str>]>, values: ParamValues<'v>) -> Self {
        debug_assert_eq!(keys.len(), values.len());
        Self { keys, values }
    }

    /// The route's parameter names, shared: a match outlives the lookup without copying them.
    pub(crate) fn names(&self) -> &'k Arc<[Box<str>]> {
        self.keys
    }

    /// Where the values lie in the looked-up path.
    pub(crate) fn ranges(&self) -> &ParamRanges {
        &self.values.ranges
    }

    /// The value of the parameter named `key`, if the route has one.
    pub fn get(&self, key: impl AsRef<str>) -> Option<&'v str> {
        let key = key.as_ref();
        self.iter()
            .find_map(|(name, value)| (name == key).then_some(value))
    }

    /// The `(name, value)` pairs, in the order the parameters appear in the
    /// route.
    pub fn iter(&self) -> impl Iterator<Item = (&'k str, &'v str)> + '_ {
        self.keys.iter().map(|key| &**key).zip(self.values.iter())
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.keys.len().min(self.values.len())
    }

    /// Whether the route has no parameters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Params<'_, '_> {
    fn default() -> Self {
        static NO_NAMES: LazyLock<Arc<[Box<str>]>> = LazyLock::new(|| Arc::from([]));
        Self {
            keys: &NO_NAMES,
            values: ParamValues::default(),
        }
    }
}

impl fmt::Debug for Params<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_after_inline_capacity_and_truncates() {
        let keys: Arc<[Box<str>]> = ["a", "b", "c", "d", "e", "f"]
            .into_iter()
            .map(Box::from)
            .collect();
        let path = "123456xy";
        let mut values = ParamValues::new(path);
        for i in 0..6 {
            values.push(i, i + 1);
        }
        let params = Params::new(&keys, values.clone());
        assert_eq!(params.len(), 6);
        assert_eq!(params.get("f"), Some("6"));
        assert_eq!(params.get("z"), None);

        values.truncate(3);
        values.push(6, 7);
        values.push(7, 8);
        let collected: Vec<_> = values.iter().collect();
        assert_eq!(collected, ["1", "2", "3", "x", "y"]);
    }
}
