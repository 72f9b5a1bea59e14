//! A PostgreSQL server of the test's own, for tests that stop, pause or restart it: `initdb`
//! into a fresh directory, `pg_ctl` on a free loopback port (and a Unix socket in that
//! directory), stopped and removed when dropped. Other tests' databases are never touched.
//!
//! The binaries come from `PATH` or the newest `/usr/lib/postgresql/*/bin`. `initdb` refuses
//! to run as root, so as root every command runs as the `postgres` user (`runuser`). Without
//! the binaries [`Postgres::start`] returns `None` and the test skips itself, unless
//! `CI=true` or `MICROKIT_REQUIRE_SERVICES=1`, when it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::etcd::services_required;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One PostgreSQL cluster and its server; stopped, and its directory removed, on drop.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    /// A running server with trust authentication on loopback, or `None` when PostgreSQL is
    /// not installed and not required.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, |_| {})
    }

    /// Like [`start`](Self::start), with `configure` run on the data directory after
    /// `initdb` and before the server starts (to write certificates, `pg_hba.conf`, or lines
    /// appended to `postgresql.conf`). What it writes is handed to the `postgres` user.
    pub fn start_with(test: &str, configure: impl FnOnce(&Path)) -> Option<Self> {
        let Some(bin) = find_bin() else {
            assert!(
                !services_required(),
                "PostgreSQL's initdb and pg_ctl are not installed, and CI or \
                 MICROKIT_REQUIRE_SERVICES requires them"
            );
            eprintln!("SKIPPED: {test}: PostgreSQL's initdb and pg_ctl are not installed");
            return None;
        };
        let dir = std::env::temp_dir().join(format!(
            "microkit-pg-{test}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            check(
                Command::new("chown")
                    .args(["postgres:postgres", path(&dir)])
                    .output(),
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = path(&server.dir).to_owned();
        check(server.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        ));
        configure(&server.dir);
        if as_postgres {
            check(
                Command::new("chown")
                    .args(["-R", "postgres:postgres", &data])
                    .output(),
            );
        }
        server.spawn();
        Some(server)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The data directory, which also holds the server's Unix socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's TCP port on 127.0.0.1 (and its Unix socket's number).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn spawn(&self) {
        let data = path(&self.dir).to_owned();
        let log = format!("{data}/server.log");
        // No fsync: the tests need no durability across a power cut, only speed.
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off",
            self.port
        );
        check(self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start",
            ],
        ));
    }

    /// Stops the server (fast shutdown: sessions are ended, connections closed).
    pub fn stop(&self) {
        let data = path(&self.dir).to_owned();
        check(self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]));
    }

    /// Freezes every process of the server (SIGSTOP): connections stay open and silent, as
    /// with a hung host.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaws what [`pause`](Self::pause) froze (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let pids = self.pids();
        assert!(!pids.is_empty(), "the server is not running");
        check(
            Command::new("kill")
                .arg(format!("-{signal}"))
                .args(&pids)
                .output(),
        );
    }

    /// The postmaster (from `postmaster.pid`) and its children (from `/proc`).
    fn pids(&self) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(self.dir.join("postmaster.pid")) else {
            return Vec::new();
        };
        let postmaster = text.lines().next().unwrap_or_default().trim().to_owned();
        let mut pids = vec![postmaster.clone()];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after its `)`.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if parent == Some(postmaster.as_str()) {
                pids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        pids
    }

    fn run(&self, program: &str, args: &[&str]) -> std::io::Result<Output> {
        let program = self.bin.join(program);
        if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args)
                .output()
        } else {
            Command::new(program).args(args).output()
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.resume_quietly();
        let data = path(&self.dir).to_owned();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Postgres {
    fn resume_quietly(&self) {
        let pids = self.pids();
        if !pids.is_empty() {
            let _ = Command::new("kill").arg("-CONT").args(&pids).output();
        }
    }
}

/// The directory holding `initdb` and `pg_ctl`: on `PATH`, or Debian's newest version.
fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|dir| dir.join("initdb").is_file()));
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn check(result: std::io::Result<Output>) {
    let out = result.expect("a PostgreSQL command starts");
    assert!(
        out.status.success(),
        "a PostgreSQL command failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}
