//! Seeded network chaos for [`crate::RecordingProxy`]: for a share of the bot's requests of
//! chosen kinds, the proxy answers 500 or 429, holds the request and then drops the
//! connection, drops it before or after forwarding, or delays it. Which request gets which
//! fault depends only on the seed, the request's kind and its place among the requests of that
//! kind, so a run can be repeated as far as the bot's own timing allows.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What a request does, as far as chaos is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `/sync` (sliding sync or v2).
    Sync,
    /// Sending or redacting an event in a room (`/rooms/…/send/…`, `/redact/…`).
    Send,
    /// Reading or writing room state (`/rooms/…/state…`).
    State,
    /// Making, joining, leaving, forgetting rooms, inviting (`/createRoom`, `/join`, …).
    Membership,
    /// Anything under a media path.
    Media,
    /// Reading a room's history (`/messages`, `/relations`, `/context`, `/event`).
    History,
    /// Account data, global or per room (the bot's records).
    AccountData,
    /// Everything else: keys, to-device messages, login, `whoami`, filters, profile.
    Other,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 8] = [
        Kind::Sync,
        Kind::Send,
        Kind::State,
        Kind::Membership,
        Kind::Media,
        Kind::History,
        Kind::AccountData,
        Kind::Other,
    ];

    /// The kinds chaos hits unless told otherwise: sync, send, state, membership, media.
    pub const DEFAULT: [Kind; 5] = [
        Kind::Sync,
        Kind::Send,
        Kind::State,
        Kind::Membership,
        Kind::Media,
    ];

    /// The kind of a request to `path` (the method does not matter: a state read and a state
    /// write are both [`Kind::State`]).
    pub fn of(path: &str) -> Kind {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let has = |name: &str| segments.contains(&name);
        if segments.last() == Some(&"sync") {
            Kind::Sync
        } else if has("media") {
            Kind::Media
        } else if has("account_data") {
            Kind::AccountData
        } else if has("rooms") && (has("send") || has("redact")) {
            Kind::Send
        } else if has("rooms") && has("state") {
            Kind::State
        } else if has("createRoom") || Self::is_membership(&segments) {
            Kind::Membership
        } else if has("rooms")
            && ["messages", "relations", "context", "event"]
                .iter()
                .any(|s| has(s))
        {
            Kind::History
        } else {
            Kind::Other
        }
    }

    /// `/join/<room>` or `/rooms/<room>/{join,invite,leave,forget,kick,ban}`.
    fn is_membership(segments: &[&str]) -> bool {
        let verbs = ["join", "invite", "leave", "forget", "kick", "ban"];
        segments
            .windows(2)
            .any(|w| w[0] == "join" && w[1].starts_with(['!', '#', '%']))
            || (segments.contains(&"rooms")
                && segments.last().is_some_and(|last| verbs.contains(last)))
    }

    /// The kind's name, as in `LM_CHAOS_KINDS`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sync => "sync",
            Kind::Send => "send",
            Kind::State => "state",
            Kind::Membership => "membership",
            Kind::Media => "media",
            Kind::History => "history",
            Kind::AccountData => "account_data",
            Kind::Other => "other",
        }
    }

    /// Parses a comma-separated list of kind names (`all` for every kind).
    pub fn parse_list(text: &str) -> Result<Vec<Kind>, String> {
        if text.trim() == "all" {
            return Ok(Kind::ALL.to_vec());
        }
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| {
                Kind::ALL
                    .into_iter()
                    .find(|k| k.name() == name)
                    .ok_or_else(|| format!("unknown request kind {name:?}"))
            })
            .collect()
    }
}

/// What the proxy does to a request chaos picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Answers 500 without forwarding.
    Status500,
    /// Answers 429 `M_LIMIT_EXCEEDED` with `Retry-After` (seconds) without forwarding.
    Status429 {
        /// The `Retry-After` value.
        retry_after_secs: u64,
    },
    /// Holds the request without forwarding it, then drops the connection.
    HangThenReset {
        /// How long the request is held.
        hold: Duration,
    },
    /// Drops the connection without forwarding.
    ResetBefore,
    /// Forwards the request (the homeserver acts on it), then drops the connection.
    ResetAfter,
    /// Waits, then forwards the request as usual.
    Delay {
        /// How long.
        by: Duration,
    },
}

impl Action {
    /// The action's name without its parameter, for counting.
    pub fn name(self) -> &'static str {
        match self {
            Action::Status500 => "500",
            Action::Status429 { .. } => "429",
            Action::HangThenReset { .. } => "hang",
            Action::ResetBefore => "reset_before",
            Action::ResetAfter => "reset_after",
            Action::Delay { .. } => "delay",
        }
    }
}

/// Settings of the chaos: which share of which requests, and how long hangs and delays are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaosConfig {
    /// The seed; print it so a run can be repeated.
    pub seed: u64,
    /// The share of matching requests that get a fault, in thousandths (50 = 5 %).
    pub per_mille: u32,
    /// The kinds of requests that can get a fault.
    pub kinds: Vec<Kind>,
    /// Shortest and longest hold of [`Action::HangThenReset`] (the bot's request timeout is
    /// 60 s, so keep the longest below it).
    pub hang: (Duration, Duration),
    /// Longest [`Action::Delay`].
    pub max_delay: Duration,
}

impl ChaosConfig {
    /// 5 % of the [`Kind::DEFAULT`] requests, hangs of 10–40 s, delays up to 3 s.
    pub fn new(seed: u64) -> ChaosConfig {
        ChaosConfig {
            seed,
            per_mille: 50,
            kinds: Kind::DEFAULT.to_vec(),
            hang: (Duration::from_secs(10), Duration::from_secs(40)),
            max_delay: Duration::from_secs(3),
        }
    }

    /// The fault for the `index`-th request (from 0) of `kind`, if it gets one.
    pub fn decide(&self, kind: Kind, index: u64) -> Option<Action> {
        if !self.kinds.contains(&kind) {
            return None;
        }
        let roll = mix(mix(mix(self.seed) ^ kind as u64) ^ index);
        if roll % 1000 >= u64::from(self.per_mille) {
            return None;
        }
        let choice = mix(roll);
        let param = mix(choice);
        Some(match choice % 6 {
            0 => Action::Status500,
            1 => Action::Status429 {
                retry_after_secs: 1 + param % 3,
            },
            2 => Action::HangThenReset {
                hold: between(self.hang.0, self.hang.1, param),
            },
            3 => Action::ResetBefore,
            4 => Action::ResetAfter,
            _ => Action::Delay {
                by: between(Duration::ZERO, self.max_delay, param),
            },
        })
    }
}

/// A duration from `low` to `high` picked by `roll`.
fn between(low: Duration, high: Duration, roll: u64) -> Duration {
    let span = high.saturating_sub(low).as_millis() as u64;
    low + Duration::from_millis(roll % span.max(1))
}

/// splitmix64's finaliser: a good 64-bit mix of `z`.
pub fn mix(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small seedable random source (splitmix64) for tests' choices.
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A source starting at `seed`.
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Whether an event with a chance of `per_mille` thousandths happens.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// A duration from `low_ms` to `high_ms` milliseconds.
    pub fn between_ms(&mut self, low_ms: u64, high_ms: u64) -> Duration {
        Duration::from_millis(low_ms + self.below(high_ms.saturating_sub(low_ms)))
    }
}

/// One fault the proxy injected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaosHit {
    /// When the request arrived, from the proxy's start.
    pub at_ms: u128,
    /// When the request arrived, by the clock (to match the bot's log lines).
    pub when: std::time::SystemTime,
    /// Its method.
    pub method: String,
    /// Its path.
    pub path: String,
    /// Its kind.
    pub kind: Kind,
    /// What was done to it.
    pub action: Action,
}

/// How many faults of each action each kind got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChaosCounts(pub BTreeMap<(Kind, &'static str), usize>);

impl ChaosCounts {
    /// Counts `hits`.
    pub fn of(hits: &[ChaosHit]) -> ChaosCounts {
        let mut counts = BTreeMap::new();
        for hit in hits {
            *counts.entry((hit.kind, hit.action.name())).or_default() += 1;
        }
        ChaosCounts(counts)
    }

    /// All faults.
    pub fn total(&self) -> usize {
        self.0.values().sum()
    }
}

impl fmt::Display for ChaosCounts {
    /// `sync: 500×2 hang×1; send: reset_after×3` (kinds with no fault left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
        for ((kind, action), n) in &self.0 {
            kinds
                .entry(*kind)
                .or_default()
                .push(format!("{action}×{n}"));
        }
        let parts: Vec<String> = kinds
            .iter()
            .map(|(kind, actions)| format!("{}: {}", kind.name(), actions.join(" ")))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_sorted_by_kind() {
        let cases = [
            (
                "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
                Kind::Sync,
            ),
            ("/_matrix/client/v3/sync", Kind::Sync),
            (
                "/_matrix/client/v3/rooms/!a:x/send/m.room.message/t1",
                Kind::Send,
            ),
            ("/_matrix/client/v3/rooms/!a:x/redact/$e/t2", Kind::Send),
            (
                "/_matrix/client/v3/rooms/!a:x/state/m.space.child/!b:x",
                Kind::State,
            ),
            ("/_matrix/client/v3/rooms/!a:x/state", Kind::State),
            ("/_matrix/client/v3/createRoom", Kind::Membership),
            ("/_matrix/client/v3/join/!a:x", Kind::Membership),
            ("/_matrix/client/v3/rooms/!a:x/join", Kind::Membership),
            ("/_matrix/client/v3/rooms/!a:x/leave", Kind::Membership),
            ("/_matrix/client/v3/rooms/!a:x/forget", Kind::Membership),
            ("/_matrix/client/v3/rooms/!a:x/invite", Kind::Membership),
            ("/_matrix/client/v3/rooms/!a:x/joined_members", Kind::Other),
            ("/_matrix/client/v3/rooms/!a:x/messages", Kind::History),
            ("/_matrix/client/v1/rooms/!a:x/relations/$e", Kind::History),
            ("/_matrix/client/v1/media/download/x/y", Kind::Media),
            ("/_matrix/media/v3/upload", Kind::Media),
            (
                "/_matrix/client/v3/user/@b:x/account_data/org.lambda.matrix.leaving",
                Kind::AccountData,
            ),
            (
                "/_matrix/client/v3/user/@b:x/rooms/!a:x/account_data/org.lambda.matrix.dm",
                Kind::AccountData,
            ),
            ("/_matrix/client/v3/keys/upload", Kind::Other),
            (
                "/_matrix/client/v3/sendToDevice/m.room.encrypted/t3",
                Kind::Other,
            ),
            ("/_matrix/client/v3/login", Kind::Other),
        ];
        for (path, kind) in cases {
            assert_eq!(Kind::of(path), kind, "{path}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let config = ChaosConfig::new(42);
        let run = |c: &ChaosConfig| -> Vec<Option<Action>> {
            (0..2000).map(|i| c.decide(Kind::Send, i)).collect()
        };
        assert_eq!(run(&config), run(&config.clone()));
        assert_ne!(run(&config), run(&ChaosConfig::new(43)));
    }

    #[test]
    fn about_the_share_asked_for_gets_a_fault_and_every_action_occurs() {
        let config = ChaosConfig::new(7);
        let hits: Vec<Action> = (0..20_000)
            .filter_map(|i| config.decide(Kind::Sync, i))
            .collect();
        assert!(
            (800..1200).contains(&hits.len()),
            "{} of 20,000",
            hits.len()
        );
        let names: std::collections::BTreeSet<&str> = hits.iter().map(|a| a.name()).collect();
        assert_eq!(names.len(), 6, "{names:?}");
        for action in hits {
            match action {
                Action::HangThenReset { hold } => {
                    assert!((10..40).contains(&hold.as_secs()), "{hold:?}")
                }
                Action::Delay { by } => assert!(by < Duration::from_secs(3)),
                Action::Status429 { retry_after_secs } => {
                    assert!((1..=3).contains(&retry_after_secs))
                }
                _ => {}
            }
        }
    }

    #[test]
    fn kinds_not_chosen_are_left_alone() {
        let config = ChaosConfig {
            per_mille: 1000,
            kinds: vec![Kind::Send],
            ..ChaosConfig::new(1)
        };
        assert!(config.decide(Kind::Send, 0).is_some());
        assert!(config.decide(Kind::Sync, 0).is_none());
        assert_eq!(
            Kind::parse_list("sync, send").expect("names"),
            [Kind::Sync, Kind::Send]
        );
        assert_eq!(Kind::parse_list("all").expect("all").len(), 8);
        assert!(Kind::parse_list("sink").is_err());
    }

    #[test]
    fn counts_read_per_kind() {
        let hit = |kind, action| ChaosHit {
            at_ms: 0,
            when: std::time::SystemTime::UNIX_EPOCH,
            method: "PUT".into(),
            path: "/".into(),
            kind,
            action,
        };
        let counts = ChaosCounts::of(&[
            hit(Kind::Send, Action::ResetAfter),
            hit(Kind::Send, Action::ResetAfter),
            hit(Kind::Sync, Action::Status500),
        ]);
        assert_eq!(counts.total(), 3);
        assert_eq!(counts.to_string(), "sync: 500×1; send: reset_after×2");
    }
}
