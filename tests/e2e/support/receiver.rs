//! The local recording HTTP receiver (Slack, PagerDuty, any webhook stand-in): the
//! `tripline-test-receiver` crate (tests/receiver), shared with the engine's own receiver tests.

pub use tripline_test_receiver::*;
