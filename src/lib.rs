//! AI DAWG Manager: a service supervisor on actix.

pub mod config;

#[path = "../examples/demo_service.rs"]
pub mod demo_service;
