//! What both front ends share (the full-screen one in `tui` and the line-in/line-out
//! one in `pipe`): safe display of received text, the in-chat commands, the chat line
//! model and the member roster.

pub mod command;
pub mod entry;
pub mod escape;
pub mod roster;
