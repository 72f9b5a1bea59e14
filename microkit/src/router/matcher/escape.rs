//! Handling of the `{{` and `}}` escapes in route templates.
//!
//! A route is stored with its escapes resolved (`{{` becomes `{`), together
//! with the positions of the braces that were escaped, so that the insertion
//! logic can tell a literal `{` apart from the start of a parameter.

use std::fmt;

/// An owned route with its escapes resolved.
#[derive(Clone, Default, PartialEq, Eq)]
pub(super) struct UnescapedRoute {
    bytes: Vec<u8>,
    /// Positions in `bytes` of braces that were written escaped.
    escaped: Vec<usize>,
}

impl UnescapedRoute {
    /// Resolves the escapes of a route template.
    pub(super) fn new(mut bytes: Vec<u8>) -> Self {
        let mut escaped = Vec::new();
        let mut i = 0;
        while let Some(&byte) = bytes.get(i) {
            if matches!(byte, b'{' | b'}') && bytes.get(i + 1) == Some(&byte) {
                bytes.remove(i);
                escaped.push(i);
            }
            i += 1;
        }
        Self { bytes, escaped }
    }

    /// Replaces `range` with `replacement`, returning the removed bytes.
    ///
    /// Escape positions after the range are shifted like matchit 0.9.2 does
    /// (strictly after `range.end`), which keeps the exact error kinds of
    /// oddly escaped routes compatible with it.
    pub(super) fn splice(
        &mut self,
        range: std::ops::Range<usize>,
        replacement: Vec<u8>,
    ) -> Vec<u8> {
        self.escaped.retain(|position| !range.contains(position));
        let grown = replacement.len() as isize - range.len() as isize;
        for position in &mut self.escaped {
            if *position > range.end {
                *position = position.saturating_add_signed(grown);
            }
        }
        self.bytes.splice(range, replacement).collect()
    }

    /// Appends another route, keeping its escape positions.
    pub(super) fn append(&mut self, other: &UnescapedRoute) {
        let base = self.bytes.len();
        self.escaped.extend(other.escaped.iter().map(|i| base + i));
        self.bytes.extend_from_slice(&other.bytes);
    }

    /// Shortens the route to `len` bytes.
    pub(super) fn truncate(&mut self, len: usize) {
        self.escaped.retain(|&position| position < len);
        self.bytes.truncate(len);
    }

    /// Borrows the route as a sliceable view.
    pub(super) fn as_ref(&self) -> UnescapedRef<'_> {
        UnescapedRef {
            bytes: &self.bytes,
            escaped: &self.escaped,
            offset: 0,
        }
    }

    /// The unescaped bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The route as it would be written, with its literal braces doubled
    /// again.
    pub(super) fn to_escaped_string(&self) -> String {
        let mut written = Vec::with_capacity(self.bytes.len() + self.escaped.len());
        for (i, &byte) in self.bytes.iter().enumerate() {
            if self.escaped.contains(&i) {
                written.push(byte);
            }
            written.push(byte);
        }
        String::from_utf8_lossy(&written).into_owned()
    }

    /// Consumes the route, returning the unescaped bytes.
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl std::ops::Deref for UnescapedRoute {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for UnescapedRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(&self.bytes), f)
    }
}

/// A borrowed window into an [`UnescapedRoute`].
#[derive(Copy, Clone)]
pub(super) struct UnescapedRef<'a> {
    bytes: &'a [u8],
    escaped: &'a [usize],
    /// Added to a position of `bytes` to get a position of `escaped`'s route.
    offset: isize,
}

impl<'a> UnescapedRef<'a> {
    /// Copies the window into an owned route.
    pub(super) fn to_owned(self) -> UnescapedRoute {
        let escaped = self
            .escaped
            .iter()
            .filter_map(|&i| i.checked_add_signed(self.offset))
            .filter(|&i| i < self.bytes.len())
            .collect();
        UnescapedRoute {
            bytes: self.bytes.to_vec(),
            escaped,
        }
    }

    /// Whether the brace at `i` was written escaped.
    pub(super) fn is_escaped(&self, i: usize) -> bool {
        i.checked_add_signed(-self.offset)
            .is_some_and(|i| self.escaped.contains(&i))
    }

    /// The window starting at `start`.
    pub(super) fn slice_off(&self, start: usize) -> UnescapedRef<'a> {
        UnescapedRef {
            bytes: &self.bytes[start..],
            escaped: self.escaped,
            offset: self.offset - start as isize,
        }
    }

    /// The window ending at `end`.
    pub(super) fn slice_until(&self, end: usize) -> UnescapedRef<'a> {
        UnescapedRef {
            bytes: &self.bytes[..end],
            escaped: self.escaped,
            offset: self.offset,
        }
    }

    /// The unescaped bytes of the window.
    pub(super) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<'a> std::ops::Deref for UnescapedRef<'a> {
    type Target = &'a [u8];

    fn deref(&self) -> &&'a [u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_doubled_braces() {
        let route = UnescapedRoute::new(b"/a{{b}}/{c}".to_vec());
        assert_eq!(route.bytes(), b"/a{b}/{c}");
        let view = route.as_ref();
        assert!(view.is_escaped(2));
        assert!(view.is_escaped(4));
        assert!(!view.is_escaped(6));
        assert!(view.slice_off(2).is_escaped(0));
    }
}
