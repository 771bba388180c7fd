//! Alarm management after ISA-18.2 / IEC 62682, as a pure model: what an operator runs a shift
//! on. The conditions [`crate::alarms`] raises and clears become annunciated alarms with a
//! priority (set by rule), a state (active unacknowledged, active acknowledged, cleared
//! unacknowledged, shelved with a reason and an expiry), acknowledgement by a named operator,
//! a transition log for the audit, flood detection (more than [`FLOOD_ENTER`] raised in
//! [`FLOOD_WINDOW_MS`], ending below [`FLOOD_EXIT`]), chatter marking (the same alarm raised
//! [`CHATTER_RAISES`] times within [`CHATTER_WINDOW_MS`]) and the alarm rate per hour against
//! the EEMUA 191 benchmark. Times are twin times (Unix ms).

use std::collections::{BTreeMap, VecDeque};

use crate::alarms::Severity;

/// Flood: more than this many alarms raised within [`FLOOD_WINDOW_MS`] ...
pub const FLOOD_ENTER: usize = 10;
/// ... and it ends when fewer than this many were raised within the window.
pub const FLOOD_EXIT: usize = 5;
pub const FLOOD_WINDOW_MS: i64 = 10 * 60_000;
/// Chatter: the same alarm raised this many times within [`CHATTER_WINDOW_MS`].
pub const CHATTER_RAISES: usize = 3;
pub const CHATTER_WINDOW_MS: i64 = 60_000;
/// EEMUA 191's benchmark of a manageable alarm rate: about 6 an operator-hour.
pub const EEMUA_RATE_PER_HOUR: f64 = 6.0;

/// How urgent an alarm is (ordered: the most urgent last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low,
    Medium,
    High,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<Priority> {
        [Priority::Low, Priority::Medium, Priority::High]
            .into_iter()
            .find(|p| p.as_str() == text.trim().to_ascii_lowercase())
    }
}

/// Where an alarm stands.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmState {
    ActiveUnacknowledged,
    ActiveAcknowledged,
    /// The condition has gone, the operator has not yet seen it go.
    ClearedUnacknowledged,
    /// Suppressed by an operator until `until_ms`; `active`: the condition still holds.
    Shelved {
        reason: String,
        until_ms: i64,
        active: bool,
    },
}

impl AlarmState {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlarmState::ActiveUnacknowledged => "active unacknowledged",
            AlarmState::ActiveAcknowledged => "active acknowledged",
            AlarmState::ClearedUnacknowledged => "cleared unacknowledged",
            AlarmState::Shelved { .. } => "shelved",
        }
    }

    /// Whether an operator still has to acknowledge it.
    pub fn needs_acknowledgement(&self) -> bool {
        matches!(
            self,
            AlarmState::ActiveUnacknowledged | AlarmState::ClearedUnacknowledged
        )
    }
}

/// A rule giving a priority: matches a device kind (`signal_head`, `lamp`, ...; `None`: any),
/// an alarm's severity (`None`: any) and, if `night_only`, only alarms raised at night.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityRule {
    pub kind: Option<String>,
    pub severity: Option<Severity>,
    pub night_only: bool,
    pub priority: Priority,
}

/// The first matching rule's priority, else medium.
pub fn priority_of(
    rules: &[PriorityRule],
    kind: &str,
    severity: Severity,
    night: bool,
) -> Priority {
    rules
        .iter()
        .find(|r| {
            r.kind.as_deref().is_none_or(|k| k == kind)
                && r.severity.is_none_or(|s| s == severity)
                && (!r.night_only || night)
        })
        .map_or(Priority::Medium, |r| r.priority)
}

/// The rules the twin starts with: a dark or faulty signal controller's head is high, a signal
/// head gone silent medium, an air limit exceeded medium, a dark lamp at night low, and a
/// meter low.
pub fn default_rules() -> Vec<PriorityRule> {
    let rule = |kind: &str, severity, night_only, priority| PriorityRule {
        kind: Some(kind.to_string()),
        severity,
        night_only,
        priority,
    };
    vec![
        rule("signal_head", Some(Severity::Fault), false, Priority::High),
        rule(
            "signal_head",
            Some(Severity::Stale),
            false,
            Priority::Medium,
        ),
        rule(
            "air_sensor",
            Some(Severity::Exceedance),
            false,
            Priority::Medium,
        ),
        rule("lamp", Some(Severity::Fault), true, Priority::Low),
        rule("lamp", None, false, Priority::Low),
        rule("meter", None, false, Priority::Low),
    ]
}

/// One annunciated alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedAlarm {
    pub key: String,
    pub device: String,
    pub severity: Severity,
    pub priority: Priority,
    pub text: String,
    pub state: AlarmState,
    /// When it was (last) raised.
    pub raised_ms: i64,
    /// Who acknowledged it, and when.
    pub acknowledged: Option<(i64, String)>,
    pub cleared_ms: Option<i64>,
    /// Raised [`CHATTER_RAISES`] times within [`CHATTER_WINDOW_MS`].
    pub chattering: bool,
}

/// What made an alarm's state change (kept in the audit log, so that the desk can be rebuilt
/// from it for any moment: [`AlarmBook::replay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The condition was raised.
    Raise,
    /// The condition went.
    Clear,
    Acknowledge,
    Shelve,
    /// Back from the shelf by an operator ...
    Unshelve,
    /// ... or at its expiry.
    Expire,
    /// The twin stopped with the alarm on its list: a new run starts from an empty desk and
    /// raises it again if its condition still holds.
    Restart,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Raise,
        Action::Clear,
        Action::Acknowledge,
        Action::Shelve,
        Action::Unshelve,
        Action::Expire,
        Action::Restart,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Raise => "raise",
            Action::Clear => "clear",
            Action::Acknowledge => "acknowledge",
            Action::Shelve => "shelve",
            Action::Unshelve => "unshelve",
            Action::Expire => "expire",
            Action::Restart => "restart",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// A change of an alarm's state, for the audit log (`to: None`: back to normal, gone from the
/// list).
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub at_ms: i64,
    pub action: Action,
    pub key: String,
    pub device: String,
    pub priority: Priority,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The operator who acted, for acknowledgements and shelving.
    pub operator: Option<String>,
    /// What happened in words (the shelving reason, the alarm's text).
    pub note: String,
    /// A shelving's expiry.
    pub until_ms: Option<i64>,
}

/// Why an operator's action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no alarm {0}")]
    Unknown(String),
    #[error("alarm {0} needs no acknowledgement")]
    NothingToAcknowledge(String),
    #[error("alarm {0} is shelved already")]
    AlreadyShelved(String),
    #[error("alarm {0} is not shelved")]
    NotShelved(String),
    #[error("shelving needs a reason and an expiry after now")]
    BadShelving,
}

/// Every annunciated alarm, the flood and chatter state, and the transitions not yet taken by
/// the audit log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmBook {
    pub alarms: BTreeMap<String, ManagedAlarm>,
    /// Raise times within the flood window (and a little more for the hourly rate).
    raises: VecDeque<i64>,
    /// Raise times of each alarm within the chatter window.
    recent: BTreeMap<String, VecDeque<i64>>,
    pub flood: bool,
    /// Transitions since the audit log last took them (oldest first).
    pub pending: Vec<Transition>,
}

impl AlarmBook {
    /// The key of a device's alarm of one severity.
    pub fn key(device: &str, severity: Severity) -> String {
        format!("{device}#{}", severity.as_str())
    }

    #[allow(clippy::too_many_arguments)]
    fn log(
        &mut self,
        at_ms: i64,
        action: Action,
        a: &ManagedAlarm,
        from: Option<&AlarmState>,
        operator: Option<&str>,
        note: &str,
        until_ms: Option<i64>,
    ) {
        self.pending.push(Transition {
            at_ms,
            action,
            key: a.key.clone(),
            device: a.device.clone(),
            priority: a.priority,
            from: from.map(|s| s.as_str().to_string()),
            to: self
                .alarms
                .get(&a.key)
                .map(|x| x.state.as_str().to_string()),
            operator: operator.map(str::to_string),
            note: note.to_string(),
            until_ms,
        });
    }

    /// A condition raised: a new alarm, or one coming back (acknowledged or not, it needs
    /// acknowledging again); a shelved one stays shelved, its condition noted.
    pub fn raise(
        &mut self,
        at_ms: i64,
        device: &str,
        severity: Severity,
        priority: Priority,
        text: &str,
    ) {
        let key = Self::key(device, severity);
        let old = self.alarms.get(&key).cloned();
        if old.as_ref().is_some_and(|a| {
            a.cleared_ms.is_none()
                && matches!(
                    a.state,
                    AlarmState::ActiveAcknowledged | AlarmState::ActiveUnacknowledged
                )
        }) {
            // Already active: nothing changes, nothing is counted (its text stays as raised,
            // so that the book can be rebuilt from the log).
            return;
        }
        self.raises.push_back(at_ms);
        let recent = self.recent.entry(key.clone()).or_default();
        recent.push_back(at_ms);
        while recent
            .front()
            .is_some_and(|t| *t <= at_ms - CHATTER_WINDOW_MS)
        {
            recent.pop_front();
        }
        let chattering = recent.len() >= CHATTER_RAISES;
        let state = match &old.as_ref().map(|a| &a.state) {
            Some(AlarmState::Shelved {
                reason, until_ms, ..
            }) => AlarmState::Shelved {
                reason: reason.clone(),
                until_ms: *until_ms,
                active: true,
            },
            _ => AlarmState::ActiveUnacknowledged,
        };
        let a = ManagedAlarm {
            key: key.clone(),
            device: device.to_string(),
            severity,
            priority,
            text: text.to_string(),
            state,
            raised_ms: at_ms,
            acknowledged: None,
            cleared_ms: None,
            chattering: chattering || old.as_ref().is_some_and(|a| a.chattering),
        };
        self.alarms.insert(key, a.clone());
        self.log(
            at_ms,
            Action::Raise,
            &a,
            old.as_ref().map(|o| &o.state),
            None,
            text,
            None,
        );
        self.judge_flood(at_ms);
    }

    /// A condition gone: an acknowledged alarm returns to normal (leaves the list); an
    /// unacknowledged one waits, cleared, for its acknowledgement.
    pub fn clear(&mut self, at_ms: i64, device: &str, severity: Severity) {
        let key = Self::key(device, severity);
        let Some(a) = self.alarms.get(&key).cloned() else {
            return;
        };
        let before = a.state.clone();
        match &a.state {
            AlarmState::ActiveAcknowledged => {
                self.alarms.remove(&key);
            }
            AlarmState::ActiveUnacknowledged => {
                let x = self.alarms.get_mut(&key).expect("present");
                x.state = AlarmState::ClearedUnacknowledged;
                x.cleared_ms = Some(at_ms);
            }
            AlarmState::ClearedUnacknowledged => return,
            AlarmState::Shelved {
                reason, until_ms, ..
            } => {
                let x = self.alarms.get_mut(&key).expect("present");
                x.state = AlarmState::Shelved {
                    reason: reason.clone(),
                    until_ms: *until_ms,
                    active: false,
                };
                x.cleared_ms = Some(at_ms);
            }
        }
        self.log(
            at_ms,
            Action::Clear,
            &a,
            Some(&before),
            None,
            "cleared",
            None,
        );
    }

    /// The alarm of `key`, as it stands.
    fn find(&self, key: &str) -> Result<ManagedAlarm, ActionError> {
        self.alarms
            .get(key)
            .cloned()
            .ok_or_else(|| ActionError::Unknown(key.into()))
    }

    /// An operator acknowledges an alarm (the time and their name are kept).
    pub fn acknowledge(
        &mut self,
        at_ms: i64,
        key: &str,
        operator: &str,
    ) -> Result<(), ActionError> {
        let a = self.find(key)?;
        match a.state {
            AlarmState::ActiveUnacknowledged => {
                let x = self.alarms.get_mut(key).expect("present");
                x.state = AlarmState::ActiveAcknowledged;
                x.acknowledged = Some((at_ms, operator.to_string()));
            }
            AlarmState::ClearedUnacknowledged => {
                self.alarms.remove(key);
            }
            _ => return Err(ActionError::NothingToAcknowledge(key.into())),
        }
        self.log(
            at_ms,
            Action::Acknowledge,
            &a,
            Some(&a.state),
            Some(operator),
            "acknowledged",
            None,
        );
        Ok(())
    }

    /// Acknowledges every alarm of `keys` that needs it; returns how many.
    pub fn acknowledge_all<'a>(
        &mut self,
        at_ms: i64,
        keys: impl IntoIterator<Item = &'a str>,
        operator: &str,
    ) -> usize {
        keys.into_iter()
            .filter(|k| self.acknowledge(at_ms, k, operator).is_ok())
            .count()
    }

    /// An operator shelves an alarm until `until_ms`, for `reason`.
    pub fn shelve(
        &mut self,
        at_ms: i64,
        key: &str,
        reason: &str,
        until_ms: i64,
        operator: &str,
    ) -> Result<(), ActionError> {
        if reason.trim().is_empty() || until_ms <= at_ms {
            return Err(ActionError::BadShelving);
        }
        let a = self.find(key)?;
        if matches!(a.state, AlarmState::Shelved { .. }) {
            return Err(ActionError::AlreadyShelved(key.into()));
        }
        let active = a.cleared_ms.is_none();
        self.alarms.get_mut(key).expect("present").state = AlarmState::Shelved {
            reason: reason.trim().to_string(),
            until_ms,
            active,
        };
        self.log(
            at_ms,
            Action::Shelve,
            &a,
            Some(&a.state),
            Some(operator),
            reason.trim(),
            Some(until_ms),
        );
        Ok(())
    }

    /// Back from the shelf (by an operator, or at expiry: `operator` None): still active, it
    /// is annunciated again; gone, it leaves the list.
    pub fn unshelve(
        &mut self,
        at_ms: i64,
        key: &str,
        operator: Option<&str>,
    ) -> Result<(), ActionError> {
        let a = self.find(key)?;
        let AlarmState::Shelved { active, .. } = a.state else {
            return Err(ActionError::NotShelved(key.into()));
        };
        if active {
            let x = self.alarms.get_mut(key).expect("present");
            x.state = AlarmState::ActiveUnacknowledged;
            x.acknowledged = None;
        } else {
            self.alarms.remove(key);
        }
        let (action, note) = if operator.is_some() {
            (Action::Unshelve, "unshelved")
        } else {
            (Action::Expire, "shelving expired")
        };
        self.log(at_ms, action, &a, Some(&a.state), operator, note, None);
        Ok(())
    }

    /// Moves time on: expired shelving ends, the flood is judged again, old raises are
    /// forgotten.
    pub fn tick(&mut self, at_ms: i64) {
        let expired: Vec<String> = self
            .alarms
            .values()
            .filter(
                |a| matches!(a.state, AlarmState::Shelved { until_ms, .. } if until_ms <= at_ms),
            )
            .map(|a| a.key.clone())
            .collect();
        for k in expired {
            let _ = self.unshelve(at_ms, &k, None);
        }
        for (_, r) in self.recent.iter_mut() {
            while r.front().is_some_and(|t| *t <= at_ms - CHATTER_WINDOW_MS) {
                r.pop_front();
            }
        }
        self.recent.retain(|_, r| !r.is_empty());
        for a in self.alarms.values_mut() {
            if a.chattering
                && self
                    .recent
                    .get(&a.key)
                    .is_none_or(|r| r.len() < CHATTER_RAISES)
            {
                a.chattering = false;
            }
        }
        self.judge_flood(at_ms);
        while self.raises.front().is_some_and(|t| *t <= at_ms - 3_600_000) {
            self.raises.pop_front();
        }
    }

    fn raised_within(&self, at_ms: i64, window_ms: i64) -> usize {
        self.raises
            .iter()
            .filter(|t| **t > at_ms - window_ms && **t <= at_ms)
            .count()
    }

    fn judge_flood(&mut self, at_ms: i64) {
        let n = self.raised_within(at_ms, FLOOD_WINDOW_MS);
        if !self.flood && n > FLOOD_ENTER {
            self.flood = true;
        } else if self.flood && n < FLOOD_EXIT {
            self.flood = false;
        }
    }

    /// Alarms raised in the hour before `at_ms` (one operator: the rate per operator-hour).
    pub fn rate_per_hour(&self, at_ms: i64) -> f64 {
        self.raised_within(at_ms, 3_600_000) as f64
    }

    /// The list as an operator reads it: unacknowledged first, then by priority (high
    /// first), newest first; shelved last.
    pub fn ordered(&self) -> Vec<&ManagedAlarm> {
        let rank = |a: &ManagedAlarm| match a.state {
            AlarmState::ActiveUnacknowledged => 0,
            AlarmState::ClearedUnacknowledged => 1,
            AlarmState::ActiveAcknowledged => 2,
            AlarmState::Shelved { .. } => 3,
        };
        let mut v: Vec<&ManagedAlarm> = self.alarms.values().collect();
        v.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(b.priority.cmp(&a.priority))
                .then(b.raised_ms.cmp(&a.raised_ms))
                .then(a.key.cmp(&b.key))
        });
        v
    }

    /// The book as it stood at `at_ms`, rebuilt from its audit log (every transition at or
    /// before `at_ms`, oldest first): each transition is applied again through the same
    /// methods that made it, so states, acknowledgements, shelving, chatter, flood and rate
    /// come out as the live book had them. Transitions that no longer apply (a log cut by
    /// retention) are skipped.
    pub fn replay(log: &[Transition], at_ms: i64) -> AlarmBook {
        let mut b = AlarmBook::default();
        // The live book judges the flood every frame: between transitions the count only
        // falls, as each raise leaves the window, so the flood is judged at those moments.
        let mut judged = i64::MIN;
        let mut judge_until = |b: &mut AlarmBook, to_ms: i64| {
            let leaving: Vec<i64> = b
                .raises
                .iter()
                .map(|r| r + FLOOD_WINDOW_MS)
                .filter(|l| *l > judged && *l <= to_ms)
                .collect();
            for l in leaving {
                b.judge_flood(l);
            }
            judged = judged.max(to_ms);
        };
        for t in log.iter().filter(|t| t.at_ms <= at_ms) {
            judge_until(&mut b, t.at_ms);
            let severity = t.key.rsplit_once('#').and_then(|(_, s)| Severity::parse(s));
            let _ = match (t.action, severity) {
                (Action::Raise, Some(s)) => {
                    b.raise(t.at_ms, &t.device, s, t.priority, &t.note);
                    Ok(())
                }
                (Action::Clear, Some(s)) => {
                    b.clear(t.at_ms, &t.device, s);
                    Ok(())
                }
                (Action::Acknowledge, _) => {
                    b.acknowledge(t.at_ms, &t.key, t.operator.as_deref().unwrap_or(""))
                }
                (Action::Shelve, _) => b.shelve(
                    t.at_ms,
                    &t.key,
                    &t.note,
                    t.until_ms.unwrap_or(i64::MAX),
                    t.operator.as_deref().unwrap_or(""),
                ),
                (Action::Unshelve, _) => b.unshelve(t.at_ms, &t.key, t.operator.as_deref()),
                (Action::Expire, _) => {
                    b.tick(t.at_ms);
                    Ok(())
                }
                (Action::Restart, _) => {
                    b.alarms.remove(&t.key);
                    Ok(())
                }
                (Action::Raise | Action::Clear, None) => Ok(()),
            };
        }
        judge_until(&mut b, at_ms);
        b.tick(at_ms);
        b.pending.clear();
        b
    }

    /// Ends every alarm on the list at `at_ms` with a [`Action::Restart`] transition (a new
    /// run of the twin starts from an empty desk); returns them for the audit log.
    pub fn close_for_restart(&mut self, at_ms: i64) -> Vec<Transition> {
        let keys: Vec<String> = self.alarms.keys().cloned().collect();
        for k in keys {
            let a = self.alarms.remove(&k).expect("present");
            self.pending.push(Transition {
                at_ms,
                action: Action::Restart,
                key: a.key.clone(),
                device: a.device.clone(),
                priority: a.priority,
                from: Some(a.state.as_str().to_string()),
                to: None,
                operator: None,
                note: "the twin restarted: raised again if the condition still holds".into(),
                until_ms: None,
            });
        }
        self.take_transitions()
    }

    /// The transitions since last taken (for the audit log).
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.pending)
    }
}

/// The alarm desk: the book, the priority rules, and the operator configured for this screen
/// (who acknowledgements and shelving are recorded as).
#[derive(bevy::prelude::Resource, Debug, Clone)]
pub struct AlarmDesk {
    pub book: AlarmBook,
    pub rules: Vec<PriorityRule>,
    pub operator: String,
    /// Actions refused, with why (newest last, at most 50): shown, never dropped silently.
    pub refused: VecDeque<String>,
}

impl Default for AlarmDesk {
    fn default() -> Self {
        AlarmDesk {
            book: AlarmBook::default(),
            rules: default_rules(),
            operator: "operator".into(),
            refused: VecDeque::new(),
        }
    }
}

/// What an operator does at the desk (panels write these; [`annunciate`] applies them).
#[derive(bevy::prelude::Message, Debug, Clone, PartialEq)]
pub enum AlarmAction {
    Acknowledge(Vec<String>),
    Shelve {
        key: String,
        reason: String,
        until_ms: i64,
    },
    Unshelve(String),
}

/// Stockholm's position for judging night (the sun below the horizon).
const STOCKHOLM: (f64, f64) = (59.33, 18.07);

/// Takes this frame's raised and cleared conditions into the book (priority by rule, from the
/// device's kind, the severity and whether the sun is down), applies the operators' actions,
/// and moves the book's time on (shelving expiry, flood, chatter). Live edge only: in playback
/// the list comes from the audit log.
pub fn annunciate(
    clock: bevy::prelude::Res<tvilling_sensors::clock::TwinClock>,
    mut desk: bevy::prelude::ResMut<AlarmDesk>,
    mut changes: bevy::prelude::MessageReader<crate::alarms::AlarmChanged>,
    mut actions: bevy::prelude::MessageReader<AlarmAction>,
    registry: Option<bevy::prelude::Res<tvilling_sensors::registry::DeviceRegistry>>,
) {
    let now = clock.edge_ms;
    let desk = &mut *desk;
    for c in changes.read() {
        if c.raised {
            let kind = registry
                .as_ref()
                .and_then(|r| r.read().get(&c.device).map(|d| d.kind.as_str()))
                .unwrap_or("device");
            let night = tvilling_geo::sun::sun_position(STOCKHOLM.0, STOCKHOLM.1, c.at_ms / 1000)
                .elevation_deg
                < 0.0;
            let p = priority_of(&desk.rules, kind, c.severity, night);
            desk.book.raise(c.at_ms, &c.device, c.severity, p, &c.text);
        } else {
            desk.book.clear(c.at_ms, &c.device, c.severity);
        }
    }
    let operator = desk.operator.clone();
    let live = clock.is_live();
    for a in actions.read() {
        let result = match a {
            _ if !live => {
                Err("the list shown is the past (playback): go live to act on alarms".to_string())
            }
            AlarmAction::Acknowledge(keys) => {
                let n = desk
                    .book
                    .acknowledge_all(now, keys.iter().map(String::as_str), &operator);
                if n == 0 && !keys.is_empty() {
                    Err(format!(
                        "nothing to acknowledge among {} alarms",
                        keys.len()
                    ))
                } else {
                    Ok(())
                }
            }
            AlarmAction::Shelve {
                key,
                reason,
                until_ms,
            } => desk
                .book
                .shelve(now, key, reason, *until_ms, &operator)
                .map_err(|e| e.to_string()),
            AlarmAction::Unshelve(key) => desk
                .book
                .unshelve(now, key, Some(&operator))
                .map_err(|e| e.to_string()),
        };
        if let Err(why) = result {
            bevy::log::warn!("alarm action refused: {why}");
            if desk.refused.len() == 50 {
                desk.refused.pop_front();
            }
            desk.refused.push_back(why);
        }
    }
    desk.book.tick(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000;

    fn state(b: &AlarmBook, device: &str, s: Severity) -> Option<&'static str> {
        b.alarms
            .get(&AlarmBook::key(device, s))
            .map(|a| a.state.as_str())
    }

    #[test]
    fn the_desk_annunciates_derived_alarms_by_rule_and_applies_the_operators_actions() {
        use bevy::prelude::*;
        use tvilling_sensors::clock::TwinClock;
        use tvilling_sensors::registry::{DeviceKind, DeviceRegistry};
        use tvilling_sensors::state::{Health, Liveness, device_bundle};
        let mut app = App::new();
        app.add_plugins(tvilling_sensors::apply::SensorApplyPlugin)
            .add_message::<crate::alarms::AlarmChanged>()
            .add_message::<AlarmAction>()
            .init_resource::<crate::alarms::Alarms>()
            .insert_resource(AlarmDesk {
                operator: "Kari".into(),
                ..Default::default()
            })
            // 2026-11-23 12:00 UTC.
            .insert_resource(TwinClock::held(1_795_435_200_000))
            .add_systems(Update, (crate::alarms::derive_alarms, annunciate).chain());
        let head = app
            .world_mut()
            .spawn(device_bundle("head-1", DeviceKind::SignalHead))
            .id();
        app.world_mut().resource_mut::<DeviceRegistry>().register(
            "head-1",
            DeviceKind::SignalHead,
            head,
            Vec::new(),
        );
        {
            let mut l = app.world_mut().get_mut::<Liveness>(head).expect("l");
            l.health = Health::Fault;
            l.fault = Some("dark".into());
        }
        app.update();
        let key = AlarmBook::key("head-1", crate::alarms::Severity::Fault);
        let desk = app.world().resource::<AlarmDesk>();
        let a = &desk.book.alarms[&key];
        assert_eq!(
            (a.priority, a.state.as_str()),
            (Priority::High, "active unacknowledged")
        );
        app.world_mut()
            .write_message(AlarmAction::Acknowledge(vec![key.clone()]));
        app.world_mut()
            .write_message(AlarmAction::Unshelve(key.clone()));
        app.update();
        let desk = app.world().resource::<AlarmDesk>();
        let a = &desk.book.alarms[&key];
        assert_eq!(a.state.as_str(), "active acknowledged");
        assert_eq!(
            a.acknowledged.as_ref().map(|(_, o)| o.as_str()),
            Some("Kari")
        );
        assert_eq!(
            desk.refused.iter().collect::<Vec<_>>(),
            [&format!("alarm {key} is not shelved")],
            "a refused action says why"
        );
    }

    #[test]
    fn raise_acknowledge_clear_and_the_other_way_round() {
        let mut b = AlarmBook::default();
        b.raise(0, "head/1", Severity::Fault, Priority::High, "dark");
        assert_eq!(
            state(&b, "head/1", Severity::Fault),
            Some("active unacknowledged")
        );
        let k = AlarmBook::key("head/1", Severity::Fault);
        b.acknowledge(M, &k, "Anna").expect("ack");
        assert_eq!(
            state(&b, "head/1", Severity::Fault),
            Some("active acknowledged")
        );
        assert_eq!(b.alarms[&k].acknowledged, Some((M, "Anna".into())));
        assert_eq!(
            b.acknowledge(M, &k, "Anna"),
            Err(ActionError::NothingToAcknowledge(k.clone()))
        );
        b.clear(2 * M, "head/1", Severity::Fault);
        assert!(
            b.alarms.is_empty(),
            "acknowledged and cleared: back to normal"
        );
        // Cleared first: it waits, cleared, for the operator.
        b.raise(
            3 * M,
            "lamp/9",
            Severity::Fault,
            Priority::Low,
            "dark at night",
        );
        b.clear(4 * M, "lamp/9", Severity::Fault);
        assert_eq!(
            state(&b, "lamp/9", Severity::Fault),
            Some("cleared unacknowledged")
        );
        let k9 = AlarmBook::key("lamp/9", Severity::Fault);
        assert_eq!(b.acknowledge_all(5 * M, [k9.as_str(), "nothing"], "Bo"), 1);
        assert!(b.alarms.is_empty());
        let t = b.take_transitions();
        let path: Vec<(Option<&str>, Option<&str>)> = t
            .iter()
            .map(|t| (t.from.as_deref(), t.to.as_deref()))
            .collect();
        assert_eq!(
            path,
            [
                (None, Some("active unacknowledged")),
                (Some("active unacknowledged"), Some("active acknowledged")),
                (Some("active acknowledged"), None),
                (None, Some("active unacknowledged")),
                (
                    Some("active unacknowledged"),
                    Some("cleared unacknowledged")
                ),
                (Some("cleared unacknowledged"), None),
            ]
        );
        assert_eq!(t[1].operator.as_deref(), Some("Anna"));
        assert!(b.take_transitions().is_empty(), "taken once");
    }

    #[test]
    fn a_shelved_alarm_is_suppressed_until_it_expires() {
        let mut b = AlarmBook::default();
        b.raise(
            0,
            "air/1",
            Severity::Exceedance,
            Priority::Medium,
            "NO2 over",
        );
        let k = AlarmBook::key("air/1", Severity::Exceedance);
        assert_eq!(
            b.shelve(M, &k, " ", 10 * M, "Anna"),
            Err(ActionError::BadShelving)
        );
        b.shelve(M, &k, "roadworks on Hornsgatan", 30 * M, "Anna")
            .expect("shelve");
        assert_eq!(
            b.ordered().last().map(|a| a.state.as_str()),
            Some("shelved")
        );
        // Raised and cleared while shelved: nothing is annunciated.
        b.clear(5 * M, "air/1", Severity::Exceedance);
        b.raise(
            6 * M,
            "air/1",
            Severity::Exceedance,
            Priority::Medium,
            "NO2 over",
        );
        assert_eq!(state(&b, "air/1", Severity::Exceedance), Some("shelved"));
        b.tick(29 * M);
        assert_eq!(state(&b, "air/1", Severity::Exceedance), Some("shelved"));
        b.tick(30 * M);
        assert_eq!(
            state(&b, "air/1", Severity::Exceedance),
            Some("active unacknowledged"),
            "still over the limit at expiry: annunciated again"
        );
        // Shelved and gone by expiry: it leaves the list.
        b.shelve(31 * M, &k, "known", 40 * M, "Bo").expect("shelve");
        b.clear(32 * M, "air/1", Severity::Exceedance);
        b.tick(40 * M);
        assert!(b.alarms.is_empty());
        let notes: Vec<String> = b.take_transitions().into_iter().map(|t| t.note).collect();
        assert!(notes.contains(&"roadworks on Hornsgatan".to_string()));
        assert!(notes.contains(&"shelving expired".to_string()));
    }

    #[test]
    fn the_book_replayed_from_its_log_is_the_book_as_it_stood() {
        // Two hours of a desk, a frame every 5 s: conditions raised and cleared (bursts that
        // flood, one device that chatters), operators acknowledging, shelving and
        // unshelving. At every minute, the book rebuilt from the log up to then equals the
        // live book.
        let mut live = AlarmBook::default();
        let mut log: Vec<Transition> = Vec::new();
        let mut seed: u64 = 12_345;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let devices: Vec<String> = (0..25).map(|i| format!("lamp/{i}")).collect();
        let mut checked = 0;
        let (mut shelved, mut acked, mut flooded) = (0, 0, false);
        for frame in 0..(2 * 60 * 12) {
            let t = frame * 5_000;
            let burst = (1_800_000..1_900_000).contains(&t);
            if burst || next(6) == 0 {
                let d = &devices[next(25) as usize];
                let s = [Severity::Fault, Severity::Stale][next(2) as usize];
                live.raise(t, d, s, Priority::Low, &format!("{d} {}", s.as_str()));
            }
            if t % 15_000 == 0 && t < 300_000 {
                live.raise(t, "head/9", Severity::Stale, Priority::Medium, "silent");
            }
            if next(5) == 0 {
                let d = &devices[next(25) as usize];
                live.clear(t, d, Severity::Fault);
                live.clear(t, "head/9", Severity::Stale);
            }
            let keys: Vec<String> = live.alarms.keys().cloned().collect();
            if !keys.is_empty() && next(8) == 0 {
                let k = &keys[next(keys.len() as u64) as usize];
                match next(3) {
                    0 => acked += live.acknowledge(t, k, "Kari").is_ok() as usize,
                    1 => {
                        shelved += live
                            .shelve(t, k, "lamp crew on site", t + 600_000, "Bo")
                            .is_ok() as usize
                    }
                    _ => {
                        let _ = live.unshelve(t, k, Some("Bo"));
                    }
                }
            }
            live.tick(t);
            flooded |= live.flood;
            log.extend(live.take_transitions());
            if t % 60_000 == 0 {
                let past = AlarmBook::replay(&log, t);
                assert_eq!(past.alarms, live.alarms, "the list at {t}");
                assert_eq!(past.flood, live.flood, "the flood at {t}");
                assert_eq!(past.rate_per_hour(t), live.rate_per_hour(t), "rate at {t}");
                checked += 1;
            }
        }
        assert_eq!(checked, 120);
        assert!(
            acked > 5 && shelved > 5 && flooded,
            "{acked} {shelved} {flooded}"
        );
        assert!(log.iter().any(|t| t.action == Action::Expire));
        // An earlier moment is not the latest one.
        assert_ne!(
            AlarmBook::replay(&log, 30 * M).alarms,
            AlarmBook::replay(&log, 90 * M).alarms
        );
        // A restart ends every alarm on the list; the replay after it starts empty.
        let end = 2 * 60 * M;
        let closing = live.close_for_restart(end);
        assert!(!closing.is_empty() && live.alarms.is_empty());
        log.extend(closing);
        assert!(AlarmBook::replay(&log, end).alarms.is_empty());
    }

    #[test]
    fn a_flood_starts_above_ten_in_ten_minutes_and_ends_below_five() {
        let mut b = AlarmBook::default();
        for i in 0..10 {
            b.raise(
                i * 10_000,
                &format!("d{i}"),
                Severity::Stale,
                Priority::Low,
                "silent",
            );
        }
        assert!(!b.flood, "ten is not a flood");
        b.raise(100_000, "d10", Severity::Stale, Priority::Low, "silent");
        assert!(b.flood, "eleven in ten minutes is");
        // Ten minutes on, the eleven age out of the window one by one.
        b.tick(9 * M);
        assert!(b.flood);
        b.tick(10 * M + 50_000);
        assert!(b.flood, "five still in the window");
        b.tick(10 * M + 60_000);
        assert!(!b.flood, "four: over");
        assert_eq!(b.rate_per_hour(10 * M + 60_000), 11.0);
        assert!(b.rate_per_hour(10 * M) > EEMUA_RATE_PER_HOUR);
    }

    #[test]
    fn the_same_alarm_three_times_in_a_minute_chatters() {
        let mut b = AlarmBook::default();
        let k = AlarmBook::key("head/2", Severity::Stale);
        for (i, t) in [0, 20_000, 40_000].into_iter().enumerate() {
            b.raise(t, "head/2", Severity::Stale, Priority::Medium, "silent");
            assert_eq!(b.alarms[&k].chattering, i == 2, "raise {i}");
            b.clear(t + 5_000, "head/2", Severity::Stale);
        }
        b.tick(2 * M);
        assert!(!b.alarms[&k].chattering, "quiet for a minute");
    }

    #[test]
    fn priorities_come_from_the_first_matching_rule_and_order_the_list() {
        let rules = default_rules();
        assert_eq!(
            priority_of(&rules, "signal_head", Severity::Fault, false),
            Priority::High
        );
        assert_eq!(
            priority_of(&rules, "lamp", Severity::Fault, true),
            Priority::Low
        );
        assert_eq!(
            priority_of(&rules, "air_sensor", Severity::Stale, false),
            Priority::Medium
        );
        assert_eq!(Priority::parse(" High"), Some(Priority::High));
        let mut b = AlarmBook::default();
        b.raise(0, "lamp/1", Severity::Fault, Priority::Low, "");
        b.raise(M, "head/1", Severity::Fault, Priority::High, "");
        b.raise(2 * M, "air/1", Severity::Exceedance, Priority::Medium, "");
        b.acknowledge(3 * M, &AlarmBook::key("head/1", Severity::Fault), "A")
            .expect("ack");
        let order: Vec<&str> = b.ordered().iter().map(|a| a.device.as_str()).collect();
        assert_eq!(
            order,
            ["air/1", "lamp/1", "head/1"],
            "unacknowledged first, then priority"
        );
    }
}
