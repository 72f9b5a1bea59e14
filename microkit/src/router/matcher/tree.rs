//! The radix tree: insertion with conflict detection, lookup with
//! backtracking, and removal.
//!
//! The tree stores slot indices rather than values, so that it is not generic
//! and so that [`Matcher::at_mut`](super::Matcher::at_mut) can hand out a
//! mutable value next to parameter names borrowed from the tree, without
//! `unsafe`.
//!
//! Its shape and conflict rules follow matchit 0.9.2, whose behaviour is the
//! specification (see the module documentation):
//!
//! - static nodes hold a byte prefix; their static children are found through
//!   `indices` (one first byte per static child) and a wildcard child, if any,
//!   is always the last child;
//! - parameter names are normalized (`{a}`, `{b}`, ...) on insertion so that
//!   `/{x}/a` and `/{y}/b` share a node; the real names are kept at the node
//!   holding the value;
//! - a parameter node's children are the static suffixes of its segment
//!   (`.txt`, `/`, ...), sorted by decreasing length so that the longest
//!   matching suffix wins.

use super::error::InsertFailure;
use super::escape::{UnescapedRef, UnescapedRoute};
use super::params::ParamValues;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

/// What a node matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeKind {
    /// The root of a non-empty tree.
    Root,
    /// A static prefix.
    Static,
    /// A parameter (`{a}`). With `suffix == false` its only child is `/`;
    /// otherwise its children are static suffixes within the segment.
    Param { suffix: bool },
    /// A catch-all parameter (`{*name}`); always a leaf holding a value.
    CatchAll,
}

/// A node of the radix tree.
#[derive(Clone, Debug)]
pub(super) struct Node {
    /// The bytes this node matches (for parameters, the normalized `{a}`).
    prefix: UnescapedRoute,
    /// How many routes go through this node; busier static children are
    /// tried first.
    priority: u32,
    /// Whether the last child is a parameter or catch-all.
    wild_child: bool,
    /// The first byte of each static child, in child order.
    indices: Vec<u8>,
    kind: NodeKind,
    children: Vec<Node>,
    /// The route ending here, if any; boxed to keep nodes small, which
    /// makes lookups faster.
    leaf: Option<Box<Leaf>>,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            prefix: UnescapedRoute::default(),
            priority: 0,
            wild_child: false,
            indices: Vec::new(),
            kind: NodeKind::Static,
            children: Vec::new(),
            leaf: None,
        }
    }
}

/// A route prepared for insertion.
struct PreparedRoute {
    normalized: UnescapedRoute,
    remapping: Vec<Vec<u8>>,
    param_names: Box<[Box<str>]>,
}

/// The value slot and parameter names of the route ending at a node.
#[derive(Clone, Debug)]
struct Leaf {
    /// The slot of the route's value.
    slot: usize,
    /// The original names of the normalized parameters, in route order.
    remapping: Vec<Vec<u8>>,
    /// Every parameter name (including a trailing catch-all), in route
    /// order: the keys of [`Params`](super::Params), shared with the matches
    /// a router keeps.
    param_names: Arc<[Box<str>]>,
}

impl Node {
    fn store(&mut self, leaf: Leaf) {
        self.leaf = Some(Box::new(leaf));
    }

    /// The original parameter names of the route ending here (none if no
    /// route ends here).
    fn remapping(&self) -> &[Vec<u8>] {
        self.leaf.as_ref().map_or(&[], |leaf| &leaf.remapping)
    }
}

/// The position of an insertion walk: a node, addressed through its parent so
/// that the parent can be inspected too.
struct Cursor<'n> {
    parent: &'n mut Node,
    child: Option<usize>,
}

impl<'n> Cursor<'n> {
    fn parent(&self) -> Option<&Node> {
        self.child.map(|_| &*self.parent)
    }

    fn node(&self) -> &Node {
        match self.child {
            None => self.parent,
            Some(i) => &self.parent.children[i],
        }
    }

    fn node_mut(&mut self) -> &mut Node {
        match self.child {
            None => self.parent,
            Some(i) => &mut self.parent.children[i],
        }
    }

    fn descend(self, i: usize) -> Cursor<'n> {
        match self.child {
            None => Cursor {
                parent: self.parent,
                child: Some(i),
            },
            Some(previous) => Cursor {
                parent: &mut self.parent.children[previous],
                child: Some(i),
            },
        }
    }
}

fn is_empty_or_slash(bytes: &[u8]) -> bool {
    matches!(bytes, b"" | b"/")
}

/// The length of the first segment of `bytes`, including its trailing `/`.
fn segment_len_with_slash(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| b == b'/')
        .map_or(bytes.len(), |i| i + 1)
}

/// The length of the first segment of `bytes`, excluding its trailing `/`.
fn segment_len(bytes: &[u8]) -> usize {
    bytes.iter().position(|&b| b == b'/').unwrap_or(bytes.len())
}

impl Node {
    /// Inserts `route`, storing `slot` as its value.
    ///
    /// The route is fully validated before the tree is touched, so a failed
    /// insertion never leaves a half-inserted route behind.
    pub(super) fn insert(&mut self, route: &str, slot: usize) -> Result<(), InsertFailure> {
        let prepared = prepare(route)?;
        let route = &prepared.normalized;
        let leaf = Leaf {
            slot,
            remapping: prepared.remapping,
            param_names: prepared.param_names.into(),
        };
        let mut remaining = route.as_ref();

        self.priority += 1;

        if self.leaf.is_none() && self.children.is_empty() {
            self.insert_route(remaining, leaf)?;
            self.kind = NodeKind::Root;
            return Ok(());
        }

        let mut cursor = Cursor {
            parent: self,
            child: None,
        };

        'walk: loop {
            let node_prefix = cursor.node().prefix.as_ref();
            let len = remaining.len().min(node_prefix.len());
            // A `{` that starts a parameter must not match an escaped `{`.
            let common = (0..len)
                .find(|&i| {
                    remaining[i] != node_prefix[i]
                        || remaining.is_escaped(i) != node_prefix.is_escaped(i)
                })
                .unwrap_or(len);

            // The node's prefix is longer than the shared part: split it.
            if cursor.node().prefix.len() > common {
                cursor.node_mut().split_at(common);
                continue;
            }

            if remaining.len() == common {
                let node = cursor.node_mut();
                if node.leaf.is_some() {
                    return Err(conflict(route, remaining, node));
                }
                node.store(leaf);
                return Ok(());
            }

            let before_common = remaining;
            remaining = remaining.slice_off(common);
            let next = remaining[0];

            // A parameter node: find or create the node of this segment's
            // suffix.
            if let NodeKind::Param { suffix: has_suffix } = cursor.node().kind {
                let terminator = segment_len_with_slash(&remaining);
                let suffix = remaining.slice_until(terminator);

                let mut differs_by_trailing_slash = false;
                for (i, child) in cursor.node().children.iter().enumerate() {
                    if child.prefix.bytes() == *suffix {
                        cursor = cursor.descend(i);
                        cursor.node_mut().priority += 1;
                        continue 'walk;
                    }
                    let (shorter, longer) = if child.prefix.len() <= suffix.len() {
                        (child.prefix.bytes(), *suffix)
                    } else {
                        (*suffix, child.prefix.bytes())
                    };
                    if longer.starts_with(shorter) && &longer[shorter.len()..] == b"/" {
                        differs_by_trailing_slash = true;
                    }
                }

                // A new suffix for a parameter that a static prefix leads to
                // would make prefixed and suffixed parameters ambiguous.
                if !differs_by_trailing_slash && !is_empty_or_slash(&suffix) {
                    if let Some(parent) = cursor.parent() {
                        if parent.prefix_wild_child_in_segment() {
                            return Err(conflict(route, before_common, parent));
                        }
                    }
                }

                let child = cursor.node_mut().add_suffix_child(Node {
                    prefix: suffix.to_owned(),
                    priority: 1,
                    ..Node::default()
                });
                let has_suffix = has_suffix || !is_empty_or_slash(&suffix);
                cursor.node_mut().kind = NodeKind::Param { suffix: has_suffix };
                cursor = cursor.descend(child);

                if terminator == remaining.len() {
                    cursor.node_mut().store(leaf);
                    return Ok(());
                }

                remaining = remaining.slice_off(terminator);
                if remaining[0] != b'{' || remaining.is_escaped(0) {
                    let node = cursor.node_mut();
                    let child = node.add_child(Node {
                        priority: 1,
                        ..Node::default()
                    });
                    node.indices.push(remaining[0]);
                    cursor = cursor.descend(child);
                }
                cursor.node_mut().insert_route(remaining, leaf)?;
                return Ok(());
            }

            // A static child starting with the next byte.
            let node = cursor.node();
            // An unescaped `{` starts a parameter, never a static child.
            let starts_wildcard = matches!(next, b'{' | b'}') && !remaining.is_escaped(0);
            if !starts_wildcard {
                if let Some(i) = node.indices.iter().position(|&b| b == next) {
                    let i = cursor.node_mut().bump_child_priority(i);
                    cursor = cursor.descend(i);
                    continue 'walk;
                }
            }

            // No such child, and the route continues with static bytes:
            // create a static child.
            if (next != b'{' || remaining.is_escaped(0)) && node.kind != NodeKind::CatchAll {
                let node = cursor.node_mut();
                let segment = remaining.slice_until(segment_len(&remaining));
                if let Some(wildcard) = find_wildcard(segment).ok().flatten() {
                    // A prefixed parameter next to an existing suffixed one.
                    if wildcard.start > 0 && node.suffix_wild_child_in_segment() {
                        return Err(conflict(route, remaining, node));
                    }
                    // A suffixed parameter next to an existing prefixed one.
                    let suffix = segment.slice_off(wildcard.end);
                    if !is_empty_or_slash(&suffix) && node.prefix_wild_child_in_segment() {
                        return Err(conflict(route, remaining, node));
                    }
                }

                node.indices.push(next);
                let child = node.add_child(Node::default());
                let child = node.bump_child_priority(child);
                node.children[child].insert_route(remaining, leaf)?;
                return Ok(());
            }

            // The route continues with a wildcard, which must be the same as
            // an existing wildcard child.
            if cursor.node().wild_child {
                let wild = cursor.node().children.len() - 1;
                cursor = cursor.descend(wild);
                cursor.node_mut().priority += 1;

                let node = cursor.node();
                if let Some(wildcard) = remaining.get(..node.prefix.len()) {
                    if wildcard != node.prefix.bytes() {
                        return Err(conflict(route, remaining, node));
                    }
                }
                if node.kind == NodeKind::CatchAll {
                    return Err(conflict(route, remaining, node));
                }

                if let Some(parent) = cursor.parent() {
                    // A prefixed and suffixed parameter exists; a route with
                    // the same prefix but no suffix would be ambiguous.
                    if !parent.prefix.ends_with(b"/")
                        && cursor.node().kind == (NodeKind::Param { suffix: true })
                    {
                        let segment = remaining.slice_until(segment_len(&remaining));
                        if let Some(wildcard) = find_wildcard(segment).ok().flatten() {
                            let suffix = remaining.slice_off(wildcard.end);
                            if is_empty_or_slash(&suffix) {
                                return Err(conflict(route, remaining, parent));
                            }
                        }
                    }
                }
                continue 'walk;
            }

            if let Some(wildcard) = find_wildcard(remaining).ok().flatten() {
                let node = cursor.node();
                let suffix = remaining.slice_off(wildcard.end);
                if !is_empty_or_slash(&suffix) && node.prefix_wild_child_in_segment() {
                    return Err(conflict(route, remaining, node));
                }
                if let Some(i) = common.checked_sub(1) {
                    if before_common[i] != b'/' && node.suffix_wild_child_in_segment() {
                        return Err(conflict(route, remaining, node));
                    }
                }
            }

            cursor.node_mut().insert_route(remaining, leaf)?;
            return Ok(());
        }
    }

    /// Moves everything after the first `at` bytes of the prefix into a new
    /// only child.
    fn split_at(&mut self, at: usize) {
        let child = Node {
            prefix: self.prefix.as_ref().slice_off(at).to_owned(),
            priority: self.priority - 1,
            wild_child: self.wild_child,
            indices: std::mem::take(&mut self.indices),
            kind: NodeKind::Static,
            children: std::mem::take(&mut self.children),
            leaf: self.leaf.take(),
        };
        self.indices = vec![self.prefix[at]];
        self.children = vec![child];
        self.prefix = self.prefix.as_ref().slice_until(at).to_owned();
        self.wild_child = false;
    }

    /// Whether a parameter with a static prefix in its segment hangs below
    /// this node.
    fn prefix_wild_child_in_segment(&self) -> bool {
        if self.kind == NodeKind::Root && self.prefix.is_empty() {
            return false;
        }
        if self.prefix.ends_with(b"/") {
            self.children.iter().any(Node::prefix_wild_child_in_segment)
        } else {
            self.children.iter().any(Node::wild_child_in_segment)
        }
    }

    /// Whether a parameter hangs below this node within the current segment.
    fn wild_child_in_segment(&self) -> bool {
        if self.prefix.contains(&b'/') {
            return false;
        }
        if matches!(self.kind, NodeKind::Param { .. }) {
            return true;
        }
        self.children.iter().any(Node::wild_child_in_segment)
    }

    /// Whether a parameter with a static suffix hangs below this node within
    /// the current segment.
    fn suffix_wild_child_in_segment(&self) -> bool {
        if self.kind == (NodeKind::Param { suffix: true }) {
            return true;
        }
        self.children
            .iter()
            .any(|child| !child.prefix.contains(&b'/') && child.suffix_wild_child_in_segment())
    }

    /// Inserts the rest of a route below this (fresh or split) node.
    ///
    /// Syntax errors were ruled out by [`prepare`], so the error cases here
    /// are unreachable in practice; they are still reported rather than
    /// panicking.
    fn insert_route(
        &mut self,
        mut rest: UnescapedRef<'_>,
        leaf: Leaf,
    ) -> Result<(), InsertFailure> {
        let mut node = self;
        loop {
            let Some(wildcard) = find_wildcard(rest)? else {
                node.prefix = rest.to_owned();
                node.store(leaf);
                return Ok(());
            };

            if rest[wildcard.start + 1] == b'*' {
                if wildcard.end != rest.len() {
                    return Err(InsertFailure::InvalidCatchAll);
                }
                if wildcard.start > 0 {
                    node.prefix = rest.slice_until(wildcard.start).to_owned();
                    rest = rest.slice_off(wildcard.start);
                }
                let mut catch_all = Node {
                    prefix: rest.to_owned(),
                    kind: NodeKind::CatchAll,
                    priority: 1,
                    ..Node::default()
                };
                catch_all.store(leaf);
                node.add_child(catch_all);
                node.wild_child = true;
                return Ok(());
            }

            if wildcard.start > 0 {
                node.prefix = rest.slice_until(wildcard.start).to_owned();
                rest = rest.slice_off(wildcard.start);
            }
            let terminator = segment_len_with_slash(&rest);
            let param = rest.slice_until(wildcard.len());
            let suffix = rest.slice_until(terminator).slice_off(wildcard.len());
            rest = rest.slice_off(terminator);

            if matches!(find_wildcard(suffix), Ok(Some(_))) {
                return Err(InsertFailure::InvalidParamSegment);
            }

            let child = node.add_child(Node {
                priority: 1,
                kind: NodeKind::Param {
                    suffix: !is_empty_or_slash(&suffix),
                },
                prefix: param.to_owned(),
                ..Node::default()
            });
            node.wild_child = true;
            node = &mut node.children[child];

            // The suffix (possibly just `/`) always gets its own node, which
            // keeps turning a plain parameter into a suffixed one simple.
            if !suffix.is_empty() {
                let child = node.add_suffix_child(Node {
                    priority: 1,
                    prefix: suffix.to_owned(),
                    ..Node::default()
                });
                node = &mut node.children[child];
            }

            if rest.is_empty() {
                node.store(leaf);
                return Ok(());
            }

            if rest[0] != b'{' || rest.is_escaped(0) {
                node.indices.push(rest[0]);
                let child = node.add_child(Node {
                    priority: 1,
                    ..Node::default()
                });
                node = &mut node.children[child];
            }
        }
    }

    /// Adds a child, keeping the wildcard child last.
    fn add_child(&mut self, child: Node) -> usize {
        let len = self.children.len();
        if self.wild_child && len > 0 {
            self.children.insert(len - 1, child);
            len - 1
        } else {
            self.children.push(child);
            len
        }
    }

    /// Adds a suffix child, keeping suffixes sorted by decreasing length.
    fn add_suffix_child(&mut self, child: Node) -> usize {
        let i = self
            .children
            .partition_point(|node| node.prefix.len() >= child.prefix.len());
        self.children.insert(i, child);
        i
    }

    /// Increments the priority of a static child, moving it before children
    /// of lower priority; returns its new index.
    fn bump_child_priority(&mut self, i: usize) -> usize {
        self.children[i].priority += 1;
        let priority = self.children[i].priority;
        let mut moved = i;
        while moved > 0 && self.children[moved - 1].priority < priority {
            self.children.swap(moved - 1, moved);
            moved -= 1;
        }
        if moved != i {
            self.indices[moved..=i].rotate_right(1);
        }
        moved
    }
}

/// Validates `route`, then normalizes its parameter names.
fn prepare(route: &str) -> Result<PreparedRoute, InsertFailure> {
    let mut normalized = UnescapedRoute::new(route.as_bytes().to_vec());
    let mut remapping = Vec::new();
    let mut param_names = Vec::new();
    let mut start = 0;
    let mut next_name = b'a';

    while let Some(wildcard) = find_wildcard(normalized.as_ref().slice_off(start))? {
        let wildcard = start + wildcard.start..start + wildcard.end;
        if wildcard.len() < 2 {
            return Err(InsertFailure::InvalidParam);
        }
        let bytes = normalized.bytes();
        if bytes[wildcard.start + 1] == b'*' {
            // A catch-all keeps its name: it is always last.
            let name = &bytes[wildcard.start + 2..wildcard.end - 1];
            param_names.push(String::from_utf8_lossy(name).into());
            start = wildcard.end;
            continue;
        }
        if next_name > b'z' {
            // More than 26 parameters; not a realistic route.
            return Err(InsertFailure::InvalidParam);
        }
        let mut name = normalized.splice(wildcard.clone(), vec![b'{', next_name, b'}']);
        name.remove(0);
        name.pop();
        param_names.push(String::from_utf8_lossy(&name).into());
        remapping.push(name);
        next_name += 1;
        start = wildcard.start + 3;
    }

    check_wildcard_placement(normalized.as_ref())?;
    Ok(PreparedRoute {
        normalized,
        remapping,
        param_names: param_names.into_boxed_slice(),
    })
}

/// Rejects a catch-all that is not last and a segment with two parameters,
/// the checks that insertion would otherwise only hit half-way.
fn check_wildcard_placement(mut rest: UnescapedRef<'_>) -> Result<(), InsertFailure> {
    while let Some(wildcard) = find_wildcard(rest)? {
        if rest[wildcard.start + 1] == b'*' {
            if wildcard.end != rest.len() {
                return Err(InsertFailure::InvalidCatchAll);
            }
            return Ok(());
        }
        rest = rest.slice_off(wildcard.start);
        let terminator = segment_len_with_slash(&rest);
        let suffix = rest.slice_until(terminator).slice_off(wildcard.len());
        if matches!(find_wildcard(suffix), Ok(Some(_))) {
            return Err(InsertFailure::InvalidParamSegment);
        }
        rest = rest.slice_off(terminator);
    }
    Ok(())
}

/// Restores the original parameter names in a normalized route.
fn denormalize_params(route: &mut UnescapedRoute, remapping: &[Vec<u8>]) {
    let mut start = 0;
    for name in remapping {
        let Ok(Some(wildcard)) = find_wildcard(route.as_ref().slice_off(start)) else {
            return;
        };
        let wildcard = start + wildcard.start..start + wildcard.end;
        let mut replacement = Vec::with_capacity(name.len() + 2);
        replacement.push(b'{');
        replacement.extend_from_slice(name);
        replacement.push(b'}');
        let replacement_len = replacement.len();
        route.splice(wildcard.clone(), replacement);
        start = wildcard.start + replacement_len;
    }
}

/// Finds the first parameter of `route`, checking brace syntax on the way.
fn find_wildcard(route: UnescapedRef<'_>) -> Result<Option<Range<usize>>, InsertFailure> {
    for (start, &byte) in route.iter().enumerate() {
        if byte == b'}' && !route.is_escaped(start) {
            return Err(InsertFailure::InvalidParam);
        }
        if byte != b'{' || route.is_escaped(start) {
            continue;
        }
        if route.get(start + 1) == Some(&b'}') {
            return Err(InsertFailure::InvalidParam);
        }
        for (i, &byte) in route.iter().enumerate().skip(start + 2) {
            match byte {
                b'}' if route.is_escaped(i) => {}
                b'}' if route.get(i - 1) == Some(&b'*') => {
                    return Err(InsertFailure::InvalidParam);
                }
                b'}' => return Ok(Some(start..i + 1)),
                b'*' | b'/' => return Err(InsertFailure::InvalidParam),
                _ => {}
            }
        }
        return Err(InsertFailure::InvalidParam);
    }
    Ok(None)
}

/// Builds the conflict error, naming the existing route below `current`.
fn conflict(route: &UnescapedRoute, rest: UnescapedRef<'_>, current: &Node) -> InsertFailure {
    let mut with = route.clone();
    if rest.bytes() == current.prefix.bytes() {
        denormalize_params(&mut with, current.remapping());
    } else {
        with.truncate(route.len() - rest.len());
        if !with.ends_with(&current.prefix) {
            with.append(&current.prefix);
        }
        let mut last = current;
        while let Some(child) = last.children.first() {
            with.append(&child.prefix);
            last = child;
        }
        denormalize_params(&mut with, last.remapping());
    }
    InsertFailure::Conflict {
        with: String::from_utf8_lossy(&with.into_bytes()).into_owned(),
    }
}

/// A wildcard child passed over in favour of a static child, to be tried if
/// the static branch leads nowhere.
#[derive(Clone, Copy)]
struct Skipped<'n, 'p> {
    /// The node whose wildcard child was passed over.
    node: &'n Node,
    /// The path from where `node`'s prefix starts.
    rest: &'p [u8],
    /// How many parameters had been captured before `node`.
    param_count: usize,
}

/// How many skipped wildcards are remembered without a heap allocation.
const INLINE_SKIPPED: usize = 4;

/// The stack of [`Skipped`] wildcards; inline for typical depths.
struct SkippedStack<'n, 'p> {
    inline: [Option<Skipped<'n, 'p>>; INLINE_SKIPPED],
    spilled: Vec<Skipped<'n, 'p>>,
    len: usize,
}

impl<'n, 'p> SkippedStack<'n, 'p> {
    #[inline]
    fn new() -> Self {
        Self {
            inline: [None; INLINE_SKIPPED],
            spilled: Vec::new(),
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, skipped: Skipped<'n, 'p>) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = Some(skipped),
            None => self.spilled.push(skipped),
        }
        self.len += 1;
    }

    #[inline]
    fn pop(&mut self) -> Option<Skipped<'n, 'p>> {
        self.len = self.len.checked_sub(1)?;
        match self.inline.get_mut(self.len) {
            Some(slot) => slot.take(),
            None => self.spilled.pop(),
        }
    }
}

/// Whether `a` and `b`, of equal length, hold the same bytes. Compared inline, as memcmp does
/// it: whole words, the last one overlapping the one before. A node's prefix is a few bytes
/// to a few dozen, and `==` on slices calls `memcmp`, whose call costs more than the
/// comparison (a lookup compares about six prefixes).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let len = a.len();
    match len {
        0 => true,
        1 => a[0] == b[0],
        2..4 => {
            word::<2>(a, 0) == word::<2>(b, 0) && word::<2>(a, len - 2) == word::<2>(b, len - 2)
        }
        4..8 => {
            word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, len - 4) == word::<4>(b, len - 4)
        }
        _ => {
            let mut at = 0;
            while at + 8 < len {
                if word::<8>(a, at) != word::<8>(b, at) {
                    return false;
                }
                at += 8;
            }
            word::<8>(a, len - 8) == word::<8>(b, len - 8)
        }
    }
}

/// The `N` bytes of `bytes` from `at`.
#[inline]
fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N].try_into().expect("N bytes")
}

/// A successful lookup: the value slot, the parameter names and values.
pub(super) type Found<'n, 'p> = (usize, &'n Arc<[Box<str>]>, ParamValues<'p>);

impl Node {
    /// Finds the route matching `path`, which must be shorter than 4 GiB.
    ///
    /// Static children are tried first; each wildcard child passed over on
    /// the way is remembered so that, if the static branch fails deeper
    /// down, the search resumes at the most recently skipped wildcard.
    #[inline]
    pub(super) fn at<'n, 'p>(&'n self, path: &'p str) -> Option<Found<'n, 'p>> {
        let mut node = self;
        // The part of the path not matched yet; its offset in `path` is
        // `path.len() - rest.len()`.
        let mut rest = path.as_bytes();
        let mut backtracking = false;
        let mut params = ParamValues::new(path);
        let mut skipped = SkippedStack::new();

        loop {
            'walk: loop {
                let prefix = node.prefix.bytes();
                let Some((head, tail)) = rest.split_at_checked(prefix.len()) else {
                    break 'walk;
                };
                if !same_bytes(head, prefix) {
                    break 'walk;
                }
                let Some(&next) = tail.first() else {
                    if let Some(leaf) = &node.leaf {
                        return Some((leaf.slot, &leaf.param_names, params));
                    }
                    break 'walk;
                };
                let node_rest = rest;
                rest = tail;

                // When backtracking, the static children were already tried.
                if !backtracking {
                    if let Some(i) = node.indices.iter().position(|&b| b == next) {
                        if node.wild_child {
                            skipped.push(Skipped {
                                node,
                                rest: node_rest,
                                param_count: params.len(),
                            });
                        }
                        node = &node.children[i];
                        continue 'walk;
                    }
                }

                if !node.wild_child {
                    break 'walk;
                }
                let Some(wild) = node.children.last() else {
                    break 'walk;
                };
                node = wild;
                let start = path.len() - rest.len();

                match node.kind {
                    NodeKind::Param { suffix: false } => match rest.iter().position(|&b| b == b'/')
                    {
                        // An empty segment never matches a parameter.
                        Some(0) => break 'walk,
                        Some(end) => {
                            let [slash] = node.children.as_slice() else {
                                break 'walk;
                            };
                            params.push(start, start + end);
                            rest = &rest[end..];
                            node = slash;
                            backtracking = false;
                        }
                        None => {
                            let Some(leaf) = &node.leaf else {
                                break 'walk;
                            };
                            params.push(start, path.len());
                            return Some((leaf.slot, &leaf.param_names, params));
                        }
                    },
                    NodeKind::Param { suffix: true } => {
                        let slash = rest.iter().position(|&b| b == b'/');
                        let segment_end = match slash {
                            Some(0) => break 'walk,
                            Some(i) => i + 1,
                            None => rest.len(),
                        };
                        let segment = &rest[..segment_end];
                        // Suffixes are sorted longest first, and each must
                        // leave a non-empty value.
                        for child in &node.children {
                            let suffix = child.prefix.bytes();
                            if suffix.len() < segment.len() && segment.ends_with(suffix) {
                                let value_len = segment.len() - suffix.len();
                                params.push(start, start + value_len);
                                rest = &rest[value_len..];
                                node = child;
                                backtracking = false;
                                continue 'walk;
                            }
                        }
                        match &node.leaf {
                            Some(leaf) if slash.is_none() => {
                                params.push(start, path.len());
                                return Some((leaf.slot, &leaf.param_names, params));
                            }
                            _ => break 'walk,
                        }
                    }
                    NodeKind::CatchAll => {
                        // The catch-all matches everything left, which is not
                        // empty here; it is a leaf, so there is nothing to
                        // backtrack to below it.
                        let leaf = node.leaf.as_ref()?;
                        params.push(start, path.len());
                        return Some((leaf.slot, &leaf.param_names, params));
                    }
                    NodeKind::Static | NodeKind::Root => break 'walk,
                }
            }

            let resume = skipped.pop()?;
            node = resume.node;
            rest = resume.rest;
            params.truncate(resume.param_count);
            backtracking = true;
        }
    }

    /// Removes `route` (written exactly as inserted, parameter names
    /// included), returning the slot of its value.
    pub(super) fn remove(&mut self, route: &str) -> Option<usize> {
        let prepared = prepare(route).ok()?;
        let remapping = prepared.remapping;
        let mut remaining = prepared.normalized.bytes();

        if remaining == self.prefix.bytes() {
            let slot = self.leaf.take().map(|leaf| leaf.slot);
            if self.children.is_empty() {
                *self = Node::default();
            }
            return slot;
        }

        let mut node = self;
        loop {
            if remaining.len() <= node.prefix.len() {
                return None;
            }
            let (prefix, rest) = remaining.split_at(node.prefix.len());
            if prefix != node.prefix.bytes() {
                return None;
            }
            remaining = rest;

            if matches!(node.kind, NodeKind::Param { .. }) {
                let segment_end = segment_len_with_slash(remaining);
                let segment = &remaining[..segment_end];
                if let Some(i) = node
                    .children
                    .iter()
                    .position(|child| child.prefix.bytes() == segment)
                {
                    if segment_end == remaining.len() {
                        return node.remove_child(i, &remapping);
                    }
                    remaining = &remaining[segment_end - node.children[i].prefix.len()..];
                    node = &mut node.children[i];
                    continue;
                }
            }

            if let Some(i) = node.indices.iter().position(|&b| b == remaining[0]) {
                if node.children[i].prefix.bytes() == remaining {
                    return node.remove_child(i, &remapping);
                }
                node = &mut node.children[i];
                continue;
            }

            if !node.wild_child {
                return None;
            }
            let last = node.children.len() - 1;
            if node.children[last].prefix.bytes() == remaining {
                return node.remove_child(last, &remapping);
            }
            node = &mut node.children[last];
        }
    }

    /// Removes the value of child `i` if its parameter names are exactly
    /// `remapping` (`/{a}` does not remove `/{b}`), dropping the child if it
    /// became useless.
    fn remove_child(&mut self, i: usize, remapping: &[Vec<u8>]) -> Option<usize> {
        if self.children[i].remapping() != remapping {
            return None;
        }
        if !self.children[i].children.is_empty() {
            return self.children[i].leaf.take().map(|leaf| leaf.slot);
        }
        let child = self.children.remove(i);
        match child.kind {
            NodeKind::Static if !matches!(self.kind, NodeKind::Param { .. }) => {
                self.indices.remove(i);
            }
            _ => self.wild_child = false,
        }
        child.leaf.map(|leaf| leaf.slot)
    }

    /// Every route of the tree (escaped, as it would be inserted) with its
    /// value slot, breadth first.
    pub(super) fn routes(&self) -> Vec<(String, usize)> {
        let mut routes = Vec::new();
        let mut queue = VecDeque::from([(self.prefix.clone(), self)]);
        while let Some((prefix, node)) = queue.pop_front() {
            if let Some(leaf) = &node.leaf {
                let mut route = prefix.clone();
                denormalize_params(&mut route, &leaf.remapping);
                routes.push((route.to_escaped_string(), leaf.slot));
            }
            for child in &node.children {
                let mut prefix = prefix.clone();
                prefix.append(&child.prefix);
                queue.push_back((prefix, child));
            }
        }
        routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_agrees_with_slice_equality_at_every_length_and_position() {
        let a: Vec<u8> = (0..40).map(|i| b'a' + i % 26).collect();
        for len in 0..=a.len() {
            let a = &a[..len];
            assert!(same_bytes(a, a), "length {len}");
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!same_bytes(a, &b), "length {len}, differing at {at}");
            }
        }
    }

    fn tree(routes: &[&str]) -> Node {
        let mut root = Node::default();
        for (slot, route) in routes.iter().enumerate() {
            root.insert(route, slot).unwrap();
        }
        root
    }

    fn lookup(root: &Node, path: &str) -> Option<(usize, Vec<(String, String)>)> {
        let (slot, names, values) = root.at(path)?;
        let params = super::super::Params::new(names, values);
        Some((
            slot,
            params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
    }

    #[test]
    fn backtracks_from_static_to_param() {
        let root = tree(&["/users/new/edit", "/users/{id}/show", "/{*rest}"]);
        assert_eq!(lookup(&root, "/users/new/edit").unwrap().0, 0);
        let (slot, params) = lookup(&root, "/users/new/show").unwrap();
        assert_eq!(slot, 1);
        assert_eq!(params, [("id".to_owned(), "new".to_owned())]);
        let (slot, params) = lookup(&root, "/users/new/other").unwrap();
        assert_eq!(slot, 2);
        assert_eq!(params, [("rest".to_owned(), "users/new/other".to_owned())]);
    }

    #[test]
    fn suffix_must_leave_a_non_empty_value() {
        let root = tree(&["/files/{name}.txt"]);
        assert!(lookup(&root, "/files/.txt").is_none());
        assert_eq!(lookup(&root, "/files/a.txt").unwrap().1[0].1, "a");
    }

    #[test]
    fn validation_happens_before_the_tree_changes() {
        let mut root = tree(&["/a"]);
        let before = format!("{root:?}");
        assert_eq!(
            root.insert("/a/{x}/{*rest}/b", 9),
            Err(InsertFailure::InvalidCatchAll)
        );
        assert_eq!(
            root.insert("/a/{x}{y}", 9),
            Err(InsertFailure::InvalidParamSegment)
        );
        assert_eq!(format!("{root:?}"), before);
    }

    #[test]
    fn routes_round_trip_escapes_and_names() {
        let root = tree(&["/{{lit}}/{id}", "/x/{*rest}"]);
        let mut routes: Vec<_> = root.routes().into_iter().map(|(r, _)| r).collect();
        routes.sort();
        assert_eq!(routes, ["/x/{*rest}", "/{{lit}}/{id}"]);
    }

    #[test]
    fn remove_requires_the_same_names() {
        let mut root = tree(&["/a/{x}"]);
        assert_eq!(root.remove("/a/{y}"), None);
        assert_eq!(root.remove("/a/{x}"), Some(0));
        assert!(root.at("/a/1").is_none());
    }
}
