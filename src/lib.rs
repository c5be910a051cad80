//! AI DAWG Manager: a service supervisor on actix.

#[path = "../examples/demo_service.rs"]
pub mod demo_service;
