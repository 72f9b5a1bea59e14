//! The watcher: one background task per watched service, shared by all its watchers, that
//! mirrors the service's keys into a [`Watch`].
//!
//! It lists the keys, then watches from the next revision. When the stream breaks or etcd
//! cancels it (compaction), it lists again and watches again, with backoff. While etcd is
//! unreachable the last good list stays published: an error never empties it.
//!
//! A watch can also go silent without breaking: etcd frozen (SIGSTOP, a stalled disk) or a
//! half-open connection that a NAT or firewall dropped. A quiet watch and a dead one look
//! the same from here, so every lease TTL the task lists the keys again, on a connection of
//! its own, within half a TTL: a list that does not answer, or that shows what the watch did
//! not, ends the watch, and it is listed and watched afresh. A silent watch is so found within
//! 1.5 TTLs, for one range request per watched service per TTL. (etcd's own progress
//! notifications come every ten minutes by default, and the JSON gateway's watch stream
//! cannot ask for one.)

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::client::{Client, EtcdError};
use super::wire::{
    prefix_end, Event, KeyValue, StreamItem, WatchCreate, WatchRequest, WatchResponse,
};
use crate::discovery::backoff::Backoff;
use crate::discovery::{DiscoveryError, Instance, Watch};

/// Re-lists while etcd is unreachable are at most this far apart.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// The publishing side of each watched service, by service name. An entry lives as long as its
/// task, which removes it (under the lock) once no receiver is left.
pub(super) type Watchers = Arc<Mutex<HashMap<String, watch::Sender<Arc<[Instance]>>>>>;

/// A receiver of `service`'s list, whose keys all start with `prefix`: joins the running task,
/// or lists the keys and starts one (so the first list is real, or an error).
pub(super) async fn watch(
    client: &Client,
    watchers: &Watchers,
    service: &str,
    prefix: Vec<u8>,
    ttl: Duration,
) -> Result<Watch, DiscoveryError> {
    if let Some(sender) = lock(watchers).get(service) {
        return Ok(sender.subscribe());
    }
    let end = prefix_end(&prefix);
    let (kvs, revision) = client.range(&prefix, &end).await?;
    let mut snapshot = Snapshot::default();
    snapshot.replace(kvs);

    let mut services = lock(watchers);
    if let Some(sender) = services.get(service) {
        // Another watch of the same service started the task while we listed.
        return Ok(sender.subscribe());
    }
    let (sender, receiver) = watch::channel(snapshot.list());
    services.insert(service.to_owned(), sender.clone());
    drop(services);

    let follower = Follower {
        client: client.clone(),
        prefix,
        end,
        snapshot,
        sender: sender.clone(),
        check_every: ttl,
        check_timeout: ttl / 2,
    };
    let (watchers, service) = (watchers.clone(), service.to_owned());
    tokio::spawn(async move {
        tokio::select! {
            () = until_unwatched(&watchers, &service, &sender) => {
                tracing::debug!(%service, "nobody watches the service any more; watch stopped");
            }
            never = follower.run(revision) => match never {},
        }
    });
    Ok(receiver)
}

/// Returns once every receiver is dropped, having removed the service's entry, so that a later
/// watch starts afresh rather than subscribing to a stopped task.
async fn until_unwatched(
    watchers: &Watchers,
    service: &str,
    sender: &watch::Sender<Arc<[Instance]>>,
) {
    loop {
        sender.closed().await;
        let mut services = lock(watchers);
        // Receivers are only added under this lock: none can appear after this check.
        if sender.receiver_count() == 0 {
            services.remove(service);
            return;
        }
    }
}

fn lock(
    watchers: &Watchers,
) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Arc<[Instance]>>>> {
    watchers
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The task's state: where to look, what it knows, where to publish.
struct Follower {
    client: Client,
    prefix: Vec<u8>,
    end: Vec<u8>,
    snapshot: Snapshot,
    sender: watch::Sender<Arc<[Instance]>>,
    /// How often a watch is checked against a fresh list.
    check_every: Duration,
    /// How long a list may take before etcd counts as unreachable.
    check_timeout: Duration,
}

impl Follower {
    /// Watches from after `revision`, forever (the caller drops it when unwatched).
    async fn run(mut self, mut revision: i64) -> Infallible {
        let mut backoff = Backoff::new(MAX_RETRY);
        loop {
            match self.follow(revision + 1, &mut backoff).await {
                Ok(reason) => {
                    tracing::debug!(prefix = %self.prefix_str(), %reason, "etcd canceled the watch; listing again")
                }
                Err(err) => {
                    tracing::warn!(prefix = %self.prefix_str(), error = %err, "etcd watch broke; listing again")
                }
            }
            revision = loop {
                tokio::time::sleep(backoff.next_delay()).await;
                match self.range().await {
                    Ok((kvs, revision)) => {
                        self.snapshot.replace(kvs);
                        self.publish();
                        break revision;
                    }
                    // Keep the last good list: an unreachable etcd says nothing about instances.
                    Err(err) => {
                        tracing::debug!(prefix = %self.prefix_str(), error = %err, "etcd list failed; keeping the last list")
                    }
                }
            };
        }
    }

    /// Applies the watch stream until it breaks (`Err`) or etcd cancels it (`Ok`, why).
    async fn follow(
        &mut self,
        start_revision: i64,
        backoff: &mut Backoff,
    ) -> Result<String, EtcdError> {
        let request = WatchRequest {
            create_request: WatchCreate {
                key: &self.prefix,
                range_end: &self.end,
                start_revision,
            },
        };
        // A watch that etcd does not even accept in time is as silent as one that stops.
        let mut lines = tokio::time::timeout(
            self.check_timeout,
            self.client.stream("/v3/watch", &request),
        )
        .await
        .map_err(|_| EtcdError::Timeout)??;
        let first_check = tokio::time::Instant::now() + self.check_every;
        let mut checks = tokio::time::interval_at(first_check, self.check_every);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `Lines::next` is cancel-safe: a line read in part stays buffered.
            let line = tokio::select! {
                line = lines.next() => line?,
                _ = checks.tick() => {
                    if let Some(reason) = self.check().await? {
                        return Ok(reason);
                    }
                    continue;
                }
            };
            let Some(line) = line else {
                break;
            };
            let item: StreamItem<WatchResponse> =
                serde_json::from_slice(&line).map_err(|err| EtcdError::Decode(err.to_string()))?;
            if let Some(error) = item.error {
                return Err(EtcdError::Decode(format!("watch failed: {error}")));
            }
            let Some(response) = item.result else {
                continue;
            };
            if response.compact_revision > 0 {
                return Ok(format!(
                    "compacted at revision {}",
                    response.compact_revision
                ));
            }
            if response.canceled {
                return Ok(format!("canceled: {}", response.cancel_reason));
            }
            if response.created {
                backoff.reset();
            }
            if !response.events.is_empty() {
                self.snapshot.apply(response.events);
                self.publish();
            }
        }
        Err(EtcdError::Transport("etcd ended the watch stream".into()))
    }

    /// Lists the keys, within the check timeout.
    async fn range(&self) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        tokio::time::timeout(
            self.check_timeout,
            self.client.range(&self.prefix, &self.end),
        )
        .await
        .map_err(|_| EtcdError::Timeout)?
    }

    /// Compares the watched list with a fresh one. `Err` when etcd does not answer in time;
    /// `Ok(Some(why))` when the lists differ: the fresh one is published, and the watch,
    /// which missed the change or has yet to deliver it, is to be replaced.
    async fn check(&mut self) -> Result<Option<String>, EtcdError> {
        let (kvs, _) = self.range().await?;
        let mut fresh = Snapshot::default();
        fresh.replace(kvs);
        if fresh == self.snapshot {
            return Ok(None);
        }
        self.snapshot = fresh;
        self.publish();
        Ok(Some(
            "a fresh list shows changes the watch did not".to_owned(),
        ))
    }

    /// Publishes the snapshot, waking watchers only if the list changed.
    fn publish(&self) {
        let list = self.snapshot.list();
        self.sender.send_if_modified(|current| {
            if **current == *list {
                return false;
            }
            *current = list;
            true
        });
    }

    fn prefix_str(&self) -> String {
        String::from_utf8_lossy(&self.prefix).into_owned()
    }
}

/// The instances under a prefix, by key (so lists come out in a stable order).
#[derive(Debug, Default, PartialEq)]
struct Snapshot {
    instances: BTreeMap<Vec<u8>, Instance>,
}

impl Snapshot {
    fn replace(&mut self, kvs: Vec<KeyValue>) {
        self.instances = kvs
            .into_iter()
            .filter_map(|kv| Some((decode(&kv)?, kv.key)))
            .map(|(instance, key)| (key, instance))
            .collect();
    }

    fn apply(&mut self, events: Vec<Event>) {
        for event in events {
            if event.is_delete() {
                self.instances.remove(&event.kv.key);
            } else if let Some(instance) = decode(&event.kv) {
                self.instances.insert(event.kv.key, instance);
            } else {
                // What we cannot read cannot be called: the key no longer names an instance.
                self.instances.remove(&event.kv.key);
            }
        }
    }

    fn list(&self) -> Arc<[Instance]> {
        self.instances.values().cloned().collect()
    }
}

/// The instance stored in `kv`; a malformed value is logged and skipped.
pub(super) fn decode(kv: &KeyValue) -> Option<Instance> {
    match serde_json::from_slice(&kv.value) {
        Ok(instance) => Some(instance),
        Err(err) => {
            tracing::warn!(key = %String::from_utf8_lossy(&kv.key), error = %err, "skipping a malformed instance in etcd");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, port: u16) -> KeyValue {
        let instance = Instance::new("catalog", ([127, 0, 0, 1], port).into()).with_id(key);
        KeyValue {
            key: key.as_bytes().to_vec(),
            value: serde_json::to_vec(&instance).unwrap(),
        }
    }

    #[test]
    fn snapshots_follow_puts_and_deletes() {
        let mut snapshot = Snapshot::default();
        snapshot.replace(vec![kv("b", 2), kv("a", 1)]);
        let ports: Vec<u16> = snapshot.list().iter().map(|i| i.addr.port()).collect();
        assert_eq!(ports, [1, 2]);

        let delete = Event {
            kind: "DELETE".into(),
            kv: KeyValue {
                key: b"a".to_vec(),
                value: Vec::new(),
            },
        };
        let put = Event {
            kind: String::new(),
            kv: kv("c", 3),
        };
        let garbage = Event {
            kind: String::new(),
            kv: KeyValue {
                key: b"b".to_vec(),
                value: b"not json".to_vec(),
            },
        };
        snapshot.apply(vec![delete, put, garbage]);
        let ports: Vec<u16> = snapshot.list().iter().map(|i| i.addr.port()).collect();
        assert_eq!(ports, [3]);
    }
}
