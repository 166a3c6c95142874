//! Service-level agreements for incidents: business-hours calendar, policies and clocks.

pub mod calendar;
pub mod clock;
