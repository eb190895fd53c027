//! The verbs: one file per command of runc's command line. Each opens the
//! container's state, checks its status and calls into [`crate::container`];
//! no verb calls another.

pub mod bundle;
pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod layers;
pub mod list;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;
