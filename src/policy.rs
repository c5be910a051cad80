//! The restart policy (SPEC §4.4–4.5, §4.7) as plain functions of a service's
//! recovery [`Track`], the [`Settings`] and `now`.
//!
//! The Recovery actor owns one `Track` per service and only turns the returned
//! [`Decision`]s into timers and messages; everything that decides *whether* and
//! *when* to restart lives here, where it is table-tested with injected instants.

use crate::model::ErrorKind;
use std::time::Duration;
use tokio::time::Instant;

/// The limits that apply to one service (its effective monitoring and the safety block).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub max_restart_attempts: u32,
    pub restart_cooldown: Duration,
    pub stable_after: Duration,
    pub max_consecutive_failures: u32,
    /// The effective kill switch: no automatic action at all.
    pub kill_switch: bool,
    pub kill_port_conflicts: bool,
}

/// What Recovery remembers about one service between failures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Track {
    /// Restarts made in the current incident (the budget used).
    pub attempts: u32,
    /// When the last automatic restart was made, for the cooldown.
    pub last_restart: Option<Instant>,
    /// Failures since the last passing check.
    pub consecutive_failures: u32,
    /// This incident has been escalated: no more automatic restarts.
    pub escalated: bool,
    /// Healthy without interruption since then; `None` while failing.
    pub healthy_since: Option<Instant>,
    /// A restart is scheduled for then (the service is in backoff).
    pub pending_restart: Option<Instant>,
}

/// A failure as the service actor saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Failure {
    pub kind: ErrorKind,
    /// A health-check timeout while the process is alive, not yet given its
    /// second chance (one more interval with a doubled timeout).
    pub recheckable: bool,
}

/// Why a service is escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationReason {
    /// `max_restart_attempts` restarts in this incident did not help.
    BudgetSpent,
    /// `max_consecutive_failures_before_escalation` failures in a row.
    ConsecutiveFailures,
    /// The port is held by a foreign process and we may not kill it.
    PortConflict,
}

/// What to do about one failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// The kill switch is on: record it, act on nothing.
    Skip,
    /// Probe once more after an interval with a doubled timeout; not counted.
    Recheck,
    /// Restart at once; the attempt is already counted in the track.
    RestartNow,
    /// Wait out the cooldown; call [`on_cooldown_end`] at `until`.
    Backoff { until: Instant },
    /// A restart is already scheduled; the failure is only counted.
    AlreadyScheduled,
    /// Give up and tell a human (once: the track is now escalated).
    Escalate(EscalationReason),
    /// Already escalated in this incident; only counted.
    AlreadyEscalated,
}

/// Decide about one failure, updating the track.
pub fn on_failure(track: &mut Track, failure: Failure, s: &Settings, now: Instant) -> Decision {
    settle(track, s, now);
    if failure.kind == ErrorKind::Timeout && failure.recheckable {
        return Decision::Recheck;
    }
    track.healthy_since = None;
    track.consecutive_failures = track.consecutive_failures.saturating_add(1);
    if track.escalated {
        return Decision::AlreadyEscalated;
    }
    if track.consecutive_failures >= s.max_consecutive_failures {
        return escalate(track, EscalationReason::ConsecutiveFailures);
    }
    if s.kill_switch {
        return Decision::Skip;
    }
    if track.pending_restart.is_some() {
        return Decision::AlreadyScheduled;
    }
    if failure.kind == ErrorKind::PortConflict && !s.kill_port_conflicts {
        return escalate(track, EscalationReason::PortConflict);
    }
    restart_or_backoff(track, s, now)
}

/// The kill switch was turned off: a service whose failure was skipped while it
/// was on is recovered now, within the same budget and cooldown (no new failure
/// is counted).
pub fn resume(track: &mut Track, s: &Settings, now: Instant) -> Decision {
    if track.escalated {
        return Decision::AlreadyEscalated;
    }
    if track.pending_restart.is_some() {
        return Decision::AlreadyScheduled;
    }
    restart_or_backoff(track, s, now)
}

fn restart_or_backoff(track: &mut Track, s: &Settings, now: Instant) -> Decision {
    if track.attempts >= s.max_restart_attempts {
        return escalate(track, EscalationReason::BudgetSpent);
    }
    match track.last_restart {
        Some(last) if now < last + s.restart_cooldown => {
            let until = last + s.restart_cooldown;
            track.pending_restart = Some(until);
            Decision::Backoff { until }
        }
        _ => {
            count_restart(track, now);
            Decision::RestartNow
        }
    }
}

fn escalate(track: &mut Track, reason: EscalationReason) -> Decision {
    track.escalated = true;
    track.pending_restart = None;
    Decision::Escalate(reason)
}

fn count_restart(track: &mut Track, now: Instant) {
    track.attempts = track.attempts.saturating_add(1);
    track.last_restart = Some(now);
    track.pending_restart = None;
}

/// The cooldown of a [`Decision::Backoff`] has ended: restart now (`true`, the
/// attempt is counted) unless something made the restart moot meanwhile.
pub fn on_cooldown_end(track: &mut Track, s: &Settings, now: Instant) -> bool {
    let Some(due) = track.pending_restart else {
        return false; // cancelled: the service healed, was escalated or a human acted
    };
    if now < due {
        return false; // a stale timer; the current one fires later
    }
    if track.escalated || s.kill_switch {
        track.pending_restart = None;
        return false;
    }
    count_restart(track, now);
    true
}

/// A check passed after failures, or the first check after a start passed.
/// Returns `true` when a scheduled restart was cancelled because of it.
pub fn on_healthy(track: &mut Track, now: Instant) -> bool {
    track.consecutive_failures = 0;
    if track.healthy_since.is_none() {
        track.healthy_since = Some(now);
    }
    track.pending_restart.take().is_some()
}

/// End the incident when the service has been healthy for `stable_after`: the
/// budget and the cooldown start afresh. Returns `true` when something was reset.
pub fn settle(track: &mut Track, s: &Settings, now: Instant) -> bool {
    let stable = matches!(track.healthy_since, Some(t) if now.saturating_duration_since(t) >= s.stable_after);
    if !stable || track.escalated {
        return false;
    }
    let changed = track.attempts != 0 || track.last_restart.is_some();
    track.attempts = 0;
    track.last_restart = None;
    changed
}

/// A human acted on the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualAction {
    Start,
    Stop,
    Restart,
    /// `recover`: clear the escalation and every counter.
    Recover,
}

/// Apply a manual action: it never counts against the budget, but it takes the
/// service out of an escalation and cancels any scheduled restart.
pub fn on_manual(track: &mut Track, action: ManualAction) {
    match action {
        ManualAction::Recover => *track = Track::default(),
        ManualAction::Start | ManualAction::Stop | ManualAction::Restart => {
            track.escalated = false;
            track.pending_restart = None;
            track.healthy_since = None;
            track.consecutive_failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            max_restart_attempts: 3,
            restart_cooldown: Duration::from_secs(60),
            stable_after: Duration::from_secs(300),
            max_consecutive_failures: 5,
            kill_switch: false,
            kill_port_conflicts: true,
        }
    }

    fn fail(kind: ErrorKind) -> Failure {
        Failure {
            kind,
            recheckable: false,
        }
    }

    const EXIT: Failure = Failure {
        kind: ErrorKind::Exited,
        recheckable: false,
    };

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn first_restart_of_an_incident_is_immediate() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        assert_eq!(on_failure(&mut t, EXIT, &s, t0), Decision::RestartNow);
        assert_eq!((t.attempts, t.consecutive_failures), (1, 1));
        assert_eq!(t.last_restart, Some(t0));
    }

    #[test]
    fn a_second_failure_within_the_cooldown_backs_off_until_its_end() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        on_failure(&mut t, EXIT, &s, t0);
        let d = on_failure(&mut t, EXIT, &s, t0 + secs(5));
        assert_eq!(
            d,
            Decision::Backoff {
                until: t0 + secs(60)
            }
        );
        assert_eq!(t.attempts, 1, "a backoff is not an attempt yet");
        // More failures while waiting are only counted.
        assert_eq!(
            on_failure(&mut t, fail(ErrorKind::ConnectionRefused), &s, t0 + secs(6)),
            Decision::AlreadyScheduled
        );
        assert_eq!(t.consecutive_failures, 3);
        // Not earlier…
        assert!(!on_cooldown_end(&mut t, &s, t0 + secs(59)));
        // …and not never.
        assert!(on_cooldown_end(&mut t, &s, t0 + secs(60)));
        assert_eq!((t.attempts, t.pending_restart), (2, None));
    }

    #[test]
    fn a_failure_after_the_cooldown_restarts_at_once() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        on_failure(&mut t, EXIT, &s, t0);
        assert_eq!(
            on_failure(&mut t, EXIT, &s, t0 + secs(61)),
            Decision::RestartNow
        );
        assert_eq!(t.attempts, 2);
    }

    #[test]
    fn the_spent_budget_escalates_once() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        for i in 0..3 {
            assert_eq!(
                on_failure(&mut t, EXIT, &s, t0 + secs(100 * i)),
                Decision::RestartNow
            );
        }
        assert_eq!(
            on_failure(&mut t, EXIT, &s, t0 + secs(400)),
            Decision::Escalate(EscalationReason::BudgetSpent)
        );
        assert!(t.escalated);
        assert_eq!(
            on_failure(&mut t, EXIT, &s, t0 + secs(500)),
            Decision::AlreadyEscalated
        );
        assert_eq!(t.consecutive_failures, 5, "still counted");
    }

    #[test]
    fn consecutive_failures_reaching_the_threshold_escalate() {
        let mut s = settings();
        s.max_restart_attempts = 100;
        let (mut t, t0) = (Track::default(), Instant::now());
        let probe = fail(ErrorKind::BadStatus);
        let mut decisions = vec![];
        for i in 0..5 {
            decisions.push(on_failure(&mut t, probe, &s, t0 + secs(i)));
        }
        assert_eq!(decisions[0], Decision::RestartNow);
        assert!(matches!(decisions[1], Decision::Backoff { .. }));
        assert_eq!(decisions[2], Decision::AlreadyScheduled);
        assert_eq!(
            decisions[4],
            Decision::Escalate(EscalationReason::ConsecutiveFailures)
        );
        assert_eq!(t.pending_restart, None, "escalation cancels the restart");
        assert!(!on_cooldown_end(&mut t, &s, t0 + secs(60)));
    }

    #[test]
    fn a_passing_check_resets_consecutive_failures_and_cancels_backoff() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        on_failure(&mut t, EXIT, &s, t0);
        on_failure(&mut t, fail(ErrorKind::BadStatus), &s, t0 + secs(1));
        assert!(t.pending_restart.is_some());
        assert!(on_healthy(&mut t, t0 + secs(2)));
        assert_eq!(t.consecutive_failures, 0);
        assert!(!on_cooldown_end(&mut t, &s, t0 + secs(60)));
        assert_eq!(t.attempts, 1, "budget comes back only after stable_after");
    }

    #[test]
    fn stable_for_stable_after_gives_the_budget_back() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        for i in 0..3 {
            on_failure(&mut t, EXIT, &s, t0 + secs(100 * i));
        }
        on_healthy(&mut t, t0 + secs(201));
        assert!(
            !settle(&mut t, &s, t0 + secs(400)),
            "299 s is not stable yet"
        );
        assert_eq!(t.attempts, 3);
        assert!(settle(&mut t, &s, t0 + secs(501)));
        assert_eq!((t.attempts, t.last_restart), (0, None));
        // A new incident starts with an immediate restart.
        assert_eq!(
            on_failure(&mut t, EXIT, &s, t0 + secs(502)),
            Decision::RestartNow
        );
    }

    #[test]
    fn stability_is_noticed_lazily_at_the_next_failure() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        for i in 0..3 {
            on_failure(&mut t, EXIT, &s, t0 + secs(100 * i));
        }
        on_healthy(&mut t, t0 + secs(201));
        assert_eq!(
            on_failure(&mut t, EXIT, &s, t0 + secs(900)),
            Decision::RestartNow
        );
        assert_eq!(t.attempts, 1);
    }

    #[test]
    fn kill_switch_skips_but_counts() {
        let mut s = settings();
        s.kill_switch = true;
        let (mut t, t0) = (Track::default(), Instant::now());
        assert_eq!(on_failure(&mut t, EXIT, &s, t0), Decision::Skip);
        assert_eq!((t.attempts, t.consecutive_failures), (0, 1));
    }

    #[test]
    fn kill_switch_still_escalates_a_service_failing_in_a_row() {
        let mut s = settings();
        s.kill_switch = true;
        s.max_consecutive_failures = 2;
        let (mut t, t0) = (Track::default(), Instant::now());
        on_failure(&mut t, fail(ErrorKind::BadStatus), &s, t0);
        assert_eq!(
            on_failure(&mut t, fail(ErrorKind::BadStatus), &s, t0),
            Decision::Escalate(EscalationReason::ConsecutiveFailures)
        );
    }

    #[test]
    fn kill_switch_turned_on_during_backoff_cancels_the_restart() {
        let (mut t, mut s, t0) = (Track::default(), settings(), Instant::now());
        on_failure(&mut t, EXIT, &s, t0);
        on_failure(&mut t, EXIT, &s, t0 + secs(1));
        s.kill_switch = true;
        assert!(!on_cooldown_end(&mut t, &s, t0 + secs(60)));
        assert_eq!(t.pending_restart, None);
    }

    #[test]
    fn resume_after_the_kill_switch_restarts_without_counting_a_failure() {
        let mut s = settings();
        s.kill_switch = true;
        let (mut t, t0) = (Track::default(), Instant::now());
        assert_eq!(on_failure(&mut t, EXIT, &s, t0), Decision::Skip);
        s.kill_switch = false;
        assert_eq!(resume(&mut t, &s, t0 + secs(1)), Decision::RestartNow);
        assert_eq!((t.attempts, t.consecutive_failures), (1, 1));
        // A second resume inside the cooldown backs off.
        assert!(matches!(
            resume(&mut t, &s, t0 + secs(2)),
            Decision::Backoff { .. }
        ));
    }

    #[test]
    fn port_conflict_restarts_when_allowed_to_kill_the_holder() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        assert_eq!(
            on_failure(&mut t, fail(ErrorKind::PortConflict), &s, t0),
            Decision::RestartNow
        );
    }

    #[test]
    fn port_conflict_escalates_when_not_allowed_to_kill() {
        let mut s = settings();
        s.kill_port_conflicts = false;
        let (mut t, t0) = (Track::default(), Instant::now());
        assert_eq!(
            on_failure(&mut t, fail(ErrorKind::PortConflict), &s, t0),
            Decision::Escalate(EscalationReason::PortConflict)
        );
    }

    #[test]
    fn a_timeout_of_a_live_process_gets_one_recheck_uncounted() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        let first = Failure {
            kind: ErrorKind::Timeout,
            recheckable: true,
        };
        assert_eq!(on_failure(&mut t, first, &s, t0), Decision::Recheck);
        assert_eq!(t.consecutive_failures, 0);
        assert_eq!(
            on_failure(&mut t, fail(ErrorKind::Timeout), &s, t0 + secs(1)),
            Decision::RestartNow
        );
    }

    #[test]
    fn a_start_timeout_is_counted_at_once() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        assert_eq!(
            on_failure(&mut t, fail(ErrorKind::Timeout), &s, t0),
            Decision::RestartNow
        );
    }

    #[test]
    fn zero_budget_escalates_the_first_failure() {
        let mut s = settings();
        s.max_restart_attempts = 0;
        let (mut t, t0) = (Track::default(), Instant::now());
        assert_eq!(
            on_failure(&mut t, EXIT, &s, t0),
            Decision::Escalate(EscalationReason::BudgetSpent)
        );
    }

    #[test]
    fn zero_cooldown_never_backs_off() {
        let mut s = settings();
        s.restart_cooldown = Duration::ZERO;
        let (mut t, t0) = (Track::default(), Instant::now());
        on_failure(&mut t, EXIT, &s, t0);
        assert_eq!(on_failure(&mut t, EXIT, &s, t0), Decision::RestartNow);
    }

    #[test]
    fn recover_clears_everything() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        for _ in 0..5 {
            on_failure(&mut t, EXIT, &s, t0);
        }
        assert!(t.escalated);
        on_manual(&mut t, ManualAction::Recover);
        assert_eq!(t, Track::default());
    }

    #[test]
    fn a_manual_restart_lifts_the_escalation_but_not_the_budget() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        for i in 0..4 {
            on_failure(&mut t, EXIT, &s, t0 + secs(100 * i));
        }
        assert!(t.escalated);
        on_manual(&mut t, ManualAction::Restart);
        assert!(!t.escalated);
        assert_eq!(t.attempts, 3);
        assert_eq!(
            on_failure(&mut t, EXIT, &s, t0 + secs(1000)),
            Decision::Escalate(EscalationReason::BudgetSpent)
        );
    }

    #[test]
    fn a_manual_stop_cancels_a_scheduled_restart() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        on_failure(&mut t, EXIT, &s, t0);
        on_failure(&mut t, EXIT, &s, t0 + secs(1));
        on_manual(&mut t, ManualAction::Stop);
        assert!(!on_cooldown_end(&mut t, &s, t0 + secs(60)));
    }

    #[test]
    fn a_stale_cooldown_timer_does_not_restart_early() {
        let (mut t, s, t0) = (Track::default(), settings(), Instant::now());
        on_failure(&mut t, EXIT, &s, t0);
        on_failure(&mut t, EXIT, &s, t0 + secs(1));
        on_healthy(&mut t, t0 + secs(2));
        on_failure(&mut t, EXIT, &s, t0 + secs(30));
        // The pending restart is now due at t0+60 again; a timer from an older
        // backoff firing earlier must not act.
        assert!(!on_cooldown_end(&mut t, &s, t0 + secs(40)));
        assert!(on_cooldown_end(&mut t, &s, t0 + secs(60)));
    }
}
