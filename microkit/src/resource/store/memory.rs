//! [`MemoryStore`]: records in process memory.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::{Map, Number, Value};

use super::{
    check_filters, check_id, check_write, id_for_create, now_millis, Collection, Committed, Id,
    KeyCommit, KeyRecord, ListQuery, Page, Record, Store, StoreError, StoreFuture, Write,
};

/// A store in process memory: fast, shared by the tasks of one process, gone on exit.
///
/// Each collection is a `BTreeMap` by id (so lists come out in order) behind its own
/// `RwLock`, with a hash set per unique field. The locks are std locks, held only for the
/// synchronous body of an operation and never across an `.await`: every operation is atomic,
/// reads of one collection run in parallel, and writes to different collections do not
/// contend. Soft-deleted records are kept aside as tombstones.
///
/// A [`commit`](Store::commit) holds the key records' lock and then the write locks of the
/// tables it writes, taken in name order (so two commits cannot deadlock), applies its
/// writes one by one and, should one fail, undoes the ones before it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: RwLock<HashMap<Box<str>, RwLock<Table>>>,
    /// Idempotency key records by scope and key.
    keys: Mutex<KeyRecords>,
}

/// The key records by scope and key, and when each expires, soonest first.
///
/// Expired records are dropped as commits come, from the front of the expiry queue: a commit
/// pays for the records that expired since the last one, never for a sweep of all of them.
#[derive(Debug, Default)]
struct KeyRecords {
    by_scope: HashMap<String, HashMap<String, KeyRecord>>,
    /// `(expires_at, scope, key)` of every record kept; a record replaced since (a newer
    /// expiry) leaves its old entry here, skipped when it comes up.
    expiries: BinaryHeap<Reverse<(i64, String, String)>>,
}

impl KeyRecords {
    /// The unexpired record of `key` in `scope`.
    fn live(&self, scope: &str, key: &str, now: i64) -> Option<&KeyRecord> {
        self.by_scope
            .get(scope)?
            .get(key)
            .filter(|record| !record.is_expired(now))
    }

    fn insert(&mut self, scope: String, key: String, record: KeyRecord) {
        self.expiries
            .push(Reverse((record.expires_at, scope.clone(), key.clone())));
        self.by_scope.entry(scope).or_default().insert(key, record);
    }

    /// Drops the records expired at `now`.
    fn purge(&mut self, now: i64) {
        while let Some(Reverse((expires_at, _, _))) = self.expiries.peek() {
            if *expires_at > now {
                return;
            }
            let Some(Reverse((expires_at, scope, key))) = self.expiries.pop() else {
                return;
            };
            if let Some(keys) = self.by_scope.get_mut(&scope) {
                if keys.get(&key).is_some_and(|r| r.expires_at == expires_at) {
                    keys.remove(&key);
                    if keys.is_empty() {
                        self.by_scope.remove(&scope);
                    }
                }
            }
        }
    }
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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

#[derive(Debug, Clone)]
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

impl Table {
    fn create(
        &mut self,
        parent: Option<&str>,
        id: Option<Id>,
        data: Map<String, Value>,
    ) -> Result<Record, StoreError> {
        let id = match id {
            Some(id) if self.live.contains_key(&id) => {
                return Err(StoreError::Duplicate { field: "id".into() });
            }
            Some(id) => id,
            None => Id::Int(self.last_id + 1),
        };
        if let Some(field) = conflict(self, &data, None) {
            return Err(StoreError::Duplicate {
                field: field.into(),
            });
        }
        // Nothing can fail from here on.
        if let Id::Int(n) = id {
            self.last_id = n;
        }
        for (field, index) in self.unique_fields.iter().zip(&mut self.unique) {
            if let Some(value) = data.get(field) {
                index.insert(value);
            }
        }
        let version = self.tombstones.remove(&id).map_or(1, |old| old.version + 1);
        let parent = parent.map(str::to_owned);
        let data = Arc::new(data);
        let slot = Slot {
            parent: parent.clone(),
            version,
            data: data.clone(),
        };
        self.live.insert(id.clone(), slot);
        Ok(Record {
            id,
            version,
            parent,
            data,
        })
    }

    fn replace(
        &mut self,
        parent: Option<&str>,
        id: &Id,
        data: Map<String, Value>,
        if_version: Option<u64>,
    ) -> Result<Record, StoreError> {
        let slot = self.slot(parent, id)?;
        check_version(slot.version, if_version)?;
        if let Some(field) = conflict(self, &data, Some(&slot.data)) {
            return Err(StoreError::Duplicate {
                field: field.into(),
            });
        }
        let Table {
            live,
            unique_fields,
            unique,
            ..
        } = self;
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
    }

    fn delete(
        &mut self,
        c: &Collection,
        parent: Option<&str>,
        id: &Id,
        if_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut slot = self.take(parent, id, if_version)?;
        if c.is_soft_delete() {
            slot.version += 1;
            self.tombstones.insert(id.clone(), slot);
        }
        Ok(())
    }

    /// Applies one write of a commit, returning what undoes it and the record it stored.
    fn apply(&mut self, write: Write) -> Result<(Undo, Option<Record>), StoreError> {
        match write {
            Write::Create {
                parent, id, data, ..
            } => {
                let before = id.as_ref().map(|id| self.before(id));
                let last_id = self.last_id;
                self.create(parent.as_deref(), id, data).map(|record| {
                    let before = before.unwrap_or_else(|| Undo {
                        id: record.id.clone(),
                        live: None,
                        tombstone: None,
                        last_id,
                    });
                    (before, Some(record))
                })
            }
            Write::Replace {
                parent,
                id,
                data,
                if_version,
                ..
            } => {
                let before = self.before(&id);
                self.replace(parent.as_deref(), &id, data, if_version)
                    .map(|record| (before, Some(record)))
            }
            Write::Delete {
                collection,
                parent,
                id,
                if_version,
            } => {
                let before = self.before(&id);
                self.delete(&collection, parent.as_deref(), &id, if_version)
                    .map(|()| (before, None))
            }
        }
    }

    /// What a write may change about `id`, to put back should a later write of the same
    /// commit fail.
    fn before(&self, id: &Id) -> Undo {
        Undo {
            id: id.clone(),
            live: self.live.get(id).cloned(),
            tombstone: self.tombstones.get(id).cloned(),
            last_id: self.last_id,
        }
    }

    /// Puts `id` back as `undo` found it, unique indexes included.
    fn undo(&mut self, undo: Undo) {
        if let Some(now) = self.live.remove(&undo.id) {
            for (field, index) in self.unique_fields.iter().zip(&mut self.unique) {
                if let Some(value) = now.data.get(field) {
                    index.remove(value);
                }
            }
        }
        if let Some(old) = undo.live {
            for (field, index) in self.unique_fields.iter().zip(&mut self.unique) {
                if let Some(value) = old.data.get(field) {
                    index.insert(value);
                }
            }
            self.live.insert(undo.id.clone(), old);
        }
        match undo.tombstone {
            Some(old) => self.tombstones.insert(undo.id, old),
            None => self.tombstones.remove(&undo.id),
        };
        self.last_id = undo.last_id;
    }
}

/// A record as it was before a write of a commit.
struct Undo {
    id: Id,
    live: Option<Slot>,
    tombstone: Option<Slot>,
    last_id: i64,
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
            self.write(c, |table| table.create(parent, id, data))
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
            self.write(c, |table| table.replace(parent, id, data, if_version))
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
            self.write(c, |table| table.delete(c, parent, id, if_version))
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
                    table.delete(c, parent, id, None)?;
                }
                Ok(ids.len() as u64)
            })
        })
    }

    fn commit<'a>(
        &'a self,
        writes: Vec<Write>,
        key: Option<KeyCommit>,
    ) -> StoreFuture<'a, Committed> {
        Box::pin(async move { self.commit_now(writes, key) })
    }

    fn key_record<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<KeyRecord>> {
        Box::pin(async move {
            let now = now_millis();
            Ok(lock(&self.keys).live(scope, key, now).cloned())
        })
    }
}

impl MemoryStore {
    fn commit_now(
        &self,
        writes: Vec<Write>,
        key: Option<KeyCommit>,
    ) -> Result<Committed, StoreError> {
        // Checked before any lock: a bad id fails the commit with nothing changed.
        let mut writes = writes;
        for write in &mut writes {
            check_write(write)?;
        }
        let mut names: Vec<Arc<Collection>> =
            writes.iter().map(|w| w.collection().clone()).collect();
        names.sort_by(|a, b| a.name().cmp(b.name()));
        names.dedup_by(|a, b| a.name() == b.name());
        for c in &names {
            self.prepare_table(c)?;
        }
        let now = now_millis();
        let mut keys = lock(&self.keys);
        if let Some(key) = &key {
            if keys.live(&key.scope, &key.key, now).is_some() {
                return Err(StoreError::KeyTaken);
            }
        }
        let tables = read(&self.tables);
        let mut locked: Vec<(&str, RwLockWriteGuard<'_, Table>)> = Vec::with_capacity(names.len());
        for c in &names {
            let table = tables
                .get(c.name())
                .ok_or_else(|| StoreError::backend("a prepared table vanished"))?;
            let mut table = write(table);
            if table.unique_fields != c.unique_fields() {
                table.reindex(c)?;
            }
            locked.push((c.name(), table));
        }
        let mut undo: Vec<(usize, Undo)> = Vec::with_capacity(writes.len());
        let mut written = Vec::with_capacity(writes.len());
        let mut failed = None;
        for write in writes {
            let slot = locked
                .iter()
                .position(|(name, _)| *name == write.collection().name())
                .expect("every written table is locked");
            let table = &mut locked[slot].1;
            let result = table.apply(write);
            match result {
                Ok((before, record)) => {
                    undo.push((slot, before));
                    written.push(record);
                }
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        let key_record = match (failed, key) {
            (Some(error), _) => Err(error),
            (None, None) => Ok(None),
            (None, Some(key)) => {
                (key.respond)(&written).map(|record| Some((key.scope, key.key, record)))
            }
        };
        match key_record {
            Err(error) => {
                for (slot, before) in undo.into_iter().rev() {
                    locked[slot].1.undo(before);
                }
                Err(error)
            }
            Ok(key_record) => {
                keys.purge(now);
                let key_record = key_record.map(|(scope, key, record)| {
                    keys.insert(scope, key, record.clone());
                    record
                });
                Ok(Committed {
                    written,
                    key_record,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kept(expires_at: i64) -> KeyRecord {
        KeyRecord {
            fingerprint: String::new(),
            status: 201,
            headers: Vec::new(),
            body: bytes::Bytes::new(),
            expires_at,
        }
    }

    #[test]
    fn expired_key_records_are_dropped_and_replaced_ones_kept() {
        let mut keys = KeyRecords::default();
        keys.insert("POST /a".into(), "early".into(), kept(10));
        keys.insert("POST /a".into(), "late".into(), kept(30));
        keys.insert("POST /b".into(), "renewed".into(), kept(10));
        // Expired, then kept again: the first record's expiry must not drop the second.
        keys.insert("POST /b".into(), "renewed".into(), kept(40));
        assert!(keys.live("POST /a", "early", 9).is_some());
        assert!(keys.live("POST /a", "early", 10).is_none());
        keys.purge(20);
        assert!(!keys.by_scope["POST /a"].contains_key("early"));
        assert!(keys.live("POST /a", "late", 20).is_some());
        assert!(keys.live("POST /b", "renewed", 20).is_some());
        assert_eq!(keys.expiries.len(), 2);
        keys.purge(40);
        assert!(keys.by_scope.is_empty());
        assert!(keys.expiries.is_empty());
    }

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
