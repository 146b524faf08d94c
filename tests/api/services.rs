//! Real services for tests, started here on free ports in temp dirs and
//! stopped on drop: Debian's `postgresql` (initdb + postgres) and
//! `redis-server`. Missing binaries skip the test with a message, unless
//! `COPILOT_REQUIRE_SERVICES=1` (CI sets it), which fails it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn required() -> bool {
    std::env::var("COPILOT_REQUIRE_SERVICES").as_deref() == Ok("1")
}

fn skip(test: &str, why: &str) {
    assert!(
        !required(),
        "{test}: {why} (required because COPILOT_REQUIRE_SERVICES=1)"
    );
    eprintln!("skipping {test}: {why}");
}

/// A port that was free a moment ago (the services cannot pick their own
/// and report it). The small race is retried by the callers' start loops.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, deadline: Duration, mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !ready() {
        assert!(
            Instant::now() < until,
            "{what} did not start in {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program` run as the `postgres` user when we are root (initdb and
/// postgres refuse root), else as ourselves.
fn as_owner(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A Postgres cluster of its own: `initdb` in a temp dir, trust auth, TCP on
/// 127.0.0.1 only. Runs as the `postgres` user when we are root (initdb
/// refuses root).
pub struct Postgres {
    child: Child,
    /// Holds the data folder and the Unix socket.
    dir: tempfile::TempDir,
    bin: PathBuf,
    data: PathBuf,
    root: bool,
    pub port: u16,
}

impl Postgres {
    fn bin_dir() -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").is_file())
            .collect();
        found.sort();
        found.pop()
    }

    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = Self::bin_dir() else {
            skip(
                test,
                "no Postgres in /usr/lib/postgresql (apt install postgresql)",
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let root = is_root();
        if root {
            let chown = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success(), "chown the temp dir to postgres");
        }
        let initdb = as_owner(root, &bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(initdb.success(), "initdb");
        let port = free_port();
        let child = Self::spawn(&bin, &data, dir.path(), port, root);
        let pg = Self {
            child,
            dir,
            bin,
            data,
            root,
            port,
        };
        pg.wait();
        Some(pg)
    }

    fn spawn(bin: &Path, data: &Path, socket_dir: &Path, port: u16, root: bool) -> Child {
        as_owner(root, &bin.join("postgres"))
            .arg("-D")
            .arg(data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-k")
            .arg(socket_dir)
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn wait(&self) {
        let (bin, port) = (&self.bin, self.port);
        wait_for("postgres", Duration::from_secs(30), || {
            port_open(port)
                && Command::new(bin.join("pg_isready"))
                    .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        });
    }

    /// Starts it again after `stop`, on the same port and data.
    pub fn resume(&mut self) {
        self.child = Self::spawn(&self.bin, &self.data, self.dir.path(), self.port, self.root);
        self.wait();
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (as an outage would), keeping its data.
    pub fn stop(&mut self) {
        // pg_ctl, not a signal to our child: as root the child is `runuser`,
        // which does not pass SIGINT on. "fast" ends open connections now.
        let stopped = as_owner(self.root, &self.bin.join("pg_ctl"))
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(stopped.success(), "pg_ctl stop");
        let _ = self.child.wait();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` of its own: a free port on 127.0.0.1, a temp dir, no
/// persistence unless asked (`start_persistent` keeps an append-only file, so
/// a restart finds its data).
pub struct Redis {
    child: Child,
    dir: tempfile::TempDir,
    persistent: bool,
    pub port: u16,
}

impl Redis {
    const BIN: &str = "/usr/bin/redis-server";

    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, false)
    }

    pub fn start_persistent(test: &str) -> Option<Self> {
        Self::start_with(test, true)
    }

    fn start_with(test: &str, persistent: bool) -> Option<Self> {
        if !Path::new(Self::BIN).is_file() {
            skip(test, "no redis-server (apt install redis-server)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Self::spawn(dir.path(), port, persistent);
        let redis = Self {
            child,
            dir,
            persistent,
            port,
        };
        redis.wait();
        Some(redis)
    }

    fn spawn(dir: &Path, port: u16, persistent: bool) -> Child {
        Command::new(Self::BIN)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", if persistent { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(dir)
            .args(["--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn wait(&self) {
        let port = self.port;
        wait_for("redis-server", Duration::from_secs(10), || {
            use std::io::{Read, Write};
            let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let mut reply = [0u8; 7];
            c.write_all(b"PING\r\n").is_ok()
                && c.read_exact(&mut reply).is_ok()
                && &reply == b"+PONG\r\n"
        });
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it (an outage).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again after `stop`, on the same port (and data, if persistent).
    pub fn resume(&mut self) {
        self.child = Self::spawn(self.dir.path(), self.port, self.persistent);
        self.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
