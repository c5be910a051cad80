//! AI DAWG Manager: a service supervisor on actix.

pub mod config;
