//! Registration that outlives a registry outage at start-up: a service whose registry cannot
//! be reached keeps serving and registers, with backoff, as soon as the registry answers.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::discovery::backoff::Backoff;
use crate::discovery::{DiscoveryError, Instance, Registration, Registry};

/// Retries are at most this far apart, so an instance is found within about this long after
/// its registry comes back (the first retry comes after 100 ms).
const MAX_RETRY: Duration = Duration::from_secs(2);

/// An instance registered now, or being registered in the background.
pub(super) enum Registering {
    /// The registry accepted the instance at the first try.
    /// (Boxed: a registration holds the whole instance, far larger than a task handle.)
    Done(Box<Registration>),
    /// The registry was unreachable; a task retries until it accepts the instance.
    Retrying(JoinHandle<Registration>),
}

impl Registering {
    /// Registers `instance`. An unreachable registry is not fatal: serving goes on while a
    /// task retries. A malformed configuration is, since no retry can fix it.
    pub(super) async fn start(
        registry: Arc<dyn Registry>,
        instance: Instance,
    ) -> Result<Self, DiscoveryError> {
        match registry.register(instance.clone()).await {
            Ok(registration) => Ok(Self::Done(Box::new(registration))),
            Err(DiscoveryError::Unavailable(err)) => {
                tracing::warn!(service = %instance.service, error = %err, "the registry is unreachable; serving, and registering once it answers");
                Ok(Self::Retrying(tokio::spawn(retry(registry, instance))))
            }
            Err(err) => Err(err),
        }
    }

    /// Deregisters the instance, or stops registering it. An attempt cut short may have left
    /// the instance registered on a lease nobody keeps alive: it disappears with its TTL.
    pub(super) async fn deregister(self) {
        let registration = match self {
            Self::Done(registration) => Some(*registration),
            Self::Retrying(task) => {
                // Aborting a finished task does nothing, and its registration is still handed back.
                task.abort();
                task.await.ok()
            }
        };
        if let Some(registration) = registration {
            registration.deregister().await;
        }
    }
}

async fn retry(registry: Arc<dyn Registry>, instance: Instance) -> Registration {
    let mut backoff = Backoff::new(MAX_RETRY);
    loop {
        tokio::time::sleep(backoff.next_delay()).await;
        match registry.register(instance.clone()).await {
            Ok(registration) => {
                tracing::info!(service = %instance.service, addr = %instance.addr, "registered");
                return registration;
            }
            Err(err) => {
                tracing::debug!(service = %instance.service, error = %err, "registering failed again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{BoxFuture, MemoryRegistry};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A registry that is unreachable for its first `failures` calls.
    struct Flaky {
        failures: AtomicUsize,
        inner: MemoryRegistry,
    }

    impl Registry for Flaky {
        fn register(
            &self,
            instance: Instance,
        ) -> BoxFuture<'_, Result<Registration, DiscoveryError>> {
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Box::pin(async { Err(DiscoveryError::Unavailable("down".into())) });
            }
            self.inner.register(instance)
        }

        fn resolve<'a>(
            &'a self,
            service: &'a str,
        ) -> BoxFuture<'a, Result<Vec<Instance>, DiscoveryError>> {
            self.inner.resolve(service)
        }

        fn watch<'a>(
            &'a self,
            service: &'a str,
        ) -> BoxFuture<'a, Result<crate::discovery::Watch, DiscoveryError>> {
            self.inner.watch(service)
        }
    }

    #[tokio::test]
    async fn registers_once_the_registry_answers_and_deregisters() {
        let registry = Arc::new(Flaky {
            failures: AtomicUsize::new(3),
            inner: MemoryRegistry::new(),
        });
        let instance = Instance::new("catalog", ([127, 0, 0, 1], 1).into());
        let registering = Registering::start(registry.clone(), instance)
            .await
            .unwrap();
        assert!(matches!(registering, Registering::Retrying(_)));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while registry.resolve("catalog").await.unwrap().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "never registered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        registering.deregister().await;
        assert!(registry.resolve("catalog").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_configuration_error_is_fatal() {
        struct Misconfigured;
        impl Registry for Misconfigured {
            fn register(&self, _: Instance) -> BoxFuture<'_, Result<Registration, DiscoveryError>> {
                Box::pin(async { Err(DiscoveryError::Config("bad".into())) })
            }
            fn resolve<'a>(
                &'a self,
                _: &'a str,
            ) -> BoxFuture<'a, Result<Vec<Instance>, DiscoveryError>> {
                Box::pin(async { Ok(Vec::new()) })
            }
            fn watch<'a>(
                &'a self,
                service: &'a str,
            ) -> BoxFuture<'a, Result<crate::discovery::Watch, DiscoveryError>> {
                let _ = service;
                Box::pin(async { Err(DiscoveryError::Config("bad".into())) })
            }
        }
        let instance = Instance::new("catalog", ([127, 0, 0, 1], 1).into());
        assert!(Registering::start(Arc::new(Misconfigured), instance)
            .await
            .is_err());
    }
}
