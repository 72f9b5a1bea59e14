//! A SQLite store whose disk fills up or turns read-only: every write it cannot make is
//! answered 503 problem+json, nothing is acknowledged that was not written, and the same
//! process serves writes again once the disk is back.
//!
//! The full disk is a small ext4 image loop-mounted for the test, the read-only disk files made
//! immutable with `chattr +i`: both hold for root, which ignores permission bits. Where the
//! test may not mount or `chattr` (not root, a file system without the flag), it skips with
//! a message.

use microkit_test_support as support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use microkit::http::{header, Method, Request, StatusCode};
use microkit::resource::store::sqlite::SqliteStore;
use microkit::resource::ResourceRoutes;
use microkit::{Resource, Router, ServerConfig};
use serde::{Deserialize, Serialize};
use support::{send, spawn, Reply};

/// A note, the record every write here creates.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/note", list_path = "/notes/")]
struct Note {
    #[resource(id)]
    id: u64,
    text: String,
}

fn notes(store: SqliteStore) -> Router {
    ResourceRoutes::<Note>::new(Arc::new(store)).router()
}

async fn post_note(addr: std::net::SocketAddr, text: &str) -> Reply {
    let body = serde_json::json!({ "text": text }).to_string();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/note/")
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from(body)))
        .unwrap();
    send(addr, request).await
}

fn assert_unavailable(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert_eq!(reply.json()["status"], 503);
}

fn created_id(reply: &Reply) -> u64 {
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.json()["id"].as_u64().expect("a numeric id")
}

/// Runs `program` with `args`; `Err` with its output when it fails or cannot start.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

/// A small ext4 file system in an image file, loop-mounted on a fresh directory and
/// unmounted on drop. (Not tmpfs: a full tmpfs kills a process that touches a page of a
/// shared mapping, SQLite's `-shm` index, with SIGBUS, which a real disk does not.)
struct SmallDisk {
    dir: PathBuf,
    _image: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size_kib: u64) -> Result<Self, String> {
        let image = tempfile::tempdir().unwrap();
        let file = image.path().join("disk.ext4");
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(size_kib * 1024))
            .map_err(|err| err.to_string())?;
        run("mkfs.ext4", &["-q", "-F", path(&file)])?;
        let dir = image.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        run("mount", &["-o", "loop", path(&file), path(&dir)])?;
        Ok(Self { dir, _image: image })
    }

    /// Writes a file until the disk refuses more; returns its path.
    fn fill(&self) -> PathBuf {
        let filler = self.dir.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while file
            .write_all(&chunk)
            .and_then(|()| file.sync_all())
            .is_ok()
        {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = run("umount", &[path(&self.dir)]);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_acknowledges_only_what_was_written() {
    let disk = match SmallDisk::mount(2048) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!(
                "SKIPPED: full-disk test: cannot loop-mount a small ext4 ({why}); run as root"
            );
            return;
        }
    };
    let db = disk.dir.join("notes.db");
    let server = spawn(
        notes(SqliteStore::open(&db).unwrap()),
        ServerConfig::default(),
    )
    .await;
    let first = created_id(&post_note(server.addr, "before the disk filled").await);

    let filler = disk.fill();
    // SQLite may still fit a few writes into pages it already holds; each must be real.
    let mut acknowledged = vec![first];
    let mut refused = None;
    for n in 0..500 {
        let reply = post_note(server.addr, &format!("{n} {}", "x".repeat(2000))).await;
        if reply.status == StatusCode::CREATED {
            acknowledged.push(created_id(&reply));
        } else {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("a full disk refused no write");
    assert_unavailable(&refused);
    // Refused again, and still not a 500, on the next try.
    assert_unavailable(&post_note(server.addr, &"y".repeat(2000)).await);

    // Space again: the same process writes without a restart.
    std::fs::remove_file(filler).unwrap();
    let next = created_id(&post_note(server.addr, "after").await);
    // Integer ids come from AUTOINCREMENT: a refused write that had left a row behind would
    // have taken an id.
    assert_eq!(next, acknowledged.last().unwrap() + 1, "{acknowledged:?}");
    drop(server);

    // Every acknowledged write is on disk: a new store on the file reads each back.
    let reopened = spawn(
        notes(SqliteStore::open(&db).unwrap()),
        ServerConfig::default(),
    )
    .await;
    for id in acknowledged.iter().chain([&next]) {
        let reply = support::get(reopened.addr, &format!("/note/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "note {id}: {reply:?}");
    }
}

/// `chattr` on the data directory's files and on the directory, undone on drop.
struct Immutable {
    paths: Vec<PathBuf>,
}

impl Immutable {
    fn set(paths: Vec<PathBuf>) -> Result<Self, String> {
        let guard = Self { paths: Vec::new() };
        let mut guard = guard;
        for p in paths {
            run("chattr", &["+i", path(&p)])?;
            guard.paths.push(p);
        }
        Ok(guard)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = run("chattr", &["-i", path(p)]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_answers_503_until_it_is_writable_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    let server = spawn(
        notes(SqliteStore::open(&db).unwrap()),
        ServerConfig::default(),
    )
    .await;
    let first = created_id(&post_note(server.addr, "writable").await);

    // The database, its WAL and the directory; not the `-shm` index, which SQLite maps into
    // memory: a page fault on an immutable mapping is SIGBUS, not an error it could report.
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with("-shm"))
        .collect();
    files.push(dir.path().to_path_buf());
    let read_only = match Immutable::set(files) {
        Ok(guard) => guard,
        Err(why) => {
            eprintln!("SKIPPED: read-only test: cannot chattr +i ({why}); run as root");
            return;
        }
    };
    for _ in 0..3 {
        assert_unavailable(&post_note(server.addr, "refused").await);
    }
    // Reads need no write: what is stored stays readable (or, if SQLite needs to write to
    // read, is a 503, never a 500).
    let read = support::get(server.addr, &format!("/note/{first}")).await;
    assert!(
        matches!(
            read.status,
            StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE
        ),
        "{read:?}"
    );

    drop(read_only);
    let next = created_id(&post_note(server.addr, "writable again").await);
    assert_eq!(next, first + 1, "a refused write left a row behind");
    let reply = support::get(server.addr, &format!("/note/{next}")).await;
    assert_eq!(reply.status, StatusCode::OK);
}
