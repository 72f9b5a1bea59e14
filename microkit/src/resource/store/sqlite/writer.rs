//! The writer: one thread that owns the write connection and commits the writes queued while
//! it was busy together, in one transaction (group commit).
//!
//! Why: every commit waits for an fsync of the write-ahead log, and one write at a time means
//! one fsync each; writes that arrive together now share one. Each write runs in a savepoint
//! of its own, so that one that fails is undone alone and the others commit; none is answered
//! before the transaction that holds it is committed. And a write costs its task one hand-off
//! to a thread that is already running, instead of a blocking-pool thread of its own
//! contending for the connection's lock.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::failure;
use crate::resource::store::StoreError;

/// The most writes one transaction commits together.
const MAX_BATCH: usize = 64;

/// The handle to the writer thread, which ends (closing the connection) once this is dropped
/// and the writes queued before are done.
pub(super) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub(super) fn start(conn: Connection) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("microkit-sqlite-writer".into())
            .spawn(move || serve(conn, &queue))?;
        Ok(Self { jobs })
    }

    /// Runs `write` inside the next transaction the writer commits, and answers with its value
    /// once that transaction is committed (or with the error that kept it from being).
    ///
    /// `write` must leave the transaction to the writer (no `COMMIT`, `ROLLBACK` or `RELEASE`
    /// of its own): the writer takes a connection back in autocommit mode for a transaction
    /// that SQLite rolled back.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.queue(write)?.await.map_err(|_| stopped())?
    }

    fn queue<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<T, StoreError>>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Pending {
            write: Some(write),
            value: None,
            reply,
        };
        self.jobs.send(Box::new(job)).map_err(|_| stopped())?;
        Ok(answer)
    }
}

fn stopped() -> StoreError {
    StoreError::backend("the SQLite writer thread has stopped")
}

/// A write waiting for the writer.
trait Job: Send {
    /// Runs the write, keeping its value for the answer.
    fn run(&mut self, conn: &Connection) -> Result<(), StoreError>;

    /// Answers the caller: the write's value once `outcome` says it is committed, else the
    /// error.
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>);
}

struct Pending<F, T> {
    write: Option<F>,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Job for Pending<F, T>
where
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let write = self
            .write
            .take()
            .ok_or_else(|| StoreError::backend("a write ran twice"))?;
        self.value = Some(write(conn)?);
        Ok(())
    }

    fn answer(self: Box<Self>, outcome: Result<(), StoreError>) {
        let Pending { value, reply, .. } = *self;
        let answer = outcome.and_then(|()| {
            value.ok_or_else(|| StoreError::backend("a write was answered before it ran"))
        });
        // The caller may have gone (its request cancelled): the write stands all the same.
        let _ = reply.send(answer);
    }
}

/// The writer thread: a batch of whatever is queued, up to [`MAX_BATCH`], per transaction.
fn serve(mut conn: Connection, queue: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(&mut conn, batch);
    }
}

/// What became of one write of a batch.
enum Ran {
    /// Done, in the transaction.
    Written,
    /// Failed and undone; the transaction and the batch's other writes stand.
    Refused(StoreError),
    /// Failed, and the transaction went with it (SQLite rolls it back itself on a full disk or
    /// an I/O error): the batch's earlier writes are lost too.
    Lost(StoreError),
}

/// Runs `batch` in one `BEGIN IMMEDIATE` transaction and answers every write once the
/// transaction's fate is known, refusals included: whatever a caller reads after its answer
/// (the record of the key its write found taken, say) includes the batch's writes before it.
fn commit(conn: &mut Connection, batch: Vec<Box<dyn Job>>) {
    if batch.is_empty() {
        return;
    }
    // A transaction a failed rollback left open would refuse every batch from here on.
    if !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
    if let Err(err) = exec(conn, "BEGIN IMMEDIATE") {
        return fail(batch, &err);
    }
    let mut written = Vec::with_capacity(batch.len());
    let mut refused = Vec::new();
    let mut jobs = batch.into_iter();
    while let Some(mut job) = jobs.next() {
        match run(conn, job.as_mut()) {
            Ran::Written => written.push(job),
            Ran::Refused(error) => refused.push(Refusal {
                job,
                error,
                saw_writes: !written.is_empty(),
            }),
            Ran::Lost(error) => {
                let lost = error.to_string();
                job.answer(Err(error));
                let rolled_back = || {
                    StoreError::unavailable(format!(
                        "rolled back with another write of its transaction, which failed: {lost}"
                    ))
                };
                for job in written {
                    job.answer(Err(rolled_back()));
                }
                answer_refused(refused, rolled_back);
                // The rest, not yet run, in a transaction of their own.
                return commit(conn, jobs.collect());
            }
        }
    }
    match exec(conn, "COMMIT") {
        Ok(()) => {
            for job in written {
                job.answer(Ok(()));
            }
            for refusal in refused {
                refusal.job.answer(Err(refusal.error));
            }
        }
        Err(err) => {
            if !conn.is_autocommit() {
                let _ = exec(conn, "ROLLBACK");
            }
            let failed = err.to_string();
            fail(written, &err);
            answer_refused(refused, || {
                StoreError::unavailable(format!("its transaction failed to commit: {failed}"))
            });
        }
    }
}

/// A write refused in a transaction that is still open.
struct Refusal {
    job: Box<dyn Job>,
    error: StoreError,
    /// Whether the transaction held other writes when it was refused: then it may have been
    /// refused because of them (a duplicate of a record written just before, a version just
    /// changed).
    saw_writes: bool,
}

/// Answers the refusals of a transaction that did not commit: one that saw other writes, now
/// undone, with `undone()` (its refusal no longer holds, and the write may well succeed if
/// made again), the others with their own error.
fn answer_refused(refused: Vec<Refusal>, undone: impl Fn() -> StoreError) {
    for refusal in refused {
        let error = if refusal.saw_writes {
            undone()
        } else {
            refusal.error
        };
        refusal.job.answer(Err(error));
    }
}

/// Runs one write in a savepoint of the open transaction.
fn run(conn: &Connection, job: &mut dyn Job) -> Ran {
    if let Err(err) = exec(conn, "SAVEPOINT write") {
        // Nothing of this write to undo; the transaction may be gone, though.
        let error = failure(err);
        return if conn.is_autocommit() {
            Ran::Lost(error)
        } else {
            Ran::Refused(error)
        };
    }
    let ran = catch_unwind(AssertUnwindSafe(|| job.run(conn)))
        .unwrap_or_else(|_| Err(StoreError::backend("the write panicked")))
        .and_then(|()| exec(conn, "RELEASE write").map_err(failure));
    match ran {
        Ok(()) => Ran::Written,
        Err(error) if conn.is_autocommit() => Ran::Lost(error),
        Err(error) => {
            let undone = exec(conn, "ROLLBACK TO write").and_then(|()| exec(conn, "RELEASE write"));
            match undone {
                Ok(()) => Ran::Refused(error),
                // The write cannot be undone alone: the whole transaction goes.
                Err(_) => {
                    let _ = exec(conn, "ROLLBACK");
                    Ran::Lost(error)
                }
            }
        }
    }
}

/// Answers every job of `jobs` with `err`, classified as [`failure`] classifies it.
fn fail(jobs: Vec<Box<dyn Job>>, err: &rusqlite::Error) {
    for job in jobs {
        job.answer(Err(match err.sqlite_error() {
            Some(code) => failure(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code.extended_code),
                Some(err.to_string()),
            )),
            None => StoreError::backend(err.to_string()),
        }));
    }
}

/// Runs one statement without parameters, prepared once per connection.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use rusqlite::Connection;

    use super::Writer;
    use crate::resource::store::sqlite::failure;
    use crate::resource::store::StoreError;

    /// A writer on a fresh database with one table, `t`, whose `v` is unique, and a reader of
    /// the same file.
    fn writer() -> (tempfile::TempDir, Writer, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER UNIQUE);")
            .unwrap();
        (
            dir,
            Writer::start(conn).unwrap(),
            Connection::open(&path).unwrap(),
        )
    }

    fn insert(v: i64) -> impl FnOnce(&Connection) -> Result<i64, StoreError> + Send {
        move |conn| {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [v])
                .map_err(failure)?;
            Ok(v)
        }
    }

    /// A write that fails and takes its transaction with it, as SQLite does itself on a full
    /// disk.
    fn losing_the_transaction(conn: &Connection) -> Result<(), StoreError> {
        conn.execute_batch("ROLLBACK").map_err(failure)?;
        Err(StoreError::unavailable("the disk is full"))
    }

    fn stored(reader: &Connection) -> Vec<i64> {
        let mut stmt = reader.prepare("SELECT v FROM t ORDER BY v").unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Holds the writer inside a write until the returned sender is used, so that the writes
    /// queued meanwhile make one batch.
    async fn hold(writer: &Writer) -> mpsc::Sender<()> {
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let holding = writer.queue(move |_| {
            let _ = started.send(());
            held.recv().map_err(StoreError::backend)
        });
        drop(holding);
        running.await.unwrap();
        release
    }

    /// Writes queued together commit together, each in its own savepoint: the one that fails
    /// (a duplicate) is undone alone, the ones before and after it stand, and every answer
    /// comes once the transaction is committed.
    #[tokio::test]
    async fn a_failed_write_of_a_batch_leaves_the_others() {
        let (_dir, writer, reader) = writer();
        writer.write(insert(1)).await.unwrap();
        let release = hold(&writer).await;
        let answers: Vec<_> = [2, 3, 1, 4]
            .map(|v| writer.queue(insert(v)).unwrap())
            .into_iter()
            .collect();
        release.send(()).unwrap();
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.unwrap());
        }
        assert_eq!(results[0].as_ref().unwrap(), &2);
        assert_eq!(results[1].as_ref().unwrap(), &3);
        assert!(results[2].is_err(), "{:?}", results[2]);
        assert_eq!(results[3].as_ref().unwrap(), &4);
        assert_eq!(stored(&reader), [1, 2, 3, 4]);
    }

    /// A write that takes the whole transaction down with it (as SQLite does itself on a full
    /// disk) takes the batch's earlier writes too: they are answered with an error, never
    /// acknowledged, and not stored; the writes after it commit in a transaction of their own.
    #[tokio::test]
    async fn a_write_that_loses_the_transaction_loses_the_writes_before_it() {
        let (_dir, writer, reader) = writer();
        let release = hold(&writer).await;
        let before = writer.queue(insert(1)).unwrap();
        let losing = writer.queue(losing_the_transaction).unwrap();
        let after = writer.queue(insert(2)).unwrap();
        release.send(()).unwrap();
        let before = before.await.unwrap().unwrap_err();
        assert!(before.is_unavailable(), "{before}");
        assert!(losing.await.unwrap().is_err());
        assert_eq!(after.await.unwrap().unwrap(), 2);
        assert_eq!(stored(&reader), [2]);
    }

    /// In a transaction that is lost, a refusal that may have come from the batch's earlier
    /// writes (a duplicate of a record written just before) no longer holds: it is answered
    /// as the writes are (503, try again); one made before any write keeps its own error.
    #[tokio::test]
    async fn a_refusal_caused_by_a_lost_write_is_not_kept() {
        let (_dir, writer, reader) = writer();
        writer.write(insert(5)).await.unwrap();
        let release = hold(&writer).await;
        let genuine = writer.queue(insert(5)).unwrap();
        let first = writer.queue(insert(1)).unwrap();
        let duplicate = writer.queue(insert(1)).unwrap();
        let losing = writer.queue(losing_the_transaction).unwrap();
        release.send(()).unwrap();
        let genuine = genuine.await.unwrap().unwrap_err();
        assert!(!genuine.is_unavailable(), "{genuine}");
        let first = first.await.unwrap().unwrap_err();
        assert!(first.is_unavailable(), "{first}");
        let duplicate = duplicate.await.unwrap().unwrap_err();
        assert!(duplicate.is_unavailable(), "{duplicate}");
        assert!(losing.await.unwrap().is_err());
        assert_eq!(stored(&reader), [5]);
    }

    /// A write that panics is refused; the writer goes on.
    #[tokio::test]
    async fn a_panicking_write_is_refused_and_the_writer_goes_on() {
        let (_dir, writer, reader) = writer();
        let panicked = writer
            .write(|_| -> Result<(), StoreError> { panic!("a bug in a write") })
            .await;
        assert!(panicked.is_err());
        writer.write(insert(7)).await.unwrap();
        assert_eq!(stored(&reader), [7]);
    }
}
