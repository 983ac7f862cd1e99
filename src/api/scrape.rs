//! What `/metrics` reads at scrape time: the store's execution counts turned
//! into the gauges the metrics expose (by tenant and status, queue depth by
//! tenant, live executions), beside the supervisor's own figures.

use crate::execution::Status;
use crate::metrics::{ExecutionCount, Gauges};
use crate::store::StatusCount;

/// The gauges for `counts` (every tenant and status with executions), with
/// this supervisor's `running_here` and `event_channels`.
pub(super) fn gauges(counts: Vec<StatusCount>, running_here: u64, event_channels: u64) -> Gauges {
    let mut queue_depths: Vec<(String, u64)> = Vec::new();
    let mut live = 0;
    let mut oldest_queued = None;
    for count in &counts {
        let queued = if count.status == Status::Queued {
            oldest_queued = oldest_queued.min(Some(count.oldest)).or(Some(count.oldest));
            count.count
        } else {
            0
        };
        if !count.status.is_final() && count.status != Status::Queued {
            live += count.count;
        }
        match queue_depths.iter_mut().find(|(t, _)| *t == count.tenant_id) {
            Some((_, depth)) => *depth += queued,
            None => queue_depths.push((count.tenant_id.clone(), queued)),
        }
    }
    Gauges {
        executions: counts
            .into_iter()
            .map(|count| ExecutionCount {
                tenant: count.tenant_id,
                status: count.status.as_str(),
                count: count.count,
            })
            .collect(),
        queue_depths,
        queue_oldest_ms: oldest_queued.map_or(0, |at| {
            u64::try_from((chrono::Utc::now() - at).num_milliseconds()).unwrap_or(0)
        }),
        live,
        running_here,
        event_channels,
        ..Gauges::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(tenant: &str, status: Status, count: u64) -> StatusCount {
        StatusCount {
            tenant_id: tenant.into(),
            status,
            count,
            oldest: chrono::Utc::now()
                - chrono::Duration::seconds(if status == Status::Queued { 90 } else { 900 }),
        }
    }

    #[test]
    fn live_and_queue_depths_come_from_the_counts() {
        let gauges = gauges(
            vec![
                count("acme", Status::Queued, 3),
                count("acme", Status::Running, 2),
                count("acme", Status::Succeeded, 9),
                count("beta", Status::Collecting, 1),
                count("beta", Status::Failed, 1),
            ],
            2,
            1,
        );
        assert_eq!(gauges.live, 3);
        assert_eq!(
            gauges.queue_depths,
            vec![("acme".to_string(), 3), ("beta".to_string(), 0)]
        );
        assert_eq!(gauges.executions.len(), 5);
        assert_eq!(gauges.executions[2].status, "succeeded");
        assert_eq!((gauges.running_here, gauges.event_channels), (2, 1));
        // The oldest queued execution's age, not a finished one's.
        assert!((90_000..95_000).contains(&gauges.queue_oldest_ms));
    }
}
