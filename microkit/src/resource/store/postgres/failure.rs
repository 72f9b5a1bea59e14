//! Which PostgreSQL and pool failures are outages (503) and which are faults (500).

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::resource::store::StoreError;

/// Maps a `tokio-postgres` error: no connection, a broken one, or a server that cannot serve
/// now is [`StoreError::Unavailable`]; any other error the server reports is
/// [`StoreError::Backend`].
pub(super) fn failure(error: tokio_postgres::Error) -> StoreError {
    let temporary = match error.code() {
        // No SQLSTATE: the error is the connection's (I/O, closed, timed out), not a statement's.
        None => true,
        Some(code) => is_temporary(code),
    };
    if temporary {
        StoreError::unavailable(error)
    } else {
        StoreError::backend(error)
    }
}

/// Maps a pool error: timeouts, a closed pool and a connection that could not be made are
/// outages.
pub(super) fn pool_failure(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => failure(error),
        PoolError::Timeout(_) | PoolError::Closed => StoreError::unavailable(error),
        other => StoreError::backend(other),
    }
}

/// SQLSTATEs that say "not now" rather than "never".
fn is_temporary(code: &SqlState) -> bool {
    let class = &code.code()[..2];
    // 08: connection exception; 53: insufficient resources (disk full, out of memory, too
    // many connections); 57: operator intervention (shutdown, a cancelled statement: our
    // statement_timeout); 58: system error (I/O).
    matches!(class, "08" | "53" | "57" | "58")
        // A hot standby, or a primary being demoted: writes come back after failover.
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_temporary_and_faults_are_not() {
        for code in [
            SqlState::QUERY_CANCELED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::DISK_FULL,
            SqlState::CONNECTION_FAILURE,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ] {
            assert!(is_temporary(&code), "{code:?}");
        }
        for code in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::SYNTAX_ERROR,
            SqlState::UNDEFINED_TABLE,
        ] {
            assert!(!is_temporary(&code), "{code:?}");
        }
    }

    #[test]
    fn pool_timeouts_are_unavailable() {
        let timeout = PoolError::Timeout(deadpool_postgres::TimeoutType::Wait);
        assert!(pool_failure(timeout).is_unavailable());
        assert!(pool_failure(PoolError::Closed).is_unavailable());
    }
}
