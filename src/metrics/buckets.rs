//! Histogram bucket bounds, in seconds, chosen for what each one measures.

/// HTTP answers: a millisecond to ten seconds.
pub(super) const HTTP: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Time in the queue: a tenth of a second to two hours.
pub(super) const QUEUE_WAIT: [f64; 12] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0,
];

/// Creating and starting a container: 50 ms to a minute.
pub(super) const CONTAINER_START: [f64; 10] =
    [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

/// A whole execution: a second to four hours.
pub(super) const EXECUTION: [f64; 13] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
];
