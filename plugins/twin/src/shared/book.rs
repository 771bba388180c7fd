//! The one alarm book in a PostgreSQL store.
//!
//! One row an alarm (`tvilling.alarms`, its key the twin's `device#severity`), one row a change
//! (`tvilling.alarm_audit`, with the operator and the station). Every change takes the row's
//! lock (`SELECT … FOR UPDATE`), rebuilds that alarm as the lifecycle model holds it, applies
//! the change through the model's own method ([`AlarmBook::acknowledge`], `shelve`, `raise`,
//! …), writes the row and its audit, and announces the key on [`CHANNEL`], all in one
//! transaction: two operators acknowledging one alarm at once leave one acknowledgement (the
//! second is told who was first, and its attempt is in the audit too), never a doubled or a
//! lost state. An alarm back to normal keeps its row with state `normal`.

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Row, Transaction};
use tvilling_metrics::alarms::Severity;
use tvilling_metrics::lifecycle::{
    Action, ActionError, AlarmBook, AlarmState, ManagedAlarm, Priority, Transition,
};

use super::{StoreError, describe};

/// The LISTEN/NOTIFY channel every screen listens to: the payload is the changed alarm's key.
pub const CHANNEL: &str = "tvilling_alarms";

/// Who acts, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub operator: String,
    pub station: String,
}

/// An alarm as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlarm {
    pub alarm: ManagedAlarm,
    /// The station it was acknowledged at.
    pub ack_station: Option<String>,
    pub changed_ms: i64,
    /// Its newest note (operator, station, text).
    pub last_note: Option<(String, String, String)>,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub at_ms: i64,
    /// An [`Action`]'s name, `note`, or `refused` (an operator's action the book turned down).
    pub action: String,
    pub key: String,
    pub device: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub operator: Option<String>,
    pub station: Option<String>,
    pub note: String,
}

/// What an operator asks of an alarm.
#[derive(Debug, Clone, PartialEq)]
pub enum OperatorAction {
    Acknowledge,
    Shelve { reason: String, until_ms: i64 },
    Unshelve,
    Note(String),
}

impl OperatorAction {
    fn what(&self) -> &'static str {
        match self {
            OperatorAction::Acknowledge => "acknowledge alarms",
            OperatorAction::Shelve { .. } => "shelve alarms",
            OperatorAction::Unshelve => "unshelve alarms",
            OperatorAction::Note(_) => "note on alarms",
        }
    }
}

/// Why an operator's action did not change the book.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// The lifecycle turned it down (already acknowledged, not shelved, …), with who was first.
    #[error("{reason}")]
    Refused { reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: &str = "key, device, severity, priority, text, state, raised_ms, ack_ms, \
    ack_operator, ack_station, cleared_ms, shelf_reason, shelf_until_ms, shelf_active, \
    chattering, changed_ms";

fn query_err(url: &str) -> impl Fn(postgres::Error) -> StoreError + '_ {
    move |e| StoreError::Query {
        url: url.into(),
        reason: describe(&e),
    }
}

/// A row as the lifecycle model's alarm; `None` for a row back to normal or one the model
/// cannot read (its reason).
fn from_row(row: &Row) -> Result<Option<StoredAlarm>, String> {
    let key: String = row.get(0);
    let state: String = row.get(5);
    if state == "normal" {
        return Ok(None);
    }
    let severity: String = row.get(2);
    let severity =
        Severity::parse(&severity).ok_or_else(|| format!("{key}: severity {severity:?}"))?;
    let priority: String = row.get(3);
    let priority =
        Priority::parse(&priority).ok_or_else(|| format!("{key}: priority {priority:?}"))?;
    let state = match state.as_str() {
        "active unacknowledged" => AlarmState::ActiveUnacknowledged,
        "active acknowledged" => AlarmState::ActiveAcknowledged,
        "cleared unacknowledged" => AlarmState::ClearedUnacknowledged,
        "shelved" => AlarmState::Shelved {
            reason: row.get::<_, Option<String>>(11).unwrap_or_default(),
            until_ms: row.get::<_, Option<i64>>(12).unwrap_or(i64::MAX),
            active: row.get::<_, Option<bool>>(13).unwrap_or(true),
        },
        other => return Err(format!("{key}: state {other:?}")),
    };
    let ack_ms: Option<i64> = row.get(7);
    let ack_operator: Option<String> = row.get(8);
    Ok(Some(StoredAlarm {
        alarm: ManagedAlarm {
            key,
            device: row.get(1),
            severity,
            priority,
            text: row.get(4),
            state,
            raised_ms: row.get(6),
            acknowledged: ack_ms.zip(ack_operator),
            cleared_ms: row.get(10),
            chattering: row.get(14),
        },
        ack_station: row.get(9),
        changed_ms: row.get(15),
        last_note: None,
    }))
}

/// Writes an alarm's row as `after` holds it (`None`: back to normal).
fn write_row(
    tx: &mut Transaction<'_>,
    url: &str,
    key: &str,
    after: Option<&ManagedAlarm>,
    ack_station: Option<&str>,
    at_ms: i64,
) -> Result<(), StoreError> {
    let err = query_err(url);
    let Some(a) = after else {
        tx.execute(
            "UPDATE tvilling.alarms SET state = 'normal', changed_ms = $2 WHERE key = $1",
            &[&key, &at_ms],
        )
        .map_err(err)?;
        return Ok(());
    };
    let (reason, until, active) = match &a.state {
        AlarmState::Shelved {
            reason,
            until_ms,
            active,
        } => (Some(reason.as_str()), Some(*until_ms), Some(*active)),
        _ => (None, None, None),
    };
    let (ack_ms, ack_operator) = match &a.acknowledged {
        Some((t, o)) => (Some(*t), Some(o.as_str())),
        None => (None, None),
    };
    let ack_station = ack_operator.and(ack_station);
    tx.execute(
        &format!(
            "INSERT INTO tvilling.alarms({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (key) DO UPDATE SET device = excluded.device,
                 severity = excluded.severity, priority = excluded.priority,
                 text = excluded.text, state = excluded.state, raised_ms = excluded.raised_ms,
                 ack_ms = excluded.ack_ms, ack_operator = excluded.ack_operator,
                 ack_station = excluded.ack_station, cleared_ms = excluded.cleared_ms,
                 shelf_reason = excluded.shelf_reason, shelf_until_ms = excluded.shelf_until_ms,
                 shelf_active = excluded.shelf_active, chattering = excluded.chattering,
                 changed_ms = excluded.changed_ms"
        ),
        &[
            &a.key,
            &a.device,
            &a.severity.as_str(),
            &a.priority.as_str(),
            &a.text,
            &a.state.as_str(),
            &a.raised_ms,
            &ack_ms,
            &ack_operator,
            &ack_station,
            &a.cleared_ms,
            &reason,
            &until,
            &active,
            &a.chattering,
            &at_ms,
        ],
    )
    .map_err(err)?;
    Ok(())
}

fn audit(
    tx: &mut Transaction<'_>,
    url: &str,
    t: &Transition,
    action: &str,
    station: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO tvilling.alarm_audit(t, action, key, device, priority, from_state,
             to_state, operator, station, note, until_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &t.at_ms,
            &action,
            &t.key,
            &t.device,
            &t.priority.as_str(),
            &t.from,
            &t.to,
            &t.operator,
            &station,
            &t.note,
            &t.until_ms,
        ],
    )
    .map_err(query_err(url))?;
    Ok(())
}

fn notify(tx: &mut Transaction<'_>, url: &str, key: &str) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &key])
        .map_err(query_err(url))?;
    Ok(())
}

/// The alarm of `key` under its row's lock, as a one-alarm book.
fn locked(
    tx: &mut Transaction<'_>,
    url: &str,
    key: &str,
) -> Result<(AlarmBook, Option<StoredAlarm>), StoreError> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM tvilling.alarms WHERE key = $1 FOR UPDATE"),
            &[&key],
        )
        .map_err(query_err(url))?;
    let stored = match row {
        Some(r) => from_row(&r).map_err(|reason| StoreError::Query {
            url: url.into(),
            reason: format!("unreadable alarm row {reason}"),
        })?,
        None => None,
    };
    let mut book = AlarmBook::default();
    if let Some(s) = &stored {
        book.alarms.insert(key.to_string(), s.alarm.clone());
    }
    Ok((book, stored))
}

/// Maps a failed write: a want of a right said as such (who, what, which role has it).
fn write_err(url: &str, who: &str, what: &str, needs: &str) -> impl Fn(StoreError) -> StoreError {
    let (url, who, what, needs) = (
        url.to_string(),
        who.to_string(),
        what.to_string(),
        needs.to_string(),
    );
    move |e| match e {
        StoreError::Query { reason, .. } if reason.starts_with("permission denied") => {
            StoreError::NotAllowed {
                url: url.clone(),
                who: who.clone(),
                what: what.clone(),
                needs: needs.clone(),
            }
        }
        other => other,
    }
}

fn begin<'a>(client: &'a mut Client, url: &str) -> Result<Transaction<'a>, StoreError> {
    client.transaction().map_err(query_err(url))
}

/// The connected login's name.
pub fn current_user(client: &mut Client, url: &str) -> Result<String, StoreError> {
    Ok(client
        .query_one("SELECT current_user::text", &[])
        .map_err(query_err(url))?
        .get(0))
}

/// An operator's action on the alarm of `key` at `at_ms`, made in the store: the alarm as it
/// stands after it, or why the book turned it down (that attempt is in the audit too).
pub fn act(
    client: &mut Client,
    url: &str,
    key: &str,
    at_ms: i64,
    action: &OperatorAction,
    by: &Actor,
) -> Result<Option<StoredAlarm>, BookError> {
    let login = current_user(client, url)?;
    let denied = write_err(url, &login, action.what(), "tvilling_operator");
    let mut tx = begin(client, url)?;
    let (mut book, before) = locked(&mut tx, url, key).map_err(&denied)?;
    let outcome = match action {
        OperatorAction::Acknowledge => book.acknowledge(at_ms, key, &by.operator),
        OperatorAction::Shelve { reason, until_ms } => {
            book.shelve(at_ms, key, reason, *until_ms, &by.operator)
        }
        OperatorAction::Unshelve => book.unshelve(at_ms, key, Some(&by.operator)),
        OperatorAction::Note(text) => match &before {
            None => Err(ActionError::Unknown(key.into())),
            Some(_) if text.trim().is_empty() => Err(ActionError::BadShelving),
            Some(_) => Ok(()),
        },
    };
    let t = |action: Action, note: &str| Transition {
        at_ms,
        action,
        key: key.to_string(),
        device: before.as_ref().map_or_else(
            || key.split('#').next().unwrap_or(key).to_string(),
            |b| b.alarm.device.clone(),
        ),
        priority: before.as_ref().map_or(Priority::Low, |b| b.alarm.priority),
        from: before.as_ref().map(|b| b.alarm.state.as_str().to_string()),
        to: before.as_ref().map(|b| b.alarm.state.as_str().to_string()),
        operator: Some(by.operator.clone()),
        note: note.to_string(),
        until_ms: None,
    };
    match outcome {
        Err(e) => {
            let reason = refusal(&e, before.as_ref(), action);
            // The attempt is audited (an alarm that does not exist has no row to lock).
            if before.is_some() {
                let row = t(Action::Acknowledge, &reason);
                audit(&mut tx, url, &row, "refused", Some(&by.station)).map_err(&denied)?;
                tx.commit().map_err(query_err(url))?;
            }
            Err(BookError::Refused { reason })
        }
        Ok(()) => {
            if let OperatorAction::Note(text) = action {
                audit(
                    &mut tx,
                    url,
                    &t(Action::Acknowledge, text.trim()),
                    "note",
                    Some(&by.station),
                )
                .map_err(&denied)?;
            } else {
                for tr in book.take_transitions() {
                    audit(&mut tx, url, &tr, tr.action.as_str(), Some(&by.station))
                        .map_err(&denied)?;
                }
                let after = book.alarms.get(key);
                let station = match action {
                    OperatorAction::Acknowledge => Some(by.station.as_str()),
                    _ => before.as_ref().and_then(|b| b.ack_station.as_deref()),
                };
                write_row(&mut tx, url, key, after, station, at_ms).map_err(&denied)?;
            }
            notify(&mut tx, url, key)?;
            tx.commit().map_err(query_err(url))?;
            Ok(get(client, url, key)?)
        }
    }
}

/// Why the book turned an action down, in an operator's words (who acknowledged it first).
fn refusal(e: &ActionError, before: Option<&StoredAlarm>, action: &OperatorAction) -> String {
    match (e, before, action) {
        (ActionError::NothingToAcknowledge(k), Some(b), _) => match &b.alarm.acknowledged {
            Some((t, who)) => format!(
                "alarm {k} was acknowledged already, by {who}{} at {}",
                b.ack_station
                    .as_deref()
                    .map(|s| format!(" at station {s}"))
                    .unwrap_or_default(),
                tvilling_sensors::time::format_rfc3339(*t)
            ),
            None => format!(
                "alarm {k} needs no acknowledgement ({})",
                b.alarm.state.as_str()
            ),
        },
        (ActionError::BadShelving, _, OperatorAction::Note(_)) => "a note needs some text".into(),
        (e, _, _) => e.to_string(),
    }
}

/// Changes the recording twin's book made (raise, clear, expiry, restart), made again on the
/// store's rows in one transaction, through the same model: the store's state of each
/// alarm (with acknowledgements and shelving from any desk) is what they act on, so a desk's
/// acknowledgement is never overwritten by a recorder that had not seen it yet.
pub fn record(
    client: &mut Client,
    url: &str,
    transitions: &[Transition],
    chattering: &dyn Fn(&str) -> bool,
    station: &str,
) -> Result<usize, StoreError> {
    let login = current_user(client, url)?;
    let denied = write_err(url, &login, "record alarms", "tvilling_operator");
    let mut written = 0;
    // One transaction for the batch (a commit is the server's fsync): each row still locked
    // and changed through the model, each key announced at the commit.
    let mut tx = begin(client, url)?;
    for t in transitions {
        let (mut book, before) = locked(&mut tx, url, &t.key).map_err(&denied)?;
        let severity = t.key.rsplit_once('#').and_then(|(_, s)| Severity::parse(s));
        match (t.action, severity) {
            (Action::Raise, Some(s)) => book.raise(t.at_ms, &t.device, s, t.priority, &t.note),
            (Action::Clear, Some(s)) => book.clear(t.at_ms, &t.device, s),
            (Action::Expire, _) => book.tick(t.at_ms),
            (Action::Restart, _) => {
                book.alarms.remove(&t.key);
                book.pending.push(Transition {
                    from: before.as_ref().map(|b| b.alarm.state.as_str().to_string()),
                    to: None,
                    ..t.clone()
                });
            }
            // Operators' actions are made in the store by [`act`]; not repeated here.
            _ => continue,
        }
        let changes = book.take_transitions();
        if changes.is_empty() {
            continue;
        }
        if let Some(a) = book.alarms.get_mut(&t.key) {
            a.chattering |= chattering(&t.key);
        }
        for tr in &changes {
            audit(&mut tx, url, tr, tr.action.as_str(), Some(station)).map_err(&denied)?;
        }
        let station = before.as_ref().and_then(|b| b.ack_station.clone());
        write_row(
            &mut tx,
            url,
            &t.key,
            book.alarms.get(&t.key),
            station.as_deref(),
            t.at_ms,
        )
        .map_err(&denied)?;
        notify(&mut tx, url, &t.key)?;
        written += changes.len();
    }
    tx.commit().map_err(query_err(url))?;
    Ok(written)
}

/// Cuts the audit log to its last `days` (counted back from its newest row); the rows
/// deleted. The engineer's right: an operator or viewer is refused by the server.
pub fn retain_audit(client: &mut Client, url: &str, days: f64) -> Result<u64, StoreError> {
    let login = current_user(client, url)?;
    let denied = write_err(url, &login, "cut the audit log", "tvilling_engineer");
    if !(days.is_finite() && days > 0.0) {
        return Err(StoreError::Query {
            url: url.into(),
            reason: format!("retention of {days} days: give a number of days above 0"),
        });
    }
    let keep_ms = (days * 86_400_000.0) as i64;
    client
        .execute(
            "DELETE FROM tvilling.alarm_audit
             WHERE t < (SELECT max(t) FROM tvilling.alarm_audit) - $1",
            &[&keep_ms],
        )
        .map_err(query_err(url))
        .map_err(denied)
}

/// The alarm of `key` as the store holds it (`None`: no such alarm, or back to normal).
pub fn get(client: &mut Client, url: &str, key: &str) -> Result<Option<StoredAlarm>, StoreError> {
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM tvilling.alarms WHERE key = $1"),
            &[&key],
        )
        .map_err(query_err(url))?;
    let mut out = read_rows(url, &rows)?;
    add_notes(client, url, &mut out)?;
    Ok(out.pop())
}

/// Every alarm on the list, as the desk orders it: most urgent first, newest first.
pub fn list(client: &mut Client, url: &str) -> Result<Vec<StoredAlarm>, StoreError> {
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM tvilling.alarms WHERE state <> 'normal'"),
            &[],
        )
        .map_err(query_err(url))?;
    let mut out = read_rows(url, &rows)?;
    out.sort_by(|a, b| {
        b.alarm
            .priority
            .cmp(&a.alarm.priority)
            .then(b.alarm.raised_ms.cmp(&a.alarm.raised_ms))
            .then(a.alarm.key.cmp(&b.alarm.key))
    });
    add_notes(client, url, &mut out)?;
    Ok(out)
}

fn read_rows(url: &str, rows: &[Row]) -> Result<Vec<StoredAlarm>, StoreError> {
    let mut out = Vec::new();
    for r in rows {
        match from_row(r) {
            Ok(Some(a)) => out.push(a),
            Ok(None) => {}
            Err(reason) => {
                return Err(StoreError::Query {
                    url: url.into(),
                    reason: format!("unreadable alarm row {reason}"),
                });
            }
        }
    }
    Ok(out)
}

fn add_notes(client: &mut Client, url: &str, alarms: &mut [StoredAlarm]) -> Result<(), StoreError> {
    if alarms.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = alarms.iter().map(|a| a.alarm.key.as_str()).collect();
    let rows = client
        .query(
            "SELECT DISTINCT ON (key) key, operator, station, note FROM tvilling.alarm_audit
             WHERE action = 'note' AND key = ANY($1) ORDER BY key, id DESC",
            &[&keys],
        )
        .map_err(query_err(url))?;
    for r in rows {
        let key: String = r.get(0);
        if let Some(a) = alarms.iter_mut().find(|a| a.alarm.key == key) {
            a.last_note = Some((
                r.get::<_, Option<String>>(1).unwrap_or_default(),
                r.get::<_, Option<String>>(2).unwrap_or_default(),
                r.get(3),
            ));
        }
    }
    Ok(())
}

/// The newest alarm of `device` that still needs acknowledging (for `ack --device`).
pub fn newest_of_device(
    client: &mut Client,
    url: &str,
    device: &str,
) -> Result<Option<String>, StoreError> {
    Ok(client
        .query_opt(
            "SELECT key FROM tvilling.alarms WHERE device = $1
                 AND state IN ('active unacknowledged', 'cleared unacknowledged')
             ORDER BY raised_ms DESC, key LIMIT 1",
            &[&device],
        )
        .map_err(query_err(url))?
        .map(|r| r.get(0)))
}

/// The audit log of one alarm (or all, `key` None), oldest first.
pub fn audit_log(
    client: &mut Client,
    url: &str,
    key: Option<&str>,
) -> Result<Vec<AuditRow>, StoreError> {
    let rows = client
        .query(
            "SELECT id, t, action, key, device, from_state, to_state, operator, station, note
             FROM tvilling.alarm_audit WHERE $1::text IS NULL OR key = $1 ORDER BY id",
            &[&key],
        )
        .map_err(query_err(url))?;
    Ok(rows
        .iter()
        .map(|r| AuditRow {
            id: r.get(0),
            at_ms: r.get(1),
            action: r.get(2),
            key: r.get(3),
            device: r.get(4),
            from: r.get(5),
            to: r.get(6),
            operator: r.get(7),
            station: r.get(8),
            note: r.get(9),
        })
        .collect())
}

/// Listens on [`CHANNEL`] on a connection of its own: each changed alarm's key is sent on as
/// it is announced. Ends (returning why) when the connection is lost or `stop` is set.
pub fn listen(
    url: &str,
    keys: &crossbeam_channel::Sender<String>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), StoreError> {
    use std::sync::atomic::Ordering;
    let mut client = super::connect(url)?;
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .map_err(query_err(url))?;
    while !stop.load(Ordering::Relaxed) {
        {
            let mut n = client.notifications();
            let mut it = n.timeout_iter(std::time::Duration::from_millis(200));
            loop {
                match it.next() {
                    Ok(Some(note)) => {
                        if keys.send(note.payload().to_string()).is_err() {
                            return Ok(());
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Err(StoreError::Unreachable {
                            url: url.into(),
                            reason: describe(&e),
                        });
                    }
                }
            }
        }
        if client.is_closed() {
            return Err(StoreError::Unreachable {
                url: url.into(),
                reason: "the connection closed".into(),
            });
        }
    }
    Ok(())
}
