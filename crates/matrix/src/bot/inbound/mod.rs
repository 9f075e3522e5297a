//! Inbound: a person's events, from the sync to what they asked for. The handlers put events
//! on their room's queue ([`handlers`]); each job routes its event ([`messages`]): a command
//! ([`commands`], [`leave_commands`], [`chat_settings`]), a file ([`attachments`], fetched by [`media`]), or
//! conversation answered by the platform ([`answer`], with [`context`] from history). An invite
//! starts first contact ([`provision`]), unless it is into a room with other people ([`groups`]).

mod answer;
mod attachments;
mod chat_settings;
mod commands;
mod context;
mod fallback;
mod groups;
mod handlers;
mod leave_commands;
mod media;
mod messages;
mod provision;
mod reactions;
mod room_keys;
