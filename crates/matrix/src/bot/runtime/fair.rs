//! Permits shared fairly between people: at most `max` held at once; when one is free it goes
//! to the waiting person who holds the fewest, then to the one served longest ago, then to
//! whoever waited longest: one person's fifty rooms do not starve another's one. Used for platform calls
//! (`LAMBDA_MAX_CONCURRENT_ANSWERS`) and attachment bodies held in memory
//! (`MATRIX_MAX_CONCURRENT_DOWNLOADS`).

use super::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// A pool of fair permits; clone freely.
#[derive(Clone, Debug)]
pub(crate) struct FairPermits {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Permits held, by person.
    held: HashMap<String, usize>,
    /// Permits held in all.
    total: usize,
    /// Who waits, in arrival order: (person, handoff).
    waiting: Vec<(String, oneshot::Sender<Permit>)>,
    /// When each person holding or awaiting a permit was last given one (a count of grants).
    served: HashMap<String, u64>,
    /// Grants so far.
    grants: u64,
}

impl State {
    /// Gives `person` a permit.
    fn grant(&mut self, person: &str) {
        self.total += 1;
        self.grants += 1;
        *self.held.entry(person.to_owned()).or_default() += 1;
        self.served.insert(person.to_owned(), self.grants);
    }

    /// Forgets the people with nothing held or awaited (the maps stay as small as the work).
    fn prune(&mut self) {
        let waiting: std::collections::HashSet<&String> =
            self.waiting.iter().map(|(person, _)| person).collect();
        let held = &self.held;
        self.served
            .retain(|person, _| held.contains_key(person) || waiting.contains(person));
    }
}

/// One permit; given back when dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    shared: Arc<Shared>,
    person: String,
}

impl FairPermits {
    /// At most `max` permits at once (at least one).
    pub fn new(max: u32) -> FairPermits {
        FairPermits {
            shared: Arc::new(Shared {
                max: max.max(1) as usize,
                state: Mutex::default(),
            }),
        }
    }

    /// A permit for `person`, once one is theirs by the rule above. Dropping the future while
    /// it waits gives up its place (a permit handed to it meanwhile goes on to the next).
    pub async fn acquire(&self, person: &str) -> Permit {
        let receiver = {
            let mut state = lock(&self.shared.state);
            state.waiting.retain(|(_, sender)| !sender.is_closed());
            if state.total < self.shared.max && state.waiting.is_empty() {
                state.grant(person);
                return self.permit(person);
            }
            let (sender, receiver) = oneshot::channel();
            state.waiting.push((person.to_owned(), sender));
            receiver
        };
        match receiver.await {
            Ok(permit) => permit,
            // The pool is never dropped while a permit can be handed out.
            Err(_) => std::future::pending().await,
        }
    }

    /// Permits held now, for tests and metrics.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        lock(&self.shared.state).total
    }

    fn permit(&self, person: &str) -> Permit {
        Permit {
            shared: self.shared.clone(),
            person: person.to_owned(),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let handoff = {
            let mut state = lock(&self.shared.state);
            state.total -= 1;
            if let Some(held) = state.held.get_mut(&self.person) {
                *held -= 1;
                if *held == 0 {
                    state.held.remove(&self.person);
                }
            }
            // Waiters that gave up their place are gone.
            state.waiting.retain(|(_, sender)| !sender.is_closed());
            let next = (0..state.waiting.len()).min_by_key(|i| {
                let person = &state.waiting[*i].0;
                let held = state.held.get(person).copied().unwrap_or(0);
                let served = state.served.get(person).copied().unwrap_or(0);
                (held, served, *i)
            });
            let handoff = next.map(|i| {
                let (person, sender) = state.waiting.remove(i);
                state.grant(&person);
                (person, sender)
            });
            state.prune();
            handoff
        };
        if let Some((person, sender)) = handoff {
            let permit = Permit {
                shared: self.shared.clone(),
                person,
            };
            // A waiter gone since: the permit is dropped, and goes on to the next.
            drop(sender.send(permit));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn no_more_than_max_are_held_and_a_free_one_goes_to_who_holds_fewest() {
        let permits = FairPermits::new(2);
        let anna_1 = permits.acquire("anna").await;
        let anna_2 = permits.acquire("anna").await;
        assert_eq!(permits.held(), 2);
        // Anna's third and fourth wait; Bob comes after them.
        let (order, mut got) = tokio::sync::mpsc::unbounded_channel();
        for who in ["anna", "anna", "bob"] {
            let (permits, order) = (permits.clone(), order.clone());
            tokio::spawn(async move {
                let permit = permits.acquire(who).await;
                let _ = order.send(who);
                tokio::time::sleep(Duration::from_millis(50)).await;
                drop(permit);
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(permits.held(), 2, "the others wait");
        drop(anna_1);
        assert_eq!(
            got.recv().await,
            Some("bob"),
            "bob holds none: his turn first"
        );
        drop(anna_2);
        assert_eq!(got.recv().await, Some("anna"));
        assert_eq!(got.recv().await, Some("anna"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            lock(&permits.shared.state).served.is_empty(),
            "nothing kept of who was served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(permits.held(), 0, "every permit given back");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_loses_no_permit() {
        let permits = FairPermits::new(1);
        let first = permits.acquire("anna").await;
        let gave_up = tokio::time::timeout(Duration::from_millis(20), permits.acquire("bob")).await;
        assert!(gave_up.is_err(), "bob waited, then gave up");
        drop(first);
        let again = tokio::time::timeout(Duration::from_millis(100), permits.acquire("cleo"))
            .await
            .expect("the permit was not lost to bob's empty place");
        assert_eq!(permits.held(), 1);
        drop(again);
        assert_eq!(permits.held(), 0);
    }

    #[tokio::test]
    async fn with_none_held_the_one_served_longest_ago_goes_first() {
        let permits = FairPermits::new(1);
        let first = permits.acquire("anna").await;
        let (order, mut got) = tokio::sync::mpsc::unbounded_channel();
        // Anna waits with two more rooms before Bob comes.
        for who in ["anna", "anna", "bob"] {
            let (permits, order) = (permits.clone(), order.clone());
            tokio::spawn(async move {
                let permit = permits.acquire(who).await;
                let _ = order.send(who);
                drop(permit);
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(first);
        // Neither holds one when it frees: Bob was never served, Anna just was.
        assert_eq!(got.recv().await, Some("bob"));
        assert_eq!(got.recv().await, Some("anna"));
        assert_eq!(got.recv().await, Some("anna"));
    }
}
