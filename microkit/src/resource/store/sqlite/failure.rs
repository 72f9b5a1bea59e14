//! Which SQLite failures are outages (503) and which are faults (500).

use rusqlite::ErrorCode;

use crate::resource::store::StoreError;

/// Maps a SQLite error to [`StoreError::Unavailable`] when the cause lies outside the store and
/// may pass (a full disk, a read-only file system or file, an I/O error, a file that cannot be
/// opened, a lock held past the busy timeout), and to [`StoreError::Backend`] otherwise.
///
/// SQLite rolls back the statement or transaction that hit any of these, so answering 503 is
/// honest: nothing was acknowledged and nothing was half-written.
pub(super) fn failure(error: rusqlite::Error) -> StoreError {
    let temporary = matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::OutOfMemory
        )
    );
    if temporary {
        StoreError::unavailable(error)
    } else {
        StoreError::backend(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn outages_are_unavailable_and_faults_are_not() {
        for code in [
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_READONLY,
            rusqlite::ffi::SQLITE_IOERR_WRITE,
            rusqlite::ffi::SQLITE_IOERR_FSYNC,
            rusqlite::ffi::SQLITE_CANTOPEN,
            rusqlite::ffi::SQLITE_BUSY,
        ] {
            assert!(failure(sqlite(code)).is_unavailable(), "code {code}");
        }
        for code in [rusqlite::ffi::SQLITE_CORRUPT, rusqlite::ffi::SQLITE_ERROR] {
            assert!(!failure(sqlite(code)).is_unavailable(), "code {code}");
        }
        assert!(!failure(rusqlite::Error::QueryReturnedNoRows).is_unavailable());
    }
}
