//! The etcd operations discovery needs, typed: leases, puts, ranges, deletes.

use super::client::{Client, EtcdError};
use super::wire::{KeyRange, KeyValue, Lease, LeaseGrant, LeaseId, Put, Range, StreamItem};

impl Client {
    /// Grants a lease of `ttl` seconds; etcd may raise the TTL to its minimum.
    pub(super) async fn grant(&self, ttl: i64) -> Result<Lease, EtcdError> {
        let lease: Lease = self.call("/v3/lease/grant", &LeaseGrant { ttl }).await?;
        if lease.id == 0 {
            return Err(EtcdError::Decode("a lease grant without an ID".into()));
        }
        Ok(lease)
    }

    /// Refreshes lease `id`; returns its remaining TTL, 0 when etcd no longer knows it.
    pub(super) async fn keepalive(&self, id: i64) -> Result<i64, EtcdError> {
        let item: StreamItem<Lease> = self.call("/v3/lease/keepalive", &LeaseId { id }).await?;
        if let Some(error) = item.error {
            return Err(EtcdError::Decode(format!("keepalive failed: {error}")));
        }
        Ok(item.result.map_or(0, |lease| lease.ttl))
    }

    /// Revokes lease `id`, deleting its keys. A lease already gone is not an error.
    pub(super) async fn revoke(&self, id: i64) -> Result<(), EtcdError> {
        match self
            .call::<serde_json::Value>("/v3/lease/revoke", &LeaseId { id })
            .await
        {
            Err(EtcdError::Status {
                code: NOT_FOUND, ..
            })
            | Ok(_) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Stores `value` at `key`, attached to `lease` (0: none).
    pub(super) async fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<(), EtcdError> {
        self.call::<serde_json::Value>("/v3/kv/put", &Put { key, value, lease })
            .await
            .map(drop)
    }

    /// Every key in `[key, range_end)`, and the store's revision when read.
    pub(super) async fn range(
        &self,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let range: Range = self
            .call("/v3/kv/range", &KeyRange { key, range_end })
            .await?;
        Ok((range.kvs, range.header.revision))
    }

    /// Deletes `key`.
    pub(super) async fn delete(&self, key: &[u8]) -> Result<(), EtcdError> {
        let range_end: &[u8] = &[];
        self.call::<serde_json::Value>("/v3/kv/deleterange", &KeyRange { key, range_end })
            .await
            .map(drop)
    }
}

/// gRPC's NOT_FOUND, as etcd answers for an unknown lease.
const NOT_FOUND: i32 = 5;
