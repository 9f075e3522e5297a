//! A fault the test proxy injects ([`crate::proxy::RecordingProxy::inject`]).

use std::time::Instant;

/// A fault the proxy injects: matching requests get a canned answer instead of the
/// homeserver's, either without reaching it or after it handled them (the homeserver did the
/// work, the client never heard).
#[derive(Clone, Debug)]
pub struct Fault {
    pub(crate) method: String,
    pub(crate) fragment: String,
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) remaining: Option<usize>,
    pub(crate) until: Option<Instant>,
    pub(crate) after_forwarding: bool,
    pub(crate) held: Option<std::time::Duration>,
}

impl Fault {
    /// Requests with `method` whose path contains `fragment` are answered `status` (with a
    /// Matrix error body). Applies to every match until limited by [`Fault::times`] or
    /// [`Fault::lasting`].
    pub fn new(method: &str, fragment: &str, status: u16) -> Fault {
        let errcode = if status == 429 {
            "M_LIMIT_EXCEEDED"
        } else {
            "M_UNKNOWN"
        };
        Fault {
            method: method.to_owned(),
            fragment: fragment.to_owned(),
            status,
            body: format!("{{\"errcode\":\"{errcode}\",\"error\":\"injected by the test proxy\"}}"),
            remaining: None,
            until: None,
            after_forwarding: false,
            held: None,
        }
    }

    /// Requests with `method` whose path contains `fragment` reach the homeserver only after
    /// `hold`, and reach it even when the client has gone meanwhile (a slow network, or a
    /// homeserver still at work on a request whose sender was killed); the client gets the
    /// homeserver's own answer. Limited like [`Fault::new`]'s.
    pub fn held(method: &str, fragment: &str, hold: std::time::Duration) -> Fault {
        Fault {
            held: Some(hold),
            ..Fault::new(method, fragment, 0)
        }
    }

    /// The answer's body (a JSON text).
    pub fn body(mut self, body: &str) -> Fault {
        self.body = body.to_owned();
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: usize) -> Fault {
        self.remaining = Some(n);
        self
    }

    /// Only for `duration` from now.
    pub fn lasting(mut self, duration: std::time::Duration) -> Fault {
        self.until = Some(Instant::now() + duration);
        self
    }

    /// Forward the request first, then answer with the fault (the homeserver acted on it).
    pub fn after_forwarding(mut self) -> Fault {
        self.after_forwarding = true;
        self
    }

    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        self.method == method
            && path.contains(&self.fragment)
            && self.remaining != Some(0)
            && self.until.is_none_or(|until| Instant::now() < until)
    }
}
