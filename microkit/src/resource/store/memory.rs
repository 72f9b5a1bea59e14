//! [`MemoryStore`]: records in process memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::{Map, Number, Value};

use super::{
    check_filters, check_id, id_for_create, Collection, Id, ListQuery, Page, Record, Store,
    StoreError, StoreFuture,
};

/// A store in process memory: fast, shared by the tasks of one process, gone on exit.
///
/// Each collection is a `BTreeMap` by id (so lists come out in order) behind its own
/// `RwLock`, with a hash set per unique field. The locks are std locks, held only for the
/// synchronous body of an operation and never across an `.await`: every operation is atomic,
/// reads of one collection run in parallel, and writes to different collections do not
/// contend. Soft-deleted records are kept aside as tombstones.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: RwLock<HashMap<Box<str>, RwLock<Table>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the collection's table under a read lock, creating the table if needed.
    fn read<R>(&self, c: &Collection, f: impl FnOnce(&Table) -> R) -> Result<R, StoreError> {
        loop {
            {
                let tables = read(&self.tables);
                if let Some(table) = tables.get(c.name()) {
                    return Ok(f(&read(table)));
                }
            }
            self.prepare_table(c)?;
        }
    }

    /// Runs `f` on the collection's table under a write lock, creating the table and bringing
    /// its unique indexes up to date with `c` if needed.
    fn write<R>(
        &self,
        c: &Collection,
        f: impl FnOnce(&mut Table) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        loop {
            {
                let tables = read(&self.tables);
                if let Some(table) = tables.get(c.name()) {
                    let mut table = write(table);
                    if table.unique_fields != c.unique_fields() {
                        table.reindex(c)?;
                    }
                    return f(&mut table);
                }
            }
            self.prepare_table(c)?;
        }
    }

    fn prepare_table(&self, c: &Collection) -> Result<(), StoreError> {
        let mut tables = write(&self.tables);
        if let Some(table) = tables.get(c.name()) {
            let mut table = write(table);
            if table.unique_fields != c.unique_fields() {
                table.reindex(c)?;
            }
        } else {
            tables.insert(c.name().into(), RwLock::new(Table::new(c)));
        }
        Ok(())
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic cannot leave a table half-updated: operations check everything before they
    // change anything, so a poisoned lock is still consistent.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
struct Table {
    live: BTreeMap<Id, Slot>,
    tombstones: HashMap<Id, Slot>,
    /// The last integer id allocated; never goes down.
    last_id: i64,
    unique_fields: Vec<String>,
    /// Parallel to `unique_fields`: the values live records hold.
    unique: Vec<UniqueIndex>,
}

#[derive(Debug)]
struct Slot {
    parent: Option<String>,
    version: u64,
    data: Arc<Map<String, Value>>,
}

impl Slot {
    fn record(&self, id: &Id) -> Record {
        Record {
            id: id.clone(),
            version: self.version,
            parent: self.parent.clone(),
            data: self.data.clone(),
        }
    }
}

impl Table {
    fn new(c: &Collection) -> Self {
        Self {
            live: BTreeMap::new(),
            tombstones: HashMap::new(),
            last_id: 0,
            unique_fields: c.unique_fields().to_vec(),
            unique: c
                .unique_fields()
                .iter()
                .map(|_| UniqueIndex::default())
                .collect(),
        }
    }

    /// Rebuilds the unique indexes for a collection whose unique fields changed.
    fn reindex(&mut self, c: &Collection) -> Result<(), StoreError> {
        let mut unique = Vec::with_capacity(c.unique_fields().len());
        for field in c.unique_fields() {
            let mut index = UniqueIndex::default();
            for slot in self.live.values() {
                if let Some(value) = slot.data.get(field) {
                    if !index.insert(value) {
                        return Err(StoreError::backend(format!(
                            "cannot make `{field}` unique in `{}`: records share a value",
                            c.name()
                        )));
                    }
                }
            }
            unique.push(index);
        }
        self.unique = unique;
        self.unique_fields = c.unique_fields().to_vec();
        Ok(())
    }

    /// The live record `id` of `parent`, if any.
    fn slot(&self, parent: Option<&str>, id: &Id) -> Result<&Slot, StoreError> {
        match self.live.get(id) {
            Some(slot) if slot.parent.as_deref() == parent => Ok(slot),
            _ => Err(StoreError::NotFound),
        }
    }

    /// Removes the live record `id` of `parent` (checking `if_version`) and frees its unique
    /// values.
    fn take(
        &mut self,
        parent: Option<&str>,
        id: &Id,
        if_version: Option<u64>,
    ) -> Result<Slot, StoreError> {
        let slot = self.slot(parent, id)?;
        check_version(slot.version, if_version)?;
        let slot = self.live.remove(id).ok_or(StoreError::NotFound)?;
        for (field, index) in self.unique_fields.iter().zip(&mut self.unique) {
            if let Some(value) = slot.data.get(field) {
                index.remove(value);
            }
        }
        Ok(slot)
    }
}

fn check_version(current: u64, if_version: Option<u64>) -> Result<(), StoreError> {
    match if_version {
        Some(expected) if expected != current => Err(StoreError::VersionMismatch { current }),
        _ => Ok(()),
    }
}

/// The values of one unique field held by live records.
///
/// Strings, by far the most common unique values, are looked up without allocating.
#[derive(Debug, Default)]
struct UniqueIndex {
    strings: HashSet<String>,
    others: HashSet<Key>,
}

/// A non-string unique value. Numbers compare by value (`1` and `1.0` are one value), as in
/// the SQL backends.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Key {
    Int(i128),
    Float(u64),
    Bool(bool),
    Json(String),
}

impl Key {
    fn of(value: &Value) -> Option<Key> {
        Some(match value {
            Value::Null | Value::String(_) => return None,
            Value::Bool(b) => Key::Bool(*b),
            Value::Number(n) => number_key(n),
            other => Key::Json(other.to_string()),
        })
    }
}

fn number_key(n: &Number) -> Key {
    if let Some(i) = n.as_i64() {
        return Key::Int(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Key::Int(u.into());
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    // `as` saturates, so the round trip only holds for integral floats in range.
    if f.fract() == 0.0 && (f as i128) as f64 == f {
        Key::Int(f as i128)
    } else {
        Key::Float(f.to_bits())
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_key(x) == number_key(y),
        _ => a == b,
    }
}

impl UniqueIndex {
    fn contains(&self, value: &Value) -> bool {
        match value {
            Value::Null => false,
            Value::String(s) => self.strings.contains(s.as_str()),
            other => Key::of(other).is_some_and(|key| self.others.contains(&key)),
        }
    }

    /// Adds a value; false if it was already there. `null` is never indexed.
    fn insert(&mut self, value: &Value) -> bool {
        match value {
            Value::Null => true,
            Value::String(s) => self.strings.insert(s.clone()),
            other => Key::of(other).is_none_or(|key| self.others.insert(key)),
        }
    }

    fn remove(&mut self, value: &Value) {
        match value {
            Value::Null => {}
            Value::String(s) => {
                self.strings.remove(s.as_str());
            }
            other => {
                if let Some(key) = Key::of(other) {
                    self.others.remove(&key);
                }
            }
        }
    }
}

/// The first unique field of `new` whose value another live record holds. `old` is the data
/// the record being written holds now (its own values are no conflict).
fn conflict<'t>(
    table: &'t Table,
    new: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
) -> Option<&'t str> {
    for (field, index) in table.unique_fields.iter().zip(&table.unique) {
        let Some(value) = new.get(field) else {
            continue;
        };
        let own = old
            .and_then(|old| old.get(field))
            .is_some_and(|old| json_eq(old, value));
        if !own && index.contains(value) {
            return Some(field);
        }
    }
    None
}

fn matches(slot: &Slot, query: &ListQuery) -> bool {
    slot.parent.as_deref() == query.parent.as_deref()
        && query
            .filters
            .iter()
            .all(|(field, want)| match (slot.data.get(field), want) {
                (None | Some(Value::Null), Value::Null) => true,
                (Some(have), want) => json_eq(have, want),
                (None, _) => false,
            })
}

impl Store for MemoryStore {
    fn prepare<'a>(&'a self, c: &'a Collection) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.prepare_table(c) })
    }

    fn create<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: Option<Id>,
        data: Map<String, Value>,
    ) -> StoreFuture<'a, Record> {
        Box::pin(async move {
            let id = id_for_create(c, id)?;
            self.write(c, |table| {
                let id = match id {
                    Some(id) if table.live.contains_key(&id) => {
                        return Err(StoreError::Duplicate { field: "id".into() });
                    }
                    Some(id) => id,
                    None => Id::Int(table.last_id + 1),
                };
                if let Some(field) = conflict(table, &data, None) {
                    return Err(StoreError::Duplicate {
                        field: field.into(),
                    });
                }
                // Nothing can fail from here on.
                if let Id::Int(n) = id {
                    table.last_id = n;
                }
                for (field, index) in table.unique_fields.iter().zip(&mut table.unique) {
                    if let Some(value) = data.get(field) {
                        index.insert(value);
                    }
                }
                let version = table
                    .tombstones
                    .remove(&id)
                    .map_or(1, |old| old.version + 1);
                let parent = parent.map(str::to_owned);
                let data = Arc::new(data);
                let slot = Slot {
                    parent: parent.clone(),
                    version,
                    data: data.clone(),
                };
                table.live.insert(id.clone(), slot);
                Ok(Record {
                    id,
                    version,
                    parent,
                    data,
                })
            })
        })
    }

    fn get<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
    ) -> StoreFuture<'a, Record> {
        Box::pin(async move {
            check_id(c, id)?;
            self.read(c, |table| {
                table.slot(parent, id).map(|slot| slot.record(id))
            })?
        })
    }

    fn replace<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
        data: Map<String, Value>,
        if_version: Option<u64>,
    ) -> StoreFuture<'a, Record> {
        Box::pin(async move {
            check_id(c, id)?;
            self.write(c, |table| {
                let slot = table.slot(parent, id)?;
                check_version(slot.version, if_version)?;
                if let Some(field) = conflict(table, &data, Some(&slot.data)) {
                    return Err(StoreError::Duplicate {
                        field: field.into(),
                    });
                }
                let Table {
                    live,
                    unique_fields,
                    unique,
                    ..
                } = table;
                let slot = live.get_mut(id).ok_or(StoreError::NotFound)?;
                for (field, index) in unique_fields.iter().zip(unique) {
                    let (old, new) = (slot.data.get(field), data.get(field));
                    if old.zip(new).is_some_and(|(old, new)| json_eq(old, new)) {
                        continue;
                    }
                    if let Some(old) = old {
                        index.remove(old);
                    }
                    if let Some(new) = new {
                        index.insert(new);
                    }
                }
                slot.version += 1;
                let data = Arc::new(data);
                slot.data = data.clone();
                Ok(Record {
                    id: id.clone(),
                    version: slot.version,
                    parent: slot.parent.clone(),
                    data,
                })
            })
        })
    }

    fn delete<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
        id: &'a Id,
        if_version: Option<u64>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            check_id(c, id)?;
            self.write(c, |table| {
                let mut slot = table.take(parent, id, if_version)?;
                if c.is_soft_delete() {
                    slot.version += 1;
                    table.tombstones.insert(id.clone(), slot);
                }
                Ok(())
            })
        })
    }

    fn list<'a>(&'a self, c: &'a Collection, query: &'a ListQuery) -> StoreFuture<'a, Page> {
        Box::pin(async move {
            check_filters(c, &query.filters)?;
            self.read(c, |table| {
                let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
                let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
                let mut total = 0;
                let mut items = Vec::new();
                for (id, slot) in &table.live {
                    if !matches(slot, query) {
                        continue;
                    }
                    if total >= offset && items.len() < limit {
                        items.push(slot.record(id));
                    }
                    total += 1;
                }
                Page {
                    items,
                    total: total as u64,
                }
            })
        })
    }

    fn delete_all<'a>(
        &'a self,
        c: &'a Collection,
        parent: Option<&'a str>,
    ) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            self.write(c, |table| {
                let ids: Vec<Id> = table
                    .live
                    .iter()
                    .filter(|(_, slot)| slot.parent.as_deref() == parent)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &ids {
                    let mut slot = table.take(parent, id, None)?;
                    if c.is_soft_delete() {
                        slot.version += 1;
                        table.tombstones.insert(id.clone(), slot);
                    }
                }
                Ok(ids.len() as u64)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(!json_eq(&json!(1), &json!(1.5)));
        assert!(!json_eq(&json!(1), &json!("1")));
        let mut index = UniqueIndex::default();
        assert!(index.insert(&json!(2)));
        assert!(index.contains(&json!(2.0)));
        assert!(index.insert(&Value::Null));
        assert!(!index.contains(&Value::Null));
    }
}
