//! [`Collection`]: the description of one kind of record that a store keeps.

use std::fmt;

use super::id::IdKind;

/// Identifiers longer than this are silently truncated by PostgreSQL, which would break the
/// mapping from a violated index back to its field.
const MAX_IDENTIFIER_LEN: usize = 63;

/// The suffix of index names, `<collection>__u_<field>` and `<collection>__f_<field>`.
const INDEX_INFIX_LEN: usize = "__u_".len();

/// One kind of record (one resource): its name, id kind, unique and filterable fields, and
/// whether deletes are soft.
///
/// The name becomes a table name, so it is restricted to `[a-z][a-z0-9_]*`; field names
/// become index names and JSON paths, so they are restricted to `[A-Za-z_][A-Za-z0-9_]*`.
/// Both are checked when the collection is built: they come from code, so a bad one is a bug
/// and [`Collection::new`], [`Collection::unique`] and [`Collection::filterable`] panic with
/// the reason (use [`Collection::try_new`] for names known only at run time).
///
/// ```
/// use microkit::resource::store::{Collection, IdKind};
///
/// let products = Collection::new("products")
///     .id_kind(IdKind::Uuid)
///     .unique("sku")
///     .filterable("category")
///     .soft_delete(true);
/// assert_eq!(products.name(), "products");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Collection {
    name: String,
    id_kind: IdKind,
    unique: Vec<String>,
    filterable: Vec<String>,
    soft_delete: bool,
}

/// A collection or field name that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName(String);

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidName {}

impl Collection {
    /// A collection named `name`, with integer ids, no unique or filterable field, and hard
    /// deletes.
    ///
    /// # Panics
    ///
    /// When the name is invalid (see [`Collection::try_new`]).
    #[track_caller]
    pub fn new(name: impl Into<String>) -> Self {
        Self::try_new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Collection::new`], returning an error for a name that is not `[a-z][a-z0-9_]*`,
    /// is longer than 50 bytes or starts with `sqlite_` (reserved by SQLite).
    pub fn try_new(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        let mut bytes = name.bytes();
        let well_formed = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed || name.len() > 50 || name.starts_with("sqlite_") {
            return Err(InvalidName(format!(
                "invalid collection name {name:?}: it must match [a-z][a-z0-9_]*, be at most 50 \
                 bytes long and not start with `sqlite_`"
            )));
        }
        Ok(Self {
            name,
            id_kind: IdKind::Integer,
            unique: Vec::new(),
            filterable: Vec::new(),
            soft_delete: false,
        })
    }

    /// Sets how records are identified.
    pub fn id_kind(mut self, kind: IdKind) -> Self {
        self.id_kind = kind;
        self
    }

    /// Makes a top-level field of the data unique among the live records of the collection.
    ///
    /// # Panics
    ///
    /// When the field name is not `[A-Za-z_][A-Za-z0-9_]*` or makes an index name longer
    /// than PostgreSQL's 63 bytes.
    #[track_caller]
    pub fn unique(mut self, field: impl Into<String>) -> Self {
        let field = self.checked_field(field.into());
        if !self.unique.contains(&field) {
            self.unique.push(field);
        }
        self
    }

    /// Allows [`ListQuery`](super::ListQuery) filters on a top-level field of the data.
    ///
    /// # Panics
    ///
    /// As [`Collection::unique`].
    #[track_caller]
    pub fn filterable(mut self, field: impl Into<String>) -> Self {
        let field = self.checked_field(field.into());
        if !self.filterable.contains(&field) {
            self.filterable.push(field);
        }
        self
    }

    /// Makes deletes soft: a deleted record stays in the backend, marked deleted, but behaves
    /// as gone everywhere (its id can be created again and its unique values are freed).
    pub fn soft_delete(mut self, soft: bool) -> Self {
        self.soft_delete = soft;
        self
    }

    /// The name (also the table name in SQL backends).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How records are identified.
    pub fn kind(&self) -> IdKind {
        self.id_kind
    }

    /// The unique fields.
    pub fn unique_fields(&self) -> &[String] {
        &self.unique
    }

    /// The filterable fields.
    pub fn filterable_fields(&self) -> &[String] {
        &self.filterable
    }

    /// Whether deletes are soft.
    pub fn is_soft_delete(&self) -> bool {
        self.soft_delete
    }

    #[track_caller]
    fn checked_field(&self, field: String) -> String {
        let mut bytes = field.bytes();
        let well_formed = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        assert!(
            well_formed,
            "invalid field name {field:?} in collection {:?}: it must match [A-Za-z_][A-Za-z0-9_]*",
            self.name
        );
        assert!(
            self.name.len() + INDEX_INFIX_LEN + field.len() <= MAX_IDENTIFIER_LEN,
            "field name {field:?} is too long for collection {:?}: the index name \
             `{}__u_{field}` must fit in {MAX_IDENTIFIER_LEN} bytes",
            self.name,
            self.name
        );
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        for good in ["a", "products", "cart_items2"] {
            assert!(Collection::try_new(good).is_ok(), "{good}");
        }
        for bad in ["", "Products", "1a", "_a", "a-b", "a b", "sqlite_x", "a\"b"] {
            assert!(Collection::try_new(bad).is_err(), "{bad:?}");
        }
        assert!(Collection::try_new("x".repeat(51)).is_err());
    }

    #[test]
    #[should_panic(expected = "invalid field name")]
    fn rejects_bad_field_names() {
        let _ = Collection::new("products").unique("a'b");
    }

    #[test]
    #[should_panic(expected = "too long")]
    fn rejects_field_names_that_make_long_index_names() {
        let _ = Collection::new("x".repeat(50)).filterable("y".repeat(10));
    }

    #[test]
    fn builds() {
        let c = Collection::new("users")
            .id_kind(IdKind::Text)
            .unique("email")
            .unique("email")
            .filterable("role")
            .soft_delete(true);
        assert_eq!(c.kind(), IdKind::Text);
        assert_eq!(c.unique_fields(), ["email"]);
        assert_eq!(c.filterable_fields(), ["role"]);
        assert!(c.is_soft_delete());
    }
}
