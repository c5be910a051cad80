//! AI DAWG Manager: a service supervisor on actix.
