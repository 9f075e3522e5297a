//! One retry policy for every series of tries: joins (first contact), sends, attachment fetches,
//! room creation and the sync loop, each with its own numbers. A pause doubles after each
//! failure up to a cap; a series ends after a number of tries or once the next pause would end
//! past its time, whichever comes first. A policy bounds one series, never the fate of the
//! work: what a spent series leaves is finished later (the next start, or the caller's own
//! recovery).

use std::time::{Duration, Instant};

/// How one series of tries is paced and bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The pause before the second try.
    first: Duration,
    /// The longest pause.
    max: Duration,
    /// Most tries in a series (`None`: no bound by count).
    tries: Option<u32>,
    /// Longest series (`None`: no bound by time).
    within: Option<Duration>,
}

impl Policy {
    /// Pauses from `first`, doubling up to `max`, without end.
    pub const fn doubling(first: Duration, max: Duration) -> Policy {
        Policy {
            first,
            max,
            tries: None,
            within: None,
        }
    }

    /// At most `tries` tries.
    pub const fn tries(self, tries: u32) -> Policy {
        Policy {
            tries: Some(tries),
            ..self
        }
    }

    /// No try starts after a pause that would end past `within` from the first try.
    pub const fn within(self, within: Duration) -> Policy {
        Policy {
            within: Some(within),
            ..self
        }
    }

    /// A new series (its clock starts now).
    pub fn start(self) -> Series {
        Series {
            policy: self,
            started: Instant::now(),
            failures: 0,
            pause: self.first,
        }
    }
}

/// One series of tries under a [`Policy`].
#[derive(Debug)]
pub struct Series {
    policy: Policy,
    started: Instant,
    failures: u32,
    pause: Duration,
}

impl Series {
    /// A try failed: the pause before the next one, or `None` when the series is spent.
    pub fn failed(&mut self) -> Option<Duration> {
        self.failures += 1;
        if self
            .policy
            .tries
            .is_some_and(|tries| self.failures >= tries)
        {
            return None;
        }
        let pause = self.pause;
        if self
            .policy
            .within
            .is_some_and(|within| self.started.elapsed() + pause > within)
        {
            return None;
        }
        self.pause = (self.pause * 2).min(self.policy.max);
        Some(pause)
    }

    /// Tries that failed so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A try succeeded in a series that goes on (the sync loop): back to the first pause.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.pause = self.policy.first;
        self.started = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn pauses(policy: Policy, failures: usize) -> Vec<Option<Duration>> {
        let mut series = policy.start();
        (0..failures).map(|_| series.failed()).collect()
    }

    #[test]
    fn pauses_double_up_to_the_cap_and_tries_are_counted() {
        let join = Policy::doubling(500 * MS, 30_000 * MS).tries(8);
        let got = pauses(join, 8);
        let want: Vec<Option<Duration>> = [500u32, 1000, 2000, 4000, 8000, 16000, 30000]
            .iter()
            .map(|ms| Some(MS * *ms))
            .chain([None])
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_series_ends_when_the_next_pause_would_pass_its_time() {
        let send = Policy::doubling(500 * MS, 15_000 * MS).within(2_000 * MS);
        // 0.5 s, then 1 s (1.5 s in all), then 2 s would end at 3.5 s: spent.
        assert_eq!(pauses(send, 3), vec![Some(500 * MS), Some(1000 * MS), None]);
        let none = Policy::doubling(500 * MS, 15_000 * MS).within(Duration::ZERO);
        assert_eq!(pauses(none, 1), vec![None]);
    }

    #[test]
    fn a_long_running_series_starts_over_after_a_success() {
        let mut sync = Policy::doubling(500 * MS, 30_000 * MS).start();
        for _ in 0..10 {
            assert!(sync.failed().is_some(), "no bound: never spent");
        }
        assert_eq!(sync.failed(), Some(30_000 * MS));
        sync.succeeded();
        assert_eq!((sync.failed(), sync.failures()), (Some(500 * MS), 1));
    }
}
