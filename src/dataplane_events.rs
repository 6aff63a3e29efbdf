//! What the dataplane's figures say that an operator must hear about
//! without asking, written to the log (`show logging`, syslog) in IOS's
//! words: a line protocol changing state (looked at every few seconds),
//! and the packets dropped over each minute by reason (one line, the
//! largest reasons first; nothing when nothing was dropped).

use kernel_bypass::counters::Counter;
use kernel_bypass::stats::InterfaceStats;
use kernel_bypass::Dataplane;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const LOOK_EVERY: Duration = Duration::from_secs(5);
/// Drops are summed over this many looks (a minute).
const LOOKS_PER_DROP_REPORT: u32 = 12;
/// Reasons named in a drop report; the rest are in `show counters`.
const REASONS_NAMED: usize = 4;

pub async fn watch(dataplane: Arc<Dataplane>) {
    let first = dataplane.stats();
    let mut links = link_states(&first.interfaces);
    let mut drops = drop_totals(&first.counters);
    for look in 1u32.. {
        tokio::time::sleep(LOOK_EVERY).await;
        let stats = dataplane.stats();
        let now = link_states(&stats.interfaces);
        for line in link_changes(&links, &now) {
            dataplane.log(line);
        }
        links = now;
        if look % LOOKS_PER_DROP_REPORT == 0 {
            let totals = drop_totals(&stats.counters);
            if let Some(line) = drop_report(&drops, &totals) {
                dataplane.log(line);
            }
            drops = totals;
        }
    }
}

fn link_states(interfaces: &[InterfaceStats]) -> HashMap<String, bool> {
    (interfaces.iter())
        .map(|i| (i.name.clone(), i.up))
        .collect()
}

/// IOS's line for each interface whose line protocol changed, or that is
/// new and up (one configured and brought up between two looks); a
/// removed interface is a configuration change, logged as one already.
fn link_changes(before: &HashMap<String, bool>, now: &HashMap<String, bool>) -> Vec<String> {
    let mut lines: Vec<String> = (now.iter())
        .filter(|(name, up)| match before.get(*name) {
            Some(was) => was != *up,
            None => **up,
        })
        .map(|(name, up)| {
            format!(
                "%LINEPROTO-5-UPDOWN: Line protocol on Interface {name}, changed state to {}",
                if *up { "up" } else { "down" }
            )
        })
        .collect();
    lines.sort();
    lines
}

/// The drop counters, in `Counter::ALL` order (stats keep that order).
fn drop_totals(counters: &[(Counter, u64)]) -> Vec<(Counter, u64)> {
    counters
        .iter()
        .filter(|(c, _)| c.is_drop())
        .copied()
        .collect()
}

/// One line for the drops between two readings, largest reasons first.
fn drop_report(before: &[(Counter, u64)], now: &[(Counter, u64)]) -> Option<String> {
    let mut grown: Vec<(Counter, u64)> = (now.iter().zip(before))
        .map(|((counter, n), (_, was))| (*counter, n.saturating_sub(*was)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let total: u64 = grown.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    grown.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let reasons: Vec<String> = (grown.iter().take(REASONS_NAMED))
        .map(|(c, n)| format!("{} {} {n}", c.node(), c.name()))
        .collect();
    let more = match grown.len().saturating_sub(REASONS_NAMED) {
        0 => String::new(),
        n => format!(" and {n} other reasons (show counters)"),
    };
    Some(format!(
        "%DATAPLANE-4-DROPS: {total} packets dropped in the last minute: {}{more}",
        reasons.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_interfaces_that_changed_state_are_logged() {
        let before = HashMap::from([("eth0".to_string(), true), ("eth1".to_string(), true)]);
        let now = HashMap::from([
            ("eth0".to_string(), true),
            ("eth1".to_string(), false),
            ("eth2".to_string(), false),
            ("eth3".to_string(), true),
        ]);
        assert_eq!(
            link_changes(&before, &now),
            [
                "%LINEPROTO-5-UPDOWN: Line protocol on Interface eth1, changed state to down",
                "%LINEPROTO-5-UPDOWN: Line protocol on Interface eth3, changed state to up",
            ]
        );
        assert!(link_changes(&now, &now).is_empty());
    }

    #[test]
    fn a_drop_report_names_the_largest_reasons_and_is_silent_without_drops() {
        let before = [
            (Counter::Ipv4NoRoute, 10),
            (Counter::Ipv6NoRoute, 0),
            (Counter::InterfaceDown, 5),
        ];
        let now = [
            (Counter::Ipv4NoRoute, 12),
            (Counter::Ipv6NoRoute, 30),
            (Counter::InterfaceDown, 5),
        ];
        assert_eq!(
            drop_report(&before, &now).unwrap(),
            "%DATAPLANE-4-DROPS: 32 packets dropped in the last minute: \
             ip6-lookup no-route 30, ip4-lookup no-route 2"
        );
        assert_eq!(drop_report(&now, &now), None);
    }
}
