//! The shared store's schema (`tvilling` in the store's database), its version, and its roles.
//!
//! `tvilling store init --store URL`, run once by the database's owner, creates the tables and
//! three group roles; a login is given one of them (`tvilling store user NAME --role R`, or
//! the DBA's own `GRANT tvilling_operator TO anna`). The server enforces them: a viewer's
//! write is refused by PostgreSQL itself, whatever program sends it.
//!
//! | role | may |
//! |---|---|
//! | `tvilling_viewer` | read everything (a video wall, a kiosk) |
//! | `tvilling_operator` | also acknowledge, shelve, unshelve and note alarms, and record the alarms its twin raises and clears and the history of its sources |
//! | `tvilling_engineer` | also cut the audit log and the history by retention |

use postgres::Client;

use super::{StoreError, describe};

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: i32 = 1;

/// The store's roles, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Operator,
    Engineer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Engineer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Engineer => "engineer",
        }
    }

    /// The group role in the server.
    pub fn group(self) -> &'static str {
        match self {
            Role::Viewer => "tvilling_viewer",
            Role::Operator => "tvilling_operator",
            Role::Engineer => "tvilling_engineer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text.trim())
    }
}

const TABLES: &str = "
CREATE SCHEMA IF NOT EXISTS tvilling;
CREATE TABLE IF NOT EXISTS tvilling.meta(key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS tvilling.alarms(
    key text PRIMARY KEY,
    device text NOT NULL,
    severity text NOT NULL,
    priority text NOT NULL,
    text text NOT NULL,
    state text NOT NULL,
    raised_ms bigint NOT NULL,
    ack_ms bigint,
    ack_operator text,
    ack_station text,
    cleared_ms bigint,
    shelf_reason text,
    shelf_until_ms bigint,
    shelf_active boolean,
    chattering boolean NOT NULL DEFAULT false,
    changed_ms bigint NOT NULL);
CREATE INDEX IF NOT EXISTS alarms_open ON tvilling.alarms(device) WHERE state <> 'normal';
CREATE TABLE IF NOT EXISTS tvilling.alarm_audit(
    id bigserial PRIMARY KEY,
    t bigint NOT NULL,
    action text NOT NULL,
    key text NOT NULL,
    device text NOT NULL,
    priority text NOT NULL,
    from_state text,
    to_state text,
    operator text,
    station text,
    note text NOT NULL,
    until_ms bigint,
    logged timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS alarm_audit_key ON tvilling.alarm_audit(key, id);
CREATE TABLE IF NOT EXISTS tvilling.history_devices(
    id integer PRIMARY KEY, device text UNIQUE NOT NULL, kind text NOT NULL);
CREATE TABLE IF NOT EXISTS tvilling.history_sources(
    id integer PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS tvilling.blocks(
    id bigint PRIMARY KEY,
    seg bigint NOT NULL,
    block bigint NOT NULL,
    k bigint NOT NULL,
    n bigint NOT NULL,
    t_first bigint,
    t_last bigint,
    data bytea NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_block ON tvilling.blocks(block, seg);
CREATE TABLE IF NOT EXISTS tvilling.segments(seg bigint PRIMARY KEY, carried bigint NOT NULL);
CREATE TABLE IF NOT EXISTS tvilling.history_alarms(
    id bigserial PRIMARY KEY,
    t bigint NOT NULL,
    device text NOT NULL,
    severity text NOT NULL,
    text text NOT NULL,
    raised boolean NOT NULL);
CREATE TABLE IF NOT EXISTS tvilling.metrics(t bigint PRIMARY KEY, json text NOT NULL);
CREATE TABLE IF NOT EXISTS tvilling.traffic(t bigint PRIMARY KEY, json text NOT NULL);
";

/// Creates (or completes) the schema and its roles; run by the database's owner. Idempotent.
pub fn install(client: &mut Client, url: &str) -> Result<(), StoreError> {
    let err = |e: postgres::Error| StoreError::Schema {
        url: url.into(),
        reason: describe(&e),
    };
    if let Some(v) = version(client, url)?
        && v > SCHEMA_VERSION
    {
        return Err(newer(url, v));
    }
    let mut tx = client.transaction().map_err(err)?;
    tx.batch_execute(TABLES).map_err(err)?;
    // Group roles (no login), each with the one below it.
    for role in Role::ALL {
        let exists = tx
            .query_opt(
                "SELECT 1 FROM pg_roles WHERE rolname = $1",
                &[&role.group()],
            )
            .map_err(err)?
            .is_some();
        if !exists {
            tx.batch_execute(&format!("CREATE ROLE {} NOLOGIN", role.group()))
                .map_err(err)?;
        }
    }
    let grants = "
GRANT tvilling_viewer TO tvilling_operator;
GRANT tvilling_operator TO tvilling_engineer;
GRANT USAGE ON SCHEMA tvilling TO tvilling_viewer;
GRANT SELECT ON ALL TABLES IN SCHEMA tvilling TO tvilling_viewer;
GRANT INSERT, UPDATE ON tvilling.alarms TO tvilling_operator;
GRANT INSERT ON tvilling.alarm_audit TO tvilling_operator;
GRANT USAGE ON SEQUENCE tvilling.alarm_audit_id_seq TO tvilling_operator;
GRANT INSERT, UPDATE ON tvilling.history_devices, tvilling.history_sources, tvilling.blocks,
    tvilling.segments, tvilling.history_alarms, tvilling.metrics, tvilling.traffic
    TO tvilling_operator;
GRANT USAGE ON SEQUENCE tvilling.history_alarms_id_seq TO tvilling_operator;
-- The recorder rewrites an hour's blocks whole when it closes.
GRANT DELETE ON tvilling.blocks TO tvilling_operator;
GRANT DELETE ON tvilling.alarm_audit, tvilling.segments, tvilling.history_alarms,
    tvilling.metrics, tvilling.traffic TO tvilling_engineer;
";
    tx.batch_execute(grants).map_err(err)?;
    tx.execute(
        "INSERT INTO tvilling.meta(key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&SCHEMA_VERSION.to_string()],
    )
    .map_err(err)?;
    tx.commit().map_err(err)
}

/// Gives login `name` a role (creating the login, without a password, when it does not exist:
/// the DBA sets one, or the server trusts its local connections). Run by the owner.
pub fn add_user(client: &mut Client, url: &str, name: &str, role: Role) -> Result<(), StoreError> {
    let err = |e: postgres::Error| StoreError::Query {
        url: url.into(),
        reason: describe(&e),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(StoreError::Query {
            url: url.into(),
            reason: format!("login {name:?}: letters, digits, _ and - only"),
        });
    }
    let mut tx = client.transaction().map_err(err)?;
    let exists = tx
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
        .map_err(err)?
        .is_some();
    if !exists {
        tx.batch_execute(&format!("CREATE ROLE \"{name}\" LOGIN"))
            .map_err(err)?;
    }
    for r in Role::ALL {
        tx.batch_execute(&format!("REVOKE {} FROM \"{name}\"", r.group()))
            .map_err(err)?;
    }
    tx.batch_execute(&format!("GRANT {} TO \"{name}\"", role.group()))
        .map_err(err)?;
    tx.commit().map_err(err)
}

/// The store's schema version, `None` where it has no Tvilling schema.
pub fn version(client: &mut Client, url: &str) -> Result<Option<i32>, StoreError> {
    let err = |e: postgres::Error| StoreError::Schema {
        url: url.into(),
        reason: describe(&e),
    };
    let has = client
        .query_one("SELECT to_regclass('tvilling.meta') IS NOT NULL", &[])
        .map_err(err)?
        .get::<_, bool>(0);
    if !has {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT value FROM tvilling.meta WHERE key = 'schema_version'",
            &[],
        )
        .map_err(err)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let text: String = row.get(0);
    text.parse().map(Some).map_err(|_| StoreError::Schema {
        url: url.into(),
        reason: format!("schema version {text:?} is not a number"),
    })
}

fn newer(url: &str, v: i32) -> StoreError {
    StoreError::Schema {
        url: url.into(),
        reason: format!(
            "the store's schema is version {v}, newer than this twin's {SCHEMA_VERSION}: run a newer tvilling against it (nothing was written)"
        ),
    }
}

/// Refuses a store whose schema this build does not speak, saying what to do.
pub fn check(client: &mut Client, url: &str) -> Result<(), StoreError> {
    match version(client, url)? {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(v) if v > SCHEMA_VERSION => Err(newer(url, v)),
        Some(v) => Err(StoreError::Schema {
            url: url.into(),
            reason: format!(
                "the store's schema is version {v}, older than this twin's {SCHEMA_VERSION}: upgrade it with `tvilling store init --store {url}` as its owner"
            ),
        }),
        None => Err(StoreError::Schema {
            url: url.into(),
            reason: format!(
                "no Tvilling schema in this database: create it with `tvilling store init --store {url}` as its owner"
            ),
        }),
    }
}

/// The highest of the store's roles the connected login holds (`None`: none of them).
pub fn role_of(client: &mut Client, url: &str) -> Result<Option<Role>, StoreError> {
    let mut best = None;
    for r in Role::ALL {
        let has: bool = client
            .query_one(
                "SELECT pg_has_role(current_user, $1, 'MEMBER')",
                &[&r.group()],
            )
            .map_err(|e| StoreError::Query {
                url: url.into(),
                reason: describe(&e),
            })?
            .get(0);
        if has {
            best = Some(r);
        }
    }
    Ok(best)
}
