//! Test harness for lambda-matrix: a real Synapse on loopback ([`synapse::Synapse`]), a recording
//! proxy in front of it ([`proxy::RecordingProxy`]) that answers "which requests did the bot
//! make" and can fail a seeded share of them ([`chaos`]), and people as real matrix-sdk clients
//! ([`person::Person`]), whose timeline [`tally`] reads to count the bot's answers; [`invites`]
//! drives thousands of invites at a bot process and reads its memory.

pub mod chaos;
pub mod fault;
pub mod invites;
pub mod person;
pub mod proxy;
pub mod synapse;
pub mod tally;

pub use chaos::{ChaosConfig, Kind as RequestKind, SeededRng};
pub use person::{Message, Person, Upload};
pub use proxy::{Fault, Recorded, RecordingProxy};
pub use synapse::{Registered, Synapse};

/// The stages of an answer the bot times (`lambda_matrix_answer_stage_seconds{stage=…}`), in
/// the order an answer passes them, then the three its time is split by (the bot's part of
/// `received`, the homeserver's waits, the bot's own time): read by the bench and by the metrics test.
pub const ANSWER_STAGES: [&str; 9] = [
    "received",
    "queued",
    "prepared",
    "platform",
    "first_sent",
    "delivered",
    "read",
    "homeserver",
    "own",
];
