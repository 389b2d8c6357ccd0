//! A throwaway PostgreSQL server: `initdb` in a temp dir, `pg_ctl start` on a free loopback port
//! with its socket in that dir, stopped (immediately) on drop.
//!
//! Needs `TRIPLINE_PG_BIN` (the directory holding `initdb`, `pg_ctl`, `psql`; scripts/test sets
//! it). `initdb` refuses to run as root, so as root the cluster is created and run as the
//! `postgres` user (or `nobody`), which owns the temp dir.

use std::path::PathBuf;
use std::process::Command;

/// The runbook 003 queue table. The runbook shows its queries, not its DDL: the columns are the
/// ones those queries and its maintenance statements use.
pub const PROCESSING_QUEUE_DDL: &str = "
CREATE TABLE processing_queue (
    id               BIGSERIAL PRIMARY KEY,
    flow_name        VARCHAR(100) NOT NULL,
    flow_instance_id VARCHAR(100),
    payload          JSONB NOT NULL DEFAULT '{}'::jsonb,
    status           VARCHAR(20) NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    claimed_at       TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    error_message    TEXT,
    retry_count      INTEGER NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_processing_queue_status ON processing_queue (status, claimed_at);
";

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    pub port: u16,
    running: bool,
}

/// The binary directory from `TRIPLINE_PG_BIN`, or `None` (with a note) when it is not set and
/// real parts are not required.
fn pg_bin() -> Option<PathBuf> {
    super::real_part("TRIPLINE_PG_BIN", "PostgreSQL", |p| {
        p.join("initdb").exists() && p.join("pg_ctl").exists()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn uid_gid(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let o = Command::new("id").args([flag, user]).output().ok()?;
        if !o.status.success() {
            return None;
        }
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

impl Postgres {
    /// Starts a server with an empty `tripline` database, or `None` if PostgreSQL is not
    /// available and not required.
    pub fn start() -> Option<Postgres> {
        Self::start_with(false)
    }

    /// The same with TLS on: a test CA (`ca_file()`) signs a server certificate for 127.0.0.1.
    pub fn start_tls() -> Option<Postgres> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Postgres> {
        let bin = pg_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("tripline-pg-")
            .tempdir()
            .expect("temp dir");
        let mut owner = None;
        let run_as = if is_root() {
            let user = ["postgres", "nobody"]
                .into_iter()
                .find(|u| uid_gid(u).is_some())
                .expect("running as root: need a `postgres` or `nobody` user for initdb");
            let (uid, gid) = uid_gid(user).unwrap();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
            owner = Some((uid, gid));
            Some(user.to_string())
        } else {
            None
        };
        let mut tls_opts = String::new();
        if tls {
            make_certs(dir.path(), owner);
            tls_opts = format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                dir.path().display()
            );
        }
        let mut pg = Postgres {
            dir,
            bin,
            run_as,
            port: 0,
            running: false,
        };
        let data = pg.data_dir();
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        // A port can be taken between choosing and binding: try a few.
        for _ in 0..5 {
            pg.port = super::free_port();
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
                 -c full_page_writes=off -c timezone=UTC{}",
                pg.port,
                pg.dir.path().display(),
                tls_opts
            );
            let log = pg.dir.path().join("server.log");
            let ok = pg.try_run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-o",
                    &opts,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            if ok {
                pg.running = true;
                break;
            }
        }
        assert!(
            pg.running,
            "pg_ctl start failed: {}",
            std::fs::read_to_string(pg.dir.path().join("server.log")).unwrap_or_default()
        );
        pg.psql("postgres", "CREATE DATABASE tripline");
        Some(pg)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        let mut c = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        c.args(args).current_dir(self.dir.path());
        c
    }

    fn try_run(&self, tool: &str, args: &[&str]) -> bool {
        let out = self.command(tool, args).output().expect(tool);
        if !out.status.success() {
            eprintln!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.status.success()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        assert!(self.try_run(tool, args), "{tool} {args:?} failed");
    }

    /// Runs SQL with psql over TCP (stopping at the first error), returning its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", db, "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Connection string of the `tripline` database, with a password that trust auth ignores
    /// (so tests can check it never shows up in messages).
    pub fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres password=pg-secret-do-not-print dbname=tripline",
            self.port
        )
    }

    /// The test CA's certificate (servers started with `start_tls`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Creates runbook 003's `processing_queue` table.
    pub fn create_processing_queue(&self) {
        self.psql("tripline", PROCESSING_QUEUE_DDL);
    }

    /// Stops the server now (fault tests); the temp dir stays until drop.
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data_dir();
            self.try_run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            );
            self.running = false;
        }
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, with openssl; the key readable by
/// the server's user only.
fn make_certs(dir: &std::path::Path, owner: Option<(u32, u32)>) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (install it to run the TLS test)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=tripline-test-ca",
        "-days",
        "2",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    use std::os::unix::fs::PermissionsExt;
    for f in ["server.key", "server.crt"] {
        let p = dir.join(f);
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
