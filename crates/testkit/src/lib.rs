//! Test harness for lambda-matrix: a real Synapse on loopback ([`synapse::Synapse`]), a recording
//! proxy in front of it ([`proxy::RecordingProxy`]) that answers "which requests did the bot
//! make", and people as real matrix-sdk clients ([`person::Person`]).

pub mod person;
pub mod proxy;
pub mod synapse;

pub use person::Person;
pub use proxy::{Fault, Recorded, RecordingProxy};
pub use synapse::{Registered, Synapse};
