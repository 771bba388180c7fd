//! The store several twins share: where a twin keeps what it must agree on with every other
//! screen of a control room. `--store sqlite:PATH` is one twin's own file (the embedded
//! default); `--store postgres://…` is a PostgreSQL server any number of twins, on any number
//! of machines, open at once.
//!
//! - [`StoreUrl`]: the setting, parsed; a password never travels in it (PostgreSQL's own
//!   `PGPASSWORD` gives it), so it can be logged and shown as written.
//! - [`schema`]: the store's tables in schema `tvilling`, its version, and the three roles
//!   the server itself enforces with grants: viewer (a wall or kiosk: reads only), operator
//!   (acknowledges, shelves, notes; records the alarms it raises), engineer (also retention).
//! - [`book`]: the one alarm book. Every change of an alarm, from the twin that records its
//!   source or from an operator at any desk, is made in one transaction on the alarm's row
//!   through the same lifecycle model a single twin runs ([`tvilling_metrics::lifecycle`]),
//!   written to the audit log with the operator and station, and announced on the channel
//!   [`book::CHANNEL`] (LISTEN/NOTIFY) that every screen listens to.

pub mod book;
pub mod schema;
pub mod sync;

use std::fmt;
use std::path::PathBuf;

/// Where the shared state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// One twin's own SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server, as a libpq URL without a password.
    Postgres(String),
}

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {0:?}: expected sqlite:PATH or postgres://USER@HOST:PORT/DATABASE")]
    BadUrl(String),
    #[error(
        "store {0}: a password in the store's address would be kept in shell history, files and logs; give it in the environment variable PGPASSWORD instead"
    )]
    PasswordInUrl(String),
    #[error("store {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("store {url}: {reason}")]
    Schema { url: String, reason: String },
    /// The server refused a write for want of a right (SQLSTATE 42501).
    #[error(
        "store {url}: {who} may not {what}: the store grants it to {needs} (refused by the server)"
    )]
    NotAllowed {
        url: String,
        who: String,
        what: String,
        needs: String,
    },
    #[error("store {url}: {reason}")]
    Query { url: String, reason: String },
}

impl StoreUrl {
    /// Reads `sqlite:PATH` or `postgres://…` (also `postgresql://…`).
    pub fn parse(text: &str) -> Result<StoreUrl, StoreError> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(StoreError::BadUrl(text.into()));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        let Some(rest) = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
        else {
            return Err(StoreError::BadUrl(text.into()));
        };
        // user[:password]@host... : a password is refused, whatever else the URL holds.
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo.contains(':')
        {
            let user = userinfo.split(':').next().unwrap_or("");
            let shown = text.replacen(userinfo, &format!("{user}:***"), 1);
            return Err(StoreError::PasswordInUrl(shown));
        }
        if text.contains("password=") {
            return Err(StoreError::PasswordInUrl(
                text.split('?').next().unwrap_or(text).to_string() + "?…",
            ));
        }
        Ok(StoreUrl::Postgres(text.to_string()))
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            StoreUrl::Postgres(u) => f.write_str(u),
        }
    }
}

/// Opens a connection to a PostgreSQL store: the URL's user, host, port and database, the
/// password from `PGPASSWORD` when it is set. TLS: `sslmode=require` is refused with the
/// reason (this build speaks to the store on a trusted network or loopback only).
pub fn connect(url: &str) -> Result<postgres::Client, StoreError> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| StoreError::BadUrl(format!("{url}: {e}")))?;
    if let Ok(password) = std::env::var("PGPASSWORD") {
        config.password(password);
    }
    if config.get_ssl_mode() == postgres::config::SslMode::Require {
        return Err(StoreError::Unreachable {
            url: url.into(),
            reason: "sslmode=require: this build has no TLS to PostgreSQL yet; reach the store over loopback, a VPN or an SSH tunnel, with sslmode=disable or prefer".into(),
        });
    }
    config.connect_timeout(std::time::Duration::from_secs(3));
    config
        .connect(postgres::NoTls)
        .map_err(|e| StoreError::Unreachable {
            url: url.into(),
            reason: describe(&e),
        })
}

/// A PostgreSQL error in words: the server's own message when there is one.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

/// Whether the server refused for want of a right.
pub fn is_permission_denied(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_a_file_or_a_server_and_never_carries_a_password() {
        assert_eq!(
            StoreUrl::parse("sqlite:/var/lib/tvilling/h.sqlite").expect("file"),
            StoreUrl::Sqlite("/var/lib/tvilling/h.sqlite".into())
        );
        let pg = "postgres://anna@127.0.0.1:5432/city";
        assert_eq!(
            StoreUrl::parse(pg).expect("server"),
            StoreUrl::Postgres(pg.into())
        );
        assert_eq!(StoreUrl::parse(pg).expect("server").to_string(), pg);
        for bad in ["", "sqlite:", "mysql://x", "/tmp/h.sqlite"] {
            assert!(matches!(StoreUrl::parse(bad), Err(StoreError::BadUrl(_))));
        }
        let e = StoreUrl::parse("postgres://anna:hemligt@db/city").expect_err("refused");
        let text = e.to_string();
        assert!(
            text.contains("PGPASSWORD") && !text.contains("hemligt"),
            "{text}"
        );
        let e = StoreUrl::parse("postgresql://db/city?user=anna&password=hemligt")
            .expect_err("refused");
        assert!(!e.to_string().contains("hemligt"), "{e}");
    }
}
