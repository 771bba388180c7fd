//! The shared store on a real PostgreSQL 15 server ([`crate::pgserver`]): one alarm book for
//! every screen (an acknowledgement at one desk announced to another within a second), two
//! operators acknowledging at once, a recorder that had not seen a desk's acknowledgement, a
//! viewer's write refused by the server's own grants, schema versions, the password from the
//! environment only, and the store going away and coming back. Through `tvilling alarms` and
//! `tvilling store` as an operator's scripts run them, and the library beside them.

use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tvilling_metrics::alarms::Severity;
use tvilling_metrics::lifecycle::{AlarmBook, Priority, Transition};
use tvilling_twin::shared::book::{self, Actor, BookError, OperatorAction};
use tvilling_twin::shared::{StoreError, connect};

use crate::common::tvilling_ok;
use crate::pgserver::PgServer;

fn tvilling(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvilling"));
    c.args(args).env_remove("PGPASSWORD");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run tvilling")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    v.as_array().expect("an array").clone()
}

/// A server with the schema, the operators anna and bertil, the engineer eva and the viewer
/// wall.
fn city_store(name: &str) -> PgServer {
    let pg = PgServer::start(name);
    let owner = pg.url("owner");
    let out = tvilling_ok(["store", "init", "--store", &owner]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("schema version 1"));
    for (who, role) in [
        ("anna", "operator"),
        ("bertil", "operator"),
        ("eva", "engineer"),
        ("wall", "viewer"),
    ] {
        tvilling_ok(["store", "user", who, "--role", role, "--store", &owner]);
    }
    pg
}

/// What a recording twin's book says when conditions are raised (device, severity).
fn raised(at_ms: i64, alarms: &[(&str, Severity)]) -> Vec<Transition> {
    let mut b = AlarmBook::default();
    for (d, s) in alarms {
        b.raise(at_ms, d, *s, Priority::High, &format!("{d} {}", s.as_str()));
    }
    b.take_transitions()
}

fn cleared(at_ms: i64, alarms: &[(&str, Severity)]) -> Vec<Transition> {
    let mut b = AlarmBook::default();
    for (d, s) in alarms {
        b.raise(at_ms - 1, d, *s, Priority::High, "raised");
    }
    b.take_transitions();
    for (d, s) in alarms {
        b.clear(at_ms, d, *s);
    }
    b.take_transitions()
}

fn record(url: &str, t: &[Transition]) -> usize {
    let mut c = connect(url).expect("connect");
    book::record(&mut c, url, t, &|_| false, "recorder").expect("record")
}

#[test]
fn an_acknowledgement_at_one_desk_reaches_the_other_within_a_second_and_is_audited() {
    let pg = city_store("one-book");
    let (anna, wall) = (pg.url("anna"), pg.url("wall"));
    let t0 = 1_795_400_000_000;
    record(
        &anna,
        &raised(
            t0,
            &[
                ("lamp/1", Severity::Fault),
                ("lamp/2", Severity::Stale),
                ("lamp/2", Severity::Fault),
            ],
        ),
    );
    // The wall listens; desk 1 acknowledges from the command line.
    let (tx, rx) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let listener = {
        let (wall, stop) = (wall.clone(), stop.clone());
        std::thread::spawn(move || book::listen(&wall, &tx, &stop))
    };
    std::thread::sleep(Duration::from_millis(300));
    let before = Instant::now();
    let out = tvilling_ok([
        "alarms",
        "ack",
        "lamp/1#fault",
        "--store",
        &anna,
        "--operator",
        "anna",
        "--station",
        "desk-1",
        "--json",
    ]);
    let key = rx
        .recv_timeout(Duration::from_secs(1))
        .expect("announced within 1 s");
    let latency = before.elapsed();
    assert_eq!(key, "lamp/1#fault");
    eprintln!("acknowledgement seen by the wall {latency:?} after the command began");
    let after = json(&out);
    assert_eq!(after[0]["state"], "active acknowledged");
    assert_eq!(after[0]["operator"], "anna");
    assert_eq!(after[0]["station"], "desk-1");
    // The wall's list shows it, with who and where.
    let list = json(&tvilling_ok(["alarms", "list", "--store", &wall, "--json"]));
    assert_eq!(list.len(), 3);
    let one = list
        .iter()
        .find(|a| a["key"] == "lamp/1#fault")
        .expect("listed");
    assert_eq!(
        (
            &one["state"],
            &one["operator"],
            &one["station"],
            &one["device"]
        ),
        (
            &serde_json::json!("active acknowledged"),
            &serde_json::json!("anna"),
            &serde_json::json!("desk-1"),
            &serde_json::json!("lamp/1")
        )
    );
    let table = String::from_utf8_lossy(&tvilling_ok(["alarms", "list", "--store", &wall]).stdout)
        .into_owned();
    assert!(
        table.contains("lamp/1#fault") && table.contains("desk-1") && table.contains("3 alarms")
    );
    // The wall may not act: the server refuses, and says so.
    let out = tvilling(
        &[
            "alarms",
            "ack",
            "lamp/2#stale",
            "--store",
            &wall,
            "--operator",
            "wall",
        ],
        &[],
    );
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("wall may not acknowledge alarms") && e.contains("tvilling_operator"),
        "{e}"
    );
    // Even bypassing the program: the grants are the server's.
    let mut c = connect(&wall).expect("wall connects");
    let e = c
        .execute("UPDATE tvilling.alarms SET state = 'normal'", &[])
        .expect_err("refused");
    assert!(tvilling_twin::shared::is_permission_denied(&e), "{e}");
    // ack --device takes the device's newest alarm needing it; shelve, unshelve, note.
    let out = json(&tvilling_ok([
        "alarms",
        "ack",
        "--device",
        "lamp/2",
        "--store",
        &anna,
        "--operator",
        "anna",
        "--json",
    ]));
    assert_eq!(out[0]["key"], "lamp/2#fault");
    let out = json(&tvilling_ok([
        "alarms",
        "shelve",
        "lamp/2#stale",
        "--reason",
        "gateway replaced tonight",
        "--for",
        "30",
        "--store",
        &anna,
        "--operator",
        "anna",
        "--json",
    ]));
    assert_eq!(out[0]["state"], "shelved");
    assert_eq!(out[0]["shelved"]["reason"], "gateway replaced tonight");
    let out = json(&tvilling_ok([
        "alarms",
        "note",
        "lamp/2#stale",
        "--text",
        "called Ellevio",
        "--store",
        &anna,
        "--operator",
        "anna",
        "--station",
        "desk-2",
        "--json",
    ]));
    assert_eq!(out[0]["note"]["text"], "called Ellevio");
    assert_eq!(out[0]["note"]["station"], "desk-2");
    let out = json(&tvilling_ok([
        "alarms",
        "unshelve",
        "lamp/2#stale",
        "--store",
        &anna,
        "--operator",
        "anna",
        "--json",
    ]));
    assert_eq!(out[0]["state"], "active unacknowledged");
    // Every change is in the audit log with its operator and station, and was announced.
    let mut c = connect(&anna).expect("connect");
    let log = book::audit_log(&mut c, &anna, None).expect("audit");
    let actions: Vec<(&str, Option<&str>, Option<&str>)> = log
        .iter()
        .filter(|r| r.operator.is_some())
        .map(|r| {
            (
                r.action.as_str(),
                r.operator.as_deref(),
                r.station.as_deref(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("acknowledge", Some("anna"), Some("desk-1"))),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.0 == "shelve" && a.1 == Some("anna"))
    );
    assert!(
        actions
            .iter()
            .any(|a| a == &("note", Some("anna"), Some("desk-2")))
    );
    assert!(actions.iter().any(|a| a.0 == "unshelve"));
    let mut announced = vec![key];
    while let Ok(k) = rx.recv_timeout(Duration::from_millis(500)) {
        announced.push(k);
    }
    assert!(announced.len() >= 5, "{announced:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    listener.join().expect("listener").expect("listened");
}

#[test]
fn two_operators_acknowledging_at_once_leave_one_acknowledgement_and_a_recorder_keeps_it() {
    let pg = city_store("at-once");
    let (anna, bertil) = (pg.url("anna"), pg.url("bertil"));
    let t0 = 1_795_400_000_000;
    let devices: Vec<String> = (0..20).map(|i| format!("lamp/{i}")).collect();
    let alarms: Vec<(&str, Severity)> = devices
        .iter()
        .map(|d| (d.as_str(), Severity::Fault))
        .collect();
    record(&anna, &raised(t0, &alarms));
    // Both desks acknowledge all twenty at the same moments.
    let gate = Arc::new(Barrier::new(2));
    let desk = |url: String, who: &'static str, gate: Arc<Barrier>, devices: Vec<String>| {
        std::thread::spawn(move || {
            let mut c = connect(&url).expect("connect");
            let by = Actor {
                operator: who.into(),
                station: format!("desk-{who}"),
            };
            let mut won = Vec::new();
            for d in &devices {
                gate.wait();
                let key = format!("{d}#fault");
                match book::act(
                    &mut c,
                    &url,
                    &key,
                    t0 + 1_000,
                    &OperatorAction::Acknowledge,
                    &by,
                ) {
                    Ok(_) => won.push(key),
                    Err(BookError::Refused { reason }) => {
                        assert!(reason.contains("acknowledged already, by "), "{reason}");
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            won
        })
    };
    let a = desk(anna.clone(), "anna", gate.clone(), devices.clone());
    let b = desk(bertil.clone(), "bertil", gate, devices.clone());
    let (wa, wb) = (a.join().expect("anna"), b.join().expect("bertil"));
    assert_eq!(
        wa.len() + wb.len(),
        20,
        "each alarm acknowledged once: {wa:?} {wb:?}"
    );
    let mut c = connect(&anna).expect("connect");
    for d in &devices {
        let key = format!("{d}#fault");
        let log = book::audit_log(&mut c, &anna, Some(&key)).expect("audit");
        let acks: Vec<_> = log.iter().filter(|r| r.action == "acknowledge").collect();
        let refused: Vec<_> = log.iter().filter(|r| r.action == "refused").collect();
        assert_eq!((acks.len(), refused.len()), (1, 1), "{key}: {log:?}");
        assert_ne!(acks[0].operator, refused[0].operator, "one row each");
        let now = book::get(&mut c, &anna, &key)
            .expect("get")
            .expect("on the list");
        assert_eq!(
            now.alarm.acknowledged.as_ref().map(|a| &a.1),
            acks[0].operator.as_ref()
        );
    }
    // The recorder had not seen those acknowledgements when the conditions went: the store's
    // acknowledged alarms return to normal (an unacknowledged one would wait, cleared).
    record(&anna, &cleared(t0 + 2_000, &alarms[..10]));
    record(&anna, &raised(t0 + 2_000, &[("lamp/99", Severity::Fault)]));
    record(&anna, &cleared(t0 + 3_000, &[("lamp/99", Severity::Fault)]));
    let list = book::list(&mut c, &anna).expect("list");
    assert_eq!(list.len(), 11, "ten acknowledged and cleared left the list");
    let l99 = list
        .iter()
        .find(|a| a.alarm.key == "lamp/99#fault")
        .expect("listed");
    assert_eq!(l99.alarm.state.as_str(), "cleared unacknowledged");
    assert!(
        list.iter()
            .all(|a| a.alarm.key == "lamp/99#fault" || a.alarm.acknowledged.is_some())
    );
}

#[test]
fn a_store_that_is_down_newer_older_or_needs_a_password_says_so() {
    let pg = city_store("faults");
    let (anna, owner) = (pg.url("anna"), pg.url("owner"));
    // A password only from the environment; one in the address is refused and never shown.
    pg.sql("CREATE ROLE secured LOGIN PASSWORD 'hemligt' IN ROLE tvilling_viewer");
    let secured = pg.url("secured");
    let ok = tvilling(
        &["alarms", "list", "--store", &secured],
        &[("PGPASSWORD", "hemligt")],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let no = tvilling(&["alarms", "list", "--store", &secured], &[]);
    assert!(!no.status.success());
    let with = secured.replace("secured@", "secured:hemligt@");
    let out = tvilling(&["alarms", "list", "--store", &with], &[]);
    let e = stderr(&out);
    assert!(
        !out.status.success() && e.contains("PGPASSWORD") && !e.contains("hemligt"),
        "{e}"
    );
    // Schema versions this build does not speak.
    pg.sql("UPDATE tvilling.meta SET value = '2' WHERE key = 'schema_version'");
    let e = stderr(&tvilling(&["alarms", "list", "--store", &anna], &[]));
    assert!(e.contains("version 2, newer than this twin's 1"), "{e}");
    pg.sql("UPDATE tvilling.meta SET value = '0' WHERE key = 'schema_version'");
    let e = stderr(&tvilling(&["alarms", "list", "--store", &anna], &[]));
    assert!(
        e.contains("older") && e.contains("tvilling store init --store"),
        "{e}"
    );
    tvilling_ok(["store", "init", "--store", &owner]);
    pg.sql("CREATE DATABASE empty");
    let empty = owner.replace("/city", "/empty");
    let e = stderr(&tvilling(&["alarms", "list", "--store", &empty], &[]));
    assert!(e.contains("no Tvilling schema"), "{e}");
    // The server stops: a clear error, not a hang; back, and all is there.
    record(
        &anna,
        &raised(1_795_400_000_000, &[("lamp/5", Severity::Fault)]),
    );
    pg.stop();
    let t = Instant::now();
    let out = tvilling(&["alarms", "list", "--store", &anna], &[]);
    let e = stderr(&out);
    assert!(!out.status.success() && e.contains(&anna), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10));
    match connect(&anna) {
        Err(StoreError::Unreachable { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("{:?}", other.map(|_| ())),
    }
    pg.start_again();
    let list = json(&tvilling_ok(["alarms", "list", "--store", &anna, "--json"]));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["key"], "lamp/5#fault");
}
