//! The life of a deployment, end to end against Synapse, in one test binary (one build and
//! link instead of seven): messages hidden behind what followed them, an outage longer than
//! the send window, a session taken away, a stop during the start, a herd against a slow
//! platform, attachment bodies held two at a time, replies from older clients, removed messages, a person taken off the allowlist, a login by token, the `check` command, quiet logs, group rooms, a first contact cut short, a `!new` whose room exists when a later step fails, a chat's own model and instructions, an answer stopped by a reaction, tokens and budgets, memory after many invites.

#[path = "common/mod.rs"]
mod common;

#[path = "deployment/allowlist.rs"]
mod allowlist;
#[path = "deployment/check.rs"]
mod check;
#[path = "deployment/downloads.rs"]
mod downloads;
#[path = "deployment/first_contact.rs"]
mod first_contact;
#[path = "deployment/groups.rs"]
mod groups;
#[path = "deployment/herd.rs"]
mod herd;
#[path = "deployment/hidden.rs"]
mod hidden;
#[path = "deployment/memory.rs"]
mod memory;
#[path = "deployment/new_chat.rs"]
mod new_chat;
#[path = "deployment/outage.rs"]
mod outage;
#[path = "deployment/quiet.rs"]
mod quiet;
#[path = "deployment/reactions.rs"]
mod reactions;
#[path = "deployment/removed.rs"]
mod removed;
#[path = "deployment/replies.rs"]
mod replies;
#[path = "deployment/session_lost.rs"]
mod session_lost;
#[path = "deployment/settings.rs"]
mod settings;
#[path = "deployment/stops.rs"]
mod stops;
#[path = "deployment/token.rs"]
mod token;
#[path = "deployment/usage.rs"]
mod usage;
