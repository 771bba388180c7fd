//! A real PostgreSQL 15 server for the tests: Debian's `initdb` and `pg_ctl` into a temporary
//! folder, listening on a free loopback port. PostgreSQL refuses to run as root, so as root
//! the server runs as the unprivileged `postgres` user (`runuser`). Local connections are
//! trusted, except the login `secured`, which must give its password (SCRAM).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{free_port, temp_dir};

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PgServer {
    pub dir: PathBuf,
    pub port: u16,
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args…` as the server's user.
fn server_command(program: &str) -> Command {
    let path = format!("{BIN}/{program}");
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgServer {
    /// A fresh server with a database `city` owned by the login `owner`.
    pub fn start(name: &str) -> PgServer {
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "PostgreSQL 15 is missing: scripts/setup-debian.sh installs postgresql-15"
        );
        let dir = temp_dir(&format!("pg-{name}"));
        if as_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(&dir);
                    c
                },
                "chown",
            );
        }
        let data = dir.join("data");
        let mut init = server_command("initdb");
        init.arg("-D")
            .arg(&data)
            .args(["-U", "owner", "--auth=trust", "-E", "UTF8", "--locale=C"]);
        run(init, "initdb");
        let hba = "local all all trust\n\
                   host all secured 127.0.0.1/32 scram-sha-256\n\
                   host all all 127.0.0.1/32 trust\n";
        let hba_path = data.join("pg_hba.conf");
        std::fs::write(&hba_path, hba).expect("pg_hba.conf");
        let server = PgServer {
            dir,
            port: free_port(),
        };
        server.start_again();
        let mut createdb = server_command("createdb");
        createdb.args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "owner",
            "city",
        ]);
        run(createdb, "createdb");
        server
    }

    /// The store's URL for a login.
    pub fn url(&self, user: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/city", self.port)
    }

    /// Starts the server (again), waiting until it takes connections.
    pub fn start_again(&self) {
        let mut c = server_command("pg_ctl");
        c.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
                self.port,
                self.dir.display()
            ))
            .args(["-w", "-t", "30", "start"]);
        run(c, "pg_ctl start");
    }

    /// Stops the server (fast: connections are cut, as when the store goes down).
    pub fn stop(&self) {
        let mut c = server_command("pg_ctl");
        c.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"]);
        run(c, "pg_ctl stop");
    }

    /// SQL as the owner.
    pub fn sql(&self, sql: &str) {
        let mut c = tvilling_twin::shared::connect(&self.url("owner")).expect("owner connects");
        c.batch_execute(sql).expect("sql");
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut c = server_command("pg_ctl");
        c.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = c.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
