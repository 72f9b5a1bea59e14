//! The lease keeper: holds one instance's key alive, and puts it back when it is lost.

use std::time::Duration;

use tokio::sync::oneshot;

use super::client::{Client, EtcdError};
use crate::discovery::backoff::Backoff;

/// Retries while etcd is unreachable are at most this far apart (and never further apart than
/// the keepalive interval), so the instance is back soon after etcd is.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// One instance's registration: its key, its value and the lease that holds them.
pub(super) struct Keeper {
    client: Client,
    key: Vec<u8>,
    value: Vec<u8>,
    ttl_secs: i64,
    lease: Option<i64>,
}

impl Keeper {
    pub(super) fn new(client: Client, key: Vec<u8>, value: Vec<u8>, ttl_secs: i64) -> Self {
        Self {
            client,
            key,
            value,
            ttl_secs,
            lease: None,
        }
    }

    /// The first registration: a lease, then the key on it. On failure, the lease granted (if
    /// any) is revoked rather than left to expire.
    pub(super) async fn register(&mut self) -> Result<(), EtcdError> {
        let result = self.refresh(false).await;
        if result.is_err() {
            if let Some(lease) = self.lease.take() {
                let _ = self.client.revoke(lease).await;
            }
        }
        result
    }

    /// Keeps the lease alive every `interval` until `stop` fires (or its sender is dropped);
    /// returns the lease then held, for the caller to revoke.
    pub(super) async fn run(
        mut self,
        interval: Duration,
        mut stop: oneshot::Receiver<()>,
    ) -> Option<i64> {
        let mut backoff = Backoff::new(interval.min(MAX_RETRY));
        let mut healthy = true;
        loop {
            let delay = if healthy {
                interval
            } else {
                backoff.next_delay()
            };
            tokio::select! {
                _ = &mut stop => return self.lease,
                () = tokio::time::sleep(delay) => {}
            }
            // A refresh is not interrupted by `stop`: it is bounded by the request timeout, and
            // finishing it means we know which lease to revoke.
            match self.refresh(!healthy).await {
                Ok(()) if !healthy => {
                    tracing::info!(key = %self.key_str(), "etcd is reachable again; registration renewed");
                    healthy = true;
                    backoff.reset();
                }
                Ok(()) => {}
                Err(err) if healthy => {
                    tracing::warn!(key = %self.key_str(), error = %err, "etcd keepalive failed; retrying");
                    healthy = false;
                }
                Err(err) => {
                    tracing::debug!(key = %self.key_str(), error = %err, "etcd keepalive failed again");
                }
            }
        }
    }

    /// Refreshes the lease; grants a new one and puts the key again if etcd lost it (TTL
    /// expired while we could not reach etcd, or etcd restarted without its data). After an
    /// outage (`recovering`) the key is put again even on a live lease, since we cannot know
    /// what happened to it meanwhile; a put of the same value is harmless.
    async fn refresh(&mut self, recovering: bool) -> Result<(), EtcdError> {
        if let Some(lease) = self.lease {
            if self.client.keepalive(lease).await? > 0 {
                if recovering {
                    self.client.put(&self.key, &self.value, lease).await?;
                }
                return Ok(());
            }
            tracing::warn!(key = %self.key_str(), "etcd lost the lease; registering again");
            self.lease = None;
        }
        let lease = self.client.grant(self.ttl_secs).await?;
        self.lease = Some(lease.id);
        self.client.put(&self.key, &self.value, lease.id).await
    }

    fn key_str(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }
}
