//! The lifecycle of the bot's rooms: a person's first contact ([`first_contact`]), made once
//! even when the homeserver's answer is lost ([`create`]), left and forgotten for good in a crash-safe order ([`leaving`]), found by
//! their trusted records ([`rooms`]), and what a crash left half-done finished at start
//! ([`resume`]). The leaving record's one writer is [`crate::records::LeavingWriter`].

mod claim;
mod create;
mod first_contact;
mod leaving;
mod resume;
mod rooms;

pub(crate) use create::Sought;
pub(crate) use leaving::forget_when_synced;
