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

/// `tvilling alarms ack KEY` by anna at desk 1, as JSON.
fn ack_at_desk_1(store: &str, key: &str) -> Output {
    tvilling_ok([
        "alarms",
        "ack",
        key,
        "--store",
        store,
        "--operator",
        "anna",
        "--station",
        "desk-1",
        "--json",
    ])
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
    let out = ack_at_desk_1(&anna, "lamp/1#fault");
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
    // Retention is the engineer's: an operator is refused by the server; eva cuts the log.
    let out = tvilling(&["store", "retain", "--days", "1", "--store", &anna], &[]);
    let e = stderr(&out);
    assert!(
        !out.status.success()
            && e.contains("anna may not cut the audit log")
            && e.contains("tvilling_engineer"),
        "{e}"
    );
    let before = log.len();
    let mut c = connect(&anna).expect("connect");
    c.execute(
        "UPDATE tvilling.alarm_audit SET t = t - 3 * 86400000 WHERE action = 'raise'",
        &[],
    )
    .expect_err("an operator may not rewrite the audit log");
    pg.sql("UPDATE tvilling.alarm_audit SET t = t - 3 * 86400000 WHERE action = 'raise'");
    let out = tvilling_ok(["store", "retain", "--days", "1", "--store", &pg.url("eva")]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 audit rows older than 1 days deleted")
    );
    let after = book::audit_log(&mut c, &anna, None).expect("audit").len();
    assert_eq!(after, before - 3);
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

/// A twin's desk on the shared store: the alarm pipeline's desk and the shared book's plugin,
/// as `--store postgres://…` adds them.
fn desk_twin(
    url: &str,
    operator: &str,
    station: &str,
    spool: &std::path::Path,
) -> bevy::prelude::App {
    use bevy::prelude::*;
    use tvilling_metrics::alarms::AlarmChanged;
    use tvilling_metrics::lifecycle::{AlarmAction, AlarmDesk, annunciate};
    use tvilling_twin::shared::sync::{SharedBookPlugin, SharedBookSettings};
    let mut app = App::new();
    app.add_message::<AlarmChanged>()
        .add_message::<AlarmAction>()
        .insert_resource(AlarmDesk {
            operator: operator.into(),
            ..Default::default()
        })
        .insert_resource(tvilling_sensors::clock::TwinClock::held(1_795_400_000_000))
        .add_systems(
            PreUpdate,
            annunciate.in_set(tvilling_metrics::MetricsSystems::Alarms),
        )
        .add_plugins(SharedBookPlugin {
            settings: SharedBookSettings {
                url: url.into(),
                station: station.into(),
                spool: spool.to_path_buf(),
            },
        });
    app
}

/// Steps `apps` until `done` holds for the last one (at most `limit`); how long it took.
fn until(
    apps: &mut [&mut bevy::prelude::App],
    limit: Duration,
    mut done: impl FnMut(&bevy::prelude::App) -> bool,
) -> Duration {
    let t = Instant::now();
    loop {
        for a in apps.iter_mut() {
            a.update();
        }
        if done(apps.last().expect("an app")) {
            return t.elapsed();
        }
        assert!(t.elapsed() < limit, "not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn desk_state(app: &bevy::prelude::App, key: &str) -> Option<String> {
    app.world()
        .resource::<tvilling_metrics::lifecycle::AlarmDesk>()
        .book
        .alarms
        .get(key)
        .map(|a| a.state.as_str().to_string())
}

fn raise(app: &mut bevy::prelude::App, device: &str, raised: bool) {
    app.world_mut()
        .write_message(tvilling_metrics::alarms::AlarmChanged {
            at_ms: 1_795_400_000_000,
            device: device.into(),
            severity: Severity::Fault,
            text: format!("{device} dark at night"),
            raised,
        });
}

#[test]
fn two_twins_share_one_desk_and_the_second_records_when_the_first_stops() {
    use tvilling_metrics::lifecycle::AlarmAction;
    use tvilling_twin::shared::sync::SharedBook;
    let pg = city_store("two-twins");
    let spool = |desk: &str| pg.dir.join(format!("spool-{desk}.jsonl"));
    let mut first = desk_twin(&pg.url("anna"), "anna", "desk-1", &spool("desk-1"));
    until(&mut [&mut first], Duration::from_secs(10), |a| {
        a.world().resource::<SharedBook>().recording
    });
    let mut second = desk_twin(&pg.url("bertil"), "bertil", "desk-2", &spool("desk-2"));
    until(
        &mut [&mut first, &mut second],
        Duration::from_secs(10),
        |a| a.world().resource::<SharedBook>().connected,
    );
    assert!(
        !second.world().resource::<SharedBook>().recording,
        "one recorder"
    );
    // Both twins see the condition; the first records it; the second's desk shows it.
    raise(&mut first, "lamp/1", true);
    raise(&mut second, "lamp/1", true);
    let key = "lamp/1#fault";
    until(
        &mut [&mut first, &mut second],
        Duration::from_secs(5),
        |a| desk_state(a, key).as_deref() == Some("active unacknowledged"),
    );
    // Acknowledged at desk 2: desk 1 shows it within a second, with who and where.
    second
        .world_mut()
        .write_message(AlarmAction::Acknowledge(vec![key.into()]));
    let took = until(
        &mut [&mut second, &mut first],
        Duration::from_secs(1),
        |a| desk_state(a, key).as_deref() == Some("active acknowledged"),
    );
    eprintln!("desk 2's acknowledgement on desk 1 after {took:?}");
    let desk = first
        .world()
        .resource::<tvilling_metrics::lifecycle::AlarmDesk>();
    assert_eq!(
        desk.book.alarms[key]
            .acknowledged
            .as_ref()
            .map(|a| a.1.as_str()),
        Some("bertil")
    );
    let mut c = connect(&pg.url("anna")).expect("connect");
    let stored = book::get(&mut c, &pg.url("anna"), key)
        .expect("get")
        .expect("there");
    assert_eq!(stored.ack_station.as_deref(), Some("desk-2"));
    // The recorder stops; the second takes over and records what it sees from then on.
    drop(first);
    let took = until(&mut [&mut second], Duration::from_secs(5), |a| {
        a.world().resource::<SharedBook>().recording
    });
    eprintln!("the second twin records {took:?} after the first stopped");
    raise(&mut second, "lamp/2", true);
    until(&mut [&mut second], Duration::from_secs(5), |_| {
        book::get(&mut c, &pg.url("anna"), "lamp/2#fault")
            .expect("get")
            .is_some()
    });
    // The store stops: the desk keeps its list and counts what waits, in its spool on disk.
    pg.stop();
    until(&mut [&mut second], Duration::from_secs(5), |a| {
        a.world().resource::<SharedBook>().down_since_ms.is_some()
    });
    raise(&mut second, "lamp/3", true);
    raise(&mut second, "lamp/4", true);
    until(&mut [&mut second], Duration::from_secs(5), |a| {
        a.world().resource::<SharedBook>().waiting >= 2
    });
    assert_eq!(
        desk_state(&second, key).as_deref(),
        Some("active acknowledged")
    );
    assert!(
        desk_state(&second, "lamp/3#fault").is_some(),
        "its own raise is on its desk"
    );
    let spooled = std::fs::read_to_string(spool("desk-2")).expect("spool on disk");
    assert!(
        spooled.contains("lamp/3#fault") && spooled.contains("lamp/4#fault"),
        "{spooled}"
    );
    // That twin stops before the store returns; the one started after it writes its spool.
    drop(second);
    pg.start_again();
    let mut third = desk_twin(&pg.url("bertil"), "bertil", "desk-2", &spool("desk-2"));
    until(&mut [&mut third], Duration::from_secs(10), |a| {
        let s = a.world().resource::<SharedBook>();
        s.connected && s.recording && s.waiting == 0
    });
    assert!(!spool("desk-2").exists(), "the spool is gone once written");
    assert_eq!(
        desk_state(&third, "lamp/4#fault").as_deref(),
        Some("active unacknowledged")
    );
    let mut c = connect(&pg.url("anna")).expect("connect again");
    let list = book::list(&mut c, &pg.url("anna")).expect("list");
    let keys: Vec<&str> = list.iter().map(|a| a.alarm.key.as_str()).collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(keys.contains(&"lamp/3#fault") && keys.contains(&"lamp/4#fault"));
    let raises = book::audit_log(&mut c, &pg.url("anna"), None)
        .expect("audit")
        .iter()
        .filter(|r| r.action == "raise")
        .count();
    assert_eq!(raises, 4, "each raise stored once");
    // A damaged spool line is kept aside and counted, the good ones written.
    drop(third);
    std::fs::write(
        spool("desk-9"),
        "{not json\n{\"record\":{\"at_ms\":1795400000000,\"action\":\"raise\",\"key\":\"lamp/9#fault\",\"device\":\"lamp/9\",\"priority\":\"high\",\"from\":null,\"to\":\"active unacknowledged\",\"operator\":null,\"note\":\"dark\",\"until_ms\":null}}\n",
    )
    .expect("spool");
    let mut fourth = desk_twin(&pg.url("anna"), "anna", "desk-9", &spool("desk-9"));
    until(&mut [&mut fourth], Duration::from_secs(10), |a| {
        desk_state(a, "lamp/9#fault").is_some()
    });
    assert_eq!(fourth.world().resource::<SharedBook>().spool_unreadable, 1);
    let kept = std::fs::read_to_string(spool("desk-9").with_extension("unreadable")).expect("kept");
    assert_eq!(kept, "{not json\n");
}

/// Red of the banner (and of high-priority labels).
fn is_banner_red(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    r > 200 && g < 90 && b < 90
}

#[test]
fn the_desk_says_where_its_book_is_shared_and_when_the_store_cannot_be_reached() {
    // Nothing listens on this port: the store is down from the start.
    let down = format!(
        "postgres://anna@127.0.0.1:{}/city",
        crate::common::free_port()
    );
    let pic = crate::screenshot::screenshot(
        "store-down",
        "2026-11-23T17:00",
        &["--open", "city", "--frames", "4", "--store", &down],
    );
    pic.assert_shows(&["Alarm store unreachable since", "written when it returns"]);
    let red = pic.share(0.45, 0.15, 0.95, 0.28, is_banner_red);
    assert!(red > 0.01, "{red} of the banner red");
    // On a live store this twin records the alarms it raises (its dark lamps at night).
    let pg = city_store("screen");
    let anna = pg.url("anna");
    let pic = crate::screenshot::screenshot(
        "store-up",
        "2026-11-23T17:00",
        &[
            "--open",
            "city",
            "--frames",
            "4",
            "--store",
            &anna,
            "--station",
            "desk-7",
        ],
    );
    pic.assert_shows(&[
        "Shared alarm book",
        "desk-7",
        "this twin records the alarms",
    ]);
    assert!(pic.share(0.45, 0.15, 0.95, 0.28, is_banner_red) < red / 4.0);
    let list = json(&tvilling_ok(["alarms", "list", "--store", &anna, "--json"]));
    assert!(!list.is_empty(), "the twin recorded its alarms");
    assert!(list.iter().all(|a| a["state"] == "active unacknowledged"));
}

/// A headless twin on the simulated demo at dusk, sharing `store`; writes its snapshot (with
/// its desk and the shared store's state) to `out` after `secs` seconds.
fn twin_process(
    store: &str,
    operator: &str,
    station: &str,
    secs: &str,
    out: &std::path::Path,
    state: &std::path::Path,
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args([
            "--headless",
            "--simulate",
            "7",
            "--sim-start",
            "2026-11-23T17:00",
            "--duration",
            secs,
            "--store",
            store,
            "--operator",
            operator,
            "--station",
            station,
            "--snapshot",
        ])
        .arg(out)
        .env("XDG_STATE_HOME", state)
        .env_remove("PGPASSWORD")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start tvilling")
}

fn snapshot(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("snapshot")).expect("json")
}

#[test]
fn three_twin_processes_share_one_book_and_another_records_when_the_recorder_is_killed() {
    let pg = city_store("processes");
    let dir = pg.dir.join("twins");
    std::fs::create_dir_all(&dir).expect("dir");
    let (anna, bertil, wall) = (pg.url("anna"), pg.url("bertil"), pg.url("wall"));
    // The first twin records; its broken lamps are dark at dusk.
    let mut first = twin_process(&anna, "anna", "desk-1", "120", &dir.join("1.json"), &dir);
    let start = Instant::now();
    let list = loop {
        let out = tvilling(&["alarms", "list", "--store", &wall, "--json"], &[]);
        if out.status.success() {
            let l = json(&out);
            if !l.is_empty() {
                break l;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let key = list[0]["key"].as_str().expect("key").to_string();
    // The second desk and the wall join; an acknowledgement from a script at desk 1.
    let second = twin_process(&bertil, "bertil", "desk-2", "12", &dir.join("2.json"), &dir);
    let viewer = twin_process(&wall, "wall", "wall", "12", &dir.join("3.json"), &dir);
    std::thread::sleep(Duration::from_secs(3));
    ack_at_desk_1(&anna, &key);
    // The recorder is killed mid-stream: no clean exit, its session cut.
    first.kill().expect("kill");
    let _ = first.wait();
    for (child, name) in [(second, "second"), (viewer, "wall")] {
        let out = child.wait_with_output().expect(name);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every screen showed the acknowledgement; the second desk records now; the wall reads.
    let mut c = connect(&anna).expect("connect");
    let book_now = book::list(&mut c, &anna).expect("list");
    for (file, station, records) in [("2.json", "desk-2", true), ("3.json", "wall", false)] {
        let doc = snapshot(&dir.join(file));
        let s = &doc["shared_store"];
        assert_eq!(s["station"], station);
        assert_eq!(s["connected"], true, "{file}: {s}");
        assert_eq!(s["recording"], records, "{file}: {s}");
        let alarms = doc["alarm_desk"]["alarms"].as_array().expect("alarms");
        let a = alarms
            .iter()
            .find(|a| a["key"] == key.as_str())
            .expect("on the desk");
        assert_eq!(a["state"], "active acknowledged", "{file}");
        assert_eq!(a["acknowledged"]["by"], "anna", "{file}");
        assert_eq!(alarms.len(), book_now.len(), "{file}: one book");
    }
    assert_eq!(
        snapshot(&dir.join("3.json"))["shared_store"]["role"],
        "viewer"
    );
    // Each alarm raised once in the store, however many twins saw it raised.
    let log = book::audit_log(&mut c, &anna, None).expect("audit");
    let mut raised: Vec<&str> = log
        .iter()
        .filter(|r| r.action == "raise")
        .map(|r| r.key.as_str())
        .collect();
    let n = raised.len();
    raised.sort_unstable();
    raised.dedup();
    assert_eq!(raised.len(), n, "a raise stored twice");
    assert!(n >= list.len());
}

#[test]
fn the_history_on_postgresql_passes_the_checks_the_sqlite_file_passes() {
    use tvilling_twin::history::pg::PgHistory;
    use tvilling_twin::history::store::HistoryStore;
    let pg = city_store("history");
    // Retention is in the checks: an engineer's login records here.
    let mut h = PgHistory::open(&pg.url("eva")).expect("open");
    tvilling_twin::history::conformance::check(&mut h).expect("the checks");
    // The wall reads the same history and may not write to it.
    let mut wall = PgHistory::open(&pg.url("wall")).expect("a viewer opens it");
    let s = wall
        .state_at(1_795_392_000_000 + 209 * 60_000 + 5_000)
        .expect("a viewer reads");
    assert_eq!(s.values.len(), 40);
    let e = wall
        .device_index("lamp/new", "lamp")
        .expect_err("a viewer's write is refused")
        .to_string();
    assert!(e.contains("permission denied"), "{e}");
    // A store without the schema is refused with what to do.
    pg.sql("CREATE DATABASE bare");
    let bare = pg.url("owner").replace("/city", "/bare");
    let e = PgHistory::open(&bare).err().expect("refused").to_string();
    assert!(e.contains("tvilling store init"), "{e}");
}

#[test]
fn one_twin_records_the_history_and_another_takes_over_losing_nothing_and_doubling_nothing() {
    use tvilling_twin::history::pg::{PgHistory, RecorderGate};
    use tvilling_twin::history::store::{HistoryStore, Row, Running, fold};
    let pg = city_store("history-gate");
    let (mut a, mut b) = (
        RecorderGate::open(&pg.url("anna")).expect("a"),
        RecorderGate::open(&pg.url("bertil")).expect("b"),
    );
    assert!(a.leading() && !b.leading(), "the first records");
    let t0 = 1_795_392_000_000i64;
    let mut all: Vec<Row> = Vec::new();
    let mut running = Running::default();
    // Both twins see the same 12 devices; each twin numbers them through the store.
    let ids: Vec<u32> = (0..12)
        .map(|i| {
            let d = a.device_index(&format!("lamp/{i}"), "lamp").expect("a's");
            assert_eq!(
                b.device_index(&format!("lamp/{i}"), "lamp").expect("b's"),
                d
            );
            d
        })
        .collect();
    let src = a.source_index("simulator").expect("source");
    b.source_index("simulator").expect("source");
    let minute = |m: i64| -> Vec<Row> {
        ids.iter()
            .enumerate()
            .filter(|(i, _)| (m + *i as i64) % 3 == 0)
            .map(|(i, d)| Row {
                t_ms: t0 + m * 60_000 + i as i64 * 10,
                device: *d,
                quantity: 2,
                value: ((m / 2 + i as i64) % 7) as f64,
                source: src,
            })
            .collect()
    };
    let mut step = |m: i64, stores: &mut [&mut RecorderGate]| {
        let rows = minute(m);
        let t = t0 + m * 60_000;
        for s in stores.iter_mut() {
            if t % 3_600_000 == 0 && m > 0 {
                s.keyframe(t - 1, &running).expect("keyframe");
            }
            s.write(&rows, &[]).expect("write");
        }
        for r in &rows {
            fold(&mut running, r);
        }
        all.extend(rows);
    };
    for m in 0..40 {
        step(m, &mut [&mut a, &mut b]);
    }
    a.persist().expect("persist");
    b.persist().expect("persist");
    for m in 40..50 {
        step(m, &mut [&mut a, &mut b]);
    }
    // The recorder dies with ten minutes not yet persisted; the other takes over.
    drop(a);
    std::thread::sleep(Duration::from_millis(1_100));
    for m in 50..90 {
        step(m, &mut [&mut b]);
    }
    assert!(b.leading(), "the second records once the first is gone");
    b.persist().expect("persist");
    let mut reader = PgHistory::open(&pg.url("wall")).expect("reader");
    for i in 0..12 {
        let d = ids[i];
        let want: Vec<(i64, u8, f64)> = all
            .iter()
            .filter(|r| r.device == d)
            .map(|r| (r.t_ms, r.quantity, r.value))
            .collect();
        let got = reader
            .series(&format!("lamp/{i}"), t0, t0 + 90 * 60_000)
            .expect("series");
        assert_eq!(got, want, "lamp/{i}: every value once");
    }
    let end = t0 + 89 * 60_000 + 200;
    let mut want: Vec<_> = running.into_iter().map(|((d, q), h)| (d, q, h)).collect();
    want.sort_unstable_by_key(|v| (v.0, v.1));
    assert_eq!(reader.state_at(end).expect("state").values, want);
}
